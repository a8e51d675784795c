"""The rule-based caption parser: exact graphs for a reference set of captions, plus accuracy.

The gold graphs live in ``tests/data/parse_easy.jsonl`` (splits ``reference``, ``heldout``,
``tricky``) and ``tests/data/parse_hard.jsonl`` (``dev``, ``heldout``); docs/parsing.md states
the conventions they follow. Every ``reference`` graph must come out exactly.
"""

from __future__ import annotations

import pytest

from comclip.errors import InputError
from comclip.graph import Entity, Relation, SceneGraph
from comclip.parse import PARSERS, clear_cache, evaluate, get_parser, parse
from comclip.parse.evaluate import load_gold
from comclip.parse.rules import RulesParser, parse_rules, tokenize

from .conftest import ROOT

DATA = ROOT / "tests" / "data"
EASY = load_gold(DATA / "parse_easy.jsonl")
HARD = load_gold(DATA / "parse_hard.jsonl")

Pairs = list[tuple[str, SceneGraph]]


def _split(cases: list, split: str) -> Pairs:
    return [(c.caption, c.graph) for c in cases if c.split == split]


CASES: Pairs = _split(EASY, "reference")
HELDOUT_CASES: Pairs = _split(EASY, "heldout")
TRICKY_CASES: Pairs = _split(EASY, "tricky")
HARD_DEV: Pairs = _split(HARD, "dev")
HARD_HELDOUT: Pairs = _split(HARD, "heldout")
ALL_CAPTIONS: list[str] = [c.caption for c in EASY + HARD]


def expected_graph(
    caption: str, entities: list[str], relations: list[tuple[int, str, int | None]]
) -> SceneGraph:
    """Build a SceneGraph from the compact notation: entities "attr,attr:name" (id e<i> from the
    position), relations (subject index, predicate, object index or None)."""
    ents = []
    for i, spec in enumerate(entities):
        attrs, _, name = spec.rpartition(":")
        ents.append(Entity(f"e{i}", name, tuple(a for a in attrs.split(",") if a)))
    rels = [Relation(f"e{s}", p, None if o is None else f"e{o}") for s, p, o in relations]
    return SceneGraph(caption, tuple(ents), tuple(rels))


def test_reference_set_is_large_enough() -> None:
    assert len(CASES) >= 40 and len(HARD_DEV) >= 150 and len(HARD_HELDOUT) == 40
    assert len(set(ALL_CAPTIONS)) == len(ALL_CAPTIONS)


@pytest.mark.parametrize(("caption", "want"), CASES, ids=[c for c, _ in CASES])
def test_rules_exact_graph(caption: str, want: SceneGraph) -> None:
    assert parse_rules(caption).to_dict() == want.to_dict()


def test_accuracy_report() -> None:
    """Entity/attribute/relation P/R/F1 of the rules parser (run with -s to see the numbers).

    The floors are the issue-17 targets (relation F1 >= 0.95 on the easy sets, >= 0.90 on the hard
    development set, entity F1 >= 0.97 everywhere); the hard held-out slice, never used to write
    rules, only has a floor a little under its measured score, so that a regression shows up.
    """
    sets = {"reference": CASES, "easy held-out": HELDOUT_CASES, "tricky": TRICKY_CASES,
            "hard dev": HARD_DEV, "hard held-out": HARD_HELDOUT}
    scores = {name: evaluate(pairs, "rules") for name, pairs in sets.items()}
    for name, s in scores.items():
        print(f"\n[{name}, {len(sets[name])} captions]\n{s}")
    assert scores["reference"].exact == len(CASES)
    for name in ("reference", "easy held-out", "tricky"):
        assert scores[name].relations.f1 >= 0.95, name
    assert scores["hard dev"].relations.f1 >= 0.90
    assert scores["hard held-out"].relations.f1 >= 0.85
    assert all(s.entities.f1 >= 0.97 for s in scores.values())


def test_evaluate_counts_partial_matches() -> None:
    """evaluate() scores with multiset matching on id-free keys."""
    want = expected_graph("x", ["red:car", "road"], [(0, "on", 1)])
    got = expected_graph("x", ["car", "road"], [(0, "on", 1)])
    scores = evaluate([("x", want)], lambda caption: got)
    assert scores.entities.matched == 1 and scores.entities.predicted == 2 and scores.entities.expected == 2
    assert scores.relations.matched == 0
    assert scores.exact == 0 and scores.mismatched == ("x",)
    assert scores.entities.f1 == pytest.approx(0.5)
    perfect = evaluate([("x", want.to_dict())], lambda caption: want)
    assert perfect.exact == 1 and perfect.relations.f1 == 1.0


def test_tokenize_merges_multiword_prepositions() -> None:
    assert tokenize("A cat on the left of a dog, next to the sofa.") == [
        "a",
        "cat",
        "on the left of",
        "a",
        "dog",
        ",",
        "next to",
        "the",
        "sofa",
        ".",
    ]
    assert tokenize("the man's hat isn't red") == ["the", "man", "'s", "hat", "is", "n't", "red"]


def test_rules_keeps_caption_as_given_and_strips_frame() -> None:
    """The graph carries the caption as given (case, frame phrase and all); parsing ignores both.

    Determinism across processes (hash seeds) is checked in test_parse_layout.py.
    """
    caption = "A photo of a man wearing a black hat rides a brown horse"
    got = parse_rules(caption)
    assert got.caption == caption
    want = expected_graph(caption, ["man", "black:hat", "brown:horse"], [(0, "wear", 1), (0, "ride", 2)])
    assert got == want


@pytest.mark.parametrize("caption", ["", "   ", "\n\t"])
def test_rules_rejects_empty_caption(caption: str) -> None:
    with pytest.raises(InputError, match="caption is empty"):
        RulesParser()(caption)


def test_caption_without_entities_gives_empty_graph() -> None:
    graph = parse_rules("very quickly, and then")
    assert graph.entities == () and graph.relations == ()


def test_public_api_names_and_errors() -> None:
    assert PARSERS == ("auto", "rules", "spacy", "llm")
    with pytest.raises(InputError, match=r"^unknown parser 'x'; choose one of: auto, rules, spacy, llm$"):
        get_parser("x")
    with pytest.raises(InputError, match="caption is empty"):
        parse("  ", "rules")
    with pytest.raises(InputError, match="unknown parser"):
        parse("a dog", "nope")
    with pytest.raises(InputError, match="caption must be a string"):
        parse(None, "rules")  # type: ignore[arg-type]


def test_get_parser_caches_instances() -> None:
    clear_cache()
    rules = get_parser("rules")
    assert rules.name == "rules" and get_parser(" Rules ") is rules
    assert parse("a dog chases a cat", "rules") == parse_rules("a dog chases a cat")
    assert rules("a cat").entities[0].name == "cat" and repr(rules) == "RulesParser()"
