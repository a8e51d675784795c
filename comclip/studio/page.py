"""The page's words and looks: banner, introduction, the "why CLIP is confounded" explainer,
hints, the status line, CSS and the theme (text contrast at least 4.5:1 in the light and the dark
theme, checked by the browser tests). Option help is not here: it is each option's own
(:class:`comclip.options.Options`), shared with the command line."""

from __future__ import annotations

import gradio as gr

from comclip.studio.charts import CSS as CHART_CSS
from comclip.studio.presentation import esc

PAPER = "https://arxiv.org/abs/2211.13854"

BANNER = ("⚠️ <b>Offline demo mode — random weights.</b> The <code>{preset}</code> preset's models are seeded random "
          "networks: the scores, boxes and picks below mean nothing. Use it to try the interface; start the app with "
          "a real preset (e.g. <code>python app.py --preset default</code>, which downloads once) for real results.")

INTRO = """# ComCLIP Studio
Give an image and captions that use **the same words in a different order or binding** ("a cup on a saucer" /
"a saucer on a cup"). Mark the one that is true, press **Score**, and see whether plain CLIP and ComCLIP pick it."""

WHY = f"""**The confound.** CLIP compares one global image embedding with one caption embedding. Both are dominated
by *which things* appear ("cup", "saucer"), not by *how they are related*, so swapping subject and object barely
moves the score: the meaning of the single entities confounds the match, and CLIP often prefers the wrong caption.

**The intervention.** ComCLIP (Jiang, He, Xu, Wang — NAACL 2024, [arXiv 2211.13854]({PAPER})) parses the caption
into entities and relations, finds each entity in the image (Grounding DINO), blacks out everything else, and
scores every component with the same frozen model. A component whose text matches its own sub-image gets a large
weight and pulls the image embedding toward the caption; the image is no longer judged as a bag of things.

s<sub>i</sub> = τ · cos(t<sub>i</sub>, v<sub>i</sub>), w = softmax(s), v\\* = v<sub>0</sub> + Σ<sub>i</sub>
w<sub>i</sub> v<sub>i</sub>, **score = cos(t, v\\*/‖v\\*‖)** (CLIP's score is cos(t, v<sub>0</sub>)). τ is the
model's logit scale (about 100 for CLIP), which makes the softmax sharp. No training is involved.

**Reading the results.** *Margin* = the true caption's score − the best wrong caption's score: above zero the method
picks the true caption. *Δ* = ComCLIP − CLIP for one caption. *Leave-one-out*: the ComCLIP score with one
component removed, to see what each part contributes."""

def speed_note(fast: str, size: int | None) -> str:
    """What the detector's image size trades, under the preset menu (``fast``: the smaller-size preset)."""
    return (f"**Speed or accuracy.** On a CPU nearly all the wait is the detector (Grounding DINO), and it grows with "
            f"the size of the image it reads. `default` reads images at 800 px (shortest edge), Grounding DINO's "
            f"own size (the one it was trained at); "
            f"`{fast}` reads them at {size} px: about 3× quicker on a 2-core CPU, but small objects may be missed and "
            f"boxes are coarser, so a component's sub-image and weight — and the ComCLIP score — can change. "
            f"On a GPU, use `default`.")


# (Gradio scopes this CSS; a rule starting with `.dark` must have a single selector, not a list.)
_PAGE_CSS = """
#random-banner {background: #fff4ce; border: 1px solid #8a6d00; border-radius: 8px; padding: 6px 12px;
  color: #3d2e00;}
.dark #random-banner {background: #3a2f00; border-color: #e0b400; color: #ffeeba;}
#random-banner * {color: inherit;}
#status {min-height: 2.6em;}
.status {margin: 0; padding: 6px 10px; border-radius: 6px; line-height: 1.4;}
.status.error {background: #fdecea; color: #8a1c1c; border: 1px solid #d32f2f;}
.dark .status.error {background: #3b1414; color: #ffd7d7; border-color: #ff8a80;}
.status.info {background: #e8f0fe; color: #1a3a7a; border: 1px solid #4a6fd1;}
.dark .status.info {background: #16223d; color: #d6e2ff; border-color: #8fa8ff;}
.status.ok, .hint, .summary .meta, .legend {color: #4b5260;}
.dark .status.ok {color: #c3c9d5;}
.dark .hint {color: #c3c9d5;}
.dark .summary .meta {color: #c3c9d5;}
.dark .legend {color: #c3c9d5;}
.hint {font-style: italic; margin: 4px 0;}
.summary p {margin: 4px 0;}
.summary .story {font-size: 1.08em;}
.summary .meta, .legend {font-size: 0.9em;}
.notices {margin: 4px 0 0 1.2em; padding: 0;}
.table-wrap {overflow-x: auto;}
table.scores, table.components {border-collapse: collapse; width: 100%; font-size: 0.95em;}
table.scores th, table.scores td, table.components th, table.components td {
  padding: 4px 6px; border-bottom: 1px solid var(--border-color-primary); text-align: left;
  color: var(--body-text-color); vertical-align: top;}
table.scores td.cap, table.components td.cap {overflow-wrap: break-word; word-break: normal; min-width: 6em;}
table.scores td.num, table.components td.num, table.scores td.idx {white-space: nowrap;
  font-variant-numeric: tabular-nums; text-align: right;}
table.scores td.pick {font-weight: 700; background: #e3e8ff; color: #14206b;}
.dark table.scores td.pick {background: #27306b; color: #ffffff;}
.tag {display: inline-block; font-size: 0.8em; font-weight: 600; padding: 0 6px; border-radius: 8px;
  background: #dcf5e3; color: #0d5323; white-space: nowrap;}
.dark .tag {background: #184a2a; color: #d4f7de;}
.warn {color: #8a1c1c;}
.dark .warn {color: #ffb4ab;}
img.chart, img.photo {max-width: 100%; height: auto; display: block; margin: 0 auto;}
.dark img.chart {filter: invert(1) hue-rotate(180deg);}
.gallery {display: grid; grid-template-columns: repeat(auto-fill, minmax(130px, 1fr)); gap: 10px;}
.gallery figure {margin: 0;}
.gallery img {width: 100%; height: auto; border-radius: 4px;}
.gallery figcaption {font-size: 0.88em; line-height: 1.3; overflow-wrap: break-word; color: var(--body-text-color);}
img.diagram-tall {display: none;}
@media (max-width: 700px) {
  img.diagram-wide {display: none;}
  img.diagram-tall {display: block;}
  table.scores {font-size: 0.82em;}
  table.components {font-size: 0.76em;}
  table.scores th, table.scores td, table.components th, table.components td {padding: 3px 2px;}
}
#examples td {white-space: pre-line;}
#graph-json .cm-content, #graph-json .cm-content span, #graph-json .cm-gutters {color: #1f2937;}
.dark #graph-json .cm-content {color: #e5e7eb;}
.dark #graph-json .cm-content span {color: #e5e7eb;}
.dark #graph-json .cm-gutters {color: #c3c9d5;}
"""

#: The app's styles: the page's own, then the HTML charts' (:mod:`comclip.studio.charts`).
CSS = _PAGE_CSS + CHART_CSS

#: Page-level styles outside the app's container (Gradio scopes ``CSS`` to it): the footer keeps
#: "Use via API" on phones and readable colours in both themes.
HEAD = """<style>
footer button.show-api, footer a.built-with {color: #4b5260 !important;}
.dark footer button.show-api, .dark footer a.built-with {color: #c3c9d5 !important;}
@media (max-width: 700px) {
  footer button.show-api {display: flex !important;}
  footer .show-api-divider {display: block !important;}
}
</style>"""

HINTS = {
    "summary": "Results appear here: pick an example (or add an image and captions), mark the true caption, "
               "press Score.",
    "scores": "The scores of each caption appear here after Score.",
    "margin": "The margin chart (true caption − best wrong caption, CLIP vs ComCLIP) appears here after Score.",
    "score_chart": "Each caption's CLIP and ComCLIP scores appear here after Score.",
    "graph": "The selected caption's entity graph appears here after Score.",
    "grounding": "The image with each entity's boxes appears here after Score.",
    "gallery": "Each component's sub-image appears here after Score.",
    "weights": "The weights and leave-one-out chart appear here after Score.",
    "loo": "The leave-one-out table appears here after Score.",
}


#: After Score, bring the status line (progress, then the results under it) into view if it is low on screen.
SCROLL_TO_RESULTS = """() => {
  const el = document.getElementById('status');
  if (el && el.getBoundingClientRect().top > window.innerHeight * 0.55) {
    el.scrollIntoView({behavior: 'smooth', block: 'start'});
  }
}"""


def status_html(message: str, kind: str = "error") -> str:
    role = ' role="alert"' if kind == "error" else ""
    return f'<p class="status {kind}"{role}>{esc(message)}</p>'


def theme() -> gr.themes.Base:
    """Gradio's Soft theme with colours that keep text contrast at least 4.5:1 in light and dark."""
    return gr.themes.Soft(primary_hue="indigo").set(
        block_label_text_color="*primary_800", block_title_text_color="*primary_800",
        body_text_color_subdued="#4b5260", body_text_color_subdued_dark="#c3c9d5",
        button_primary_background_fill="*primary_700", button_primary_background_fill_hover="*primary_600",
        button_primary_background_fill_dark="*primary_700", button_primary_background_fill_hover_dark="*primary_600",
        checkbox_label_background_fill_selected="*primary_700",
        checkbox_label_background_fill_selected_dark="*primary_700",
        link_text_color="*primary_800", link_text_color_dark="*primary_300",
        link_text_color_hover="*primary_700", link_text_color_hover_dark="*primary_200",
        link_text_color_visited="*primary_800", link_text_color_visited_dark="*primary_300")
