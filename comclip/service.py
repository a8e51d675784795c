"""What the app does between the widgets and the engine — plain functions, testable without Gradio.

Input checking (captions, options, edited graphs, image size), the shared engines (loaded once,
shared by every request), a small lazy result cache, and turning a :class:`MatchResult` into
what the app shows: table rows, notices, gallery items, the API's JSON object.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from comclip.errors import GraphError, InputError
from comclip.graph import SceneGraph
from comclip.images import LoadedImage, image_digest, load_image

MIN_CAPTIONS = 2
MAX_CAPTIONS = 8
#: Images with more pixels than this are downscaled (aspect kept) before scoring, with a notice.
PIXEL_CAP = int(os.environ.get("COMCLIP_PIXEL_CAP", str(4_000_000)))
#: Largest upload the app accepts (Gradio's ``max_file_size``).
MAX_UPLOAD = os.environ.get("COMCLIP_MAX_UPLOAD", "20mb")
#: Model calls the queue runs at the same time (the engines are shared; other events are not limited).
CONCURRENCY = int(os.environ.get("COMCLIP_CONCURRENCY", "1"))
RESULT_CACHE_SIZE = 32

#: The option names the app and the API accept (the engine's :class:`~comclip.engine.Options`).
OPTION_NAMES = ("weighting", "relation_text", "subimage", "relations", "parser", "box_threshold", "text_threshold",
                "boxes_per_entity")


# -- captions -----------------------------------------------------------------------------------

def split_captions(captions: str | Sequence[Any] | None, *, strict: bool = False) -> tuple[list[str], list[str]]:
    """Captions from the text box (one per line) or the API (a list); returns (captions, notices).

    Blank lines are skipped and exact repeats dropped, each with a notice — or, with ``strict``
    (the API, where results follow the captions' positions), a blank caption is an InputError and
    repeats are kept. Fewer than :data:`MIN_CAPTIONS` or more than :data:`MAX_CAPTIONS` usable
    captions is an InputError.
    """
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
    if len(out) < MIN_CAPTIONS:
        got = "none" if not out else f"only {len(out)}"
        raise InputError(f"Enter at least {MIN_CAPTIONS} different captions, one per line ({got} given) — "
                         "e.g. a caption and the same words in another order.")
    if len(out) > MAX_CAPTIONS:
        raise InputError(f"At most {MAX_CAPTIONS} captions at a time ({len(out)} given); remove some lines.")
    return out, notices


# -- options ------------------------------------------------------------------------------------

def check_options(options: Mapping[str, Any] | str | None) -> tuple[dict[str, Any], dict[str, Any] | list | None]:
    """Validate an options dict (API or UI) → (engine options, graphs or None).

    Keys are the engine's option names (see :data:`OPTION_NAMES`) plus ``graphs``: one scene graph
    (JSON object) per caption, ``null`` meaning "parse this one", as ``score --graph`` takes.
    ``None`` values mean "the default". Unknown keys or bad values are one InputError.
    """
    from comclip.engine import Options

    if options is None or options == "":
        return {}, None
    if isinstance(options, str):
        try:
            options = json.loads(options)
        except json.JSONDecodeError as exc:
            raise InputError(f"options must be a JSON object: {exc}") from None
    if not isinstance(options, Mapping):
        raise InputError(f"options must be an object (dict), got {type(options).__name__}")
    opts = {k: v for k, v in options.items() if v is not None}
    graphs = opts.pop("graphs", None)
    unknown = sorted(set(opts) - set(OPTION_NAMES))
    if unknown:
        raise InputError(f"unknown option(s): {', '.join(unknown)}; known: {', '.join(OPTION_NAMES + ('graphs',))}")
    for key in ("box_threshold", "text_threshold"):
        if key in opts:
            if isinstance(opts[key], bool) or not isinstance(opts[key], (int, float)):
                raise InputError(f"{key.replace('_', ' ')} must be a number between 0 and 1")
            opts[key] = float(opts[key])
    if "relations" in opts and not isinstance(opts["relations"], bool):
        raise InputError("relations must be true or false")
    Options().updated(**opts)  # raises InputError on a bad value
    if graphs is not None and not isinstance(graphs, (list, dict)):
        raise InputError("options 'graphs' must be a list with one graph (or null) per caption")
    return opts, graphs


def api_options(options: Mapping[str, Any] | str | None, default_preset: str
                ) -> tuple[str, dict[str, Any], dict[str, Any] | list | None]:
    """The API's options → (preset, engine options, graphs): :func:`check_options` plus an optional
    ``preset`` key (default: the preset the app started with)."""
    from comclip.presets import get_preset

    if isinstance(options, str) and options.strip():
        try:
            options = json.loads(options)
        except json.JSONDecodeError as exc:
            raise InputError(f"options must be a JSON object: {exc}") from None
    options = dict(options) if isinstance(options, Mapping) else options
    preset = default_preset
    if isinstance(options, dict) and options.get("preset") is not None:
        preset = options.pop("preset")
        if not isinstance(preset, str):
            raise InputError("options 'preset' must be a preset name")
        get_preset(preset)
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

def prepare_image(source: Any, pixel_cap: int | None = None) -> tuple[LoadedImage, list[str]]:
    """Load an upload robustly and downscale it below the pixel cap; returns (image, notices)."""
    if source is None or (isinstance(source, str) and not source.strip()):
        raise InputError("Add an image first: upload one, paste it, use the webcam, or pick an example.")
    name = None
    if isinstance(source, Mapping):  # an upload as Gradio sends it: {"path": ..., "orig_name": ...}
        name = source.get("orig_name")
        source = source.get("path")
        if not source:
            raise InputError("the image file did not arrive; upload it again")
    if isinstance(source, (str, os.PathLike)) and name is None:
        name = Path(source).name
    cap = PIXEL_CAP if pixel_cap is None else pixel_cap
    try:
        loaded = load_image(source)
    except InputError as exc:  # name the file as the user knows it, not by its server temp path
        message = str(exc).replace(str(source), f"“{name}”") if name else str(exc)
        raise InputError(message) from None
    # The upload's path is a server temp file: results record no path (as for an in-memory image).
    # (It must not be a {"path": str} dict either: gradio_client would take it for a file to download.)
    w, h = loaded.width, loaded.height
    if w * h <= cap:
        return LoadedImage(loaded.image, None), []
    scale = math.sqrt(cap / (w * h))
    nw, nh = max(1, int(w * scale)), max(1, int(h * scale))
    small = loaded.image.resize((nw, nh), Image.Resampling.LANCZOS)
    notice = (f"The image is {w}×{h} ({w * h / 1e6:.1f} megapixels); it was downscaled to {nw}×{nh} for scoring "
              f"(limit {cap / 1e6:.1f} megapixels).")
    return LoadedImage(small, None), [notice]


# -- the engines --------------------------------------------------------------------------------

class Engines:
    """The loaded engines, one per preset, shared by all requests; a preset loads on first use."""

    def __init__(self, loader: Callable[[str], Any] | None = None) -> None:
        self._engines: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._loader = loader or _load_preset

    def add(self, name: str, engine: Any) -> None:
        self._engines[name] = engine

    def loaded(self) -> list[str]:
        return list(self._engines)

    def get(self, name: str) -> Any:
        engine = self._engines.get(name)
        if engine is not None:
            return engine
        with self._lock:  # one load at a time; later requests for it wait and then share it
            engine = self._engines.get(name)
            if engine is None:
                engine = self._loader(name)
                self._engines[name] = engine
        return engine


def _load_preset(name: str) -> Any:
    from comclip.engine import ComCLIP
    from comclip.presets import get_preset

    get_preset(name)  # InputError for an unknown name, before anything heavy
    return ComCLIP.from_preset(name, device=os.environ.get("COMCLIP_DEVICE", "auto"))


# -- scoring with a lazy cache ------------------------------------------------------------------

@dataclass
class Scored:
    """One request's outcome: the result, the (possibly downscaled) image and what to tell the user."""

    result: Any  # MatchResult
    image: LoadedImage
    notices: list[str] = field(default_factory=list)
    seconds: float = 0.0
    cached: bool = False


class ResultCache:
    """Results by (preset, image content, captions, graphs, options): examples and repeated
    requests are scored once (lazily, on first use) and then served from memory."""

    def __init__(self, size: int = RESULT_CACHE_SIZE) -> None:
        self.size = size
        self._items: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def key(preset: str, image: Image.Image, captions: Sequence[str], graphs: Sequence[SceneGraph | None] | None,
            options: Mapping[str, Any]) -> str:
        graph_json = [None if g is None else g.to_dict() for g in graphs] if graphs else None
        blob = json.dumps([preset, image_digest(image), list(captions), graph_json, dict(sorted(options.items()))],
                          sort_keys=True, default=str)
        return hashlib.sha1(blob.encode()).hexdigest()

    def get(self, key: str) -> Any:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: str, value: Any) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)


def score(engine: Any, image: LoadedImage, captions: Sequence[str], graphs: Sequence[SceneGraph | None] | None,
          options: Mapping[str, Any], *, cache: ResultCache | None = None,
          run: Callable[..., Any] | None = None) -> Scored:
    """Score captions against an image with the engine (through ``run``, e.g. a ZeroGPU wrapper),
    using the cache; the notices say what the user should know about the result."""
    key = ResultCache.key(engine.preset_name, image.image, captions, graphs, options) if cache else ""
    result = cache.get(key) if cache else None
    cached = result is not None
    start = time.perf_counter()
    if result is None:
        call = run or (lambda e, *a, **k: e.match(*a, **k))
        result = call(engine, image, list(captions), list(graphs) if graphs else None, **options)
        if cache:
            cache.put(key, result)
    limit = getattr(getattr(engine, "encoder", None), "context_length", None)
    return Scored(result, image, result_notices(result, limit), time.perf_counter() - start, cached)


def result_notices(result: Any, context_length: int | None = None) -> list[str]:
    """Plain-language notes about a result: truncated captions, no entities, entities not found."""
    notes = []
    limit = f"{context_length} tokens" if context_length else "its token limit"
    for i, c in enumerate(result.captions, start=1):
        if c.truncated:
            notes.append(f"Caption {i} is longer than the text encoder reads ({limit}); it was truncated and "
                         "only its beginning was scored.")
        if not c.graph.entities:
            notes.append(f"Caption {i} (“{c.caption}”): no entity could be parsed from it, so its ComCLIP score "
                         "equals its CLIP score.")
        missing = [k.text for k in c.components if k.kind == "entity" and not k.grounded]
        if missing:
            notes.append(f"Caption {i}: not found in the image, so the whole image stands in for "
                         f"{', '.join(f'“{m}”' for m in missing)}.")
    return notes


# -- what the app shows -------------------------------------------------------------------------

SCORE_HEADERS = ["#", "caption", "CLIP", "ComCLIP", "Δ", "CLIP rank", "ComCLIP rank"]
COMPONENT_HEADERS = ["component", "text", "found in image", "similarity", "weight", "ComCLIP without it",
                     "effect"]


def ranks(values: Sequence[float]) -> list[int]:
    """1 = highest; ties share the better rank."""
    return [1 + sum(1 for w in values if w > v) for v in values]


def score_rows(result: Any) -> list[list[Any]]:
    """One row per caption: #, caption, CLIP, ComCLIP, Δ, ranks (★ marks each method's pick)."""
    clip = [c.clip_score for c in result.captions]
    com = [c.comclip_score for c in result.captions]
    rc, rm = ranks(clip), ranks(com)
    rows = []
    for i, c in enumerate(result.captions):
        rows.append([i + 1, c.caption, round(c.clip_score, 4), round(c.comclip_score, 4), round(c.delta, 4),
                     f"★ {rc[i]}" if i == result.best_clip else str(rc[i]),
                     f"★ {rm[i]}" if i == result.best_comclip else str(rm[i])])
    return rows


def score_frame(result: Any) -> Any:
    """The score table as a pandas Styler: each method's pick highlighted in its column."""
    import pandas as pd

    frame = pd.DataFrame(score_rows(result), columns=SCORE_HEADERS)

    def highlight(col: pd.Series) -> list[str]:
        best = {"CLIP": result.best_clip, "CLIP rank": result.best_clip, "ComCLIP": result.best_comclip,
                "ComCLIP rank": result.best_comclip}.get(str(col.name))
        colour = "#e8e8e8" if str(col.name).startswith("CLIP") else "#dfe4ff"
        return [f"background-color: {colour}; font-weight: bold" if best == i else "" for i in range(len(col))]

    return frame.style.apply(highlight, axis=0).format({"CLIP": "{:.4f}", "ComCLIP": "{:.4f}", "Δ": "{:+.4f}"})


def summary_markdown(scored: Scored) -> str:
    r = scored.result
    a, b = r.captions[r.best_clip], r.captions[r.best_comclip]
    lines = [f"**CLIP picks** #{r.best_clip + 1} “{a.caption}” · **ComCLIP picks** #{r.best_comclip + 1} "
             f"“{b.caption}”"]
    lines.append("ComCLIP changes the pick." if r.best_clip != r.best_comclip else "Both methods agree.")
    how = "from cache" if scored.cached else f"in {scored.seconds:.1f} s"
    lines[-1] += f" <small>(preset `{r.preset}`, image {r.width}×{r.height}, scored {how})</small>"
    if scored.notices:
        lines.append("\n".join(f"- ⚠️ {n}" for n in scored.notices))
    return "\n\n".join(lines)


def component_rows(caption: Any) -> list[list[Any]]:
    """The leave-one-out table of one caption: what each component does to the ComCLIP score."""
    rows = []
    for k in caption.components:
        rows.append([f"{k.kind} {k.ref}", k.text, "yes" if k.grounded else "no (whole image)",
                     round(k.similarity, 4), round(k.weight, 4), round(k.loo_score, 4),
                     round(caption.comclip_score - k.loo_score, 5)])
    return rows


def ungrounded_markdown(caption: Any) -> str:
    missing = [k.text for k in caption.components if k.kind == "entity" and not k.grounded]
    if not caption.graph.entities:
        return "No entities were parsed from this caption, so there is nothing to ground (ComCLIP = CLIP)."
    if not missing:
        return "Every entity was found in the image."
    return ("**Not found in the image** (the whole image stands in for them): "
            + ", ".join(f"“{m}”" for m in missing))


def gallery_items(image: Image.Image, caption: Any, mode: str = "blackout") -> list[tuple[Image.Image, str]]:
    """Each component's sub-image, captioned with its text, similarity and weight."""
    from comclip import subimage

    items = []
    for k in caption.components:
        region = subimage.Region(tuple(tuple(b) for b in k.boxes))
        picture = subimage.render(image, region, mode)
        where = "" if k.grounded else " (not found: whole image)"
        kind = "relation " if k.kind == "relation" else ""
        items.append((picture, f"{kind}“{k.text}” · w {k.weight:.2f} · sim {k.similarity:+.3f}{where}"))
    return items


def graph_json(graph: SceneGraph) -> str:
    """The graph as JSON for the editor: one entity or relation per line (its caption is implied)."""
    def rows(items: list[dict[str, Any]]) -> str:
        if not items:
            return "[]"
        return "[\n" + ",\n".join("    " + json.dumps(x, ensure_ascii=False) for x in items) + "\n  ]"

    d = graph.to_dict()
    return f'{{\n  "entities": {rows(d["entities"])},\n  "relations": {rows(d["relations"])}\n}}\n'



def api_result(result: Any) -> dict[str, Any]:
    """Exactly the ``python -m comclip score --json`` object."""
    return result.to_dict()

