"""``python -m comclip``: outputs, the formula recomputed from --debug-embeddings, every error path."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from comclip.cli.main import main

from .conftest import EXAMPLE_IMAGE, ROOT

CAPS = ["a mug in some grass", "some grass in a mug"]


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _assert_one_error_line(code, err):
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err


def test_parse_json_lines(capsys):
    code, out, _ = run(capsys, "parse", "--parser", "rules", "--json", *CAPS)
    assert code == 0
    graphs = [json.loads(line) for line in out.strip().splitlines()]
    assert [g["caption"] for g in graphs] == CAPS
    assert [e["name"] for e in graphs[0]["entities"]] == ["mug", "grass"]


def test_parse_readable(capsys):
    code, out, _ = run(capsys, "parse", "--parser", "rules", "a dog chases a cat")
    assert code == 0 and "e0: dog" in out and "e1: cat" in out


def test_score_table(capsys, cache_dir):
    code, out, err = run(capsys, "score", str(EXAMPLE_IMAGE), *CAPS, "--preset", "tiny", "--parser", "rules")
    assert code == 0, err
    assert "CLIP" in out and "ComCLIP" in out and out.count("*") >= 3  # two marks + the legend
    assert "random weights" in out


def test_score_json_and_formula_recomputed_from_debug_embeddings(capsys, cache_dir):
    code, out, err = run(capsys, "score", str(EXAMPLE_IMAGE), *CAPS, "--preset", "tiny", "--parser", "rules",
                         "--json", "--debug-embeddings")
    assert code == 0, err
    d = json.loads(out)
    assert set(d) >= {"image", "preset", "models", "options", "captions", "best", "timings_ms"}
    assert d["image"] == {"path": str(EXAMPLE_IMAGE), "width": 640, "height": 480}
    assert d["options"]["weighting"] == "softmax" and d["preset"] == "tiny"
    scale = d["logit_scale"]
    v0 = np.array(d["global_image_embedding"], dtype=np.float64)
    comclip = []
    for cap in d["captions"]:
        t = np.array(cap["text_embedding"], dtype=np.float64)
        assert cap["clip_score"] == pytest.approx(float(t @ v0), abs=1e-5)
        vi = np.array([c["image_embedding"] for c in cap["components"]], dtype=np.float64)
        ti = np.array([c["text_embedding"] for c in cap["components"]], dtype=np.float64)
        s = scale * np.sum(ti * vi, axis=1)
        w = np.exp(s - s.max()) / np.exp(s - s.max()).sum()
        v = v0 + w @ vi
        assert cap["comclip_score"] == pytest.approx(float(t @ v / np.linalg.norm(v)), abs=1e-5)
        np.testing.assert_allclose([c["weight"] for c in cap["components"]], w, atol=1e-5)
        for j, comp in enumerate(cap["components"]):  # leave-one-out, recomputed
            keep = [k for k in range(len(w)) if k != j]
            sk = s[keep]
            wk = np.exp(sk - sk.max()) / np.exp(sk - sk.max()).sum()
            vk = v0 + wk @ vi[keep]
            assert comp["loo_score"] == pytest.approx(float(t @ vk / np.linalg.norm(vk)), abs=1e-5)
        comclip.append(cap["comclip_score"])
    assert d["best"]["comclip"] == int(np.argmax(comclip))


def test_score_with_graph_file(capsys, tmp_path, cache_dir):
    graph = {"caption": "a mug in some grass", "entities": [{"id": "e0", "name": "mug", "attributes": ["white"]}],
             "relations": []}
    (tmp_path / "g.jsonl").write_text(json.dumps(graph) + "\n" + json.dumps({**graph, "caption": "x"}) + "\n")
    code, out, err = run(capsys, "score", str(EXAMPLE_IMAGE), "--graph", str(tmp_path / "g.jsonl"),
                         "--preset", "tiny", "--json")
    assert code == 0, err
    d = json.loads(out)
    assert [c["caption"] for c in d["captions"]] == ["a mug in some grass", "x"]
    assert d["captions"][0]["components"][0]["text"] == "white mug"


@pytest.mark.parametrize("make_args, needle", [
    (lambda p: ["score", str(p / "missing.png"), "a dog", "--preset", "tiny"], "not found"),
    (lambda p: ["score", str(p / "text.png"), "a dog", "--preset", "tiny"], "not an image"),
    (lambda p: ["score", str(EXAMPLE_IMAGE), "  ", "--preset", "tiny"], "empty"),
    (lambda p: ["score", str(EXAMPLE_IMAGE), "--preset", "tiny"], "caption"),
    (lambda p: ["score", str(EXAMPLE_IMAGE), "a dog", "--preset", "huge"], "unknown preset"),
    (lambda p: ["score", str(EXAMPLE_IMAGE), "a dog", "--preset", "tiny", "--parser", "magic"], "'magic'"),
    (lambda p: ["score", str(EXAMPLE_IMAGE), "a dog", "--preset", "tiny", "--graph", str(p / "bad.json")],
     "not valid JSON"),
    (lambda p: ["score", str(EXAMPLE_IMAGE), "a dog", "--preset", "tiny", "--graph", str(p / "dangling.json")],
     "not an entity id"),
    (lambda p: ["score", str(EXAMPLE_IMAGE), "a dog", "--preset", "tiny", "--graph", str(p / "nofile.json")],
     "not found"),
    (lambda p: ["score", str(EXAMPLE_IMAGE), "a", "b", "--preset", "tiny", "--graph", str(p / "dangling.json")],
     "graph"),
    (lambda p: ["score", str(EXAMPLE_IMAGE), "a dog", "--preset", "tiny", "--box-threshold", "7"], "between 0 and 1"),
    (lambda p: ["score", str(EXAMPLE_IMAGE), "a dog", "--preset", "tiny", "--debug-embeddings"], "needs --json"),
    (lambda p: ["score", str(EXAMPLE_IMAGE), "a dog", "--weighting", "max"], "invalid choice"),
    (lambda p: ["score", str(EXAMPLE_IMAGE), "a dog", "--preset", "tiny", "--device", "cuda:0"]
     if not __import__("torch").cuda.is_available() else ["parse", ""], "cuda|empty"),
    (lambda p: ["parse", ""], "empty"),
    (lambda p: ["frobnicate"], "invalid choice"),
    (lambda p: [], "required"),
])
def test_error_paths_are_one_line_exit_2(capsys, tmp_path, cache_dir, make_args, needle):
    (tmp_path / "text.png").write_text("not an image")
    (tmp_path / "bad.json").write_text("{nope")
    (tmp_path / "dangling.json").write_text(json.dumps(
        {"caption": "a dog", "entities": [{"id": "e0", "name": "dog"}],
         "relations": [{"subject": "e0", "predicate": "on", "object": "e7"}]}))
    code, _, err = run(capsys, *make_args(tmp_path))
    _assert_one_error_line(code, err)
    assert any(n in err for n in needle.split("|")), err


def test_huge_image_is_refused(capsys, tmp_path, monkeypatch):
    import comclip.images

    monkeypatch.setattr(comclip.images, "MAX_PIXELS", 1000)
    Image.new("RGB", (100, 100)).save(tmp_path / "big.png")
    code, _, err = run(capsys, "score", str(tmp_path / "big.png"), "a dog", "--preset", "tiny")
    _assert_one_error_line(code, err)
    assert "too large" in err


def test_missing_weights_offline_fail_fast_with_one_line(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-hf-home"))
    code, _, err = run(capsys, "score", str(EXAMPLE_IMAGE), "a dog", "--preset", "default", "--device", "cpu")
    _assert_one_error_line(code, err)
    assert "ViT-B-32-quickgelu" in err and "--preset tiny" in err


def test_real_subprocess_has_no_traceback(cache_dir):
    env = {**os.environ, "COMCLIP_CACHE": str(cache_dir)}
    proc = subprocess.run([sys.executable, "-m", "comclip", "score", str(EXAMPLE_IMAGE), *CAPS, "--preset", "tiny",
                           "--parser", "rules", "--json"], capture_output=True, text=True, cwd=ROOT, env=env,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert len(json.loads(proc.stdout)["captions"]) == 2
    proc = subprocess.run([sys.executable, "-m", "comclip", "score", "nope.png", "x"], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=300)
    assert proc.returncode == 2 and proc.stderr.startswith("error: ") and "Traceback" not in proc.stderr


@pytest.mark.parametrize("extra, needle", [
    (["--clip-model", "ViT-B-16"], "needs a pretrained tag"),
    (["--clip-backend", "hf_clip"], "name the model"),
    (["--clip-model", "hf-hub:nobody/no-such-model"], "hf-hub:nobody/no-such-model"),
    (["--preset", "tiny", "--detector", "nobody/no-such-detector"], "nobody/no-such-detector"),
])
def test_model_overrides_fail_clearly_offline(capsys, tmp_path, monkeypatch, cache_dir, extra, needle):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-hf-home"))
    code, _, err = run(capsys, "score", str(EXAMPLE_IMAGE), "a dog", "--device", "cpu", *extra)
    _assert_one_error_line(code, err)
    assert needle in err


def test_custom_preset_replaces_only_what_is_named():
    from comclip.loading import custom_preset
    from comclip.presets import get_preset

    base = get_preset("default")
    assert custom_preset(base) is base
    p = custom_preset(base, clip_model="ViT-B-16", clip_pretrained="laion2b_s34b_b88k")
    assert (p.encoder.model, p.encoder.pretrained) == ("ViT-B-16", "laion2b_s34b_b88k")
    assert p.detector == base.detector and p.name == "default+custom"
    p = custom_preset(base, clip_backend="hf_clip", clip_model="openai/clip-vit-base-patch32", detector="x/y")
    assert p.encoder.backend == "hf_clip" and p.encoder.pretrained is None and p.detector.model == "x/y"
    assert custom_preset(base, clip_pretrained="openai").encoder.model == "ViT-B-32-quickgelu"


@pytest.mark.parametrize("size", [(8000, 2), (2, 8000)])
def test_extreme_aspect_ratios_give_one_clear_error_line(capsys, tmp_path, cache_dir, size):
    Image.new("RGB", size, (120, 200, 30)).save(tmp_path / "line.png")
    code, out, err = run(capsys, "score", str(tmp_path / "line.png"), "a mug in some grass", "--preset", "tiny",
                         "--parser", "rules")
    _assert_one_error_line(code, err)
    assert "too elongated" in err and f"{size[0]}x{size[1]}" in err and "internal error" not in err


def test_elongated_but_allowed_images_score(capsys, tmp_path, cache_dir):
    Image.new("RGB", (4000, 20), (120, 200, 30)).save(tmp_path / "strip.png")  # 200:1, the limit
    code, out, err = run(capsys, "score", str(tmp_path / "strip.png"), "a mug in some grass", "--preset", "tiny",
                         "--parser", "rules", "--json")
    assert code == 0, err
    assert json.loads(out)["image"]["width"] == 4000


@pytest.mark.parametrize("flag, expected", [([], "auto"), (["--detector-precision", "fp32"], "fp32"),
                                            (["--detector-precision", "bf16"], "bf16")])
def test_detector_precision_flag_reaches_the_detector(cache_dir, flag, expected):
    """fp32 stays available beside the default (bf16 autocast on CUDA and on a CPU with native bf16)."""
    from comclip.cli.common import load_engine
    from comclip.cli.main import build_parser

    args = build_parser().parse_args(["score", str(EXAMPLE_IMAGE), "a mug", "--preset", "tiny", "--device", "cpu",
                                      *flag])
    engine = load_engine(args)
    assert engine.detector.precision == expected
    result = engine.match(EXAMPLE_IMAGE, ["a mug in some grass"], parser="rules")
    assert np.isfinite(result.captions[0].comclip_score)


def test_detector_precision_flag_rejects_unknown(capsys):
    assert main(["score", str(EXAMPLE_IMAGE), "a mug", "--detector-precision", "fp8"]) == 2
    assert "invalid choice: 'fp8'" in capsys.readouterr().err
