"""``python -m comclip eval`` end to end: flags, the --json report line, one-line errors."""

import json

import pytest

from comclip.cli.main import main

from . import eval_synth as synth

# -- command line -------------------------------------------------------------------------------

def test_cli_eval_json_last_line(tiny_engine, tmp_path, capsys):
    data = synth.write_comvg(tmp_path / "comvg", n=3, missing_ids=(1000,))
    out = tmp_path / "out"
    code = main(["eval", "comvg", "--data", str(data), "--preset", "tiny", "--device", "cpu", "--parser", "rules",
                 "--out", str(out), "--json", "--limit", "2", "--no-progress"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    report = json.loads(captured.out.strip().splitlines()[-1])
    assert report["dataset"] == "comvg" and report["limit"] == 2
    assert (report["n_total"], report["n_scored"], report["n_failed"]) == (2, 1, 1)
    assert report["failures"][0]["id"] == "1" and "1000" in report["failures"][0]["reason"]
    assert set(report["metrics"]) == {"clip", "comclip"}
    assert json.loads((out / "report.json").read_text())["n_total"] == 2


@pytest.mark.parametrize(("argv", "message"), [
    (["eval", "winoground", "--data", "{tmp}/missing"], "winoground data folder not found"),
    (["eval", "svo", "--data", "{svo}"], "columns found: text, pos_triplet"),
    (["eval", "coco", "--data", "{tmp}"], "has no dataset_coco.json"),
    (["eval", "comvg", "--data", "{tmp}"], "has no ComVG.csv"),
    (["eval", "comvg", "--data", "{tmp}", "--limit", "0"], "--limit must be a whole number >= 1, got 0"),
    (["eval", "vl-checklist", "--data", "{tmp}", "--max-num", "0"], "--max-num must be a whole number >= 1, got 0"),
    (["eval", "vl-checklist", "--data", "{tmp}"], "has no corpus/v1/ folder"),
    (["eval", "flickr30k", "--data", "{tmp}", "--protocol", "paper"], "invalid choice: 'paper'"),
    (["eval", "imagenet", "--data", "{tmp}"], "invalid choice: 'imagenet'"),
])
def test_cli_eval_errors_are_one_line(tmp_path, capsys, argv, message):
    svo = synth.write_svo(tmp_path / "svo", n=1, columns=["text", *synth.SVO_COLUMNS[1:]])
    argv = [a.format(tmp=tmp_path, svo=svo) for a in argv] + ["--preset", "tiny", "--out", str(tmp_path / "o")]
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], err
    assert not (tmp_path / "o").exists()  # failed before anything ran


def test_cli_vl_checklist_checkout_and_images(tiny_engine, tmp_path, capsys):
    repo = synth.write_vl_checklist(tmp_path / "VL-CheckList", dataset=tmp_path / "DATASET")
    code = main(["eval", "vl-checklist", "--data", str(repo), "--images", str(tmp_path / "DATASET"), "--max-num", "1",
                 "--pairs", "all", "--preset", "tiny", "--device", "cpu", "--parser", "rules", "--json",
                 "--no-progress", "--out", str(tmp_path / "out")])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    report = json.loads(captured.out.strip().splitlines()[-1])
    # 7 annotation files x their first entry; the swig entry has 2 POS x 2 NEG: 2 pairs
    assert (report["n_total"], report["n_failed"], report["world_size"]) == (8, 0, 1)
    assert {"accuracy[Attribute]", "accuracy[Object]", "accuracy[Relation]"} <= set(report["metrics"]["clip"])


def test_cli_retrieval_protocol(tiny_engine, tmp_path, capsys):
    data = synth.write_karpathy(tmp_path / "f", "flickr30k", n_test=3)
    code = main(["eval", "flickr30k", "--data", str(data), "--protocol", "comclip", "--topk", "2", "--preset", "tiny",
                 "--device", "cpu", "--parser", "rules", "--json", "--no-progress", "--out", str(tmp_path / "out")])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    report = json.loads(captured.out.strip().splitlines()[-1])
    assert report["protocol"] == "comclip" and report["n_total"] == 3
    assert set(report["metrics"]["comclip"]) == {"t2i_R@1", "t2i_R@5"}
    assert "protocol: comclip" in (tmp_path / "out" / "report.md").read_text()


def test_cli_eval_official_options(tiny_engine, tmp_path, capsys):
    """--official (the official code's choices, docs/fidelity.md) reaches the engine and is recorded."""
    data = synth.write_comvg(tmp_path / "comvg", n=2)
    code = main(["eval", "comvg", "--data", str(data), "--official", "--preset", "tiny", "--device", "cpu",
                 "--parser", "rules", "--json", "--no-progress", "--out", str(tmp_path / "out")])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    report = json.loads(captured.out.strip().splitlines()[-1])
    assert report["n_scored"] == 2
    assert (report["options"]["weighting"], report["options"]["all_boxes"], report["options"]["intransitive"]) == (
        "sum", True, "whole")
    assert json.loads((tmp_path / "out" / "run.json").read_text())["options"]["weighting"] == "sum"


def test_cli_retrieval_multi_query_backbone(tmp_path, capsys, cache_dir):
    """BLIP-2's image rows are 32 query vectors: retrieval ranks with the model's own score (max over
    queries), in both directions, and CLIP's first-stage rank of each query is recomputed here."""
    import numpy as np
    from PIL import Image

    import comclip
    from comclip.encoders import similarity

    data = synth.write_karpathy(tmp_path / "f", "flickr30k", n_test=3)
    out = tmp_path / "out"
    code = main(["eval", "flickr30k", "--data", str(data), "--topk", "2", "--preset", "tiny-blip2", "--device", "cpu",
                 "--parser", "rules", "--json", "--no-progress", "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    report = json.loads(captured.out.strip().splitlines()[-1])
    assert report["n_failed"] == 0 and report["n_scored"] == report["n_total"] > 3
    assert {"t2i_R@1", "i2t_R@1"} <= set(report["metrics"]["clip"])
    engine = comclip.load("tiny-blip2", device="cpu", parser="rules")
    records = [json.loads(line) for line in (out / "examples.jsonl").read_text().splitlines()]
    t2i = [r for r in records if r["direction"] == "t2i"]
    assert t2i and all(r["status"] == "ok" for r in records)
    images = data / "flickr30k-images"
    rows = engine.encoder.encode_images([Image.open(images / r["clip"]["top"][0]).convert("RGB") for r in t2i])
    assert rows.ndim == 3  # (N, Q, D_q): the per-query features
    sims = similarity(engine.encoder, engine.encoder.encode_texts([r["caption"] for r in t2i]), rows)
    expected = np.diag(sims.numpy())
    got = np.array([r["clip"]["scores"][0] for r in t2i])
    np.testing.assert_allclose(got, expected, atol=1e-5)
