"""The engine on the seeded tiny preset: batching, caching, grounding paths, determinism."""

import numpy as np
import pytest

from comclip.bench.count import count_detector
from comclip.boxes import WHOLE_IMAGE, Boxes, union
from comclip.components import plan_components
from comclip.engine import load
from comclip.errors import InputError
from comclip.graph import Entity, Relation, SceneGraph
from comclip.images import load_image
from comclip.options import Options

from .conftest import ASSETS, EXAMPLE_IMAGE

MUG = SceneGraph("a mug in some grass", (Entity("e0", "mug"), Entity("e1", "grass")), (Relation("e0", "in", "e1"),))
GRASS = SceneGraph("some grass in a mug", (Entity("e0", "grass"), Entity("e1", "mug")), (Relation("e0", "in", "e1"),))
CAPTIONS = [MUG.caption, GRASS.caption]


def _scores(result):
    return [(c.clip_score, c.comclip_score, [(k.similarity, k.weight, k.loo_score) for k in c.components])
            for c in result.captions]


def test_result_shape_and_components(tiny_engine):
    r = tiny_engine.match(EXAMPLE_IMAGE, CAPTIONS, [MUG, GRASS])
    assert (r.width, r.height) == (640, 480)
    assert len(r.captions) == 2
    kinds = [(c.kind, c.ref, c.text) for c in r.captions[0].components]
    assert kinds == [("entity", "e0", "mug"), ("entity", "e1", "grass"), ("relation", "r0", "in")]
    for cap in r.captions:
        assert sum(c.weight for c in cap.components) == pytest.approx(1.0, abs=1e-5)
        assert all(c.grounded and c.boxes for c in cap.components)  # the tiny preset does find boxes
        rel = cap.components[2]
        assert rel.boxes == union([cap.components[0].boxes, cap.components[1].boxes])
    clip = [c.clip_score for c in r.captions]
    comclip = [c.comclip_score for c in r.captions]
    assert clip[0] != clip[1] and comclip[0] != comclip[1]  # so "best" is decided by the scores
    assert r.best_clip == (0 if clip[0] > clip[1] else 1)
    assert r.best_comclip == (0 if comclip[0] > comclip[1] else 1)
    assert r.to_dict()["best"] == {"clip": r.best_clip, "comclip": r.best_comclip}
    assert set(r.timings_ms) >= {"parse", "ground", "subimages", "encode_images", "encode_texts", "compose", "total"}


def test_match_batch_equals_individual_matches(tiny_engine, noise_image):
    items = [(EXAMPLE_IMAGE, CAPTIONS), (noise_image, ["a red mug on a table", "two dogs"]),
             (ASSETS / "examples" / "cat_on_box.png", ["a cat sitting on a box", "a box sitting on a cat"])]
    batch = tiny_engine.match_batch(items)
    for item, got in zip(items, batch, strict=True):
        alone = tiny_engine.match(*item)
        np.testing.assert_allclose(np.array([s[:2] for s in _scores(got)]), np.array([s[:2] for s in _scores(alone)]),
                                   atol=1e-5)
        for a, b in zip(_scores(got), _scores(alone), strict=True):
            np.testing.assert_allclose(np.array(a[2]), np.array(b[2]), atol=1e-5)


def test_one_detector_pass_per_image_and_one_encoder_pass(tiny_engine, noise_image, monkeypatch):
    calls = {"images": 0, "n": 0}
    original = tiny_engine.encoder.encode_pixels

    def counting(pixels):
        calls["images"] += 1
        calls["n"] += len(pixels)
        return original(pixels)

    monkeypatch.setattr(tiny_engine.encoder, "encode_pixels", counting)
    tiny_engine.clear_caches()
    with count_detector(tiny_engine.detector) as counted:
        tiny_engine.match_batch([(EXAMPLE_IMAGE, CAPTIONS), (noise_image, CAPTIONS)], parser="rules")
    assert counted.units == 2  # one prompt per image (both captions have the phrases mug, grass)
    # each image's part once; on the CPU each prompt on its image is fused alone (batch size 1)
    assert (counted.image_parts, counted.text_parts, counted.fusions) == (2, 1, 2)
    assert calls["images"] == 1
    # per image: global + mug + grass + union(mug, grass) shared by both captions' relations = 4 at most
    assert calls["n"] <= 8
    # the same request again: detections come from the cache
    with count_detector(tiny_engine.detector) as counted:
        tiny_engine.match_batch([(EXAMPLE_IMAGE, CAPTIONS), (noise_image, CAPTIONS)], parser="rules")
    assert counted.passes == counted.text_parts == 0


def test_text_embeddings_are_cached(tiny_engine, monkeypatch):
    tiny_engine.match(EXAMPLE_IMAGE, CAPTIONS, [MUG, GRASS])
    seen = []
    original = tiny_engine.encoder.encode_texts
    monkeypatch.setattr(tiny_engine.encoder, "encode_texts", lambda texts: seen.append(list(texts)) or original(texts))
    tiny_engine.match(EXAMPLE_IMAGE, CAPTIONS, [MUG, GRASS])
    assert seen == []


def test_no_components_equals_clip(tiny_engine):
    empty = SceneGraph("hello there", (), ())
    r = tiny_engine.match(EXAMPLE_IMAGE, ["hello there"], [empty])
    assert r.captions[0].components == []
    assert r.captions[0].comclip_score == r.captions[0].clip_score


def test_ungrounded_components_use_the_whole_image(tiny_engine):
    r = tiny_engine.match(EXAMPLE_IMAGE, CAPTIONS, [MUG, GRASS], box_threshold=1.0)
    for cap in r.captions:
        for comp in cap.components:
            assert not comp.grounded and comp.boxes == WHOLE_IMAGE
            np.testing.assert_allclose(comp.image_embedding, r.global_image_embedding, atol=1e-6)


def test_softmax_and_sum_give_different_weights(tiny_engine):
    a = tiny_engine.match(EXAMPLE_IMAGE, CAPTIONS, [MUG, GRASS], weighting="softmax")
    b = tiny_engine.match(EXAMPLE_IMAGE, CAPTIONS, [MUG, GRASS], weighting="sum")
    wa = [c.weight for c in a.captions[0].components]
    wb = [c.weight for c in b.captions[0].components]
    sims = np.array([c.similarity for c in b.captions[0].components])
    np.testing.assert_allclose(wb, sims / sims.sum(), atol=1e-5)
    assert not np.allclose(wa, wb)


def test_relation_text_triple_and_no_relations(tiny_engine):
    r = tiny_engine.match(EXAMPLE_IMAGE, CAPTIONS, [MUG, GRASS], relation_text="triple")
    assert r.captions[0].components[2].text == "mug in grass"
    r = tiny_engine.match(EXAMPLE_IMAGE, CAPTIONS, [MUG, GRASS], relations=False)
    assert [c.kind for c in r.captions[0].components] == ["entity", "entity"]


def test_crop_mode_changes_subimage_embeddings(tiny_engine):
    a = tiny_engine.match(EXAMPLE_IMAGE, CAPTIONS, [MUG, GRASS], subimage="blackout")
    b = tiny_engine.match(EXAMPLE_IMAGE, CAPTIONS, [MUG, GRASS], subimage="crop")
    assert a.captions[0].clip_score == pytest.approx(b.captions[0].clip_score)
    assert not np.allclose(a.captions[0].components[0].image_embedding, b.captions[0].components[0].image_embedding)


def test_determinism_across_fresh_engines(tiny_engine):
    other = load("tiny", device="cpu", parser="rules")
    a = tiny_engine.match(EXAMPLE_IMAGE, CAPTIONS, [MUG, GRASS])
    b = other.match(EXAMPLE_IMAGE, CAPTIONS, [MUG, GRASS])
    assert _scores(a) == _scores(b)


def test_graph_dicts_are_accepted_and_validated(tiny_engine):
    r = tiny_engine.match(EXAMPLE_IMAGE, [MUG.caption], [MUG.to_dict()])
    assert r.captions[0].graph == MUG
    bad = {"caption": "x", "entities": [{"id": "e0", "name": "mug"}],
           "relations": [{"subject": "e0", "predicate": "in", "object": "e9"}]}
    with pytest.raises(InputError, match="e9"):
        tiny_engine.match(EXAMPLE_IMAGE, ["x"], [bad])


@pytest.mark.parametrize("captions, message", [([], "no captions"), (["ok", "  "], "caption 2 is empty")])
def test_bad_captions(tiny_engine, captions, message):
    with pytest.raises(InputError, match=message):
        tiny_engine.match(EXAMPLE_IMAGE, captions)


def test_bad_options(tiny_engine):
    with pytest.raises(InputError, match="weighting"):
        tiny_engine.match(EXAMPLE_IMAGE, CAPTIONS, weighting="max")
    with pytest.raises(InputError, match="unknown option"):
        tiny_engine.match(EXAMPLE_IMAGE, CAPTIONS, colour="red")
    with pytest.raises(InputError, match="between 0 and 1"):
        Options(box_threshold=2.0).validate()


def test_overlong_caption_is_flagged(tiny_engine):
    long = "a mug in some grass " * 30
    r = tiny_engine.match(EXAMPLE_IMAGE, [long], [SceneGraph(long.strip(), (Entity("e0", "mug"),), ())])
    assert r.captions[0].truncated


def test_plan_components_order():
    plans = plan_components(MUG, Options(relation_text="triple"))
    assert [(p.kind, p.text, p.entity_ids) for p in plans] == [
        ("entity", "mug", ("e0",)), ("entity", "grass", ("e1",)), ("relation", "mug in grass", ("e0", "e1"))]


def test_intransitive_relation_uses_subject_region(tiny_engine):
    g = SceneGraph("a person sits", (Entity("e0", "person"),), (Relation("e0", "sit", None),))
    r = tiny_engine.match(EXAMPLE_IMAGE, [g.caption], [g])
    ent, rel = r.captions[0].components
    assert rel.boxes == ent.boxes and rel.grounded
    np.testing.assert_allclose(rel.image_embedding, ent.image_embedding)


def test_parsed_captions_flow_through(tiny_engine):
    r = tiny_engine.match(load_image(EXAMPLE_IMAGE), ["a red mug in the green grass"])
    g = r.captions[0].graph
    assert [e.name for e in g.entities] == ["mug", "grass"]
    assert [c.text for c in r.captions[0].components][:2] == ["red mug", "green grass"]


def test_fast_subimages_match_the_pil_path_within_tolerance(tiny_engine):
    assert tiny_engine.encoder.pixel_geometry is not None
    fast = tiny_engine.match(EXAMPLE_IMAGE, CAPTIONS, [MUG, GRASS], fast_subimages=True)
    exact = tiny_engine.match(EXAMPLE_IMAGE, CAPTIONS, [MUG, GRASS], fast_subimages=False)
    for a, b in zip(fast.captions, exact.captions, strict=True):
        assert a.clip_score == pytest.approx(b.clip_score, abs=1e-6)  # the global image is not touched
        assert a.comclip_score == pytest.approx(b.comclip_score, abs=2e-3)
        for ca, cb in zip(a.components, b.components, strict=True):
            cos = float(ca.image_embedding @ cb.image_embedding)
            assert cos > 0.995, (ca.text, cos)


def test_fast_and_exact_paths_agree_on_model_pixels(tiny_engine):
    from comclip import subimage

    enc = tiny_engine.encoder
    image = load_image(EXAMPLE_IMAGE).image
    region = Boxes.drawn((250.4, 205.0, 415.2, 372.9), (20, 30, 90, 100))
    exact = enc.preprocess([subimage.blackout(image, region)])[0]
    mask = subimage.model_space_mask(region, image.width, image.height, enc.pixel_geometry)
    fast = subimage.blackout_pixels(enc.preprocess([image])[0], mask[None], enc.pixel_geometry)[0]
    diff = (exact - fast).abs()
    assert float(diff.mean()) < 0.01
    assert float((diff > 0.25).float().mean()) < 0.02  # only pixels on box borders differ noticeably


@pytest.mark.parametrize("mode", ["CMYK", "I;16", "P", "RGBA", "L", "LA"])
def test_unusual_image_modes_score_end_to_end(tiny_engine, tmp_path, mode):
    from PIL import Image

    src = Image.open(EXAMPLE_IMAGE).convert("RGB").resize((160, 120))
    if mode == "I;16":
        img = Image.fromarray((np.asarray(src.convert("L"), dtype=np.uint16) * 257), "I;16")
    else:
        img = src.convert(mode)
    path = tmp_path / ("x.jpg" if mode == "CMYK" else "x.png")
    img.save(path)
    r = tiny_engine.match(path, CAPTIONS, [MUG, GRASS])
    assert (r.width, r.height) == (160, 120)
    assert all(np.isfinite([c.clip_score, c.comclip_score]).all() for c in r.captions)
