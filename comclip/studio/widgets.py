"""Widgets generated from the one option vocabulary (:meth:`comclip.options.Options.fields`), and
the /match endpoint's typed parameters with a working example for Gradio's "Use via API" page."""

from __future__ import annotations

from typing import Any

import gradio as gr

from comclip.options import OptionField, Options
from comclip.presets import Preset
from comclip.studio.settings import Limits

#: A real image that works as the API page's example (one of the bundled photographs' originals).
EXAMPLE_URL = "https://github.com/scikit-image/scikit-image/raw/main/skimage/data/coffee.png"


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


def start_value(f: OptionField, start: Preset) -> Any:
    """The value an option's widget starts with: its default, the thresholds the preset's own."""
    return getattr(start.detector, f.name) if f.name in ("box_threshold", "text_threshold") else f.default


def start_values(start: Preset) -> dict[str, Any]:
    """Every option widget's start value, by name: what the page sends before anything is changed."""
    return {f.name: start_value(f, start) for f in Options.fields()}


def option_widget(f: OptionField, start: Preset) -> Any:
    """The widget for one engine option, generated from its metadata (thresholds start at the
    preset's own values)."""
    label, info = f.label.capitalize(), f.help
    elem_id = f"option-{f.name.replace('_', '-')}"
    value = start_value(f, start)
    if f.name in ("box_threshold", "text_threshold"):
        return gr.Slider(f.minimum or 0.0, f.maximum or 1.0, value=value, step=0.01, label=label, info=info,
                         elem_id=elem_id)
    if f.choices is not None:
        widget = gr.Radio if len(f.choices) <= 3 else gr.Dropdown
        return widget(list(f.choices), value=value, label=label, info=info, elem_id=elem_id)
    if f.type is bool:
        return gr.Checkbox(value=bool(value), label=label, info=info, elem_id=elem_id)
    return gr.Number(value=value, minimum=f.minimum, precision=0 if f.type is int else None, label=label,
                     info=info, elem_id=elem_id)


def api_components(limits: Limits) -> tuple[Any, Any, Any, Any]:
    """The /match endpoint's image, captions and options parameters and its result, typed."""
    from gradio_client import handle_file

    image = gr.File(label="image", type="filepath")
    _typed(image, {**image.api_info(), "description": "the image (a file path or URL; PNG, JPEG, WebP, …)"},
           EXAMPLE_URL, handle_file(EXAMPLE_URL))
    captions = _typed(gr.JSON(label="captions"), {
        "type": "array", "items": {"type": "string"},
        "description": f"{limits.min_captions}–{limits.max_captions} captions, each at most "
                       f"{limits.max_caption_chars} characters"}, ["a cup on a saucer", "a saucer on a cup"])
    properties = {"preset": {"type": "string"}, **{f.name: _schema(f) for f in Options.fields()},
                  "graphs": {"anyOf": [{"type": "array", "items": {"type": "object"}}, {"type": "null"}]}}
    options = _typed(gr.JSON(label="options", value={}), {
        "type": "object", "properties": properties, "description": "optional engine options; every key may be "
                                                                     "left out"}, {"weighting": "softmax"})
    result = _typed(gr.JSON(label="result"), {
        "type": "object", "description": "the `comclip score --json` object: image, preset, models, options, "
                                         "captions (scores, graph, components), best, timings_ms"})
    return image, captions, options, result
