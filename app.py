"""ComCLIP Studio — the Gradio app (also a Hugging Face Space).

Layout and callbacks only: checking, scoring and drawing live in ``comclip.service``,
``comclip.engine``, ``comclip.viz`` and ``comclip.counterfactual``.

    pip install -r requirements.txt && python app.py          # default preset (downloads once)
    COMCLIP_PRESET=tiny python app.py                          # offline, random weights

Environment: ``COMCLIP_PRESET`` (default|large|tiny), ``COMCLIP_DEVICE`` (auto|cpu|cuda|mps),
``GRADIO_SERVER_NAME`` / ``GRADIO_SERVER_PORT``, ``COMCLIP_PIXEL_CAP``, ``COMCLIP_MAX_UPLOAD``,
``COMCLIP_CONCURRENCY``.
"""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

try:  # Hugging Face ZeroGPU: `spaces` must be imported before torch initialises CUDA
    import spaces
except ImportError:  # anywhere else: no GPU decorator, plain calls
    spaces = None

import functools  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import gradio as gr  # noqa: E402

from comclip import counterfactual, service, viz  # noqa: E402
from comclip import parse as parsing  # noqa: E402
from comclip.errors import ComCLIPError, InputError  # noqa: E402
from comclip.presets import PRESETS, get_preset  # noqa: E402

log = logging.getLogger("comclip.app")
ROOT = Path(__file__).resolve().parent
PAPER = "https://arxiv.org/abs/2211.13854"


def _run_match(engine: Any, image: Any, captions: list[str], graphs: Any, **options: Any) -> Any:
    """The one model call; on ZeroGPU it runs on a GPU lent for the call."""
    return engine.match(image, captions, graphs, **options)


if spaces is not None:
    _run_match = spaces.GPU(_run_match)


def load_examples() -> list[list[str]]:
    data = json.loads((ROOT / "assets" / "examples.json").read_text(encoding="utf-8"))
    return [[str(ROOT / "assets" / item["image"]), "\n".join(item["captions"])] for item in data]


def friendly(fn):
    """Every failure reaches the user as one clear message (gr.Error), never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except ComCLIPError as exc:
            raise gr.Error(str(exc), title="Please check the input", print_exception=False) from None
        except MemoryError:
            raise gr.Error("Out of memory: try a smaller image or fewer captions.", print_exception=False) from None
        except Exception as exc:  # noqa: BLE001 — last line of defence: log it, show one line
            log.exception("unexpected error in %s", fn.__name__)
            raise gr.Error(f"Something went wrong ({type(exc).__name__}: {str(exc)[:200]}). Please report it.",
                           title="Internal error") from None

    return wrapper


BANNER = ("⚠️ **Offline demo mode — random weights.** The `{preset}` preset's models are seeded random "
          "networks: the scores, boxes and picks below mean nothing. Use it to try the interface; start the app "
          "without `COMCLIP_PRESET=tiny` for real results.")

INTRO = f"""# ComCLIP Studio
Give an image and captions that use **the same words in a different order or binding** ("a mug in some grass" /
"some grass in a mug"). Plain CLIP is confounded by what single entities mean and often cannot tell them apart;
[ComCLIP]({PAPER}) scores each entity and relation on its own part of the image and folds them back in."""

HOW_IT_WORKS = f"""**The confound.** CLIP compares one global image embedding with one caption embedding. Both are
dominated by *which things* appear ("mug", "grass"), not by *how they are related*, so swapping subject and object
barely moves the score: the single-entity semantics confound the match.

**The intervention.** ComCLIP (Jiang, He, Xu, Wang — NAACL 2024, [arXiv 2211.13854]({PAPER})) parses the caption
into entities and relations, finds each entity in the image (Grounding DINO), blacks out everything else, and
scores every component with the same frozen model:

s<sub>i</sub> = τ · cos(t<sub>i</sub>, v<sub>i</sub>), w = softmax(s), v\\* = v<sub>0</sub> + Σ<sub>i</sub>
w<sub>i</sub> v<sub>i</sub>, **score = cos(t, v\\*/‖v\\*‖)** (CLIP's score is cos(t, v<sub>0</sub>)).

A component whose text matches its sub-image gets a large weight and pulls the image embedding toward the
caption; the leave-one-out table above shows how much each one moves the score. No training is involved."""

CSS = """
#random-banner {background: #fff4ce; border: 1px solid #e0b400; border-radius: 8px; padding: 4px 12px;}
#summary {min-height: 3em;}
#examples td {white-space: pre-line;}
"""


def preset_choices(current: str) -> list[str]:
    """Presets with real weights, plus the one running (``tiny`` in offline mode)."""
    return [name for name, p in PRESETS.items() if not p.random_weights or name == current]


def launch_options() -> dict[str, Any]:
    """Keyword arguments for ``demo.launch`` (theme and CSS moved there in Gradio 6)."""
    return {"theme": gr.themes.Soft(primary_hue="indigo"), "css": CSS, "max_file_size": service.MAX_UPLOAD,
            "footer_links": ["api", "gradio"]}


def build_demo(engine: Any = None, *, preset: str | None = None, engines: service.Engines | None = None) -> gr.Blocks:
    """The app. ``engine`` (optional) is an already loaded ComCLIP shared by every request; other
    presets load on first use."""
    engines = engines or service.Engines()
    if engine is not None:
        engines.add(engine.preset_name, engine)
        preset = preset or engine.preset_name
    preset = preset or os.environ.get("COMCLIP_PRESET", "default")
    start = get_preset(preset)
    cache = service.ResultCache()
    examples = load_examples()
    engine_events = {"concurrency_limit": service.CONCURRENCY, "concurrency_id": "engine"}

    # -- callbacks ------------------------------------------------------------------------------
    def details(scored: service.Scored, index: int) -> tuple:
        c = scored.result.captions[index]
        image = scored.image.image
        return (viz.graph_figure(c.graph, c.components), service.graph_json(c.graph), viz.annotate_boxes(image, c),
                service.ungrounded_markdown(c), service.gallery_items(image, c, scored.result.options.subimage),
                viz.weights_chart(c), service.component_rows(c))

    def run(image, captions_text, preset_name, box_t, text_t, weighting, relation_text, subimage_mode, parser,
            session, progress):
        session = dict(session or {})
        overrides = dict(session.get("overrides") or {})
        captions, notices = service.split_captions(captions_text)
        options, _ = service.check_options({"box_threshold": box_t, "text_threshold": text_t, "weighting": weighting,
                                            "relation_text": relation_text, "subimage": subimage_mode,
                                            "parser": parser})
        loaded, image_notices = service.prepare_image(image)
        graphs = service.graphs_for(captions, {c: g for c, g in overrides.items() if c in captions})
        if preset_name not in engines.loaded():
            progress(0.05, desc=f"Loading preset “{preset_name}” (first use; may download weights)…")
        eng = engines.get(preset_name)
        progress(0.3, desc="Parsing, grounding and scoring…")
        scored = service.score(eng, loaded, captions, graphs, options, cache=cache, run=_run_match)
        scored.notices[:0] = notices + image_notices
        edited = [c for c in captions if c in overrides]
        if edited:
            scored.notices.append("Using your edited graph for: " + ", ".join(f"“{c}”" for c in edited) + ".")
        for note in scored.notices:
            gr.Warning(note)
        r = scored.result
        previous = session.get("selected")
        index = captions.index(previous) if previous in captions else r.best_comclip
        session.update(scored=scored, overrides=overrides, selected=captions[index])
        choices = [(f"{i + 1}. {c.caption}", i) for i, c in enumerate(r.captions)]
        return (service.summary_markdown(scored), service.score_frame(r), viz.score_chart(r),
                gr.update(choices=choices, value=index), *details(scored, index), session)

    @friendly
    def on_score(image, captions_text, preset_name, box_t, text_t, weighting, relation_text, subimage_mode, parser,
                 session, progress=gr.Progress()):
        return run(image, captions_text, preset_name, box_t, text_t, weighting, relation_text, subimage_mode,
                   parser, session, progress)

    @friendly
    def on_select(index, session):
        scored = (session or {}).get("scored")
        if scored is None or index is None:
            raise InputError("Score the captions first.")
        session = dict(session, selected=scored.result.captions[int(index)].caption)
        return (*details(scored, int(index)), session)

    @friendly
    def on_edit(graph_text, index, image, captions_text, preset_name, box_t, text_t, weighting, relation_text,
                subimage_mode, parser, session, progress=gr.Progress()):
        scored = (session or {}).get("scored")
        if scored is None or index is None:
            raise InputError("Score the captions first, then edit a caption's graph.")
        caption = scored.result.captions[int(index)].caption
        graph = service.edited_graph(graph_text, caption)
        overrides = dict((session or {}).get("overrides") or {})
        overrides[caption] = graph.to_dict()
        session = dict(session, overrides=overrides, selected=caption)
        return run(image, captions_text, preset_name, box_t, text_t, weighting, relation_text, subimage_mode,
                   parser, session, progress)

    @friendly
    def on_reset(index, image, captions_text, preset_name, box_t, text_t, weighting, relation_text, subimage_mode,
                 parser, session, progress=gr.Progress()):
        scored = (session or {}).get("scored")
        if scored is None or index is None:
            raise InputError("Score the captions first.")
        caption = scored.result.captions[int(index)].caption
        overrides = {c: g for c, g in ((session or {}).get("overrides") or {}).items() if c != caption}
        session = dict(session, overrides=overrides, selected=caption)
        return run(image, captions_text, preset_name, box_t, text_t, weighting, relation_text, subimage_mode,
                   parser, session, progress)

    @friendly
    def on_counterfactual(captions_text, parser):
        lines = [ln.strip() for ln in (captions_text or "").splitlines() if ln.strip()]
        if not lines:
            raise InputError("Type a caption first; its counterfactuals are written from its parse.")
        graph = parsing.parse(lines[0], parser)
        new = [c for c in counterfactual.counterfactuals(graph) if c not in lines]
        room = service.MAX_CAPTIONS - len(lines)
        if not new:
            gr.Warning(f"No counterfactual for “{lines[0]}”: it needs a relation between two entities or two "
                       "entities with different attributes.")
            return gr.update()
        if room <= 0:
            gr.Warning(f"Already {service.MAX_CAPTIONS} captions; remove one to add a counterfactual.")
            return gr.update()
        if len(new) > room:
            gr.Warning(f"Added {room} of {len(new)} counterfactuals (at most {service.MAX_CAPTIONS} captions).")
        return "\n".join(lines + new[:room])

    def on_preset(preset_name):
        p = get_preset(preset_name)
        return (gr.update(value=p.detector.box_threshold), gr.update(value=p.detector.text_threshold),
                gr.update(value=BANNER.format(preset=p.name), visible=p.random_weights), gr.update(info=p.description))

    @friendly
    def api_match(image_file, captions, options=None):
        """Score an image against captions with CLIP and ComCLIP; returns the `comclip score --json` object.

        image_file: the image; captions: list of strings (2-8); options: optional dict of engine options
        (weighting, relation_text, subimage, relations, parser, box_threshold, text_threshold,
        boxes_per_entity), plus "graphs" (one scene graph or null per caption) and "preset"."""
        preset_name, opts, graphs = service.api_options(options, start.name)
        captions, _ = service.split_captions(captions, strict=True)
        loaded, notices = service.prepare_image(image_file)
        scored = service.score(engines.get(preset_name), loaded, captions, service.graphs_for(captions, graphs), opts,
                               cache=cache, run=_run_match)
        for note in notices + scored.notices:
            gr.Warning(note)
        return service.api_result(scored.result)

    # -- layout ---------------------------------------------------------------------------------
    with gr.Blocks(title="ComCLIP Studio", analytics_enabled=False) as demo:
        banner = gr.Markdown(BANNER.format(preset=start.name), visible=start.random_weights, elem_id="random-banner")
        gr.Markdown(INTRO)
        session = gr.State({})
        with gr.Row(equal_height=False):
            with gr.Column(scale=5):
                image = gr.Image(label="Image", type="filepath", image_mode=None, height=330,
                                 sources=["upload", "clipboard", "webcam"], elem_id="image")
            with gr.Column(scale=6):
                captions = gr.Textbox(label=f"Captions — one per line ({service.MIN_CAPTIONS}–{service.MAX_CAPTIONS})",
                                      lines=5, max_lines=service.MAX_CAPTIONS + 2, elem_id="captions",
                                      placeholder="a mug in some grass\nsome grass in a mug")
                with gr.Row():
                    add_cf = gr.Button("+ Add counterfactual", elem_id="add-counterfactual")
                    submit = gr.Button("Score", variant="primary", elem_id="score")
                preset_box = gr.Dropdown(preset_choices(start.name), value=start.name, label="Preset",
                                         info=start.description)
                with gr.Accordion("Advanced", open=False):
                    box_t = gr.Slider(0.0, 1.0, value=start.detector.box_threshold, step=0.01, label="Box threshold",
                                      info="Keep a detected box only if its best word score is at least this.")
                    text_t = gr.Slider(0.0, 1.0, value=start.detector.text_threshold, step=0.01,
                                       label="Text threshold",
                                       info="A box belongs to an entity only if that entity's words score at least "
                                            "this.")
                    weighting = gr.Radio(["softmax", "sum"], value="softmax", label="Weighting",
                                         info="softmax: the paper's weights; sum: s_i / Σ s_j as in the official code.")
                    relation_text = gr.Radio(["predicate", "triple"], value="predicate", label="Relation text",
                                             info="What a relation encodes: its predicate (paper) or the whole "
                                                  "“subject predicate object”.")
                    subimage_mode = gr.Radio(["blackout", "crop"], value="blackout", label="Sub-image",
                                             info="blackout: keep the boxes, black out the rest (paper); crop: cut "
                                                  "the boxes out.")
                    parser = gr.Dropdown(list(parsing.PARSERS), value="auto", label="Parser",
                                         info="auto: spaCy if installed, else built-in rules; llm needs "
                                              "COMCLIP_LLM_* settings.")
        # An example fills the inputs; its result is cached lazily (service.ResultCache: computed on first
        # submit, then served from memory). Gradio's own example cache is off: it would ignore the options.
        gr.Examples(examples, inputs=[image, captions], cache_examples=False, elem_id="examples",
                    label="Examples — click one, then Score (each is scored once, then cached)")

        gr.Markdown("## 1 · Scores")
        summary = gr.Markdown("Pick an example or add an image and captions, then press **Score**.",
                              elem_id="summary")
        scores = gr.Dataframe(headers=service.SCORE_HEADERS, interactive=False, label="Scores (★ = the pick)",
                              datatype=["number", "str", "number", "number", "number", "str", "str"],
                              column_widths=["4%", "46%", "10%", "10%", "10%", "10%", "10%"], wrap=True,
                              elem_id="scores")
        with gr.Row():
            score_plot = gr.Plot(label="CLIP vs ComCLIP per caption (arrow: from CLIP's score to ComCLIP's)",
                                 elem_id="score-chart")

        gr.Markdown("## 2 · One caption, inside out")
        selector = gr.Radio(label="Caption to inspect", choices=[], elem_id="selector")
        with gr.Row(equal_height=False):
            graph_plot = gr.Plot(label="Entity graph (nodes: entities [attributes]; arrows: relations)",
                                 elem_id="graph", scale=5)
            with gr.Column(scale=4):
                graph_code = gr.Code(language="json", interactive=True, lines=8, max_lines=16,
                                     label="Parse — edit the JSON and re-score", elem_id="graph-json")
                with gr.Row():
                    rescore = gr.Button("Re-score with this graph", variant="secondary", elem_id="rescore")
                    reset = gr.Button("Reset to parsed graph", elem_id="reset-graph")
        with gr.Row(equal_height=False):
            with gr.Column(scale=4):
                annotated = gr.Image(label="3 · Grounding: each entity's boxes", type="pil", interactive=False,
                                     elem_id="grounding", height=360)
                ungrounded = gr.Markdown(elem_id="ungrounded")
            gallery = gr.Gallery(label="4 · Component sub-images (text · weight · similarity)", columns=3,
                                 height=440, object_fit="contain", elem_id="gallery", scale=6)
        gr.Markdown("## 5 · The intervention, component by component")
        weights_plot = gr.Plot(label="Weights and leave-one-out effect", elem_id="weights-chart")
        loo_table = gr.Dataframe(headers=service.COMPONENT_HEADERS, interactive=False, elem_id="loo",
                                 label="Leave-one-out: ComCLIP score without each component",
                                 datatype=["str", "str", "str", "number", "number", "number", "number"])
        with gr.Accordion("6 · How it works", open=True, elem_id="how-it-works"):
            gr.Markdown(HOW_IT_WORKS)
            gr.Plot(viz.pipeline_diagram(), label="ComCLIP, step by step", show_label=False)

        with gr.Row(visible=False):  # the named API endpoint: /match
            api_image = gr.File(label="image", type="filepath")
            api_captions = gr.JSON(label="captions")
            api_options = gr.JSON(label="options", value={})
            api_out = gr.JSON(label="result")
            api_button = gr.Button()

        # -- wiring ------------------------------------------------------------------------------
        # Scoring events take the inputs unprocessed: the image arrives as the uploaded file ({"path": ...})
        # and comclip.images reads it, so a broken or non-image upload is a clear message rather than a
        # failure inside Gradio's own image step. (The other inputs' raw values are already plain values.)
        ui_engine_events = {**engine_events, "preprocess": False, "api_visibility": "private"}
        inputs = [image, captions, preset_box, box_t, text_t, weighting, relation_text, subimage_mode, parser]
        detail_out = [graph_plot, graph_code, annotated, ungrounded, gallery, weights_plot, loo_table]
        outputs = [summary, scores, score_plot, selector, *detail_out, session]
        submit.click(on_score, [*inputs, session], outputs, **ui_engine_events)
        captions.submit(on_score, [*inputs, session], outputs, **ui_engine_events)
        selector.input(on_select, [selector, session], [*detail_out, session], api_visibility="private")
        rescore.click(on_edit, [graph_code, selector, *inputs, session], outputs, **ui_engine_events)
        reset.click(on_reset, [selector, *inputs, session], outputs, **ui_engine_events)
        add_cf.click(on_counterfactual, [captions, parser], captions, api_visibility="private")
        preset_box.input(on_preset, preset_box, [box_t, text_t, banner, preset_box], api_visibility="private")
        api_button.click(api_match, [api_image, api_captions, api_options], api_out, api_name="match",
                         **engine_events)
    demo.queue(default_concurrency_limit=service.CONCURRENCY, max_size=64)
    return demo


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    name = os.environ.get("COMCLIP_PRESET", "default")
    try:
        preset = get_preset(name)
        print(f"ComCLIP Studio: loading preset '{preset.name}' — {preset.description}", flush=True)
        if not preset.random_weights:
            print(f"  first run downloads {preset.downloads}", flush=True)
        started = time.perf_counter()
        engine = service.Engines().get(preset.name)
        print(f"  models ready in {time.perf_counter() - started:.1f} s ({engine.models()['encoder']}, "
              f"detector {engine.models()['detector']})", flush=True)
    except ComCLIPError as exc:
        print(f"error: {exc}", file=sys.stderr)
        print("hint: `COMCLIP_PRESET=tiny python app.py` starts the app offline (random weights)", file=sys.stderr)
        return 2
    demo = build_demo(engine)
    port = os.environ.get("GRADIO_SERVER_PORT")
    demo.launch(server_name=os.environ.get("GRADIO_SERVER_NAME"), server_port=int(port) if port else None,
                **launch_options())
    return 0


if __name__ == "__main__":
    sys.exit(main())
