"""Hugging Face ``transformers`` CLIP behind the encoder protocol."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from PIL import Image

from comclip.encoders.base import BatchedEncoder


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
        enc = self.processor.tokenizer(list(texts), padding=True, truncation=True,
                                       max_length=self.context_length, return_tensors="pt").to(self.device)
        out = self.model.get_text_features(**enc)
        return out if isinstance(out, torch.Tensor) else out.pooler_output

    def compile(self) -> None:
        """``torch.compile`` the image tower."""
        self.model.vision_model = torch.compile(self.model.vision_model)

    def count_tokens(self, text: str) -> int:
        return len(self.processor.tokenizer(text)["input_ids"])
