"""The HTML charts: every mark where its value says, every number written, the picks starred."""

import re

import pytest

from comclip.graph import SceneGraph
from comclip.options import Options
from comclip.result import CaptionResult, MatchResult
from comclip.studio import charts

from .test_viz import caption_result, component


def match_result(scores):
    caps = [CaptionResult(caption=f"caption {i}", clip_score=a, comclip_score=b, graph=SceneGraph(f"caption {i}"),
                          components=[]) for i, (a, b) in enumerate(scores)]
    return MatchResult(image_path=None, width=10, height=10, captions=caps, preset="tiny", models={},
                       options=Options(), logit_scale=100.0, timings_ms={})


def marks(html: str, cls: str) -> list[tuple[float, float, float]]:
    """(value, left %, width % or 0) of each mark whose class list starts with ``cls``."""
    out = []
    pattern = rf'<span class="{cls}[^"]*" data-value="([^"]+)"[^>]*style="left: ([\d.]+)%(?:; width: ([\d.]+)%)?'
    for m in re.finditer(pattern, html):
        out.append((float(m.group(1)), float(m.group(2)), float(m.group(3) or 0)))
    return out


def labels(html: str) -> list[str]:
    return [re.sub(r"<[^>]+>", "", t) for t in re.findall(r'<div class="label">(.*?)</div>', html)]


def test_score_chart_places_both_methods_on_one_scale_and_stars_the_picks():
    html = charts.score_chart(match_result([(0.30, 0.25), (0.28, 0.31), (0.10, 0.12)]))
    clip, com = marks(html, "dot clip"), marks(html, "dot comclip")
    assert [v for v, _, _ in clip] == pytest.approx([0.30, 0.28, 0.10])
    assert [v for v, _, _ in com] == pytest.approx([0.25, 0.31, 0.12])
    positions = [x for _, x, _ in clip + com]
    values = [v for v, _, _ in clip + com]
    # one linear scale: positions ordered as the values, the extremes inside the track
    assert sorted(positions) == [x for _, x in sorted(zip(values, positions, strict=True))]
    assert 0 < min(positions) < 10 and 90 < max(positions) < 100
    assert re.findall(r'class="dot (\w+) pick" data-value="([^"]+)"', html) == [("clip", "0.3"), ("comclip", "0.31")]
    assert labels(html) == ["1. caption 0 · CLIP 0.300 · ComCLIP 0.250", "2. caption 1 · CLIP 0.280 · ComCLIP 0.310",
                            "3. caption 2 · CLIP 0.100 · ComCLIP 0.120"]


def test_margin_chart_shows_true_minus_best_wrong_for_both_methods():
    r = match_result([(0.20, 0.30), (0.231, 0.288), (0.10, 0.12)])
    assert charts.margins(r, 0) == pytest.approx((-0.031, 0.012))
    html = charts.margin_chart(r, 0)
    (clip, clip_left, clip_width), (com, com_left, com_width) = marks(html, "bar")
    assert (clip, com) == pytest.approx((-0.031, 0.012))
    assert clip_left + clip_width == pytest.approx(50.0) and com_left == pytest.approx(50.0)  # from zero, each way
    assert clip_width / com_width == pytest.approx(0.031 / 0.012, rel=1e-3)
    assert labels(html) == ["CLIP: prefers a wrong caption (−0.031)", "ComCLIP: picks the true caption (+0.012)"]


def test_weights_chart_shows_weights_and_leave_one_out_effects():
    comps = [component("entity", "e0", "red ball", [(0, 0, 1, 1)], [0.9], weight=0.7, loo=0.20),
             component("entity", "e1", "blue box", weight=0.2, loo=0.26),
             component("relation", "r0", "next to", weight=0.1, loo=0.25)]
    html = charts.weights_chart(caption_result(comps, comclip=0.25))
    bars = marks(html, "bar")
    weights, effects = bars[:3], bars[3:]
    assert [v for v, _, _ in weights] == pytest.approx([0.7, 0.2, 0.1])
    assert [w for _, _, w in weights] == pytest.approx([70 / 1.15, 20 / 1.15, 10 / 1.15], abs=0.01)
    assert [v for v, _, _ in effects] == pytest.approx([0.05, -0.01, 0.0])
    assert re.findall(r'class="bar( whole)?"', html)[:3] == ["", " whole", " whole"]  # not found: the whole image
    assert labels(html)[3:] == ["entity “red ball”: +0.0500", "entity “blue box”: −0.0100",
                                "relation “next to”: +0.0000"]
    assert "colour" not in html and charts.entity_colour(0) in html.split("bar whole")[0]
    # not "+0.0000" when it is not zero
    almost = component("entity", "e0", "red ball", [(0, 0, 1, 1)], [0.9], weight=0.7, loo=0.20, comclip=0.2000751)
    assert labels(charts.weights_chart(caption_result([almost], comclip=0.2000751)))[1] == "entity “red ball”: +7.5e-05"
    assert labels(charts.weights_chart(caption_result([])))[0].startswith("No components")


def test_captions_are_escaped():
    r = match_result([(0.2, 0.3), (0.1, 0.1)])
    r.captions[0].caption = "<b>a</b> & b"
    html = charts.score_chart(r)
    assert "&lt;b&gt;a&lt;/b&gt; &amp; b" in html and "<b>a</b>" not in html
