"""Scene graphs: the shared vocabulary between parsing, grounding, the engine and the UI.

A caption is parsed into entities (a head noun phrase plus attributes) and relations
(subject, predicate, optional object). JSON form::

    {"caption": "a young person sits on a bench",
     "entities": [{"id": "e0", "name": "person", "attributes": ["young"]},
                  {"id": "e1", "name": "bench", "attributes": []}],
     "relations": [{"subject": "e0", "predicate": "sit on", "object": "e1"}]}

A parsed graph may also carry ``notes``: choices the parser had to guess ("attached 'in the
snow' to girl, not dog"), for the user to check. Notes are never compared, hashed or scored, and
``to_dict()`` leaves them out unless asked (``to_dict(notes=True)``); ``from_dict`` reads them back.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from comclip.errors import GraphError

__all__ = ["Entity", "ParseNote", "Relation", "SceneGraph", "GraphError", "GRAPH_JSON_SCHEMA"]

GRAPH_JSON_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "ComCLIP scene graph",
    "type": "object",
    "required": ["caption", "entities", "relations"],
    "additionalProperties": False,
    "properties": {
        "caption": {"type": "string"},
        "entities": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["id", "name"],
                "additionalProperties": False,
                "properties": {
                    "id": {"type": "string", "minLength": 1},
                    "name": {"type": "string", "minLength": 1},
                    "attributes": {"type": "array", "items": {"type": "string", "minLength": 1}},
                },
            },
        },
        "relations": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["subject", "predicate"],
                "additionalProperties": False,
                "properties": {
                    "subject": {"type": "string"},
                    "predicate": {"type": "string", "minLength": 1},
                    "object": {"type": ["string", "null"]},
                },
            },
        },
        "notes": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["message"],
                "additionalProperties": False,
                "properties": {
                    "kind": {"type": "string"},
                    "phrase": {"type": "string"},
                    "chosen": {"type": "array", "items": {"type": "string"}},
                    "alternatives": {"type": "array", "items": {"type": "string"}},
                    "message": {"type": "string", "minLength": 1},
                },
            },
        },
    },
}


@dataclass(frozen=True)
class Entity:
    """One entity: ``name`` is the head noun phrase without determiners or attributes."""

    id: str
    name: str
    attributes: tuple[str, ...] = ()

    @property
    def phrase(self) -> str:
        """The text used to ground and encode the entity: attributes then name."""
        return " ".join((*self.attributes, self.name))

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "attributes": list(self.attributes)}


@dataclass(frozen=True)
class Relation:
    """``subject predicate object``; ``object`` is None for intransitive predicates."""

    subject: str
    predicate: str
    object: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"subject": self.subject, "predicate": self.predicate, "object": self.object}


@dataclass(frozen=True)
class ParseNote:
    """A choice the parser guessed, for the user to check; never used in scoring.

    ``kind``: "attachment" or "pronoun"; ``phrase``: the caption's words ("in the snow");
    ``chosen`` / ``alternatives``: entity ids it went to / could have gone to; ``message``: the
    sentence shown to the user.
    """

    kind: str
    phrase: str
    chosen: tuple[str, ...]
    alternatives: tuple[str, ...]
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "phrase": self.phrase, "chosen": list(self.chosen),
                "alternatives": list(self.alternatives), "message": self.message}


@dataclass(frozen=True)
class SceneGraph:
    caption: str
    entities: tuple[Entity, ...] = ()
    relations: tuple[Relation, ...] = field(default=())
    notes: tuple[ParseNote, ...] = field(default=(), compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "entities", tuple(self.entities))
        object.__setattr__(self, "relations", tuple(self.relations))
        object.__setattr__(self, "notes", tuple(self.notes))
        self.validate()

    # -- access -----------------------------------------------------------------------------
    def entity(self, entity_id: str) -> Entity:
        for e in self.entities:
            if e.id == entity_id:
                return e
        raise GraphError(f"graph has no entity with id {entity_id!r}")

    def triple_text(self, relation: Relation) -> str:
        """``"subject predicate object"`` written with the entities' phrases."""
        parts = [self.entity(relation.subject).phrase, relation.predicate]
        if relation.object is not None:
            parts.append(self.entity(relation.object).phrase)
        return " ".join(parts)

    # -- validation -------------------------------------------------------------------------
    def validate(self) -> None:
        if not isinstance(self.caption, str):
            raise GraphError(f"graph 'caption' must be a string, got {type(self.caption).__name__}")
        ids: set[str] = set()
        for i, e in enumerate(self.entities):
            if not isinstance(e, Entity):
                raise GraphError(f"entities[{i}] must be an Entity, got {type(e).__name__}")
            if not isinstance(e.id, str) or not e.id.strip():
                raise GraphError(f"entities[{i}] has an empty or non-string 'id'")
            if e.id in ids:
                raise GraphError(f"entity id {e.id!r} is used twice")
            ids.add(e.id)
            if not isinstance(e.name, str) or not e.name.strip():
                raise GraphError(f"entity {e.id!r} has an empty or non-string 'name'")
            for a in e.attributes:
                if not isinstance(a, str) or not a.strip():
                    raise GraphError(f"entity {e.id!r} has an empty or non-string attribute")
        for i, r in enumerate(self.relations):
            if not isinstance(r, Relation):
                raise GraphError(f"relations[{i}] must be a Relation, got {type(r).__name__}")
            if not isinstance(r.predicate, str) or not r.predicate.strip():
                raise GraphError(f"relations[{i}] has an empty or non-string 'predicate'")
            if r.subject not in ids:
                raise GraphError(f"relations[{i}] names subject {r.subject!r}, which is not an entity id")
            if r.object is not None and r.object not in ids:
                raise GraphError(f"relations[{i}] names object {r.object!r}, which is not an entity id")
        for i, n in enumerate(self.notes):
            if not isinstance(n, ParseNote):
                raise GraphError(f"notes[{i}] must be a ParseNote, got {type(n).__name__}")
            unknown = [x for x in (*n.chosen, *n.alternatives) if x not in ids]
            if unknown:
                raise GraphError(f"notes[{i}] names {unknown[0]!r}, which is not an entity id")

    # -- JSON -------------------------------------------------------------------------------
    def to_dict(self, *, notes: bool = False) -> dict[str, Any]:
        """The JSON form; with ``notes=True`` also the parser's notes (a list, maybe empty)."""
        out = {
            "caption": self.caption,
            "entities": [e.to_dict() for e in self.entities],
            "relations": [r.to_dict() for r in self.relations],
        }
        if notes:
            out["notes"] = [n.to_dict() for n in self.notes]
        return out

    def to_json(self, *, notes: bool = False, **kwargs: Any) -> str:
        return json.dumps(self.to_dict(notes=notes), **kwargs)

    @classmethod
    def from_dict(cls, data: Any, *, caption: str | None = None) -> SceneGraph:
        """Build and validate a graph from its JSON form; every problem is one GraphError."""
        if not isinstance(data, dict):
            raise GraphError(f"a graph must be a JSON object, got {type(data).__name__}")
        unknown = set(data) - {"caption", "entities", "relations", "notes"}
        if unknown:
            raise GraphError(f"graph has unknown keys: {', '.join(sorted(unknown))}")
        cap = data.get("caption", caption)
        if cap is None:
            raise GraphError("graph is missing 'caption'")
        if not isinstance(cap, str):
            raise GraphError(f"graph 'caption' must be a string, got {type(cap).__name__}")
        ents_raw = data.get("entities", [])
        rels_raw = data.get("relations", [])
        if not isinstance(ents_raw, list):
            raise GraphError("graph 'entities' must be a list")
        if not isinstance(rels_raw, list):
            raise GraphError("graph 'relations' must be a list")
        entities = []
        for i, e in enumerate(ents_raw):
            if not isinstance(e, dict):
                raise GraphError(f"entities[{i}] must be an object")
            extra = set(e) - {"id", "name", "attributes"}
            if extra:
                raise GraphError(f"entities[{i}] has unknown keys: {', '.join(sorted(extra))}")
            for key in ("id", "name"):
                if not isinstance(e.get(key), str):
                    raise GraphError(f"entities[{i}] needs a string {key!r}")
            attrs = e.get("attributes", [])
            if not isinstance(attrs, list) or not all(isinstance(a, str) for a in attrs):
                raise GraphError(f"entities[{i}] 'attributes' must be a list of strings")
            entities.append(Entity(e["id"].strip(), e["name"].strip(), tuple(a.strip() for a in attrs)))
        relations = []
        for i, r in enumerate(rels_raw):
            if not isinstance(r, dict):
                raise GraphError(f"relations[{i}] must be an object")
            extra = set(r) - {"subject", "predicate", "object"}
            if extra:
                raise GraphError(f"relations[{i}] has unknown keys: {', '.join(sorted(extra))}")
            for key in ("subject", "predicate"):
                if not isinstance(r.get(key), str):
                    raise GraphError(f"relations[{i}] needs a string {key!r}")
            obj = r.get("object")
            if obj is not None and not isinstance(obj, str):
                raise GraphError(f"relations[{i}] 'object' must be a string or null")
            relations.append(Relation(r["subject"], r["predicate"].strip(), obj))
        return cls(cap, tuple(entities), tuple(relations), notes=_notes_from(data.get("notes", [])))

    @classmethod
    def from_json(cls, text: str) -> SceneGraph:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise GraphError(f"graph is not valid JSON: {exc}") from None
        return cls.from_dict(data)


def _notes_from(raw: Any) -> tuple[ParseNote, ...]:
    """Parser notes from their JSON form (see :class:`ParseNote`); every problem is one GraphError."""
    if not isinstance(raw, list):
        raise GraphError("graph 'notes' must be a list")
    notes = []
    for i, n in enumerate(raw):
        if not isinstance(n, dict) or not isinstance(n.get("message"), str) or not n["message"].strip():
            raise GraphError(f"notes[{i}] must be an object with a non-empty 'message'")
        extra = set(n) - {"kind", "phrase", "chosen", "alternatives", "message"}
        if extra:
            raise GraphError(f"notes[{i}] has unknown keys: {', '.join(sorted(extra))}")
        ids = [n.get("chosen", []), n.get("alternatives", [])]
        if not all(isinstance(x, list) and all(isinstance(v, str) for v in x) for x in ids):
            raise GraphError(f"notes[{i}] 'chosen' and 'alternatives' must be lists of entity ids")
        if not isinstance(n.get("kind", ""), str) or not isinstance(n.get("phrase", ""), str):
            raise GraphError(f"notes[{i}] 'kind' and 'phrase' must be strings")
        notes.append(ParseNote(n.get("kind", "note"), n.get("phrase", ""), tuple(ids[0]), tuple(ids[1]), n["message"]))
    return tuple(notes)
