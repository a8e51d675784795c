"""The page's events as plain functions: each takes the page's values by name and returns the
panels it changes, by name (:mod:`comclip.studio.panels`). ``app.py`` only lays the page out and
wires these to its components; every decision (what to check, what to show, how an edited graph
is remembered, which counterfactuals fit) is made here, and tested here. A click's path:
``Studio.score`` → :func:`checks.page_request` → :meth:`Service.serve` (cache, gate, model call →
``ComCLIP.match_batch``) → :func:`panels.shown`.

The input names of each event are listed beside it (``*_INPUTS``); option widgets are named by
their :class:`~comclip.options.Options` field.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import gradio as gr

from comclip import parse as parsing
from comclip.errors import ComCLIPError, GraphError
from comclip.options import Options
from comclip.studio import checks, counterfactuals, panels, presentation, widgets
from comclip.studio.messages import user_message
from comclip.studio.page import BANNER, status_html
from comclip.studio.panels import PageState, Panels
from comclip.studio.service import Service
from comclip.studio.settings import LIMITS

if TYPE_CHECKING:
    from comclip.engine import ComCLIP

log = logging.getLogger(__name__)
click_log = logging.getLogger("comclip.studio.click")

Values = Mapping[str, Any]
Progress = Callable[..., Any]

SCORE_INPUTS = ("image", "captions", "true_caption", "preset", *Options.names(), "state")
EDIT_INPUTS = ("graph_json", "selector", *SCORE_INPUTS)
SELECT_INPUTS = ("selector", "state")
TRUE_INPUTS = ("true_caption", "state")
CAPTIONS_INPUTS = ("captions", "true_caption")
COUNTERFACTUAL_INPUTS = ("captions", "true_caption", "parser")
PRESET_INPUTS = ("preset",)


class Studio:
    """The page's events for one :class:`~comclip.studio.service.Service` (what its requests share)."""

    def __init__(self, service: Service) -> None:
        self.service = service

    @classmethod
    def create(cls, engine: ComCLIP | None = None, **service: Any) -> Studio:
        """Events around a new service (:meth:`Service.create`'s arguments)."""
        return cls(Service.create(engine, **service))

    # -- scoring ----------------------------------------------------------------------------------
    def _score(self, values: Values, state: PageState, progress: Progress | None) -> Panels:
        """The one click path: check → serve (cache, gate, model call) → panels."""
        svc = self.service
        started = time.perf_counter()
        try:
            request = checks.page_request(values, state.overrides, svc.offered, svc.settings.limits)
            checked = time.perf_counter()
            answer = svc.serve(request, progress)
        except Exception as exc:  # noqa: BLE001 — every failure is one message; the results shown stay
            return {"status": status_html(user_message(exc))}
        served = time.perf_counter()
        shown = panels.shown(answer, values["true_caption"], state)
        log_click(answer, checks=checked - started, serve=served - checked, panels=time.perf_counter() - served)
        return shown

    def score(self, values: Values, progress: Progress | None = None) -> Panels:
        """Score: everything shown follows the new answer (:data:`panels.RESULT`)."""
        return self._score(values, values.get("state") or PageState(), progress)

    def edit_graph(self, values: Values, progress: Progress | None = None) -> Panels:
        """Re-score with the graph typed into the editor for the selected caption (remembered until reset)."""
        state, caption = _selected(values)
        if state.answer is None or caption is None:
            return {"graph_status": status_html("Score the captions first, then edit a caption's graph.")}
        try:
            graph = checks.edited_graph(values["graph_json"], caption)
        except GraphError as exc:
            return {"graph_status": status_html(str(exc))}
        return _mirrored(self._score(values, state.with_graph(caption, graph), progress))

    def reset_graph(self, values: Values, progress: Progress | None = None) -> Panels:
        """Re-score the selected caption with its parse (the edited graph forgotten)."""
        state, caption = _selected(values)
        if state.answer is None or caption is None:
            return {"graph_status": status_html("Score the captions first.")}
        return _mirrored(self._score(values, state.without_graph(caption), progress))

    def warm_examples(self, examples: Sequence[Sequence[str]]) -> int:
        """Compute the examples' answers (``[image, captions]`` as the page's examples hold them) as the
        page would request them before any setting is changed, and draw their panels: clicking an
        example then shows its answer at once (:meth:`Service.warm_examples`)."""
        svc, asked = self.service, []
        for image, captions in examples:
            values = {"image": image, "captions": captions, "preset": svc.start.name,
                      **widgets.start_values(svc.start)}
            try:
                asked.append(checks.page_request(values, {}, svc.offered, svc.settings.limits))
            except Exception:  # noqa: BLE001 — a bad example must not stop the app
                log.exception("example %s cannot be requested", image)
        return svc.warm_examples(asked, draw=lambda answer: panels.shown(answer, None, PageState()))

    # -- looking at an answer ---------------------------------------------------------------------
    def select(self, values: Values) -> Panels:
        """Show another caption inside out."""
        state, caption = _selected(values)
        if state.answer is None or caption is None:
            return {}
        try:
            shown = panels.inspector(state.answer, int(values["selector"]))
        except Exception as exc:  # noqa: BLE001 — a message, never an "Error" badge on the panels
            return {"status": status_html(user_message(exc))}
        return {"status": "", **shown, "state": replace(state, selected=caption)}

    def mark_true(self, values: Values) -> Panels:
        """Another caption marked true: the story is told again (no model call)."""
        state = values.get("state") or PageState()
        if state.answer is None:
            return {}
        try:
            return {"status": "", **panels.summary(state.answer, values["true_caption"])}
        except Exception as exc:  # noqa: BLE001 — a message, never an "Error" badge on the panels
            return {"status": status_html(user_message(exc))}

    def preset_changed(self, values: Values) -> Panels:
        """The thresholds start at the new preset's own; the random-weights banner and the preset's
        description follow it."""
        p = self.service.preset(values["preset"])
        return {"box_threshold": gr.update(value=p.detector.box_threshold),
                "text_threshold": gr.update(value=p.detector.text_threshold),
                "banner": gr.update(value=BANNER.format(preset=p.name), visible=p.random_weights),
                "preset": gr.update(info=p.description)}

    # -- the API ----------------------------------------------------------------------------------
    def api_match(self, image: Any, captions: Any, options: Any = None) -> dict[str, Any]:
        svc = self.service
        try:
            answer = svc.serve(checks.api_request(image, captions, options, svc.start.name, svc.offered,
                                                  svc.settings.limits))
        except Exception as exc:  # noqa: BLE001 — one clear message to the client
            raise gr.Error(user_message(exc), title="Please check the input", print_exception=False) from None
        for note in answer.notices:
            gr.Warning(note)
        return presentation.api_result(answer.result)

    api_match.__doc__ = (
        """Score an image against captions with CLIP and ComCLIP; returns the `comclip score --json` object.

        Args:
            image: the image (file path or URL).
            captions: {min}–{max} captions (list of strings), each at most {chars} characters.
            options: optional engine options, every one may be left out: {options}; "graphs" (one scene
                graph or null per caption) and "preset" (one the page offers).
        """.format(min=LIMITS.min_captions, max=LIMITS.max_captions, chars=LIMITS.max_caption_chars,
                   options="; ".join(f"{f.name} ({'|'.join(f.choices) if f.choices else f.type.__name__})"
                                     for f in Options.fields())))


def _selected(values: Values) -> tuple[PageState, str | None]:
    """The session's state and the caption the inspector shows (None before a score)."""
    state = values.get("state") or PageState()
    index = values.get("selector")
    if state.answer is None or index is None:
        return state, None
    return state, state.answer.result.captions[int(index)].caption


def _mirrored(out: Panels) -> Panels:
    """A graph re-score's panels: its status shown beside the graph editor too."""
    return {**out, "graph_status": out["status"]}


# -- events that need no model --------------------------------------------------------------------

def captions_changed(values: Values) -> Panels:
    """The true-caption menu follows the captions (typed, loaded from an example or added)."""
    lines = checks.caption_lines(values["captions"])
    choices = [(presentation.caption_label(i, c, 70), c) for i, c in enumerate(lines)]
    true = values.get("true_caption")
    return {"true_caption": gr.update(choices=choices, value=true if true in lines else (lines[0] if lines else None))}


def log_click(answer: Any, **seconds: float) -> None:
    """One line per click in the server's log (logger ``comclip.studio.click``): where the time went,
    in ms — the checks (image decode and hash, captions, options), serving (cache, gate, the model
    call and the engine's stages in it), drawing the panels. ``scripts/bench_browser.py`` reads it."""
    ms = {k: v * 1e3 for k, v in seconds.items()}
    inner = " ".join(f"{k}={v:.0f}" for k, v in answer.stages.items())
    click_log.info("click %s: %s cache=%s %s total=%.0f ms", answer.key[:10],
             " ".join(f"{k}={v:.0f}" for k, v in ms.items()), "hit" if answer.from_cache else "miss", inner,
             sum(ms.values()), extra={"stages": {**ms, **answer.stages}})


def edited(values: Values) -> Panels:
    """The person changed the image or the captions: the status line (a message about what was there
    before, an error or "Scored …") goes."""
    return {"status": ""}


def add_counterfactual(values: Values) -> Panels:
    """Captions with the true caption's words bound differently, added to the list (at most
    :data:`LIMITS.max_captions`), or a note saying why none was added."""
    lines = checks.caption_lines(values["captions"])
    if not lines:
        return {"status": status_html("Type a caption first; its counterfactuals are written from its parse.")}
    source = values.get("true_caption") if values.get("true_caption") in lines else lines[0]
    try:
        written = counterfactuals.counterfactuals(parsing.parse(source, values["parser"]))
    except ComCLIPError as exc:
        return {"status": status_html(user_message(exc))}
    new = [c for c in written if c not in lines]
    room = LIMITS.max_captions - len(lines)
    short = presentation.shorten
    if not written:
        return {"status": status_html(f"No counterfactual for “{short(source, 60)}”: it needs a relation between "
                                      "two entities or two entities with different attributes.", "info")}
    if not new:
        listed = ", ".join(f"“{short(c, 50)}”" for c in written)
        return {"status": status_html(f"Already in the list: {listed} — the only counterfactual"
                                      f"{'s' if len(written) > 1 else ''} of “{short(source, 50)}”.", "info")}
    if room <= 0:
        return {"status": status_html(f"Already {LIMITS.max_captions} captions; remove one to add a "
                                      "counterfactual.", "info")}
    added = new[:room]
    note = (f"Added {len(added)} of {len(new)} counterfactuals (at most {LIMITS.max_captions} captions)."
            if len(new) > room else f"Added {len(added)} counterfactual{'s' if len(added) > 1 else ''} of "
            f"“{short(source, 50)}”.")
    return {"captions": "\n".join(lines + added), "status": status_html(note, "ok")}
