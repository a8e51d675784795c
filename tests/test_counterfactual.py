"""Counterfactual captions written from a caption's scene graph."""

import json

import pytest

from comclip.graph import Entity, Relation, SceneGraph
from comclip.studio.counterfactuals import (
    counterfactuals,
    find_mentions,
    graph_to_text,
    swap_attributes,
    swap_subject_object,
)

from .conftest import ASSETS


def graph(caption, entities, relations=()):
    ents = tuple(Entity(f"e{i}", name, tuple(attrs)) for i, (name, *attrs) in enumerate(entities))
    return SceneGraph(caption, ents, tuple(Relation(*r) for r in relations))


BALLS = graph("a red ball next to a blue box", [("ball", "red"), ("box", "blue")], [("e0", "next to", "e1")])


def test_bundled_examples_are_each_others_counterfactuals():
    """Each example's second caption is what "add counterfactual" writes from its first."""
    from comclip import parse

    for item in json.loads((ASSETS / "examples.json").read_text()):
        first, second = item["captions"][:2]
        assert second in counterfactuals(parse.parse(first, "rules")), item


def test_subject_object_swap_keeps_determiners_with_their_nouns():
    g = graph("a mug in some grass", [("mug",), ("grass",)], [("e0", "in", "e1")])
    assert swap_subject_object(g, g.relations[0]) == "some grass in a mug"
    assert swap_subject_object(BALLS, BALLS.relations[0]) == "a blue box next to a red ball"


def test_attribute_exchange():
    assert swap_attributes(BALLS, "e0", "e1") == "a blue ball next to a red box"
    assert counterfactuals(BALLS) == ["a blue box next to a red ball", "a blue ball next to a red box"]


def test_attributes_move_to_an_entity_that_had_none():
    g = graph("a red ball next to a box", [("ball", "red"), ("box",)], [("e0", "next to", "e1")])
    assert swap_attributes(g, "e0", "e1") == "a ball next to a red box"


def test_articles_and_sentence_case_follow_the_words():
    g = graph("An old man riding a brown horse", [("man", "old"), ("horse", "brown")], [("e0", "riding", "e1")])
    assert counterfactuals(g) == ["A brown horse riding an old man", "A brown man riding an old horse"]


def test_quantities_stay_put_when_attributes_are_exchanged():
    g = graph("Two red apples in a brown bowl", [("apples", "two", "red"), ("bowl", "brown")], [("e0", "in", "e1")])
    assert counterfactuals(g) == ["A brown bowl in two red apples", "Two brown apples in a red bowl"]


def test_plural_caption_words_match_singular_names():
    g = graph("two dogs chase a cat", [("dog",), ("cat",)], [("e0", "chase", "e1")])
    assert counterfactuals(g) == ["a cat chase two dogs"]


@pytest.mark.parametrize("g", [
    graph("a cat", [("cat",)]),
    graph("the dog sits", [("dog",)], [("e0", "sit")]),
    graph("a dog chasing a dog", [("dog",), ("dog",)], [("e0", "chase", "e1")]),  # the swap is the same caption
    graph("very quickly", []),
])
def test_nothing_to_swap(g):
    assert counterfactuals(g) == []


def test_written_from_the_graph_when_the_words_are_not_in_the_caption():
    # a parser that normalised the words ("sofa" is not written in the caption)
    g = graph("a kitten resting on a couch", [("cat", "young"), ("sofa",)], [("e0", "rest on", "e1")])
    assert find_mentions(g) is None
    assert counterfactuals(g) == ["a sofa rest on a young cat", "a cat rest on a young sofa"]
    assert graph_to_text(g) == "a young cat rest on a sofa"


def test_mentions_are_character_spans():
    m = find_mentions(BALLS)
    assert m is not None
    cap = BALLS.caption
    assert cap[m["e0"].start:m["e0"].end] == "a red ball"
    assert cap[m["e0"].attr_start:m["e0"].name_start] == "red "
    assert cap[m["e1"].start:m["e1"].end] == "a blue box"
    assert m["e0"].attributes_found and m["e1"].attributes_found
