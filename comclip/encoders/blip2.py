"""BLIP-2 image–text retrieval (transformers ``Blip2ForImageTextRetrieval``) as a multi-query encoder.

The contrastive (ITC) path of the model, the one ``use_image_text_matching_head=False`` takes:

- image: vision transformer → Q-Former with ``Q`` learned query tokens → ``(Q, D_q)`` query
  outputs. These pre-projection features are the encoder's image rows (what ComCLIP composes);
  :meth:`BLIP2Encoder.project_queries` applies ``vision_projection`` (the formula normalises).
- text: the Q-Former's text side, first token → ``text_projection`` → L2-normalised ``(D,)``.
- similarity: the max over queries of the cosine of projected, normalised query vectors and text.

Captions are cleaned as LAVIS' BLIP caption processor does for evaluation (lower case; the
characters ``.!"()*#:;~`` become spaces; at most 50 words). Images are preprocessed by the model's
own image processor (its size, resampling and mean/std come from the checkpoint's config).

transformers' BLIP-2 checkpoints carry no contrastive temperature, so ``logit_scale`` (used only by
``softmax`` weighting) is ``1 / 0.07``, LAVIS' initial value; ``sum`` weighting (the official
``comblip.py``) does not depend on it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from comclip.encoders.base import Backend, BatchedEncoder, half_dtype
from comclip.hub import (
    TINY_SEED,
    TRANSFORMERS_FILES,
    Download,
    hub_access,
    hub_cache_dir,
    load_failed,
    missing_files,
    saved_once,
    seeded,
)
from comclip.presets import EncoderSpec, model_config, random_vocab

DEFAULT_LOGIT_SCALE = 1 / 0.07
MAX_WORDS = 50
_PUNCT = re.compile(r"([.!\"()*#:;~])")


def blip_caption(text: str, max_words: int = MAX_WORDS) -> str:
    """LAVIS' evaluation caption cleaning (``BlipCaptionProcessor``)."""
    text = " ".join(_PUNCT.sub(" ", text.lower()).split())
    return " ".join(text.split(" ")[:max_words])


class BLIP2Encoder(BatchedEncoder):
    """A ``Blip2ForImageTextRetrieval`` behind the encoder protocol, with ``multi_query = True``."""

    multi_query = True
    #: Its image processor resizes to a square (bicubic, aspect not kept), as LAVIS' eval processor.
    squashes = True
    #: The tensor-in methods that are one image / text forward pass each (the bench records these:
    #: the retrieval model has no single image or text forward method of its own).
    bench_forwards = {"image": "_image_features", "text": "_text_forward"}

    def __init__(self, model: torch.nn.Module, image_processor: Any, tokenizer: Any, *, name: str,
                 device: torch.device, batch_size: int = 32, logit_scale: float = DEFAULT_LOGIT_SCALE) -> None:
        self.name = name
        self.device = device
        self.dtype = half_dtype(device)
        # The vision transformer runs in half precision on CUDA; the Q-Former, query tokens and both
        # projections stay in fp32, as transformers keeps them (``_keep_in_fp32_modules``).
        model = model.to(device=device, dtype=torch.float32).eval().requires_grad_(False)
        model.vision_model.to(self.dtype)
        self.model = model
        self.image_processor = image_processor
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.logit_scale = float(logit_scale)
        config = model.config
        self.num_queries = int(config.num_query_tokens)
        self.query_dim = int(config.qformer_config.hidden_size)
        self.embed_dim = int(config.image_text_hidden_size)
        limit = int(getattr(tokenizer, "model_max_length", 0) or 0)
        positions = int(config.qformer_config.max_position_embeddings)
        self.context_length = limit if 0 < limit <= positions else positions

    @property
    def image_row_shape(self) -> tuple[int, ...]:
        return (self.num_queries, self.query_dim)

    def use_dtype(self, dtype: torch.dtype) -> None:
        """Only the vision transformer changes precision (the Q-Former and projections stay fp32)."""
        self.dtype = dtype
        self.model.vision_model.to(dtype)

    def _images_to_pixels(self, images: Sequence[Image.Image]) -> torch.Tensor:
        return self.image_processor(images=list(images), return_tensors="pt")["pixel_values"]

    def _image_features(self, pixels: torch.Tensor) -> torch.Tensor:
        """Per-query Q-Former outputs ``(N, Q, D_q)``, before the projection."""
        vision = self.model.vision_model(pixel_values=pixels).last_hidden_state
        mask = torch.ones(vision.shape[:-1], dtype=torch.long, device=vision.device)
        queries = self.model.query_tokens.expand(vision.shape[0], -1, -1)
        out = self.model.qformer(query_embeds=queries, encoder_hidden_states=vision, encoder_attention_mask=mask)
        return out.last_hidden_state

    def _image_rows(self, pixels: torch.Tensor, normalise: bool = True) -> torch.Tensor:
        """The per-query features, raw either way: they are what ComCLIP composes."""
        return self._image_features(pixels).float()

    def _text_features(self, texts: Sequence[str]) -> torch.Tensor:
        enc = self.tokenizer([blip_caption(t) for t in texts], padding=True, truncation=True,
                             max_length=self.context_length, return_tensors="pt").to(self.device, non_blocking=True)
        return self._text_forward(enc["input_ids"], enc["attention_mask"])

    def _text_forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Tokens → projected (unnormalised) text features ``(N, D)``."""
        embeds = self.model.embeddings(input_ids=input_ids)
        out = self.model.qformer(query_embeds=embeds, query_length=0, attention_mask=attention_mask)
        return self.model.text_projection(out.last_hidden_state[:, 0, :])

    @torch.no_grad()
    def project_queries(self, queries: torch.Tensor) -> torch.Tensor:
        """``(…, Q, D_q)`` query features → ``(…, Q, D)`` through ``vision_projection`` (not normalised)."""
        proj = self.model.vision_projection
        return proj(queries.to(proj.weight.device, proj.weight.dtype))

    def compile(self) -> None:
        """``torch.compile`` the vision transformer (the hot path)."""
        self.model.vision_model = torch.compile(self.model.vision_model)

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(blip_caption(text))["input_ids"])


# -- loading ---------------------------------------------------------------------------------------
# Random geometries are data: ``comclip/model_configs/blip2/<name>.json`` holds ``model`` (the
# ``Blip2Config`` fields), ``image_size`` and ``roundtrip`` (save once and load back through
# ``from_pretrained``, as a hub model is; off for real-size geometries).


def blip2_config(spec_config: dict[str, Any]) -> Any:
    """A ``Blip2Config`` from a model-config file's ``model`` section."""
    from transformers import Blip2Config, Blip2QFormerConfig, Blip2VisionConfig

    cfg = spec_config["model"]
    return Blip2Config(vision_config=Blip2VisionConfig(**cfg.get("vision_config", {})).to_dict(),
                       qformer_config=Blip2QFormerConfig(**cfg.get("qformer_config", {})).to_dict(),
                       **{k: v for k, v in cfg.items() if k not in ("vision_config", "qformer_config")})


def build_random_blip2(spec_config: dict[str, Any]) -> tuple[Any, Any, Any]:
    """A seeded random ``(model, image_processor, tokenizer)`` from a model config; the tokenizer is the
    random detectors' small word-piece vocabulary (every letter and digit, so no word is unknown)."""
    from transformers import BertTokenizer, Blip2ForImageTextRetrieval, BlipImageProcessor

    with seeded(TINY_SEED):
        model = Blip2ForImageTextRetrieval(blip2_config(spec_config)).eval()
    size = int(spec_config["image_size"])
    processor = BlipImageProcessor(size={"height": size, "width": size})
    tokenizer = BertTokenizer(vocab={w: i for i, w in enumerate(random_vocab())},
                              model_max_length=model.config.qformer_config.max_position_embeddings)
    return model, processor, tokenizer


def missing(spec: EncoderSpec) -> Download | None:
    return None if spec.config is not None else missing_files(spec.model, spec.model, TRANSFORMERS_FILES,
                                                                spec.download_size)


def load(spec: EncoderSpec, device: torch.device, label: str) -> BLIP2Encoder:
    """A hub retrieval model (``Salesforce/blip2-itm-vit-g``), or a seeded random one from
    ``model_configs/blip2/<config>.json``."""
    from transformers import AutoImageProcessor, AutoTokenizer, Blip2ForImageTextRetrieval

    source = spec.model
    if spec.config is not None:
        cfg = model_config("blip2", spec.config)
        if not cfg.get("roundtrip", True):
            return BLIP2Encoder(*build_random_blip2(cfg), name=label, device=device)

        def save(folder: Path) -> None:
            for part in build_random_blip2(cfg):
                part.save_pretrained(folder)

        source = str(saved_once(spec.model, [cfg, TINY_SEED, random_vocab()], save))
    with hub_access(missing(spec)) as local:
        kw = {} if spec.config is not None else {"cache_dir": str(hub_cache_dir()), "local_files_only": local}
        try:
            model = Blip2ForImageTextRetrieval.from_pretrained(source, dtype=torch.float32, **kw)
            processor = AutoImageProcessor.from_pretrained(source, **kw)
            tokenizer = AutoTokenizer.from_pretrained(source, **kw)
        except (OSError, RuntimeError, ValueError) as exc:
            raise load_failed(f"BLIP-2 {spec.model!r}", exc) from None
    return BLIP2Encoder(model, processor, tokenizer, name=label, device=device)


BACKEND = Backend("blip2", load=load, missing=missing, takes="a transformers BLIP-2 retrieval id", family="blip2")
