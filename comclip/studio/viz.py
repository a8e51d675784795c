"""Pictures of a ComCLIP result: the entity graph, the grounded boxes, the method's diagram.

Figures are :class:`matplotlib.figure.Figure` built without ``pyplot`` (no global figure
registry, so nothing leaks in a long-running server), shown as SVG; boxes are drawn with
``supervision``. The score, margin and weight charts are HTML (:mod:`comclip.studio.charts`).
Entity ``k`` of a graph has the same colour everywhere: its node in the graph figure, its boxes
in the annotated image and its bar in the weights chart (:func:`~comclip.studio.charts.entity_colour`).
"""

from __future__ import annotations

import functools
import math
import textwrap
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")  # a server backend; must precede any pyplot import elsewhere

import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import FancyBboxPatch  # noqa: E402
from PIL import Image  # noqa: E402

from comclip.graph import SceneGraph  # noqa: E402
from comclip.studio.charts import PALETTE, RELATION_COLOUR, entity_colour  # noqa: E402

if TYPE_CHECKING:
    import supervision as sv

    from comclip.result import CaptionResult, Component

__all__ = ["annotate_boxes", "detections", "entity_colour", "figure_html", "graph_figure", "pipeline_diagram",
           "pipeline_html"]

def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _wrap(text: str, width: int) -> str:
    return "\n".join(textwrap.wrap(text, width=width, break_long_words=True)) or text


def _message_figure(message: str, size: tuple[float, float] = (6.0, 2.0)) -> Figure:
    fig = Figure(figsize=size, dpi=100)
    fig.patch.set_alpha(0.0)
    ax = fig.add_subplot()
    ax.axis("off")
    ax.text(0.5, 0.5, _wrap(message, 50), ha="center", va="center", fontsize=11, color="#444444",
            transform=ax.transAxes)
    return fig


# -- entity graph -------------------------------------------------------------------------------

def _layout(n: int) -> list[tuple[float, float]]:
    """Node centres in [0, 1]²: a row for up to three entities, a circle beyond."""
    if n <= 3:
        return [((i + 1) / (n + 1), 0.42) for i in range(n)]
    return [(0.5 + 0.36 * math.cos(math.pi / 2 - 2 * math.pi * i / n),
             0.5 + 0.36 * math.sin(math.pi / 2 - 2 * math.pi * i / n)) for i in range(n)]


def graph_figure(graph: SceneGraph, ungrounded: Sequence[Component] = ()) -> Figure:
    """The parsed caption as a figure: entities (with their attributes) are nodes, relations are
    labelled arrows from subject to object; a relation without an object is a label under its
    subject. Entities the detector did not find (``ungrounded``, a caption's) are drawn dashed."""
    if not graph.entities:
        return _message_figure(f"“{graph.caption}”: no entities parsed, so ComCLIP = CLIP for this caption.")
    ungrounded = {c.ref for c in ungrounded}
    n = len(graph.entities)
    fig = Figure(figsize=(WIDTH, 2.8 if n <= 3 else 4.8), dpi=100)
    fig.patch.set_alpha(0.0)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.axis("off")
    ax.text(0.5, 0.97, _wrap(f"“{_short(graph.caption, 120)}”", 60), ha="center", va="top", fontsize=10, style="italic",
            color="#333333")
    nodes = {}
    for i, (e, (x, y)) in enumerate(zip(graph.entities, _layout(n), strict=True)):
        label = e.name + (f"\n[{', '.join(e.attributes)}]" if e.attributes else "")
        if e.id in ungrounded:
            label += "\n(not found)"
        nodes[e.id] = ax.text(
            x, y, label, ha="center", va="center", fontsize=11, zorder=3, fontweight="bold",
            bbox={"boxstyle": "round,pad=0.5", "facecolor": "white", "edgecolor": entity_colour(i),
                  "linewidth": 2.5, "linestyle": "--" if e.id in ungrounded else "-"})
    seen: dict[frozenset[str], int] = {}
    below: dict[str, int] = {}
    for r in graph.relations:
        src = nodes[r.subject]
        if r.object is None or r.object == r.subject:
            k = below.get(r.subject, 0)
            below[r.subject] = k + 1
            x, y = src.get_position()
            ax.text(x, y - 0.2 - 0.08 * k, f"— {r.predicate}" + (" (itself)" if r.object else ""), ha="center",
                    va="center", fontsize=10, color=RELATION_COLOUR, style="italic")
            continue
        dst = nodes[r.object]
        pair = frozenset((r.subject, r.object))
        k = seen.get(pair, 0)
        seen[pair] = k + 1
        rad = 0.25 + 0.2 * k if n > 3 or k else 0.3
        ax.annotate("", xy=(0.5, 0.5), xycoords=dst, xytext=(0.5, 0.5), textcoords=src, zorder=5,
                    arrowprops={"arrowstyle": "-|>,head_length=0.6,head_width=0.35", "color": RELATION_COLOUR,
                                "lw": 1.6, "connectionstyle": f"arc3,rad={-rad}", "shrinkA": 3, "shrinkB": 5,
                                "patchA": src.get_bbox_patch(), "patchB": dst.get_bbox_patch()})
        (x0, y0), (x1, y1) = src.get_position(), dst.get_position()
        # the arc's midpoint: arc3 puts its control point at mid + r·(dy, −dx) in display units, and a
        # quadratic Bézier passes half-way to it; convert back to data units with the figure's aspect
        bend = -rad
        fw, fh = fig.get_size_inches()
        mx = (x0 + x1) / 2 + 0.5 * bend * (y1 - y0) * fh / fw
        my = (y0 + y1) / 2 - 0.5 * bend * (x1 - x0) * fw / fh
        ax.text(mx, my, r.predicate, ha="center", va="center", fontsize=10, color="#222222", zorder=6,
                bbox={"boxstyle": "round,pad=0.25", "facecolor": "#f3f3f3", "edgecolor": "none"})
    return fig


# -- grounding ----------------------------------------------------------------------------------

def detections(caption: CaptionResult) -> sv.Detections:
    """The caption's grounded entities as supervision ``Detections``, straight from each component's
    :class:`~comclip.boxes.Boxes`: one row per box with its score, ``class_id`` the entity's index in
    the graph (its colour) and ``class_name`` its phrase."""
    import supervision as sv

    order = caption.entity_index
    found = [c for c in caption.components if c.kind == "entity" and c.grounded]
    return sv.Detections(xyxy=np.asarray([b for c in found for b in c.boxes], dtype=np.float32).reshape(-1, 4),
                         confidence=np.asarray([s for c in found for s in c.boxes.scores], dtype=np.float32),
                         class_id=np.asarray([order.get(c.ref, 0) for c in found for _ in c.boxes], dtype=int),
                         data={"class_name": np.asarray([c.text for c in found for _ in c.boxes])})


def annotate_boxes(image: Image.Image, caption: CaptionResult) -> Image.Image:
    """The image with each grounded entity's boxes drawn and labelled "phrase score" (supervision).

    Boxes take the entity's colour (its index in the caption's graph)."""
    import supervision as sv

    found = detections(caption)
    if len(found) == 0:
        return image.copy()
    labels = [f"{name} {score:.2f}" for name, score in zip(found.data["class_name"], found.confidence, strict=True)]
    palette = sv.ColorPalette.from_hex(list(PALETTE))
    side = min(image.width, image.height)
    thickness = max(2, round(side / 160))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # supervision's note that OpenCV is absent
        boxes = sv.BoxAnnotator(color=palette, thickness=thickness)
        text = sv.LabelAnnotator(color=palette, text_scale=max(0.45, side / 900), text_thickness=max(1, side // 500),
                                 text_padding=max(4, side // 100), smart_position=True)
        scene = image.convert("RGB")  # a PIL scene: supervision handles the channel order (numpy means BGR)
        scene = boxes.annotate(scene=scene.copy(), detections=found)
        scene = text.annotate(scene=scene, detections=found, labels=labels)
    return scene


# -- charts -------------------------------------------------------------------------------------
# Charts are drawn for a narrow screen first (4.2 in wide, labels on their own line above each
# bar or dot pair, never over the data) on a transparent background with dark text; in the
# dark theme the page inverts them (CSS), so they follow the theme.

WIDTH = 4.2
TEXT = "#222222"


# -- the method ---------------------------------------------------------------------------------

def pipeline_diagram(tall: bool = False) -> Figure:
    """ComCLIP in one picture: parse and ground, encode the pieces, weight them, fold them back.
    ``tall``: the same steps stacked top to bottom, for a phone."""
    steps = [("caption c\n“a mug in some grass”", "#eef2ff"), ("parse → entities eₖ\n+ relations (s, p, o)", "#fff7e6"),
             ("ground eₖ (Grounding DINO)\n→ sub-images Iᵢ", "#fff7e6"),
             ("frozen CLIP f\nv₀=f(I), vᵢ=f(Iᵢ)\nt=f(c), tᵢ=f(textᵢ)", "#e9f7ef"),
             ("weights  sᵢ = τ·cos(tᵢ, vᵢ)\nw = softmax(s)", "#fdecea"),
             ("v* = v₀ + Σᵢ wᵢ vᵢ\nscore = cos(t, v*/‖v*‖)", "#fdecea")]
    if tall:
        fig = Figure(figsize=(3.6, 7.2), dpi=100)
        ax = fig.add_axes((0, 0, 1, 1))
        ax.set_xlim(0, 3.6)
        ax.set_ylim(0, 7.2)
        ax.axis("off")
        fig.patch.set_alpha(0.0)
        steps.insert(1, ("image I", "#eef2ff"))
        h = 7.2 / len(steps)
        for i, (text, colour) in enumerate(steps):
            y = 7.2 - (i + 1) * h + 0.12
            _box(ax, 0.15, y, 3.3, h - 0.34, text, colour, fontsize=10)
            if i:
                _arrow(ax, (1.8, y + h + 0.0 - 0.12), (1.8, y + h - 0.34 + 0.0))
        return fig
    fig = Figure(figsize=(10.0, 3.0), dpi=100)
    fig.patch.set_alpha(0.0)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, 10)
    ax.set_ylim(0, 3)
    ax.axis("off")
    box = functools.partial(_box, ax)
    box(0.1, 2.0, 1.7, 0.8, *steps[0])
    box(0.1, 0.2, 1.7, 0.8, "image I", "#eef2ff")
    box(2.3, 2.0, 1.9, 0.8, *steps[1])
    box(2.3, 0.2, 1.9, 0.8, *steps[2])
    box(4.7, 1.1, 2.1, 0.8, *steps[3])
    box(7.2, 2.0, 2.6, 0.8, *steps[4])
    box(7.2, 0.2, 2.6, 0.8, *steps[5])
    for a, b in (((1.8, 2.4), (2.3, 2.4)), ((1.8, 0.6), (2.3, 0.6)), ((3.25, 2.0), (3.25, 1.0)),
                 ((4.2, 2.2), (4.7, 1.7)), ((4.2, 0.8), (4.7, 1.3)), ((6.8, 1.7), (7.2, 2.2)),
                 ((8.5, 2.0), (8.5, 1.0)), ((6.8, 1.3), (7.2, 0.8))):
        _arrow(ax, a, b)
    return fig


def _box(ax, x: float, y: float, w: float, h: float, text: str, colour: str, fontsize: float = 9) -> None:
    ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.05,rounding_size=0.12", facecolor=colour,
                                edgecolor="#555555", linewidth=1.0))
    ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=fontsize, color=TEXT)


def _arrow(ax, a: tuple[float, float], b: tuple[float, float]) -> None:
    ax.annotate("", xy=b, xytext=a, arrowprops={"arrowstyle": "-|>", "color": "#555555", "lw": 1.3})


def figure_html(fig: Figure, alt: str, cls: str = "chart", scale: float = 1.25) -> str:
    """A figure as an ``<img>`` (an SVG data URI: sharp at any size, and 2–3× faster to write than a
    PNG at twice the size) that fills its column up to ``scale`` times its natural width; text stays
    text (``svg.fonttype: none``); the page's CSS inverts ``.chart`` images in the dark theme."""
    import base64
    import html
    import io

    buf = io.BytesIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "comclip"}):
        fig.savefig(buf, format="svg", transparent=True)
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    width = round(fig.get_figwidth() * fig.dpi * scale)
    return (f'<img class="{cls}" style="width: 100%; max-width: {width}px" src="data:image/svg+xml;base64,{data}" '
            f'alt="{html.escape(alt, quote=True)}">')


def figure_to_image(fig: Figure, dpi: int | None = None) -> Image.Image:
    """Render a figure to an RGB PIL image (for files and tests)."""
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi or fig.dpi)
    buf.seek(0)
    return Image.open(buf).convert("RGB")


def pipeline_html() -> str:
    """The method diagram for the explainer: wide on a wide screen, stacked on a phone (CSS picks)."""
    return (figure_html(pipeline_diagram(), "ComCLIP step by step", "chart diagram-wide")
            + figure_html(pipeline_diagram(tall=True), "ComCLIP step by step", "chart diagram-tall"))
