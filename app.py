"""ComCLIP Studio — the Gradio app (also a Hugging Face Space).

Layout and wiring only. The page is a set of named components (``page``: name → component); each
event is a plain function of ``comclip.studio.events`` that takes the page's values by name and
returns the panels it changes by name — checking requests, serving them and presenting answers
live in ``comclip.studio`` (events, checks, service, model_call, panels, presentation, viz, …).

    pip install -r requirements.txt && python app.py          # default preset (downloads once)
    COMCLIP_PRESET=tiny python app.py                          # offline, random weights
    python app.py --run OUT                                    # + "Explore a run": a finished `eval --out OUT`
"""

from __future__ import annotations

import argparse
import functools
import os
import sys


def usage() -> str:
    from comclip.presets import names_help
    from comclip.studio.settings import ENVIRONMENT

    return (f"Environment: {', '.join(ENVIRONMENT)} (README: Settings); COMCLIP_PRESET is a preset ({names_help()}) "
            "or a preset JSON file; COMCLIP_PRESETS_DIR names folders of your own preset files. Options given here "
            "override the environment.")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line, parsed before anything heavy is imported (``--help`` loads no model)."""
    parser = argparse.ArgumentParser(
        prog="python app.py", description="ComCLIP Studio: compare CLIP and ComCLIP on an image and captions "
        "in the browser.", epilog=usage())
    parser.add_argument("--preset", help="preset to load at start, or a preset JSON file (env COMCLIP_PRESET; "
                        "default: default on a GPU, fast on a CPU)")
    parser.add_argument("--host", help="address to listen on (env GRADIO_SERVER_NAME; default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to listen on (env GRADIO_SERVER_PORT; default 7860)")
    parser.add_argument("--run", metavar="OUT", help="a finished benchmark run (eval's --out) to explore in the "
                        "\"Explore a run\" tab; it and the folders under it may be opened (env COMCLIP_RUN)")
    parser.add_argument("--run-root", metavar="DIR", help="runs under DIR may be opened too, by path or link "
                        "(env COMCLIP_RUN_ROOT)")
    return parser.parse_args(argv)


if __name__ == "__main__":
    ARGS = parse_args()

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

try:  # Hugging Face ZeroGPU: `spaces` must be imported before torch initialises CUDA (it wraps the model call)
    import spaces  # noqa: F401
except ImportError:  # anywhere else: plain calls
    pass

import json  # noqa: E402
import logging  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Sequence  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import gradio as gr  # noqa: E402
from starlette.middleware import Middleware  # noqa: E402

from comclip.cpu import keep_freed_memory  # noqa: E402
from comclip.errors import ComCLIPError  # noqa: E402
from comclip.loading import missing_downloads  # noqa: E402
from comclip.options import Options  # noqa: E402
from comclip.presets import Preset, get_preset  # noqa: E402
from comclip.studio import events, explore_view, grid_view, viz  # noqa: E402
from comclip.studio.events import Studio  # noqa: E402
from comclip.studio.explore_view import Explorer, ExploreState  # noqa: E402
from comclip.studio.frames import TimerFrames  # noqa: E402
from comclip.studio.grid_view import GRID_INSPECTOR, GRID_RESULT, Pair  # noqa: E402
from comclip.studio.page import BANNER, CSS, HEAD, HINTS, INTRO, SCROLL_TO_RESULTS, WHY, speed_note, theme  # noqa: E402
from comclip.studio.panels import FIRST, INSPECTOR, RESULT, SUMMARY, PageState  # noqa: E402
from comclip.studio.presentation import hint  # noqa: E402
from comclip.studio.service import Service  # noqa: E402
from comclip.studio.settings import CPU_START_PRESET, Limits, Settings  # noqa: E402
from comclip.studio.widgets import api_components, api_grid_components, option_widget  # noqa: E402

ROOT = Path(__file__).resolve().parent
Page = dict[str, Any]  # the page's components by name


def load_examples() -> list[list[str]]:
    """The examples (photographs first, then drawings); the first caption of each is the true one."""
    data = json.loads((ROOT / "assets" / "examples.json").read_text(encoding="utf-8"))
    return [[str(ROOT / "assets" / item["image"]), "\n".join(item["captions"])] for item in data]


def load_pairs() -> list[Pair]:
    """The "Two images" view's example pairs (``assets/pairs.json``: images, captions, pairing, note)."""
    data = json.loads((ROOT / "assets" / "pairs.json").read_text(encoding="utf-8"))
    return [Pair(tuple(str(ROOT / "assets" / p) for p in item["images"]), tuple(item["captions"]),
                 tuple(item["pairing"]), item.get("note", "")) for item in data]


def launch_options(limits: Limits | None = None) -> dict[str, Any]:
    """Keyword arguments for ``demo.launch`` (theme and CSS moved there in Gradio 6). The bundled
    examples may be sent back to the page (an example pair fills the image slots); the page's first
    script slows Gradio's status timers to the ten frames a second they show (comclip.studio.frames)."""
    return {"theme": theme(), "css": CSS + grid_view.CSS + explore_view.CSS, "head": HEAD,
            "max_file_size": (limits or Limits()).max_upload, "footer_links": ["api", "gradio"],
            "allowed_paths": [str(ROOT / "assets" / "examples")],
            "app_kwargs": {"middleware": [Middleware(TimerFrames)]}}  # comclip.studio.frames


# -- layout ---------------------------------------------------------------------------------------

def _explainer(start: Preset) -> Page:
    banner = gr.HTML(BANNER.format(preset=start.name), visible=start.random_weights, elem_id="random-banner")
    gr.Markdown(INTRO, elem_id="intro")
    with gr.Accordion("Why is CLIP confounded, and what does ComCLIP change? (1 minute)", open=False, elem_id="why"):
        gr.Markdown(WHY)
        gr.HTML(viz.pipeline_html(), elem_id="diagram")
    return {"banner": banner}


def _image_column(captions: Any) -> Page:
    with gr.Column(scale=5, min_width=300):
        image = gr.Image(label="Image", type="filepath", image_mode=None, height=280,
                         sources=["upload", "clipboard", "webcam"], elem_id="image")
        examples = gr.Examples(load_examples(), inputs=[image, captions], cache_examples=False, elem_id="examples",
                               label="Examples — photographs and drawings; click one to see it scored",
                               examples_per_page=5)
    return {"image": image, "examples": examples}


def _request_column(service: Service, captions: Any) -> Page:
    page: Page = {}
    with gr.Column(scale=6, min_width=300):
        captions.render()
        page["true_caption"] = gr.Dropdown([], value=None, label="True caption (what the image shows)",
                                           elem_id="true-caption", allow_custom_value=True)
        with gr.Row():
            page["add_counterfactual"] = gr.Button("+ Add counterfactual", elem_id="add-counterfactual", scale=1)
            page["score"] = gr.Button("Score", variant="primary", elem_id="score", scale=1)
        page["status"] = gr.HTML("", elem_id="status")
        page["summary"] = gr.HTML(hint(HINTS["summary"]), elem_id="summary")
        page["scores"] = gr.HTML(hint(HINTS["scores"]), elem_id="scores")
        page["margin"] = gr.HTML(hint(HINTS["margin"]), elem_id="margin-chart")
        with gr.Row():
            page["download_json"] = gr.DownloadButton("Download JSON", visible=False, elem_id="download-json",
                                                      size="sm")
            page["download_csv"] = gr.DownloadButton("Download CSV", visible=False, elem_id="download-csv", size="sm")
        with gr.Accordion("Settings: preset and method options", open=False, elem_id="settings"):
            page["preset"] = gr.Dropdown(service.offered, value=service.start.name, label="Preset",
                                         info=service.start.description, elem_id="preset")
            fast = get_preset(CPU_START_PRESET)
            gr.Markdown(speed_note(fast.name, fast.detector.size), elem_id="speed-note")
            page.update({f.name: option_widget(f, service.start) for f in Options.fields()})
    return page


def _inspector() -> Page:
    page: Page = {}
    gr.Markdown("## Each caption, CLIP → ComCLIP")
    page["score_chart"] = gr.HTML(hint(HINTS["score_chart"]), elem_id="score-chart")
    gr.Markdown("## One caption, inside out")
    page["selector"] = gr.Radio(label="Caption to inspect", choices=[], elem_id="selector")
    with gr.Row(equal_height=False):
        with gr.Column(scale=5, min_width=300):
            page["graph"] = gr.HTML(hint(HINTS["graph"]), elem_id="graph")
        with gr.Column(scale=4, min_width=300):
            page["graph_json"] = gr.Code(language="json", interactive=True, lines=8, max_lines=16,
                                         label="Its parse — edit the JSON and re-score", elem_id="graph-json")
            with gr.Row():
                page["rescore"] = gr.Button("Re-score with this graph", variant="secondary", elem_id="rescore")
                page["reset"] = gr.Button("Reset to parsed graph", elem_id="reset-graph")
            page["graph_status"] = gr.HTML("", elem_id="graph-status")
    with gr.Row(equal_height=False):
        with gr.Column(scale=4, min_width=300):
            gr.Markdown("### Grounding: each entity's boxes")
            page["grounding"] = gr.HTML(hint(HINTS["grounding"]), elem_id="grounding")
        with gr.Column(scale=6, min_width=300):
            gr.Markdown("### Sub-images: what each component sees")
            page["gallery"] = gr.HTML(hint(HINTS["gallery"]), elem_id="gallery")
    gr.Markdown("## The intervention, component by component")
    with gr.Row(equal_height=False):
        with gr.Column(scale=5, min_width=300):
            page["weights"] = gr.HTML(hint(HINTS["weights"]), elem_id="weights-chart")
        with gr.Column(scale=5, min_width=300):
            page["loo"] = gr.HTML(hint(HINTS["loo"]), elem_id="loo")
    return page


def _grid_inputs(pairs: Sequence[Pair]) -> Page:
    page: Page = {}
    with gr.Column(scale=5, min_width=300):
        with gr.Row(equal_height=False):
            for k in range(grid_view.SLOTS):
                with gr.Column(min_width=140, visible=k < 2, elem_id=f"grid-slot-{k}") as page[f"grid_slot_{k}"]:
                    page[f"grid_image_{k}"] = gr.Image(label=f"Image {k + 1}", type="filepath", image_mode=None,
                                                       height=200, sources=["upload", "clipboard"],
                                                       elem_id=f"grid-image-{k}")
                    page[f"grid_true_{k}"] = gr.Dropdown([], value=None, label="True caption",
                                                         elem_id=f"grid-true-{k}")
        with gr.Row():
            page["grid_more"] = gr.Button("+ Image", size="sm", elem_id="grid-more")
            page["grid_fewer"] = gr.Button("− Image", size="sm", visible=False, elem_id="grid-fewer")
        page["grid_examples"] = gr.Dataset(
            components=[page["grid_image_0"], page["grid_image_1"], gr.Textbox(render=False)], type="index",
            samples=[[p.images[0], p.images[1], p.label()] for p in pairs], elem_id="grid-examples",
            label="Example pairs — drawings; click one to see it scored", samples_per_page=6)
    page["grid_count"] = gr.State(2)
    return page


def _grid_request(limits: Limits) -> Page:
    page: Page = {}
    with gr.Column(scale=6, min_width=300):
        page["grid_captions"] = gr.Textbox(label=f"Captions ({limits.min_captions}–{limits.max_captions}, one per "
                                           "line)", lines=2, max_lines=limits.max_captions + 2, elem_id="grid-captions",
                                           placeholder="a mug in some grass\nsome grass in a mug")
        with gr.Row():
            page["grid_swap"] = gr.Button("⇄ Swap true captions", elem_id="grid-swap", scale=1)
            page["grid_score"] = gr.Button("Score", variant="primary", elem_id="grid-score", scale=1)
        page["grid_status"] = gr.HTML("", elem_id="grid-status")
        page["grid_story"] = gr.HTML(hint(grid_view.HINTS["story"]), elem_id="grid-story")
        page["grid_scores"] = gr.HTML(hint(grid_view.HINTS["scores"]), elem_id="grid-scores",
                                      js_on_load=grid_view.SELECT_CELL_JS)
    return page


def _grid_inspector() -> Page:
    page: Page = {}
    gr.Markdown("## One cell, inside out")
    page["grid_cell"] = gr.HTML(hint(grid_view.HINTS["cell"]), elem_id="grid-cell")
    for row in ((("The caption's graph", "graph"), ("Sub-images: what each component sees", "gallery")),
                (("Grounding: each entity's boxes", "grounding"), ("Weights and leave-one-out", "loo", "weights"))):
        with gr.Row(equal_height=False):
            for (title, *names), scale in zip(row, (4, 6), strict=True):
                with gr.Column(scale=scale, min_width=300):
                    gr.Markdown(f"### {title}")
                    for name in names:
                        page[f"grid_{name}"] = gr.HTML("", elem_id=f"grid-{name}")
    page["grid_state"] = gr.State(grid_view.GridState())
    return page


def _two_images(limits: Limits) -> Page:
    """The "Two images" view: Winoground's test (layout; its words and looks are ``grid_view``'s)."""
    gr.Markdown(grid_view.INTRO, elem_id="grid-intro")
    with gr.Row(equal_height=False):
        page = _grid_inputs(load_pairs())
        page.update(_grid_request(limits))
    page.update(_grid_inspector())
    return page


def _explore_tab() -> Page:
    """"Explore a run": the run's folder, its numbers, filters and one page of its examples."""
    x: Page = {"explore_run": gr.State(None), "explore_base": gr.State(""), "explore_offset": gr.State(0),
               "explore_state": gr.State(ExploreState())}
    x["explore_path"] = gr.Textbox(label="Run folder (what `python -m comclip eval ... --out` wrote; Enter loads it)",
                                   submit_btn="Load", elem_id="explore-path", placeholder="runs/winoground-default")
    x["explore_status"] = gr.HTML("", elem_id="explore-status")
    x["explore_head"] = gr.HTML(hint("The run's numbers appear here once it is loaded."), elem_id="explore-head")
    with gr.Accordion("Outcome × group counts", open=False, elem_id="explore-counts-box"):
        x["explore_counts"] = gr.HTML("", elem_id="explore-counts")
    with gr.Row():
        x["explore_metric"] = gr.Dropdown([], value=None, label="Metric", elem_id="explore-metric", min_width=120)
        x["explore_outcome"] = gr.Dropdown(explore_view.OUTCOME_CHOICES, value=explore_view.ALL, label="Outcome",
                                           elem_id="explore-outcome", min_width=140)
        x["explore_group"] = gr.Dropdown([explore_view.ALL], value=explore_view.ALL, label="Group", min_width=140,
                                         elem_id="explore-group")
        x["explore_sort"] = gr.Dropdown(explore_view.SORT_CHOICES, value="order", label="Order", min_width=160,
                                        elem_id="explore-sort")
    return x


def _explore_example() -> Page:
    """The page of examples beside the opened example; the app's result panels under them."""
    x: Page = {}
    hint_ = hint("Open an example from the list: it appears here, scored again.")
    with gr.Row(equal_height=False):
        with gr.Column(scale=5, min_width=300):
            x["explore_list"] = gr.HTML("", js_on_load=explore_view.LIST_JS, elem_id="explore-list")
            with gr.Row(equal_height=True):
                x["explore_prev"] = gr.Button("← Previous", size="sm", elem_id="explore-prev", min_width=90)
                x["explore_pageinfo"] = gr.HTML("", elem_id="explore-pageinfo")
                x["explore_next"] = gr.Button("Next →", size="sm", elem_id="explore-next", min_width=90)
        with gr.Column(scale=6, min_width=300):
            x["explore_note"] = gr.HTML("", elem_id="explore-note")
            x["explore_example"] = gr.HTML(hint("Click an example in the list to open it."), elem_id="explore-example")
            x["explore_link"] = gr.Textbox(label="Link to this example", interactive=False, buttons=["copy"],
                                           elem_id="explore-link")
            with gr.Accordion("Engine options used to score it again (the run's, from run.json)", open=False):
                x["explore_options"] = gr.Code(language="json", interactive=True, lines=6, max_lines=20,
                                               elem_id="explore-options")
            x["explore_image"] = gr.Radio(label="Image shown below", choices=[], visible=False,
                                          elem_id="explore-image")
            for name in ("summary", "scores", "margin"):
                x[f"explore_{name}"] = gr.HTML(hint_, elem_id=f"explore-{name}")
    gr.Markdown("### The shown image: each caption, CLIP → ComCLIP")
    x["explore_score_chart"] = gr.HTML(hint_, elem_id="explore-score-chart")
    gr.Markdown("### One caption inside out: its graph, its boxes, what each component sees, the weights")
    x["explore_selector"] = gr.Radio(label="Caption to inspect", choices=[], elem_id="explore-selector")
    with gr.Row(equal_height=False):
        for name, scale in (("graph", 4), ("grounding", 4), ("gallery", 5)):
            with gr.Column(scale=scale, min_width=260):
                x[f"explore_{name}"] = gr.HTML(hint_, elem_id=f"explore-{name}")
    with gr.Row(equal_height=False):
        for name in ("weights", "loo"):
            with gr.Column(scale=5, min_width=300):
                x[f"explore_{name}"] = gr.HTML(hint_, elem_id=f"explore-{name}")
    return x


def layout(service: Service) -> Page:
    """The page, top to bottom; returns its components by name (option widgets by their field's name)."""
    limits = service.settings.limits
    page = _explainer(service.start)
    page["state"] = gr.State(PageState())
    page["captions"] = gr.Textbox(label=f"Captions ({limits.min_captions}–{limits.max_captions}, one per line)",
                                  lines=3, max_lines=limits.max_captions + 2, elem_id="captions",
                                  placeholder="a cup on a saucer\na saucer on a cup", render=False)
    explore = bool(explore_view.allowed_roots(service.settings))
    with gr.Tabs(selected="explore" if service.settings.run else "captions", elem_id="modes") as page["tabs"]:
        with gr.Tab("One image", id="captions", elem_id="tab-one-image"):
            with gr.Row(equal_height=False):
                page.update(_image_column(page["captions"]))
                page.update(_request_column(service, page["captions"]))
            page.update(_inspector())
        with gr.Tab("Two images", id="two-images", elem_id="tab-two-images"):
            page.update(_two_images(limits))
        if explore:  # only with --run or --run-root (comclip.studio.explore_view: which folders may be opened)
            with gr.Tab("Explore a run", id="explore", elem_id="tab-explore"):
                page.update(_explore_tab())
                page.update(_explore_example())
    with gr.Row(visible=False):  # the named API endpoints: /match and /match_grid
        page["api_image"], page["api_captions"], page["api_options"], page["api_result"] = api_components(limits)
        page["api_button"] = gr.Button()
        (page["api_grid_images"], page["api_grid_captions"], page["api_grid_pairing"], page["api_grid_options"],
         page["api_grid_result"]) = api_grid_components(limits)
        page["api_grid_button"] = gr.Button()
    return page


# -- wiring ---------------------------------------------------------------------------------------

def _named(page: Page, fn: Callable[..., dict[str, Any]], progress: bool, outputs: Sequence[str]
           ) -> Callable[..., dict[Any, Any]]:
    """``fn`` (values by name → panels by name) as a Gradio handler of a set of components. The panels it
    leaves out are skipped — explicitly, since Gradio takes an empty dict for one output's value."""
    names = {id(component): name for name, component in page.items()}

    def values(data: dict[Any, Any] | None) -> dict[str, Any]:  # None: an event without inputs
        return {names[id(component)]: value for component, value in (data or {}).items()}

    def panels(changed: dict[str, Any]) -> dict[Any, Any] | None:
        if not outputs:  # an event that changes nothing on the page (Gradio counts a {} as one value)
            return None
        return {page[name]: changed.get(name, gr.skip()) for name in outputs}

    if progress:
        def handler(data: dict[Any, Any], progress: Any = gr.Progress()) -> dict[Any, Any] | None:
            return panels(fn(values(data), progress))
    else:
        def handler(data: dict[Any, Any] | None = None) -> dict[Any, Any] | None:
            return panels(fn(values(data)))
    return handler


def _on(page: Page, trigger: Any, fn: Callable[..., dict[str, Any]], inputs: Sequence[str], outputs: Sequence[str],
        *, progress: bool = False, **event: Any) -> Any:
    """``fn`` on ``trigger``; returns Gradio's dependency (its ``then`` triggers what follows)."""
    return trigger(_named(page, fn, progress, outputs), {page[n] for n in inputs}, [page[n] for n in outputs],
                   **{"api_visibility": "private", **event})


def wire(page: Page, studio: Studio) -> None:
    """Every event: its trigger, its function, its inputs and outputs by name."""
    # Scoring events take the image unprocessed: it arrives as the uploaded file ({"path": ...}) and
    # comclip.studio.checks reads it, so a broken upload is a clear message, not a failure in
    # Gradio's image step. Model calls are limited by the service's own gate (settings.concurrency),
    # so the queue itself does not limit them: cached answers and checks never wait behind the model.
    work = {"concurrency_limit": None, "preprocess": False, "progress": True, "show_progress_on": [page["status"]]}
    graph_work = {**work, "show_progress_on": [page["graph_status"]]}
    # An example is scored as it is loaded; its answer was computed at start (Studio.warm_examples).
    # The story and the scores are sent as soon as the answer is there; the inspector follows (drawn
    # while they are read), without a progress overlay on its panels.
    for trigger in (page["score"].click, page["captions"].submit, page["examples"].load_input_event.then):
        scored = _on(page, trigger, studio.score_first, events.SCORE_INPUTS, FIRST, **work)
        _on(page, scored.then, studio.inspect, ("state",), ("status", *INSPECTOR), concurrency_limit=None,
            show_progress="hidden")
    page["score"].click(None, None, None, js=SCROLL_TO_RESULTS)
    _on(page, page["rescore"].click, studio.edit_graph, events.EDIT_INPUTS, ("graph_status", *RESULT), **graph_work)
    _on(page, page["reset"].click, studio.reset_graph, events.EDIT_INPUTS, ("graph_status", *RESULT), **graph_work)
    _on(page, page["selector"].input, studio.select, events.SELECT_INPUTS, ("status", *INSPECTOR, "state"),
        show_progress_on=[page["status"]])
    _on(page, page["true_caption"].input, studio.mark_true, events.TRUE_INPUTS, ("status", *SUMMARY),
        show_progress_on=[page["status"]])
    _on(page, page["captions"].change, events.captions_changed, events.CAPTIONS_INPUTS, ("true_caption",),
        queue=False, show_progress="hidden")
    # Ahead of the click, while the model is free (not on ZeroGPU): an uploaded image's detector part, and
    # what the typed captions need — texts, and their boxes on the image (the last typed captions only).
    _on(page, page["image"].upload, studio.prepare, events.SCORE_INPUTS, (), preprocess=False,
        concurrency_limit=None, show_progress="hidden")
    _on(page, page["captions"].change, studio.prepare_captions, events.SCORE_INPUTS, (), preprocess=False,
        concurrency_limit=1, trigger_mode="always_last", show_progress="hidden")
    for trigger in (page["image"].input, page["captions"].input):  # the person's own edits (not an example's)
        _on(page, trigger, events.edited, (), ("status",), queue=False, show_progress="hidden")
    _on(page, page["add_counterfactual"].click, events.add_counterfactual, events.COUNTERFACTUAL_INPUTS,
        ("captions", "status"))
    _on(page, page["preset"].input, studio.preset_changed, events.PRESET_INPUTS,
        ("box_threshold", "text_threshold", "banner", "preset"))
    page["api_button"].click(studio.api_match, [page["api_image"], page["api_captions"], page["api_options"]],
                             page["api_result"], api_name="match", concurrency_limit=None)
    _wire_two_images(page, studio)


def _wire_two_images(page: Page, studio: Studio) -> None:
    """The "Two images" view's events (``Studio.score_grid`` and its neighbours; ``grid_view``)."""
    work = {"concurrency_limit": None, "preprocess": False, "progress": True,
            "show_progress_on": [page["grid_status"]]}
    for trigger in (page["grid_score"].click, page["grid_captions"].submit):
        _on(page, trigger, studio.score_grid, events.GRID_INPUTS, GRID_RESULT, **work)
    shown = (*(f"grid_image_{k}" for k in range(grid_view.SLOTS)), "grid_captions", *events.GRID_TRUE,
             *(f"grid_slot_{k}" for k in range(grid_view.SLOTS)), "grid_count", "grid_more", "grid_fewer")
    _on(page, page["grid_examples"].click, functools.partial(studio.grid_example, pairs=load_pairs()),
        events.GRID_EXAMPLE_INPUTS, (*shown, *GRID_RESULT), **work)
    retell = ("grid_status", "grid_story", "grid_scores", "grid_cell", "grid_state")
    for menu in events.GRID_TRUE:
        _on(page, page[menu].input, studio.grid_pairing, events.GRID_PAIRING_INPUTS, retell, queue=False)
    _on(page, page["grid_swap"].click, studio.swap_pairing, events.GRID_PAIRING_INPUTS,
        (*events.GRID_TRUE[:2], *retell), queue=False)
    _on(page, page["grid_captions"].change, events.grid_captions_changed, events.GRID_CAPTIONS_INPUTS,
        events.GRID_TRUE, queue=False, show_progress="hidden")
    count = (*(f"grid_slot_{k}" for k in range(grid_view.SLOTS)), "grid_count", "grid_more", "grid_fewer")
    _on(page, page["grid_more"].click, events.more_images, events.GRID_COUNT_INPUTS, count, queue=False)
    _on(page, page["grid_fewer"].click, events.fewer_images, events.GRID_COUNT_INPUTS,
        (*count, *(f"grid_image_{k}" for k in range(2, grid_view.SLOTS))), queue=False)
    cell = ("grid_scores", "grid_cell", *GRID_INSPECTOR, "grid_state")

    def cell_selected(state: Any, evt: gr.SelectData) -> dict[Any, Any]:
        changed = studio.select_cell({"grid_cell_index": evt.index, "grid_state": state})
        return {page[name]: changed.get(name, gr.skip()) for name in cell}

    page["grid_scores"].select(cell_selected, page["grid_state"], [page[n] for n in cell], api_visibility="private",
                               show_progress_on=[page["grid_status"]])
    page["api_grid_button"].click(
        studio.api_match_grid, [page[f"api_grid_{n}"] for n in ("images", "captions", "pairing", "options")],
        page["api_grid_result"], api_name="match_grid", concurrency_limit=None)


def _picked(page: Page, fn: Callable[..., dict[str, Any]], outputs: Sequence[str]) -> Callable[..., dict[Any, Any]]:
    """A click in the run's list: ``fn`` gets the page's values plus the clicked example (``explore_pick``)."""
    names = {id(component): name for name, component in page.items()}

    def handler(data: dict[Any, Any], evt: gr.EventData, progress: Any = gr.Progress()) -> dict[Any, Any]:
        values = {names[id(c)]: v for c, v in data.items()} | {"explore_pick": getattr(evt, "example", None)}
        changed = fn(values, progress)
        return {page[n]: changed.get(n, gr.skip()) for n in outputs}
    return handler


def wire_explore(demo: gr.Blocks, page: Page, explorer: Explorer) -> None:
    """The "Explore a run" tab's events (names: comclip.studio.explore_view)."""
    xv = explore_view
    _on(page, page["explore_path"].submit, explorer.load, xv.LOAD_INPUTS, xv.RUN)
    listed = ("explore_status", *xv.LIST)
    for name in ("explore_metric", "explore_outcome", "explore_group", "explore_sort"):
        _on(page, page[name].input, explorer.filtered, xv.FILTER_INPUTS, listed)
    _on(page, page["explore_prev"].click, lambda v: explorer.filtered(v, -1), xv.FILTER_INPUTS, listed)
    _on(page, page["explore_next"].click, lambda v: explorer.filtered(v, +1), xv.FILTER_INPUTS, listed)
    page["explore_list"].click(_picked(page, explorer.open_example, xv.EXAMPLE), {page[n] for n in xv.PICK_INPUTS},
                               [page[n] for n in xv.EXAMPLE], api_visibility="private",
                               show_progress_on=[page["explore_status"]]).then(None, js=xv.SCROLL_TO_EXAMPLE)
    _on(page, page["explore_image"].input, explorer.image_changed, xv.IMAGE_INPUTS, xv.EXAMPLE)
    _on(page, page["explore_selector"].input, explorer.caption_changed, xv.CAPTION_INPUTS, xv.EXAMPLE)

    def first_load(request: gr.Request, progress: Any = gr.Progress()) -> dict[Any, Any]:
        changed = explorer.first_load(dict(request.query_params), xv.page_address(request.headers), progress)
        return {page[n]: changed.get(n, gr.skip()) for n in xv.LOAD}
    demo.load(first_load, None, [page[n] for n in xv.LOAD], api_visibility="private",
              show_progress_on=[page["explore_status"]]).then(None, js=xv.SCROLL_TO_LINKED)


def build_demo(studio: Studio) -> gr.Blocks:
    """The app for ``studio`` (the events of one :class:`~comclip.studio.service.Service`)."""
    with gr.Blocks(title="ComCLIP Studio", analytics_enabled=False, delete_cache=(3600, 3600)) as demo:
        page = layout(studio.service)
        wire(page, studio)
        if "explore_list" in page:
            wire_explore(demo, page, Explorer(studio.service))
    demo.queue(default_concurrency_limit=None, max_size=64)
    return demo


# -- running --------------------------------------------------------------------------------------

def load_start(settings: Settings) -> Studio:
    """The studio, its start preset loaded (progress in the log)."""
    preset = get_preset(settings.start_preset())
    print(f"ComCLIP Studio: loading preset '{preset.name}' — {preset.description}", flush=True)
    need = missing_downloads(preset)
    if need:
        print(f"  downloading (once): {'; '.join(need)}", flush=True)
    started = time.perf_counter()
    studio = Studio.create(settings=settings, preset=preset)
    engine = studio.service.engines.get(preset.name)
    print(f"  models ready in {time.perf_counter() - started:.1f} s ({engine.models()['encoder']}, "
          f"detector {engine.models()['detector']})", flush=True)
    return studio


def main(args: argparse.Namespace) -> int:
    keep_freed_memory()  # the process's one allocator setting for big CPU forwards (comclip.cpu)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        settings = Settings.from_env(preset=args.preset, host=args.host, port=args.port, run=args.run,
                                     run_root=args.run_root)
        studio = load_start(settings)
    except ComCLIPError as exc:
        print(f"error: {exc}", file=sys.stderr)
        print("hint: `python app.py --preset tiny` starts the app offline (random weights)", file=sys.stderr)
        return 2
    demo = build_demo(studio)
    try:
        demo.launch(server_name=settings.host, server_port=settings.port, prevent_thread_lock=True,
                    **launch_options(settings.limits))
    except OSError as exc:
        if "port" not in str(exc).lower() and "address" not in str(exc).lower():
            raise
        print(f"error: cannot listen on {settings.host or '127.0.0.1'}:{settings.port or 7860} — the port is in use "
              "(or not allowed); choose another with --port N (or GRADIO_SERVER_PORT=N)", file=sys.stderr)
        return 2
    threading.Thread(target=studio.warm_examples, args=(load_examples(), load_pairs()), name="warm-examples",
                     daemon=True).start()  # clicking an example then shows its answer at once
    try:
        demo.block_thread()
    finally:
        studio.service.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(ARGS))
