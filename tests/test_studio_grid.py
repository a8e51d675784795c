"""The "Two images" view without a server (comclip.studio.grid_view, its events in
comclip.studio.events, its checks in comclip.studio.checks): values in by name, panels out by name;
the grid's marks and stories; the pairing retold without a model call; the example pairs computed at
start (on ZeroGPU with the examples, in one allocation) and served at once."""

from __future__ import annotations

import html
import re
import time

import gradio as gr
import pytest

from comclip.graph import SceneGraph
from comclip.grid import GridResult, story
from comclip.options import Options
from comclip.result import CaptionResult, MatchResult
from comclip.studio import checks, events, grid_view, panels, widgets
from comclip.studio.grid_view import GRID_RESULT, GridState

from . import zerogpu
from .conftest import ASSETS

MUG = str(ASSETS / "examples" / "mug_in_grass.png")
GRASS = str(ASSETS / "examples" / "grass_in_mug.png")
CAPTIONS = "a mug in some grass\nsome grass in a mug"


@pytest.fixture(scope="module")
def studio(tiny_engine):
    return events.Studio.create(tiny_engine)


def form(**changes) -> dict:
    """The view's values for a score, by name, as the widgets hold them at start."""
    values = {"grid_captions": CAPTIONS, "grid_image_0": {"path": MUG}, "grid_image_1": {"path": GRASS},
              "grid_image_2": None, "grid_image_3": None, "grid_true_0": 0, "grid_true_1": 1, "grid_true_2": None,
              "grid_true_3": None, "grid_count": 2, "preset": "tiny",
              **{f.name: f.default for f in Options.fields()}, "box_threshold": 0.3, "text_threshold": 0.25}
    return {**values, **changes}


def _result(rows: list[list[tuple[float, float]]], captions: list[str]) -> list[MatchResult]:
    """One MatchResult per image: (clip, comclip) per caption."""
    return [MatchResult(image_path=None, width=10, height=10, preset="tiny", models={"random_weights": True},
                        options=Options(), logit_scale=100.0, timings_ms={},
                        captions=[CaptionResult(caption=t, clip_score=a, comclip_score=b, graph=SceneGraph(t),
                                                components=[]) for t, (a, b) in zip(captions, row, strict=True)])
            for row in rows]


def _text(html: str) -> str:
    return re.sub(r"<[^>]+>", "", html)


# -- scoring ----------------------------------------------------------------------------------------

def test_a_score_fills_every_grid_panel_with_the_grids_numbers(studio, tiny_engine):
    out = studio.score_grid(form())
    assert set(out) == set(GRID_RESULT)
    assert "Scored 2 images × 2 captions" in out["grid_status"]
    state = out["grid_state"]
    assert isinstance(state, GridState) and state.pairing == (0, 1) and state.cell == (0, 0)
    want = tiny_engine.match_grid([MUG, GRASS], CAPTIONS.splitlines())
    grid = grid_view.grid_of(state.answer, state.pairing)
    for m in ("clip", "comclip"):
        for got_row, want_row in zip(grid.scores(m), want.scores(m), strict=True):
            assert got_row == pytest.approx(want_row, abs=1e-6)
    scores = out["grid_scores"]
    assert scores.count('<td class="cell') == 4 and scores.count("cell true") == 2
    assert f"{want.clip[1][0]:.4f}" in scores and f"{want.comclip[0][1]:.4f}" in scores
    for m in ("clip", "comclip"):  # each method's sentence is the grid's own story, images numbered from 1
        assert _text(story(want, m, ["image 1", "image 2"])).replace('"', "") in \
            _text(out["grid_story"]).replace("“", "").replace("”", "")
    assert out["grid_story"].count("✓ won") + out["grid_story"].count("✗ lost") == 6
    assert "Image 1</b> with <b>caption 1" in out["grid_cell"]
    assert out["grid_gallery"].count("<figure") == 3  # mug, grass and "in"


def test_a_bad_request_changes_only_the_status(studio):
    for values, words in [(form(grid_captions="a mug in some grass"), "at least 2"),
                          (form(grid_image_1=None), "Add image 2 first"),
                          (form(grid_true_1=0), "Images 1 and 2 both have caption 1"),
                          (form(grid_captions="a mug\nsome grass\na cup", grid_count=3, grid_image_2={"path": MUG},
                                grid_true_2=5), "Image 3's true caption is caption 6, but there are 3"),
                          (form(grid_image_1={"path": __file__}), "Image 2: ")]:
        out = studio.score_grid(values)
        assert list(out) == ["grid_status"] and words in html.unescape(out["grid_status"]), out


def test_a_cell_selected_shows_that_image_and_caption_inside_out(studio):
    state = studio.score_grid(form())["grid_state"]
    out = studio.select_cell({"grid_cell_index": [1, 0], "grid_state": state})
    assert out["grid_state"].cell == (1, 0) and "Image 2</b> with <b>caption 1" in out["grid_cell"]
    assert "not its true caption (that is caption 2)" in out["grid_cell"]
    assert 'class="cell selected"' in out["grid_scores"] and 'data-i="1" data-j="0" aria-pressed="true"' in \
        out["grid_scores"]
    # the single-image view's own panels, for image 2's result
    single = panels.inspector(state.answer, 0, image=1)
    assert out["grid_loo"] == single["loo"] and out["grid_gallery"] == single["gallery"]
    assert single["loo"] != panels.inspector(state.answer, 0, image=0)["loo"]  # another image: other numbers
    assert studio.select_cell({"grid_cell_index": [5, 0], "grid_state": state}) == {}
    assert studio.select_cell({"grid_cell_index": [0, 0], "grid_state": GridState()}) == {}


def test_swapping_the_pairing_retells_the_story_without_a_model_call(studio):
    state = studio.score_grid(form())["grid_state"]
    computed = studio.service.cache.computed
    out = studio.swap_pairing({"grid_true_0": 0, "grid_true_1": 1, "grid_true_2": None, "grid_true_3": None,
                               "grid_count": 2, "grid_state": state})
    assert (out["grid_true_0"], out["grid_true_1"]) == (1, 0) and out["grid_state"].pairing == (1, 0)
    assert 'class="cell true"><button type="button" data-i="0" data-j="1"' in out["grid_scores"]
    swapped = GridResult(tuple(state.answer.results), (1, 0))
    assert _text(story(swapped, "clip", ["image 1", "image 2"]))[:20].replace('"', "“") in _text(out["grid_story"])
    assert studio.service.cache.computed == computed
    bad = studio.grid_pairing({"grid_true_0": 1, "grid_true_1": 1, "grid_count": 2, "grid_state": state})
    assert list(bad) == ["grid_status"] and "both have caption 2" in bad["grid_status"]


# -- the grid's marks and words ---------------------------------------------------------------------

def test_the_grid_marks_picks_true_pairs_and_ties():
    captions = ["a mug in some grass", "some grass in a mug"]
    # CLIP: both captions prefer image 1 (column picks) and image 1 picks caption 1; image 2 is a tie.
    results = _result([[(0.30, 0.30), (0.20, 0.10)], [(0.25, 0.20), (0.25, 0.40)]], captions)
    grid = GridResult(tuple(results), (0, 1))
    cells = [grid_view._cell(grid, i, j, False) for i in range(2) for j in range(2)]
    clip_marks = [re.search(r"CLIP</span> <span class=\"v\">[\d.]+</span><span class=\"marks\">([★▲]*)", c)[1]
                  for c in cells]
    assert clip_marks == ["★▲", "", "", "▲"]  # image 2's tie picks no caption; caption 2's column picks image 2
    com_marks = [re.search(r"ComCLIP</span> <span class=\"v\">[\d.]+</span><span class=\"marks\">([★▲]*)", c)[1]
                 for c in cells]
    assert com_marks == ["★▲", "", "", "★▲"]
    assert ["cell true" in c for c in cells] == [True, False, False, True]
    assert grid_view.cell_html(grid, 1, 1).endswith('<span class="tag">true pair</span></p>')


def test_the_story_for_a_bigger_grid_counts_ranks():
    captions = ["a", "b", "c"]
    results = _result([[(0.3, 0.3), (0.2, 0.2), (0.1, 0.1)], [(0.1, 0.1), (0.3, 0.1), (0.2, 0.3)]], captions)
    grid = GridResult(tuple(results), (0, 2))
    answer = type("A", (), {"result": results[0], "from_cache": True, "notices": ["Image 2: downscaled"]})()
    shown = grid_view.story_html(answer, grid)
    assert "Winoground" not in shown and "ranked first" in shown
    # CLIP ranks image 1's true caption first (not image 2's), and both paired captions' true images first
    assert "<th>CLIP</th><td>1 of 2</td><td>2 of 2</td>" in shown
    assert "<th>ComCLIP</th><td>2 of 2</td><td>2 of 2</td>" in shown
    assert "2 images × 3 captions scored from cache" in shown and "<li>Image 2: downscaled</li>" in shown


def test_the_pairing_menus_and_the_image_slots():
    menus = grid_view.pairing_menus(["a", "b", "c"], [2, None, 7, None])
    assert [menus[f"grid_true_{k}"]["value"] for k in range(4)] == [2, 1, 2, None]
    assert menus["grid_true_0"]["choices"] == [("1. a", 0), ("2. b", 1), ("3. c", 2)]
    more = events.more_images({"grid_count": 2})
    assert more["grid_count"] == 3 and more["grid_slot_2"]["visible"] and not more["grid_slot_3"]["visible"]
    assert more["grid_fewer"]["visible"] and more["grid_more"]["visible"]
    assert events.more_images({"grid_count": 4})["grid_more"]["visible"] is False
    fewer = events.fewer_images({"grid_count": 3})
    assert fewer["grid_count"] == 2 and fewer["grid_image_2"] is None and fewer["grid_fewer"]["visible"] is False
    assert events.fewer_images({"grid_count": 2})["grid_count"] == 2


def test_checks_number_images_and_keep_the_api_zero_based(tmp_path):
    bad = tmp_path / "b.png"
    bad.write_text("no")
    with pytest.raises(Exception, match=r"^Image 2: .*“b.png”"):
        checks.prepare_images([MUG, str(bad)])
    request, pairing = checks.grid_request([MUG, GRASS], ["x y", "y x"], "[1, 0]", {}, "tiny", ["tiny"])
    assert pairing == (1, 0) and len(request.images) == 2 and request.captions == ("x y", "y x")
    with pytest.raises(Exception, match="numbered 0 to 1"):
        checks.grid_request([MUG, GRASS], ["x y", "y x"], [0, 2], {}, "tiny", ["tiny"])


def test_every_name_the_view_uses_is_one_component_of_the_page(studio):
    import app

    with gr.Blocks():
        page = app.layout(studio.service)
    used = {*events.GRID_INPUTS, *events.GRID_EXAMPLE_INPUTS, *events.GRID_PAIRING_INPUTS,
            *events.GRID_CAPTIONS_INPUTS, *events.GRID_COUNT_INPUTS, *GRID_RESULT, "grid_more", "grid_fewer",
            *(f"grid_slot_{k}" for k in range(grid_view.SLOTS))}
    assert used <= set(page), sorted(used - set(page))
    assert len({id(c) for c in page.values()}) == len(page)


# -- the example pairs ------------------------------------------------------------------------------

def test_example_pairs_are_warmed_with_the_examples_and_a_click_is_served_at_once(tiny_engine):
    import app

    studio = events.Studio.create(tiny_engine)
    pairs = app.load_pairs()
    assert len(pairs) >= 3 and pairs[3].pairing == (1, 0)
    assert studio.warm_examples([], pairs) == len(pairs) and studio.service.cache.pinned() == len(pairs)
    computed = studio.service.cache.computed
    for k, pair in enumerate(pairs):
        values = {"grid_examples": k, "preset": "tiny", **widgets.start_values(studio.service.start)}
        start = time.perf_counter()
        out = studio.grid_example(values, pairs=pairs)
        assert time.perf_counter() - start < 1.0
        assert "from cache" in out["grid_status"] and pair.note in html.unescape(out["grid_status"])
        assert out["grid_captions"] == "\n".join(pair.captions)
        assert [out[f"grid_image_{i}"] for i in range(4)] == [*pair.images, None, None]
        assert (out["grid_true_0"]["value"], out["grid_true_1"]["value"]) == pair.pairing
        assert out["grid_state"].pairing == pair.pairing and out["grid_scores"].count("cell true") == 2
    assert studio.service.cache.computed == computed


def test_on_zerogpu_the_warm_up_is_one_allocation_and_a_grid_one_more(tiny_engine):
    import app

    with zerogpu.installed() as allocations:
        studio = events.Studio.create(tiny_engine)
        assert studio.service.runner.zerogpu
        studio.warm_examples(app.load_examples()[:2], app.load_pairs()[:2])
        assert len(allocations) == 1  # two single examples and two pairs, one batched call
        assert studio.service.cache.pinned() == 4
        got = studio.api_match_grid([MUG, str(ASSETS / "examples" / "cat_on_box.png")], CAPTIONS.splitlines())
        assert len(allocations) == 2  # one request with two images: one allocation
        studio.api_match_grid([MUG, str(ASSETS / "examples" / "cat_on_box.png")], CAPTIONS.splitlines())
        assert len(allocations) == 2  # the same again: from the cache
    assert got["pairing"] == [0, 1] and len(got["images"]) == 2
