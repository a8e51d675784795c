"""Scoring a parser against reference graphs: entity, attribute and relation precision / recall / F1.

Entities are compared as ``(name, sorted attributes)``; attributes as ``(entity name,
attribute)``; relations as ``(subject entity, predicate, object entity or None)`` with both ends
written as entity keys, so ids do not matter. Matching is multiset intersection per caption,
summed over all captions (micro-average).

Contract: ``evaluate(cases, parser) -> ParseScores``; ``parser`` is a name looked up in
:mod:`comclip.parse.registry` or any callable; no parser module imports this one.
``load_gold(path)`` reads a gold file (JSON Lines: a graph per line, plus optional ``split`` and
``family``; a bad line is one InputError naming file and line); ``evaluate_files(paths, parser)``
scores every (file, split) group, and per family with ``by_family``, parsing each caption once;
``format_report`` writes them as a table.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from comclip.errors import GraphError, InputError
from comclip.graph import Entity, SceneGraph
from comclip.parse.registry import get_parser

__all__ = [
    "PRF",
    "GoldCase",
    "ParseScores",
    "entity_key",
    "evaluate",
    "evaluate_files",
    "format_report",
    "load_gold",
    "relation_keys",
]

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
    attributes: PRF = PRF(0, 0, 0)

    def __str__(self) -> str:
        return (
            f"parser={self.parser} captions={self.captions} exact graphs={self.exact}\n"
            f"  entities:   {self.entities}\n  attributes: {self.attributes}\n  relations:  {self.relations}"
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


def _attribute_keys(graph: SceneGraph) -> Counter[tuple[str, str]]:
    return Counter((e.name, a) for e in graph.entities for a in e.attributes)


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
    att = Counter[str]()
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
            (att, _attribute_keys(got), _attribute_keys(expected)),
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
        attributes=PRF(att["matched"], att["predicted"], att["expected"]),
    )


# -- gold files ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class GoldCase:
    """One annotated caption of a gold file; ``split`` and ``family`` are bookkeeping ("" if absent)."""

    caption: str
    graph: SceneGraph
    split: str = ""
    family: str = ""


def load_gold(path: str | Path) -> list[GoldCase]:
    """Read a gold file: JSON Lines, each a scene graph plus optional "split" and "family"."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read gold file {path}: {exc}") from None
    cases = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            if not isinstance(data, dict):
                raise GraphError(f"a graph must be a JSON object, got {type(data).__name__}")
            split, family = data.pop("split", ""), data.pop("family", "")
            if not isinstance(split, str) or not isinstance(family, str):
                raise GraphError("'split' and 'family' must be strings")
            graph = SceneGraph.from_dict(data)
        except (json.JSONDecodeError, GraphError) as exc:
            raise InputError(f"gold file {path}, line {n}: {exc}") from None
        cases.append(GoldCase(graph.caption, graph, split, family))
    if not cases:
        raise InputError(f"gold file {path} has no graphs")
    return cases


def _memo(parser: Callable[[str], SceneGraph]) -> Callable[[str], SceneGraph]:
    seen: dict[str, SceneGraph] = {}

    def parse_once(caption: str) -> SceneGraph:
        if caption not in seen:
            seen[caption] = parser(caption)
        return seen[caption]

    parse_once.name = getattr(parser, "name", getattr(parser, "__name__", "parser"))  # type: ignore[attr-defined]
    return parse_once


def _groups(name: str, cases: list[GoldCase], by_family: bool) -> list[tuple[str, list[GoldCase]]]:
    out: list[tuple[str, list[GoldCase]]] = []
    for split in dict.fromkeys(c.split for c in cases):
        rows = [c for c in cases if c.split == split]
        out.append((f"{name} [{split}]" if split else name, rows))
        if by_family:
            for family in dict.fromkeys(c.family for c in rows if c.family):
                out.append((f"  {family}", [c for c in rows if c.family == family]))
    return out


def evaluate_files(
    paths: Sequence[str | Path],
    parser: str | Callable[[str], SceneGraph] = "rules",
    *,
    by_family: bool = False,
) -> list[tuple[str, ParseScores]]:
    """Scores per (file, split) — and per family under each split with ``by_family`` — in file
    order; each caption is parsed once."""
    parse_once = _memo(get_parser(parser) if isinstance(parser, str) else parser)
    results = []
    for path in paths:
        cases = load_gold(path)
        for label, rows in _groups(Path(path).name, cases, by_family):
            results.append((label, evaluate([(c.caption, c.graph) for c in rows], parse_once)))
    return results


def format_report(results: Sequence[tuple[str, ParseScores]], *, mismatches: bool = False) -> str:
    """A table: captions, exact graphs and entity / attribute / relation F1 (P, R) per group."""
    width = max([len(label) for label, _ in results] + [4])

    def cell(prf: PRF) -> str:
        if not prf.predicted and not prf.expected:
            return "-"  # nothing expected, nothing predicted: no score to give
        return f"{prf.f1:.3f} ({prf.precision:.2f}/{prf.recall:.2f})"

    head = f"{'set':<{width}}  captions  exact  entity F1 (P/R)     attribute F1 (P/R)  relation F1 (P/R)"
    lines = [head, "-" * len(head)]
    for label, s in results:
        lines.append(
            f"{label:<{width}}  {s.captions:>8}  {s.exact:>5}  {cell(s.entities):<18}  "
            f"{cell(s.attributes):<18}  {cell(s.relations)}"
        )
    if mismatches:
        for label, s in results:
            if s.mismatched and not label.startswith(" "):
                lines.append(f"\nmismatched in {label}:")
                lines.extend(f"  {c}" for c in s.mismatched)
    return "\n".join(lines)
