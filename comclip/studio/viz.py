"""Pictures of a ComCLIP result: entity graph, grounded boxes, score and weight charts, the method.

Every chart is a :class:`matplotlib.figure.Figure` built without ``pyplot`` (no global figure
registry, so nothing leaks in a long-running server); boxes are drawn with ``supervision``.
Entity ``k`` of a graph has the same colour everywhere: its node in the graph figure, its boxes
in the annotated image and its bar in the weights chart.
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
from matplotlib.ticker import MaxNLocator  # noqa: E402
from PIL import Image  # noqa: E402

from comclip.graph import SceneGraph  # noqa: E402
from comclip.studio.presentation import fmt_signed  # noqa: E402

if TYPE_CHECKING:
    import supervision as sv

    from comclip.result import CaptionResult, Component, MatchResult

__all__ = ["CLIP_COLOUR", "COMCLIP_COLOUR", "annotate_boxes", "detections", "entity_colour", "figure_html",
           "graph_figure", "margin_chart", "pipeline_diagram", "pipeline_html", "score_chart", "weights_chart"]

#: Colours of the two methods in every chart.
CLIP_COLOUR = "#8c8c8c"
COMCLIP_COLOUR = "#3b4cc0"
#: Entity colours (hex), shared by the graph figure, the boxes and the weight bars.
PALETTE = ("#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#9a6324",
           "#469990", "#808000", "#000075", "#800000")
RELATION_COLOUR = "#555555"


def entity_colour(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


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
GOOD, BAD = "#1a7f37", "#c62828"


def _new_figure(height: float) -> Figure:
    fig = Figure(figsize=(WIDTH, height), dpi=100, layout="constrained")
    fig.patch.set_alpha(0.0)
    return fig


def _plain_axes(ax, *, keep_x: bool = True) -> None:
    ax.set_facecolor("none")
    ax.spines[["top", "right", "left"]].set_visible(False)
    ax.tick_params(axis="y", left=False, labelleft=False)
    ax.tick_params(axis="x", labelsize=10, colors=TEXT)
    if not keep_x:
        ax.spines["bottom"].set_visible(False)
        ax.tick_params(axis="x", bottom=False, labelbottom=False)


def _label_rows(ax, ys: Sequence[float], labels: Sequence[str], x: float) -> None:
    """Each row's label on its own line above the row (data coordinates: x left edge)."""
    for y, label in zip(ys, labels, strict=True):
        ax.text(x, y + 0.42, label, ha="left", va="bottom", fontsize=10.5, color=TEXT, clip_on=False)


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def score_chart(result: MatchResult) -> Figure:
    """Baseline (CLIP) vs ComCLIP score per caption: two dots joined by an arrow (the change);
    each method's pick is a star. Caption labels sit on their own line above their dots."""
    caps = result.captions
    n = len(caps)
    fig = _new_figure(0.9 + 0.62 * n)
    ax = fig.add_subplot()
    ys = np.arange(n)[::-1].astype(float)
    clip = np.array([c.clip_score for c in caps])
    com = np.array([c.comclip_score for c in caps])
    lo, hi = float(min(clip.min(), com.min())), float(max(clip.max(), com.max()))
    pad = max((hi - lo) * 0.1, 0.005)
    for y, a, b in zip(ys, clip, com, strict=True):
        ax.annotate("", xy=(b, y), xytext=(a, y),
                    arrowprops={"arrowstyle": "-|>", "color": "#999999", "lw": 1.5, "shrinkA": 4, "shrinkB": 4})
    for values, colour, label, best in ((clip, CLIP_COLOUR, "CLIP", result.best_clip),
                                        (com, COMCLIP_COLOUR, "ComCLIP", result.best_comclip)):
        ax.scatter(values, ys, s=60, color=colour, label=label, zorder=3)
        ax.scatter([values[best]], [ys[best]], s=260, marker="*", color=colour, edgecolor="black", linewidth=0.6,
                   zorder=4)
    _label_rows(ax, ys, [f"{i + 1}. " + _short(c.caption, 46) for i, c in enumerate(caps)], lo - pad)
    ax.set_xlim(lo - pad, hi + pad)
    ax.set_ylim(-0.5, n - 0.05)
    ax.set_yticks([])
    ax.set_xlabel("score = cosine similarity (★ = pick)", fontsize=10, color=TEXT)
    ax.xaxis.set_major_locator(MaxNLocator(nbins=4))
    ax.grid(axis="x", color="#dddddd")
    _plain_axes(ax)
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncols=2, frameon=False, fontsize=10,
              labelcolor=TEXT)
    return fig


def margin_chart(result: MatchResult, true: int) -> Figure:
    """The margin of each method: score of the true caption − best score of a wrong caption.
    Right of zero the method picks the true caption; left of zero a wrong one."""
    margins = []
    for attr in ("clip_score", "comclip_score"):
        scores = [getattr(c, attr) for c in result.captions]
        margins.append(scores[true] - max(s for j, s in enumerate(scores) if j != true))
    fig = _new_figure(2.3)
    ax = fig.add_subplot()
    ys = np.array([1.0, 0.0])
    ax.barh(ys, margins, height=0.42, color=[GOOD if m > 0 else BAD for m in margins])
    span = max(abs(m) for m in margins) or 1e-3
    ax.set_xlim(-span * 1.35, span * 1.35)
    ax.axvline(0, color="#555555", lw=1)
    names = ("CLIP", "ComCLIP")
    for y, m, name in zip(ys, margins, names, strict=True):
        verdict = "picks the true caption" if m > 0 else "prefers a wrong caption"
        ax.text(-span * 1.35, y + 0.3, f"{name}: {verdict} ({fmt_signed(m)})",
                ha="left", va="bottom", fontsize=10.5, color=TEXT, zorder=3,
                bbox={"boxstyle": "square,pad=0.1", "facecolor": "white", "edgecolor": "none", "alpha": 0.85})
    ax.set_ylim(-0.4, 1.75)
    ax.set_yticks([])
    ax.set_xlabel("margin = true − best wrong caption's score", fontsize=10, color=TEXT)
    ax.xaxis.set_major_locator(MaxNLocator(nbins=4, symmetric=True))
    _plain_axes(ax)
    return fig


def weights_chart(caption: CaptionResult) -> Figure:
    """Top: each component's weight w_i (bar, with its similarity cos(t_i, v_i)). Bottom: what each
    component does to this caption's ComCLIP score (ComCLIP − ComCLIP without it)."""
    comps = caption.components
    if not comps:
        return _message_figure("No components: ComCLIP = CLIP for this caption.")
    order = caption.entity_index
    colours = [entity_colour(order.get(c.ref, 0)) if c.kind == "entity" else RELATION_COLOUR for c in comps]
    n = len(comps)
    fig = Figure(figsize=(WIDTH, 1.6 + 1.15 * n), dpi=100, layout="constrained")
    fig.patch.set_alpha(0.0)
    top, bottom = fig.subplots(2, 1)
    ys = np.arange(n)[::-1].astype(float)
    labels = [f"{c.kind} “{_short(c.text, 26)}”" for c in comps]
    weights = np.array([c.weight for c in comps])
    bars = top.barh(ys, weights, height=0.4, color=colours)
    for bar, c in zip(bars, comps, strict=True):
        if not c.grounded:  # the whole image stood in for it
            bar.set_alpha(0.45)
            bar.set_hatch("//")
    for y, c in zip(ys, comps, strict=True):
        top.text(c.weight, y, f" {c.weight:.2f}", va="center", fontsize=10, color=TEXT)
    _label_rows(top, ys, [f"{lab} · similarity {fmt_signed(c.similarity)}" + ("" if c.grounded else " · whole image")
                          for lab, c in zip(labels, comps, strict=True)], 0.0)
    top.set_xlim(0.0, max(1.0, float(weights.max())) * 1.15)
    top.set_ylim(-0.5, n - 0.05)
    top.set_title(r"weight $w_i$ (the weights sum to 1)", fontsize=10.5, color=TEXT, loc="left")
    _plain_axes(top)
    effect = np.array([c.effect for c in comps])
    bottom.barh(ys, effect, height=0.4, color=[GOOD if v >= 0 else BAD for v in effect])
    bottom.axvline(0, color="#555555", lw=0.8)
    span = float(np.abs(effect).max()) or 1e-4
    bottom.set_xlim(-span * 1.5, span * 1.5)
    _label_rows(bottom, ys, [f"{lab}: {fmt_signed(v, 4)}" for lab, v in zip(labels, effect, strict=True)], -span * 1.5)
    bottom.set_ylim(-0.5, n - 0.05)
    bottom.xaxis.set_major_locator(MaxNLocator(nbins=3, symmetric=True))
    bottom.set_title("effect = ComCLIP − ComCLIP without it", fontsize=10.5, color=TEXT, loc="left")
    _plain_axes(bottom)
    return fig


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
    """A figure as an ``<img>`` (PNG data URI, drawn at twice its size so it stays sharp) that
    fills its column up to ``scale`` times its natural width; the page's CSS inverts ``.chart``
    images in the dark theme."""
    import base64
    import html
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=2 * fig.dpi, transparent=True)
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    width = round(fig.get_figwidth() * fig.dpi * scale)
    return (f'<img class="{cls}" style="width: 100%; max-width: {width}px" src="data:image/png;base64,{data}" '
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
