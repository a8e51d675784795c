"""The result's charts as HTML: each caption's two scores, each method's margin, each component's
weight and effect.

Plain HTML and CSS (positions and widths in percent of the chart's width), so a chart costs
well under a millisecond to make (a matplotlib figure saved as PNG cost 50–330 ms each on a
2-core CPU), follows the page's theme (text in the theme's colour; no picture to invert) and
reflows on a phone. Every number drawn is also written as text, and each mark carries its value
(``data-value``) for tests and for people who read the page with a screen reader (``title``).
The styles are :data:`CSS`, added to the page's own.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import TYPE_CHECKING

from comclip.studio.presentation import fmt_num, fmt_signed

if TYPE_CHECKING:
    from comclip.result import CaptionResult, MatchResult

#: Colours of the two methods and of a good or bad change (the graph and boxes use the same).
CLIP_COLOUR = "#8c8c8c"
COMCLIP_COLOUR = "#3b4cc0"
GOOD = "#1a7f37"
BAD = "#c62828"
RELATION_COLOUR = "#555555"
#: Entity colours (hex), shared by the graph figure, the boxes and the weight bars.
PALETTE = ("#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#9a6324",
           "#469990", "#808000", "#000075", "#800000")

CSS = """
.hchart {font-size: 0.95em; color: var(--body-text-color); margin: 4px 0 8px;}
.hchart .title {font-weight: 600; margin: 6px 0 2px;}
.hchart .row {margin: 2px 0 8px;}
.hchart .label {overflow-wrap: anywhere; line-height: 1.3;}
.hchart .track {position: relative; height: 16px; margin: 2px 4px;}
.hchart .track.axis {border-bottom: 1px solid var(--border-color-primary);}
.hchart .zero {position: absolute; top: -2px; bottom: -2px; width: 0; border-left: 1px solid var(--body-text-color);
  opacity: 0.6;}
.hchart .bar {position: absolute; top: 3px; height: 10px; border-radius: 2px;}
.hchart .bar.whole {opacity: 0.5; background-image: repeating-linear-gradient(45deg, transparent 0 3px,
  rgba(255,255,255,0.7) 3px 6px);}
.hchart .dot {position: absolute; top: 2px; width: 12px; height: 12px; margin-left: -6px; border-radius: 50%;}
.hchart .dot.pick {top: -1px; width: 18px; height: 18px; margin-left: -9px; border-radius: 0;
  clip-path: polygon(50% 0, 61% 35%, 98% 35%, 68% 57%, 79% 91%, 50% 70%, 21% 91%, 32% 57%, 2% 35%, 39% 35%);}
.hchart .move {position: absolute; top: 7px; height: 2px; background: #999999;}
.hchart .value {position: absolute; top: -1px; font-size: 0.85em; white-space: nowrap; padding-left: 4px;}
.hchart .legend, .hchart .scale {display: flex; justify-content: space-between; gap: 8px; font-size: 0.85em;
  opacity: 0.85; flex-wrap: wrap;}
.hchart .key {display: inline-block; width: 10px; height: 10px; border-radius: 50%; margin: 0 4px 0 8px;
  vertical-align: baseline;}
"""


def entity_colour(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def _pos(value: float, lo: float, hi: float) -> float:
    """Where ``value`` lies on ``[lo, hi]``, in percent (rounded: HTML needs no more)."""
    return round(100.0 * (value - lo) / (hi - lo), 2) if hi > lo else 50.0


def _bar(value: float, lo: float, hi: float, colour: str, cls: str = "bar", title: str = "") -> str:
    """A bar from 0 to ``value`` on ``[lo, hi]`` (0 inside it)."""
    a, b = sorted((_pos(0.0, lo, hi), _pos(value, lo, hi)))
    return (f'<span class="{cls}" data-value="{value:.6g}" title="{escape(title)}" '
            f'style="left: {a}%; width: {round(b - a, 2)}%; background-color: {colour}"></span>')


def _chart(kind: str, alt: str, body: Sequence[str]) -> str:
    return f'<div class="hchart {kind}" role="img" aria-label="{escape(alt)}">' + "".join(body) + "</div>"


def score_chart(result: MatchResult) -> str:
    """Each caption's CLIP and ComCLIP score on one common scale: two dots joined by a line (the
    change); each method's pick is a star."""
    caps = result.captions
    values = [c.clip_score for c in caps] + [c.comclip_score for c in caps]
    lo, hi = min(values), max(values)
    pad = max((hi - lo) * 0.08, 0.005)
    lo, hi = lo - pad, hi + pad
    rows = []
    for i, c in enumerate(caps):
        a, b = sorted((_pos(c.clip_score, lo, hi), _pos(c.comclip_score, lo, hi)))
        marks = [f'<span class="move" style="left: {a}%; width: {round(b - a, 2)}%"></span>']
        for name, value, colour, best in (("CLIP", c.clip_score, CLIP_COLOUR, result.best_clip),
                                          ("ComCLIP", c.comclip_score, COMCLIP_COLOUR, result.best_comclip)):
            cls = f"dot {name.lower()}" + (" pick" if i == best else "")
            marks.append(f'<span class="{cls}" data-value="{value:.6g}" title="{name} {fmt_num(value)}" '
                         f'style="left: {_pos(value, lo, hi)}%; background-color: {colour}"></span>')
        rows.append(f'<div class="row"><div class="label">{i + 1}. {escape(c.caption)} · CLIP {fmt_num(c.clip_score)}'
                    f' · ComCLIP {fmt_num(c.comclip_score)}</div><div class="track axis">{"".join(marks)}</div></div>')
    legend = (f'<div class="legend"><span><span class="key" style="background: {CLIP_COLOUR}"></span>CLIP'
              f'<span class="key" style="background: {COMCLIP_COLOUR}"></span>ComCLIP</span>'
              '<span>score = cosine similarity (★ = pick)</span></div>')
    scale = f'<div class="scale"><span>{fmt_num(lo)}</span><span>{fmt_num(hi)}</span></div>'
    return _chart("scores-chart", "CLIP and ComCLIP score of each caption", [legend, *rows, scale])


def margins(result: MatchResult, true: int) -> tuple[float, float]:
    """Each method's margin (CLIP, ComCLIP): the true caption's score − the best wrong caption's."""
    out = []
    for attr in ("clip_score", "comclip_score"):
        scores = [getattr(c, attr) for c in result.captions]
        out.append(scores[true] - max(s for j, s in enumerate(scores) if j != true))
    return out[0], out[1]


def margin_chart(result: MatchResult, true: int) -> str:
    """The margin of each method as a bar from zero: right of zero the method picks the true
    caption, left of zero a wrong one."""
    both = margins(result, true)
    span = (max(abs(m) for m in both) or 1e-3) * 1.15
    rows = []
    for name, m in zip(("CLIP", "ComCLIP"), both, strict=True):
        verdict = "picks the true caption" if m > 0 else "prefers a wrong caption"
        rows.append(f'<div class="row"><div class="label">{name}: {verdict} ({fmt_signed(m)})</div>'
                    f'<div class="track"><span class="zero" style="left: 50%"></span>'
                    f'{_bar(m, -span, span, GOOD if m > 0 else BAD, title=f"{name} margin {fmt_signed(m)}")}'
                    '</div></div>')
    note = '<div class="scale"><span>margin = true − best wrong caption’s score</span></div>'
    return _chart("margin-chart", "margin of CLIP and ComCLIP", [*rows, note])


def weights_chart(caption: CaptionResult) -> str:
    """Each component's weight w_i (with its similarity cos(t_i, v_i); hatched: the whole image
    stood in for it) and its effect on this caption's ComCLIP score (the score − the score without it)."""
    comps = caption.components
    if not comps:
        return _chart("weights-chart", "no components", ['<div class="label">No components: ComCLIP = CLIP for '
                                                         'this caption.</div>'])
    order = caption.entity_index
    top = max(1.0, max(c.weight for c in comps)) * 1.15
    span = (max(abs(c.effect) for c in comps) or 1e-4) * 1.15
    rows = ['<div class="title">weight w<sub>i</sub> (the weights sum to 1)</div>']
    effects = ['<div class="title">effect = ComCLIP − ComCLIP without it</div>']
    for c in comps:
        colour = entity_colour(order.get(c.ref, 0)) if c.kind == "entity" else RELATION_COLOUR
        label = f"{c.kind} “{escape(c.text)}”"
        whole = "" if c.grounded else " · whole image"
        bar = _bar(c.weight, 0.0, top, colour, "bar" if c.grounded else "bar whole", f"weight {c.weight:.2f}")
        rows.append(f'<div class="row"><div class="label">{label} · similarity {fmt_signed(c.similarity)}{whole}</div>'
                    f'<div class="track">{bar}<span class="value" style="left: {_pos(c.weight, 0.0, top)}%">'
                    f'{c.weight:.2f}</span></div></div>')
        effects.append(f'<div class="row"><div class="label">{label}: {fmt_signed(c.effect, 4)}</div>'
                       f'<div class="track"><span class="zero" style="left: 50%"></span>'
                       f'{_bar(c.effect, -span, span, GOOD if c.effect >= 0 else BAD)}</div></div>')
    return _chart("weights-chart", f"weights and leave-one-out effects for “{caption.caption}”", [*rows, *effects])

