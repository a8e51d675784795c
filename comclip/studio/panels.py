"""The page's panels by name, and what an answer shows in them.

Every event (:mod:`comclip.studio.events`) returns a dict of the panels it changes, keyed by the
names below; a panel left out keeps what it shows. ``app.py`` gives each name its component and
nothing else: no event counts outputs by position. The values are what Gradio takes for each
component (HTML, JSON text, ``gr.update(...)`` for menus and downloads) and the session's
:class:`PageState`.

Drawing a chart or a picture takes tens of milliseconds; what is drawn for an answer is kept in the
answer's own memo (:attr:`~comclip.studio.service.Answer.drawn`), which lives as long as its results
stay in the cache — for the examples, for good — so an answer shown again is not drawn again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, TypeVar

import gradio as gr

from comclip.graph import SceneGraph
from comclip.studio import charts, presentation, viz
from comclip.studio.notes import parse_notes_html
from comclip.studio.page import status_html

if TYPE_CHECKING:
    from comclip.studio.service import Answer

#: The summary of an answer: the story, the score table, the margin chart, the downloads.
SUMMARY = ("summary", "scores", "margin", "download_json", "download_csv")
#: One caption inside out: its graph (figure and editable JSON), grounding, sub-images, weights, leave-one-out.
INSPECTOR = ("graph", "graph_json", "grounding", "gallery", "weights", "loo")
#: Everything a new answer changes.
RESULT = ("status", *SUMMARY, "score_chart", "selector", *INSPECTOR, "state")
#: What the page shows first after a new answer — the status, the story, the scores and their charts;
#: the inspector follows in a second event (``Studio.inspect``), drawn while the person reads the scores.
FIRST = tuple(name for name in RESULT if name not in INSPECTOR)

Panels = dict[str, Any]
T = TypeVar("T")


def drawn(answer: Answer, what: str, arg: Any, draw: Callable[[], T]) -> T:
    """``draw()``, or what it drew before for this answer (kept with the answer's results)."""
    key = (what, arg)
    if key not in answer.drawn:
        answer.drawn[key] = draw()  # two threads may draw the same thing at once: the same value
    return answer.drawn[key]


@dataclass(frozen=True)
class PageState:
    """What one browser session remembers between events: the last answer, the caption shown in
    the inspector, and the graphs the person edited (JSON, by caption) — used until reset."""

    answer: Answer | None = None
    selected: str | None = None
    overrides: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def with_graph(self, caption: str, graph: SceneGraph) -> PageState:
        return replace(self, selected=caption, overrides={**self.overrides, caption: graph.to_dict()})

    def without_graph(self, caption: str) -> PageState:
        return replace(self, selected=caption, overrides={c: g for c, g in self.overrides.items() if c != caption})


def inspector(answer: Answer, index: int, image: int = 0) -> Panels:
    """Caption ``index`` inside out, on the answer's image ``image`` (the first; another for a grid)."""
    arg = index if image == 0 else (image, index)
    return dict(drawn(answer, "inspector", arg, lambda: _inspector(answer, index, image)))


def _inspector(answer: Answer, index: int, at: int = 0) -> Panels:
    result = answer.results[at]
    c = result.captions[index]
    image = answer.images[at].image
    graph = viz.figure_html(viz.graph_figure(c.graph, c.ungrounded), f"entity graph of “{c.caption}”")
    return {"graph": graph + parse_notes_html(c.graph),
            "graph_json": presentation.graph_json(c.graph),
            "grounding": presentation.picture_html(viz.annotate_boxes(image, c), f"boxes found for “{c.caption}”")
            + presentation.ungrounded_html(c),
            "gallery": presentation.gallery_html(image, c, result.options.subimage),
            "weights": charts.weights_chart(c),
            "loo": presentation.component_table(c, result.logit_scale)}


def summary(answer: Answer, true_caption: str | None) -> Panels:
    """The summary of an answer for the caption marked true, and its downloads."""
    r = answer.result
    t = presentation.true_index(r, true_caption)
    json_path, csv_path = presentation.write_downloads(r, t, answer.key)
    return {"summary": presentation.summary_html(answer, true_caption), "scores": presentation.score_table(r, t),
            "margin": charts.margin_chart(r, t),
            "download_json": gr.update(value=json_path, visible=True),
            "download_csv": gr.update(value=csv_path, visible=True)}


def shown(answer: Answer, true_caption: str | None, state: PageState, inspect: bool = True) -> Panels:
    """Every panel after a new answer (``inspect=False``: all but the inspector's, :data:`FIRST`): the
    inspector keeps the caption it showed when it is still there, else shows the true one."""
    r = answer.result
    captions = [c.caption for c in r.captions]
    index = captions.index(state.selected) if state.selected in captions else presentation.true_index(r, true_caption)
    how = "from cache" if answer.from_cache else f"in {answer.seconds:.1f} s"
    choices = [(presentation.caption_label(i, c, 70), i) for i, c in enumerate(captions)]
    return {"status": status_html(f"Scored {len(captions)} captions {how}.", "ok"), **summary(answer, true_caption),
            "score_chart": charts.score_chart(r),
            "selector": gr.update(choices=choices, value=index), **(inspector(answer, index) if inspect else {}),
            "state": replace(state, answer=answer, selected=captions[index])}


def inspected(state: PageState) -> Panels:
    """The inspector's panels for the caption ``state`` has selected (none when it has no answer)."""
    if state.answer is None or state.selected is None:
        return {}
    captions = [c.caption for c in state.answer.result.captions]
    return inspector(state.answer, captions.index(state.selected)) if state.selected in captions else {}
