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

USAGE = """Environment: COMCLIP_PRESET (a preset name: default, large, tiny, ...), COMCLIP_DEVICE (auto|cpu|cuda|mps),
GRADIO_SERVER_NAME / GRADIO_SERVER_PORT, COMCLIP_CONCURRENCY (model calls at once, default 1),
COMCLIP_MAX_ENGINES (presets kept loaded, default 2), COMCLIP_PIXEL_CAP, COMCLIP_MAX_UPLOAD,
COMCLIP_MAX_DECODE_PIXELS, COMCLIP_MAX_CAPTION_CHARS. Options given here override the environment."""


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
from comclip.options import Options  # noqa: E402
from comclip.presets import get_preset  # noqa: E402
from comclip.result import MatchResult  # noqa: E402
from comclip.studio import counterfactuals, presentation, requests, session, viz  # noqa: E402
from comclip.studio.notes import parse_notes_html  # noqa: E402
from comclip.studio.page import (  # noqa: E402
    BANNER,
    CSS,
    HEAD,
    HINTS,
    INTRO,
    SCROLL_TO_RESULTS,
    WHY,
    status_html,
    theme,
)
from comclip.studio.presentation import hint  # noqa: E402
from comclip.studio.widgets import api_components, option_widget  # noqa: E402

if TYPE_CHECKING:
    from comclip.engine import ComCLIP

log = logging.getLogger("comclip.app")
ROOT = Path(__file__).resolve().parent


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
        return (viz.figure_html(viz.graph_figure(c.graph, c.components), f"entity graph of “{c.caption}”")
                + parse_notes_html(c.graph),
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
