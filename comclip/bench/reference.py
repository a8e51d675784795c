"""The reference: the official ComCLIP per-pair loop, restated on its own.

The official scripts (eric-ai-lab/ComCLIP, ``winoground/comclip.py``) score one (image, caption)
pair at a time: one CLIP call for the whole image and the caption; per entity a sub-image (the image
blacked out outside each of its boxes, overlaid; the whole image when it has none) and one CLIP call
with the entity's name; per relation the overlay of its subject's and object's sub-images (the
whole image when either is missing) and one CLIP call with the verb; then the weighted sum of the
component image embeddings added to the whole image's embedding, and one cosine. For a multi-query
encoder (BLIP-2, as the official ``comblip.py``) the image rows are the per-query features before
the projection: they are composed per query, then projected, and the score is the max over queries.

This module restates that loop with our detector in place of their offline dense captioner (one
detector call per pair, with that caption's phrases) and our frozen encoder. It shares NOTHING with
the engine but the models and the graph type: its own component planning, its own sub-image
rendering (PIL, with the pixel convention of ``comclip.subimage``: a box covers
``floor(x0) <= x < ceil(x1)``), its own weights and composition (NumPy, float64). So when the bench
checks reference against engine scores it checks the engine's planning, de-duplication, batching
and composition, not just a re-run of the same code. Nothing is cached.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image, ImageDraw

from comclip.bench.inputs import BenchInputs
from comclip.graph import SceneGraph

if TYPE_CHECKING:
    from comclip.engine import ComCLIP
    from comclip.options import Options

Scores = list[tuple[float, float]]  # (CLIP, ComCLIP) per pair, in input order
Boxes = tuple[tuple[float, float, float, float], ...]


def _pixel_rect(box: Sequence[float], width: int, height: int) -> tuple[int, int, int, int] | None:
    """Inclusive pixel rectangle a float box covers, clipped; None when it covers no pixel."""
    x0 = max(0, math.floor(box[0]))
    y0 = max(0, math.floor(box[1]))
    x1 = min(width, math.ceil(box[2])) - 1
    y1 = min(height, math.ceil(box[3])) - 1
    return (x0, y0, x1, y1) if x1 >= x0 and y1 >= y0 else None


def sub_image(image: Image.Image, boxes: Boxes | None, mode: str) -> Image.Image:
    """The official ``black_outside_rectangle`` + ``overlay_images`` (blackout), or the bounding crop."""
    rects = [r for r in (_pixel_rect(b, image.width, image.height) for b in boxes or ()) if r]
    if not rects:
        return image
    if mode == "crop":
        return image.crop((min(r[0] for r in rects), min(r[1] for r in rects),
                           max(r[2] for r in rects) + 1, max(r[3] for r in rects) + 1))
    mask = Image.new("L", image.size, 0)
    draw = ImageDraw.Draw(mask)
    for r in rects:
        draw.rectangle(r, fill=255)
    out = Image.new("RGB", image.size, (0, 0, 0))
    out.paste(image.convert("RGB"), (0, 0), mask)
    return out


def components(graph: SceneGraph, found: dict[str, Any], *, relations: bool, relation_text: str
               ) -> list[tuple[str, Boxes | None]]:
    """Each component's text and boxes (None: the whole image): entities in order, then relations."""
    phrase = {e.id: e.phrase for e in graph.entities}
    boxes: dict[str, Boxes] = {}
    for e in graph.entities:
        hit = found.get(e.phrase)
        boxes[e.id] = hit.xyxy if hit is not None else ()
    out: list[tuple[str, Boxes | None]] = [(e.phrase, boxes[e.id] or None) for e in graph.entities]
    if relations:
        for r in graph.relations:
            sides = [r.subject] if r.object is None else [r.subject, r.object]
            words = [phrase[r.subject], r.predicate] + ([] if r.object is None else [phrase[r.object]])
            text = r.predicate if relation_text == "predicate" else " ".join(words)
            covered = None if any(not boxes[s] for s in sides) else tuple(b for s in sides for b in boxes[s])
            out.append((text, covered))
    return out


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-12))


def _compose(sim: Callable[[np.ndarray, np.ndarray], float], t: np.ndarray, v0: np.ndarray, t_i: list[np.ndarray],
             v_i: list[np.ndarray], scale: float, weighting: str) -> tuple[float, float]:
    """(CLIP, ComCLIP) for any image-row similarity ``sim(text, row)``: ``s_i = scale * sim(t_i, v_i)``,
    ``w = softmax(s)`` or ``s / sum(s)`` (equal weights when that sum is 0), ``v* = v0 + sum_i w_i v_i``,
    score ``sim(t, v*)``."""
    clip = sim(t, v0)
    if not t_i:
        return clip, clip
    s = np.array([scale * sim(a, b) for a, b in zip(t_i, v_i, strict=True)])
    if weighting == "softmax":
        w = np.exp(s - s.max())
        w /= w.sum()
    elif abs(s.sum()) > 1e-12:
        w = s / s.sum()
    else:
        w = np.full(len(s), 1.0 / len(s))
    return clip, sim(t, v0 + sum(wk * vk for wk, vk in zip(w, v_i, strict=True)))


def comclip_score(t: np.ndarray, v0: np.ndarray, t_i: list[np.ndarray], v_i: list[np.ndarray], scale: float,
                  weighting: str) -> tuple[float, float]:
    """(CLIP, ComCLIP) from normalised embeddings: the similarity is ``cos(text, row)``."""
    return _compose(_cos, t, v0, t_i, v_i, scale, weighting)


def comclip_score_queries(t: np.ndarray, h0: np.ndarray, t_i: list[np.ndarray], h_i: list[np.ndarray], scale: float,
                          weighting: str, project: Callable[[np.ndarray], np.ndarray]) -> tuple[float, float]:
    """(CLIP, ComCLIP) for a multi-query encoder (BLIP-2): image rows are per-query features ``(Q, D_q)``
    before the model's affine projection ``project`` (``(Q, D_q) -> (Q, D)``). The similarity is
    ``max_q cos(text, P(h)_q)``, so the per-query rows are composed before projecting:
    ``h* = h0 + sum_i w_i h_i``, score ``max_q cos(t, P(h*)_q)``."""
    def max_cos(text: np.ndarray, h: np.ndarray) -> float:
        p = project(h)
        p = p / np.maximum(np.linalg.norm(p, axis=-1, keepdims=True), 1e-12)
        return float((p @ (text / max(np.linalg.norm(text), 1e-12))).max())

    return _compose(max_cos, t, h0, t_i, h_i, scale, weighting)


def run_reference(engine: ComCLIP, inputs: BenchInputs, **options: Any) -> Scores:
    """Every pair in turn: one detector call, one encoder call per image and per text.

    Uses the engine's models and option values (``options`` override them, as in ``match_batch``); the
    detector runs the model's own forward (its ``transformers`` backend), as the official code does."""
    opts = engine.options.updated(**options) if options else engine.options
    enc, det = engine.encoder, engine.detector
    scale = float(enc.logit_scale)

    def image_row(image: Image.Image) -> np.ndarray:
        return enc.encode_images([image])[0].float().cpu().numpy().astype(np.float64)

    def text_row(text: str) -> np.ndarray:
        return enc.encode_texts([text])[0].float().cpu().numpy().astype(np.float64)

    multi_query = bool(getattr(enc, "multi_query", False))

    def project(h: np.ndarray) -> np.ndarray:  # the model's own projection; everything around it is NumPy
        import torch

        return enc.project_queries(torch.from_numpy(h).float()).float().cpu().numpy().astype(np.float64)

    if hasattr(det, "replace"):  # the same model through its own forward, nothing cached
        det = det.replace(backend="transformers", caching=False)
    return _pairs(inputs, opts, det, image_row, text_row, scale, project if multi_query else None)


def _pairs(inputs: BenchInputs, opts: Options, det: Any, image_row: Callable[[Image.Image], np.ndarray],
           text_row: Callable[[str], np.ndarray], scale: float, project: Callable[[np.ndarray], np.ndarray] | None
           ) -> Scores:
    scores: Scores = []
    for loaded, caption, graph in inputs.pair_list():
        image = loaded.image
        phrases = [e.phrase for e in graph.entities]
        found = det.detect(image, phrases, box_threshold=opts.box_threshold, text_threshold=opts.text_threshold,
                           boxes_per_entity=opts.boxes_per_entity) if phrases else {}
        v0, t = image_row(image), text_row(caption)
        t_i, v_i = [], []
        for text, boxes in components(graph, found, relations=opts.relations, relation_text=opts.relation_text):
            v_i.append(image_row(sub_image(image, boxes, opts.subimage)))
            t_i.append(text_row(text))
        if project is not None:
            scores.append(comclip_score_queries(t, v0, t_i, v_i, scale, opts.weighting, project))
        else:
            scores.append(comclip_score(t, v0, t_i, v_i, scale, opts.weighting))
    return scores
