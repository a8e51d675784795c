"""The page's events as plain functions (comclip.studio.events): values in by name, panels out by
name — scoring, editing and resetting a graph, selecting, marking the true caption, counterfactuals,
the preset menu — and the page's names wired one to one (app.layout)."""

from __future__ import annotations

from dataclasses import replace

import gradio as gr
import pytest

from comclip.options import Options
from comclip.studio import checks, events, panels, service, widgets
from comclip.studio.panels import PageState

from .conftest import ASSETS, EXAMPLE_IMAGE

MUG = "a mug in some grass\nsome grass in a mug"


@pytest.fixture(scope="module")
def studio(tiny_engine):
    return events.Studio.create(tiny_engine)


def form(**changes) -> dict:
    """The page's values for a score, by name, as the widgets hold them at start."""
    values = {"image": str(EXAMPLE_IMAGE), "captions": MUG, "true_caption": None, "preset": "tiny", "state": None,
              **{f.name: f.default for f in Options.fields()}, "box_threshold": 0.3, "text_threshold": 0.25}
    return {**values, **changes}


def test_a_score_fills_every_result_panel_by_name(studio):
    out = studio.score(form())
    assert set(out) == set(panels.RESULT)
    assert "Scored 2 captions" in out["status"] and "True caption" in out["summary"]
    state = out["state"]
    assert isinstance(state, PageState) and state.selected == "a mug in some grass"
    assert [c.caption for c in state.answer.result.captions] == MUG.splitlines()
    assert out["selector"]["choices"] == [("1. a mug in some grass", 0), ("2. some grass in a mug", 1)]
    assert out["download_json"]["visible"] and out["download_json"]["value"].endswith("comclip-result.json")


def test_the_page_gets_the_scores_first_and_the_inspector_next(studio):
    """The page's Score sends the story and the scores as soon as the answer is there (panels.FIRST);
    its next event draws the inspector for the caption that answer selected — what one score shows."""
    whole = studio.score(form(captions="a mug on some grass\nsome grass on a mug"))
    first = studio.score_first(form(captions="a mug on some grass\nsome grass on a mug"))
    assert set(first) == set(panels.FIRST) and not set(first) & set(panels.INSPECTOR)
    assert set(panels.FIRST) | set(panels.INSPECTOR) == set(panels.RESULT)
    assert (first["scores"], first["score_chart"]) == (whole["scores"], whole["score_chart"])  # (from the cache)
    state = first["state"]
    assert state.selected == "a mug on some grass"
    assert studio.inspect({"state": state}) == {k: whole[k] for k in panels.INSPECTOR}
    other = studio.inspect({"state": replace(state, selected="some grass on a mug")})
    assert other == {k: v for k, v in studio.select({"selector": 1, "state": state}).items() if k in panels.INSPECTOR}
    # nothing to draw: no answer yet, or a score that failed (the panels shown stay)
    assert studio.inspect({"state": None}) == {} == studio.inspect({"state": PageState()})
    assert list(studio.score_first(form(captions="only one caption"))) == ["status"]


def test_a_bad_request_changes_only_the_status(studio):
    out = studio.score(form(captions="only one caption"))
    assert list(out) == ["status"] and "at least 2" in out["status"] and 'class="status error"' in out["status"]
    assert list(studio.score(form(weighting="max"))) == ["status"]


def test_equal_options_are_one_request_and_one_cache_key(studio):
    a, _ = checks.check_options({})
    b, _ = checks.check_options({"weighting": "softmax", "box_threshold": None})
    assert a == b == Options()
    image = checks.prepare_image(str(EXAMPLE_IMAGE))[0]

    def key(options):
        return service.request_key(checks.Request("tiny", (image,), ("x", "y"), None, options))

    assert key(a) == key(b) != key(Options(weighting="sum"))


def test_an_edited_graph_is_remembered_until_reset(studio):
    first = studio.score(form())
    assert studio.edit_graph(form(graph_json="{}", selector=None))["graph_status"].count("Score the captions first")
    graph = '{"entities": [{"id": "e0", "name": "mug", "attributes": ["white"]}], "relations": []}'
    edited = studio.edit_graph(form(graph_json=graph, selector=0, state=first["state"]))
    assert set(edited) == {"graph_status", *panels.RESULT} and edited["graph_status"] == edited["status"]
    state = edited["state"]
    assert state.overrides["a mug in some grass"]["entities"][0]["attributes"] == ["white"]
    assert "Using your edited graph for: “a mug in some grass”" in edited["summary"]
    component = state.answer.result.captions[0].components[0]
    assert component.text == "white mug" and state.selected == "a mug in some grass"
    bad = studio.edit_graph(form(graph_json="{nope", selector=0, state=state))
    assert list(bad) == ["graph_status"] and "not valid JSON" in bad["graph_status"]
    reset = studio.reset_graph(form(selector=0, state=state))
    assert reset["state"].overrides == {} and reset["state"].answer.result.captions[0].components[0].text == "mug"


def test_selecting_and_marking_the_true_caption(studio):
    state = studio.score(form())["state"]
    shown = studio.select({"selector": 1, "state": state})
    assert set(shown) == {"status", *panels.INSPECTOR, "state"} and shown["state"].selected == "some grass in a mug"
    assert "some grass in a mug" in shown["graph"]  # the figure's alt text names its caption
    story = studio.mark_true({"true_caption": "some grass in a mug", "state": state})
    assert set(story) == {"status", *panels.SUMMARY} and "“some grass in a mug”" in story["summary"]
    assert studio.select({"selector": 1, "state": None}) == {} == studio.mark_true({"true_caption": "x", "state": None})


def test_the_true_caption_menu_follows_the_captions_and_the_persons_edits_clear_the_status():
    out = events.captions_changed({"captions": "a cup\n\na saucer\na cup", "true_caption": "gone"})
    assert out["true_caption"]["choices"] == [("1. a cup", "a cup"), ("2. a saucer", "a saucer")]
    assert out["true_caption"]["value"] == "a cup" and "status" not in out  # an example's captions keep its status
    kept = events.captions_changed({"captions": "a cup\na saucer", "true_caption": "a saucer"})
    assert kept["true_caption"]["value"] == "a saucer"
    assert events.edited({}) == {"status": ""}  # a new image or caption typed: the old message goes


def test_counterfactuals_are_added_or_explained():
    out = events.add_counterfactual({"captions": "a mug in some grass", "true_caption": None, "parser": "rules"})
    assert out["captions"] == "a mug in some grass\nsome grass in a mug" and "Added 1 counterfactual" in out["status"]
    again = events.add_counterfactual({"captions": out["captions"], "true_caption": None, "parser": "rules"})
    assert list(again) == ["status"] and "Already in the list" in again["status"]
    none = events.add_counterfactual({"captions": "a mug", "true_caption": None, "parser": "rules"})
    assert "No counterfactual" in none["status"]
    assert "Type a caption first" in events.add_counterfactual({"captions": "", "true_caption": None,
                                                                "parser": "rules"})["status"]


def test_the_preset_menu_moves_the_thresholds_and_the_banner(studio):
    out = studio.preset_changed({"preset": "tiny"})
    assert out["box_threshold"]["value"] == 0.3 and out["text_threshold"]["value"] == 0.25
    assert out["banner"]["visible"] is True and "tiny" in out["banner"]["value"] and out["preset"]["info"]


def test_the_api_docstring_lists_every_option():
    doc = events.Studio.api_match.__doc__
    for f in Options.fields():
        assert f"{f.name} (" in doc, f.name
    assert "softmax|sum" in doc and '"graphs"' in doc and '"preset"' in doc


def test_every_name_an_event_uses_is_one_component_of_the_page(studio):
    import app

    with gr.Blocks():
        page = app.layout(studio.service)
    used = {*events.EDIT_INPUTS, *events.SELECT_INPUTS, *events.TRUE_INPUTS, *events.CAPTIONS_INPUTS,
            *events.COUNTERFACTUAL_INPUTS, *events.PRESET_INPUTS, *panels.RESULT, "graph_status", "banner"}
    assert used <= set(page), sorted(used - set(page))
    assert len({id(c) for c in page.values()}) == len(page)  # one component per name
    assert set(Options.names()) <= set(page) and not set(Options.names()) & {*panels.RESULT, "graph_status"}


# -- the examples' results at once; a long request says what it does and how long it takes -------------

def test_warmed_examples_are_pinned_and_a_click_on_one_is_served_at_once(tiny_engine):
    import time

    import app

    studio = events.Studio.create(tiny_engine)
    studio.service.cache = service.ResultCache(size=1)  # a tiny LRU: only pinning keeps nine results
    examples = app.load_examples()
    assert studio.warm_examples(examples) == len(examples) and studio.service.warmed.is_set()
    assert studio.service.cache.pinned() == len(examples)
    studio.score(form(captions="a cup\na saucer"))  # other requests come and go through the LRU
    studio.score(form(captions="a mug\nsome grass"))
    computed = studio.service.cache.computed
    for image, captions in examples:  # as the page sends an example's click: widgets at their start values
        values = {**form(image={"path": image}, captions=captions), **widgets.start_values(studio.service.start)}
        start = time.perf_counter()
        out = studio.score(values)
        assert time.perf_counter() - start < 1.0
        assert "Scored 2 captions from cache" in out["status"]
    assert studio.service.cache.computed == computed  # every one served from the cache, none recomputed


def test_an_example_that_fails_does_not_stop_the_warm_up(tiny_engine):
    studio = events.Studio.create(tiny_engine)
    assert studio.warm_examples([["/no/such/image.png", "a\nb"], [str(EXAMPLE_IMAGE), MUG]]) == 1
    assert studio.service.cache.pinned() == 1 and studio.service.warmed.is_set()


def test_a_score_tells_each_stage_with_the_phrase_sets_to_ground(tiny_engine):
    studio = events.Studio.create(tiny_engine)
    told = []
    studio.score(form(captions="a cup on a saucer\na saucer on a cup\na spoon next to a cup"),
                 lambda fraction, desc: told.append((fraction, desc)))
    descs = [d for _, d in told]
    assert descs[0] == "Parsing 3 captions…"
    assert descs[1].startswith("Grounding 2 phrase sets with the detector…")  # {cup, saucer} and {spoon, cup}
    assert descs[2].startswith("Encoding ") and descs[3] == "Composing the scores…"
    assert [f for f, _ in told] == sorted(f for f, _ in told)
    told.clear()
    studio.score(form(captions="a saucer on a cup\na cup on a saucer"), lambda f, desc: told.append(desc))
    assert "Grounding: boxes from earlier requests…" in told  # same phrase set, same image: no detector pass


def test_the_pace_estimates_the_wait_from_what_it_has_seen():
    pace = service.Pace()
    assert pace.estimate(2) is None and pace.describe("ground", 2) == "Grounding 2 phrase sets with the detector…"
    pace.observe(9.0, ground_s=8.0, grounded=1)
    assert pace.estimate(1) == pytest.approx(9.0) and pace.estimate(2) == pytest.approx(17.0)
    assert pace.describe("ground", 2) == "Grounding 2 phrase sets with the detector… (about 17 s)"
    pace.observe(5.0, ground_s=4.0, grounded=1)  # newer requests weigh half
    assert pace.estimate(1) == pytest.approx(7.0)
    assert pace.describe("queue", 0) == "Waiting for the request before yours…"


def test_a_request_waiting_for_the_gate_says_so(tiny_engine):
    import threading

    studio = events.Studio.create(tiny_engine)
    told = []
    studio.service.gate.acquire()  # another request holds the model
    worker = threading.Thread(target=studio.score, args=(form(captions="a red cup\na blue saucer"),
                                                         lambda f, desc: told.append(desc)))
    worker.start()
    worker.join(0.5)
    assert told == ["Waiting for the request before yours…"]
    studio.service.gate.release()
    worker.join(30)
    assert told[1] == "Parsing 2 captions…"


def test_the_settings_say_what_the_detector_size_trades(tiny_engine):
    import app

    demo = app.build_demo(events.Studio.create(tiny_engine))
    notes = [c.get("props", {}).get("value", "") for c in demo.config["components"]
             if c.get("props", {}).get("elem_id") == "speed-note"]
    assert len(notes) == 1 and "`fast` reads them at 384 px" in notes[0] and "small objects may be missed" in notes[0]


def test_the_warm_up_gives_way_to_people(tiny_engine):
    import threading
    import time

    import app

    studio = events.Studio.create(tiny_engine)
    svc = studio.service
    with svc._person(True):  # a person's request in progress
        warm = threading.Thread(target=studio.warm_examples, args=(app.load_examples()[:2],))
        warm.start()
        time.sleep(0.5)
        assert svc.cache.computed == 0 and not svc.warmed.is_set()  # no example started meanwhile
    warm.join(60)  # the person's request ended: the warm-up goes on at once (no polling)
    assert svc.cache.computed == 2 and svc.warmed.is_set()
    studio.score(form())  # a person's request counts itself in and out
    assert svc._people == 0


def test_an_event_that_changes_nothing_leaves_its_panels_as_they_are():
    """Gradio takes an empty dict as one output's value ("[object Object]" on the page): the wiring skips
    every output an event leaves out, explicitly."""
    import app

    page = {"status": gr.HTML("kept"), "captions": gr.Textbox(), "summary": gr.HTML()}
    handler = app._named(page, events.captions_changed, False, ("status", "summary"))
    assert handler({page["captions"]: "a\nb"}) == {page["status"]: gr.skip(), page["summary"]: gr.skip()}
    cleared = app._named(page, events.edited, False, ("status", "summary"))({})
    assert cleared == {page["status"]: "", page["summary"]: gr.skip()}


def test_an_uploaded_image_is_prepared_while_captions_are_typed(tiny_engine, tmp_path, monkeypatch):
    """Issue 26: on upload the detector's image part is computed (Studio.prepare → Service.prepare →
    ComCLIP.prepare), so the Score click runs no backbone — and its answer is exactly a cold click's."""
    from comclip.bench.count import count_detector

    image, captions = str(ASSETS / "examples" / "cat_on_box.png"), "a cat on a box\na box on a cat"
    det = tiny_engine.detector
    tiny_engine.clear_caches()
    warm = events.Studio.create(tiny_engine)
    with count_detector(det) as counted:
        assert warm.prepare(form(image=image, captions="")) == {}  # nothing on the page changes
        assert warm.prepare(form(image=image, captions="")) == {}  # kept: not computed twice
        assert counted.image_parts == 1 and counted.fusions == 0
        prepared = warm.score(form(image=image, captions=captions))
        assert counted.image_parts == 1 and counted.fusions == 1  # the click: no backbone of its own
    # captions typed before the upload: their boxes are computed on upload too (the upload decoded once),
    # so the click grounds nothing
    tiny_engine.clear_caches()
    first = events.Studio.create(tiny_engine)
    decoded: list[object] = []
    real = checks.prepare_image
    monkeypatch.setattr(checks, "prepare_image",
                        lambda source, *a, **k: decoded.append(source) or real(source, *a, **k))
    with count_detector(det) as counted:
        first.prepare(form(image=image, captions=captions))
        assert counted.image_parts == 1 and counted.fusions == 1 and decoded == [image]
        again = first.score(form(image=image, captions=captions))
        assert [c.comclip_score for c in again["state"].answer.result.captions] == \
            [c.comclip_score for c in prepared["state"].answer.result.captions]
        assert counted.image_parts == 1 and counted.fusions == 1
    tiny_engine.clear_caches()
    with count_detector(det) as counted:
        cold = events.Studio.create(tiny_engine).score(form(image=image, captions=captions))
        assert counted.image_parts == 1
    numbers = [[(c.caption, c.clip_score, c.comclip_score, [k.weight for k in c.components])
                for c in out["state"].answer.result.captions] for out in (prepared, cold)]
    assert numbers[0] == numbers[1]
    # a broken upload or a preset not offered is left for the click to report; nothing is computed
    with count_detector(det) as counted:
        assert warm.prepare(form(image=str(tmp_path / "missing.png"))) == {}
        assert warm.prepare(form(preset="large")) == {}
        assert counted.passes == 0


def test_typed_captions_are_prepared_before_the_click(tiny_engine, monkeypatch):
    """Issue 26: when the captions change, what a Score click on the page as it is will need — parses,
    the image–text model's text embeddings, the detector's text part and, with the image, the boxes —
    is computed (Studio.prepare_captions → Service → ComCLIP.prepare_captions), so the click encodes no
    text and runs no detector — and its answer is exactly a cold click's."""
    from comclip.bench.count import count_detector

    image, captions = str(ASSETS / "examples" / "cat_on_box.png"), "a grey cat on a red box\na red box on a grey cat"
    det, encoder = tiny_engine.detector, tiny_engine.encoder
    encoded: list[int] = []
    real = encoder.encode_texts

    def spy(texts, *args, **kwargs):
        encoded.append(len(texts))
        return real(texts, *args, **kwargs)

    monkeypatch.setattr(encoder, "encode_texts", spy)
    tiny_engine.clear_caches()
    warm = events.Studio.create(tiny_engine)
    with count_detector(det) as counted:
        assert warm.prepare_captions(form(image=image, captions=captions)) == {}  # nothing on the page changes
        # 2 captions, 2 entities, 1 predicate ("on"); one phrase set (both captions), grounded once
        assert (sum(encoded), counted.text_parts, counted.image_parts, counted.fusions) == (5, 1, 1, 1)
        assert warm.prepare_captions(form(image=image, captions=captions)) == {}  # kept: not computed twice
        assert (sum(encoded), counted.text_parts, counted.image_parts, counted.fusions) == (5, 1, 1, 1)
        prepared = warm.score(form(image=image, captions=captions))
        assert (sum(encoded), counted.text_parts, counted.image_parts, counted.fusions) == (5, 1, 1, 1)  # the click
        tiny_engine.clear_caches()  # the answer itself is kept (an example's, a click's): nothing to guess
        assert warm.prepare_captions(form(image=image, captions=captions)) == {}
        assert (sum(encoded), counted.text_parts, counted.image_parts, counted.fusions) == (5, 1, 1, 1)
    tiny_engine.clear_caches()
    cold = events.Studio.create(tiny_engine).score(form(image=image, captions=captions))
    numbers = [[(c.caption, c.clip_score, c.comclip_score, [(k.weight, k.boxes.to_lists()) for k in c.components])
                for c in out["state"].answer.result.captions] for out in (prepared, cold)]
    assert numbers[0] == numbers[1]
    # no image yet: the texts alone; captions not valid yet, or a preset not offered: nothing computed,
    # nothing said (the click says it)
    tiny_engine.clear_caches()
    encoded.clear()
    with count_detector(det) as counted:
        assert warm.prepare_captions(form(image=None, captions=captions)) == {}
        assert (sum(encoded), counted.text_parts, counted.fusions) == (5, 1, 0)
    encoded.clear()
    assert warm.prepare_captions(form(captions="only one")) == {} == warm.prepare_captions(form(preset="large"))
    assert encoded == []


GUESSED = "a grey cat on a red box\na red box on a grey cat"
OTHER = "a dog under a table\na table under a dog"


def _hold_a_guess(studio, image, clicks):
    """Run a guess at ``GUESSED`` on ``image``, held inside the detector's first attention block until
    each of ``clicks`` (captions, in order) is on its way into the model gate; then let everything finish.
    Returns the guess's count, each click's answer and what each click was told, and the detector's count."""
    import threading

    from comclip.bench.count import count_detector

    svc, det = studio.service, studio.service.engines.peek("tiny").detector
    blocks = [m for m in det.model.modules() if type(m).__name__ == "DeformableAttentionSwitch"]
    assert len(blocks) >= 2  # the detector's forward asks at each of them whether to stop
    inside, go_on = threading.Event(), threading.Event()

    def hold(*_):
        if threading.current_thread().name == "guess" and not inside.is_set():
            inside.set()
            assert go_on.wait(10)

    typed = checks.page_request(form(image=image, captions=GUESSED), {}, svc.offered)
    guessed: list[int] = []
    answers: dict[int, dict] = {}
    told: dict[int, list[str]] = {k: [] for k in range(len(clicks))}

    def click(k):
        answers[k] = studio.score(form(image=image, captions=clicks[k]), lambda _f, desc=None: told[k].append(desc))

    threads = [threading.Thread(name="guess", target=lambda: guessed.append(svc.prepare_captions(typed)))]
    hook = blocks[0].register_forward_pre_hook(hold)
    try:
        with count_detector(det) as counted:
            threads[0].start()
            assert inside.wait(10)
            for k in range(len(clicks)):
                threads.append(threading.Thread(target=click, args=(k,)))
                threads[-1].start()
                for _ in range(2000):  # until this click is on its way into the gate
                    if len(svc.guesses._asking) == k + 1:
                        break
                    threading.Event().wait(0.005)
                else:
                    pytest.fail(f"click {k} never asked for the model")
            go_on.set()
            for t in threads:
                t.join(30)
                assert not t.is_alive()
    finally:
        hook.remove()
    return guessed[0], [answers[k] for k in range(len(clicks))], [told[k] for k in range(len(clicks))], counted


def _shown(out):
    return [(c.caption, c.comclip_score, [k.boxes.to_lists() for k in c.components])
            for c in out["state"].answer.result.captions]


@pytest.mark.parametrize("clicks", [[OTHER], [GUESSED], [GUESSED, OTHER]], ids=["other", "same", "same-then-other"])
def test_a_click_for_other_captions_stops_the_guess_and_one_for_the_same_reuses_it(tiny_engine, clicks):
    """The guess at the next click holds the model while it grounds. A click for another request (the
    person typed on, or another person clicked) stops it at the detector's next attention block instead of
    waiting for it, and nothing half-computed is kept — unless a click for the guessed request already waits
    for it; a click for the very request it guesses waits and reuses its boxes. Every click's answer is
    exactly a cold one's, and the next guess runs in full."""
    image, det = str(ASSETS / "examples" / "cat_on_box.png"), tiny_engine.detector
    expected = {}
    for captions in set(clicks):
        tiny_engine.clear_caches()
        expected[captions] = _shown(events.Studio.create(tiny_engine).score(form(image=image, captions=captions)))
    tiny_engine.clear_caches()
    studio = events.Studio.create(tiny_engine)
    studio.prepare(form(image=image, captions=""))  # the upload: its image part, so the guess only grounds
    guessed, answers, told, counted = _hold_a_guess(studio, image, clicks)
    assert [_shown(a) for a in answers] == [expected[c] for c in clicks]
    if clicks[0] == GUESSED:  # the guess's forward, reused by the click (and the other click's own)
        assert guessed > 0 and counted.fusions == len(clicks)
        assert "Finishing the boxes begun while you typed…" in told[0]
    else:  # stopped: only the click's own forward ran, and nothing of the guess was kept
        assert guessed == 0 and counted.fusions == 1 and det.cache_sizes()["output"] == 1
        assert "Waiting for the request before yours…" in told[0]
        typed = checks.page_request(form(image=image, captions=GUESSED), {}, studio.service.offered)
        assert studio.service.prepare_captions(typed) > 0  # the next guess is not stopped by the last one's stop


def test_a_guess_that_fails_leaves_the_model_free(tiny_engine, monkeypatch):
    """A guess that raises (a bug, a broken model) says nothing on the page and holds nothing: the gate is
    free and the next click is computed as usual."""
    image = str(ASSETS / "examples" / "cat_on_box.png")
    studio = events.Studio.create(tiny_engine)

    def broken(*_args, **_kwargs):
        raise RuntimeError("broken")

    monkeypatch.setattr(tiny_engine, "prepare_captions", broken)
    assert studio.prepare_captions(form(image=image, captions=GUESSED)) == {}
    assert studio.service.guesses.idle()
    out = studio.score(form(image=image, captions=GUESSED))
    assert "Scored 2 captions" in out["status"]


def test_guessing_ahead_can_be_turned_off(tiny_engine, monkeypatch):
    """``COMCLIP_PREPARE=0``: nothing is computed before a click (each click computes everything itself);
    a value that is not on/off is one clear message naming the variable."""
    from comclip.bench.count import count_detector
    from comclip.errors import InputError
    from comclip.studio.settings import Settings

    assert Settings.from_env({}).prepare and Settings.from_env({"COMCLIP_PREPARE": "yes"}).prepare
    off = Settings.from_env({"COMCLIP_PREPARE": "0"})
    assert off.prepare is False
    with pytest.raises(InputError, match="COMCLIP_PREPARE must be 0 or 1, got 'maybe'"):
        Settings.from_env({"COMCLIP_PREPARE": "maybe"})
    tiny_engine.clear_caches()
    studio = events.Studio.create(tiny_engine, settings=off)
    typed = form(image=str(ASSETS / "examples" / "cat_on_box.png"), captions=GUESSED)
    encoded: list[int] = []
    real = tiny_engine.encoder.encode_texts
    monkeypatch.setattr(tiny_engine.encoder, "encode_texts",
                        lambda texts, *a, **k: encoded.append(len(texts)) or real(texts, *a, **k))
    with count_detector(tiny_engine.detector) as counted:
        studio.prepare(typed)
        studio.prepare_captions(typed)
        assert counted.passes == 0 and counted.text_parts == 0 and encoded == []
        studio.score(typed)
        assert counted.fusions == 1  # the click computed its own boxes


def test_an_upload_is_not_prepared_on_zerogpu(tiny_engine):
    """On ZeroGPU a guess is not worth a GPU allocation: the click computes everything in its own call."""
    from . import zerogpu

    with zerogpu.installed() as allocations:
        studio = events.Studio.create(tiny_engine)
        assert studio.service.runner.zerogpu
        assert studio.service.prepare(checks.prepare_image(str(EXAMPLE_IMAGE))[0], "tiny") == 0
        typed = checks.page_request(form(image=str(EXAMPLE_IMAGE), captions="a cat\na box"), {}, studio.service.offered)
        assert studio.service.prepare_captions(typed) == 0
        assert len(allocations) == 0
