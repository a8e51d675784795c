"""Grounding entity phrases in an image with Grounding DINO (transformers' native model).

All phrases of all captions of one image go through ONE forward pass: the prompt is
``"phrase one. phrase two. ..."`` (split into several passes only when the text-token limit
forces it). Boxes are mapped back to phrases by token span: each phrase owns the tokens whose
character offsets fall inside it in the prompt, so no fuzzy matching of label strings is needed.

Per query ``q`` and phrase ``p``: ``score(q, p) = max_{t in p} sigmoid(logit[q, t])``. A query is
kept when its best token score over the whole prompt exceeds ``box_threshold`` (Grounding DINO's
rule); it belongs to every phrase whose ``score(q, p)`` exceeds ``text_threshold`` (as Grounding
DINO labels a box with every token above that threshold). Each phrase keeps its
``boxes_per_entity`` best boxes by ``score(q, p)`` after non-maximum suppression. A phrase with no
box is *ungrounded*.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from PIL import Image
from torchvision.ops import nms

from comclip.subimage import Box

NMS_IOU = 0.5


@dataclass(frozen=True)
class PhraseBoxes:
    """The detector's answer for one phrase: boxes in pixels (x0, y0, x1, y1) and their scores."""

    phrase: str
    boxes: tuple[Box, ...] = ()
    scores: tuple[float, ...] = ()

    @property
    def grounded(self) -> bool:
        return bool(self.boxes)


class Detector(Protocol):
    box_threshold: float
    text_threshold: float
    boxes_per_entity: int

    def detect(self, image: Image.Image, phrases: Sequence[str], *, box_threshold: float | None = None,
               text_threshold: float | None = None, boxes_per_entity: int | None = None
               ) -> dict[str, PhraseBoxes]:
        """Boxes for every phrase (keys are the phrases as given); None → the detector's defaults."""
        ...

    def detect_batch(self, requests: Sequence[tuple[Image.Image, Sequence[str]]], *,
                     box_threshold: float | None = None, text_threshold: float | None = None,
                     boxes_per_entity: int | None = None) -> list[dict[str, PhraseBoxes]]:
        """One dict per (image, phrases) request (keys: the phrases as given); each request's
        result depends on that request alone."""
        ...


def normalise_phrase(phrase: str) -> str:
    """Grounding DINO reads lower-case phrases without trailing punctuation."""
    return " ".join(phrase.lower().replace(".", " ").split())


def build_prompt(phrases: Sequence[str]) -> tuple[str, list[tuple[int, int]]]:
    """Join phrases as ``"a. b."``; return the prompt and each phrase's character span."""
    parts: list[str] = []
    spans: list[tuple[int, int]] = []
    pos = 0
    for p in phrases:
        spans.append((pos, pos + len(p)))
        parts.append(p + ".")
        pos += len(p) + 2  # the phrase, ".", " "
    return " ".join(parts), spans


def phrase_token_indices(offsets: Sequence[tuple[int, int]], spans: Sequence[tuple[int, int]]) -> list[list[int]]:
    """Token positions whose character offsets fall inside each phrase span.

    Special tokens have the empty offset ``(0, 0)`` and belong to no phrase.
    """
    out: list[list[int]] = []
    for start, end in spans:
        out.append([i for i, (a, b) in enumerate(offsets) if b > a and a >= start and b <= end])
    return out


def select_boxes(probs: torch.Tensor, boxes: torch.Tensor, token_indices: Sequence[Sequence[int]], *,
                 box_threshold: float, text_threshold: float, boxes_per_entity: int
                 ) -> list[tuple[list[Box], list[float]]]:
    """Assign detector queries to phrases by token span and keep each phrase's best boxes.

    ``probs``: ``(Q, T)`` token probabilities (sigmoid of logits); ``boxes``: ``(Q, 4)`` xyxy pixels.
    Returns, per phrase, its boxes and scores, best first.
    """
    n = len(token_indices)
    if n == 0 or probs.shape[0] == 0:
        return [([], []) for _ in range(n)]
    probs = probs.float()
    query_ok = probs.max(dim=1).values > box_threshold
    result: list[tuple[list[Box], list[float]]] = []
    for idx in token_indices:
        score = probs[:, list(idx)].max(dim=1).values if idx else torch.zeros(probs.shape[0])
        sel = torch.nonzero(query_ok & (score > text_threshold)).flatten()
        if sel.numel() == 0:
            result.append(([], []))
            continue
        b, s = boxes[sel].float(), score[sel]
        keep = nms(b, s, NMS_IOU)[:boxes_per_entity]
        result.append(([tuple(float(v) for v in b[k].tolist()) for k in keep],  # type: ignore[misc]
                       [float(s[k]) for k in keep]))
    return result


def chunk_phrases(phrases: Sequence[str], count_tokens: Callable[[str], int], limit: int) -> list[list[str]]:
    """Split phrases into prompts of at most ``limit`` tokens ([CLS], [SEP] and "." counted)."""
    chunks: list[list[str]] = []
    current: list[str] = []
    used = 2
    for p in phrases:
        need = count_tokens(p) + 1
        if current and used + need > limit:
            chunks.append(current)
            current, used = [], 2
        current.append(p)
        used += need
    if current:
        chunks.append(current)
    return chunks


def cxcywh_to_xyxy(boxes: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """Normalised centre boxes → pixel corner boxes, clipped to the image."""
    cx, cy, w, h = boxes.float().unbind(-1)
    xyxy = torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], dim=-1)
    xyxy = xyxy * torch.tensor([width, height, width, height], dtype=xyxy.dtype, device=xyxy.device)
    xyxy[..., 0::2] = xyxy[..., 0::2].clamp(0, width)
    xyxy[..., 1::2] = xyxy[..., 1::2].clamp(0, height)
    return xyxy


class GroundingDINO:
    """A transformers Grounding DINO (``AutoModelForZeroShotObjectDetection``) as a Detector."""

    def __init__(self, model: torch.nn.Module, processor: Any, *, device: torch.device, name: str,
                 box_threshold: float = 0.35, text_threshold: float = 0.25, boxes_per_entity: int = 1) -> None:
        self.model = model.to(device).eval()
        self.processor = processor
        self.device = device
        self.name = name
        self.box_threshold = box_threshold
        self.text_threshold = text_threshold
        self.boxes_per_entity = boxes_per_entity
        self.max_text_len = int(getattr(model.config, "max_text_len", 256))
        self.forward_passes = 0

    def _count_tokens(self, phrase: str) -> int:
        return len(self.processor.tokenizer(phrase, add_special_tokens=False)["input_ids"])

    def detect(self, image: Image.Image, phrases: Sequence[str], *, box_threshold: float | None = None,
               text_threshold: float | None = None, boxes_per_entity: int | None = None
               ) -> dict[str, PhraseBoxes]:
        """Boxes for every phrase, in one forward pass per prompt chunk (usually one)."""
        thresholds = (self.box_threshold if box_threshold is None else box_threshold,
                      self.text_threshold if text_threshold is None else text_threshold,
                      self.boxes_per_entity if boxes_per_entity is None else boxes_per_entity)
        unique = list(dict.fromkeys(p for p in phrases if normalise_phrase(p)))
        norm = {p: normalise_phrase(p) for p in unique}
        prompts = list(dict.fromkeys(norm.values()))
        found: dict[str, PhraseBoxes] = {}
        for chunk in chunk_phrases(prompts, self._count_tokens, self.max_text_len):
            found.update(self._detect_chunk(image, chunk, *thresholds))
        return {p: PhraseBoxes(p, found[norm[p]].boxes, found[norm[p]].scores) for p in unique}

    @torch.inference_mode()
    def _detect_chunk(self, image: Image.Image, phrases: list[str], box_threshold: float, text_threshold: float,
                      boxes_per_entity: int) -> dict[str, PhraseBoxes]:
        prompt, spans = build_prompt(phrases)
        enc = self.processor.tokenizer(prompt, return_offsets_mapping=True, truncation=True,
                                       max_length=self.max_text_len)
        token_indices = phrase_token_indices(enc["offset_mapping"], spans)
        inputs = self.processor(images=image, text=prompt, return_tensors="pt", truncation=True,
                                max_length=self.max_text_len)
        inputs = {k: v.to(self.device) for k, v in inputs.items()}
        outputs = self.model(**inputs)
        self.forward_passes += 1
        probs = outputs.logits[0].sigmoid().cpu()
        boxes = cxcywh_to_xyxy(outputs.pred_boxes[0].cpu(), image.width, image.height)
        picked = select_boxes(probs, boxes, token_indices, box_threshold=box_threshold,
                              text_threshold=text_threshold, boxes_per_entity=boxes_per_entity)
        return {p: PhraseBoxes(p, tuple(b), tuple(s)) for p, (b, s) in zip(phrases, picked, strict=True)}

    def detect_batch(self, requests: Sequence[tuple[Image.Image, Sequence[str]]], *,
                     box_threshold: float | None = None, text_threshold: float | None = None,
                     boxes_per_entity: int | None = None) -> list[dict[str, PhraseBoxes]]:
        """One :meth:`detect` per request (a plain loop; each result depends on its request alone)."""
        return [self.detect(image, phrases, box_threshold=box_threshold, text_threshold=text_threshold,
                            boxes_per_entity=boxes_per_entity) for image, phrases in requests]
