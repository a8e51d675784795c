"""Presets: named pairs of (image–text model, detector), read from ``comclip/presets/*.json``.

=========  ===========================================  ==================================
preset     image–text model                             detector
=========  ===========================================  ==================================
default    open_clip ``ViT-B-32-quickgelu``/``openai``  ``IDEA-Research/grounding-dino-tiny``
large      open_clip ``ViT-L-14-quickgelu``/``openai``  ``IDEA-Research/grounding-dino-base``
slip-base  SLIP ViT-B/16 release checkpoint            ``IDEA-Research/grounding-dino-tiny``
slip-large SLIP ViT-L/16 release checkpoint            ``IDEA-Research/grounding-dino-base``
blip2      BLIP-2 ``Salesforce/blip2-itm-vit-g`` (ITC)  ``IDEA-Research/grounding-dino-tiny``
tiny       seeded random tiny CLIP (built offline)      seeded random tiny Grounding DINO
tiny-blip2 seeded random tiny BLIP-2 (built offline)    seeded random tiny Grounding DINO
arch-*     real-size architectures, random weights      (speed benchmarks)
=========  ===========================================  ==================================

A preset file holds ``name``, ``description``, ``encoder`` (:class:`EncoderSpec` fields),
``detector`` (:class:`DetectorSpec` fields), ``downloads`` and ``random_weights``. Model
architectures built offline (``config``) are named files under ``comclip/model_configs/``.
This module is data only (no torch); :mod:`comclip.loading` turns specs into models.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from functools import cache
from pathlib import Path

from comclip.errors import InputError

PRESET_DIR = Path(__file__).resolve().parent / "presets"
MODEL_CONFIG_DIR = Path(__file__).resolve().parent / "model_configs"
ENCODER_BACKENDS = ("open_clip", "hf_clip", "slip", "blip2")

JSONDict = dict[str, "JSONValue"]
JSONValue = str | int | float | bool | None | list["JSONValue"] | JSONDict


@dataclass(frozen=True)
class EncoderSpec:
    backend: str  # "open_clip" | "hf_clip" | "slip" | "blip2"
    #: open_clip name (or ``hf-hub:ORG/NAME``); a transformers CLIP or BLIP-2 id; for slip a
    #: checkpoint path, release URL or release file name (``slip_base_100ep.pt``).
    model: str
    pretrained: str | None = None  # open_clip pretrained tag
    #: A model config in ``model_configs/<backend>/`` (an architecture built offline): open_clip's,
    #: or for blip2 a seeded random ``Blip2ForImageTextRetrieval``.
    config: str | None = None
    download_size: str | None = None  # e.g. "605 MB", for messages

    @property
    def random(self) -> bool:
        """Random weights: an open_clip architecture with no pretrained tag and no hub id, or a
        BLIP-2 built from a config."""
        if self.backend == "blip2":
            return self.config is not None
        return self.backend == "open_clip" and self.pretrained is None and not self.model.startswith("hf-hub:")

    @property
    def label(self) -> str:
        return f"{self.backend}:{self.model}" + (f"/{self.pretrained}" if self.pretrained else "") \
            + (" (random)" if self.random else "")


@dataclass(frozen=True)
class DetectorSpec:
    model: str  # hub id, or a name for a random model built offline from ``config``
    box_threshold: float = 0.35
    text_threshold: float = 0.25
    #: Image size the processor resizes to (None: the model's own setting).
    size: dict[str, int] | None = None
    #: Build a seeded random model from ``model_configs/grounding_dino/<config>.json`` instead of
    #: loading ``model`` from the hub.
    config: str | None = None
    #: With ``config``: save the built model once and load it back through ``from_pretrained``.
    roundtrip: bool = True
    download_size: str | None = None
    #: Forward precision: ``auto`` (bf16 autocast on CUDA, fp32 elsewhere), ``fp32`` or ``bf16``.
    precision: str = "auto"

    @property
    def random(self) -> bool:
        return self.config is not None


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    encoder: EncoderSpec
    detector: DetectorSpec
    downloads: str
    random_weights: bool = False


def _spec(cls: type, data: JSONDict, where: str) -> EncoderSpec | DetectorSpec:
    known = {f.name for f in fields(cls)}
    unknown = set(data) - known
    if unknown:
        raise InputError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    return cls(**data)


def preset_from_dict(data: JSONDict, where: str = "preset") -> Preset:
    enc, det = data.get("encoder"), data.get("detector")
    if not isinstance(enc, dict) or not isinstance(det, dict):
        raise InputError(f"{where}: needs 'encoder' and 'detector' objects")
    return Preset(name=str(data["name"]), description=str(data.get("description", "")),
                  encoder=_spec(EncoderSpec, enc, f"{where} encoder"),  # type: ignore[arg-type]
                  detector=_spec(DetectorSpec, det, f"{where} detector"),  # type: ignore[arg-type]
                  downloads=str(data.get("downloads", "")), random_weights=bool(data.get("random_weights", False)))


def _read_presets() -> dict[str, Preset]:
    found = {}
    for path in sorted(PRESET_DIR.glob("*.json")):
        preset = preset_from_dict(json.loads(path.read_text(encoding="utf-8")), str(path))
        found[preset.name] = preset
    order = ["default", "large", "tiny"]
    return dict(sorted(found.items(), key=lambda kv: (order.index(kv[0]) if kv[0] in order else len(order), kv[0])))


PRESETS: dict[str, Preset] = _read_presets()


def get_preset(name: str | Preset) -> Preset:
    if isinstance(name, Preset):
        return name
    try:
        return PRESETS[name]
    except KeyError:
        raise InputError(f"unknown preset {name!r}; choose one of: {', '.join(PRESETS)}") from None


@cache
def model_config(kind: str, name: str) -> JSONDict:
    """A model config shipped in ``model_configs/<kind>/<name>.json``."""
    path = MODEL_CONFIG_DIR / kind / f"{name}.json"
    if not path.is_file():
        raise InputError(f"unknown {kind} model config {name!r} (no {path.name} in {path.parent})")
    return json.loads(path.read_text(encoding="utf-8"))


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
        if backend == "slip" and clip_pretrained:
            raise InputError("a SLIP checkpoint takes no --clip-pretrained tag; name the file or URL with --clip-model")
        same = backend == base.encoder.backend and model == base.encoder.model and pretrained == base.encoder.pretrained
        encoder = base.encoder if same else EncoderSpec(backend, model, pretrained if backend == "open_clip" else None)
    spec = base.detector if detector is None else DetectorSpec(detector)
    return Preset(f"{base.name}+custom", f"{encoder.label} + {spec.model}", encoder, spec,
                  downloads=f"the named models ({encoder.model}, {spec.model}) unless cached",
                  random_weights=encoder.random or spec.random)
