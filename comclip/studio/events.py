"""The page's events as plain functions: each takes the page's values by name and returns the
panels it changes, by name (:mod:`comclip.studio.panels`). ``app.py`` only lays the page out and
wires these to its components; every decision (what to check, what to show, how an edited graph
is remembered, which counterfactuals fit) is made here, and tested here. A click's path:
``Studio.score_first`` → :func:`checks.page_request` → :meth:`Service.serve` (cache, gate, model call →
``ComCLIP.match_batch``) → :func:`panels.shown` without the inspector (:data:`panels.FIRST`), then the page's
next event, ``Studio.inspect`` → :func:`panels.inspected` (``Studio.score``: every panel at once).

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
from comclip.images import LoadedImage
from comclip.options import Options
from comclip.studio import checks, counterfactuals, grid_view, panels, presentation, widgets
from comclip.studio.grid_view import SLOTS, GridState, Pair
from comclip.studio.messages import user_message
from comclip.studio.page import BANNER, status_html
from comclip.studio.panels import PageState, Panels
from comclip.studio.service import Service, request_key
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
# the "Two images" view
GRID_TRUE = tuple(f"grid_true_{k}" for k in range(SLOTS))
GRID_INPUTS = ("grid_captions", *(f"grid_image_{k}" for k in range(SLOTS)), *GRID_TRUE, "grid_count", "preset",
               *Options.names())
GRID_EXAMPLE_INPUTS = ("grid_examples", "preset", *Options.names())
GRID_PAIRING_INPUTS = (*GRID_TRUE, "grid_count", "grid_state")
GRID_CAPTIONS_INPUTS = ("grid_captions", *GRID_TRUE)
GRID_COUNT_INPUTS = ("grid_count",)


class Studio:
    """The page's events for one :class:`~comclip.studio.service.Service` (what its requests share)."""

    def __init__(self, service: Service) -> None:
        self.service = service

    @classmethod
    def create(cls, engine: ComCLIP | None = None, **service: Any) -> Studio:
        """Events around a new service (:meth:`Service.create`'s arguments)."""
        return cls(Service.create(engine, **service))

    # -- scoring ----------------------------------------------------------------------------------
    def _score(self, values: Values, state: PageState, progress: Progress | None, inspect: bool = True) -> Panels:
        """The one click path: check → serve (cache, gate, model call) → panels (``inspect=False``: all
        but the inspector's)."""
        svc = self.service
        started = time.perf_counter()
        try:
            request = checks.page_request(values, state.overrides, svc.offered, svc.settings.limits)
            checked = time.perf_counter()
            answer = svc.serve(request, progress)
        except Exception as exc:  # noqa: BLE001 — every failure is one message; the results shown stay
            return {"status": status_html(user_message(exc))}
        served = time.perf_counter()
        shown = panels.shown(answer, values["true_caption"], state, inspect=inspect)
        log_click(answer, checks=checked - started, serve=served - checked, panels=time.perf_counter() - served)
        return shown

    def prepare(self, values: Values) -> Panels:
        """An image was uploaded: its detector part is computed now, while the person types captions
        (:meth:`Service.prepare`), so the Score click skips it — and when captions are already typed,
        what a click on them needs too (as :meth:`prepare_captions`). Changes nothing on the page; a
        broken upload is left for the click to report."""
        started = time.perf_counter()
        if not self.service.may_guess():  # (before decoding the image)
            return {}
        try:
            preset = checks.check_preset(values["preset"], self.service.offered)
            image, _ = checks.prepare_image(values["image"], self.service.settings.limits)
            computed = self.service.prepare(image, preset)
        except Exception:  # noqa: BLE001 — the click says what is wrong with the image or the preset
            return {}
        if computed:
            log.info("prepared an uploaded image's detector part in %.0f ms", (time.perf_counter() - started) * 1e3)
        if values.get("captions"):
            self._guess(values, image)
        return {}

    def prepare_captions(self, values: Values) -> Panels:
        """The captions were typed: what a Score click on the page as it is will need — parses, text
        embeddings, the detector's text part and, with an image, its boxes — is computed now, while the
        person goes to the Score button (:meth:`Service.prepare_captions`). Changes nothing on the page;
        captions not yet valid are left for the click to report."""
        if self.service.may_guess():  # (before decoding the image and hashing it, at every key)
            self._guess(values)
        return {}

    def _guess(self, values: Values, image: LoadedImage | None = None) -> None:
        """:meth:`Service.prepare_captions` for the request a Score click would send now (``image``: the
        page's image, already loaded); without a usable image, for its texts alone."""
        started = time.perf_counter()
        svc = self.service
        limits = svc.settings.limits
        try:
            try:
                overrides = (values.get("state") or PageState()).overrides
                request = checks.page_request(values, overrides, svc.offered, limits, image=image)
            except Exception:  # noqa: BLE001 — no image yet, or a broken one: the texts alone
                captions, _, preset, options = checks.page_texts(values, svc.offered, limits)
                request = checks.Request(preset, (), tuple(captions), None, options)
            computed = svc.prepare_captions(request)
        except Exception:  # noqa: BLE001 — the click says what is wrong with them
            return
        if computed:
            log.info("prepared the typed captions (%d texts and phrase sets) in %.0f ms", computed,
                     (time.perf_counter() - started) * 1e3)

    def score(self, values: Values, progress: Progress | None = None) -> Panels:
        """Score: everything shown follows the new answer (:data:`panels.RESULT`)."""
        return self._score(values, values.get("state") or PageState(), progress)

    def score_first(self, values: Values, progress: Progress | None = None) -> Panels:
        """The page's Score: the status, the story and the scores (:data:`panels.FIRST`) as soon as the
        answer is there — the page then asks for :meth:`inspect`, drawn while the person reads them."""
        return self._score(values, values.get("state") or PageState(), progress, inspect=False)

    def inspect(self, values: Values) -> Panels:
        """The selected caption inside out (:data:`panels.INSPECTOR`), after :meth:`score_first`."""
        started = time.perf_counter()
        try:
            shown = panels.inspected(values.get("state") or PageState())
        except Exception as exc:  # noqa: BLE001 — a message, never an "Error" badge on the panels
            return {"status": status_html(user_message(exc))}
        if shown:
            log.info("drew the inspector in %.0f ms", (time.perf_counter() - started) * 1e3)
        return shown

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

    def warm_examples(self, examples: Sequence[Sequence[str]], pairs: Sequence[Pair] = ()) -> int:
        """Compute the examples' answers (``[image, captions]`` as the page's examples hold them; the
        "Two images" view's example ``pairs``) as the page would request them before any setting is
        changed, and draw their panels: clicking an example then shows its answer at once — all in one
        :meth:`Service.warm_examples` (on ZeroGPU one model call for them all)."""
        svc, asked, pairings = self.service, [], {}
        start = {"preset": svc.start.name, **widgets.start_values(svc.start)}
        for image, captions in examples:
            try:
                asked.append(checks.page_request({"image": image, "captions": captions, **start}, {}, svc.offered,
                                                 svc.settings.limits))
            except Exception:  # noqa: BLE001 — a bad example must not stop the app
                log.exception("example %s cannot be requested", image)
        for pair in pairs:
            try:
                request, pairing = _pair_request(pair, start, svc)
            except Exception:  # noqa: BLE001 — a bad example must not stop the app
                log.exception("example pair %s cannot be requested", pair.images)
                continue
            asked.append(request)
            pairings[request_key(request)] = pairing

        def draw(answer: Any) -> None:
            if answer.key in pairings:
                grid_view.shown(answer, pairings[answer.key])
            else:
                panels.shown(answer, None, PageState())

        return svc.warm_examples(asked, draw=draw)

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


    # -- the "Two images" view (grid_view) ----------------------------------------------------------
    def score_grid(self, values: Values, progress: Progress | None = None) -> Panels:
        """Score the images shown against the captions: one request, one model call, then the grid."""
        svc, count = self.service, int(values.get("grid_count") or 2)
        try:
            request, pairing = checks.page_grid_request(
                values, [values[f"grid_image_{k}"] for k in range(count)],
                [values[f"grid_true_{k}"] for k in range(count)], svc.offered, svc.settings.limits)
            answer = svc.serve(request, progress)
        except Exception as exc:  # noqa: BLE001 — every failure is one message; the results shown stay
            return {"grid_status": status_html(user_message(exc))}
        return grid_view.shown(answer, pairing)

    def grid_example(self, values: Values, progress: Progress | None = None, *, pairs: Sequence[Pair] = ()
                     ) -> Panels:
        """An example pair clicked: its images, captions and pairing in the inputs, and its grid
        (computed at start: from the cache, unless a setting was changed)."""
        pair = pairs[int(values["grid_examples"])]
        svc = self.service
        try:
            request, pairing = _pair_request(pair, values, svc)
            answer = svc.serve(request, progress)
        except Exception as exc:  # noqa: BLE001 — one message
            return {"grid_status": status_html(user_message(exc))}
        slots = len(pair.images)
        inputs = {f"grid_image_{k}": pair.images[k] if k < slots else None for k in range(SLOTS)}
        inputs.update(grid_view.pairing_menus(pair.captions, pairing))
        out = {**inputs, "grid_captions": "\n".join(pair.captions), **grid_view.slots(slots),
               **grid_view.shown(answer, pairing)}
        if pair.note:
            how = "from cache" if answer.from_cache else f"in {answer.seconds:.1f} s"
            out["grid_status"] = status_html(f"Example: {pair.note}. Scored {how}.", "ok")
        return out

    def select_cell(self, values: Values) -> Panels:
        """Another cell of the grid inside out (no model call)."""
        index = values.get("grid_cell_index")
        if not isinstance(index, (list, tuple)) or len(index) != 2:
            return {}
        return grid_view.select(values.get("grid_state"), int(index[0]), int(index[1]))

    def grid_pairing(self, values: Values) -> Panels:
        """A true-caption menu changed: the story is told again with the new pairing (no model call),
        or what is wrong with the pairing is said."""
        state = values.get("grid_state") or GridState()
        if state.answer is None:
            return {}
        count = len(state.answer.results)
        try:
            pairing = checks.page_pairing([checks.pairing_index(values[GRID_TRUE[k]], k) for k in range(count)],
                                           len(state.answer.result.captions))
        except Exception as exc:  # noqa: BLE001 — one message
            return {"grid_status": status_html(user_message(exc), "info")}
        return grid_view.retold(state, pairing)

    def swap_pairing(self, values: Values) -> Panels:
        """Swap the true captions of images 1 and 2, and retell the story."""
        swapped = {**values, GRID_TRUE[0]: values.get(GRID_TRUE[1]), GRID_TRUE[1]: values.get(GRID_TRUE[0])}
        return {GRID_TRUE[0]: swapped[GRID_TRUE[0]], GRID_TRUE[1]: swapped[GRID_TRUE[1]],
                **self.grid_pairing(swapped)}

    def api_match_grid(self, images: Any, captions: Any, pairing: Any = None, options: Any = None) -> dict[str, Any]:
        svc = self.service
        try:
            request, paired = checks.grid_request(images, captions, pairing, options, svc.start.name, svc.offered,
                                                  svc.settings.limits)
            answer = svc.serve(request)
        except Exception as exc:  # noqa: BLE001 — one clear message to the client
            raise gr.Error(user_message(exc), title="Please check the input", print_exception=False) from None
        for note in answer.notices:
            gr.Warning(note)
        return grid_view.api_grid_result(answer, paired)

    api_match_grid.__doc__ = (
        f"""Score 2–4 images against the same captions with CLIP and ComCLIP (Winoground's test for two).

        Args:
            images: {LIMITS.min_images}–{LIMITS.max_images} image files (paths or URLs).
            captions: {LIMITS.min_captions}–{LIMITS.max_captions} different captions (list of strings), each at
                most {LIMITS.max_caption_chars} characters.
            pairing: optional; pairing[i] is image i's true caption index (0-based; default i ↔ i when
                images and captions are as many).
            options: optional, as /match takes them (engine options, "graphs", "preset").

        Returns: captions, pairing, clip and comclip (clip[i][j]: image i vs caption j), picks, ranks,
        winoground (2 × 2: text / image / group per method), story (one sentence per method) and
        images (each image's /match object).
        """)


def _pair_request(pair: Pair, values: Values, svc: Service) -> tuple[checks.Request, tuple[int, ...]]:
    """An example pair as the page requests it, with the page's preset and options (``values``)."""
    values = {**values, "grid_captions": "\n".join(pair.captions)}
    return checks.page_grid_request(values, pair.images, pair.pairing, svc.offered, svc.settings.limits)


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


def grid_captions_changed(values: Values) -> Panels:
    """The true-caption menus follow the "Two images" captions."""
    return grid_view.pairing_menus(checks.caption_lines(values["grid_captions"]),
                                   [values.get(name) for name in GRID_TRUE])


def more_images(values: Values) -> Panels:
    """Show one more image slot (at most :data:`grid_view.SLOTS`)."""
    return grid_view.slots(min(SLOTS, int(values.get("grid_count") or 2) + 1))


def fewer_images(values: Values) -> Panels:
    """Hide the last image slot (at least two stay) and empty it."""
    count = max(2, int(values.get("grid_count") or 2) - 1)
    return {**grid_view.slots(count), **{f"grid_image_{k}": None for k in range(count, SLOTS)}}


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
