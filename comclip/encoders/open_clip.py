"""open_clip models (OpenAI CLIP, LAION, SigLIP, ``hf-hub:`` names) behind the encoder protocol."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from PIL import Image

from comclip.encoders.base import BatchedEncoder
from comclip.subimage import PixelGeometry


class OpenCLIPEncoder(BatchedEncoder):
    """Any open_clip model: ``ViT-B-32-quickgelu``/``openai``, SigLIP, ``hf-hub:`` names, ..."""

    def __init__(self, model: torch.nn.Module, preprocess: Callable[[Image.Image], torch.Tensor],
                 tokenizer: Any, *, name: str, device: torch.device, batch_size: int = 64) -> None:
        self._adopt(model, name=name, device=device, batch_size=batch_size)
        self._preprocess = preprocess
        self.tokenizer = tokenizer
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


