"""The page's events as plain functions: each takes the page's values by name and returns the
panels it changes, by name (:mod:`comclip.studio.panels`). ``app.py`` only lays the page out and
wires these to its components; every decision (what to check, what to score, what to show, how an
edited graph is remembered, which counterfactuals fit) is made here, and tested here.

The input names of each event are listed beside it (``*_INPUTS``); option widgets are named by
their :class:`~comclip.options.Options` field.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import gradio as gr

from comclip import parse as parsing
from comclip.errors import ComCLIPError, GraphError
from comclip.options import Options
from comclip.presets import Preset, get_preset
from comclip.studio import counterfactuals, panels, presentation, requests, session, widgets
from comclip.studio.messages import user_message
from comclip.studio.page import BANNER, status_html
from comclip.studio.panels import PageState, Panels

if TYPE_CHECKING:
    from comclip.engine import ComCLIP

log = logging.getLogger(__name__)

Values = Mapping[str, Any]
Progress = Callable[..., Any]

SCORE_INPUTS = ("image", "captions", "true_caption", "preset", *Options.names(), "state")
EDIT_INPUTS = ("graph_json", "selector", *SCORE_INPUTS)
SELECT_INPUTS = ("selector", "state")
TRUE_INPUTS = ("true_caption", "state")
CAPTIONS_INPUTS = ("captions", "true_caption", "status")
COUNTERFACTUAL_INPUTS = ("captions", "true_caption", "parser")
PRESET_INPUTS = ("preset",)


class Studio:
    """What the events of one app share: the preset it started with, the presets it offers, the
    loaded engines, the result cache, the gate around model calls and the model call itself
    (``run``: on ZeroGPU, a GPU-lending wrapper of ``engine.match``)."""

    def __init__(self, start: Preset, engines: session.Engines, *, concurrency: int | None = None,
                 run: Callable[..., Any] | None = None) -> None:
        self.start = start
        self.engines = engines
        self.offered = session.offered_presets(start.name)
        self.cache = session.ResultCache()
        self.gate = threading.BoundedSemaphore(concurrency or session.CONCURRENCY)
        self.run = run
        self.paces: dict[str, session.Pace] = {}  # per preset: how long its requests take
        self.warmed = threading.Event()  # set once the examples' results are cached
        self.closing = threading.Event()  # set when the app stops: the warm-up stops too
        self._users = 0  # people's requests in progress: the warm-up waits for them
        self._users_lock = threading.Lock()

    @classmethod
    def create(cls, engine: ComCLIP | None = None, *, preset: str | None = None,
               engines: session.Engines | None = None, concurrency: int | None = None,
               run: Callable[..., Any] | None = None) -> Studio:
        """``engine`` (optional) is an already loaded engine shared by every request; other presets
        load on first use. ``preset``: the start preset (default: the engine's, else COMCLIP_PRESET)."""
        start = get_preset(preset or (engine.preset_name if engine is not None else session.start_preset()))
        engines = engines or session.Engines(pinned=start.name)
        if engine is not None:
            engines.add(engine.preset_name, engine)
        return cls(start, engines, concurrency=concurrency, run=run)

    # -- scoring ----------------------------------------------------------------------------------
    def request(self, values: Values, overrides: Mapping[str, Any]) -> requests.Request:
        """The page's values checked: one InputError for anything wrong, before any model runs."""
        captions, notices = requests.split_captions(values["captions"])
        preset = requests.check_preset(values["preset"], self.offered)
        options, _ = requests.check_options({name: values[name] for name in Options.names()})
        graphs = requests.graphs_for(captions, {c: g for c, g in overrides.items() if c in captions})
        image, image_notices = requests.prepare_image(values["image"])
        edited = [c for c in captions if c in overrides]
        if edited:
            notices.append("Using your edited graph for: " + ", ".join(f"“{c}”" for c in edited) + ".")
        return requests.Request(preset, image, captions, graphs, options, notices + image_notices)

    def pace(self, preset: str) -> session.Pace:
        return self.paces.setdefault(preset, session.Pace())

    def scored(self, request: requests.Request, progress: Progress | None = None, *, pin: bool = False
               ) -> session.Scored:
        """The request's result (cached or computed); ``progress`` is told each stage as it starts,
        with an estimate of the wait once one is known."""
        if progress is not None and request.preset not in self.engines.loaded():
            progress(0.02, desc=f"Loading preset “{request.preset}” (first use; may download weights)…")
        if pin:  # the warm-up (not counted: it waits for people, not for itself)
            return self._scored(request, progress, pin=True)
        with self._users_lock:
            self._users += 1
        try:
            return self._scored(request, progress)
        finally:
            with self._users_lock:
                self._users -= 1

    def _scored(self, request: requests.Request, progress: Progress | None, pin: bool = False) -> session.Scored:
        engine = self.engines.get(request.preset)
        pace = self.pace(request.preset)
        on_stage = None
        if progress is not None:
            def on_stage(stage: str, count: int) -> None:
                progress(session.STAGE_FRACTION[stage], desc=pace.describe(stage, count))
        return session.score(engine, request, cache=self.cache, run=self.run, gate=self.gate, on_stage=on_stage,
                             pace=pace, pin=pin)

    def warm_examples(self, examples: Sequence[Sequence[str]]) -> int:
        """Compute the examples' results (``[image, captions]`` as the page's examples hold them) as
        the page would request them before any setting is changed, pin them in the cache and draw
        their panels, so clicking an example shows its result at once; this also teaches the pace. It
        gives way to people: no example starts while one of their requests is in progress. Returns how
        many were computed; an example that fails is skipped (logged)."""
        computed, started = 0, time.perf_counter()
        try:
            for image, captions in examples:
                while self._users and not self.closing.is_set():  # people first: wait until none is waiting
                    time.sleep(0.05)
                if self.closing.is_set():
                    break
                values = {"image": image, "captions": captions, "preset": self.start.name,
                          **widgets.start_values(self.start)}
                try:
                    scored = self.scored(self.request(values, {}), pin=True)
                    panels.shown(scored, None, PageState())  # its charts and pictures drawn once, too
                    computed += not scored.cached
                except Exception:  # noqa: BLE001 — a bad example must not stop the app
                    log.exception("example %s could not be scored", image)
        finally:
            self.warmed.set()
        log.info("examples: %d scored and cached in %.1f s (a click on one shows it at once)", computed,
                 time.perf_counter() - started)
        return computed

    def _score(self, values: Values, state: PageState, progress: Progress | None) -> Panels:
        try:
            scored = self.scored(self.request(values, state.overrides), progress)
        except Exception as exc:  # noqa: BLE001 — every failure is one message; the results shown stay
            return {"status": status_html(user_message(exc))}
        return panels.shown(scored, values["true_caption"], state)

    def score(self, values: Values, progress: Progress | None = None) -> Panels:
        """Score: everything shown follows the new result (:data:`panels.SCORED`)."""
        return self._score(values, values.get("state") or PageState(), progress)

    def edit_graph(self, values: Values, progress: Progress | None = None) -> Panels:
        """Re-score with the graph typed into the editor for the selected caption (remembered until reset)."""
        state, caption = _selected(values)
        if state.scored is None or caption is None:
            return {"graph_status": status_html("Score the captions first, then edit a caption's graph.")}
        try:
            graph = requests.edited_graph(values["graph_json"], caption)
        except GraphError as exc:
            return {"graph_status": status_html(str(exc))}
        return _mirrored(self._score(values, state.with_graph(caption, graph), progress))

    def reset_graph(self, values: Values, progress: Progress | None = None) -> Panels:
        """Re-score the selected caption with its parse (the edited graph forgotten)."""
        state, caption = _selected(values)
        if state.scored is None or caption is None:
            return {"graph_status": status_html("Score the captions first.")}
        return _mirrored(self._score(values, state.without_graph(caption), progress))

    # -- looking at a result ------------------------------------------------------------------------
    def select(self, values: Values) -> Panels:
        """Show another caption inside out."""
        state, caption = _selected(values)
        if state.scored is None or caption is None:
            return {}
        try:
            shown = panels.details(state.scored, int(values["selector"]))
        except Exception as exc:  # noqa: BLE001 — a message, never an "Error" badge on the panels
            return {"status": status_html(user_message(exc))}
        return {"status": "", **shown, "state": replace(state, selected=caption)}

    def mark_true(self, values: Values) -> Panels:
        """Another caption marked true: the story is told again (no model call)."""
        state = values.get("state") or PageState()
        if state.scored is None:
            return {}
        try:
            return {"status": "", **panels.story(state.scored, values["true_caption"])}
        except Exception as exc:  # noqa: BLE001 — a message, never an "Error" badge on the panels
            return {"status": status_html(user_message(exc))}

    # -- the API ----------------------------------------------------------------------------------
    def api_match(self, image: Any, captions: Any, options: Any = None) -> dict[str, Any]:
        try:
            preset, opts, graphs = requests.api_options(options, self.start.name, self.offered)
            captions, _ = requests.split_captions(captions, strict=True)
            loaded, notices = requests.prepare_image(image)
            request = requests.Request(preset, loaded, captions, requests.graphs_for(captions, graphs), opts, notices)
            scored = self.scored(request)
        except Exception as exc:  # noqa: BLE001 — one clear message to the client
            raise gr.Error(user_message(exc), title="Please check the input", print_exception=False) from None
        for note in scored.notices:
            gr.Warning(note)
        return presentation.api_result(scored.result)

    api_match.__doc__ = (
        """Score an image against captions with CLIP and ComCLIP; returns the `comclip score --json` object.

        Args:
            image: the image (file path or URL).
            captions: {min}–{max} captions (list of strings), each at most {chars} characters.
            options: optional engine options, every one may be left out: {options}; "graphs" (one scene
                graph or null per caption) and "preset" (one the page offers).
        """.format(min=requests.MIN_CAPTIONS, max=requests.MAX_CAPTIONS, chars=requests.MAX_CAPTION_CHARS,
                   options="; ".join(f"{f.name} ({'|'.join(f.choices) if f.choices else f.type.__name__})"
                                     for f in Options.fields())))


def _selected(values: Values) -> tuple[PageState, str | None]:
    """The session's state and the caption the inspector shows (None before a score)."""
    state = values.get("state") or PageState()
    index = values.get("selector")
    if state.scored is None or index is None:
        return state, None
    return state, state.scored.result.captions[int(index)].caption


def _mirrored(out: Panels) -> Panels:
    """A graph re-score's panels: its status shown beside the graph editor too."""
    return {**out, "graph_status": out["status"]}


# -- events that need no model --------------------------------------------------------------------

def captions_changed(values: Values) -> Panels:
    """The true-caption menu follows the captions; a stale error message goes."""
    lines = requests.caption_lines(values["captions"])
    choices = [(presentation.caption_label(i, c, 70), c) for i, c in enumerate(lines)]
    true = values.get("true_caption")
    return {"true_caption": gr.update(choices=choices, value=true if true in lines else (lines[0] if lines else None)),
            **clear_error(values)}


def clear_error(values: Values) -> Panels:
    """An error message goes when the user changes what caused it."""
    return {"status": ""} if 'class="status error"' in (values.get("status") or "") else {}


def add_counterfactual(values: Values) -> Panels:
    """Captions with the true caption's words bound differently, added to the list (at most
    :data:`requests.MAX_CAPTIONS`), or a note saying why none was added."""
    lines = requests.caption_lines(values["captions"])
    if not lines:
        return {"status": status_html("Type a caption first; its counterfactuals are written from its parse.")}
    source = values.get("true_caption") if values.get("true_caption") in lines else lines[0]
    try:
        written = counterfactuals.counterfactuals(parsing.parse(source, values["parser"]))
    except ComCLIPError as exc:
        return {"status": status_html(user_message(exc))}
    new = [c for c in written if c not in lines]
    room = requests.MAX_CAPTIONS - len(lines)
    short = presentation.shorten
    if not written:
        return {"status": status_html(f"No counterfactual for “{short(source, 60)}”: it needs a relation between "
                                      "two entities or two entities with different attributes.", "info")}
    if not new:
        listed = ", ".join(f"“{short(c, 50)}”" for c in written)
        return {"status": status_html(f"Already in the list: {listed} — the only counterfactual"
                                      f"{'s' if len(written) > 1 else ''} of “{short(source, 50)}”.", "info")}
    if room <= 0:
        return {"status": status_html(f"Already {requests.MAX_CAPTIONS} captions; remove one to add a "
                                      "counterfactual.", "info")}
    added = new[:room]
    note = (f"Added {len(added)} of {len(new)} counterfactuals (at most {requests.MAX_CAPTIONS} captions)."
            if len(new) > room else f"Added {len(added)} counterfactual{'s' if len(added) > 1 else ''} of "
            f"“{short(source, 50)}”.")
    return {"captions": "\n".join(lines + added), "status": status_html(note, "ok")}


def preset_changed(values: Values) -> Panels:
    """The thresholds start at the new preset's own; the random-weights banner and the preset's
    description follow it."""
    p = get_preset(values["preset"])
    return {"box_threshold": gr.update(value=p.detector.box_threshold),
            "text_threshold": gr.update(value=p.detector.text_threshold),
            "banner": gr.update(value=BANNER.format(preset=p.name), visible=p.random_weights),
            "preset": gr.update(info=p.description)}
