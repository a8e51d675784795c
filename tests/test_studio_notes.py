"""Where the parser guessed: carried from the parse through the engine's result to the page, and
never into scores or the JSON a user or the API takes away."""

from __future__ import annotations

from comclip.graph import ParseNote, SceneGraph
from comclip.parse.rules import parse_rules
from comclip.studio.notes import parse_notes_html

from .conftest import ASSETS

CAPTION = "a cat watches a mug on the grass"  # "on the grass": the scene's (cat) or the mug's?


def test_notes_html_lists_each_guess_escaped() -> None:
    graph = parse_rules(CAPTION)
    assert graph.notes
    html = parse_notes_html(graph)
    assert html.startswith('<div class="legend parse-notes">') and html.count("<li>") == len(graph.notes)
    assert "“on the grass”" in html and "edit the graph if that is wrong" in html
    odd = SceneGraph(graph.caption, graph.entities, graph.relations,
                     notes=(ParseNote("attachment", "x", ("e0",), (), "<b>bold</b> & more"),))
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; more" in parse_notes_html(odd)
    assert parse_notes_html(parse_rules("a dog chases a cat")) == ""
    assert parse_notes_html(SceneGraph.from_dict(graph.to_dict())) == ""  # an edited graph: no notes


def test_engine_result_keeps_notes_but_scores_and_json_ignore_them(tiny_engine) -> None:
    image = ASSETS / "examples" / "mug_in_grass.png"
    parsed = tiny_engine.match(image, [CAPTION]).captions[0]
    assert parsed.graph.notes == parse_rules(CAPTION).notes
    assert "notes" not in parsed.to_dict()["graph"]
    plain = tiny_engine.match(image, [CAPTION], [parse_rules(CAPTION).to_dict()]).captions[0]
    assert plain.graph.notes == ()  # a graph given as JSON (the editor, the API) has none
    assert plain.comclip_score == parsed.comclip_score and plain.clip_score == parsed.clip_score
