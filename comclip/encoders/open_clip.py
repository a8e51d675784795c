"""open_clip models (OpenAI CLIP, LAION, SigLIP, ``hf-hub:`` names) behind the encoder protocol.

A spec names an open_clip model and its pretrained tag (``ViT-B-32-quickgelu``/``openai``), an
``hf-hub:ORG/NAME`` model, or an architecture with no tag: random weights (the ``tiny`` preset's
``comclip-tiny`` from ``model_configs/open_clip/``, the ``arch-*`` presets' real-size ones).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import torch
from PIL import Image

from comclip.encoders.base import Backend, BatchedEncoder
from comclip.errors import NAME_PRETRAINED, InputError
from comclip.hub import Download, hub_access, hub_cache_dir, load_failed, missing_files, seeded
from comclip.presets import MODEL_CONFIG_DIR, EncoderSpec
from comclip.subimage import PixelGeometry

OPEN_CLIP_WEIGHTS = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")


class OpenCLIPEncoder(BatchedEncoder):
    """Any open_clip model: ``ViT-B-32-quickgelu``/``openai``, SigLIP, ``hf-hub:`` names, ..."""

    #: The towers' tensor-in forwards (what ``bench`` records and replays for its floor).
    bench_forwards = {"image": "_image_features", "text": "_text_forward"}

    def __init__(self, model: torch.nn.Module, preprocess: Callable[[Image.Image], torch.Tensor],
                 tokenizer: Any, *, name: str, device: torch.device, batch_size: int = 64) -> None:
        self._adopt(model, name=name, device=device, batch_size=batch_size)
        self._preprocess = preprocess
        self.tokenizer = tokenizer
        self._trim = _trimmable(model)
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
        tokens = self.tokenizer(list(texts))
        if self._trim and tokens.dtype in (torch.int32, torch.int64):  # stop at the longest caption (read here,
            tokens = tokens[:, :int(_pool_index(self.model, tokens).max()) + 1]  # on the host: no device sync)
        return self._text_forward(tokens.to(self.device, non_blocking=True))

    def _text_forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Token ids on the device → text features (the tower's one forward; ``bench`` records it)."""
        if tokens.shape[1] == self.model.positional_embedding.shape[0]:
            return self.model.encode_text(tokens)
        return _encode_trimmed(self.model, tokens)

    def compile(self) -> None:
        """``torch.compile`` the image tower (the hot path); text embeddings are cached anyway."""
        self.model.visual = torch.compile(self.model.visual)

    def count_tokens(self, text: str) -> int:
        encode = getattr(self.tokenizer, "encode", None)
        if encode is not None:
            return len(encode(text)) + 2  # start and end tokens
        ids = self.tokenizer([text])[0]
        return int((ids != 0).sum().item())


def _trimmable(model: torch.nn.Module) -> bool:
    """Whether the text tower can stop at the batch's longest caption (:func:`_encode_trimmed`):
    open_clip's own CLIP text tower, causal (open_clip keeps an ``attn_mask`` only for a causal
    tower: its ``build_causal_mask``), pooled at the end-of-text token. Read from the model's
    structure, not its mask's values (no device read)."""
    import open_clip

    mask = getattr(model, "attn_mask", None)
    return (isinstance(model, open_clip.CLIP) and isinstance(mask, torch.Tensor) and mask.dim() == 2
            and getattr(model, "text_pool_type", None) in ("argmax", "eos"))


def _pool_index(model: torch.nn.Module, tokens: torch.Tensor) -> torch.Tensor:
    if model.text_pool_type == "argmax":
        return tokens.argmax(dim=-1)
    return (tokens == model.text_eos_id).int().argmax(dim=-1)


def _encode_trimmed(model: torch.nn.Module, tokens: torch.Tensor) -> torch.Tensor:
    """open_clip's ``encode_text`` over only the first ``L = tokens.shape[1]`` positions, ``L`` = 1 +
    the batch's last pooled (end-of-text) position: in a causal text tower no position attends to a
    later one, so the pooled features are the same as over all 77 (up to float rounding: smaller matrix
    products) — for a short caption about 7× less work."""
    from open_clip.transformer import text_global_pool

    length = tokens.shape[1]
    cast = model.transformer.get_cast_dtype()
    x = model.token_embedding(tokens).to(cast) + model.positional_embedding[:length].to(cast)
    x = model.ln_final(model.transformer(x, attn_mask=model.attn_mask[:length, :length]))
    x = text_global_pool(x, tokens, model.text_pool_type, eos_token_id=getattr(model, "text_eos_id", None))
    proj = model.text_projection
    if proj is None:
        return x
    return proj(x) if isinstance(proj, torch.nn.Linear) else x @ proj


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


# -- loading ---------------------------------------------------------------------------------------

_configs_registered = False


def register_configs() -> None:
    """Make ``model_configs/open_clip/*.json`` known to open_clip (read in place, nothing written)."""
    global _configs_registered
    if not _configs_registered:
        import open_clip

        open_clip.add_model_config(MODEL_CONFIG_DIR / "open_clip")
        _configs_registered = True


def missing(spec: EncoderSpec) -> Download | None:
    """The weights a spec still needs from the hub (None: cached, random, or left to open_clip's own
    URL download)."""
    if spec.model.startswith("hf-hub:"):
        return missing_files(spec.model, spec.model[len("hf-hub:"):], (("open_clip_config.json",), OPEN_CLIP_WEIGHTS),
                             spec.download_size)
    if spec.pretrained is None:
        return None
    import open_clip

    hub = open_clip.get_pretrained_cfg(spec.model, spec.pretrained).get("hf_hub", "")
    if not hub:
        return None  # a URL download into open_clip's own cache: left to open_clip
    repo, filename = os.path.split(hub.rstrip("/")) if not hub.endswith("/") else (hub.rstrip("/"), "")
    return missing_files(f"open_clip {spec.model}/{spec.pretrained} weights ({repo})", repo,
                         ((filename,) if filename else OPEN_CLIP_WEIGHTS,), spec.download_size)


def load(spec: EncoderSpec, device: torch.device, label: str) -> OpenCLIPEncoder:
    import open_clip

    what = f"open_clip model {spec.model!r}" + (f" (pretrained {spec.pretrained!r})" if spec.pretrained else "")
    with hub_access(missing(spec)):
        if spec.config is not None:
            register_configs()  # under the load lock
        try:
            with seeded():
                model, _, preprocess = open_clip.create_model_and_transforms(
                    spec.model, pretrained=spec.pretrained, device="cpu", cache_dir=str(hub_cache_dir()))
            tokenizer = open_clip.get_tokenizer(spec.model, cache_dir=str(hub_cache_dir()))
        except (OSError, RuntimeError, ValueError) as exc:
            raise load_failed(what, exc) from None
    return OpenCLIPEncoder(model, preprocess, tokenizer, name=label, device=device)


def named(model: str, pretrained: str | None) -> EncoderSpec:
    if not model.startswith("hf-hub:") and not pretrained:
        raise InputError(f"open_clip model {model!r} needs a pretrained tag (e.g. openai or laion2b_s34b_b79k; "
                         "open_clip.list_pretrained() lists them), or an hf-hub: name", hint=NAME_PRETRAINED)
    return EncoderSpec("open_clip", model, pretrained)


BACKEND = Backend(
    "open_clip", load=load, missing=missing, named=named,
    takes="an open_clip name with its pretrained tag, or an open_clip hf-hub:ORG/NAME",
    # an architecture with no tag and no hub id: random weights
    random=lambda spec: spec.pretrained is None and not spec.model.startswith("hf-hub:"))
