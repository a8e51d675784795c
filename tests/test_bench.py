"""The bench harness in reduced form (tiny preset, a few pairs): structure and correctness, never speed."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from comclip import bench
from comclip.bench.click import CLICK_CAPTIONS, SECOND_CAPTIONS, format_click, with_backend
from comclip.bench.count import count_detector
from comclip.cli.main import main
from comclip.errors import InputError

#: The engine's detector passes for 2 equal-size images with one prompt each: each image's part and each
#: prompt's fusion with its image — 4 at the CPU's batch size 1, 2 when both rows share each forward.
ENGINE_DETECTOR_FORWARDS = (2, 3, 4)
JSON_KEYS = {"preset", "device", "pairs", "captions_per_image", "reference", "engine", "floor", "engine_replay",
             "speedup_vs_reference", "overhead_vs_floor", "overhead_vs_engine_replay", "peak_memory_mb"}


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
        bench.check_counts(*args)


@pytest.fixture(scope="module")
def exact_result(tiny_engine):
    """Engine with PIL-rendered sub-images, exactly the reference's pixels."""
    return bench.run_bench(pairs=6, captions_per_image=3, repeats=2, engine=tiny_engine, overhead_runs=1,
                           fast_subimages=False)


def test_reference_and_engine_agree_on_every_score(exact_result):
    r = exact_result
    assert len(r.reference_scores) == len(r.engine_scores) == 6
    np.testing.assert_allclose(np.array(r.reference_scores), np.array(r.engine_scores), atol=1e-5)
    assert r.checks["max_score_diff"] < 1e-5
    assert r.checks["replay_max_rel_diff"] < 1e-5  # the replay recomputes the engine's outputs
    assert r.checks["stubbed_run_max_score_diff"] < 1e-6  # recorded outputs stand in for the right calls
    assert r.options["fast_subimages"] is False
    # ComCLIP actually changed something: the scores are not just the CLIP baseline.
    assert any(abs(a - b) > 1e-4 for a, b in r.engine_scores)


def test_reference_is_independent_of_the_engines_planning(tiny_engine):
    """The reference plans on its own: a different option on one side is seen as different scores."""
    inputs = bench.make_inputs(4, 2)
    engine, _ = bench.run_engine(tiny_engine, inputs, fast_subimages=False)
    same = bench.run_reference(tiny_engine, inputs)
    assert max(abs(a[1] - b[1]) for a, b in zip(same, engine, strict=True)) < 1e-6  # measured ~4e-8
    for change in ({"relation_text": "triple"}, {"relations": False}, {"weighting": "sum"}, {"subimage": "crop"}):
        other = bench.run_reference(tiny_engine, inputs, **change)
        assert max(abs(a[1] - b[1]) for a, b in zip(other, engine, strict=True)) > 3e-6, change  # >= 6e-6
        assert [a[0] for a in other] == pytest.approx([b[0] for b in engine], abs=1e-5)  # CLIP is unchanged


def test_reference_sub_images_follow_the_pixel_convention():
    from PIL import Image

    from comclip.bench.reference import sub_image

    image = Image.new("RGB", (10, 8), (200, 100, 50))
    out = np.asarray(sub_image(image, ((1.5, 2.0, 4.2, 3.0), (8.0, 6.0, 30.0, 30.0)), "blackout"))
    keep = np.zeros((8, 10), dtype=bool)
    keep[2:3, 1:5] = True  # floor(x0) <= x < ceil(x1)
    keep[6:8, 8:10] = True  # clipped to the image
    assert (out[keep] == (200, 100, 50)).all() and (out[~keep] == 0).all()
    assert sub_image(image, ((1.5, 2.0, 4.2, 3.0),), "crop").size == (4, 1)
    assert sub_image(image, None, "blackout") is image and sub_image(image, ((3, 3, 3, 3),), "crop") is image


def test_detector_passes_and_forward_calls(exact_result, tiny_engine):
    r = exact_result
    assert r.images == 2 and r.pairs == 6
    assert r.variants["reference"].detector_passes == 6  # one per pair
    # all captions of an image share their phrase set: one (image, prompt) unit per image, and the
    # two equal-size images share one batched forward
    engine, floor = r.forward_calls["engine"], r.forward_calls["floor"]
    assert floor["necessary_detector_units"] == floor["detector_rows"] == engine["detector_units"] == 2
    assert r.variants["engine"].detector_passes == engine["detector_forwards"] in ENGINE_DETECTOR_FORWARDS
    # one image part for both images, one text + fusion part for both units
    assert r.variants["floor"].detector_passes == floor["detector_forwards"] == 2
    assert floor["detector_image_rows"] == 2
    assert floor["image_rows"] == engine["image_rows"] and floor["image_forwards"] == 1
    # text rows: the unique texts, counted here from the inputs themselves
    inputs = bench.make_inputs(6, 3)
    texts = {c for cs in inputs.captions for c in cs}
    texts |= {e.phrase for gs in inputs.graphs for g in gs for e in g.entities}
    texts |= {rel.predicate for gs in inputs.graphs for g in gs for rel in g.relations}
    assert floor["text_rows"] == len(texts) and floor["text_forwards"] == 1
    for v in r.variants.values():
        assert len(v.seconds) == len(v.cpu_seconds) == 2


def test_timed_measures_with_the_clock_it_is_given():
    now = [10.0]

    def work():
        now[0] += 2.5
        return "out"

    wall, cpu, out = bench.timed(torch.device("cpu"), work, clock=lambda: now[0], cpu_clock=lambda: now[0] * 2)
    assert (wall, cpu, out) == (2.5, 5.0, "out")


def test_variant_timing_and_ratios_from_known_times():
    t = bench.VariantTiming("engine", pairs=4, seconds=[2.0, 4.0, 3.0], cpu_seconds=[1.0, 1.0, 2.0])
    d = t.to_dict()
    assert (d["ms_per_pair"], d["ms_per_pair_min"], d["ms_per_pair_max"]) == (750.0, 500.0, 1000.0)
    assert d["pairs_per_s"] == pytest.approx(4 / 3.0, abs=1e-4) and d["cpu_ms_per_pair"] == 250.0
    variants = {name: bench.VariantTiming(name, 4, seconds=[s], cpu_seconds=[c])
                for name, s, c in (("reference", 12.0, 8.0), ("engine", 3.0, 2.0), ("floor", 2.5, 1.6),
                                   ("engine_replay", 2.0, 1.0))}
    result = bench.BenchResult(
        preset="p", device="cpu", hardware="h", images=1, pairs=4, captions_per_image=4, repeats=1,
        variants=variants, engine_stages_ms={}, floor_parts_ms={"detector": 1.0, "image": 2.0, "text": 3.0},
        replay_parts_ms={}, peak_memory_mb={"cpu_rss": 1.0, "cuda_max_allocated": None},
        forward_calls={"floor": {f"{k}_{n}": 1 for k in ("detector", "image", "text") for n in ("rows", "forwards")},
                       "engine": {}},
        checks={"max_score_diff": 0.0, "replay_max_rel_diff": 0.0})
    assert result.speedup_vs_reference == 4.0 and result.overhead_vs_floor == 1.2
    assert result.cpu_time_ratios() == {"speedup_vs_reference": 4.0, "overhead_vs_floor": 1.25,
                                        "overhead_vs_engine_replay": 2.0}
    d = result.to_dict()
    assert d["overhead_vs_engine_replay"] == 1.5 and d["floor"]["ms_per_pair"] == 625.0
    assert "4.00x" in result.format() and "1.200x" in result.format()


def test_result_dict_and_table(exact_result):
    d = exact_result.to_dict()
    assert JSON_KEYS <= set(d)
    json.dumps(d)
    assert [d[name]["runs_s"] for name in bench.VARIANTS] == [
        [round(s, 4) for s in exact_result.variants[name].seconds] for name in bench.VARIANTS]
    assert d["peak_memory_mb"]["cpu_rss"] > 0 and d["peak_memory_mb"]["cuda_max_allocated"] is None
    assert {"ground", "encode_images", "encode_texts", "total"} <= set(d["engine_stages_ms"])
    assert set(d["floor_parts_ms"]) == set(d["replay_parts_ms"]) == {"detector", "image", "text"}
    o = d["engine_overhead"]
    assert {"ground", "total"} <= set(o["stages_ms"])
    table = exact_result.format()
    for word in ("reference", "engine", "floor", "engine_replay", "speedup vs reference", "overhead vs floor",
                 "peak memory"):
        assert word in table


def test_recording_leaves_the_models_untouched(tiny_engine):
    det, enc_model = tiny_engine.detector, tiny_engine.encoder.model
    inputs = bench.make_inputs(2, 2)
    assert det.backend == "torch"  # its forwards: the image part, the text part and the fusion
    with bench.record_forwards(tiny_engine) as rec:
        assert {"image_forward", "text_forward", "fuse"} <= set(det.__dict__)
        bench.run_engine(tiny_engine, inputs)
    assert not {"image_forward", "text_forward", "fuse"} & set(det.__dict__)
    assert not {"encode_image", "encode_text"} & set(enc_model.__dict__)
    assert (rec.counts()["detector"], rec.counts()["detector_text"]) == (2, 1)  # image part + fusion; BERT
    eager = with_backend(tiny_engine, "transformers")  # the same models, the detector's own forward
    with bench.record_forwards(eager) as rec_model:
        assert "forward" in det.model.__dict__
        bench.run_engine(eager, inputs)
    assert "forward" not in det.model.__dict__ and det.backend == "torch"
    assert (rec_model.counts()["detector"], rec_model.counts()["detector_text"]) == (1, 0)
    _, diff = rec.replay(torch.device("cpu"), compare=True)
    assert diff < 1e-5


def test_stubbed_forwards_replace_the_models_and_notice_a_different_run(tiny_engine):
    one, two = bench.make_inputs(2, 2), bench.make_inputs(4, 2, seed=5)
    with bench.record_forwards(tiny_engine) as rec:
        expected, _ = bench.run_engine(tiny_engine, one)
    with bench.stub_forwards(tiny_engine, rec):
        got, _ = bench.run_engine(tiny_engine, one)
    assert got == expected
    assert "forward" not in tiny_engine.detector.model.__dict__
    with pytest.raises(RuntimeError, match="did not make|fewer"), bench.stub_forwards(tiny_engine, rec):
        bench.run_engine(tiny_engine, two)  # more texts and sub-images than recorded


def test_engine_runs_do_the_same_work_every_time(tiny_engine):
    inputs = bench.make_inputs(2, 2)
    bench.run_engine(tiny_engine, inputs)
    for _ in range(2):
        with count_detector(tiny_engine.detector) as counted, bench.record_forwards(tiny_engine) as rec:
            bench.run_engine(tiny_engine, inputs)
        # detections are not served from a cache, nor the detector's image and text parts
        assert (counted.image_parts, counted.text_parts, counted.fusions) == (1, 1, 1)
        assert rec.counts()["text"] >= 1  # nor text embeddings


def test_cli_json(tiny_engine, capsys):
    # tiny_engine: makes sure the tiny models are built and cached before the CLI loads them.
    code = main(["bench", "--preset", "tiny", "--device", "cpu", "--pairs", "4", "--captions-per-image", "2",
                 "--repeats", "1", "--overhead-runs", "1", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    d = json.loads(out.strip().splitlines()[-1])
    assert JSON_KEYS <= set(d)
    assert (d["preset"], d["device"], d["pairs"], d["captions_per_image"]) == ("tiny", "cpu", 4, 2)
    assert d["reference"]["detector_forward_passes"] == 4
    assert d["floor"]["detector_forward_passes"] == 2  # the image part and the text + fusion part
    assert d["engine"]["detector_forward_passes"] in ENGINE_DETECTOR_FORWARDS
    assert d["forward_calls"]["engine"]["detector_units"] == 2
    assert d["options"]["fast_subimages"] is True
    # The engine's default (fast) sub-images agree with the PIL path within the engine's tested tolerance.
    assert d["checks"]["max_score_diff"] < 2e-3


def _numbers(d: dict) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in d.values())


def test_cli_click_warm_json(tiny_engine, capsys):
    """``bench --click --warm``: a first click and a second one (same image, new captions) per detector
    path, every timing a number; the second click reuses the image part (no backbone run) and its boxes
    equal the same request's on empty caches."""
    code = main(["bench", "--click", "--warm", "--preset", "tiny", "--device", "cpu", "--repeats", "1", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    d = json.loads(out.strip().splitlines()[-1])
    assert (d["preset"], d["device"]) == ("tiny", "cpu")
    assert d["captions"] == list(CLICK_CAPTIONS)
    assert d["second_captions"] == list(SECOND_CAPTIONS)
    assert [(r["backend"], r["click"]) for r in d["runs"]] == [("torch", "first"), ("torch", "second"),
                                                               ("transformers", "first"), ("transformers", "second")]
    for r in d["runs"]:
        assert _numbers({k: r[k] for k in ("wall_s", "cpu_s", "detector_passes")}) and r["wall_s"] > 0
        assert len(r["wall_s_runs"]) == 1 and _numbers(dict(enumerate(r["wall_s_runs"])))
        assert {"ground", "total"} <= set(r["stages_ms"]) and _numbers(r["stages_ms"])
        assert _numbers(r["detector_blocks_ms"]) and _numbers(r["detector_forwards"])
        assert ("second_click_vs_cold" in r) == (r["click"] == "second")
    torch_first, torch_second = d["runs"][0]["detector_forwards"], d["runs"][1]["detector_forwards"]
    assert (torch_first["image_parts"], torch_first["text_parts"], torch_first["fusions"]) == (1, 1, 1)
    assert (torch_second["image_parts"], torch_second["text_parts"], torch_second["fusions"]) == (0, 1, 1)
    for r in d["runs"][1::2]:
        check = r["second_click_vs_cold"]
        assert _numbers(check) and check["max_box_diff_px"] == 0.0 and check["max_score_diff"] < 1e-6
    assert _numbers(d["agreement_vs_transformers"]) and isinstance(d["speedup_vs_transformers"], float)
    assert isinstance(d["peak_rss_mb"], float)
    text = format_click(d)  # what the command prints without --json
    assert text.count("first click: wall") == 2 and text.count("second click: wall") == 2
    assert "second click vs the same request cold" in text and "vs transformers:" in text


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
    r = bench.run_bench("tiny", "cuda", pairs=4, captions_per_image=2, repeats=1, overhead_runs=1,
                        fast_subimages=False)
    d = r.to_dict()
    assert d["device"].startswith("cuda")
    assert d["peak_memory_mb"]["cuda_max_allocated"] > 0
    assert d["forward_calls"]["engine"]["detector_units"] == d["forward_calls"]["floor"]["detector_rows"] == 2
    assert d["floor"]["detector_forward_passes"] == 2  # both images' image part, both units' fusion: bf16
    assert r.checks["max_score_diff"] < 5e-3  # fp16 encoder, bf16 detector: batched vs one-by-one


def test_replay_runs_under_the_engines_autocast(tiny_engine):
    inputs = bench.make_inputs(2, 2)
    with bench.record_forwards(tiny_engine) as rec, torch.autocast("cpu", dtype=torch.bfloat16):
        bench.run_engine(tiny_engine, inputs)
    assert rec.calls and all(c.autocast == (("cpu", torch.bfloat16),) for c in rec.calls)
    _, diff = rec.replay(torch.device("cpu"), compare=True)
    assert diff < 1e-5  # the same bf16 computation, not an fp32 one


def test_floor_merges_encoder_forwards_and_counts_units(tiny_engine):
    inputs = bench.make_inputs(6, 2)  # 3 images: units (image, phrase set) = 3
    assert [u[0] for u in bench.necessary_units(inputs)] == [0, 1, 2]
    tiny_engine.encoder.batch_size = 4  # the engine makes several encoder calls ...
    try:
        with bench.record_forwards(tiny_engine) as rec:
            bench.run_engine(tiny_engine, inputs)
    finally:
        tiny_engine.encoder.batch_size = 64
    assert rec.counts()["image"] > 1 and rec.counts()["text"] > 1
    floor = bench.build_floor(tiny_engine, inputs, rec)
    counts = floor.counts()
    assert counts["image_forwards"] == counts["text_forwards"] == 1  # ... the floor one per tower
    # equal-size images: the 3 image parts in one batch, the 3 units' text + fusion parts in another
    assert counts["detector_rows"] == counts["detector_image_rows"] == 3 and counts["detector_forwards"] == 2
    image_rows = sum(c.args[0].shape[0] for c in rec.calls if c.kind == "image")
    assert counts["image_rows"] == image_rows
    assert set(floor.run()) == {"detector", "image", "text"}


def test_bench_on_a_multi_query_encoder(cache_dir):
    """tiny-blip2 (BLIP-2's per-query image rows): the bench runs, its own per-query NumPy reference agrees
    with the engine (measured ~3e-8; tolerance 1e-5), and the floor and replay handle (N, Q, D_q) rows."""
    import comclip

    engine = comclip.load("tiny-blip2", device="cpu", parser="rules")
    assert engine.encoder.multi_query
    r = bench.run_bench(pairs=3, captions_per_image=3, repeats=1, engine=engine, overhead_runs=1)
    assert len(r.reference_scores) == len(r.engine_scores) == 3
    np.testing.assert_allclose(np.array(r.reference_scores), np.array(r.engine_scores), atol=1e-5)
    assert r.checks["max_score_diff"] < 1e-5
    assert r.checks["replay_max_rel_diff"] < 1e-5
    assert r.checks["stubbed_run_max_score_diff"] < 1e-6
    assert any(abs(a - b) > 1e-6 for a, b in r.engine_scores)  # the composition changed the scores
    calls = r.forward_calls
    assert calls["engine"]["image_forwards"] >= 1 and calls["engine"]["text_forwards"] >= 1
    assert calls["floor"]["image_rows"] == calls["engine"]["image_rows"] > 0
    # The recorded image forwards are the per-query features, and the sum weighting agrees as well.
    inputs = bench.make_inputs(2, 2)
    with bench.record_forwards(engine) as rec:
        engine_scores, _ = bench.run_engine(engine, inputs, weighting="sum")
    enc = engine.encoder
    assert all(c.output.shape[1:] == (enc.num_queries, enc.query_dim) for c in rec.calls if c.kind == "image")
    ref = bench.run_reference(engine, inputs, weighting="sum")
    np.testing.assert_allclose(np.array(ref), np.array(engine_scores), atol=1e-5)
