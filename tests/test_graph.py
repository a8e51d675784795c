"""SceneGraph: JSON in/out, phrases, and one clear GraphError for every malformed input."""

from __future__ import annotations

import json
from typing import Any

import pytest

from comclip.errors import GraphError, InputError
from comclip.graph import GRAPH_JSON_SCHEMA, Entity, Relation, SceneGraph

DOC: dict[str, Any] = {
    "caption": "a young person sits on a bench",
    "entities": [
        {"id": "e0", "name": "person", "attributes": ["young"]},
        {"id": "e1", "name": "bench", "attributes": []},
    ],
    "relations": [{"subject": "e0", "predicate": "sit on", "object": "e1"}],
}


def test_round_trip_dict_and_json() -> None:
    graph = SceneGraph.from_dict(DOC)
    assert graph.to_dict() == DOC
    assert SceneGraph.from_json(graph.to_json()) == graph
    assert json.loads(graph.to_json(indent=2)) == DOC
    assert graph.entities == (Entity("e0", "person", ("young",)), Entity("e1", "bench", ()))
    assert graph.relations == (Relation("e0", "sit on", "e1"),)


def test_phrases_and_triples() -> None:
    graph = SceneGraph.from_dict(DOC)
    assert graph.entity("e0").phrase == "young person"
    assert graph.triple_text(graph.relations[0]) == "young person sit on bench"
    intransitive = Relation("e0", "sit")
    assert graph.triple_text(intransitive) == "young person sit"
    with pytest.raises(GraphError, match="no entity with id 'e9'"):
        graph.entity("e9")


def test_optional_fields_and_caption_fallback() -> None:
    graph = SceneGraph.from_dict(
        {"entities": [{"id": "e0", "name": " dog "}], "relations": [{"subject": "e0", "predicate": " run "}]},
        caption="a dog runs",
    )
    assert graph.caption == "a dog runs"
    assert graph.entities == (Entity("e0", "dog", ()),)
    assert graph.relations == (Relation("e0", "run", None),)
    assert graph.to_dict()["relations"] == [{"subject": "e0", "predicate": "run", "object": None}]


def test_empty_graph_is_valid() -> None:
    graph = SceneGraph("nothing here")
    assert graph.entities == () and graph.relations == ()
    assert SceneGraph.from_json(graph.to_json()) == graph


def _with(**changes: Any) -> dict[str, Any]:
    return {**json.loads(json.dumps(DOC)), **changes}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "a graph must be a JSON object, got list"),
        (_with(extra=1), "graph has unknown keys: extra"),
        ({"entities": [], "relations": []}, "graph is missing 'caption'"),
        (_with(caption=3), "graph 'caption' must be a string, got int"),
        (_with(entities={}), "graph 'entities' must be a list"),
        (_with(relations="e0"), "graph 'relations' must be a list"),
        (_with(entities=["dog"]), r"entities\[0\] must be an object"),
        (
            _with(entities=[{"id": "e0", "name": "x", "colour": "red"}]),
            r"entities\[0\] has unknown keys: colour",
        ),
        (_with(entities=[{"id": "e0"}], relations=[]), r"entities\[0\] needs a string 'name'"),
        (_with(entities=[{"id": 0, "name": "dog"}], relations=[]), r"entities\[0\] needs a string 'id'"),
        (
            _with(entities=[{"id": "e0", "name": "dog", "attributes": "red"}], relations=[]),
            r"entities\[0\] 'attributes' must be a list of strings",
        ),
        (
            _with(entities=[{"id": "e0", "name": "dog", "attributes": [""]}], relations=[]),
            "entity 'e0' has an empty or non-string attribute",
        ),
        (
            _with(entities=[{"id": "e0", "name": "  "}], relations=[]),
            "entity 'e0' has an empty or non-string 'name'",
        ),
        (
            _with(entities=[{"id": "", "name": "dog"}], relations=[]),
            r"entities\[0\] has an empty or non-string 'id'",
        ),
        (
            _with(entities=[{"id": "e0", "name": "a"}, {"id": "e0", "name": "b"}], relations=[]),
            "entity id 'e0' is used twice",
        ),
        (_with(relations=[["e0", "on", "e1"]]), r"relations\[0\] must be an object"),
        (
            _with(relations=[{"subject": "e0", "predicate": "on", "obj": "e1"}]),
            r"relations\[0\] has unknown keys: obj",
        ),
        (_with(relations=[{"subject": "e0"}]), r"relations\[0\] needs a string 'predicate'"),
        (
            _with(relations=[{"subject": "e0", "predicate": " "}]),
            r"relations\[0\] has an empty or non-string 'predicate'",
        ),
        (
            _with(relations=[{"subject": "e5", "predicate": "on"}]),
            r"relations\[0\] names subject 'e5', which is not an entity id",
        ),
        (
            _with(relations=[{"subject": "e0", "predicate": "on", "object": "e5"}]),
            r"relations\[0\] names object 'e5', which is not an entity id",
        ),
        (
            _with(relations=[{"subject": "e0", "predicate": "on", "object": 1}]),
            r"relations\[0\] 'object' must be a string or null",
        ),
    ],
)
def test_malformed_graphs_raise_one_graph_error(data: Any, message: str) -> None:
    with pytest.raises(GraphError, match=message) as info:
        SceneGraph.from_dict(data)
    assert isinstance(info.value, InputError)  # the CLI/app show it as a user error
    assert "\n" not in str(info.value)


def test_invalid_json_text() -> None:
    with pytest.raises(GraphError, match="graph is not valid JSON"):
        SceneGraph.from_json("{not json")


def test_direct_construction_is_validated() -> None:
    with pytest.raises(GraphError, match="names object 'e1'"):
        SceneGraph("c", (Entity("e0", "dog"),), (Relation("e0", "on", "e1"),))
    with pytest.raises(GraphError, match=r"entities\[0\] must be an Entity, got dict"):
        SceneGraph("c", ({"id": "e0", "name": "dog"},))  # type: ignore[arg-type]
    with pytest.raises(GraphError, match=r"relations\[0\] must be a Relation, got tuple"):
        SceneGraph("c", (Entity("e0", "dog"),), (("e0", "on", None),))  # type: ignore[arg-type]
    with pytest.raises(GraphError, match="graph 'caption' must be a string"):
        SceneGraph(None)  # type: ignore[arg-type]


def test_lists_become_tuples_and_graph_is_hashable() -> None:
    graph = SceneGraph("c", [Entity("e0", "dog")], [Relation("e0", "run")])  # type: ignore[arg-type]
    assert isinstance(graph.entities, tuple) and isinstance(graph.relations, tuple)
    assert hash(graph) == hash(SceneGraph("c", (Entity("e0", "dog"),), (Relation("e0", "run"),)))


def test_schema_describes_the_json_form() -> None:
    assert GRAPH_JSON_SCHEMA["required"] == ["caption", "entities", "relations"]
    entity = GRAPH_JSON_SCHEMA["properties"]["entities"]["items"]
    relation = GRAPH_JSON_SCHEMA["properties"]["relations"]["items"]
    assert set(entity["properties"]) == set(DOC["entities"][0])
    assert set(relation["properties"]) == set(DOC["relations"][0])
    assert relation["properties"]["object"]["type"] == ["string", "null"]
