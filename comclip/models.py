"""Presets (names → models), device choice, and loading with clear failures.

=========  =========================================  ==================================
preset     image–text model                           detector
=========  =========================================  ==================================
default    open_clip ``ViT-B-32-quickgelu``/``openai``  ``IDEA-Research/grounding-dino-tiny``
large      open_clip ``ViT-L-14-quickgelu``/``openai``  ``IDEA-Research/grounding-dino-base``
tiny       seeded random tiny CLIP (built offline)    seeded random tiny Grounding DINO
=========  =========================================  ==================================

Real weights come from the Hugging Face hub and are cached there (``HF_HOME``). Without network
and without a cached copy, loading fails at once with one :class:`ModelUnavailableError` naming the
model and the remedy — never a traceback, never a silent fallback.

The ``tiny`` preset is for tests and for trying the UI offline: its weights are random, so its
scores mean nothing. Its models are built from configs in code with a fixed seed, saved once to
``~/.cache/comclip/`` and loaded back through the same ``from_pretrained`` path as real ones.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import socket
import string
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch

from comclip.encoders import Encoder, HFCLIPEncoder, OpenCLIPEncoder
from comclip.encoders.blip2 import ARCH_BLIP2_CONFIG, TINY_BLIP2_CONFIG
from comclip.errors import InputError, ModelUnavailableError
from comclip.ground import GroundingDINO

TINY_SEED = 1234


@dataclass(frozen=True)
class EncoderSpec:
    backend: str  # "open_clip" | "hf_clip" | "slip" | "blip2"
    model: str  # open_clip name, hub id, or for slip a checkpoint path / release URL / release file name
    pretrained: str | None = None
    #: open_clip: a model config registered before building; blip2: a config to build a seeded
    #: random model from (both for offline architectures).
    config: dict[str, Any] | None = None

    @property
    def label(self) -> str:
        random = self.config is not None or (self.backend == "open_clip" and not self.pretrained)
        return f"{self.backend}:{self.model}" + (f"/{self.pretrained}" if self.pretrained else "") + \
            (" (random)" if random else "")


@dataclass(frozen=True)
class DetectorSpec:
    model: str  # hub id, or a name for a random model built offline from ``config``
    box_threshold: float = 0.35
    text_threshold: float = 0.25
    #: Image size the processor resizes to (None: the model's own setting).
    size: dict[str, int] | None = None
    #: Build a seeded random model from this config instead of loading ``model`` from the hub.
    config: dict[str, Any] | None = None
    #: With ``config``: save the built model once and load it back through ``from_pretrained``.
    roundtrip: bool = True


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    encoder: EncoderSpec
    detector: DetectorSpec
    downloads: str
    random_weights: bool = False


TINY_CLIP_CONFIG: dict[str, Any] = {
    "embed_dim": 32,
    "quick_gelu": True,
    "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "patch_size": 16},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}

TINY_DETECTOR_CONFIG: dict[str, Any] = {
    "backbone": {"image_size": 128, "patch_size": 4, "embed_dim": 16, "depths": [1, 1, 1, 1],
                 "num_heads": [1, 1, 1, 1], "window_size": 4, "out_features": ["stage2", "stage3", "stage4"]},
    "text": {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 64,
             "max_position_embeddings": 256},
    "model": {"d_model": 32, "encoder_layers": 1, "decoder_layers": 2, "encoder_ffn_dim": 64,
              "decoder_ffn_dim": 64, "encoder_attention_heads": 2, "decoder_attention_heads": 2,
              "num_queries": 30, "num_feature_levels": 3, "max_text_len": 256, "encoder_n_points": 2,
              "decoder_n_points": 2},
}

_BERT_BASE = {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072,
              "max_position_embeddings": 512}
#: The geometry of IDEA-Research/grounding-dino-tiny and -base (transformers' defaults are -tiny's).
ARCH_DETECTOR_CONFIGS: dict[str, dict[str, Any]] = {
    "tiny": {"backbone": {"embed_dim": 96, "depths": [2, 2, 6, 2], "num_heads": [3, 6, 12, 24], "window_size": 7,
                          "out_features": ["stage2", "stage3", "stage4"]},
             "text": _BERT_BASE, "model": {}},
    "base": {"backbone": {"image_size": 384, "embed_dim": 128, "depths": [2, 2, 18, 2], "num_heads": [4, 8, 16, 32],
                          "window_size": 12, "out_features": ["stage2", "stage3", "stage4"]},
             "text": _BERT_BASE, "model": {}},
}

SLIP_DOWNLOAD = ("{size} once from https://dl.fbaipublicfiles.com/slip/{file} into ~/.cache/comclip/slip "
                 "(fp32 weights, size estimated from the parameter count) + {detector}")

PRESETS: dict[str, Preset] = {
    "default": Preset(
        "default", "CLIP ViT-B/32 (OpenAI) + Grounding DINO tiny — the paper's setting",
        EncoderSpec("open_clip", "ViT-B-32-quickgelu", "openai"),
        DetectorSpec("IDEA-Research/grounding-dino-tiny"),
        downloads="about 1.3 GB: open_clip ViT-B-32 OpenAI weights (605 MB, timm/vit_base_patch32_clip_224.openai) "
                  "+ IDEA-Research/grounding-dino-tiny (689 MB)",
    ),
    "large": Preset(
        "large", "CLIP ViT-L/14 (OpenAI) + Grounding DINO base",
        EncoderSpec("open_clip", "ViT-L-14-quickgelu", "openai"),
        DetectorSpec("IDEA-Research/grounding-dino-base"),
        downloads="about 2.6 GB: open_clip ViT-L-14 OpenAI weights (1.7 GB, timm/vit_large_patch14_clip_224.openai) "
                  "+ IDEA-Research/grounding-dino-base (933 MB)",
    ),
    "tiny": Preset(
        "tiny", "tiny seeded random models built offline — for tests and trying the UI; scores are meaningless",
        EncoderSpec("open_clip", "comclip-tiny", None, TINY_CLIP_CONFIG),
        DetectorSpec("tiny-grounding-dino", box_threshold=0.3, text_threshold=0.25,
                     size={"shortest_edge": 128, "longest_edge": 256}, config=TINY_DETECTOR_CONFIG),
        downloads="nothing (built from configs in code, cached under ~/.cache/comclip)",
        random_weights=True,
    ),
    "arch-b32": Preset(
        "arch-b32", "real-size ViT-B/32 + Grounding DINO tiny geometry (Swin-T, BERT-base) with random weights — "
        "for speed benchmarks",
        EncoderSpec("open_clip", "ViT-B-32-quickgelu", None),
        DetectorSpec("random-grounding-dino-tiny", box_threshold=0.0, text_threshold=0.0,
                     config=ARCH_DETECTOR_CONFIGS["tiny"], roundtrip=False),
        downloads="nothing (random weights)", random_weights=True,
    ),
    "slip-base": Preset(
        "slip-base", "SLIP ViT-B/16 (YFCC15M, 100 epochs; facebookresearch/SLIP release) + Grounding DINO tiny",
        EncoderSpec("slip", "https://dl.fbaipublicfiles.com/slip/slip_base_100ep.pt"),
        DetectorSpec("IDEA-Research/grounding-dino-tiny"),
        downloads=SLIP_DOWNLOAD.format(size="about 0.7 GB", file="slip_base_100ep.pt",
                                       detector="IDEA-Research/grounding-dino-tiny (689 MB)"),
    ),
    "slip-large": Preset(
        "slip-large", "SLIP ViT-L/16 (YFCC15M, 100 epochs; facebookresearch/SLIP release) + Grounding DINO base",
        EncoderSpec("slip", "https://dl.fbaipublicfiles.com/slip/slip_large_100ep.pt"),
        DetectorSpec("IDEA-Research/grounding-dino-base"),
        downloads=SLIP_DOWNLOAD.format(size="about 1.6 GB", file="slip_large_100ep.pt",
                                       detector="IDEA-Research/grounding-dino-base (933 MB)"),
    ),
    "blip2": Preset(
        "blip2", "BLIP-2 image–text retrieval, ITC (Salesforce/blip2-itm-vit-g) + Grounding DINO tiny",
        EncoderSpec("blip2", "Salesforce/blip2-itm-vit-g"),
        DetectorSpec("IDEA-Research/grounding-dino-tiny"),
        downloads="about 5.4 GB: Salesforce/blip2-itm-vit-g (about 4.7 GB: 1.17 B parameters in fp32, EVA ViT-g + "
                  "Q-Former) + IDEA-Research/grounding-dino-tiny (689 MB)",
    ),
    "tiny-blip2": Preset(
        "tiny-blip2", "tiny seeded random BLIP-2 retrieval model + tiny Grounding DINO, built offline — for tests; "
        "scores are meaningless",
        EncoderSpec("blip2", "tiny-blip2", None, TINY_BLIP2_CONFIG),
        DetectorSpec("tiny-grounding-dino", box_threshold=0.3, text_threshold=0.25,
                     size={"shortest_edge": 128, "longest_edge": 256}, config=TINY_DETECTOR_CONFIG),
        downloads="nothing (built from configs in code, cached under ~/.cache/comclip)",
        random_weights=True,
    ),
    "arch-blip2": Preset(
        "arch-blip2", "real-size BLIP-2 ITM ViT-g geometry (EVA ViT-g/14, Q-Former, 32 queries) + Grounding DINO "
        "tiny geometry with random weights — for speed benchmarks",
        EncoderSpec("blip2", "random-blip2-itm-vit-g", None, ARCH_BLIP2_CONFIG),
        DetectorSpec("random-grounding-dino-tiny", box_threshold=0.0, text_threshold=0.0,
                     config=ARCH_DETECTOR_CONFIGS["tiny"], roundtrip=False),
        downloads="nothing (random weights)", random_weights=True,
    ),
    "arch-l14": Preset(
        "arch-l14", "real-size ViT-L/14 + Grounding DINO base geometry (Swin-B, BERT-base) with random weights — "
        "for speed benchmarks",
        EncoderSpec("open_clip", "ViT-L-14-quickgelu", None),
        DetectorSpec("random-grounding-dino-base", box_threshold=0.0, text_threshold=0.0,
                     config=ARCH_DETECTOR_CONFIGS["base"], roundtrip=False),
        downloads="nothing (random weights)", random_weights=True,
    ),
}


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise InputError(f"unknown preset {name!r}; choose one of: {', '.join(PRESETS)}") from None


ENCODER_BACKENDS = ("open_clip", "hf_clip", "slip", "blip2")


def custom_preset(base: Preset, *, clip_model: str | None = None, clip_pretrained: str | None = None,
                  clip_backend: str | None = None, detector: str | None = None) -> Preset:
    """``base`` with its image–text model and/or detector replaced by user-named ones.

    open_clip models take a name and a pretrained tag (``ViT-B-16``/``laion2b_s34b_b88k``) or an
    ``hf-hub:org/name`` id; ``hf_clip`` takes a transformers CLIP id (``openai/clip-vit-base-patch32``);
    ``slip`` a SLIP release checkpoint (path, URL, or release file name such as ``slip_base_100ep.pt``);
    ``blip2`` a transformers BLIP-2 retrieval id (``Salesforce/blip2-itm-vit-g``);
    ``detector`` is a transformers Grounding DINO id.
    """
    if not any((clip_model, clip_pretrained, clip_backend, detector)):
        return base
    encoder = base.encoder
    if clip_model or clip_pretrained or clip_backend:
        backend = clip_backend or "open_clip"
        if backend not in ENCODER_BACKENDS:
            raise InputError(f"unknown CLIP backend {backend!r}; choose one of: {', '.join(ENCODER_BACKENDS)}")
        model = clip_model or (base.encoder.model if backend == base.encoder.backend else None)
        if not model:
            raise InputError("name the model with --clip-model")
        pretrained = clip_pretrained
        if backend == "open_clip" and model == base.encoder.model and pretrained is None:
            pretrained = base.encoder.pretrained
        if backend == "open_clip" and not model.startswith("hf-hub:") and not pretrained:
            raise InputError(f"open_clip model {model!r} needs a pretrained tag (--clip-pretrained, e.g. openai or "
                             "laion2b_s34b_b79k; open_clip.list_pretrained() lists them), or use an hf-hub: name")
        if backend == "slip" and pretrained:
            raise InputError("a SLIP checkpoint takes no --clip-pretrained tag; name the file or URL with --clip-model")
        encoder = EncoderSpec(backend, model, pretrained if backend == "open_clip" else None)
    spec = base.detector if detector is None else DetectorSpec(detector)
    return Preset(f"{base.name}+custom", f"{encoder.label} + {spec.model}", encoder, spec,
                  downloads=f"the named models ({encoder.model}, {spec.model}) unless cached", random_weights=False)


# -- device -------------------------------------------------------------------------------------

def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """``auto`` → cuda, else mps, else cpu; an explicit device must exist."""
    if device is None or str(device) == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise InputError(f"unknown device {device!r}; use auto, cpu, cuda, cuda:N or mps") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError("device 'cuda' was asked for but no CUDA GPU is available; use --device cpu")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise InputError("device 'mps' was asked for but is not available; use --device cpu")
    return dev


# -- hub access ---------------------------------------------------------------------------------

def _hub_reachable(timeout: float = 3.0) -> bool:
    """A quick TCP check of the hub endpoint, so offline machines fail in seconds, not minutes."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        return False
    host = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname or "huggingface.co"
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


@contextlib.contextmanager
def _hub_mode(local: bool = False) -> Iterator[bool]:
    """Use the network if the hub answers, else the local cache only (no retry loops).

    Library log lines and weight-loading progress bars are silenced meanwhile (our own error says
    what failed); download progress bars stay.
    """
    import huggingface_hub.constants as hub_constants
    from transformers.utils import logging as hf_logging

    online = False if local else _hub_reachable()
    logging.disable(logging.ERROR)
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    old_env = os.environ.get("HF_HUB_OFFLINE")
    old_const = hub_constants.HF_HUB_OFFLINE
    if not online:
        os.environ["HF_HUB_OFFLINE"] = "1"
        hub_constants.HF_HUB_OFFLINE = True
    try:
        yield online
    finally:
        logging.disable(logging.NOTSET)
        if bars:
            hf_logging.enable_progress_bar()
        hub_constants.HF_HUB_OFFLINE = old_const
        if old_env is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
        else:
            os.environ["HF_HUB_OFFLINE"] = old_env


def _unavailable(what: str, online: bool, preset: Preset | None, exc: BaseException) -> ModelUnavailableError:
    reason = " ".join(str(exc).split())[:200]
    if online:
        msg = f"could not load {what}: {reason}"
    else:
        msg = (f"could not load {what}: it is not in the local Hugging Face cache and the hub cannot be "
               f"reached (offline). Connect once so it can be downloaded"
               + (f" ({preset.downloads})" if preset else "")
               + ", or point HF_HOME at a cache that has it; `--preset tiny` runs offline with random weights")
    return ModelUnavailableError(msg)


# -- tiny models ----------------------------------------------------------------------------------

def _cache_root() -> Path:
    return Path(os.environ.get("COMCLIP_CACHE", Path.home() / ".cache" / "comclip"))


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:12]


@contextlib.contextmanager
def _seeded(seed: int) -> Iterator[None]:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def _register_open_clip_config(name: str, config: dict[str, Any]) -> None:
    import open_clip

    folder = _cache_root() / "open_clip_configs" / _digest(config)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    if not path.exists():
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(config))
        tmp.replace(path)
    open_clip.add_model_config(folder)


def _build_random_detector(spec: DetectorSpec) -> tuple[Any, Any]:
    """A seeded random Grounding DINO (model, processor) from ``spec.config``."""
    from transformers import (
        BertConfig,
        BertTokenizer,
        GroundingDinoConfig,
        GroundingDinoForObjectDetection,
        GroundingDinoImageProcessor,
        GroundingDinoProcessor,
        SwinConfig,
    )

    cfg = spec.config or TINY_DETECTOR_CONFIG
    vocab = {w: i for i, w in enumerate(TINY_VOCAB)}
    tokenizer = BertTokenizer(vocab=vocab)
    config = GroundingDinoConfig(backbone_config=SwinConfig(**cfg["backbone"]),
                                 text_config=BertConfig(vocab_size=len(vocab), **cfg["text"]), **cfg["model"])
    with _seeded(TINY_SEED):
        model = GroundingDinoForObjectDetection(config).eval()
    image_processor = GroundingDinoImageProcessor(**({"size": spec.size} if spec.size else {}))
    return model, GroundingDinoProcessor(image_processor=image_processor, tokenizer=tokenizer)


def _random_detector_dir(spec: DetectorSpec) -> Path:
    """Build (once) and save a seeded random Grounding DINO; return its folder."""
    folder = _cache_root() / f"{spec.model}-{_digest([spec.config, spec.size, TINY_SEED, TINY_VOCAB])}"
    if (folder / "done").exists():
        return folder
    model, processor = _build_random_detector(spec)
    tmp = folder.with_name(folder.name + f".tmp{os.getpid()}")
    model.save_pretrained(tmp)
    processor.save_pretrained(tmp)
    (tmp / "done").write_text("ok")
    if not folder.exists():
        tmp.replace(folder)
    return folder


#: Word-piece vocabulary of the tiny detector: every letter and digit (so no word is [UNK]) plus
#: common caption words.
TINY_VOCAB: list[str] = (
    ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    + list(".,;:!?'\"-()/&")
    + list(string.ascii_lowercase) + list(string.digits)
    + ["##" + c for c in string.ascii_lowercase + string.digits]
    + ("a an the some dog dogs cat cats person people man woman child girl boy mug cup grass table chair "
       "car truck fire bus bike horse bench tree sky water plate bowl ball hat shirt red blue green yellow "
       "black white brown small large big young old wooden two three on in under next to of top front "
       "behind near left right holding riding sitting standing").split()
)


# -- loading ------------------------------------------------------------------------------------

def load_encoder(spec: EncoderSpec, device: torch.device, preset: Preset | None = None) -> Encoder:
    """Build the image–text model of a spec on a device."""
    if spec.backend == "open_clip":
        import open_clip

        if spec.config is not None:
            _register_open_clip_config(spec.model, spec.config)
        with _hub_mode(local=spec.pretrained is None) as online:
            try:
                with _seeded(TINY_SEED):
                    model, _, preprocess = open_clip.create_model_and_transforms(
                        spec.model, pretrained=spec.pretrained, device="cpu")
                tokenizer = open_clip.get_tokenizer(spec.model)
            except (OSError, RuntimeError, ValueError) as exc:
                raise _unavailable(f"open_clip model {spec.model!r} (pretrained {spec.pretrained!r})",
                                   online, preset, exc) from None
        return OpenCLIPEncoder(model, preprocess, tokenizer, name=spec.label, device=device)
    if spec.backend == "hf_clip":
        from transformers import CLIPModel, CLIPProcessor

        with _hub_mode() as online:
            try:
                model = CLIPModel.from_pretrained(spec.model)
                processor = CLIPProcessor.from_pretrained(spec.model)
            except (OSError, RuntimeError, ValueError) as exc:
                raise _unavailable(f"Hugging Face CLIP {spec.model!r}", online, preset, exc) from None
        return HFCLIPEncoder(model, processor, name=spec.label, device=device)
    if spec.backend == "slip":
        from comclip.encoders.slip import load_slip_encoder

        return load_slip_encoder(spec.model, device, name=spec.label, downloads=preset.downloads if preset else None)
    if spec.backend == "blip2":
        from comclip.encoders.blip2 import load_blip2_encoder

        return load_blip2_encoder(spec.model, spec.config, device, name=spec.label, preset=preset)
    raise InputError(f"unknown encoder backend {spec.backend!r}; choose one of: {', '.join(ENCODER_BACKENDS)}")


def load_detector(spec: DetectorSpec, device: torch.device, preset: Preset | None = None, *,
                  box_threshold: float | None = None, text_threshold: float | None = None,
                  boxes_per_entity: int = 1) -> GroundingDINO:
    """Load Grounding DINO (hub id, or a seeded random one built from ``spec.config``) as a Detector."""
    from transformers import AutoModelForZeroShotObjectDetection, AutoProcessor

    local = spec.config is not None
    with _hub_mode(local=local) as online:
        if local and not spec.roundtrip:
            model, processor = _build_random_detector(spec)
        else:
            source = str(_random_detector_dir(spec)) if local else spec.model
            try:
                model = AutoModelForZeroShotObjectDetection.from_pretrained(source)
                processor = AutoProcessor.from_pretrained(source)
            except (OSError, RuntimeError, ValueError) as exc:
                raise _unavailable(f"Grounding DINO {spec.model!r}", online, preset, exc) from None
    if spec.size is not None and not local:
        processor.image_processor.size = dict(spec.size)
    return GroundingDINO(
        model, processor, device=device, name=spec.model,
        box_threshold=spec.box_threshold if box_threshold is None else box_threshold,
        text_threshold=spec.text_threshold if text_threshold is None else text_threshold,
        boxes_per_entity=boxes_per_entity)


def describe(preset: Preset) -> dict[str, Any]:
    """What a result records about the models that produced it."""
    return {"encoder": preset.encoder.label, "detector": preset.detector.model,
            "random_weights": preset.random_weights}
