"""The page's panels by name, and what a scored request shows in them.

Every event (:mod:`comclip.studio.events`) returns a dict of the panels it changes, keyed by the
names below; a panel left out keeps what it shows. ``app.py`` gives each name its component and
nothing else: no event counts outputs by position. The values are what Gradio takes for each
component (HTML, JSON text, ``gr.update(...)`` for menus and downloads) and the session's
:class:`PageState`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, TypeVar

import gradio as gr

from comclip.caches import LRUCache
from comclip.graph import SceneGraph
from comclip.studio import presentation, viz
from comclip.studio.notes import parse_notes_html
from comclip.studio.page import status_html
from comclip.studio.session import ResultCache

if TYPE_CHECKING:
    from comclip.studio.session import Scored

#: The story of a result: who picks the true caption, the score table, the margin chart, downloads.
STORY = ("summary", "scores", "margin", "download_json", "download_csv")
#: One caption inside out: its graph (figure and editable JSON), grounding, sub-images, weights, leave-one-out.
DETAILS = ("graph", "graph_json", "grounding", "gallery", "weights", "loo")
#: Everything a score changes.
SCORED = ("status", *STORY, "score_chart", "selector", *DETAILS, "state")

Panels = dict[str, Any]
T = TypeVar("T")

#: Drawn panels by (request, what): a result served again from the cache (an example's, a repeated
#: request) shows at once instead of drawing its charts and pictures again (~0.1–0.3 s each).
_DRAWN: LRUCache[tuple[str, str, Any], Any] = LRUCache(256)


def _drawn(scored: Scored, what: str, arg: Any, draw: Callable[[], T]) -> T:
    """``draw()``, or what it drew before for this request (same result, same image pixels)."""
    if scored.key is None:
        return draw()
    return _DRAWN.get_or_compute((scored.key, what, arg), draw)


@dataclass(frozen=True)
class PageState:
    """What one browser session remembers between events: the last result, the caption shown in
    the inspector, and the graphs the user edited (JSON, by caption) — used until reset."""

    scored: Scored | None = None
    selected: str | None = None
    overrides: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def with_graph(self, caption: str, graph: SceneGraph) -> PageState:
        return replace(self, selected=caption, overrides={**self.overrides, caption: graph.to_dict()})

    def without_graph(self, caption: str) -> PageState:
        return replace(self, selected=caption, overrides={c: g for c, g in self.overrides.items() if c != caption})


def details(scored: Scored, index: int) -> Panels:
    """Caption ``index`` inside out."""
    return dict(_drawn(scored, "details", index, lambda: _details(scored, index)))


def _details(scored: Scored, index: int) -> Panels:
    c = scored.result.captions[index]
    image = scored.image.image
    return {"graph": viz.figure_html(viz.graph_figure(c.graph, c.components), f"entity graph of “{c.caption}”")
            + parse_notes_html(c.graph),
            "graph_json": presentation.graph_json(c.graph),
            "grounding": presentation.picture_html(viz.annotate_boxes(image, c), f"boxes found for “{c.caption}”")
            + presentation.ungrounded_html(c),
            "gallery": presentation.gallery_html(image, c, scored.result.options.subimage),
            "weights": viz.figure_html(viz.weights_chart(c), f"weights and leave-one-out effects for “{c.caption}”"),
            "loo": presentation.component_table(c, scored.result.logit_scale)}


def story(scored: Scored, true_caption: str | None) -> Panels:
    """The story of a result for the caption marked true, and its downloads."""
    r = scored.result
    t = presentation.true_index(r, true_caption)
    key = ResultCache.key(r.preset, scored.image.image, [c.caption for c in r.captions], None, r.options)
    json_path, csv_path = presentation.write_downloads(r, t, key)
    return {"summary": presentation.summary_html(scored, true_caption), "scores": presentation.score_table(r, t),
            "margin": _drawn(scored, "margin", t,
                             lambda: viz.figure_html(viz.margin_chart(r, t), "margin of CLIP and ComCLIP")),
            "download_json": gr.update(value=json_path, visible=True),
            "download_csv": gr.update(value=csv_path, visible=True)}


def shown(scored: Scored, true_caption: str | None, state: PageState) -> Panels:
    """Every panel after a score: the inspector keeps the caption it showed when it is still there,
    else shows the true one."""
    r = scored.result
    captions = [c.caption for c in r.captions]
    index = captions.index(state.selected) if state.selected in captions else presentation.true_index(r, true_caption)
    how = "from cache" if scored.cached else f"in {scored.seconds:.1f} s"
    choices = [(presentation.caption_label(i, c, 70), i) for i, c in enumerate(captions)]
    return {"status": status_html(f"Scored {len(captions)} captions {how}.", "ok"), **story(scored, true_caption),
            "score_chart": _drawn(scored, "score_chart", None, lambda: viz.figure_html(
                viz.score_chart(r), "CLIP and ComCLIP score of each caption")),
            "selector": gr.update(choices=choices, value=index), **details(scored, index),
            "state": replace(state, scored=scored, selected=captions[index])}
