"""Scoring a parser against reference graphs: entity and relation precision / recall / F1.

Entities are compared as ``(name, sorted attributes)``; relations as ``(subject entity,
predicate, object entity or None)`` with both ends written as entity keys, so ids do not matter.
Matching is multiset intersection per caption, summed over all captions (micro-average).

Contract: ``evaluate(cases, parser) -> ParseScores``; ``parser`` is a name looked up in
:mod:`comclip.parse.registry` or any callable; no parser module imports this one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from comclip.graph import Entity, SceneGraph
from comclip.parse.registry import get_parser

__all__ = ["PRF", "ParseScores", "entity_key", "evaluate", "relation_keys"]

EntityKey = tuple[str, tuple[str, ...]]
RelationKey = tuple[EntityKey, str, EntityKey | None]


@dataclass(frozen=True)
class PRF:
    """Counts and the derived precision, recall and F1 (0 when undefined)."""

    matched: int
    predicted: int
    expected: int

    @property
    def precision(self) -> float:
        return self.matched / self.predicted if self.predicted else 0.0

    @property
    def recall(self) -> float:
        return self.matched / self.expected if self.expected else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def __str__(self) -> str:
        return (
            f"P={self.precision:.3f} R={self.recall:.3f} F1={self.f1:.3f} "
            f"({self.matched} matched / {self.predicted} predicted / {self.expected} expected)"
        )


@dataclass(frozen=True)
class ParseScores:
    """Scores of one parser over a set of captions."""

    parser: str
    captions: int
    exact: int
    entities: PRF
    relations: PRF
    mismatched: tuple[str, ...] = ()

    def __str__(self) -> str:
        return (
            f"parser={self.parser} captions={self.captions} exact graphs={self.exact}\n"
            f"  entities:  {self.entities}\n  relations: {self.relations}"
        )


def entity_key(entity: Entity) -> EntityKey:
    """Comparison key of an entity: its name and its attributes as a sorted tuple."""
    return entity.name, tuple(sorted(entity.attributes))


def relation_keys(graph: SceneGraph) -> Counter[RelationKey]:
    """All relations of a graph as id-free keys (with multiplicity)."""
    keys: Counter[RelationKey] = Counter()
    for r in graph.relations:
        obj = entity_key(graph.entity(r.object)) if r.object is not None else None
        keys[(entity_key(graph.entity(r.subject)), r.predicate, obj)] += 1
    return keys


def _entity_keys(graph: SceneGraph) -> Counter[EntityKey]:
    return Counter(entity_key(e) for e in graph.entities)


def _as_graph(expected: SceneGraph | dict[str, Any], caption: str) -> SceneGraph:
    return expected if isinstance(expected, SceneGraph) else SceneGraph.from_dict(expected, caption=caption)


def _same(a: SceneGraph, b: SceneGraph) -> bool:
    return a.entities == b.entities and a.relations == b.relations


def evaluate(
    cases: Iterable[tuple[str, SceneGraph | dict[str, Any]]],
    parser: str | Callable[[str], SceneGraph] = "rules",
) -> ParseScores:
    """Parse every caption and score the graphs against the expected ones.

    ``cases`` are ``(caption, expected graph)`` pairs (a SceneGraph or its JSON dict);
    ``parser`` is a parser name (see ``comclip.parse.PARSERS``) or any callable.
    """
    if isinstance(parser, str):
        parser = get_parser(parser)
    name = getattr(parser, "name", getattr(parser, "__name__", "parser"))
    ent = Counter[str]()
    rel = Counter[str]()
    exact, n = 0, 0
    mismatched: list[str] = []
    for caption, expected_raw in cases:
        expected = _as_graph(expected_raw, caption)
        got = parser(caption)
        n += 1
        if _same(got, expected):
            exact += 1
        else:
            mismatched.append(caption)
        for tally, g_keys, e_keys in (
            (ent, _entity_keys(got), _entity_keys(expected)),
            (rel, relation_keys(got), relation_keys(expected)),
        ):
            tally["matched"] += sum((g_keys & e_keys).values())
            tally["predicted"] += sum(g_keys.values())
            tally["expected"] += sum(e_keys.values())
    return ParseScores(
        parser=str(name),
        captions=n,
        exact=exact,
        entities=PRF(ent["matched"], ent["predicted"], ent["expected"]),
        relations=PRF(rel["matched"], rel["predicted"], rel["expected"]),
        mismatched=tuple(mismatched),
    )
