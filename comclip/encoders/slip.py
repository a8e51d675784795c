"""SLIP release checkpoints (facebookresearch/SLIP) as an open_clip model with a timm image tower.

A release file (``https://dl.fbaipublicfiles.com/slip/slip_base_100ep.pt`` and relatives) holds
``state_dict`` (keys prefixed ``module.``) and ``args`` (an ``argparse.Namespace``, ``args.model``
such as ``SLIP_VITB16``). Its CLIP part is a timm ViT (class token after the final norm) with a
bias-free ``image_projection`` and CLIP's text transformer. We build open_clip's ``CLIP`` with a
timm tower of the checkpoint's geometry and rename keys:

    module.visual.X        → visual.trunk.X
    module.image_projection → visual.head.proj.weight (transposed)
    module.image_mlp.*     → dropped (the self-supervised head)
    everything else        → unchanged (open_clip's text side uses SLIP's names)

Widths, depths, patch and image size are read from the checkpoint's tensor shapes; the number of
attention heads cannot be, so it comes from SLIP's model definitions: ViT-S/16 is the "MoCo v3"
variant with 12 heads of width 32, ViT-B/16, ViT-L/16 and the text transformer use heads of 64.

Loading is safe: ``torch.load(weights_only=True)`` with ``argparse.Namespace`` as the one allowed
global. Preprocessing and tokenisation follow SLIP's zero-shot evaluation (``eval_zeroshot.py``):
``Resize(224)`` (bilinear), ``CenterCrop(224)``, RGB, ImageNet mean/std; CLIP's BPE with the
start/end tokens, cut at 77 tokens *without* moving the end token (SLIP's own rule).
"""

from __future__ import annotations

import argparse
import os
import pickle
import re
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch
from PIL import Image

from comclip.encoders.base import Backend
from comclip.encoders.open_clip import OpenCLIPEncoder
from comclip.errors import NAME_MODEL, InputError, ModelUnavailableError
from comclip.hub import Download, cache_root
from comclip.presets import EncoderSpec

RELEASE_URL = "https://dl.fbaipublicfiles.com/slip/"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: Width of one attention head in SLIP's definitions, by image tower (``args.model`` suffix).
VISION_HEAD_WIDTH = {"VITS16": 32, "VITB16": 64, "VITL16": 64}
TEXT_HEAD_WIDTH = 64
_MODEL_NAME = re.compile(r"^(CLIP|SLIP|SIMCLR)_(VIT[SBL]16)$")


@dataclass(frozen=True)
class SLIPGeometry:
    """The shapes that define a SLIP model's CLIP part."""

    vision_width: int
    vision_depth: int
    vision_heads: int
    vision_mlp: int
    patch_size: int
    image_size: int
    embed_dim: int
    text_width: int
    text_heads: int
    text_layers: int
    context_length: int
    vocab_size: int

    @classmethod
    def release(cls, model: str) -> SLIPGeometry:
        """The geometry of a release model (``SLIP_VITB16``, ``CLIP_VITL16``, ...), from SLIP's definitions."""
        tower = _parse_model_name(model)
        width, depth = {"VITS16": (384, 12), "VITB16": (768, 12), "VITL16": (1024, 24)}[tower]
        return cls(width, depth, width // VISION_HEAD_WIDTH[tower], 4 * width, 16, 224, 512, 512, 8, 12, 77, 49408)

    @classmethod
    def of_state_dict(cls, model: str, sd: dict[str, torch.Tensor]) -> SLIPGeometry:
        """Read from a (converted) state dict's shapes; head counts from the model name."""
        tower = _parse_model_name(model)

        def count(prefix: str) -> int:
            pat = re.compile(re.escape(prefix) + r"(\d+)\.")
            return len({m.group(1) for k in sd if (m := pat.match(k))})

        try:
            vw = sd["visual.trunk.cls_token"].shape[-1]
            patch = sd["visual.trunk.patch_embed.proj.weight"].shape[-1]
            grid = round((sd["visual.trunk.pos_embed"].shape[1] - 1) ** 0.5)
            tw = sd["token_embedding.weight"].shape[1]
            geom = cls(
                vision_width=vw, vision_depth=count("visual.trunk.blocks."),
                vision_heads=max(1, vw // VISION_HEAD_WIDTH[tower]),
                vision_mlp=sd["visual.trunk.blocks.0.mlp.fc1.weight"].shape[0],
                patch_size=patch, image_size=grid * patch, embed_dim=sd["text_projection"].shape[1],
                text_width=tw, text_heads=max(1, tw // TEXT_HEAD_WIDTH), text_layers=count("transformer.resblocks."),
                context_length=sd["positional_embedding"].shape[0], vocab_size=sd["token_embedding.weight"].shape[0])
        except (KeyError, IndexError) as exc:
            raise InputError(f"not a SLIP checkpoint: no tensor {exc} in its state_dict") from None
        return geom


def _parse_model_name(model: str) -> str:
    m = _MODEL_NAME.match(str(model))
    if not m:
        raise InputError(f"not a SLIP checkpoint: args.model is {model!r}, expected CLIP_/SLIP_ + VITS16/VITB16/VITL16")
    if m.group(1) == "SIMCLR":
        raise InputError(f"{model} is a SimCLR checkpoint: it has no text encoder, so it cannot match captions")
    return m.group(2)


def build_slip_model(geom: SLIPGeometry) -> torch.nn.Module:
    """An open_clip ``CLIP`` with a timm ViT tower of ``geom`` (random weights; on the default device,
    so ``with torch.device("meta"):`` builds it without allocating)."""
    from open_clip.model import CLIP, CLIPTextCfg, CLIPVisionCfg
    from timm.models.vision_transformer import VisionTransformer

    model = CLIP(
        geom.embed_dim,
        # The named timm model is a placeholder: the trunk is replaced below by one of ``geom``'s shape.
        CLIPVisionCfg(timm_model_name="vit_base_patch16_224", timm_pool="token", timm_proj="linear",
                      image_size=geom.image_size),
        CLIPTextCfg(context_length=geom.context_length, vocab_size=geom.vocab_size, width=geom.text_width,
                    heads=geom.text_heads, layers=geom.text_layers),
        quick_gelu=True)
    model.visual.trunk = VisionTransformer(
        img_size=geom.image_size, patch_size=geom.patch_size, embed_dim=geom.vision_width, depth=geom.vision_depth,
        num_heads=geom.vision_heads, mlp_ratio=geom.vision_mlp / geom.vision_width, num_classes=0,
        global_pool="token")
    model.visual.head.proj = torch.nn.Linear(geom.vision_width, geom.embed_dim, bias=False)
    return model


def convert_state_dict(slip: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """SLIP release keys → the open_clip model's keys (see the module docstring)."""
    out: dict[str, torch.Tensor] = OrderedDict()
    for key, value in slip.items():
        key = key.removeprefix("module.")
        if key.startswith("image_mlp."):
            continue
        if key == "image_projection":
            out["visual.head.proj.weight"] = value.t()
        elif key.startswith("visual."):
            out["visual.trunk." + key.removeprefix("visual.")] = value
        else:
            out[key] = value
    return out


def read_checkpoint(path: str | Path) -> tuple[str, dict[str, torch.Tensor]]:
    """``(args.model, converted state dict)`` of a SLIP release file, loaded without arbitrary unpickling."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"SLIP checkpoint {str(path)!r} does not exist")
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, AttributeError, KeyError, TypeError,
            IndexError, OverflowError) as exc:  # what reading a random file as a checkpoint raises
        reason = " ".join(str(exc).split())[:160]
        raise InputError(f"{path.name} is not a SLIP checkpoint (it cannot be read as one safely: {reason})") from None
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("state_dict"), dict) or "args" not in ckpt:
        raise InputError(f"{path.name} is not a SLIP checkpoint: expected a dict with 'state_dict' and 'args'")
    model = getattr(ckpt["args"], "model", None)
    if model is None:
        raise InputError(f"{path.name} is not a SLIP checkpoint: its args name no model")
    state = ckpt["state_dict"]
    if not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise InputError(f"{path.name} is not a SLIP checkpoint: its state_dict holds non-tensors")
    _parse_model_name(model)
    return str(model), convert_state_dict(state)


def build_from_checkpoint(path: str | Path) -> tuple[torch.nn.Module, SLIPGeometry]:
    """The CLIP part of a SLIP checkpoint as an open_clip model (fp32, CPU, eval mode)."""
    model_name, sd = read_checkpoint(path)
    geom = SLIPGeometry.of_state_dict(model_name, sd)
    with torch.device("meta"):
        model = build_slip_model(geom)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(sd))
    unexpected = sorted(set(sd) - set(expected))
    wrong = sorted(k for k in set(expected) & set(sd) if expected[k].shape != sd[k].shape)
    if missing or unexpected or wrong:
        parts = [f"{label}: {', '.join(keys[:4])}{' …' if len(keys) > 4 else ''}"
                 for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)) if keys]
        raise InputError(f"{Path(path).name} is not a SLIP {model_name} checkpoint ({'; '.join(parts)})")
    model.load_state_dict({k: v.float() for k, v in sd.items()}, strict=True, assign=True)
    # The causal mask is a non-persistent buffer: made again for real (it was built on the meta device).
    model.attn_mask = torch.full((geom.context_length, geom.context_length), float("-inf")).triu_(1)
    leftover = [n for n, t in [*model.named_parameters(), *model.named_buffers()] if t.is_meta]
    if leftover:
        raise RuntimeError(f"SLIP model has uninitialised tensors: {leftover}")
    return model.eval(), geom


class _ToRGB:
    def __call__(self, image: Image.Image) -> Image.Image:
        return image.convert("RGB")


def slip_transform(image_size: int = 224) -> Any:
    """SLIP's zero-shot evaluation transform."""
    from torchvision import transforms as T

    return T.Compose([T.Resize(image_size), T.CenterCrop(image_size), _ToRGB(), T.ToTensor(),
                      T.Normalize(IMAGENET_MEAN, IMAGENET_STD)])


class SLIPTokenizer:
    """CLIP's BPE as SLIP's evaluation uses it: a longer text is cut at ``context_length`` tokens and
    keeps no end token there (open_clip's tokenizer would put one in the last place)."""

    def __init__(self, context_length: int = 77) -> None:
        from open_clip.tokenizer import SimpleTokenizer

        self._bpe = SimpleTokenizer(context_length=context_length)
        self.context_length = context_length

    def encode(self, text: str) -> list[int]:
        return self._bpe.encode(text)

    def __call__(self, texts: str | list[str]) -> torch.Tensor:
        texts = [texts] if isinstance(texts, str) else texts
        out = torch.zeros(len(texts), self.context_length, dtype=torch.long)
        for i, text in enumerate(texts):
            ids = ([self._bpe.sot_token_id] + self._bpe.encode(text) + [self._bpe.eot_token_id])[:self.context_length]
            out[i, :len(ids)] = torch.tensor(ids)
        return out


def _locate(source: str) -> tuple[Path, str | None]:
    """``(local file, URL to fetch it from or None)`` for a path, a URL or a bare release file name."""
    if urlparse(source).scheme not in ("http", "https"):
        if Path(source).expanduser().exists() or os.sep in source or not source.endswith(".pt"):
            return Path(source).expanduser(), None
        source = RELEASE_URL + source  # a bare release file name, e.g. slip_base_100ep.pt
    return cache_root() / "slip" / Path(urlparse(source).path).name, source


def pending_download(source: str) -> str | None:
    """The URL loading ``source`` would download from, or None (a local file, or already cached)."""
    target, url = _locate(source)
    return None if url is None or target.is_file() else url


def checkpoint_file(source: str, downloads: str | None = None) -> Path:
    """A local SLIP file: ``source`` itself, or a release URL / file name fetched once into the cache."""
    target, source = _locate(source)
    if source is None or target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + f".part{os.getpid()}")
    try:
        torch.hub.download_url_to_file(source, str(tmp), progress=True)
    except (OSError, ValueError) as exc:  # urllib's URLError is an OSError
        tmp.unlink(missing_ok=True)
        reason = " ".join(str(exc).split())[:160]
        raise ModelUnavailableError(
            f"could not download the SLIP checkpoint {source} ({reason}). Connect once so it can be fetched"
            + (f" ({downloads})" if downloads else "")
            + f" into {target.parent}, or use a local checkpoint file", hint=NAME_MODEL) from None
    tmp.replace(target)
    return target


def load_slip_encoder(source: str, device: torch.device, *, name: str | None = None,
                      downloads: str | None = None) -> OpenCLIPEncoder:
    """A SLIP checkpoint (path, release URL or release file name) as an encoder on ``device``."""
    model, geom = build_from_checkpoint(checkpoint_file(source, downloads))
    return OpenCLIPEncoder(model, slip_transform(geom.image_size), SLIPTokenizer(geom.context_length),
                           name=name or f"slip:{Path(urlparse(source).path).name}", device=device)


# -- the backend row ---------------------------------------------------------------------------------

def missing(spec: EncoderSpec) -> Download | None:
    url = pending_download(spec.model)
    return Download(f"SLIP checkpoint {url}", url, (url.rsplit("/", 1)[-1],), spec.download_size) if url else None


def named(model: str, pretrained: str | None) -> EncoderSpec:
    if pretrained:
        raise InputError("a SLIP checkpoint takes no pretrained tag: its file or URL is the model", hint=NAME_MODEL)
    return EncoderSpec("slip", model)


BACKEND = Backend(
    "slip", missing=missing, named=named, family="slip",
    takes="a SLIP release checkpoint (a path, a URL or a release file name)",
    load=lambda spec, device, label: load_slip_encoder(spec.model, device, name=label, downloads=spec.download_size))
