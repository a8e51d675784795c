"""Hugging Face ``transformers`` CLIP behind the encoder protocol."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from PIL import Image

from comclip.encoders.base import Backend, BatchedEncoder
from comclip.hub import TRANSFORMERS_FILES, Download, hub_access, hub_cache_dir, load_failed, missing_files
from comclip.presets import EncoderSpec


class HFCLIPEncoder(BatchedEncoder):
    """Hugging Face ``transformers`` CLIP (``openai/clip-vit-base-patch32`` and relatives)."""

    def __init__(self, model: torch.nn.Module, processor: Any, *, name: str, device: torch.device,
                 batch_size: int = 64) -> None:
        self._adopt(model, name=name, device=device, batch_size=batch_size)
        self.processor = processor
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
        enc = self.processor.tokenizer(list(texts), padding=True, truncation=True, max_length=self.context_length,
                                       return_tensors="pt").to(self.device, non_blocking=True)
        out = self.model.get_text_features(**enc)
        return out if isinstance(out, torch.Tensor) else out.pooler_output

    def compile(self) -> None:
        """``torch.compile`` the image tower."""
        self.model.vision_model = torch.compile(self.model.vision_model)

    def count_tokens(self, text: str) -> int:
        return len(self.processor.tokenizer(text)["input_ids"])


def missing(spec: EncoderSpec) -> Download | None:
    return missing_files(spec.model, spec.model, TRANSFORMERS_FILES, spec.download_size)


def load(spec: EncoderSpec, device: torch.device, label: str) -> HFCLIPEncoder:
    from transformers import CLIPModel, CLIPProcessor

    with hub_access(missing(spec)) as local:
        try:
            kw = {"cache_dir": str(hub_cache_dir()), "local_files_only": local}
            model = CLIPModel.from_pretrained(spec.model, **kw)
            processor = CLIPProcessor.from_pretrained(spec.model, **kw)
        except (OSError, RuntimeError, ValueError) as exc:
            raise load_failed(f"Hugging Face CLIP {spec.model!r}", exc) from None
    return HFCLIPEncoder(model, processor, name=label, device=device)


BACKEND = Backend("hf_clip", load=load, missing=missing, takes="a transformers CLIP id")
