"""The official code's behaviours as options (docs/fidelity.md): every box, whole-image intransitives."""

import numpy as np
import pytest

from comclip.graph import Entity, Relation, SceneGraph
from comclip.images import load_image
from comclip.options import Options
from comclip.subimage import Region, union

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
    assert [tuple(b) for b in mug.boxes] == list(found["mug"].boxes) and len(mug.boxes) > 1
    assert [tuple(b) for b in grass.boxes] == list(found["grass"].boxes)
    assert Region(tuple(map(tuple, rel.boxes))) == union([Region(found["mug"].boxes), Region(found["grass"].boxes)])
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
        assert rel.boxes == [] and rel.box_scores == []
        np.testing.assert_allclose(rel.image_embedding, r.global_image_embedding, atol=1e-6)


def test_official_options_flow_through_match(tiny_engine):
    r = tiny_engine.match(EXAMPLE_IMAGE, [MUG.caption], [MUG], **vars(Options.official()))
    c = r.captions[0]
    sims = np.array([k.similarity for k in c.components])
    np.testing.assert_allclose([k.weight for k in c.components], sims / sims.sum(), atol=1e-6)
    assert r.to_dict()["options"]["intransitive"] == "whole"
