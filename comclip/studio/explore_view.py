"""The app's "Explore a run" tab: a finished benchmark run, example by example, inside out.

The data is :mod:`comclip.eval.explore`'s (``load_run(OUT)``: headlines with counts, the outcome ×
group table, pages of examples by metric / outcome / group / order); this module turns it into the
tab's panels, as plain functions of the page's values by name (like :mod:`comclip.studio.events`;
``app.py`` lays the tab out and wires it). Names are the page's: ``explore_*``.

**Opening an example** shows its images and captions with both methods' stored scores (a captions ×
images grid: Winoground's 2×2, SVO/ComVG's sentence × pos/neg images, VL-CheckList's pos/neg captions
× image), then scores it again — through the studio's :class:`~comclip.studio.service.Service`, so
its cache, gate and ZeroGPU call apply — with the run's preset (``run.json``) and its engine options
(:meth:`Run.engine_options`, editable in the tab), and shows each image's results in the app's own
panels (:mod:`comclip.studio.panels`: summary, score table, margin, inside out). The scores are
checked against the stored ones: every one within :data:`TOLERANCE`, or a visible warning that the
models or options differ. A run whose preset this app does not offer shows its stored scores and
says how to start the app to see more. Retrieval queries show their ranks and stored top-k only.

**Which folders may be opened** (by the path box or a link ``?run=OUT&example=ID``): the app's
``--run`` folder (``COMCLIP_RUN``) and the folders under it, and the folders under ``--run-root``
(``COMCLIP_RUN_ROOT``) — after symbolic links are resolved. Any other path is refused with one
message, so a link cannot make the app read an arbitrary folder. Without either setting the tab
is not shown.
"""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gradio as gr

from comclip.caches import LRUCache
from comclip.errors import InputError
from comclip.eval.explore import FAILED, OUTCOMES, SORTS, ExampleDetail, Row, Run, load_run
from comclip.options import Options
from comclip.studio import charts, checks, panels, presentation
from comclip.studio.checks import Request
from comclip.studio.messages import user_message
from comclip.studio.page import status_html
from comclip.studio.presentation import esc, fmt_num, fmt_signed, hint
from comclip.studio.settings import Settings

if TYPE_CHECKING:
    from comclip.studio.service import Answer, Service

PAGE_SIZE = 20
#: Scores computed again agree with the stored ones within this (else: a warning).
TOLERANCE = 1e-5
ALL = "all"
THUMB = 96
OUTCOME_LABELS = {"fixed": "fixed", "broken": "broken", "both_right": "both right", "both_wrong": "both wrong",
                  FAILED: "failed"}
#: The filter menus' choices: (label, value).
OUTCOME_CHOICES = [("all outcomes", ALL)] + [(OUTCOME_LABELS[o], o) for o in (*OUTCOMES, FAILED)]
SORT_LABELS = {"order": "run order", "margin-change": "biggest change either way",
               "margin-gain": "ComCLIP's biggest gains", "margin-loss": "ComCLIP's biggest losses"}
SORT_CHOICES = [(SORT_LABELS[s], s) for s in SORTS]

#: The app's result panels the tab shows for an opened example (each named ``explore_<name>``).
SHOWN = ("summary", "scores", "margin", "score_chart", "selector", "graph", "grounding", "gallery", "weights", "loo")
LIST = ("explore_counts", "explore_list", "explore_pageinfo", "explore_offset")
EXAMPLE = ("explore_note", "explore_example", "explore_link", "explore_image",
           *(f"explore_{p}" for p in SHOWN), "explore_state")
#: What opening a run changes (its example panels are cleared).
RUN = ("explore_status", "explore_run", "explore_path", "explore_head", "explore_metric", "explore_outcome",
       "explore_group", "explore_sort", "explore_options", *LIST, *EXAMPLE)
#: What the page's first load changes (a link's run and example; the tab shown).
LOAD = (*RUN, "explore_base", "tabs")

LOAD_INPUTS = ("explore_path",)
FILTER_INPUTS = ("explore_run", "explore_metric", "explore_outcome", "explore_group", "explore_sort",
                 "explore_offset")
#: + ``explore_pick``: the example clicked in the list (the app adds it from the click).
PICK_INPUTS = ("explore_run", "explore_options", "explore_base", "explore_state")
IMAGE_INPUTS = ("explore_image", "explore_state")
CAPTION_INPUTS = ("explore_selector", "explore_state")

Values = Mapping[str, Any]
Panels = dict[str, Any]
Progress = Callable[..., Any]


@dataclass(frozen=True)
class ExploreState:
    """What one session remembers of the opened example: the run's folder, the example, each image's
    answer (None: not scored again) and its captions' keys, and the image shown inside out."""

    run: str | None = None
    example: str | None = None
    answers: tuple[Answer, ...] = ()
    labels: tuple[str, ...] = ()
    #: per image, the caption that is true of it (Winoground: caption k of image k; else the first)
    true: tuple[int, ...] = ()
    shown: int = 0


# -- folders ------------------------------------------------------------------------------------

def allowed_roots(settings: Settings) -> tuple[Path, ...]:
    """The folders under which runs may be opened (see the module's docstring)."""
    return tuple(Path(p).expanduser().resolve() for p in (settings.run, settings.run_root) if p)


def check_run_path(text: Any, settings: Settings) -> Path:
    """A typed or linked run folder, resolved, if the app may open it; else one :class:`InputError`."""
    raw = str(text or "").strip()
    if not raw:
        raise InputError("Type the folder of a finished run (what `eval --out` wrote), then press Load.")
    real = Path(raw).expanduser().resolve()
    roots = allowed_roots(settings)
    if not any(real == r or r in real.parents for r in roots):
        shown = ", ".join(str(r) for r in roots) or "none configured"
        raise InputError(f"{raw} is not a folder this app may open: runs are opened only under {shown} (the run "
                         "the app was started with, COMCLIP_RUN, and COMCLIP_RUN_ROOT).")
    return real


def example_link(base: str, run: str, example: str) -> str:
    """The link that opens ``example`` of ``run`` (``base``: the page's address)."""
    query = urllib.parse.urlencode({"run": run, "example": example})
    return f"{base.split('?', 1)[0]}?{query}"


# -- HTML -----------------------------------------------------------------------------------------

def _badge(outcome: str | None) -> str:
    name = outcome or FAILED
    return f'<span class="xbadge x-{name}">{esc(OUTCOME_LABELS.get(name, name))}</span>'


def headlines_html(run: Run) -> str:
    """The run at a glance: what it scored, and the report's overall rows with their outcome counts."""
    s = run.summary()
    models = run.info.get("models") or {}
    random = " · <b>random weights: the numbers mean nothing</b>" if models.get("random_weights") else ""
    meta = (f'<p class="xmeta"><b>{esc(s.dataset)}</b> · {s.n_total:,} examples ({s.n_scored:,} scored, '
            f"{s.n_failed:,} failed) · preset <code>{esc(s.preset)}</code> · {esc(models.get('encoder', ''))}"
            f"{random} · <code>{esc(run.out)}</code></p>")
    rows = []
    for h in s.headlines:
        if h.group is not None and run.kind != "retrieval":
            continue
        c = h.counts
        clip, com = (h.clip or 0.0), (h.comclip or 0.0)
        rows.append(f"<tr><td>{esc(h.name)}</td><td class='num'>{clip:.3f}</td><td class='num'>{com:.3f}</td>"
                    f"<td class='num'>{fmt_signed(com - clip)}</td>"
                    + "".join(f"<td class='num'>{c.get(o):,}</td>" for o in (*OUTCOMES, FAILED)) + "</tr>")
    head = "".join(f"<th>{esc(OUTCOME_LABELS[o])}</th>" for o in (*OUTCOMES, FAILED))
    notes = "".join(f'<p class="warn">{esc(n)}</p>' for n in run.notes)
    return (f'<div class="xhead">{meta}<div class="table-wrap"><table class="scores xtable"><thead><tr><th>metric</th>'
            f"<th>CLIP</th><th>ComCLIP</th><th>Δ</th>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
            f'<p class="legend">fixed: CLIP wrong, ComCLIP right · broken: CLIP right, ComCLIP wrong (a tie is '
            f"wrong) · counts are examples</p>{notes}</div>")


def counts_html(run: Run, metric: str) -> str:
    """The outcome × group table of ``metric`` (all examples first)."""
    rows = []
    for c in run.counts(metric):
        name = "all" if c.group is None else c.group
        rows.append(f"<tr><td class='cap'>{esc(name)}</td>"
                    + "".join(f"<td class='num'>{c.get(o):,}</td>" for o in (*OUTCOMES, FAILED))
                    + f"<td class='num'>{c.n_scored + c.n_failed:,}</td></tr>")
    head = "".join(f"<th>{esc(OUTCOME_LABELS[o])}</th>" for o in (*OUTCOMES, FAILED))
    return (f'<div class="table-wrap xcounts"><table class="scores xtable"><caption>{esc(metric)}: outcome × group'
            f"</caption><thead><tr><th>group</th>{head}<th>n</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
            "</div>")


def _roles(run: Run, row: Row) -> tuple[str, ...]:
    from comclip.eval.explore_source import ROLES

    if run.kind == "retrieval":
        return ("target",) if row.groups[:1] == ("t2i",) else ("query",)
    return ROLES.get(run.dataset, ())


def _numbers(run: Run, row: Row, metric: str) -> str:
    """A row's numbers under ``metric``: both methods' margins (retrieval: ranks) and the change."""
    r = row.results.get(metric)
    if r is None:
        return f'<span class="warn">not scored: {esc(row.reason or "")}</span>'
    if run.kind == "retrieval":
        return f"target rank: CLIP {r.clip:.0f} → ComCLIP {r.comclip:.0f}"
    scores = ""
    if run.kind == "pairs":
        scores = (f" · pos/neg: CLIP {fmt_num(row.clip['pos'])}/{fmt_num(row.clip['neg'])}, ComCLIP "
                  f"{fmt_num(row.comclip['pos'])}/{fmt_num(row.comclip['neg'])}")
    return f"{esc(metric)} margin: CLIP {fmt_signed(r.clip)} → ComCLIP {fmt_signed(r.comclip)}{scores}"


class Explorer:
    """The tab's events for one :class:`Service` (its settings say which folders may be opened)."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self.settings = service.settings
        self._runs: LRUCache[tuple[str, float], Run] = LRUCache(4)
        self._thumbs: LRUCache[tuple[str, str, str], str] = LRUCache(512)
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        """Whether the tab is shown: a run or a root of runs is configured."""
        return bool(allowed_roots(self.settings))

    # -- runs -------------------------------------------------------------------------------------
    def open_run(self, text: Any) -> Run:
        """The finished run in an allowed folder (loaded once while its report is unchanged)."""
        path = check_run_path(text, self.settings)
        report = path / "report.json"
        key = (str(path), report.stat().st_mtime if report.is_file() else 0.0)
        with self._lock:
            run = self._runs.get(key)
        if run is None:
            run = load_run(path)
            with self._lock:
                self._runs.put(key, run)
        return run

    def _thumb(self, run: Run, row: Row, role: str) -> str:
        key = (str(run.out), row.id, role)
        uri = self._thumbs.get(key)
        if uri is None:
            try:
                uri = presentation.image_uri(run.image(row.id, role), max_side=THUMB * 2, quality=80)
            except InputError as exc:
                uri = "!" + str(exc)
            self._thumbs.put(key, uri)
        if uri.startswith("!"):
            return f'<span class="xnoimg" title="{esc(uri[1:])}">no image</span>'
        return f'<img class="xthumb" src="{uri}" alt="{esc(role)} of {esc(row.id)}">'

    def list_html(self, run: Run, rows: Sequence[Row], metric: str) -> str:
        """One page of examples: thumbnails, captions, outcomes per metric, the metric's numbers; each
        row is a link to the example (a click opens it here)."""
        items = []
        for row in rows:
            thumbs = "".join(self._thumb(run, row, role) for role in _roles(run, row)) if row.status == "ok" else ""
            caps = "".join(f"<li>{esc(presentation.shorten(c, 110))}</li>" for c in row.captions)
            badges = (" · ".join(f"{esc(m)} {_badge(row.outcome(m))}" for m in run.metrics) if row.status == "ok"
                      else _badge(FAILED))
            href = esc("?" + urllib.parse.urlencode({"run": str(run.out), "example": row.id}))
            items.append(f'<a class="xrow" href="{href}" data-example="{esc(row.id)}"><span class="xthumbs">{thumbs}'
                         f'</span><span class="xbody"><span class="xid" title="example {row.index + 1} of the run">'
                         f"<b>{esc(row.id)}</b> · {esc(', '.join(row.groups[:2]))}</span><ul class='xcaps'>{caps}</ul>"
                         f'<span class="xbadges">{badges}</span><span class="xnums">{_numbers(run, row, metric)}'
                         "</span></span></a>")
        if not items:
            return hint("No example of this run matches these filters.")
        return '<div class="xlist">' + "".join(items) + "</div>"

    # -- events ---------------------------------------------------------------------------------
    def load(self, values: Values) -> Panels:
        """The Load button: the run in the typed folder, its first page; or one message."""
        try:
            run = self.open_run(values.get("explore_path"))
        except Exception as exc:  # noqa: BLE001 — one message; what was shown stays
            return {"explore_status": status_html(user_message(exc))}
        return self._run_panels(run)

    def _run_panels(self, run: Run) -> Panels:
        metric = run.metrics[0]
        groups = [ALL, *run.groups]
        return {"explore_status": "", "explore_run": str(run.out), "explore_path": str(run.out),
                "explore_head": headlines_html(run),
                "explore_metric": gr.update(choices=list(run.metrics), value=metric),
                "explore_outcome": gr.update(value=ALL),
                "explore_group": gr.update(choices=groups, value=ALL),
                "explore_sort": gr.update(value=run.default_sort),
                "explore_options": json.dumps(run.engine_options().to_dict(), indent=1),
                **self._page(run, metric, None, None, run.default_sort, 0), **_cleared()}

    def _page(self, run: Run, metric: str, outcome: str | None, group: str | None, sort: str, offset: int) -> Panels:
        page = run.select(metric=metric, outcome=outcome, group=group, sort=sort, limit=PAGE_SIZE, offset=offset)
        if page.total and offset >= page.total:  # past the end (the filters changed): the last page
            offset = (page.total - 1) // PAGE_SIZE * PAGE_SIZE
            page = run.select(metric=metric, outcome=outcome, group=group, sort=sort, limit=PAGE_SIZE, offset=offset)
        shown = (f"{offset + 1:,}–{offset + len(page):,} of {page.total:,} examples" if page.total
                 else "0 examples")
        return {"explore_counts": counts_html(run, metric), "explore_list": self.list_html(run, page.rows, metric),
                "explore_pageinfo": f'<p class="xpageinfo">{shown}</p>', "explore_offset": offset}

    def filtered(self, values: Values, step: int = 0) -> Panels:
        """A filter changed (``step`` 0: from the first page) or Prev/Next (``step`` ±1: a page on)."""
        try:
            run = self.open_run(values.get("explore_run"))
            offset = max(0, int(values.get("explore_offset") or 0) + step * PAGE_SIZE) if step else 0
            return {"explore_status": "", **self._page(
                run, run.check_metric(values.get("explore_metric") or None), _chosen(values.get("explore_outcome")),
                _chosen(values.get("explore_group")), values.get("explore_sort") or run.default_sort, offset)}
        except Exception as exc:  # noqa: BLE001 — one message; the list shown stays
            return {"explore_status": status_html(user_message(exc))}

    def first_load(self, query: Mapping[str, str], base: str, progress: Progress | None = None) -> Panels:
        """The page opened: a link's run and example (``?run=OUT&example=ID``), else the ``--run``
        folder; the tab is shown when a link names a run."""
        out: Panels = {"explore_base": base}
        target = query.get("run") or self.settings.run
        if not target or not self.enabled:
            return out
        try:
            run = self.open_run(target)
        except Exception as exc:  # noqa: BLE001 — one message in the tab
            return {**out, "explore_path": str(target), "explore_status": status_html(user_message(exc)),
                    "tabs": gr.Tabs(selected="explore") if query.get("run") else gr.skip()}
        out.update(self._run_panels(run))
        if query.get("run"):
            out["tabs"] = gr.Tabs(selected="explore")
        if query.get("example"):
            values = {"explore_run": str(run.out), "explore_options": out["explore_options"], "explore_base": base,
                      "explore_pick": query["example"]}
            out.update(self.open_example(values, progress))
        return out

    def open_example(self, values: Values, progress: Progress | None = None) -> Panels:
        """An example opened (clicked in the list or linked): its images, captions and stored scores,
        scored again through the service, the app's panels for its first image."""
        try:
            run = self.open_run(values.get("explore_run"))
            detail = run.example(str(values.get("explore_pick") or ""))
        except Exception as exc:  # noqa: BLE001 — one message; what was shown stays
            return {"explore_note": status_html(user_message(exc))}
        link = example_link(values.get("explore_base") or "", str(run.out), detail.row.id)
        out: Panels = {**_cleared(), "explore_link": link}
        state = ExploreState(str(run.out), detail.row.id)
        note, answers = self._scored_again(run, detail, values.get("explore_options"), progress)
        check = _check(detail, answers, self._differing(run, values.get("explore_options"))) if answers else None
        out["explore_example"] = example_html(run, detail, answers, check)
        out["explore_note"] = note
        if answers:
            labels = tuple(_probe_label(p.role) for p in detail.probes)
            true = tuple(k if run.dataset == "winoground" else 0 for k in range(len(answers)))
            state = replace(state, answers=tuple(answers), labels=labels, true=true)
            out["explore_image"] = gr.update(choices=[(lab, i) for i, lab in enumerate(labels)], value=0,
                                             visible=len(labels) > 1)
            out.update(_image_panels(state, 0))
        out["explore_state"] = state
        return out

    def _scored_again(self, run: Run, detail: ExampleDetail, options_text: Any, progress: Progress | None
                      ) -> tuple[str, list[Answer]]:
        """(a status line, one answer per image) — none when it cannot be scored here (the line says why)."""
        row, svc = detail.row, self.service
        if row.status != "ok":
            return status_html(f"This example was not scored in the run: {row.reason}", "info"), []
        if run.kind == "retrieval":
            return status_html("Retrieval queries show their ranks and stored top-k here; the inside-out panels "
                               "are for the pair benchmarks.", "info"), []
        if detail.preset not in svc.offered:
            return status_html(f"This run was scored with the preset “{detail.preset}”, which this app does not "
                               f"offer (it offers: {', '.join(svc.offered)}). Start the app with COMCLIP_PRESET="
                               f"{detail.preset} to score it again and see it inside out.", "info"), []
        try:
            options, _ = checks.check_options(options_text or run.engine_options().to_dict())
            answers, seconds = self._serve(run, row.id, detail.preset, options, progress)
        except Exception as exc:  # noqa: BLE001 — one message; the stored scores are still shown
            return status_html(user_message(exc)), []
        how = "from cache" if all(a.from_cache for a in answers) else f"in {seconds:.1f} s"
        return status_html(f"Scored again with preset “{detail.preset}” {how}.", "ok"), answers

    def _serve(self, run: Run, ex_id: str, preset: str, options: Options, progress: Progress | None
               ) -> tuple[list[Answer], float]:
        """One answer per image — images with the same captions (and graphs) go in one request — and the
        requests' seconds."""
        items = run.items(ex_id)
        answers: list[Answer] = []
        i, seconds = 0, 0.0
        while i < len(items):
            captions, graphs = items[i][1], items[i][2]
            j = i + 1
            while j < len(items) and (items[j][1], items[j][2]) == (captions, graphs):
                j += 1
            request = Request(preset, tuple(it[0] for it in items[i:j]), tuple(captions),
                              None if graphs is None else tuple(graphs), options)
            answer = self.service.serve(request, progress)
            answers += [_one_image(answer, k) for k in range(j - i)]
            i, seconds = j, seconds + answer.seconds
        return answers, seconds

    @staticmethod
    def _differing(run: Run, options_text: Any) -> tuple[str, ...]:
        """The options typed in the tab that differ from the run's, as ``name: new (the run: old)``."""
        try:
            typed = checks.check_options(options_text or None)[0].to_dict() if options_text else {}
        except InputError:
            return ()
        ran = run.engine_options().to_dict()
        return tuple(f"{k}: {typed[k]} (the run: {ran.get(k)})" for k in typed if typed[k] != ran.get(k))

    def image_changed(self, values: Values) -> Panels:
        """Another image of the example shown inside out (no model call)."""
        state = values.get("explore_state") or ExploreState()
        index = values.get("explore_image")
        if not state.answers or index is None:
            return {}
        return {**_image_panels(replace(state, shown=int(index)), int(index)),
                "explore_state": replace(state, shown=int(index))}

    def caption_changed(self, values: Values) -> Panels:
        """Another caption of the shown image inside out."""
        state = values.get("explore_state") or ExploreState()
        index = values.get("explore_selector")
        if not state.answers or index is None:
            return {}
        return {f"explore_{k}": v for k, v in panels.inspector(state.answers[state.shown], int(index)).items()
                if f"explore_{k}" in EXAMPLE}


def _chosen(value: Any) -> str | None:
    return None if value in (None, "", ALL) else str(value)


def _cleared() -> Panels:
    """The example panels before an example is opened."""
    out: Panels = {f"explore_{p}": hint("Open an example from the list: it appears here, scored again.")
                   for p in SHOWN if p != "selector"}
    out.update({"explore_note": "", "explore_example": hint("Click an example in the list to open it."),
                "explore_link": "", "explore_selector": gr.update(choices=[], value=None),
                "explore_image": gr.update(choices=[], value=None, visible=False), "explore_state": ExploreState()})
    return out


def _probe_label(role: str) -> str:
    return {"image_0": "image 0", "image_1": "image 1", "pos": "positive image", "neg": "negative image",
            "image": "image"}.get(role, role)


def _one_image(answer: Answer, k: int) -> Answer:
    """Image ``k`` of an answer as an answer of its own (its drawn panels kept with the cached answer)."""
    from comclip.studio.service import Answer

    if len(answer.results) == 1:
        return answer
    drawn = answer.drawn.setdefault(("image", k), {})
    return Answer([answer.results[k]], (answer.images[k],), answer.notices, f"{answer.key}-{k}",
                  seconds=answer.seconds, from_cache=answer.from_cache, drawn=drawn)


def _image_panels(state: ExploreState, k: int) -> Panels:
    """The app's panels for image ``k``: with two captions or more its summary (the image's own caption
    marked true: Winoground's caption k, VL-CheckList's positive), else the one caption inside out."""
    answer = state.answers[k]
    r = answer.result
    if len(r.captions) >= 2:
        true = r.captions[min(state.true[k], len(r.captions) - 1)].caption
        shown = panels.shown(answer, true, panels.PageState())
    else:
        chart = charts.score_chart(r)
        c = r.captions[0]
        shown = {"summary": (f'<div class="summary"><p class="story">{esc(state.labels[k].capitalize())} with '
                             f"“{esc(c.caption)}”: CLIP {fmt_num(c.clip_score)} → ComCLIP {fmt_num(c.comclip_score)}"
                             "</p><p class=\"meta\">One caption against each image: the table above compares the "
                             "images.</p></div>"),
                 "scores": presentation.score_table(r, 0), "margin": hint("One caption: no margin between captions."),
                 "score_chart": chart, **panels.inspector(answer, 0),
                 "selector": gr.update(choices=[(presentation.caption_label(0, c.caption, 70), 0)], value=0)}
    return {f"explore_{k_}": v for k_, v in shown.items() if f"explore_{k_}" in EXAMPLE}


@dataclass(frozen=True)
class Check:
    """Scores computed again against the stored ones: the largest difference over both methods."""

    largest: float
    computed: dict[str, dict[str, float]]
    #: the options used that differ from the run's (``name: new (the run: old)``)
    differing: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.largest <= TOLERANCE


def _check(detail: ExampleDetail, answers: Sequence[Answer], differing: tuple[str, ...] = ()) -> Check:
    computed: dict[str, dict[str, float]] = {"clip": {}, "comclip": {}}
    for probe, answer in zip(detail.probes, answers, strict=True):
        for key, c in zip(probe.keys, answer.result.captions, strict=True):
            computed["clip"][key], computed["comclip"][key] = c.clip_score, c.comclip_score
    stored = detail.record
    diffs = [abs(computed[m][k] - float(stored[m][k])) for m in computed for k in computed[m]]
    return Check(max(diffs, default=float("inf")), computed, differing)


def _check_html(detail: ExampleDetail, check: Check | None) -> str:
    if check is None:
        return ""
    if check.ok:
        return (f'<p class="xcheck ok">✓ Scored again: every score equals the stored one (largest difference '
                f"{check.largest:.1g} ≤ {TOLERANCE:g}).</p>")
    why = (f"these options differ from the run's: {'; '.join(check.differing)}" if check.differing else
           f"the models or options differ from the run's (preset “{detail.preset}”, options of run.json)")
    return (f'<p class="xcheck bad" role="alert">⚠ Scored again, the scores differ from the stored ones by up to '
            f"{check.largest:.3g} (more than {TOLERANCE:g}): {esc(why)}. The panels below show the new scores.</p>")


def _grid(detail: ExampleDetail, check: Check | None) -> str:
    """Captions × images: both methods' stored scores (and the new ones when they differ)."""
    probes = detail.probes
    captions = list(dict.fromkeys(c for p in probes for c in p.captions))
    match = {"c0_i0", "c1_i1", "pos"}
    head = "".join(f"<th>{esc(_probe_label(p.role))}</th>" for p in probes)
    rows = []
    for cap in captions:
        cells = []
        for p in probes:
            key = dict(zip(p.captions, p.keys, strict=False)).get(cap)
            if key is None:
                cells.append("<td></td>")
                continue
            clip, com = detail.record["clip"].get(key), detail.record["comclip"].get(key)
            new = ""
            if check is not None and not check.ok:
                new = (f"<br><span class='warn'>now {fmt_num(check.computed['clip'][key])} → "
                       f"{fmt_num(check.computed['comclip'][key])}</span>")
            tag = ' <span class="tag">match</span>' if key in match else ""
            cells.append(f"<td class='num'><code>{esc(key)}</code>{tag}<br>CLIP {fmt_num(clip)}<br>ComCLIP "
                         f"<b>{fmt_num(com)}</b>{new}</td>")
        rows.append(f"<tr><td class='cap'>{esc(cap)}</td>{''.join(cells)}</tr>")
    return (f'<div class="table-wrap"><table class="scores xgrid"><thead><tr><th>caption \\ image</th>{head}</tr>'
            f"</thead><tbody>{''.join(rows)}</tbody></table></div>")


def example_html(run: Run, detail: ExampleDetail, answers: Sequence[Answer], check: Check | None) -> str:
    """An opened example: its groups and outcomes, its images, the captions × images scores, the check."""
    row = detail.row
    badges = " · ".join(f"{esc(m)} {_badge(row.outcome(m))}" for m in run.metrics)
    parts = [f'<p class="xtitle"><b>Example {esc(row.id)}</b> (#{row.index + 1}) · {esc(", ".join(row.groups))}</p>',
             f'<p class="xbadges">{badges}</p>']
    figures = []
    for p in detail.probes:
        try:
            picture = presentation.picture_html(run.image(row.id, p.role), f"{p.role} of example {row.id}")
        except InputError as exc:
            picture = f'<p class="warn">{esc(str(exc))}</p>'
        figures.append(f"<figure>{picture}<figcaption>{esc(_probe_label(p.role))}</figcaption></figure>")
    if figures:
        parts.append(f'<div class="xfigures">{"".join(figures)}</div>')
    if detail.dataset_error:
        parts.append(f'<p class="warn">{esc(detail.dataset_error)}</p>')
    if run.kind == "retrieval":
        parts.append(_retrieval_html(detail))
    elif row.status == "ok" and detail.probes:
        parts.append(_grid(detail, check))
    elif row.status == "ok":
        parts.append(f"<p>{esc(' / '.join(row.captions))}</p><p>CLIP {esc(dict(row.clip))}</p>"
                     f"<p>ComCLIP {esc(dict(row.comclip))}</p>")
    parts.append(_check_html(detail, check))
    return '<div class="xexample">' + "".join(parts) + "</div>"


def _retrieval_html(detail: ExampleDetail) -> str:
    row = detail.row
    out = [f"<p>{esc(' '.join(row.captions))}</p>"] if row.captions else []
    for name, top in (("CLIP", detail.clip_top), ("ComCLIP", detail.comclip_top)):
        items = "".join(f"<li>{'<b>' if c.target else ''}{esc(c.text or c.name)} ({fmt_num(c.score)})"
                        f"{'</b>' if c.target else ''}</li>" for c in top)
        rank = row.results[next(iter(row.results))].clip if name == "CLIP" and row.results else None
        rank = row.results[next(iter(row.results))].comclip if name == "ComCLIP" and row.results else rank
        out.append(f"<p><b>{name}</b>: target at rank {rank:.0f}</p><ol>{items}</ol>" if rank is not None else "")
    return "".join(out)


#: The tab's own styles (appended to the page's CSS). Colours come from the theme's variables, so
#: the light and the dark theme both read; outcome badges keep 4.5:1 contrast in both. The selected
#: tab's name takes the link colour (the theme's accent is 4.47:1 on white).
CSS = """
#modes button.selected {color: var(--link-text-color);}
.xlist {display: flex; flex-direction: column; gap: 6px;}
a.xrow {display: flex; gap: 10px; padding: 6px 8px; border: 1px solid var(--border-color-primary);
  border-radius: 8px; text-decoration: none; color: var(--body-text-color); align-items: flex-start;}
a.xrow:hover, a.xrow:focus {background: var(--background-fill-secondary); outline: 2px solid var(--color-accent);}
.xthumbs {display: flex; gap: 4px; flex: none;}
img.xthumb {width: 80px; height: 64px; object-fit: cover; border-radius: 4px; display: block;}
.xnoimg {display: inline-block; width: 80px; height: 64px; line-height: 64px; text-align: center; font-size: 0.8em;
  border: 1px dashed var(--border-color-primary); border-radius: 4px;}
.xbody {display: flex; flex-direction: column; gap: 2px; min-width: 0; text-align: left;}
.xid, .xnums, .xmeta, .xpageinfo {font-size: 0.88em; color: var(--body-text-color-subdued);}
ul.xcaps {margin: 0; padding-left: 1.1em;}
ul.xcaps li {overflow-wrap: anywhere;}
.xbadge {display: inline-block; font-size: 0.8em; font-weight: 600; padding: 0 6px; border-radius: 8px;
  white-space: nowrap;}
.xbadge.x-fixed {background: #d3f2dc; color: #0b4a1f;}
.xbadge.x-broken {background: #fbdada; color: #7a1010;}
.xbadge.x-both_right {background: #dde6fb; color: #1a2f6b;}
.xbadge.x-both_wrong {background: #ececec; color: #333333;}
.xbadge.x-failed {background: #fff0c2; color: #4d3800;}
.xcounts {max-height: 320px; overflow-y: auto;}
table.xtable caption {text-align: left; font-weight: 600; padding: 2px 0;}
.xfigures {display: flex; gap: 10px; flex-wrap: wrap;}
.xfigures figure {margin: 0; flex: 1 1 140px; max-width: 360px;}
.xfigures figcaption {text-align: center; font-size: 0.9em;}
.xcheck {padding: 6px 10px; border-radius: 6px; margin: 6px 0;}
.xcheck.ok {background: #dcf5e3; color: #0d5323;}
.xcheck.bad {background: #fdecea; color: #8a1c1c; border: 1px solid #d32f2f; font-weight: 600;}
.xtitle, .xbadges {margin: 2px 0;}
@media (max-width: 700px) {
  img.xthumb, .xnoimg {width: 56px; height: 48px; line-height: 48px;}
  a.xrow {flex-direction: column;}
}
"""

#: The list's click: a plain click on a row opens the example here (a click with a modifier key, or
#: "copy link", uses the row's link).
LIST_JS = """element.addEventListener('click', (e) => {
  const row = e.target.closest('a.xrow');
  if (!row || e.ctrlKey || e.metaKey || e.shiftKey || e.button !== 0) return;
  e.preventDefault();
  trigger('click', {example: row.dataset.example});
});"""


#: After a click in the list: bring the opened example into view when it is below the screen (a phone).
SCROLL_TO_EXAMPLE = """() => {
  const el = document.getElementById('explore-note');
  if (el && el.getBoundingClientRect().top > window.innerHeight * 0.8) {
    el.scrollIntoView({behavior: 'smooth', block: 'start'});
  }
}"""


#: After the page loads with a link to an example: bring the example into view.
SCROLL_TO_LINKED = """() => {
  if (!new URLSearchParams(window.location.search).get('example')) return;
  const el = document.getElementById('explore-note');
  if (el) el.scrollIntoView({behavior: 'instant', block: 'start'});
}"""


def page_address(headers: Mapping[str, str]) -> str:
    """The page's own address without its query, from the page load's ``Referer``; "" if unknown (links
    are then relative: ``?run=…&example=…``)."""
    ref = str(headers.get("referer") or "")
    return ref.split("#", 1)[0].split("?", 1)[0]
