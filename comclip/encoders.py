"""Frozen CLIP-style encoders behind one protocol.

Every backend returns L2-normalised float32 ``torch.Tensor`` rows on its device, runs under
``torch.inference_mode`` in batches, and uses half precision on CUDA.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

import torch
from PIL import Image

from comclip.subimage import PixelGeometry


@runtime_checkable
class Encoder(Protocol):
    """What the engine needs from an image–text model."""

    name: str
    device: torch.device
    #: Temperature of the model's contrastive head (``exp`` of the learned log-scale).
    logit_scale: float
    #: Longest text, in tokens, the model reads (longer texts are truncated).
    context_length: int

    def preprocess(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """PIL images → model-ready pixel batch (on the encoder's device)."""
        ...

    def encode_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        """Preprocessed pixel batch → normalised float32 embeddings ``(N, D)``."""
        ...

    def encode_images(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """PIL images → normalised float32 embeddings ``(N, D)``."""
        ...

    def encode_texts(self, texts: Sequence[str]) -> torch.Tensor:
        """Texts → normalised float32 embeddings ``(N, D)``."""
        ...

    def count_tokens(self, text: str) -> int:
        """Tokens the text takes, start/end tokens included (compare with context_length)."""
        ...

    def compile(self) -> None:
        """Optionally ``torch.compile`` the hot path."""
        ...


def _normalise(x: torch.Tensor) -> torch.Tensor:
    x = x.float()
    return x / x.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def half_dtype(device: torch.device) -> torch.dtype:
    """fp16 on CUDA (the CLIP papers' inference precision), fp32 elsewhere."""
    return torch.float16 if device.type == "cuda" else torch.float32


class _BatchedEncoder(ABC):
    """Shared batching for the backends: subclasses implement the single-batch calls."""

    name: str
    device: torch.device
    dtype: torch.dtype
    batch_size: int = 64
    #: Preprocessing geometry, when known: lets the engine build blackout sub-images on the device.
    pixel_geometry: PixelGeometry | None = None

    @abstractmethod
    def _images_to_pixels(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """One batch, on the encoder's device."""

    @abstractmethod
    def _image_features(self, pixels: torch.Tensor) -> torch.Tensor:
        """One batch, on the encoder's device."""

    @abstractmethod
    def _text_features(self, texts: Sequence[str]) -> torch.Tensor:
        """One batch, on the encoder's device."""

    def preprocess(self, images: Sequence[Image.Image]) -> torch.Tensor:
        return self._images_to_pixels(images).to(self.device, self.dtype)

    @torch.inference_mode()
    def encode_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        pixels = pixels.to(self.device, self.dtype)
        outs = [_normalise(self._image_features(pixels[i:i + self.batch_size]))
                for i in range(0, pixels.shape[0], self.batch_size)]
        return torch.cat(outs) if outs else torch.empty(0, self.embed_dim, device=self.device)

    def encode_images(self, images: Sequence[Image.Image]) -> torch.Tensor:
        outs = [self.encode_pixels(self.preprocess(images[i:i + self.batch_size]))
                for i in range(0, len(images), self.batch_size)]
        return torch.cat(outs) if outs else torch.empty(0, self.embed_dim, device=self.device)

    @torch.inference_mode()
    def encode_texts(self, texts: Sequence[str]) -> torch.Tensor:
        outs = [_normalise(self._text_features(texts[i:i + self.batch_size]))
                for i in range(0, len(texts), self.batch_size)]
        return torch.cat(outs) if outs else torch.empty(0, self.embed_dim, device=self.device)

    embed_dim: int


class OpenCLIPEncoder(_BatchedEncoder):
    """Any open_clip model: ``ViT-B-32-quickgelu``/``openai``, SigLIP, ``hf-hub:`` names, ..."""

    def __init__(self, model: torch.nn.Module, preprocess: Callable[[Image.Image], torch.Tensor],
                 tokenizer: Any, *, name: str, device: torch.device, batch_size: int = 64) -> None:
        self.name = name
        self.device = device
        self.dtype = half_dtype(device)
        self.model = model.to(device=device, dtype=self.dtype).eval()
        self._preprocess = preprocess
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.logit_scale = float(model.logit_scale.detach().float().exp().item())
        self.context_length = int(getattr(tokenizer, "context_length", 77))
        self.embed_dim = int(self._probe_dim())
        self.pixel_geometry = _open_clip_geometry(model, preprocess)

    def _probe_dim(self) -> int:
        proj = getattr(self.model, "text_projection", None)
        if isinstance(proj, torch.Tensor):
            return proj.shape[-1]
        if isinstance(proj, torch.nn.Linear):
            return proj.out_features
        return int(self.encode_texts(["a"]).shape[-1])

    def _images_to_pixels(self, images: Sequence[Image.Image]) -> torch.Tensor:
        return torch.stack([self._preprocess(im) for im in images])

    def _image_features(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.model.encode_image(pixels)

    def _text_features(self, texts: Sequence[str]) -> torch.Tensor:
        return self.model.encode_text(self.tokenizer(list(texts)).to(self.device))

    def compile(self) -> None:
        """``torch.compile`` the image tower (the hot path); text embeddings are cached anyway."""
        self.model.visual = torch.compile(self.model.visual)

    def count_tokens(self, text: str) -> int:
        encode = getattr(self.tokenizer, "encode", None)
        if encode is not None:
            return len(encode(text)) + 2  # start and end tokens
        ids = self.tokenizer([text])[0]
        return int((ids != 0).sum().item())


def _open_clip_geometry(model: torch.nn.Module, preprocess: Any) -> PixelGeometry | None:
    """The resize/crop/normalise geometry of an open_clip ``Resize(shortest) + CenterCrop`` pipeline,
    or None when the preprocessing is anything else (then sub-images take the PIL path)."""
    from torchvision import transforms as T

    cfg = getattr(getattr(model, "visual", None), "preprocess_cfg", None) or {}
    steps = getattr(preprocess, "transforms", None)
    if cfg.get("resize_mode", "shortest") != "shortest" or not steps:
        return None
    resize = next((t for t in steps if isinstance(t, T.Resize)), None)
    crop = next((t for t in steps if isinstance(t, T.CenterCrop)), None)
    norm = next((t for t in steps if isinstance(t, T.Normalize)), None)
    if resize is None or crop is None or norm is None:
        return None
    size = resize.size if isinstance(resize.size, int) else (resize.size[0] if len(resize.size) == 1 else None)
    if size is None or resize.max_size is not None:
        return None
    ch, cw = (crop.size, crop.size) if isinstance(crop.size, int) else tuple(crop.size)
    return PixelGeometry(int(size), (int(ch), int(cw)), tuple(float(m) for m in norm.mean),  # type: ignore[arg-type]
                         tuple(float(s) for s in norm.std))  # type: ignore[arg-type]


class HFCLIPEncoder(_BatchedEncoder):
    """Hugging Face ``transformers`` CLIP (``openai/clip-vit-base-patch32`` and relatives)."""

    def __init__(self, model: torch.nn.Module, processor: Any, *, name: str, device: torch.device,
                 batch_size: int = 64) -> None:
        self.name = name
        self.device = device
        self.dtype = half_dtype(device)
        self.model = model.to(device=device, dtype=self.dtype).eval()
        self.processor = processor
        self.batch_size = batch_size
        self.logit_scale = float(model.logit_scale.detach().float().exp().item())
        self.context_length = int(processor.tokenizer.model_max_length)
        if self.context_length > 10_000:  # "unbounded" sentinel in some tokenizer configs
            self.context_length = int(model.config.text_config.max_position_embeddings)
        self.embed_dim = int(model.config.projection_dim)

    def _images_to_pixels(self, images: Sequence[Image.Image]) -> torch.Tensor:
        return self.processor(images=list(images), return_tensors="pt")["pixel_values"]

    def _image_features(self, pixels: torch.Tensor) -> torch.Tensor:
        out = self.model.get_image_features(pixel_values=pixels)
        return out if isinstance(out, torch.Tensor) else out.pooler_output

    def _text_features(self, texts: Sequence[str]) -> torch.Tensor:
        enc = self.processor.tokenizer(list(texts), padding=True, truncation=True,
                                       max_length=self.context_length, return_tensors="pt").to(self.device)
        out = self.model.get_text_features(**enc)
        return out if isinstance(out, torch.Tensor) else out.pooler_output

    def compile(self) -> None:
        """``torch.compile`` the image tower."""
        self.model.vision_model = torch.compile(self.model.vision_model)

    def count_tokens(self, text: str) -> int:
        return len(self.processor.tokenizer(text)["input_ids"])
