"""Specs → models: the device, the image–text model (through the backend table), the detector.

Image–text models load through their backend's row in :data:`comclip.encoders.BACKENDS`; this
module names no backend. Hub access (cache first, one probe, one clear failure) and seeded
random builds are :mod:`comclip.hub`'s. Random-weight detectors (the ``tiny`` and ``arch-*``
presets) are built offline from the configs in ``comclip/model_configs/`` with a fixed seed; the
tiny one is saved once under ``COMCLIP_CACHE`` and loaded back through the same
``from_pretrained`` path as real ones. :func:`custom_preset` replaces a preset's models by
user-named ones.
"""

from __future__ import annotations

from pathlib import Path

import torch

from comclip import hub
from comclip.cpu import encoder_precision
from comclip.encoders import Encoder, get_backend
from comclip.encoders.base import DTYPES
from comclip.errors import NAME_MODEL, USE_CPU, InputError
from comclip.ground import GroundingDINO
from comclip.hub import TINY_SEED, TRANSFORMERS_FILES, Download, hub_access, hub_cache_dir, load_failed
from comclip.presets import DetectorSpec, EncoderSpec, JSONDict, Preset, get_preset, model_config, random_vocab

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
        raise InputError("device 'cuda' was asked for but no CUDA GPU is available", hint=USE_CPU)
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise InputError("device 'mps' was asked for but is not available", hint=USE_CPU)
    return dev


# -- what a preset needs ------------------------------------------------------------------------------

def missing(spec: EncoderSpec | DetectorSpec) -> Download | None:
    """What of a spec is not in the local cache (None: nothing is missing)."""
    if isinstance(spec, EncoderSpec):
        return get_backend(spec.backend).missing(spec)
    return None if spec.random else hub.missing_files(spec.model, spec.model, TRANSFORMERS_FILES, spec.download_size)


def missing_downloads(preset: str | Preset) -> list[str]:
    """What loading ``preset`` would download (empty when it is fully cached or random)."""
    p = get_preset(preset)
    return [str(d) for d in (missing(p.encoder), missing(p.detector)) if d is not None]


def preset_available(preset: str | Preset) -> bool:
    """True when ``preset`` can load now: random, fully cached, or the hub answers."""
    return not missing_downloads(preset) or hub.hub_reachable()


# -- the image–text model -------------------------------------------------------------------------

def encoder_label(spec: EncoderSpec) -> str:
    """``backend:model[/pretrained]`` (`` (random)`` for random weights): what results record."""
    return get_backend(spec.backend).label(spec)


def load_encoder(spec: EncoderSpec, device: torch.device) -> Encoder:
    """Build the image–text model of a spec on a device (its backend's loader), in the spec's precision
    (:func:`comclip.cpu.encoder_precision`)."""
    backend = get_backend(spec.backend)
    encoder = backend.load(spec, device, backend.label(spec))
    dtype = DTYPES[encoder_precision(spec.precision, torch.device(device).type)]
    if dtype != getattr(encoder, "dtype", dtype):
        encoder.use_dtype(dtype)  # type: ignore[attr-defined]
    return encoder


# -- the detector ---------------------------------------------------------------------------------

def _detector_config(spec: DetectorSpec) -> JSONDict:
    return model_config("grounding_dino", spec.config or "tiny")


def build_random_detector(spec: DetectorSpec) -> tuple[torch.nn.Module, object]:
    """A seeded random Grounding DINO (model, processor) from the spec's config."""
    from transformers import (
        BertConfig,
        BertTokenizer,
        GroundingDinoConfig,
        GroundingDinoForObjectDetection,
        GroundingDinoImageProcessor,
        GroundingDinoProcessor,
        SwinConfig,
    )

    cfg = _detector_config(spec)
    vocab = {w: i for i, w in enumerate(random_vocab())}
    tokenizer = BertTokenizer(vocab=vocab)
    config = GroundingDinoConfig(backbone_config=SwinConfig(**cfg["backbone"]),  # type: ignore[arg-type]
                                 text_config=BertConfig(vocab_size=len(vocab), **cfg["text"]),  # type: ignore[arg-type]
                                 **cfg["model"])  # type: ignore[arg-type]
    with hub.seeded(TINY_SEED):
        model = GroundingDinoForObjectDetection(config).eval()
    image_processor = GroundingDinoImageProcessor(**({"size": spec.processor_size} if spec.processor_size else {}))
    return model, GroundingDinoProcessor(image_processor=image_processor, tokenizer=tokenizer)


def _random_detector_dir(spec: DetectorSpec) -> Path:
    """Build (once) and save a seeded random Grounding DINO; return its folder."""
    def save(folder: Path) -> None:
        model, processor = build_random_detector(spec)
        model.save_pretrained(folder)
        processor.save_pretrained(folder)  # type: ignore[attr-defined]

    return hub.saved_once(spec.model, [_detector_config(spec), spec.processor_size, TINY_SEED, random_vocab()], save)


def load_detector(spec: DetectorSpec, device: torch.device) -> GroundingDINO:
    """Load Grounding DINO (hub id, or a seeded random one built from ``spec.config``) as a Detector."""
    from transformers import AutoModelForZeroShotObjectDetection, AutoProcessor

    with hub_access(missing(spec)) as local:
        if spec.random and not spec.roundtrip:
            model, processor = build_random_detector(spec)
        else:
            source = str(_random_detector_dir(spec)) if spec.random else spec.model
            kw = {} if spec.random else {"cache_dir": str(hub_cache_dir()), "local_files_only": local}
            try:
                model = AutoModelForZeroShotObjectDetection.from_pretrained(source, **kw)
                processor = AutoProcessor.from_pretrained(source, **kw)
            except (OSError, RuntimeError, ValueError) as exc:
                raise load_failed(f"Grounding DINO {spec.model!r}", exc) from None
    size = spec.size_rule() or (spec.processor_size if not spec.random else None)
    if size is not None:
        processor.image_processor.size = dict(size)  # type: ignore[attr-defined]
    return GroundingDINO(model, processor, device=device, name=spec.model, box_threshold=spec.box_threshold,
                         text_threshold=spec.text_threshold, precision=spec.precision,
                         backend=spec.backend)


# -- user-named models --------------------------------------------------------------------------------

def _named_encoder(base: EncoderSpec, model: str | None, pretrained: str | None, backend_name: str | None
                   ) -> EncoderSpec:
    backend = get_backend(backend_name or "open_clip")
    same_backend = backend.name == base.backend
    model = model or (base.model if same_backend else None)
    if not model:
        raise InputError(f"replacing the image–text model by a {backend.name} one needs its name: {backend.takes}",
                         hint=NAME_MODEL)
    if pretrained is None and same_backend and model == base.model:
        pretrained = base.pretrained
    spec = backend.spec(model, pretrained)
    return base if (spec.backend, spec.model, spec.pretrained) == (base.backend, base.model, base.pretrained) else spec


def custom_preset(base: Preset, *, clip_model: str | None = None, clip_pretrained: str | None = None,
                  clip_backend: str | None = None, detector: str | None = None) -> Preset:
    """``base`` with its image–text model and/or detector replaced by user-named ones.

    ``clip_backend`` (default ``open_clip``) is a row of :data:`comclip.encoders.BACKENDS`; what
    ``clip_model`` names depends on it (its ``takes``): an open_clip name with a pretrained tag
    (``ViT-B-16``/``laion2b_s34b_b88k``) or an ``hf-hub:org/name`` id; a transformers CLIP id; a
    SLIP release checkpoint; a transformers BLIP-2 retrieval id. ``detector`` is a transformers
    Grounding DINO id.
    """
    if not any((clip_model, clip_pretrained, clip_backend, detector)):
        return base
    encoder = base.encoder
    if clip_model or clip_pretrained or clip_backend:
        encoder = _named_encoder(base.encoder, clip_model, clip_pretrained, clip_backend)
    spec = base.detector if detector is None else DetectorSpec(detector)
    random = get_backend(encoder.backend).random(encoder) or spec.random
    return Preset(f"{base.name}+custom", f"{encoder_label(encoder)} + {spec.model}", encoder, spec,
                  downloads=f"the named models ({encoder.model}, {spec.model}) unless cached", random_weights=random)
