"""Checking what a person or an API client sends, before anything heavy runs: a :class:`Request`.

Captions (count, length), engine options, scene graphs typed into the editor, the image(s) (size
checked from the header before decoding) and the preset. Every problem is one
:class:`~comclip.errors.InputError` whose message is meant to be shown as it is. The limits are a
:class:`~comclip.studio.settings.Limits` value (the app's settings; the defaults otherwise).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from comclip.errors import ComCLIPError, GraphError, InputError
from comclip.graph import SceneGraph
from comclip.grid import check_pairing
from comclip.images import LoadedImage, load_image
from comclip.options import Options
from comclip.studio.settings import LIMITS, Limits


@dataclass(frozen=True)
class Request:
    """One checked request: the preset, the image(s) — one, or several side by side against the same
    captions — the captions, their graphs (None: parse each; a graph per caption, None = parse it),
    the options, and what to tell the person about the request itself (notices)."""

    preset: str
    images: tuple[LoadedImage, ...]
    captions: tuple[str, ...]
    graphs: tuple[SceneGraph | None, ...] | None
    options: Options
    notices: tuple[str, ...] = ()

    @property
    def image(self) -> LoadedImage:
        """The (first) image."""
        return self.images[0]


def shorten(text: str, limit: int = 60) -> str:
    """``text`` cut at a word boundary to at most ``limit`` characters, with an ellipsis."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:") + "…"


# -- captions -----------------------------------------------------------------------------------

def split_captions(captions: str | Sequence[Any] | None, *, strict: bool = False, limits: Limits = LIMITS
                   ) -> tuple[list[str], list[str]]:
    """Captions from the text box (one per line) or the API (a list); returns (captions, notices).

    Blank lines are skipped and exact repeats dropped, each with a notice — or, with ``strict``
    (the API, where results follow the captions' positions), a blank caption is an InputError and
    repeats are kept. Fewer than ``limits.min_captions`` or more than ``limits.max_captions``
    usable captions, or one longer than ``limits.max_caption_chars``, is an InputError.
    """
    limit = limits.max_caption_chars
    if captions is None:
        lines: list[Any] = []
    elif isinstance(captions, str):
        lines = captions.splitlines()
    elif isinstance(captions, Sequence):
        lines = list(captions)
    else:
        raise InputError("captions must be text (one caption per line) or a list of strings")
    notices: list[str] = []
    out: list[str] = []
    blank = repeated = 0
    for i, line in enumerate(lines):
        if not isinstance(line, str):
            raise InputError(f"caption {i + 1} is not text (got {type(line).__name__})")
        text = " ".join(line.split())
        if len(text) > limit:
            raise InputError(f"Caption {i + 1} (“{shorten(text, 40)}”) is {len(text):,} characters long; at most "
                             f"{limit} are accepted (the text encoder reads only its first 77 tokens). Shorten it.")
        if not text and strict:
            raise InputError(f"caption {i + 1} is empty; give each caption as a non-empty string")
        if not text:
            blank += 1
        elif text in out and not strict:
            repeated += 1
        else:
            out.append(text)
    if blank:
        notices.append(f"Skipped {blank} empty line{'s' if blank > 1 else ''}.")
    if repeated:
        notices.append(f"Dropped {repeated} repeated caption{'s' if repeated > 1 else ''}.")
    if len(out) < limits.min_captions:
        got = "none" if not out else f"only {len(out)}"
        raise InputError(f"Enter at least {limits.min_captions} different captions, one per line ({got} given) — "
                         "e.g. a caption and the same words in another order.")
    if len(out) > limits.max_captions:
        raise InputError(f"At most {limits.max_captions} captions at a time ({len(out)} given); remove some lines.")
    return out, notices


def caption_lines(text: str | None) -> list[str]:
    """The captions as the text box holds them (blank lines and repeats dropped; no checks)."""
    out: list[str] = []
    for line in (text or "").splitlines():
        line = " ".join(line.split())
        if line and line not in out:
            out.append(line)
    return out


# -- options ------------------------------------------------------------------------------------

def _json_object(options: Any) -> Any:
    if isinstance(options, str) and options.strip():
        try:
            return json.loads(options)
        except json.JSONDecodeError as exc:
            raise InputError(f"options must be a JSON object: {exc}") from None
    return options


def check_options(options: Mapping[str, Any] | str | None) -> tuple[Options, dict[str, Any] | list | None]:
    """Validate options (API or UI) → (the :class:`~comclip.options.Options` they make, graphs or None).

    Keys are :class:`~comclip.options.Options` fields plus ``graphs``: one scene graph (JSON
    object) per caption, ``null`` meaning "parse this one", as ``score --graph`` takes. ``None``
    values mean "the default", so equal options are one value however they are written (``{}`` and
    ``{"weighting": "softmax"}`` alike). Unknown keys or bad values are one InputError.
    """
    options = _json_object(options)
    if options is None or options == "":
        return Options(), None
    if not isinstance(options, Mapping):
        raise InputError(f"options must be an object (dict), got {type(options).__name__}")
    opts = {k: v for k, v in options.items() if v is not None}
    graphs = opts.pop("graphs", None)
    checked = Options.from_mapping(opts)
    if graphs is not None and not isinstance(graphs, (list, dict)):
        raise InputError("options 'graphs' must be a list with one graph (or null) per caption")
    return checked, graphs


def check_preset(name: Any, offered: Sequence[str]) -> str:
    """``name`` if it is one of the presets the page offers, else one InputError naming them."""
    if not isinstance(name, str) or name not in offered:
        shown = name if isinstance(name, str) else type(name).__name__
        raise InputError(f"unknown preset {shown!r} for this app; choose one of: {', '.join(offered)}")
    return name


def api_options(options: Mapping[str, Any] | str | None, default_preset: str, offered: Sequence[str]
                ) -> tuple[str, Options, dict[str, Any] | list | None]:
    """The API's options → (preset, engine options, graphs): :func:`check_options` plus an optional
    ``preset`` key (default: the preset the app started with; only the presets the page offers)."""
    options = _json_object(options)
    options = dict(options) if isinstance(options, Mapping) else options
    preset = default_preset
    if isinstance(options, dict) and options.get("preset") is not None:
        preset = check_preset(options.pop("preset"), offered)
    opts, graphs = check_options(options or None)
    return preset, opts, graphs


def graphs_for(captions: Sequence[str], graphs: Sequence[Any] | Mapping[str, Any] | None
               ) -> list[SceneGraph | None] | None:
    """One graph (or None = parse) per caption from a list in caption order or a {caption: graph}
    mapping; every graph is validated (GraphError names the caption)."""
    if graphs is None:
        return None
    if isinstance(graphs, Mapping):
        items = [graphs.get(c) for c in captions]
    else:
        items = list(graphs)
        if len(items) != len(captions):
            raise InputError(f"{len(items)} graph(s) given for {len(captions)} caption(s); give one per caption "
                             "(null to parse it)")
    out: list[SceneGraph | None] = []
    for caption, g in zip(captions, items, strict=True):
        if g is None:
            out.append(None)
            continue
        try:
            out.append(g if isinstance(g, SceneGraph) else SceneGraph.from_dict(g, caption=caption))
        except GraphError as exc:
            raise GraphError(f"graph for “{caption}” is not valid: {exc}") from None
    return out if any(g is not None for g in out) else None


def edited_graph(text: str, caption: str) -> SceneGraph:
    """The graph typed into the editor, for ``caption`` (its ``caption`` key may be left out; it
    is always set to the selected caption). Any problem is one GraphError in plain words."""
    if not text or not text.strip():
        raise GraphError("The graph editor is empty: paste a graph as JSON, or press “Reset” to parse again.")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise GraphError(f"The edited graph is not valid JSON (line {exc.lineno}, column {exc.colno}: "
                         f"{exc.msg}).") from None
    if isinstance(data, dict):
        data = {k: v for k, v in data.items() if k != "caption"}
    try:
        return SceneGraph.from_dict(data, caption=caption)
    except GraphError as exc:
        raise GraphError(f"The edited graph is not valid: {exc}.") from None


# -- images -------------------------------------------------------------------------------------

def prepare_image(source: Any, limits: Limits = LIMITS) -> tuple[LoadedImage, list[str]]:
    """Load an upload robustly and downscale it below the pixel cap (:func:`comclip.images.load_image`
    does both); returns (image, notices)."""
    if source is None or (isinstance(source, str) and not source.strip()):
        raise InputError("Add an image first: upload one, paste it, use the webcam, or pick an example.")
    name = None
    if isinstance(source, Mapping):  # an upload as Gradio sends it: {"path": ..., "orig_name": ...}
        name = source.get("orig_name")
        source = source.get("path")
        if not source:
            raise InputError("the image file did not arrive; upload it again")
    if isinstance(source, (str, os.PathLike)) and name is None:
        name = Path(source).name  # the file as the user knows it, not by its server temp path
    cap = limits.pixel_cap
    # PNG, WebP, … over max_decode_pixels are refused from the header; JPEGs are decoded reduced.
    loaded = load_image(source, max_pixels=limits.max_decode_pixels, fit_pixels=cap, name=name)
    # The upload's path is a server temp file: results record no path (as for an in-memory image).
    # (It must not be a {"path": str} dict either: gradio_client would take it for a file to download.)
    image = replace(loaded, path=None)
    if loaded.downscaled_from is None:
        return image, []
    w, h = loaded.downscaled_from
    return image, [f"The image is {w}×{h} ({w * h / 1e6:.1f} megapixels); it was downscaled to {loaded.width}×"
                   f"{loaded.height} for scoring (limit {cap / 1e6:.1f} megapixels)."]


# -- whole requests -----------------------------------------------------------------------------

def _page_settings(values: Mapping[str, Any], offered: Sequence[str]) -> tuple[str, Options]:
    """The page's preset and option widgets (by :class:`Options` field name), checked."""
    preset = check_preset(values["preset"], offered)
    options, _ = check_options({name: values[name] for name in Options.names()})
    return preset, options


def page_request(values: Mapping[str, Any], overrides: Mapping[str, Any], offered: Sequence[str],
                 limits: Limits = LIMITS, image: LoadedImage | None = None) -> Request:
    """The page's values (by component name) checked into a :class:`Request`; ``overrides`` are the
    graphs the person edited, by caption (used for the captions still listed). ``image``: the page's
    image already loaded by :func:`prepare_image` (not loaded again; its notices are not repeated)."""
    captions, notices, preset, options = page_texts(values, offered, limits)
    graphs = graphs_for(captions, {c: g for c, g in overrides.items() if c in captions})
    image, image_notices = (image, []) if image is not None else prepare_image(values["image"], limits)
    edited = [c for c in captions if c in overrides]
    if edited:
        notices.append("Using your edited graph for: " + ", ".join(f"“{c}”" for c in edited) + ".")
    return Request(preset, (image,), tuple(captions), _frozen(graphs), options, tuple(notices + image_notices))


def page_texts(values: Mapping[str, Any], offered: Sequence[str], limits: Limits = LIMITS
               ) -> tuple[list[str], list[str], str, Options]:
    """What a page request's texts depend on, checked: its captions (and notices about them), preset and options."""
    captions, notices = split_captions(values["captions"], limits=limits)
    preset, options = _page_settings(values, offered)
    return captions, notices, preset, options


def api_request(image: Any, captions: Any, options: Any, default_preset: str, offered: Sequence[str],
                limits: Limits = LIMITS) -> Request:
    """An API call's arguments (``/match``) checked into a :class:`Request`."""
    preset, opts, graphs = api_options(options, default_preset, offered)
    captions, _ = split_captions(captions, strict=True, limits=limits)
    loaded, notices = prepare_image(image, limits)
    return Request(preset, (loaded,), tuple(captions), _frozen(graphs_for(captions, graphs)), opts, tuple(notices))


# -- several images against the same captions (the "Two images" view, /match_grid) ---------------

def prepare_images(sources: Any, limits: Limits = LIMITS) -> tuple[tuple[LoadedImage, ...], list[str]]:
    """``limits.min_images``–``limits.max_images`` images, each as :func:`prepare_image` takes it;
    a problem with one is one InputError naming it ("Image 2: …")."""
    if sources is None or isinstance(sources, (str, bytes, Mapping)) or not isinstance(sources, Sequence):
        raise InputError(f"Give the images as a list ({limits.min_images} to {limits.max_images}).")
    if not limits.min_images <= len(sources) <= limits.max_images:
        raise InputError(f"Give {limits.min_images} to {limits.max_images} images ({len(sources)} given).")
    images, notices = [], []
    for k, source in enumerate(sources, start=1):
        try:
            image, said = prepare_image(source, limits)
        except ComCLIPError as exc:
            raise InputError(f"Image {k}: {exc}", hint=exc.hint) from None
        images.append(image)
        notices += [f"Image {k}: {n}" for n in said]
    return tuple(images), notices


def _pairing(pairing: Any, n_images: int, n_captions: int) -> tuple[int, ...]:
    """The pairing as :func:`comclip.grid.check_pairing` takes it (a JSON list, or None = i ↔ i)."""
    pairing = _json_object(pairing) if isinstance(pairing, str) else pairing
    return check_pairing(None if pairing in (None, "") else pairing, n_images, n_captions)


def grid_request(images: Any, captions: Any, pairing: Any, options: Any, default_preset: str,
                 offered: Sequence[str], limits: Limits = LIMITS) -> tuple[Request, tuple[int, ...]]:
    """An API call's arguments (``/match_grid``) checked into one :class:`Request` with several
    images, and the pairing (``pairing[i]``: image i's true caption; None = i ↔ i)."""
    preset, opts, graphs = api_options(options, default_preset, offered)
    captions, _ = split_captions(captions, strict=True, limits=limits)
    _distinct(captions)
    loaded, notices = prepare_images(images, limits)
    paired = _pairing(pairing, len(loaded), len(captions))
    return Request(preset, loaded, tuple(captions), _frozen(graphs_for(captions, graphs)), opts,
                   tuple(notices)), paired


def page_grid_request(values: Mapping[str, Any], sources: Sequence[Any], pairing: Sequence[Any], offered: Sequence[str],
                      limits: Limits = LIMITS) -> tuple[Request, tuple[int, ...]]:
    """The "Two images" view's values checked: ``sources`` the images shown, ``pairing`` each one's
    true caption as its menu holds it (an index; None = i ↔ i), the captions, preset and options as
    the page holds them (:func:`page_request`)."""
    captions, notices = split_captions(values["grid_captions"], limits=limits)
    preset, options = _page_settings(values, offered)
    missing = [k for k, s in enumerate(sources, start=1) if s is None]
    if missing:
        raise InputError(f"Add image {missing[0]} first: upload one, paste it, or pick an example pair.")
    loaded, image_notices = prepare_images(list(sources), limits)
    paired = page_pairing([pairing_index(p, k) for k, p in enumerate(pairing)], len(captions))
    return Request(preset, loaded, tuple(captions), None, options, tuple(notices + image_notices)), paired


def pairing_index(value: Any, image: int) -> int:
    """A pairing menu's value: a caption index (None: the image's own position)."""
    if value is None:
        return image
    try:
        return int(value)
    except (TypeError, ValueError):
        raise InputError(f"Choose the true caption of image {image + 1} from its menu.") from None


def page_pairing(pairing: list[int], n_captions: int) -> tuple[int, ...]:
    """The menus' pairing, its problems said as the page numbers things (from 1)."""
    for k, p in enumerate(pairing):
        if not 0 <= p < n_captions:
            raise InputError(f"Image {k + 1}'s true caption is caption {p + 1}, but there are {n_captions} captions: "
                             "choose another in its menu.")
        if p in pairing[:k]:
            raise InputError(f"Images {pairing.index(p) + 1} and {k + 1} both have caption {p + 1} as their true "
                             "caption; each image needs its own (change one menu, or press Swap).")
    return tuple(pairing)


def _distinct(captions: Sequence[str]) -> None:
    """Several images are compared across captions: the same caption twice is a mistake."""
    for k, c in enumerate(captions):
        if c in captions[:k]:
            raise InputError(f"Caption {k + 1} repeats caption {captions.index(c) + 1}; give different captions.")


def _frozen(graphs: list[SceneGraph | None] | None) -> tuple[SceneGraph | None, ...] | None:
    return None if graphs is None else tuple(graphs)
