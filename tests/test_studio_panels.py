"""What an answer shows in the page's panels (comclip.studio.panels): downloads per request, panels
drawn once per answer and kept with it."""

from __future__ import annotations

import json

import pytest

from comclip.options import Options
from comclip.studio import panels, presentation, viz
from comclip.studio.events import Studio
from comclip.studio.panels import PageState

from .conftest import EXAMPLE_IMAGE

MUG = "a mug in some grass\nsome grass in a mug"


@pytest.fixture
def studio(tiny_engine, tmp_path, monkeypatch):
    monkeypatch.setattr(presentation, "DOWNLOADS", tmp_path)
    return Studio.create(tiny_engine)


def form(**changes) -> dict:
    values = {"image": str(EXAMPLE_IMAGE), "captions": MUG, "true_caption": None, "preset": "tiny", "state": None,
              **{f.name: f.default for f in Options.fields()}, "box_threshold": 0.3, "text_threshold": 0.25}
    return {**values, **changes}


def _download(panel: dict) -> dict:
    with open(panel["value"], encoding="utf-8") as f:
        return json.load(f)


def test_an_edited_graphs_download_is_its_own(studio):
    """The same image, captions and options scored with an edited graph and without: two requests, two
    download folders (they used to share one, so one answer's JSON could overwrite the other's)."""
    parsed = studio.score(form())
    graph = '{"entities": [{"id": "e0", "name": "mug", "attributes": ["white"]}], "relations": []}'
    edited = studio.edit_graph(form(graph_json=graph, selector=0, state=parsed["state"]))
    assert edited["download_json"]["value"] != parsed["download_json"]["value"]
    assert _download(parsed["download_json"])["captions"][0]["components"][0]["text"] == "mug"
    assert _download(edited["download_json"])["captions"][0]["components"][0]["text"] == "white mug"


def test_an_answer_shown_again_is_not_drawn_again(studio, monkeypatch):
    """The pictures (graph figure, boxes, sub-images) are drawn once per answer and caption."""
    drawn = []
    figure = viz.graph_figure
    monkeypatch.setattr(viz, "graph_figure", lambda *a: drawn.append(a) or figure(*a))
    first = studio.score(form(captions="a red mug\na blue mug"))
    again = studio.score(form(captions="a red mug\na blue mug"))  # served from the cache, with its panels
    assert len(drawn) == 1 and again["graph"] == first["graph"]
    studio.select({"selector": 1, "state": again["state"]})  # another caption inside out: drawn once
    studio.select({"selector": 1, "state": again["state"]})
    assert len(drawn) == 2


def test_a_new_answer_keeps_the_inspected_caption(studio):
    state = studio.score(form())["state"]
    state = studio.select({"selector": 1, "state": state})["state"]
    out = panels.shown(state.answer, None, state)
    assert out["selector"]["value"] == 1 and out["state"].selected == "some grass in a mug"
    fresh = panels.shown(state.answer, "some grass in a mug", PageState())
    assert fresh["selector"]["value"] == 1  # nothing inspected yet: the true caption
