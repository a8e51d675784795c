"""The official code's behaviours as options (docs/fidelity.md): every box, whole-image intransitives."""

import numpy as np
import pytest

from comclip.boxes import WHOLE_IMAGE, union
from comclip.graph import Entity, Relation, SceneGraph
from comclip.images import load_image
from comclip.options import Options

from .conftest import EXAMPLE_IMAGE

MUG = SceneGraph("a mug in some grass", (Entity("e0", "mug"), Entity("e1", "grass")), (Relation("e0", "in", "e1"),))
SITS = SceneGraph("a person sits", (Entity("e0", "person"),), (Relation("e0", "sit", None),))


def test_all_boxes_is_the_union_of_every_box_above_the_thresholds(tiny_engine):
    tiny_engine.clear_caches()
    r = tiny_engine.match(EXAMPLE_IMAGE, [MUG.caption], [MUG], all_boxes=True, box_threshold=0.05, text_threshold=0.05)
    one = tiny_engine.match(EXAMPLE_IMAGE, [MUG.caption], [MUG], box_threshold=0.05, text_threshold=0.05)
    found = tiny_engine.detector.detect(load_image(EXAMPLE_IMAGE).image, ["grass", "mug"], box_threshold=0.05,
                                        text_threshold=0.05, boxes_per_entity=10_000)
    mug, grass, rel = r.captions[0].components
    assert mug.boxes == found["mug"] and len(mug.boxes) > 1  # the detector's value itself, scores and all
    assert grass.boxes == found["grass"]
    assert rel.boxes == union([found["mug"], found["grass"]])
    assert len(one.captions[0].components[0].boxes) == 1
    assert r.options.all_boxes and not one.options.all_boxes


@pytest.mark.parametrize("mode", ["subject", "whole"])
def test_intransitive_relation_region(tiny_engine, mode):
    r = tiny_engine.match(EXAMPLE_IMAGE, [SITS.caption], [SITS], intransitive=mode)
    ent, rel = r.captions[0].components
    assert ent.grounded and rel.grounded
    if mode == "subject":
        assert rel.boxes == ent.boxes
        np.testing.assert_allclose(rel.image_embedding, ent.image_embedding)
    else:
        assert rel.boxes == WHOLE_IMAGE
        np.testing.assert_allclose(rel.image_embedding, r.global_image_embedding, atol=1e-6)


def test_official_options_flow_through_match(tiny_engine):
    r = tiny_engine.match(EXAMPLE_IMAGE, [MUG.caption], [MUG], **vars(Options.official()))
    c = r.captions[0]
    sims = np.array([k.similarity for k in c.components])
    np.testing.assert_allclose([k.weight for k in c.components], sims / sims.sum(), atol=1e-6)
    assert r.to_dict()["options"]["intransitive"] == "whole"


# -- the official arithmetic, restated in NumPy (eric-ai-lab/ComCLIP at 75ef16e; docs/fidelity.md) ----------
# Each function below is written from the official code's equations, not from this project's formula: it
# takes the embeddings the official script would hold (the engine's own, given back by the result) and
# computes the score as that script does. Line numbers are at the mirror's head.

def _unit(x):
    x = np.asarray(x, dtype=np.float64)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _official_weights(s):
    """helper_function.py L95-98 ``normalize_tensor_list``: each score over their plain sum."""
    s = np.asarray(s, dtype=np.float64)
    return s / s.sum()


def official_clip_winoground(t, v0, t_i, v_i, logit_scale):
    """winoground/comclip.py: ``score = logits_per_text`` of HF CLIP's normalised embeddings (L29-31);
    ``original_image_embed += score * image`` (L65-67); both sides normalised, one dot (L68-70)."""
    s = [logit_scale * float(_unit(a) @ _unit(b)) for a, b in zip(t_i, v_i, strict=True)]
    v = np.asarray(v0, np.float64) + sum(w * np.asarray(b, np.float64)
                                         for w, b in zip(_official_weights(s), v_i, strict=True))
    return float(_unit(t) @ _unit(v))


def official_clip_raw(t, v0, t_i, v_i):
    """ComVG/comclip.py L21-65 and image_retrieval/comclip.py L22-69: ``score = text_embed @ image_embed.T``
    of the OpenAI package's raw ``encode_text`` / ``encode_image`` outputs, composed raw, normalised at the end."""
    s = [float(np.asarray(a, np.float64) @ np.asarray(b, np.float64)) for a, b in zip(t_i, v_i, strict=True)]
    v = np.asarray(v0, np.float64) + sum(w * np.asarray(b, np.float64)
                                         for w, b in zip(_official_weights(s), v_i, strict=True))
    return float(_unit(t) @ _unit(v))


MUG_IMAGE = EXAMPLE_IMAGE


def _scored(engine, **options):
    return engine.match(MUG_IMAGE, [MUG.caption], [MUG], **options).captions[0]


@pytest.mark.parametrize("source", ["winoground", "vl-checklist", "comvg", "retrieval"])
def test_clip_official_sources_match_their_numpy_restatement(tiny_engine, source):
    opts = Options.official("clip", source)
    c = _scored(tiny_engine, **opts.to_dict())
    t, ti = c.text_embedding, [k.text_embedding for k in c.components]
    vi = [k.image_embedding for k in c.components]
    v0 = tiny_engine.match(MUG_IMAGE, [MUG.caption], [MUG], **opts.to_dict()).global_image_embedding
    assert len(vi) == 3
    if source in ("comvg", "retrieval"):
        assert opts.embeddings == "raw" and opts.score_scale == "dot"
        assert abs(np.linalg.norm(v0) - 1) > 1e-3  # the raw encoder output, not a unit vector
        expected = official_clip_raw(t, v0, ti, vi)
    else:
        assert opts.embeddings == "normalised"
        expected = official_clip_winoground(t, v0, ti, vi, tiny_engine.encoder.logit_scale)
    assert c.comclip_score == pytest.approx(expected, abs=1e-6)
    assert c.clip_score == pytest.approx(float(_unit(t) @ _unit(v0)), abs=1e-6)


def test_clip_raw_embeddings_are_the_encoders_outputs(tiny_engine):
    """``embeddings raw``: the global image row is open_clip's own ``encode_image`` (no normalisation)."""
    import torch

    from comclip.images import load_image

    enc = tiny_engine.encoder
    raw = tiny_engine.match(MUG_IMAGE, [MUG.caption], [MUG], embeddings="raw").global_image_embedding
    with torch.no_grad():
        own = enc.model.encode_image(enc.preprocess([load_image(MUG_IMAGE).image]))[0].float().numpy()
    np.testing.assert_allclose(raw, own, atol=1e-6)
    unit = tiny_engine.match(MUG_IMAGE, [MUG.caption], [MUG]).global_image_embedding
    np.testing.assert_allclose(unit, own / np.linalg.norm(own), atol=1e-6)


def test_clip_each_option_moves_the_score(tiny_engine):
    """On the tiny CLIP each variant changes the ComCLIP score (sizes in docs/fidelity.md)."""
    base = _scored(tiny_engine)
    moves = {
        "score_scale cosine (softmax)": _scored(tiny_engine, score_scale="cosine").comclip_score - base.comclip_score,
        "embeddings raw (sum)": (_scored(tiny_engine, weighting="sum", embeddings="raw").comclip_score
                                 - _scored(tiny_engine, weighting="sum").comclip_score),
        "score_scale dot (raw, sum)": (_scored(tiny_engine, weighting="sum", embeddings="raw", score_scale="dot")
                                       .comclip_score
                                       - _scored(tiny_engine, weighting="sum", embeddings="raw").comclip_score),
        "resize squash": _scored(tiny_engine, resize="squash").comclip_score - base.comclip_score,
    }
    for name, move in moves.items():
        assert abs(move) > 1e-5, name
    # query_norm concerns multi-query encoders only; the sum weights do not depend on a constant scale
    assert _scored(tiny_engine, query_norm="l2").comclip_score == base.comclip_score
    assert (_scored(tiny_engine, weighting="sum", score_scale="cosine").comclip_score
            == pytest.approx(_scored(tiny_engine, weighting="sum").comclip_score, abs=1e-7))


def test_squash_fast_subimages_match_the_pixel_exact_path(tiny_engine):
    fast = _scored(tiny_engine, resize="squash")
    exact = _scored(tiny_engine, resize="squash", fast_subimages=False)
    assert fast.comclip_score == pytest.approx(exact.comclip_score, abs=2e-3)
    for a, b in zip(fast.components, exact.components, strict=True):
        assert float(_unit(a.image_embedding) @ _unit(b.image_embedding)) > 0.995


# -- the evaluations' denominators ---------------------------------------------------------------------

def official_retrieval_recall(reranked, n_queries, ks=(1, 5)):
    """image_retrieval/comclip.py L80-96: a query that raised is missing from the dict (L85-86); R@1 and
    R@5 are counts over the fixed 1000 (``top_1 / 1000``): a failed query is a miss."""
    hits = {k: sum(1 for target, cands in reranked.items() if target in cands[:k]) for k in ks}
    return {k: hits[k] / n_queries for k in ks}


def official_winoground_scores(tables):
    """winoground/helper_function.py L14-27 ``scoreing``: over ``len(scores)`` — the examples that did
    not raise (comclip.py L83-88 drops them)."""
    n = len(tables)
    text = sum(t["c0_i0"] > t["c1_i0"] and t["c1_i1"] > t["c0_i1"] for t in tables)
    image = sum(t["c0_i0"] > t["c0_i1"] and t["c1_i1"] > t["c1_i0"] for t in tables)
    group = sum((t["c0_i0"] > t["c1_i0"] and t["c1_i1"] > t["c0_i1"]) and (t["c0_i0"] > t["c0_i1"]
                and t["c1_i1"] > t["c1_i0"]) for t in tables)
    return {"text_score": text / n, "image_score": image / n, "group_score": group / n}


def _retrieval_case():
    from comclip.eval.datasets.karpathy import Caption, Query, RetrievalSet

    rng = np.random.default_rng(3)
    n = 12
    names = [f"{i}.jpg" for i in range(n)]
    queries = [Query(id=f"q{i}", direction="t2i", caption=f"caption {i}", target=i) for i in range(n)]
    rs = RetrievalSet(dataset="flickr30k", source="synthetic", images="synthetic", split="test", names=names,
                      paths=[], queries=queries, captions=[Caption(id=str(i), text=f"caption {i}", image=i)
                                                           for i in range(n)], protocol="comclip")
    assert rs.directions == ("t2i",) and rs.ks == (1, 5)
    records, reranked = {}, {}
    for i, q in enumerate(queries):
        if i in (2, 7):  # these two fail (an unreadable candidate image)
            records[q.id] = {"id": q.id, "status": "failed", "direction": "t2i", "reason": "unreadable"}
            continue
        order = [int(x) for x in rng.permutation(n)[:10]]
        reranked[i] = order
        rank = order.index(i) + 1 if i in order else 11
        records[q.id] = {"id": q.id, "status": "ok", "direction": "t2i",
                         "clip": {"rank": rank}, "comclip": {"rank": rank}}
    return rs, queries, records, reranked


def test_retrieval_denominator_all_is_the_official_fixed_n():
    from comclip.eval import retrieval

    rs, queries, records, reranked = _retrieval_case()
    official = official_retrieval_recall(reranked, len(queries))
    every = retrieval.summarise(rs, queries, records, {}, 10, denominator="all")
    scored = retrieval.summarise(rs, queries, records, {}, 10)
    assert every["denominator"] == "all" and scored["denominator"] == "scored"
    for k in (1, 5):
        assert every["metrics"]["comclip"][f"t2i_R@{k}"] == pytest.approx(official[k], abs=1e-12)
        assert scored["metrics"]["comclip"][f"t2i_R@{k}"] == pytest.approx(official[k] * 12 / 10, abs=1e-12)
    assert every["n_failed"] == scored["n_failed"] == 2
    assert official[5] > 0


def test_pair_denominators_and_the_official_winoground_scoreing():
    from comclip.eval import report
    from comclip.eval.datasets import Example

    rng = np.random.default_rng(4)
    examples, records, tables = [], {}, []
    for i in range(9):
        ex = Example(id=str(i), probes=(), keys=("c0_i0", "c0_i1", "c1_i0", "c1_i1"), groups=("Object",))
        examples.append(ex)
        if i in (1, 5, 6):
            records[ex.id] = {"id": ex.id, "status": "failed", "reason": "missing image"}
            continue
        s = dict(zip(ex.keys, rng.random(4).tolist(), strict=True))
        tables.append(s)
        records[ex.id] = {"id": ex.id, "status": "ok", "clip": s, "comclip": s}
    scored = report.summarise_pairs("winoground", examples, records)
    every = report.summarise_pairs("winoground", examples, records, denominator="all")
    official = official_winoground_scores(tables)
    for name, value in official.items():
        assert scored["metrics"]["comclip"][name] == pytest.approx(value, abs=1e-12)  # dropped, as scoreing
        assert every["metrics"]["comclip"][name] == pytest.approx(value * 6 / 9, abs=1e-12)
        assert every["metrics"]["comclip"][f"{name}[Object]"] == pytest.approx(value * 6 / 9, abs=1e-12)
    assert max(official.values()) > 0


# -- the command line: --official per backbone, --official-source, explicit flags win ------------------

def _parse(*argv, dataset=None):
    import argparse

    from comclip.cli.common import add_model_options

    p = argparse.ArgumentParser()
    add_model_options(p)
    args = p.parse_args(list(argv))
    if dataset is not None:
        args.dataset = dataset
    return args


@pytest.mark.parametrize("backend, argv, dataset, expected", [
    ("open_clip", ["--official"], None, {}),
    ("hf_clip", ["--official"], "vl-checklist", {}),
    ("open_clip", ["--official"], "comvg", {"embeddings": "raw", "score_scale": "dot"}),
    ("open_clip", ["--official"], "coco", {"embeddings": "raw", "score_scale": "dot"}),
    ("slip", ["--official"], None, {"embeddings": "raw", "score_scale": "cosine", "resize": "squash"}),
    ("slip", ["--official"], "coco", {"embeddings": "raw", "score_scale": "cosine", "resize": "squash"}),
    ("blip2", ["--official"], None, {"score_scale": "cosine", "query_norm": "l2"}),
    ("blip2", ["--official"], "winoground", {"score_scale": "cosine", "query_norm": "l2"}),
    ("blip2", ["--official"], "vl-checklist", {"score_scale": "cosine"}),
    ("blip2", ["--official-source", "vl-checklist"], "winoground", {"score_scale": "cosine"}),
    ("blip2", ["--official-source", "winoground"], "vl-checklist", {"score_scale": "cosine", "query_norm": "l2"}),
    ("blip2", ["--official", "--query-norm", "none", "--score-scale", "logit"], None,
     {"score_scale": "logit", "query_norm": "none"}),
    ("slip", ["--official", "--resize", "model"], None, {"embeddings": "raw", "score_scale": "cosine",
                                                        "resize": "model"}),
])
def test_official_follows_the_backbone_and_the_source(backend, argv, dataset, expected):
    from comclip.cli.common import engine_options

    common = {"weighting": "sum", "all_boxes": True, "intransitive": "whole"}
    assert engine_options(_parse(*argv, dataset=dataset), backend) == common | expected


def test_an_official_source_the_backbone_lacks_is_refused():
    from comclip.cli.common import engine_options
    from comclip.errors import InputError

    with pytest.raises(InputError, match="no comvg script for SLIP"):
        engine_options(_parse("--official-source", "comvg"), "slip")
    assert engine_options(_parse("--resize", "squash"), "slip") == {"resize": "squash"}  # no --official


def test_eval_official_denominator_follows_the_dataset(tmp_path):
    import argparse

    from comclip.eval import cli as eval_cli

    p = argparse.ArgumentParser()
    sub = p.add_subparsers()
    eval_cli.register(sub)

    def rules(*argv):
        return eval_cli.eval_options(p.parse_args(["eval", *argv, "--data", str(tmp_path)])).denominator

    assert rules("coco") == "scored"
    assert rules("coco", "--official") == "all"
    assert rules("flickr30k", "--official", "--denominator", "scored") == "scored"
    assert rules("winoground", "--official") == "scored"
    assert rules("winoground", "--official-source", "retrieval") == "all"
    assert rules("svo", "--denominator", "all") == "all"


def test_cli_eval_retrieval_official_counts_failures_as_misses(tiny_engine, tmp_path, capsys):
    import json

    from comclip.cli.main import main

    from .eval_synth import write_karpathy

    data = write_karpathy(tmp_path / "f", "flickr30k", n_test=4, missing=(1,))
    runs = {}
    for name, extra in (("plain", []), ("official", ["--official"])):
        code = main(["eval", "flickr30k", "--data", str(data), "--protocol", "comclip", "--topk", "2", "--preset",
                     "tiny", "--device", "cpu", "--parser", "rules", "--json", "--no-progress", "--out",
                     str(tmp_path / name), *extra])
        captured = capsys.readouterr()
        assert code == 0, captured.err
        runs[name] = json.loads(captured.out.strip().splitlines()[-1])
    plain, official = runs["plain"], runs["official"]
    assert plain["n_failed"] == official["n_failed"] == 1 and plain["n_total"] == 4
    assert (plain["denominator"], official["denominator"]) == ("scored", "all")
    assert (official["options"]["embeddings"], official["options"]["score_scale"]) == ("raw", "dot")
    clip_plain, clip_official = plain["metrics"]["clip"]["t2i_R@5"], official["metrics"]["clip"]["t2i_R@5"]
    assert clip_official == pytest.approx(clip_plain * 3 / 4)  # the first stage is the same model either way
    assert "a failed one counting as a miss" in (tmp_path / "official" / "report.md").read_text()
    # the denominator only changes the report: the same folder is reported again, nothing recomputed
    lines = (tmp_path / "plain" / "examples.jsonl").read_text()
    code = main(["eval", "flickr30k", "--data", str(data), "--protocol", "comclip", "--topk", "2", "--preset", "tiny",
                 "--device", "cpu", "--parser", "rules", "--json", "--no-progress", "--out", str(tmp_path / "plain"),
                 "--denominator", "all"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    again = json.loads(captured.out.strip().splitlines()[-1])
    assert again["denominator"] == "all" and again["metrics"]["clip"] == official["metrics"]["clip"]
    assert (tmp_path / "plain" / "examples.jsonl").read_text() == lines


def test_gallery_chunks_are_keyed_by_the_resize(tmp_path):
    from comclip.eval import retrieval

    path = tmp_path / "chunk_0000000.npz"
    np.savez(path, names=np.asarray(["a.jpg"]), ok=np.asarray([True]), reasons=np.asarray([""]),
             emb=np.zeros((1, 4), np.float32), resize=np.asarray("squash"))
    assert retrieval._read_chunk(path, ["a.jpg"], "squash") is not None
    assert retrieval._read_chunk(path, ["a.jpg"], "model") is None  # encoded again, never reused
    old = tmp_path / "old.npz"  # a chunk written before the option existed: the model's own preprocessing
    np.savez(old, names=np.asarray(["a.jpg"]), ok=np.asarray([True]), reasons=np.asarray([""]),
             emb=np.zeros((1, 4), np.float32))
    assert retrieval._read_chunk(old, ["a.jpg"]) is not None and retrieval._read_chunk(old, ["a.jpg"], "squash") is None


def test_a_run_folder_from_before_the_new_options_resumes_with_their_defaults(tmp_path):
    import json

    from comclip.errors import InputError
    from comclip.eval.store import ResultStore

    sig = {"dataset": "comvg", "options": Options().to_dict()}
    ResultStore(tmp_path, sig).close()
    old = json.loads((tmp_path / "run.json").read_text())
    for name in ("score_scale", "embeddings", "query_norm", "resize"):
        del old["options"][name]
    (tmp_path / "run.json").write_text(json.dumps(old))
    ResultStore(tmp_path, sig).close()  # the defaults are what that run used: accepted
    with pytest.raises(InputError, match="different run"):
        ResultStore(tmp_path, {"dataset": "comvg", "options": Options(resize="squash").to_dict()})
