"""Presets: named pairs of (image–text model, detector), as data.

The built-in presets are the JSON files beside this module (package data, shipped in the wheel):

==========  ===========================================  ==================================
preset      image–text model                             detector
==========  ===========================================  ==================================
default     open_clip ``ViT-B-32-quickgelu``/``openai``  ``IDEA-Research/grounding-dino-tiny``
fast        as ``default``                               as ``default``, reading 384 px images (CPU)
large       open_clip ``ViT-L-14-quickgelu``/``openai``  ``IDEA-Research/grounding-dino-base``
slip-base   SLIP ViT-B/16 release checkpoint            ``IDEA-Research/grounding-dino-tiny``
slip-large  SLIP ViT-L/16 release checkpoint            ``IDEA-Research/grounding-dino-base``
blip2       BLIP-2 ``Salesforce/blip2-itm-vit-g`` (ITC)  ``IDEA-Research/grounding-dino-tiny``
tiny        seeded random tiny CLIP (built offline)      seeded random tiny Grounding DINO
tiny-blip2  seeded random tiny BLIP-2 (built offline)    seeded random tiny Grounding DINO
arch-*      real-size architectures, random weights      (speed benchmarks)
==========  ===========================================  ==================================

A preset file holds ``name`` (default: the file's stem), ``description``, ``encoder``
(:class:`EncoderSpec` fields), ``detector`` (:class:`DetectorSpec` fields; the thresholds default
to :data:`DEFAULT_BOX_THRESHOLD` / :data:`DEFAULT_TEXT_THRESHOLD`), ``downloads`` and
``random_weights``. Model architectures built offline (``config``) are named files under
``comclip/model_configs/`` (package data too).

Your own presets, as open_clip's ``add_model_config`` adds model configs:

- a path: ``get_preset("my/preset.json")`` (the CLI's ``--preset my/preset.json``, the app's
  ``COMCLIP_PRESET``) reads the file (it is not registered: nothing else changes);
- a folder: every ``*.json`` in the folders named by ``COMCLIP_PRESETS_DIR`` (``os.pathsep``
  separated, read at every lookup), or registered explicitly with :func:`add_presets` (a file or a
  folder; the one registry of this module, :data:`_ADDED`).

A user preset with a built-in's name replaces it. :func:`list_presets` names them all. Every lookup
returns a copy: changing what it returns changes nothing else.
This module is data only (no torch); :mod:`comclip.loading` turns specs into models.
"""

from __future__ import annotations

import copy
import json
import os
from dataclasses import dataclass, field, fields
from functools import cache
from pathlib import Path

from comclip.errors import InputError
from comclip.options import OptionField, OptionValue

PRESET_DIR = Path(__file__).resolve().parent
MODEL_CONFIG_DIR = PRESET_DIR.parent / "model_configs"
#: Folders of user preset files (``os.pathsep`` separated).
PRESETS_DIR_ENV = "COMCLIP_PRESETS_DIR"
#: Presets listed first (then the rest by name).
LISTED_FIRST = ("default", "fast", "large", "tiny")

#: Grounding DINO's own thresholds (the official demo's), used by every preset that names none.
DEFAULT_BOX_THRESHOLD = 0.35
DEFAULT_TEXT_THRESHOLD = 0.25
DETECTOR_PRECISIONS: tuple[str, ...] = ("auto", "fp32", "bf16")
#: The image–text model's precision (``--clip-precision``): ``auto`` is fp16 on CUDA, bf16 on a CPU
#: that computes it natively (as the detector's ``auto``), fp32 elsewhere.
ENCODER_PRECISIONS: tuple[str, ...] = ("auto", "fp32", "fp16", "bf16")
DETECTOR_BACKENDS: tuple[str, ...] = ("auto", "torch", "transformers")
#: Smallest ``--detector-size`` (Swin's four stages and Grounding DINO's extra level need ≥ 64 px).
MIN_DETECTOR_SIZE = 64
#: Grounding DINO's own resize rule: shortest edge 800, longest at most 1333.
DETECTOR_LONGEST_PER_SHORTEST = 1333 / 800

JSONDict = dict[str, "JSONValue"]
JSONValue = str | int | float | bool | None | list["JSONValue"] | JSONDict


@dataclass(frozen=True)
class EncoderSpec:
    #: A name in :data:`comclip.encoders.BACKENDS`: ``open_clip``, ``hf_clip``, ``slip``, ``blip2``.
    backend: str
    #: open_clip name (or ``hf-hub:ORG/NAME``); a transformers CLIP or BLIP-2 id; for slip a
    #: checkpoint path, release URL or release file name (``slip_base_100ep.pt``).
    model: str
    pretrained: str | None = None  # open_clip pretrained tag
    #: A model config in ``model_configs/<backend>/`` (an architecture built offline): open_clip's,
    #: or for blip2 a seeded random ``Blip2ForImageTextRetrieval``.
    config: str | None = None
    download_size: str | None = None  # e.g. "605 MB", for messages
    #: The model's weights and activations: ``auto`` (fp16 on CUDA, bf16 on a CPU with native bf16,
    #: fp32 elsewhere), ``fp32``, ``fp16`` or ``bf16`` (:data:`ENCODER_PRECISIONS`).
    precision: str = "auto"

    def __post_init__(self) -> None:
        if self.precision not in ENCODER_PRECISIONS:
            raise InputError(f"unknown image-text model precision {self.precision!r}; choose one of: "
                             f"{', '.join(ENCODER_PRECISIONS)}")


def _setting(default: OptionValue, help: str, *, choices: tuple[str, ...] | None = None, type: type = str,
             minimum: float | None = None) -> OptionValue:
    """A detector setting a user may change when loading (the CLI's ``--detector-<name>`` flag); a
    ``None`` default makes ``None`` a valid value (the model's own)."""
    return field(default=default, metadata={"setting": {"type": type, "help": help, "choices": choices,
                                                        "optional": default is None, "minimum": minimum}})


@dataclass(frozen=True)
class DetectorSpec:
    model: str  # hub id, or a name for a random model built offline from ``config``
    box_threshold: float = DEFAULT_BOX_THRESHOLD
    text_threshold: float = DEFAULT_TEXT_THRESHOLD
    #: The image processor's ``size`` rule as saved with a model built offline (e.g.
    #: ``{"shortest_edge": 128, "longest_edge": 256}``; None: the processor's own).
    processor_size: dict[str, int] | None = None
    #: Build a seeded random model from ``model_configs/grounding_dino/<config>.json`` instead of
    #: loading ``model`` from the hub.
    config: str | None = None
    #: With ``config``: save the built model once and load it back through ``from_pretrained``.
    roundtrip: bool = True
    download_size: str | None = None
    # -- settings (one line each; :meth:`settings` lists them, the CLI makes a flag of each) --
    precision: str = _setting("auto", "detector forward precision: auto (bf16 autocast on CUDA and on a CPU with "
                              "native bf16: AVX-512 BF16 or AMX; fp32 elsewhere), fp32 or bf16",
                              choices=DETECTOR_PRECISIONS)
    backend: str = _setting("auto", "detector forward: auto (= torch for Grounding DINO), torch (the image part once "
                            "per image, gather sampling on the CPU; same results) or transformers (the model's own "
                            "forward)", choices=DETECTOR_BACKENDS)
    size: int | None = _setting(None, "shortest image edge in pixels the detector reads (default: the model's own, "
                                "800 for Grounding DINO; the longest edge is capped at size × 1333/800). Smaller is "
                                "faster (time ~ pixels) but finds small objects less well: boxes and scores change",
                                type=int, minimum=MIN_DETECTOR_SIZE)

    def __post_init__(self) -> None:
        for s in self.settings():
            try:
                s.check(getattr(self, s.name))
            except InputError as exc:  # "unknown size" → "unknown detector size"
                raise InputError(str(exc).replace(s.label, "detector " + s.label, 1)) from None

    @property
    def random(self) -> bool:
        return self.config is not None

    def size_rule(self) -> dict[str, int] | None:
        """The image processor's ``size`` that :attr:`size` asks for (None: keep the processor's)."""
        if self.size is None:
            return None
        return {"shortest_edge": self.size, "longest_edge": round(self.size * DETECTOR_LONGEST_PER_SHORTEST)}

    @classmethod
    def settings(cls) -> tuple[OptionField, ...]:
        """The detector settings a user may change when loading, with their metadata (flag
        ``--detector-<name>``)."""
        return tuple(OptionField(name=f.name, default=f.default, flag="--detector-" + f.name.replace("_", "-"),
                                 **f.metadata["setting"])
                     for f in fields(cls) if "setting" in f.metadata)


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    encoder: EncoderSpec
    detector: DetectorSpec
    downloads: str
    random_weights: bool = False


# -- reading -----------------------------------------------------------------------------------

def _spec(cls: type, data: JSONDict, where: str) -> EncoderSpec | DetectorSpec:
    known = {f.name for f in fields(cls)}
    unknown = set(data) - known
    if unknown:
        raise InputError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(known))}")
    try:
        return cls(**data)
    except TypeError as exc:  # a required key left out
        raise InputError(f"{where}: {exc}") from None
    except InputError as exc:
        raise InputError(f"{where}: {exc}") from None


def preset_from_dict(data: JSONDict, where: str = "preset", *, name: str | None = None) -> Preset:
    """A preset from its JSON form; ``name`` is used when the data names none."""
    if not isinstance(data, dict):
        raise InputError(f"{where}: a preset is a JSON object")
    enc, det = data.get("encoder"), data.get("detector")
    if not isinstance(enc, dict) or not isinstance(det, dict):
        raise InputError(f"{where}: needs 'encoder' and 'detector' objects")
    given = data.get("name", name)
    if not isinstance(given, str) or not given:
        raise InputError(f"{where}: needs a 'name'")
    return Preset(name=given, description=str(data.get("description", "")),
                  encoder=_spec(EncoderSpec, enc, f"{where} encoder"),  # type: ignore[arg-type]
                  detector=_spec(DetectorSpec, det, f"{where} detector"),  # type: ignore[arg-type]
                  downloads=str(data.get("downloads", "")), random_weights=bool(data.get("random_weights", False)))


def read_preset(path: str | os.PathLike) -> Preset:
    """A preset file (its name defaults to the file's stem)."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise InputError(f"preset file not found: {p}")
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"cannot read preset file {p}: {exc}") from None
    return preset_from_dict(data, str(p), name=p.stem)


def _read_folder(folder: Path) -> dict[str, Preset]:
    if not folder.is_dir():
        raise InputError(f"preset folder not found: {folder} (from {PRESETS_DIR_ENV} or add_presets)")
    return {p.name: p for p in map(read_preset, sorted(folder.glob("*.json")))}


@cache
def _builtin() -> dict[str, Preset]:
    return _read_folder(PRESET_DIR)


def builtin_presets() -> dict[str, Preset]:
    """The presets shipped with the package."""
    return copy.deepcopy(_builtin())


#: Presets registered with :func:`add_presets`, by name (later registrations win).
_ADDED: dict[str, Preset] = {}


def add_presets(path: str | os.PathLike) -> list[str]:
    """Register a preset file, or every ``*.json`` in a folder; returns their names."""
    p = Path(path).expanduser()
    if not p.exists():
        raise InputError(f"no preset file or folder {p}")
    found = _read_folder(p) if p.is_dir() else {(preset := read_preset(p)).name: preset}
    _ADDED.update(found)
    return list(found)


def _env_presets() -> dict[str, Preset]:
    found: dict[str, Preset] = {}
    for folder in filter(None, os.environ.get(PRESETS_DIR_ENV, "").split(os.pathsep)):
        found.update(_read_folder(Path(folder).expanduser()))
    return found


def all_presets() -> dict[str, Preset]:
    """Every preset by name — built-in, then :envvar:`COMCLIP_PRESETS_DIR`, then added (later ones
    win) — in listing order."""
    found = copy.deepcopy({**_builtin(), **_env_presets(), **_ADDED})
    rank = {name: i for i, name in enumerate(LISTED_FIRST)}
    return dict(sorted(found.items(), key=lambda kv: (rank.get(kv[0], len(rank)), kv[0])))


def list_presets() -> list[str]:
    """The names :func:`get_preset` (and ``comclip.load``) accept, besides a preset file's path."""
    return list(all_presets())


def names_help() -> str:
    """The presets in one line, for help texts: real weights first, then random ones."""
    presets = all_presets().values()
    real = [p.name for p in presets if not p.random_weights]
    random = [p.name for p in presets if p.random_weights]
    return ", ".join(real) + (f"; random weights, offline: {', '.join(random)}" if random else "")


def is_preset_file(name: str) -> bool:
    return name.endswith(".json") or os.sep in name or (os.altsep is not None and os.altsep in name)


def get_preset(name: str | os.PathLike | Preset) -> Preset:
    """A preset by name (a copy), or read from a preset file (not registered: :func:`add_presets` does that)."""
    if isinstance(name, Preset):
        return name
    if isinstance(name, os.PathLike) or is_preset_file(name):
        return read_preset(name)
    found = all_presets()
    try:
        return found[name]
    except KeyError:
        raise InputError(f"unknown preset {name!r}; choose one of: {', '.join(found)} (or a preset .json file)"
                         ) from None


# -- model configs -----------------------------------------------------------------------------

def model_config(kind: str, name: str) -> JSONDict:
    """A model config shipped in ``model_configs/<kind>/<name>.json`` (a copy)."""
    return copy.deepcopy(_model_config(kind, name))


@cache
def _model_config(kind: str, name: str) -> JSONDict:
    path = MODEL_CONFIG_DIR / kind / f"{name}.json"
    if not path.is_file():
        raise InputError(f"unknown {kind} model config {name!r} (no {path.name} in {path.parent})")
    return json.loads(path.read_text(encoding="utf-8"))


@cache
def random_vocab() -> tuple[str, ...]:
    """Word-piece vocabulary of the random detectors and BLIP-2: every letter and digit plus common words."""
    text = (MODEL_CONFIG_DIR / "grounding_dino" / "random-vocab.txt").read_text(encoding="utf-8")
    return tuple(text.splitlines())
