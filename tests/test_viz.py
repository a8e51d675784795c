"""Figures and annotated images: what each picture holds, checked on its artists and pixels."""

import base64

import numpy as np
import pytest
from matplotlib.figure import Figure
from PIL import Image

from comclip.boxes import WHOLE_IMAGE, Boxes
from comclip.graph import Entity, Relation, SceneGraph
from comclip.options import Options
from comclip.result import CaptionResult, Component, MatchResult
from comclip.studio import viz

GRAPH = SceneGraph("a red ball next to a blue box", (Entity("e0", "ball", ("red",)), Entity("e1", "box", ("blue",))),
                   (Relation("e0", "next to", "e1"),))


def component(kind, ref, text, boxes=(), scores=(), weight=0.5, similarity=0.1, loo=0.2, comclip=0.25):
    """A component as the engine makes it (no boxes: not found, so its region is the whole image);
    its effect is its caption's ComCLIP score (``comclip``, as given to :func:`caption_result`) minus ``loo``."""
    return Component(kind=kind, ref=ref, text=text, boxes=Boxes(tuple(boxes), tuple(scores)) if boxes else WHOLE_IMAGE,
                     grounded=bool(boxes), similarity=similarity, weight=weight, loo_score=loo, effect=comclip - loo)


def caption_result(components, clip=0.2, comclip=0.25, graph=GRAPH):
    return CaptionResult(caption=graph.caption, clip_score=clip, comclip_score=comclip, graph=graph,
                         components=list(components))


def texts(fig: Figure) -> list[str]:
    return [t.get_text() for ax in fig.axes for t in ax.texts]


def hex_rgb(colour: str) -> tuple[int, int, int]:
    return tuple(int(colour[i:i + 2], 16) for i in (1, 3, 5))


def test_graph_figure_has_nodes_attributes_and_labelled_edges():
    comps = [component("entity", "e0", "red ball", [(1, 1, 5, 5)], [0.9]), component("entity", "e1", "blue box")]
    fig = viz.graph_figure(GRAPH, caption_result(comps).ungrounded)
    labels = texts(fig)
    assert "ball\n[red]" in labels
    assert "box\n[blue]\n(not found)" in labels  # ungrounded entity is marked
    assert "next to" in labels
    arrows = [a for a in fig.axes[0].texts if getattr(a, "arrow_patch", None) is not None]
    assert len(arrows) == 1
    nodes = {t.get_text(): t.get_bbox_patch() for t in fig.axes[0].texts if t.get_bbox_patch() is not None}
    assert nodes["box\n[blue]\n(not found)"].get_linestyle() not in ("-", "solid")
    assert viz.figure_to_image(fig).size == (420, 280)  # narrow first: readable on a phone


def test_graph_figure_many_entities_and_intransitive_relations():
    g = SceneGraph("x", tuple(Entity(f"e{i}", n) for i, n in enumerate(["dog", "cat", "man", "hat"])),
                   (Relation("e0", "chase", "e1"), Relation("e1", "chase", "e0"), Relation("e2", "sleep")))
    labels = texts(viz.graph_figure(g))
    assert labels.count("chase") == 2 and "— sleep" in labels


def test_graph_figure_without_entities_says_so():
    fig = viz.graph_figure(SceneGraph("very quickly"))
    assert any("no entities parsed" in t for t in texts(fig))


def test_annotate_boxes_draws_each_entity_in_its_colour():
    image = Image.new("RGB", (200, 160), "white")
    comps = [component("entity", "e0", "red ball", [(20, 40, 80, 120)], [0.9]),
             component("entity", "e1", "blue box"),  # not found: nothing drawn
             component("relation", "r0", "next to", [(20, 40, 80, 120)], [0.9])]
    out = np.asarray(viz.annotate_boxes(image, caption_result(comps)))
    assert out.shape == (160, 200, 3)
    colour = hex_rgb(viz.entity_colour(0))
    assert tuple(out[100, 20]) == colour  # left edge of the box
    assert tuple(out[100, 79]) == colour  # right edge
    assert tuple(out[150, 150]) == (255, 255, 255)  # far from the box and its label
    drawn = np.any(out != 255, axis=2)
    assert drawn[:, 120:].sum() == 0  # nothing for the ungrounded entity, nothing for the relation
    assert np.array_equal(np.asarray(image), np.full((160, 200, 3), 255, np.uint8))  # input untouched


def test_annotate_boxes_without_boxes_is_a_copy():
    image = Image.new("RGB", (64, 48), "gray")
    out = viz.annotate_boxes(image, caption_result([component("entity", "e0", "red ball")]))
    assert out is not image and np.array_equal(np.asarray(out), np.asarray(image))


def match_result(scores):
    caps = [CaptionResult(caption=f"caption {i}", clip_score=a, comclip_score=b, graph=SceneGraph(f"caption {i}"),
                          components=[]) for i, (a, b) in enumerate(scores)]
    return MatchResult(image_path=None, width=10, height=10, captions=caps, preset="tiny", models={},
                       options=Options(), logit_scale=100.0, timings_ms={})


def test_figure_html_is_a_sharp_theme_aware_image():
    html = viz.figure_html(viz.graph_figure(GRAPH), "graph “x”")
    assert html.startswith('<img class="chart" style="width: 100%; max-width: 525px" src="data:image/svg+xml;base64,')
    assert html.endswith('alt="graph “x”">')
    svg = base64.b64decode(html.split("base64,")[1].split('"')[0]).decode()
    assert "<text" in svg and "ball" in svg  # text stays text (searchable, sharp, small)


def test_pipeline_diagram_renders():
    img = viz.figure_to_image(viz.pipeline_diagram())
    assert img.size == (1000, 300)
    assert viz.figure_to_image(viz.pipeline_diagram(tall=True)).size == (360, 720)
    assert any("softmax" in t for t in texts(viz.pipeline_diagram()))


def test_detections_come_straight_from_the_components_boxes():
    comps = [component("entity", "e1", "blue box", [(1, 2, 3, 4), (5, 6, 7, 8)], [0.7, 0.4]),
             component("entity", "e0", "red ball"),  # not found: no row
             component("relation", "r0", "next to", [(1, 2, 3, 4)], [0.7])]  # relations are not drawn
    found = viz.detections(caption_result(comps))
    assert found.xyxy.tolist() == [[1, 2, 3, 4], [5, 6, 7, 8]]
    assert found.confidence.tolist() == pytest.approx([0.7, 0.4]) and found.class_id.tolist() == [1, 1]
    assert list(found.data["class_name"]) == ["blue box", "blue box"]
