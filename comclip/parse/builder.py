"""A small mutable accumulator that the parse backends fill and freeze into a SceneGraph.

Contract: entity ids are "e0", "e1", ... in order of ``add_entity``; names and attributes are
stripped, an empty attribute or a repeated one is ignored; predicates have their whitespace
collapsed, and an empty predicate, a self-loop or an exact repeat of a relation is ignored.
``add_note`` records a choice the parser guessed (see :class:`comclip.graph.ParseNote`), written
with the entities' names; a repeated note is ignored. ``build(caption)`` returns a validated
SceneGraph (entities, relations and notes in insertion order).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from comclip.graph import Entity, ParseNote, Relation, SceneGraph

__all__ = ["GraphBuilder"]


@dataclass
class _Draft:
    name: str
    attributes: list[str] = field(default_factory=list)


class GraphBuilder:
    """Collects entities (ids "e0", "e1", ... in order of creation) and relations.

    Attributes and relations are de-duplicated; a relation from an entity to itself is dropped.
    """

    def __init__(self) -> None:
        self._drafts: list[_Draft] = []
        self._relations: list[Relation] = []
        self._notes: list[ParseNote] = []

    def add_entity(self, name: str, attributes: list[str] | tuple[str, ...] = ()) -> str:
        """Create an entity and return its id."""
        draft = _Draft(name.strip())
        self._drafts.append(draft)
        eid = f"e{len(self._drafts) - 1}"
        for attr in attributes:
            self.add_attribute(eid, attr)
        return eid

    def add_attribute(self, entity_id: str, attribute: str) -> None:
        """Append an attribute to an entity unless it already has it."""
        draft = self._drafts[int(entity_id[1:])]
        attr = attribute.strip()
        if attr and attr not in draft.attributes:
            draft.attributes.append(attr)

    def add_relation(self, subject: str, predicate: str, obj: str | None) -> None:
        """Record ``subject predicate obj``; exact duplicates and self-loops are ignored."""
        pred = " ".join(predicate.split())
        if not pred or subject == obj:
            return
        rel = Relation(subject, pred, obj)
        if rel not in self._relations:
            self._relations.append(rel)

    @property
    def entity_count(self) -> int:
        return len(self._drafts)

    def name(self, entity_id: str) -> str:
        return self._drafts[int(entity_id[1:])].name

    def attributes(self, entity_id: str) -> tuple[str, ...]:
        return tuple(self._drafts[int(entity_id[1:])].attributes)

    def add_note(self, kind: str, phrase: str, chosen: list[str], alternatives: list[str], why: str) -> None:
        """Record a guess: ``phrase`` went to ``chosen`` (ids) for reason ``why``; ``alternatives``
        are the ids it could have gone to."""
        if not chosen:
            return
        names = " and ".join(self.name(i) for i in chosen)
        other = " or ".join(self.name(i) for i in alternatives)
        if kind == "pronoun":
            text = f"read “{phrase}” as {names}" + (f", not {other}" if other else "")
        else:
            text = f"attached “{phrase}” to {names}" + (f", not {other}" if other else "")
        message = f"{text} ({why}) — edit the graph if that is wrong"
        note = ParseNote(kind, phrase, tuple(chosen), tuple(alternatives), message)
        if note not in self._notes:
            self._notes.append(note)

    def build(self, caption: str) -> SceneGraph:
        """Freeze into a validated SceneGraph."""
        entities = tuple(Entity(f"e{i}", d.name, tuple(d.attributes)) for i, d in enumerate(self._drafts))
        return SceneGraph(caption, entities, tuple(self._relations), notes=tuple(self._notes))
