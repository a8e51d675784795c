"""Grounding entity phrases in an image with Grounding DINO (transformers' native model).

A *query* (:data:`Query`) is one image and one caption's phrases. Its *prompt* — the text the
detector reads for that caption's entities — is the query's unique normalised phrases, sorted, joined
as ``"phrase one. phrase two."`` (split into several prompts only when the text-token limit forces
it), so a query's boxes depend on (image, phrases, thresholds, model) alone. Boxes are mapped back to
phrases by token span: each phrase owns the tokens whose character offsets fall inside it in the
prompt, so no fuzzy matching of label strings is needed.

The detector proposes ``Q`` (900) *candidates* per prompt on an image (its decoder's object queries:
a box and a probability per prompt token). Per candidate ``c`` and phrase ``p``:
``score(c, p) = max_{t in p} sigmoid(logit[c, t])``. A candidate is kept when its best token score
over the whole prompt exceeds ``box_threshold`` (Grounding DINO's rule); it belongs to every phrase
whose ``score(c, p)`` exceeds ``text_threshold`` (as Grounding DINO labels a box with every token
above that threshold). Each phrase keeps its ``boxes_per_entity`` best boxes by ``score(c, p)``
after non-maximum suppression. A phrase with no box is *ungrounded*.

Batching (:meth:`GroundingDINO.detect_batch`): the prompts of many queries, each on its image, go
through batched forwards of at most ``batch_size`` rows (1 on the CPU, 16 on CUDA); a prompt asked
twice of one image (two captions with the same phrases) runs once. Prompts of different lengths are
padded with an attention mask — Grounding DINO's text self-attention is block-diagonal per phrase
and its class head masks padded tokens, so padding changes a prompt's logits by float rounding only
(measured ≤ 4e-6 on CPU fp32, tested). Images are NOT padded: the Swin backbone has no pixel mask, so
a zero-padded image gives different features (measured: logits off by ~10, boxes by ~0.8), hence only
images whose resized size is identical share a forward, and ``pixel_mask`` is all ones.

Reuse (``caching``, on by default; :meth:`GroundingDINO.clear_caches`): with the ``torch`` backend an
image's part (Swin and the input projections; keyed by pixel digest, resized size and autocast dtype)
and a prompt's text part (BERT, the projection and the phrase masks; keyed by the prompt's phrases
and autocast dtype) are kept, so a re-scored image skips the backbone and a known prompt skips BERT;
with either backend a prompt's output on an image, before thresholds (keyed by both), is kept, so new
thresholds cost no forward. A result never depends on the caches: what is cached is computed without
padding (images of one size, prompts of one token length), and with batch size 1 each part and each
prompt on an image is computed alone — so a query's numbers are bit-identical cold, warm, and in any
company or order (tested). With batch size > 1 (CUDA) a row may share its forward with others, as
without caches: equal within float rounding. The caches are LRUs of a few entries (sizes below; an
image part is tens of MB at 800 px), held on the detector's device; each wrapper has its own.

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
from comclip.caches import LRUCache
from comclip.errors import InputError
from comclip.images import image_digest
from comclip.options import detector_thresholds
from comclip.presets import DEFAULT_BOX_THRESHOLD, DEFAULT_TEXT_THRESHOLD
from comclip.presets import DETECTOR_BACKENDS as BACKENDS
from comclip.presets import DETECTOR_PRECISIONS as PRECISIONS

NMS_IOU = 0.5
#: Most rows (images, prompts, or prompts each on its image) in one detector forward, by device type. On
#: the CPU 1: batching does not make a CPU forward faster (measured on a 2-core EPYC, docs/benchmarks.md),
#: and alone a prompt's result on an image is bit-identical whatever else is detected with it.
DEFAULT_BATCH_SIZE = {"cuda": 16, "cpu": 1}
#: Cache sizes, in entries, per detector wrapper (docs/benchmarks.md). An image part is the image's
#: multi-level features and their position embeddings, ~20k tokens × 256 × 2 in fp32: 41 MB at 800×1200
#: (the largest, 800×1333, 46 MB), 9.4 MB at 384×576.
IMAGE_CACHE_SIZE = 4
#: A text part: ``T`` × 256 features plus a ``T`` × ``T`` mask — 10 to 60 kB for a caption's phrases.
TEXT_CACHE_SIZE = 128
#: A prompt's output on an image: ``Q`` (900) × ``T`` probabilities and ``Q`` boxes, float32 — about 50 kB
#: for 10 tokens.
OUTPUT_CACHE_SIZE = 64
#: One image and one caption's phrases: what :meth:`Detector.detect_batch` grounds.
Query = tuple[Image.Image, Sequence[str]]


class Detector(Protocol):
    box_threshold: float
    text_threshold: float
    boxes_per_entity: int

    def detect_batch(self, queries: Sequence[Query], *, box_threshold: float | None = None,
                     text_threshold: float | None = None, boxes_per_entity: int | None = None
                     ) -> list[dict[str, Boxes]]:
        """One dict per (image, phrases) query, keys the phrases as given; each query's result
        depends on that query alone."""
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
    """Assign the detector's candidates to phrases by token span and keep each phrase's best boxes.

    ``probs``: ``(Q, T)`` each candidate's token probabilities (sigmoid of logits); ``boxes``: ``(Q, 4)``
    its xyxy pixels.
    Returns, per phrase, its boxes and their scores, best first (no boxes: ungrounded).
    """
    n = len(token_indices)
    if n == 0 or probs.shape[0] == 0:
        return [Boxes() for _ in range(n)]
    probs = probs.float()
    kept = probs.max(dim=1).values > box_threshold
    result: list[Boxes] = []
    for idx in token_indices:
        score = probs[:, list(idx)].max(dim=1).values if idx else torch.zeros(probs.shape[0])
        sel = torch.nonzero(kept & (score > text_threshold)).flatten()
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
class _ImagePrompt:
    """A prompt on an image — one row of a forward: the image's slot and the prompt's phrases."""

    slot: int
    phrases: tuple[str, ...]


@dataclass(frozen=True)
class _Prompt:
    """A prompt tokenised alone (unpadded): its token ids and each phrase's token positions."""

    phrases: tuple[str, ...]
    ids: tuple[int, ...]
    token_indices: tuple[tuple[int, ...], ...]


@dataclass(frozen=True)
class PromptOutput:
    """What the detector's forward gives a prompt on an image, before thresholds: its candidates' token
    probabilities ``(Q, T)`` over the prompt's own ``T`` tokens and normalised cxcywh boxes ``(Q, 4)``,
    float32 on the CPU."""

    probs: torch.Tensor
    boxes: torch.Tensor


#: What an image's cached part is keyed by: pixel digest, resized ``(h, w)``, autocast dtype.
ImageKey = tuple[str, tuple[int, int], "torch.dtype | None"]


class GroundingDINO:
    """A transformers Grounding DINO (``AutoModelForZeroShotObjectDetection``) as a Detector.

    ``precision``: ``auto`` (bf16 autocast on CUDA and on a CPU with native bf16, fp32 elsewhere),
    ``fp32`` or ``bf16``;
    ``backend``: ``torch`` (the model in three parts, :mod:`comclip.dino`; CPU kernels on the CPU),
    ``transformers`` (the model's own forward) or ``auto`` (``torch`` where the model is a two-stage
    transformers Grounding DINO, as every released one is); ``batch_size``: most rows per forward
    (default by device type); ``caching``: keep image parts, text parts and prompt outputs for reuse;
    ``kernels``: how the attention blocks are computed (:data:`comclip.dino.KERNELS`; ``auto``: ``cpu``
    for the ``torch`` backend on the CPU, else ``native``; the ``cpu`` kernels keep no attention
    weights). Settings are fixed for the wrapper's life (:meth:`replace` makes another wrapper of the
    same model); nothing a wrapper does changes the model for other wrappers.
    """

    def __init__(self, model: torch.nn.Module, processor: Any, *, device: torch.device, name: str,
                 box_threshold: float = DEFAULT_BOX_THRESHOLD, text_threshold: float = DEFAULT_TEXT_THRESHOLD,
                 boxes_per_entity: int = 1, precision: str = "auto", backend: str = "auto",
                 batch_size: int | None = None, caching: bool = True, kernels: str = "auto") -> None:
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
        self.backend = self._resolve_backend(backend)
        self.caching = caching
        if kernels not in ("auto", *dino.KERNELS):
            raise InputError(f"unknown detector kernels {kernels!r}; choose one of: auto, {', '.join(dino.KERNELS)}")
        if kernels == "cpu" and not dino.splittable(self.model):
            raise InputError(f"the cpu detector kernels need a two-stage transformers Grounding DINO, "
                             f"not {type(self.model).__name__}")
        self._kernels = kernels
        self._images: LRUCache[ImageKey, dino.VisionFeatures] = LRUCache(IMAGE_CACHE_SIZE)
        self._texts: LRUCache[tuple[tuple[str, ...], torch.dtype | None], dino.TextFeatures] = LRUCache(
            TEXT_CACHE_SIZE)
        self._prompt_outputs: LRUCache[tuple[ImageKey, tuple[str, ...]], PromptOutput] = LRUCache(OUTPUT_CACHE_SIZE)

    def _resolve_backend(self, backend: str) -> str:
        if backend not in BACKENDS:
            raise InputError(f"unknown detector backend {backend!r}; choose one of: {', '.join(BACKENDS)}")
        splittable = dino.splittable(self.model)
        if backend == "torch" and not splittable:
            raise InputError(f"the torch detector backend needs a two-stage transformers Grounding DINO, "
                             f"not {type(self.model).__name__}")
        if splittable:
            dino.install_switches(self.model)  # idempotent; the model's own kernels stay its default
        if backend == "auto":
            return "torch" if splittable else "transformers"
        return backend

    def replace(self, **changes: Any) -> GroundingDINO:
        """Another wrapper of the same model and processor with some settings changed (``backend``,
        ``precision``, ``batch_size``, ``caching``, ``kernels``, thresholds, ``boxes_per_entity``, ``name``), with
        caches of its own; this one is unchanged."""
        settings: dict[str, Any] = {
            "device": self.device, "name": self.name, "box_threshold": self.box_threshold,
            "text_threshold": self.text_threshold, "boxes_per_entity": self.boxes_per_entity,
            "precision": self.precision, "backend": self.backend, "batch_size": self.batch_size,
            "caching": self.caching, "kernels": self._kernels}
        unknown = set(changes) - set(settings)
        if unknown:
            raise TypeError(f"GroundingDINO.replace: unknown settings {', '.join(sorted(unknown))}")
        return GroundingDINO(self.model, self.processor, **{**settings, **changes})

    def clear_caches(self) -> None:
        """Forget cached image parts, text parts and prompt outputs."""
        for cache in (self._images, self._texts, self._prompt_outputs):
            cache.clear()

    def cache_sizes(self) -> dict[str, int]:
        """Entries in each cache: ``image`` parts, ``text`` parts, prompt outputs (``output``)."""
        return {"image": len(self._images), "text": len(self._texts), "output": len(self._prompt_outputs)}

    @property
    def kernels(self) -> str:
        """The detector kernels of this wrapper's forwards (:data:`comclip.dino.KERNELS`); ``auto`` (the
        default): ``cpu`` for the ``torch`` backend on the CPU, else the model's own (``native``)."""
        if self._kernels != "auto":
            return self._kernels
        return "cpu" if self.backend == "torch" and self.device.type == "cpu" else "native"

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
        """The prompts (as phrase lists) one query's phrases make: canonical order, chunked by the
        text-token limit — usually one."""
        return chunk_phrases(canonical_phrases(phrases), self._count_tokens, self.max_text_len)

    @torch.inference_mode()
    def prepare(self, images: Sequence[Image.Image]) -> int:
        """Compute and keep each image's part now (``torch`` backend with caching), so that detecting on
        the image later skips its backbone — e.g. while a person types captions for an uploaded image.
        Nothing else changes: a result never depends on the caches. Returns how many parts were
        computed (0: already kept, or this wrapper keeps none)."""
        if self.backend != "torch" or not self.caching or not images:
            return 0
        keys = {s: self._image_key(im) for s, im in enumerate(images)}
        kept, missing = set(self._images.keys()), {}
        for s, key in keys.items():
            if key not in kept:  # (an image given twice is computed once)
                kept.add(key)
                missing.setdefault(key[1], []).append(s)
        for slots in missing.values():
            self._image_parts(list(images), slots, keys)
        return sum(len(slots) for slots in missing.values())

    @torch.inference_mode()
    def prepare_texts(self, phrase_sets: Sequence[Sequence[str]]) -> int:
        """Compute and keep the text part of each phrase set's prompts now (``torch`` backend with
        caching), so that detecting them later skips it — e.g. while a person types captions. Nothing
        else changes: a result never depends on the caches. Returns how many parts were computed."""
        if self.backend != "torch" or not self.caching:
            return 0
        dtype = self.autocast_dtype
        wanted = dict.fromkeys(tuple(p) for phrases in phrase_sets if phrases for p in self.prompts(phrases))
        missing = [self._prompt(p) for p in wanted if self._texts.get((p, dtype)) is None]
        self._text_parts(missing)
        return len(missing)

    def detect(self, image: Image.Image, phrases: Sequence[str], *, box_threshold: float | None = None,
               text_threshold: float | None = None, boxes_per_entity: int | None = None
               ) -> dict[str, Boxes]:
        """Boxes for every phrase (keys as given): one query of :meth:`detect_batch`."""
        return self.detect_batch([(image, phrases)], box_threshold=box_threshold, text_threshold=text_threshold,
                                 boxes_per_entity=boxes_per_entity)[0]

    def detect_batch(self, queries: Sequence[Query], *, box_threshold: float | None = None,
                     text_threshold: float | None = None, boxes_per_entity: int | None = None
                     ) -> list[dict[str, Boxes]]:
        """Boxes for many (image, phrases) queries, in batched forwards; one dict per query.

        A prompt asked of one image object by several queries is detected once. A query's result
        depends on that query alone: exactly with batch size 1 (the CPU default), up to float rounding
        of batched matrix products otherwise; and never on the caches (see the module's docstring).
        """
        thresholds = (*detector_thresholds(self, box_threshold, text_threshold),
                      self.boxes_per_entity if boxes_per_entity is None else boxes_per_entity)
        slots: dict[int, int] = {}
        images: list[Image.Image] = []
        asked: dict[_ImagePrompt, int] = {}  # each prompt on its image, once
        plans: list[tuple[list[str], list[int]]] = []
        for image, phrases in queries:
            if id(image) not in slots:
                slots[id(image)] = len(images)
                images.append(image)
            given = list(dict.fromkeys(p for p in phrases if normalise_phrase(p)))
            idx = [asked.setdefault(_ImagePrompt(slots[id(image)], tuple(c)), len(asked)) for c in self.prompts(given)]
            plans.append((given, idx))
        found = self._run(images, list(asked), *thresholds) if asked else []
        out: list[dict[str, Boxes]] = []
        for given, idx in plans:
            merged: dict[str, Boxes] = {}
            for k in idx:
                merged.update(found[k])
            out.append({p: merged[normalise_phrase(p)] for p in given})
        return out

    @torch.inference_mode()
    def _run(self, images: list[Image.Image], asked: list[_ImagePrompt], box_threshold: float,
             text_threshold: float, boxes_per_entity: int) -> list[dict[str, Boxes]]:
        """Each prompt on its image: its output (cached, or computed with others of its image size),
        then its boxes by the thresholds."""
        prompts = {p: self._prompt(p) for p in dict.fromkeys(a.phrases for a in asked)}
        keys = {s: self._image_key(images[s]) for s in sorted({a.slot for a in asked})}
        outputs: dict[int, PromptOutput] = {}
        if self.caching:
            outputs = {k: hit for k, a in enumerate(asked)
                       if (hit := self._prompt_outputs.get((keys[a.slot], a.phrases))) is not None}
        by_size: dict[tuple[int, int], list[int]] = {}
        for k, a in enumerate(asked):
            if k not in outputs:
                by_size.setdefault(keys[a.slot][1], []).append(k)
        for members in by_size.values():
            computed = (self._fused_outputs if self.backend == "torch" else self._whole_outputs)(
                images, asked, members, prompts, keys)
            for k, out in computed.items():
                key = (keys[asked[k].slot], asked[k].phrases)
                outputs[k] = self._prompt_outputs.put(key, out) if self.caching else out
        found: list[dict[str, Boxes]] = []
        for k, a in enumerate(asked):
            image = images[a.slot]
            xyxy = cxcywh_to_xyxy(outputs[k].boxes, image.width, image.height)
            picked = select_boxes(outputs[k].probs, xyxy, prompts[a.phrases].token_indices,
                                  box_threshold=box_threshold, text_threshold=text_threshold,
                                  boxes_per_entity=boxes_per_entity)
            found.append(dict(zip(a.phrases, picked, strict=True)))
        return found

    def _image_key(self, image: Image.Image) -> ImageKey:
        """What an image's part and its prompts' outputs are kept by (no digest without caching)."""
        size = resized_size(image.height, image.width, self.processor.image_processor.size)
        return image_digest(image) if self.caching else "", size, self.autocast_dtype

    def _prompt(self, phrases: tuple[str, ...]) -> _Prompt:
        """A prompt's tokens alone (unpadded) and each phrase's token positions."""
        text, spans = build_prompt(list(phrases))
        enc = self.processor.tokenizer(text, truncation=True, max_length=self.max_text_len,
                                       return_offsets_mapping=True)
        indices = phrase_token_indices(enc["offset_mapping"], spans)
        return _Prompt(phrases, tuple(enc["input_ids"]), tuple(tuple(i) for i in indices))

    @staticmethod
    def _per_row(batch: list[int], prompts: list[_Prompt], logits: torch.Tensor, boxes: torch.Tensor
                 ) -> dict[int, PromptOutput]:
        """Each row's prompt output (probabilities of the prompt's own tokens), copied out of the batch."""
        probs, boxes = logits.float().sigmoid().cpu(), boxes.float().cpu()
        return {k: PromptOutput(probs[row, :, :len(p.ids)].clone(), boxes[row].clone())
                for row, (k, p) in enumerate(zip(batch, prompts, strict=True))}

    def _fused_outputs(self, images: list[Image.Image], asked: list[_ImagePrompt], members: list[int],
                     prompts: dict[tuple[str, ...], _Prompt], keys: dict[int, ImageKey]) -> dict[int, PromptOutput]:
        """``torch`` backend: prompts on equal-size images (``members`` of ``asked``), from each image's
        part and each prompt's text part (cached, or computed alone) — text parts padded to the batch's
        longest — in batched fusions."""
        vision = self._image_parts(images, sorted({asked[k].slot for k in members}), keys)
        text = self._text_parts([prompts[p] for p in dict.fromkeys(asked[k].phrases for k in members)])
        out: dict[int, PromptOutput] = {}
        for start in range(0, len(members), self.batch_size):
            batch = members[start:start + self.batch_size]
            logits, boxes = self.fuse(dino.VisionFeatures.cat([vision[asked[k].slot] for k in batch]),
                                      dino.TextFeatures.stack([text[asked[k].phrases] for k in batch]))
            out.update(self._per_row(batch, [prompts[asked[k].phrases] for k in batch], logits, boxes))
        return out

    def _image_parts(self, images: list[Image.Image], slots: list[int], keys: dict[int, ImageKey]
                     ) -> dict[int, dino.VisionFeatures]:
        """Each (equal-size) image's part: cached, or computed in batches of at most ``batch_size`` images."""
        out: dict[int, dino.VisionFeatures] = {}
        if self.caching:
            out = {s: hit for s in slots if (hit := self._images.get(keys[s])) is not None}
        missing = [s for s in slots if s not in out]
        for start in range(0, len(missing), self.batch_size):
            chunk = missing[start:start + self.batch_size]
            features = self.image_forward(torch.stack(self.preprocess([images[s] for s in chunk])))
            for row, s in enumerate(chunk):
                part = features if len(chunk) == 1 else features.rows([row])
                out[s] = self._images.put(keys[s], part) if self.caching else part
        return out

    def _text_parts(self, prompts: list[_Prompt]) -> dict[tuple[str, ...], dino.TextFeatures]:
        """Each prompt's text part, unpadded: cached, or computed in batches of at most ``batch_size``
        prompts of one token length (never padded, so a prompt's features do not depend on another's length)."""
        dtype = self.autocast_dtype
        out: dict[tuple[str, ...], dino.TextFeatures] = {}
        if self.caching:
            out = {p.phrases: hit for p in prompts if (hit := self._texts.get((p.phrases, dtype))) is not None}
        by_length: dict[int, list[_Prompt]] = {}
        for p in prompts:
            if p.phrases not in out:
                by_length.setdefault(len(p.ids), []).append(p)
        for group in by_length.values():
            for start in range(0, len(group), self.batch_size):
                chunk = group[start:start + self.batch_size]
                ids = torch.tensor([p.ids for p in chunk], dtype=torch.long).to(self.device, non_blocking=True)
                features = self.text_forward(ids, torch.ones_like(ids), torch.zeros_like(ids))
                for row, p in enumerate(chunk):
                    part = features if len(chunk) == 1 else features.rows([row])
                    out[p.phrases] = self._texts.put((p.phrases, dtype), part) if self.caching else part
        return out

    def _whole_outputs(self, images: list[Image.Image], asked: list[_ImagePrompt], members: list[int],
                     prompts: dict[tuple[str, ...], _Prompt], keys: dict[int, ImageKey]) -> dict[int, PromptOutput]:
        """``transformers`` backend: the model's own forward over batches of prompts on equal-size images."""
        slots = sorted({asked[k].slot for k in members})
        pixels = dict(zip(slots, self.preprocess([images[s] for s in slots]), strict=True))
        out: dict[int, PromptOutput] = {}
        for start in range(0, len(members), self.batch_size):
            batch = members[start:start + self.batch_size]
            mine = [prompts[asked[k].phrases] for k in batch]
            logits, boxes = self._forward([pixels[asked[k].slot] for k in batch], mine)
            out.update(self._per_row(batch, mine, logits, boxes))
        return out

    def image_forward(self, pixel_values: torch.Tensor) -> dino.VisionFeatures:
        """``torch`` backend: the image part of ``(B, 3, H, W)`` equal-size images (one forward)."""
        with self.autocast():
            return dino.image_part(self.model, pixel_values)

    def text_forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                     token_type_ids: torch.Tensor | None = None) -> dino.TextFeatures:
        """``torch`` backend: the text part of tokenised prompts (one forward)."""
        with self.autocast():
            return dino.text_part(self.model, input_ids, attention_mask, token_type_ids)

    def fuse(self, vision: dino.VisionFeatures, text: dino.TextFeatures) -> tuple[torch.Tensor, torch.Tensor]:
        """``torch`` backend: the fusion part for matching rows of image and text features (one forward);
        class logits ``(B, Q, T)`` and normalised cxcywh boxes ``(B, Q, 4)``."""
        with self.autocast(), dino.kernels(self.kernels):
            return dino.fusion_part(self.model, vision, text)

    def fusion_forward(self, vision: dino.VisionFeatures, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                       token_type_ids: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``torch`` backend: text and fusion parts for rows of image features and tokenised (padded)
        prompts in one go, as :meth:`fuse` returns (the bench's floor)."""
        with self.autocast(), dino.kernels(self.kernels):
            text = dino.text_part(self.model, input_ids, attention_mask, token_type_ids)
            return dino.fusion_part(self.model, vision, text)

    def _forward(self, pixels: list[torch.Tensor], prompts: list[_Prompt]) -> tuple[torch.Tensor, torch.Tensor]:
        """One forward of the model as shipped over equal-size images and their prompts (text padded
        with an attention mask): class logits ``(B, Q, T)`` and normalised cxcywh boxes ``(B, Q, 4)``."""
        longest = max(len(p.ids) for p in prompts)
        pad = int(self.processor.tokenizer.pad_token_id or 0)
        input_ids = torch.tensor([[*p.ids] + [pad] * (longest - len(p.ids)) for p in prompts]).to(
            self.device, non_blocking=True)
        attention_mask = torch.tensor([[1] * len(p.ids) + [0] * (longest - len(p.ids)) for p in prompts]).to(
            self.device, non_blocking=True)
        pixel_values = torch.stack(pixels)
        pixel_mask = torch.ones(pixel_values.shape[0], *pixel_values.shape[2:], dtype=torch.long,
                                device=pixel_values.device)
        with self.autocast(), dino.kernels(self.kernels):
            outputs = self.model(pixel_values=pixel_values, pixel_mask=pixel_mask, input_ids=input_ids,
                                 attention_mask=attention_mask, token_type_ids=torch.zeros_like(input_ids))
        return outputs.logits, outputs.pred_boxes
