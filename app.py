"""ComCLIP Studio — the Gradio app (also a Hugging Face Space).

Layout and wiring only: checking requests, serving them and presenting results live in
``comclip.studio`` (requests, session, presentation, viz, counterfactuals).

    pip install -r requirements.txt && python app.py          # default preset (downloads once)
    COMCLIP_PRESET=tiny python app.py                          # offline, random weights
"""

from __future__ import annotations

import argparse
import os
import sys

USAGE = """Environment: COMCLIP_PRESET (default|large|tiny), COMCLIP_DEVICE (auto|cpu|cuda|mps),
GRADIO_SERVER_NAME / GRADIO_SERVER_PORT, COMCLIP_CONCURRENCY (model calls at once, default 1),
COMCLIP_MAX_ENGINES (presets kept loaded, default 2), COMCLIP_PIXEL_CAP, COMCLIP_MAX_UPLOAD,
COMCLIP_MAX_CAPTION_CHARS. Options given here override the environment."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line, parsed before anything heavy is imported (``--help`` loads no model)."""
    parser = argparse.ArgumentParser(
        prog="python app.py", description="ComCLIP Studio: compare CLIP and ComCLIP on an image and captions "
        "in the browser.", epilog=USAGE, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", help="preset to load at start (env COMCLIP_PRESET; default: default)")
    parser.add_argument("--host", help="address to listen on (env GRADIO_SERVER_NAME; default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to listen on (env GRADIO_SERVER_PORT; default 7860)")
    return parser.parse_args(argv)


if __name__ == "__main__":
    ARGS = parse_args()

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

try:  # Hugging Face ZeroGPU: `spaces` must be imported before torch initialises CUDA
    import spaces
except ImportError:  # anywhere else: no GPU decorator, plain calls
    spaces = None

import json  # noqa: E402
import logging  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from types import SimpleNamespace  # noqa: E402
from typing import TYPE_CHECKING, Any  # noqa: E402

import gradio as gr  # noqa: E402

from comclip import parse as parsing  # noqa: E402
from comclip.errors import ComCLIPError, GraphError  # noqa: E402
from comclip.graph import SceneGraph  # noqa: E402
from comclip.images import LoadedImage  # noqa: E402
from comclip.loading import missing_downloads  # noqa: E402
from comclip.options import OptionField, Options  # noqa: E402
from comclip.presets import Preset, get_preset  # noqa: E402
from comclip.result import MatchResult  # noqa: E402
from comclip.studio import counterfactuals, presentation, requests, session, viz  # noqa: E402
from comclip.studio.presentation import esc, hint  # noqa: E402

if TYPE_CHECKING:
    from comclip.engine import ComCLIP

log = logging.getLogger("comclip.app")
ROOT = Path(__file__).resolve().parent
PAPER = "https://arxiv.org/abs/2211.13854"
EXAMPLE_URL = "https://github.com/scikit-image/scikit-image/raw/main/skimage/data/coffee.png"


def _run_match(engine: ComCLIP, image: LoadedImage, captions: list[str], graphs: list[SceneGraph | None] | None,
               **options: Any) -> MatchResult:
    """The one model call; on ZeroGPU it runs on a GPU lent for the call."""
    return engine.match(image, captions, graphs, **options)


if spaces is not None:
    _run_match = spaces.GPU(_run_match)


def load_examples() -> list[list[str]]:
    """The examples (photographs first, then drawings); the first caption of each is the true one."""
    data = json.loads((ROOT / "assets" / "examples.json").read_text(encoding="utf-8"))
    return [[str(ROOT / "assets" / item["image"]), "\n".join(item["captions"])] for item in data]


# -- words on the page ----------------------------------------------------------------------------

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

# (Gradio scopes this CSS; a rule starting with `.dark` must have a single selector, not a list.)
CSS = """
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

#: Plainer words for some options on the page (the rest use the option's own help).
WIDGET_HELP = {
    "box_threshold": "Keep a detected box only if its best word score is at least this.",
    "text_threshold": "A box belongs to an entity only if that entity's words score at least this.",
    "weighting": "softmax: the paper's weights; sum: s_i / Σ s_j as in the official code.",
    "relation_text": "What a relation encodes: its predicate (paper) or the whole “subject predicate object”.",
    "subimage": "blackout: keep the boxes, black out the rest (paper); crop: cut the boxes out.",
    "parser": "auto: spaCy if installed, else built-in rules; llm needs COMCLIP_LLM_* settings.",
}

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


def user_message(exc: BaseException) -> str:
    """One line for the page: our own errors as they are (a CLI flag named as the menu it is here)."""
    if isinstance(exc, ComCLIPError):
        return str(exc).replace("`--preset tiny` runs offline with random weights",
                                "choose “tiny” in the Preset menu to run offline with random weights")
    if isinstance(exc, MemoryError):
        return "Out of memory: try a smaller image or fewer captions."
    log.exception("unexpected error")
    return f"Something went wrong ({type(exc).__name__}: {str(exc)[:200]}). Please report it."


def diagram_html() -> str:
    return (viz.figure_html(viz.pipeline_diagram(), "ComCLIP step by step", "chart diagram-wide")
            + viz.figure_html(viz.pipeline_diagram(tall=True), "ComCLIP step by step", "chart diagram-tall"))


# -- the API's typed parameters -----------------------------------------------------------------

def _typed(component: Any, info: dict[str, Any], example: Any = None, payload: Any = None) -> Any:
    """Give an API-only component the parameter type and working example its API page shows
    (instance attributes, not a subclass: Gradio writes a stub file for every component class)."""
    component.api_info = lambda: info
    if example is not None:
        component.example_value = lambda: example
        component.example_payload = lambda: example if payload is None else payload
    return component


def _schema(f: OptionField) -> dict[str, Any]:
    """An option's JSON schema for the API page."""
    if f.choices is not None:
        return {"type": "string", "enum": list(f.choices)}
    kind = {bool: "boolean", int: "integer", float: "number"}.get(f.type, "string")
    return {"anyOf": [{"type": kind}, {"type": "null"}]} if f.optional else {"type": kind}


def option_widget(f: OptionField, start: Preset) -> Any:
    """The widget for one engine option, generated from its metadata (thresholds start at the
    preset's own values)."""
    label, info = f.name.replace("_", " ").capitalize(), WIDGET_HELP.get(f.name, f.help)
    elem_id = f"option-{f.name.replace('_', '-')}"
    if f.name in ("box_threshold", "text_threshold"):
        value = getattr(start.detector, f.name)
        return gr.Slider(f.minimum or 0.0, f.maximum or 1.0, value=value, step=0.01, label=label, info=info,
                         elem_id=elem_id)
    if f.choices is not None:
        widget = gr.Radio if len(f.choices) <= 3 else gr.Dropdown
        return widget(list(f.choices), value=f.default, label=label, info=info, elem_id=elem_id)
    if f.type is bool:
        return gr.Checkbox(value=bool(f.default), label=label, info=info, elem_id=elem_id)
    return gr.Number(value=f.default, minimum=f.minimum, precision=0 if f.type is int else None, label=label,
                     info=info, elem_id=elem_id)


def api_components() -> tuple[Any, Any, Any, Any]:
    """The /match endpoint's image, captions and options parameters and its result, typed."""
    from gradio_client import handle_file

    image = gr.File(label="image", type="filepath")
    _typed(image, {**image.api_info(), "description": "the image (a file path or URL; PNG, JPEG, WebP, …)"},
           EXAMPLE_URL, handle_file(EXAMPLE_URL))
    captions = _typed(gr.JSON(label="captions"), {
        "type": "array", "items": {"type": "string"},
        "description": f"{requests.MIN_CAPTIONS}–{requests.MAX_CAPTIONS} captions, each at most "
                       f"{requests.MAX_CAPTION_CHARS} characters"}, ["a cup on a saucer", "a saucer on a cup"])
    properties = {"preset": {"type": "string"}, **{f.name: _schema(f) for f in Options.fields()},
                  "graphs": {"anyOf": [{"type": "array", "items": {"type": "object"}}, {"type": "null"}]}}
    options = _typed(gr.JSON(label="options", value={}), {
        "type": "object", "properties": properties, "description": "optional engine options; every key may be "
                                                                     "left out"}, {"weighting": "softmax"})
    result = _typed(gr.JSON(label="result"), {
        "type": "object", "description": "the `comclip score --json` object: image, preset, models, options, "
                                         "captions (scores, graph, components), best, timings_ms"})
    return image, captions, options, result


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


def launch_options() -> dict[str, Any]:
    """Keyword arguments for ``demo.launch`` (theme and CSS moved there in Gradio 6)."""
    return {"theme": theme(), "css": CSS, "head": HEAD, "max_file_size": requests.MAX_UPLOAD,
            "footer_links": ["api", "gradio"]}


# -- the app ------------------------------------------------------------------------------------

def build_demo(engine: ComCLIP | None = None, *, preset: str | None = None, engines: session.Engines | None = None,
               concurrency: int | None = None) -> gr.Blocks:
    """The app. ``engine`` (optional) is an already loaded ComCLIP shared by every request; other
    presets load on first use. ``concurrency``: model calls at once (default COMCLIP_CONCURRENCY)."""
    preset = preset or (engine.preset_name if engine is not None else os.environ.get("COMCLIP_PRESET", "default"))
    start = get_preset(preset)
    engines = engines or session.Engines(pinned=start.name)
    if engine is not None:
        engines.add(engine.preset_name, engine)
    offered = session.offered_presets(start.name)
    cache = session.ResultCache()
    gate = threading.BoundedSemaphore(concurrency or session.CONCURRENCY)
    examples = load_examples()

    def checked_request(image, captions_text, preset_name, options, overrides) -> requests.Request:
        captions, notices = requests.split_captions(captions_text)
        preset_name = requests.check_preset(preset_name, offered)
        opts, _ = requests.check_options(options)
        graphs = requests.graphs_for(captions, {c: g for c, g in overrides.items() if c in captions})
        loaded, image_notices = requests.prepare_image(image)
        edited = [c for c in captions if c in overrides]
        if edited:
            notices.append("Using your edited graph for: " + ", ".join(f"“{c}”" for c in edited) + ".")
        return requests.Request(preset_name, loaded, captions, graphs, opts, notices + image_notices)

    def scored_for(request: requests.Request, progress: Any = None) -> session.Scored:
        if progress is not None and request.preset not in engines.loaded():
            progress(0.05, desc=f"Loading preset “{request.preset}” (first use; may download weights)…")
        eng = engines.get(request.preset)
        if progress is not None:
            progress(0.3, desc="Parsing, grounding and scoring…")
        return session.score(eng, request, cache=cache, run=_run_match, gate=gate)

    # -- presenting -------------------------------------------------------------------------------
    def details(scored: session.Scored, index: int) -> tuple:
        c = scored.result.captions[index]
        image = scored.image.image
        return (viz.figure_html(viz.graph_figure(c.graph, c.components), f"entity graph of “{c.caption}”"),
                presentation.graph_json(c.graph),
                presentation.picture_html(viz.annotate_boxes(image, c), f"boxes found for “{c.caption}”")
                + presentation.ungrounded_html(c),
                presentation.gallery_html(image, c, scored.result.options.subimage),
                viz.figure_html(viz.weights_chart(c), f"weights and leave-one-out effects for “{c.caption}”"),
                presentation.component_table(c, scored.result.logit_scale))

    def story_parts(scored: session.Scored, true_caption: str | None) -> tuple:
        r = scored.result
        t = presentation.true_index(r, true_caption)
        key = session.ResultCache.key(r.preset, scored.image.image, [c.caption for c in r.captions], None,
                                      {"options": str(r.options)})
        json_path, csv_path = presentation.write_downloads(r, t, key)
        return (presentation.summary_html(scored, true_caption), presentation.score_table(r, t),
                viz.figure_html(viz.margin_chart(r, t), "margin of CLIP and ComCLIP"),
                gr.update(value=json_path, visible=True), gr.update(value=csv_path, visible=True))

    def present(scored: session.Scored, true_caption: str | None, state: dict) -> tuple:
        r = scored.result
        captions = [c.caption for c in r.captions]
        previous = state.get("selected")
        index = captions.index(previous) if previous in captions else presentation.true_index(r, true_caption)
        state = {**state, "scored": scored, "selected": captions[index]}
        how = "from cache" if scored.cached else f"in {scored.seconds:.1f} s"
        choices = [(presentation.caption_label(i, c, 70), i) for i, c in enumerate(captions)]
        return (status_html(f"Scored {len(captions)} captions {how}.", "ok"), *story_parts(scored, true_caption),
                viz.figure_html(viz.score_chart(r), "CLIP and ComCLIP score of each caption"),
                gr.update(choices=choices, value=index), *details(scored, index), state)

    n_results = 13  # outputs after the status, before the state (see `outputs` below)

    def failed(exc: BaseException) -> tuple:
        return (status_html(user_message(exc)), *[gr.skip()] * n_results, gr.skip())

    def score_with(image, captions_text, true_caption, preset_name, options, state, overrides, progress) -> tuple:
        try:
            request = checked_request(image, captions_text, preset_name, options, overrides)
            scored = scored_for(request, progress)
        except Exception as exc:  # noqa: BLE001 — every failure is one message; results stay
            return failed(exc)
        return present(scored, true_caption, {**state, "overrides": overrides})

    fields = Options.fields()

    def split(rest: tuple) -> tuple[dict[str, Any], dict]:
        """The option widgets' values (in field order) and the session state that follows them."""
        return {f.name: v for f, v in zip(fields, rest[:-1], strict=True)}, dict(rest[-1] or {})

    # -- callbacks --------------------------------------------------------------------------------
    def on_score(image, captions_text, true_caption, preset_name, *rest, progress=gr.Progress()):
        options, state = split(rest)
        return score_with(image, captions_text, true_caption, preset_name, options, state,
                          dict(state.get("overrides") or {}), progress)

    def on_edit(graph_text, index, image, captions_text, true_caption, preset_name, *rest, progress=gr.Progress()):
        options, state = split(rest)
        scored = state.get("scored")
        if scored is None or index is None:
            return (status_html("Score the captions first, then edit a caption's graph."), *failed_tail())
        caption = scored.result.captions[int(index)].caption
        try:
            graph = requests.edited_graph(graph_text, caption)
        except GraphError as exc:
            return (status_html(str(exc)), *failed_tail())
        overrides = {**(state.get("overrides") or {}), caption: graph.to_dict()}
        out = score_with(image, captions_text, true_caption, preset_name, options, {**state, "selected": caption},
                         overrides, progress)
        return (out[0], *out)

    def on_reset(index, image, captions_text, true_caption, preset_name, *rest, progress=gr.Progress()):
        options, state = split(rest)
        scored = state.get("scored")
        if scored is None or index is None:
            return (status_html("Score the captions first."), *failed_tail())
        caption = scored.result.captions[int(index)].caption
        overrides = {c: g for c, g in (state.get("overrides") or {}).items() if c != caption}
        out = score_with(image, captions_text, true_caption, preset_name, options, {**state, "selected": caption},
                         overrides, progress)
        return (out[0], *out)

    def failed_tail() -> list:
        return [gr.skip()] * (n_results + 2)

    def on_select(index, state):
        scored = (state or {}).get("scored")
        if scored is None or index is None:
            return (gr.skip(), *[gr.skip()] * 6, gr.skip())
        try:
            shown = details(scored, int(index))
        except Exception as exc:  # noqa: BLE001 — a message, never an "Error" badge on the panels
            return (status_html(user_message(exc)), *[gr.skip()] * 6, gr.skip())
        return ("", *shown, {**state, "selected": scored.result.captions[int(index)].caption})

    def on_true(true_caption, state):
        scored = (state or {}).get("scored")
        if scored is None:
            return [gr.skip()] * 6
        try:
            return ("", *story_parts(scored, true_caption))
        except Exception as exc:  # noqa: BLE001 — a message, never an "Error" badge on the panels
            return (status_html(user_message(exc)), *[gr.skip()] * 5)

    def on_captions(captions_text, true_caption, status_now):
        """The true-caption menu follows the captions; a stale error message goes."""
        lines = requests.caption_lines(captions_text)
        choices = [(presentation.caption_label(i, c, 70), c) for i, c in enumerate(lines)]
        value = true_caption if true_caption in lines else (lines[0] if lines else None)
        return gr.update(choices=choices, value=value), clear_error(status_now)

    def clear_error(status_now):
        return "" if 'class="status error"' in (status_now or "") else gr.skip()

    def on_counterfactual(captions_text, true_caption, parser):
        lines = requests.caption_lines(captions_text)
        if not lines:
            return gr.skip(), status_html("Type a caption first; its counterfactuals are written from its parse.")
        source = true_caption if true_caption in lines else lines[0]
        try:
            graph = parsing.parse(source, parser)
        except ComCLIPError as exc:
            return gr.skip(), status_html(user_message(exc))
        written = counterfactuals.counterfactuals(graph)
        new = [c for c in written if c not in lines]
        room = requests.MAX_CAPTIONS - len(lines)
        if not written:
            return gr.skip(), status_html(f"No counterfactual for “{presentation.shorten(source, 60)}”: it needs a "
                                          "relation between two entities or two entities with different attributes.",
                                          "info")
        if not new:
            listed = ", ".join(f"“{presentation.shorten(c, 50)}”" for c in written)
            return gr.skip(), status_html(f"Already in the list: {listed} — the only counterfactual"
                                          f"{'s' if len(written) > 1 else ''} of “{presentation.shorten(source, 50)}”.",
                                          "info")
        if room <= 0:
            return gr.skip(), status_html(f"Already {requests.MAX_CAPTIONS} captions; remove one to add a "
                                          "counterfactual.", "info")
        added = new[:room]
        note = (f"Added {len(added)} of {len(new)} counterfactuals (at most {requests.MAX_CAPTIONS} captions)."
                if len(new) > room else f"Added {len(added)} counterfactual{'s' if len(added) > 1 else ''} of "
                f"“{presentation.shorten(source, 50)}”.")
        return "\n".join(lines + added), status_html(note, "ok")

    def on_preset(preset_name):
        p = get_preset(preset_name)
        return (gr.update(value=p.detector.box_threshold), gr.update(value=p.detector.text_threshold),
                gr.update(value=BANNER.format(preset=p.name), visible=p.random_weights), gr.update(info=p.description))

    def api_match(image: Any, captions: Any, options: Any = None) -> dict[str, Any]:
        """Score an image against captions with CLIP and ComCLIP; returns the `comclip score --json` object.

        Args:
            image: the image (file path or URL).
            captions: 2–8 captions (list of strings), each at most 300 characters.
            options: optional engine options (weighting, relation_text, subimage, relations, parser,
                box_threshold, text_threshold, boxes_per_entity), "graphs" (one scene graph or null per
                caption) and "preset" (one the page offers).
        """
        try:
            preset_name, opts, graphs = requests.api_options(options, start.name, offered)
            captions, _ = requests.split_captions(captions, strict=True)
            loaded, notices = requests.prepare_image(image)
            request = requests.Request(preset_name, loaded, captions, requests.graphs_for(captions, graphs), opts,
                                       notices)
            scored = scored_for(request)
        except Exception as exc:  # noqa: BLE001 — one clear message to the client
            raise gr.Error(user_message(exc), title="Please check the input", print_exception=False) from None
        for note in scored.notices:
            gr.Warning(note)
        return presentation.api_result(scored.result)

    # -- layout -----------------------------------------------------------------------------------
    with gr.Blocks(title="ComCLIP Studio", analytics_enabled=False, delete_cache=(3600, 3600)) as demo:
        banner = gr.HTML(BANNER.format(preset=start.name), visible=start.random_weights, elem_id="random-banner")
        gr.Markdown(INTRO, elem_id="intro")
        with gr.Accordion("Why is CLIP confounded, and what does ComCLIP change? (1 minute)", open=False,
                          elem_id="why"):
            gr.Markdown(WHY)
            gr.HTML(diagram_html(), elem_id="diagram")
        state = gr.State({})
        captions = gr.Textbox(label=f"Captions ({requests.MIN_CAPTIONS}–{requests.MAX_CAPTIONS}, one per line)",
                              lines=3,
                              max_lines=requests.MAX_CAPTIONS + 2,
                              elem_id="captions", placeholder="a cup on a saucer\na saucer on a cup", render=False)
        with gr.Row(equal_height=False):
            with gr.Column(scale=5, min_width=300):
                image = gr.Image(label="Image", type="filepath", image_mode=None, height=280,
                                 sources=["upload", "clipboard", "webcam"], elem_id="image")
                gr.Examples(examples, inputs=[image, captions], cache_examples=False, elem_id="examples",
                            label="Examples — photographs and drawings; click one, then Score",
                            examples_per_page=5)
            with gr.Column(scale=6, min_width=300):
                captions.render()
                true_box = gr.Dropdown([], value=None, label="True caption (what the image shows)",
                                       elem_id="true-caption", allow_custom_value=True)
                with gr.Row():
                    add_cf = gr.Button("+ Add counterfactual", elem_id="add-counterfactual", scale=1)
                    submit = gr.Button("Score", variant="primary", elem_id="score", scale=1)
                status = gr.HTML("", elem_id="status")
                summary = gr.HTML(hint(HINTS["summary"]), elem_id="summary")
                scores = gr.HTML(hint(HINTS["scores"]), elem_id="scores")
                margin_plot = gr.HTML(hint(HINTS["margin"]), elem_id="margin-chart")
                with gr.Row():
                    dl_json = gr.DownloadButton("Download JSON", visible=False, elem_id="download-json", size="sm")
                    dl_csv = gr.DownloadButton("Download CSV", visible=False, elem_id="download-csv", size="sm")
                with gr.Accordion("Settings: preset and method options", open=False, elem_id="settings"):
                    preset_box = gr.Dropdown(offered, value=start.name, label="Preset", info=start.description,
                                             elem_id="preset")
                    widgets = {f.name: option_widget(f, start) for f in Options.fields()}
        gr.Markdown("## Each caption, CLIP → ComCLIP")
        score_plot = gr.HTML(hint(HINTS["score_chart"]), elem_id="score-chart")

        gr.Markdown("## One caption, inside out")
        selector = gr.Radio(label="Caption to inspect", choices=[], elem_id="selector")
        with gr.Row(equal_height=False):
            with gr.Column(scale=5, min_width=300):
                graph_plot = gr.HTML(hint(HINTS["graph"]), elem_id="graph")
            with gr.Column(scale=4, min_width=300):
                graph_code = gr.Code(language="json", interactive=True, lines=8, max_lines=16,
                                     label="Its parse — edit the JSON and re-score", elem_id="graph-json")
                with gr.Row():
                    rescore = gr.Button("Re-score with this graph", variant="secondary", elem_id="rescore")
                    reset = gr.Button("Reset to parsed graph", elem_id="reset-graph")
                graph_status = gr.HTML("", elem_id="graph-status")
        with gr.Row(equal_height=False):
            with gr.Column(scale=4, min_width=300):
                gr.Markdown("### Grounding: each entity's boxes")
                grounding = gr.HTML(hint(HINTS["grounding"]), elem_id="grounding")
            with gr.Column(scale=6, min_width=300):
                gr.Markdown("### Sub-images: what each component sees")
                gallery = gr.HTML(hint(HINTS["gallery"]), elem_id="gallery")
        gr.Markdown("## The intervention, component by component")
        with gr.Row(equal_height=False):
            with gr.Column(scale=5, min_width=300):
                weights_plot = gr.HTML(hint(HINTS["weights"]), elem_id="weights-chart")
            with gr.Column(scale=5, min_width=300):
                loo_table = gr.HTML(hint(HINTS["loo"]), elem_id="loo")

        with gr.Row(visible=False):  # the named API endpoint: /match
            api_image, api_captions, api_options, api_out = api_components()
            api_button = gr.Button()

        # -- wiring ------------------------------------------------------------------------------
        # Scoring events take the image unprocessed: it arrives as the uploaded file ({"path": ...}) and
        # comclip.studio.requests reads it, so a broken upload is a clear message, not a failure in
        # Gradio's image step. Model calls are limited by our own gate (session.CONCURRENCY), so the
        # queue itself does not limit them: cached results and checks never wait behind the model.
        work = {"concurrency_limit": None, "preprocess": False, "api_visibility": "private",
                "show_progress_on": [status]}
        settings = [preset_box, *widgets.values()]
        detail_out = [graph_plot, graph_code, grounding, gallery, weights_plot, loo_table]
        story_out = [summary, scores, margin_plot, dl_json, dl_csv]
        outputs = [status, *story_out, score_plot, selector, *detail_out, state]
        assert len(outputs) == n_results + 2
        score_inputs = [image, captions, true_box, *settings, state]
        submit.click(on_score, score_inputs, outputs, **work)
        submit.click(None, None, None, js=SCROLL_TO_RESULTS)
        captions.submit(on_score, score_inputs, outputs, **work)
        edit_out = [graph_status, *outputs]
        rescore.click(on_edit, [graph_code, selector, *score_inputs], edit_out,
                      **{**work, "show_progress_on": [graph_status]})
        reset.click(on_reset, [selector, *score_inputs], edit_out, **{**work, "show_progress_on": [graph_status]})
        selector.input(on_select, [selector, state], [status, *detail_out, state], api_visibility="private",
                       show_progress_on=[status])
        true_box.input(on_true, [true_box, state], [status, *story_out], api_visibility="private",
                       show_progress_on=[status])
        captions.change(on_captions, [captions, true_box, status], [true_box, status], api_visibility="private",
                        queue=False, show_progress="hidden")
        image.change(clear_error, status, status, api_visibility="private", queue=False, show_progress="hidden",
                     preprocess=False)
        add_cf.click(on_counterfactual, [captions, true_box, widgets["parser"]], [captions, status],
                     api_visibility="private")
        preset_box.input(on_preset, preset_box,
                         [widgets["box_threshold"], widgets["text_threshold"], banner, preset_box],
                         api_visibility="private")
        api_button.click(api_match, [api_image, api_captions, api_options], api_out, api_name="match",
                         concurrency_limit=None)
    demo.queue(default_concurrency_limit=None, max_size=64)
    demo.studio = SimpleNamespace(engines=engines, cache=cache, gate=gate, offered=offered)  # for tests and ops
    return demo


def main(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    name = args.preset or os.environ.get("COMCLIP_PRESET", "default")
    try:
        preset = get_preset(name)
        print(f"ComCLIP Studio: loading preset '{preset.name}' — {preset.description}", flush=True)
        need = missing_downloads(preset)
        if need:
            print(f"  downloading (once): {'; '.join(need)}", flush=True)
        started = time.perf_counter()
        engines = session.Engines(pinned=preset.name)
        engine = engines.get(preset.name)
        print(f"  models ready in {time.perf_counter() - started:.1f} s ({engine.models()['encoder']}, "
              f"detector {engine.models()['detector']})", flush=True)
    except ComCLIPError as exc:
        print(f"error: {exc}", file=sys.stderr)
        print("hint: `python app.py --preset tiny` starts the app offline (random weights)", file=sys.stderr)
        return 2
    demo = build_demo(engine, engines=engines)
    host = args.host or os.environ.get("GRADIO_SERVER_NAME")
    port = args.port or (int(os.environ["GRADIO_SERVER_PORT"]) if os.environ.get("GRADIO_SERVER_PORT") else None)
    try:
        demo.launch(server_name=host, server_port=port, **launch_options())
    except OSError as exc:
        if "port" not in str(exc).lower() and "address" not in str(exc).lower():
            raise
        print(f"error: cannot listen on {host or '127.0.0.1'}:{port or 7860} — the port is in use (or not "
              "allowed); choose another with --port N (or GRADIO_SERVER_PORT=N)", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(ARGS))
