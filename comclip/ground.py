"""Grounding entity phrases in an image with Grounding DINO (transformers' native model).

A *request* is one image and one caption's phrases. Its prompt is that request's unique normalised
phrases, sorted, joined as ``"phrase one. phrase two."`` (split into several prompts only when the
text-token limit forces it), so a request's boxes depend on (image, phrases, thresholds, model) alone.
Boxes are mapped back to phrases by token span: each phrase owns the tokens whose character offsets
fall inside it in the prompt, so no fuzzy matching of label strings is needed.

Per query ``q`` and phrase ``p``: ``score(q, p) = max_{t in p} sigmoid(logit[q, t])``. A query is
kept when its best token score over the whole prompt exceeds ``box_threshold`` (Grounding DINO's
rule); it belongs to every phrase whose ``score(q, p)`` exceeds ``text_threshold`` (as Grounding
DINO labels a box with every token above that threshold). Each phrase keeps its
``boxes_per_entity`` best boxes by ``score(q, p)`` after non-maximum suppression. A phrase with no
box is *ungrounded*.

Batching (:meth:`GroundingDINO.detect_batch`): many (image, prompt) units go through one forward.
Prompts of different lengths are padded with an attention mask — Grounding DINO's text
self-attention is block-diagonal per phrase and its class head masks padded tokens, so padding
changes a unit's logits by float rounding only (measured ≤ 4e-6 on CPU fp32, tested). Images are
NOT padded: the Swin backbone has no pixel mask, so a zero-padded image gives different features
(measured: logits off by ~10, boxes by ~0.8), hence only images whose resized size is identical
share a forward, and ``pixel_mask`` is all ones.

Image preprocessing runs on the detector's device (uint8 tensor → bilinear antialiased resize by the
processor's own ``shortest_edge``/``longest_edge`` rule → normalise): identical to transformers'
torchvision-backed processor, within one uint8 level of the PIL one (tested). Extreme aspect ratios
(8000×2) keep at least one pixel per side instead of reaching the processor as a zero size.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch
from PIL import Image
from torchvision.ops import nms
from torchvision.transforms.v2 import functional as tvF

from comclip import cpu, dino
from comclip.boxes import Boxes
from comclip.errors import InputError
from comclip.options import detector_thresholds
from comclip.presets import DEFAULT_BOX_THRESHOLD, DEFAULT_TEXT_THRESHOLD
from comclip.presets import DETECTOR_BACKENDS as BACKENDS
from comclip.presets import DETECTOR_PRECISIONS as PRECISIONS

NMS_IOU = 0.5
#: Largest number of (image, prompt) units in one detector forward, by device type.
DEFAULT_BATCH_SIZE = {"cuda": 16, "cpu": 4}
Request = tuple[Image.Image, Sequence[str]]


class Detector(Protocol):
    box_threshold: float
    text_threshold: float
    boxes_per_entity: int

    def detect_batch(self, requests: Sequence[Request], *, box_threshold: float | None = None,
                     text_threshold: float | None = None, boxes_per_entity: int | None = None
                     ) -> list[dict[str, Boxes]]:
        """One dict per (image, phrases) request, keys the phrases as given; each request's result
        depends on that request alone."""
        ...

    def detect(self, image: Image.Image, phrases: Sequence[str], *, box_threshold: float | None = None,
               text_threshold: float | None = None, boxes_per_entity: int | None = None
               ) -> dict[str, Boxes]:
        """Boxes for every phrase (keys are the phrases as given); None → the detector's defaults."""
        ...


def normalise_phrase(phrase: str) -> str:
    """Grounding DINO reads lower-case phrases without trailing punctuation."""
    return " ".join(phrase.lower().replace(".", " ").split())


def canonical_phrases(phrases: Sequence[str]) -> list[str]:
    """The prompt's phrases: unique, normalised, non-empty, sorted (the order a prompt is built in)."""
    return sorted({n for n in (normalise_phrase(p) for p in phrases) if n})


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
                 ) -> list[Boxes]:
    """Assign detector queries to phrases by token span and keep each phrase's best boxes.

    ``probs``: ``(Q, T)`` token probabilities (sigmoid of logits); ``boxes``: ``(Q, 4)`` xyxy pixels.
    Returns, per phrase, its boxes and their scores, best first (no boxes: ungrounded).
    """
    n = len(token_indices)
    if n == 0 or probs.shape[0] == 0:
        return [Boxes() for _ in range(n)]
    probs = probs.float()
    query_ok = probs.max(dim=1).values > box_threshold
    result: list[Boxes] = []
    for idx in token_indices:
        score = probs[:, list(idx)].max(dim=1).values if idx else torch.zeros(probs.shape[0])
        sel = torch.nonzero(query_ok & (score > text_threshold)).flatten()
        if sel.numel() == 0:
            result.append(Boxes())
            continue
        b, s = boxes[sel].float(), score[sel]
        keep = nms(b, s, NMS_IOU)[:boxes_per_entity]
        result.append(Boxes(tuple(tuple(b[k].tolist()) for k in keep), tuple(float(s[k]) for k in keep)))
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


def _size_field(size: Any, key: str) -> int | None:
    value = size.get(key) if isinstance(size, dict) else getattr(size, key, None)
    return None if value is None else int(value)


def resized_size(height: int, width: int, size: Any) -> tuple[int, int]:
    """``(height, width)`` the detector's image processor resizes an image to, by its own ``size``
    rule (``shortest_edge``/``longest_edge`` as Grounding DINO's 800/1333, ``max_height``/``max_width``
    or ``height``/``width``), with at least one pixel per side (an 8000×2 image would otherwise get 0)."""
    from transformers.image_transforms import get_size_with_aspect_ratio

    shortest, longest = _size_field(size, "shortest_edge"), _size_field(size, "longest_edge")
    max_h, max_w = _size_field(size, "max_height"), _size_field(size, "max_width")
    fixed_h, fixed_w = _size_field(size, "height"), _size_field(size, "width")
    if shortest:
        oh, ow = get_size_with_aspect_ratio((height, width), shortest, longest)
    elif max_h and max_w:
        scale = min(max_h / height, max_w / width)
        oh, ow = int(height * scale), int(width * scale)
    elif fixed_h and fixed_w:
        oh, ow = fixed_h, fixed_w
    else:
        raise InputError(f"the detector's image processor has a size rule this wrapper does not know: {size}")
    return max(1, int(oh)), max(1, int(ow))


def image_to_uint8(image: Image.Image) -> torch.Tensor:
    """A PIL image as a ``(3, H, W)`` uint8 tensor (RGB), on the CPU."""
    if not isinstance(image, Image.Image):
        raise InputError(f"the detector takes PIL images, got {type(image).__name__}")
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    return torch.from_numpy(np.array(rgb, dtype=np.uint8)).permute(2, 0, 1)


def _interpolation(resample: Any) -> tvF.InterpolationMode:
    if isinstance(resample, tvF.InterpolationMode):
        return resample
    from transformers.image_utils import pil_torch_interpolation_mapping

    return pil_torch_interpolation_mapping.get(resample, tvF.InterpolationMode.BILINEAR)


def preprocess_images(images: Sequence[Image.Image], image_processor: Any, device: torch.device
                      ) -> list[torch.Tensor]:
    """Detector pixels for each image, computed on ``device``: ``(3, h, w)`` float32, normalised.

    The uint8 image goes to the device first; resize (the processor's rule and filter, antialiased),
    rescale and normalise run there. Images of equal size are resized together.
    """
    mean = torch.tensor(image_processor.image_mean, dtype=torch.float32).to(device, non_blocking=True)[:, None, None]
    std = torch.tensor(image_processor.image_std, dtype=torch.float32).to(device, non_blocking=True)[:, None, None]
    factor = float(getattr(image_processor, "rescale_factor", 1 / 255))
    mode = _interpolation(getattr(image_processor, "resample", None))
    out: list[torch.Tensor | None] = [None] * len(images)
    by_size: dict[tuple[int, int], list[int]] = {}
    for k, im in enumerate(images):
        by_size.setdefault((im.height, im.width), []).append(k)
    for (h, w), members in by_size.items():
        batch = torch.stack([image_to_uint8(images[k]) for k in members]).to(device, non_blocking=True)
        resized = tvF.resize(batch, list(resized_size(h, w, image_processor.size)), interpolation=mode,
                             antialias=True)
        pixels = (resized.float() - mean / factor) / (std / factor)
        for k, px in zip(members, pixels, strict=True):
            out[k] = px
    return out  # type: ignore[return-value]


@dataclass(frozen=True)
class _Unit:
    """One (image, prompt) forward unit: the image's slot and the prompt's phrases (normalised)."""

    slot: int
    phrases: tuple[str, ...]


class GroundingDINO:
    """A transformers Grounding DINO (``AutoModelForZeroShotObjectDetection``) as a Detector.

    ``precision``: ``auto`` (bf16 autocast on CUDA and on a CPU with native bf16, fp32 elsewhere),
    ``fp32`` or ``bf16``;
    ``batch_size``: most (image, prompt) units per forward (default by device type).
    """

    def __init__(self, model: torch.nn.Module, processor: Any, *, device: torch.device, name: str,
                 box_threshold: float = DEFAULT_BOX_THRESHOLD, text_threshold: float = DEFAULT_TEXT_THRESHOLD,
                 boxes_per_entity: int = 1, precision: str = "auto", backend: str = "auto",
                 batch_size: int | None = None) -> None:
        if precision not in PRECISIONS:
            raise InputError(f"unknown detector precision {precision!r}; choose one of: {', '.join(PRECISIONS)}")
        self.model = model.to(device).eval()
        self.processor = processor
        self.device = torch.device(device)
        self.name = name
        self.box_threshold = box_threshold
        self.text_threshold = text_threshold
        self.boxes_per_entity = boxes_per_entity
        self.precision = precision
        self.batch_size = int(batch_size or DEFAULT_BATCH_SIZE.get(self.device.type, 4))
        self.max_text_len = int(getattr(model.config, "max_text_len", 256))
        #: Forwards run (the fusion part with the ``torch`` backend), (image, prompt) units detected and
        #: image-part forwards (``torch`` backend only), since construction (the bench reads them).
        self.forward_passes = 0
        self.units_detected = 0
        self.image_passes = 0
        self.backend = ""
        self.use_backend(backend)

    @property
    def passes(self) -> int:
        """Every forward since construction: model forwards (fusion parts) and image parts."""
        return self.forward_passes + self.image_passes

    @contextlib.contextmanager
    def using_backend(self, backend: str) -> Iterator[None]:
        """Run with another backend for a while (the bench's reference uses ``transformers``); not for
        use while other threads detect."""
        before = self.backend
        self.use_backend(backend)
        try:
            yield
        finally:
            self.use_backend(before)

    def use_backend(self, backend: str) -> None:
        """Switch the forward: ``transformers`` (the model's own, as shipped), ``torch`` (the model in
        three parts, image part once per image, gather sampling on the CPU: :mod:`comclip.dino`) or
        ``auto`` (``torch`` when the model is a two-stage transformers Grounding DINO, as every released
        one is; else ``transformers``)."""
        if backend not in BACKENDS:
            raise InputError(f"unknown detector backend {backend!r}; choose one of: {', '.join(BACKENDS)}")
        splittable = dino.splittable(self.model)
        if backend == "torch" and not splittable:
            raise InputError(f"the torch detector backend needs a two-stage transformers Grounding DINO, "
                             f"not {type(self.model).__name__}")
        self.backend = "torch" if backend == "auto" and splittable else ("transformers" if backend == "auto"
                                                                         else backend)
        if splittable:
            dino.use_gather_sampling(self.model, self.backend == "torch" and self.device.type == "cpu")

    @property
    def autocast_dtype(self) -> torch.dtype | None:
        """The autocast dtype of the forward (None: full fp32); ``auto`` as :func:`comclip.cpu.detector_precision`."""
        return torch.bfloat16 if cpu.detector_precision(self.precision, self.device.type) == "bf16" else None

    @contextlib.contextmanager
    def autocast(self) -> Iterator[None]:
        dtype = self.autocast_dtype
        if dtype is None:
            yield
        else:
            with torch.autocast(self.device.type, dtype=dtype):
                yield

    def _count_tokens(self, phrase: str) -> int:
        return len(self.processor.tokenizer(phrase, add_special_tokens=False)["input_ids"])

    def preprocess(self, images: Sequence[Image.Image]) -> list[torch.Tensor]:
        """Detector pixels of each image, on the detector's device."""
        return preprocess_images(images, self.processor.image_processor, self.device)

    def prompts(self, phrases: Sequence[str]) -> list[list[str]]:
        """The prompts (as phrase lists) one request's phrases make: canonical order, chunked by the
        text-token limit — usually one."""
        return chunk_phrases(canonical_phrases(phrases), self._count_tokens, self.max_text_len)

    def detect(self, image: Image.Image, phrases: Sequence[str], *, box_threshold: float | None = None,
               text_threshold: float | None = None, boxes_per_entity: int | None = None
               ) -> dict[str, Boxes]:
        """Boxes for every phrase (keys as given): one request of :meth:`detect_batch`."""
        return self.detect_batch([(image, phrases)], box_threshold=box_threshold, text_threshold=text_threshold,
                                 boxes_per_entity=boxes_per_entity)[0]

    def detect_batch(self, requests: Sequence[Request], *, box_threshold: float | None = None,
                     text_threshold: float | None = None, boxes_per_entity: int | None = None
                     ) -> list[dict[str, Boxes]]:
        """Boxes for many (image, phrases) requests, in batched forwards; one dict per request.

        Identical (image object, prompt) units are detected once. A request's result depends on that
        request alone (up to float rounding of batched matrix products).
        """
        thresholds = (*detector_thresholds(self, box_threshold, text_threshold),
                      self.boxes_per_entity if boxes_per_entity is None else boxes_per_entity)
        slots: dict[int, int] = {}
        images: list[Image.Image] = []
        units: dict[_Unit, int] = {}
        plans: list[tuple[list[str], list[int]]] = []
        for image, phrases in requests:
            if id(image) not in slots:
                slots[id(image)] = len(images)
                images.append(image)
            given = list(dict.fromkeys(p for p in phrases if normalise_phrase(p)))
            idx = [units.setdefault(_Unit(slots[id(image)], tuple(c)), len(units)) for c in self.prompts(given)]
            plans.append((given, idx))
        found = self._run(images, list(units), *thresholds) if units else []
        out: list[dict[str, Boxes]] = []
        for given, idx in plans:
            merged: dict[str, Boxes] = {}
            for u in idx:
                merged.update(found[u])
            out.append({p: merged[normalise_phrase(p)] for p in given})
        return out

    @torch.inference_mode()
    def _run(self, images: list[Image.Image], units: list[_Unit], box_threshold: float, text_threshold: float,
             boxes_per_entity: int) -> list[dict[str, Boxes]]:
        used = sorted({u.slot for u in units})
        pixels = dict(zip(used, self.preprocess([images[s] for s in used]), strict=True))
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for k, u in enumerate(units):
            by_shape.setdefault(tuple(pixels[u.slot].shape), []).append(k)
        found: list[dict[str, Boxes]] = [{} for _ in units]
        for members in by_shape.values():
            features = self._image_features(pixels, sorted({units[k].slot for k in members}))
            for start in range(0, len(members), self.batch_size):
                batch = members[start:start + self.batch_size]
                prompts = [units[k].phrases for k in batch]
                if features is None:
                    probs, boxes, token_indices = self._forward([pixels[units[k].slot] for k in batch], prompts)
                else:
                    probs, boxes, token_indices = self._fused([features[units[k].slot] for k in batch], prompts)
                for row, k in enumerate(batch):
                    image = images[units[k].slot]
                    xyxy = cxcywh_to_xyxy(boxes[row], image.width, image.height)
                    picked = select_boxes(probs[row], xyxy, token_indices[row], box_threshold=box_threshold,
                                          text_threshold=text_threshold, boxes_per_entity=boxes_per_entity)
                    found[k] = dict(zip(units[k].phrases, picked, strict=True))
        return found

    def _tokenise(self, prompts: list[tuple[str, ...]]) -> tuple[dict[str, torch.Tensor], list[list[list[int]]]]:
        """The prompts' tokens (padded to the longest, on the device) and each phrase's token positions."""
        built = [build_prompt(list(p)) for p in prompts]
        enc = self.processor.tokenizer([text for text, _ in built], padding="longest", truncation=True,
                                       max_length=self.max_text_len, return_offsets_mapping=True,
                                       return_tensors="pt")
        offsets = enc.pop("offset_mapping").tolist()
        token_indices = [phrase_token_indices(off, spans) for off, (_, spans) in zip(offsets, built, strict=True)]
        return {k: v.to(self.device, non_blocking=True) for k, v in enc.items()}, token_indices

    def _image_features(self, pixels: dict[int, torch.Tensor], slots: list[int]
                        ) -> dict[int, dino.VisionFeatures] | None:
        """With the ``torch`` backend: each image's image-only features, computed once however many
        prompts it has (equal-size images batched); None with the ``transformers`` backend."""
        if self.backend != "torch":
            return None
        out: dict[int, dino.VisionFeatures] = {}
        for start in range(0, len(slots), self.batch_size):
            chunk = slots[start:start + self.batch_size]
            features = self.image_forward(torch.stack([pixels[s] for s in chunk]))
            out.update((s, features.rows([row])) for row, s in enumerate(chunk))
        return out

    def image_forward(self, pixel_values: torch.Tensor) -> dino.VisionFeatures:
        """``torch`` backend: the image part of ``(B, 3, H, W)`` equal-size images (one forward)."""
        with self.autocast():
            features = dino.image_part(self.model, pixel_values)
        self.image_passes += 1
        return features

    def fusion_forward(self, vision: dino.VisionFeatures, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                       token_type_ids: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``torch`` backend: text and fusion parts for rows of image features and tokenised prompts (one
        forward); class logits ``(B, Q, T)`` and normalised cxcywh boxes ``(B, Q, 4)``."""
        with self.autocast():
            text = dino.text_part(self.model, input_ids, attention_mask, token_type_ids)
            out = dino.fusion_part(self.model, vision, text)
        self.forward_passes += 1
        self.units_detected += int(input_ids.shape[0])
        return out

    def _fused(self, vision: list[dino.VisionFeatures], prompts: list[tuple[str, ...]]
               ) -> tuple[torch.Tensor, torch.Tensor, list[list[list[int]]]]:
        """Text part and fusion part for rows whose image features are known; as :meth:`_forward` returns."""
        enc, token_indices = self._tokenise(prompts)
        logits, boxes = self.fusion_forward(dino.VisionFeatures.cat(vision), **enc)
        return logits.float().sigmoid().cpu(), boxes.float().cpu(), token_indices

    def _forward(self, pixels: list[torch.Tensor], prompts: list[tuple[str, ...]]
                 ) -> tuple[torch.Tensor, torch.Tensor, list[list[list[int]]]]:
        """One forward of the model as shipped over equal-size images and their prompts (text padded
        with an attention mask). Returns token probabilities ``(B, Q, T)``, normalised cxcywh boxes
        ``(B, Q, 4)`` on the CPU, and each row's phrase token indices."""
        enc, token_indices = self._tokenise(prompts)
        pixel_values = torch.stack(pixels)
        pixel_mask = torch.ones(pixel_values.shape[0], *pixel_values.shape[2:], dtype=torch.long,
                                device=pixel_values.device)
        with self.autocast():
            outputs = self.model(pixel_values=pixel_values, pixel_mask=pixel_mask, **enc)
        self.forward_passes += 1
        self.units_detected += len(prompts)
        return outputs.logits.float().sigmoid().cpu(), outputs.pred_boxes.float().cpu(), token_indices
