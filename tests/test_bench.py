"""The bench harness in reduced form (tiny preset, a few pairs): structure and correctness, never speed."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from comclip import bench
from comclip.cli.main import main
from comclip.errors import InputError

JSON_KEYS = {"preset", "device", "pairs", "captions_per_image", "reference", "engine", "floor",
             "speedup_vs_reference", "overhead_vs_floor", "peak_memory_mb"}


def test_inputs_are_seeded_realistic_and_parse_as_intended():
    inputs = bench.make_inputs(5, 2, seed=3)
    assert inputs.pairs == 5 and [len(c) for c in inputs.captions] == [2, 2, 1]
    assert all((im.width, im.height) == (640, 480) for im in inputs.images)
    assert all(len(np.unique(np.asarray(im.image).reshape(-1, 3), axis=0)) > 1000 for im in inputs.images)
    for caps, graphs in zip(inputs.captions, inputs.graphs, strict=True):
        assert len(set(caps)) == len(caps)  # K different captions per image
        phrases = {tuple(e.phrase for e in g.entities) for g in graphs}
        assert len(phrases) == 1 and len(next(iter(phrases))) in (2, 3)  # shared entities, same order
        assert all(len(g.relations) == 1 for g in graphs)
    assert {len(g[0].entities) for g in inputs.graphs} == {2, 3}
    again = bench.make_inputs(5, 2, seed=3)
    assert again.captions == inputs.captions
    assert all(a.image.tobytes() == b.image.tobytes() for a, b in zip(again.images, inputs.images, strict=True))
    other = bench.make_inputs(5, 2, seed=4)
    assert other.images[0].image.tobytes() != inputs.images[0].image.tobytes()
    assert [len(c) for c in inputs.head(3).captions] == [2, 1]


@pytest.mark.parametrize("args", [(0, 4, 1), (4, 0, 1), (4, 4, 0), (4, bench.MAX_CAPTIONS_PER_IMAGE + 1, 1)])
def test_counts_are_validated(args):
    with pytest.raises(InputError):
        bench._check_counts(*args)


@pytest.fixture(scope="module")
def exact_result(tiny_engine):
    """Engine with PIL-rendered sub-images, exactly the reference's pixels."""
    return bench.run_bench(pairs=6, captions_per_image=3, repeats=2, engine=tiny_engine, fast_subimages=False)


def test_reference_and_engine_agree_on_every_score(exact_result):
    r = exact_result
    assert len(r.reference_scores) == len(r.engine_scores) == 6
    np.testing.assert_allclose(np.array(r.reference_scores), np.array(r.engine_scores), atol=1e-4)
    assert r.checks["max_score_diff"] < 1e-4
    assert r.checks["floor_replay_max_rel_diff"] < 1e-5  # the floor recomputes the engine's outputs
    assert r.checks["stubbed_run_max_score_diff"] < 1e-6  # recorded outputs stand in for the right calls
    assert r.options["fast_subimages"] is False
    # ComCLIP actually changed something: the scores are not just the CLIP baseline.
    assert any(abs(a - b) > 1e-4 for a, b in r.engine_scores)


def test_detector_passes_and_forward_calls(exact_result):
    r = exact_result
    assert r.images == 2 and r.pairs == 6
    assert r.variants["reference"].detector_passes == 6  # one per pair
    assert r.variants["engine"].detector_passes == 2  # one per image
    assert r.variants["floor"].detector_passes == 2  # replays exactly the engine's
    assert r.forward_calls["detector"] == 2
    assert r.forward_calls["image"] >= 1 and r.forward_calls["text"] >= 1
    for v in r.variants.values():
        assert len(v.seconds) == 2 and all(s > 0 for s in v.seconds)


def test_result_dict_and_table(exact_result):
    d = exact_result.to_dict()
    assert JSON_KEYS <= set(d)
    json.dumps(d)
    for name in bench.VARIANTS:
        v = d[name]
        assert v["pairs_per_s"] > 0 and v["ms_per_pair"] > 0
        assert v["ms_per_pair_min"] <= v["ms_per_pair"] <= v["ms_per_pair_max"]
        assert v["pairs_per_s"] == pytest.approx(1000.0 / v["ms_per_pair"], rel=1e-3)
    assert d["speedup_vs_reference"] == pytest.approx(d["reference"]["ms_per_pair"] / d["engine"]["ms_per_pair"],
                                                      rel=1e-3)
    assert d["overhead_vs_floor"] == pytest.approx(d["engine"]["ms_per_pair"] / d["floor"]["ms_per_pair"], rel=1e-3)
    assert d["peak_memory_mb"]["cpu_rss"] > 0 and d["peak_memory_mb"]["cuda_max_allocated"] is None
    assert {"ground", "encode_images", "encode_texts", "total"} <= set(d["engine_stages_ms"])
    assert set(d["floor_parts_ms"]) == {"detector", "image", "text"}
    o = d["engine_overhead"]
    assert o["ms_per_run"] > 0 and o["fraction_of_floor"] > 0 and {"ground", "total"} <= set(o["stages_ms"])
    assert set(d["cpu_time_ratios"]) == {"speedup_vs_reference", "overhead_vs_floor"}
    table = exact_result.format()
    for word in ("reference", "engine", "floor", "speedup vs reference", "overhead vs floor", "peak memory"):
        assert word in table


def test_recording_leaves_the_models_untouched(tiny_engine):
    det_model, enc_model = tiny_engine.detector.model, tiny_engine.encoder.model
    inputs = bench.make_inputs(2, 2)
    with bench.record_forwards(tiny_engine) as rec:
        assert "forward" in det_model.__dict__
        bench.clear_caches(tiny_engine)
        bench.run_engine(tiny_engine, inputs)
    assert "forward" not in det_model.__dict__
    assert not {"encode_image", "encode_text"} & set(enc_model.__dict__)
    assert rec.counts()["detector"] == 1
    _, diff = rec.replay(torch.device("cpu"), compare=True)
    assert diff < 1e-5


def test_stubbed_forwards_replace_the_models_and_notice_a_different_run(tiny_engine):
    one, two = bench.make_inputs(2, 2), bench.make_inputs(4, 2)
    bench.clear_caches(tiny_engine)
    with bench.record_forwards(tiny_engine) as rec:
        expected, _ = bench.run_engine(tiny_engine, one)
    bench.clear_caches(tiny_engine)
    with bench.stub_forwards(tiny_engine, rec):
        got, _ = bench.run_engine(tiny_engine, one)
    assert got == expected
    assert "forward" not in tiny_engine.detector.model.__dict__
    bench.clear_caches(tiny_engine)
    with pytest.raises(RuntimeError, match="did not make"), bench.stub_forwards(tiny_engine, rec):
        bench.run_engine(tiny_engine, two)  # two images: one detector pass more than recorded


def test_clear_caches_makes_every_run_do_the_same_work(tiny_engine):
    inputs = bench.make_inputs(2, 2)
    bench.run_engine(tiny_engine, inputs)
    assert tiny_engine._text_cache
    for _ in range(2):
        bench.clear_caches(tiny_engine)
        assert not tiny_engine._text_cache
        before = tiny_engine.detector.forward_passes
        bench.run_engine(tiny_engine, inputs)
        assert tiny_engine.detector.forward_passes == before + 1  # detections are not served from a cache


def test_cli_json(tiny_engine, capsys):
    # tiny_engine: makes sure the tiny models are built and cached before the CLI loads them.
    code = main(["bench", "--preset", "tiny", "--device", "cpu", "--pairs", "4", "--captions-per-image", "2",
                 "--repeats", "1", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    d = json.loads(out.strip().splitlines()[-1])
    assert JSON_KEYS <= set(d)
    assert (d["preset"], d["device"], d["pairs"], d["captions_per_image"]) == ("tiny", "cpu", 4, 2)
    assert d["reference"]["detector_forward_passes"] == 4
    assert d["engine"]["detector_forward_passes"] == d["floor"]["detector_forward_passes"] == 2
    assert d["speedup_vs_reference"] > 0 and d["overhead_vs_floor"] > 0
    assert d["options"]["fast_subimages"] is True
    # The engine's default (fast) sub-images agree with the PIL path within the engine's tested tolerance.
    assert d["checks"]["max_score_diff"] < 2e-3


@pytest.mark.parametrize("argv, needle", [
    (["--preset", "nope"], "unknown preset"),
    (["--preset", "tiny", "--pairs", "0"], "--pairs"),
    (["--preset", "tiny", "--repeats", "0"], "--repeats"),
    (["--preset", "tiny", "--captions-per-image", "99"], "--captions-per-image"),
    (["--preset", "tiny", "--pairs", "x"], "invalid int"),
])
def test_cli_errors(argv, needle, capsys):
    assert main(["bench", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and needle in err[0]


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA GPU is present")
def test_cli_cuda_without_gpu_is_one_error(capsys):
    assert main(["bench", "--preset", "tiny", "--device", "cuda", "--pairs", "2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cuda" in err[0]


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_bench_on_cuda(cache_dir):
    r = bench.run_bench("tiny", "cuda", pairs=4, captions_per_image=2, repeats=1, fast_subimages=False)
    d = r.to_dict()
    assert d["device"].startswith("cuda")
    assert d["peak_memory_mb"]["cuda_max_allocated"] > 0
    assert d["engine"]["detector_forward_passes"] == 2
    assert r.checks["max_score_diff"] < 5e-3  # fp16 encoder: batched vs one-by-one


def test_floor_replays_under_the_engines_autocast(tiny_engine):
    inputs = bench.make_inputs(2, 2)
    bench.clear_caches(tiny_engine)
    with bench.record_forwards(tiny_engine) as rec, torch.autocast("cpu", dtype=torch.bfloat16):
        bench.run_engine(tiny_engine, inputs)
    assert rec.calls and all(c.autocast == (("cpu", torch.bfloat16),) for c in rec.calls)
    _, diff = rec.replay(torch.device("cpu"), compare=True)
    assert diff < 1e-5  # the same bf16 computation, not an fp32 one
