"""Streaming and resume: an interrupted-then-resumed run gives the same report as an
uninterrupted one, recomputes nothing already in examples.jsonl, and loses nothing computed."""

import json

import pytest

from comclip.errors import InputError
from comclip.eval import retrieval
from comclip.eval.runner import load, run

from . import eval_synth as synth


def comparable(report):
    """The report without where its files are (the only thing that differs between two folders)."""
    return {k: v for k, v in report.items() if k != "files"}


def records(out):
    return {r["id"]: r for r in map(json.loads, (out / "examples.jsonl").read_text().splitlines())}


def assert_same_scores(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert a[key]["status"] == b[key]["status"]
        for m in ("clip", "comclip"):
            if a[key]["status"] != "ok":
                continue  # a failed record has no scores
            for name, value in a[key][m].items():
                assert value == (pytest.approx(b[key][m][name], abs=1e-5) if name != "top" else b[key][m][name])


def test_interrupted_then_resumed_equals_uninterrupted(tiny_engine, tmp_path):
    data = synth.write_winoground(tmp_path / "w", n=5, missing=(1,))
    whole = run(tiny_engine, "winoground", data, tmp_path / "whole", batch_size=2, progress=False)

    out = tmp_path / "resumed"
    spy = synth.SpyEngine(tiny_engine, interrupt_on_call=2)  # killed during the 2nd batch
    with pytest.raises(KeyboardInterrupt):
        run(spy, "winoground", data, out, batch_size=2, progress=False)
    kept = records(out)
    assert list(kept) == ["0", "1"]  # the first batch is on disk (1 failed: missing image)
    assert kept["1"]["status"] == "failed"
    assert not (out / "report.json").exists()

    spy = synth.SpyEngine(tiny_engine)
    resumed = run(spy, "winoground", data, out, batch_size=2, progress=False)
    scored = [cap for call in spy.calls for _, cap, _ in call]
    assert len(spy.calls) == 2 and len(scored) == 6  # examples 2, 3, 4 only: 2 images each
    assert comparable(resumed) == comparable(whole)
    assert_same_scores(records(out), records(tmp_path / "whole"))
    assert len((out / "examples.jsonl").read_text().splitlines()) == 5  # nothing written twice

    again = synth.SpyEngine(tiny_engine)
    assert comparable(run(again, "winoground", data, out, batch_size=2, progress=False)) == comparable(whole)
    assert again.calls == []  # everything was there: nothing recomputed


def test_torn_last_line_is_dropped_and_recomputed(tiny_engine, tmp_path):
    data = synth.write_comvg(tmp_path / "c", n=3)
    whole = run(tiny_engine, "comvg", data, tmp_path / "whole", progress=False)
    out = tmp_path / "torn"
    run(tiny_engine, "comvg", data, out, limit=2, progress=False)
    with (out / "examples.jsonl").open("a") as f:
        f.write('{"id": "3", "status": "ok", "clip": {"pos": 0.')  # killed mid-write
    spy = synth.SpyEngine(tiny_engine)
    resumed = run(spy, "comvg", data, out, progress=False)
    assert len(spy.calls) == 1 and len(spy.calls[0]) == 2  # only example 2 (its two images)
    assert comparable(resumed) | {"limit": None} == comparable(whole)
    lines = (out / "examples.jsonl").read_text().splitlines()
    assert len(lines) == 3 and all(json.loads(line) for line in lines)


def test_failed_examples_are_kept_unless_retried(tiny_engine, tmp_path):
    data = synth.write_svo(tmp_path / "s", n=2, missing=(1,))
    out = tmp_path / "out"
    first = run(tiny_engine, "svo", data, out, progress=False)
    assert first["n_failed"] == 1
    synth.draw(data / "images" / "2001_web.jpg", "fixed-pos")
    synth.draw(data / "images" / "5001_web.jpg", "fixed-neg")
    spy = synth.SpyEngine(tiny_engine)
    assert run(spy, "svo", data, out, progress=False)["n_failed"] == 1  # resume keeps the recorded failure
    assert spy.calls == []
    retried = run(spy, "svo", data, out, retry_failed=True, progress=False)
    assert retried["n_failed"] == 0 and retried["n_scored"] == 2
    assert len(spy.calls) == 1


def test_a_different_run_is_refused(tiny_engine, tmp_path):
    data = synth.write_comvg(tmp_path / "c", n=1)
    out = tmp_path / "out"
    run(tiny_engine, "comvg", data, out, progress=False)
    with pytest.raises(InputError, match="holds results of a different run"):
        run(tiny_engine, "comvg", data, out, graphs="parse", progress=False)
    other = synth.write_svo(tmp_path / "s", n=1)
    with pytest.raises(InputError, match=r"different run \(dataset"):
        run(tiny_engine, "svo", other, out, progress=False)


def test_retrieval_interrupted_then_resumed(tiny_engine, tmp_path, monkeypatch):
    data = synth.write_karpathy(tmp_path / "f", "flickr30k", n_test=6)
    whole = run(tiny_engine, "flickr30k", data, tmp_path / "whole", topk=4, batch_size=3, progress=False)

    out = tmp_path / "resumed"
    with pytest.raises(KeyboardInterrupt):
        run(synth.SpyEngine(tiny_engine, interrupt_on_call=3), "flickr30k", data, out, topk=4, batch_size=3,
            progress=False)
    assert len(records(out)) == 6  # two batches of 3 queries were written
    assert list((out / "gallery").glob("chunk_*.npz"))  # the gallery embeddings were kept too

    spy = synth.SpyEngine(tiny_engine)
    encoded = []
    real = retrieval._encode_chunk
    monkeypatch.setattr(retrieval, "_encode_chunk", lambda *a: encoded.append(a) or real(*a))
    resumed = run(spy, "flickr30k", data, out, topk=4, batch_size=3, progress=False)
    # the 12 remaining queries, 3 per call: 6 text→image, then the 6 images' image→text queries
    assert len(spy.calls) == 4 and all(len(c) == 3 for c in spy.calls[2:])
    assert encoded == []  # the gallery was not encoded again: its cached embeddings were used
    assert comparable(resumed) == comparable(whole)
    assert_same_scores(records(out), records(tmp_path / "whole"))


def test_limit_then_full_run_continues(tiny_engine, tmp_path):
    data = synth.write_comvg(tmp_path / "c", n=4)
    out = tmp_path / "out"
    part = run(tiny_engine, "comvg", data, out, limit=2, progress=False)
    assert part["n_total"] == 2
    spy = synth.SpyEngine(tiny_engine)
    full = run(spy, "comvg", data, out, progress=False)
    assert full["n_total"] == 4 and sum(len(c) for c in spy.calls) == 4  # 2 new examples x 2 images
    assert load("comvg", data).examples[3].id == "4"
