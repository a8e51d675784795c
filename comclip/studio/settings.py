"""The app's settings, read once at start into one value (:class:`Settings`).

Every setting has an environment variable (``COMCLIP_*``, ``GRADIO_SERVER_*``) and the command
line may override some (``python app.py --preset … --host … --port … --run … --run-root …``). Nothing in
``comclip.studio`` reads the environment anywhere else: the app reads it once
(:meth:`Settings.from_env`) and hands the value to the service; tests build the value directly.

:class:`Limits` — what a request may hold (captions, images, pixels, upload size) — is part of
it, with the defaults that the checks (:mod:`comclip.studio.checks`) and the API's docs use.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from comclip.errors import InputError

#: The preset the app starts with on a CPU when none is named: the default models, their detector
#: reading smaller images (seconds per click instead of tens on 2 cores; see the README's presets).
CPU_START_PRESET = "fast"
#: The preset the app starts with on a GPU when none is named.
GPU_START_PRESET = "default"


@dataclass(frozen=True)
class Limits:
    """What one request may hold."""

    min_captions: int = 2
    max_captions: int = 8
    #: Longest caption accepted. The text encoder reads 77 tokens (about 300 characters of English);
    #: longer captions cost parsing and grounding time for words the encoder never sees.
    max_caption_chars: int = 300
    #: Images with more pixels than this are downscaled (aspect kept) before scoring, with a notice.
    pixel_cap: int = 4_000_000
    #: Images that cannot be decoded at reduced size (PNG, WebP, …) are refused above this many
    #: pixels (checked from the file header, before decoding); JPEGs are decoded reduced.
    max_decode_pixels: int = 40_000_000
    #: Largest upload the app accepts (Gradio's ``max_file_size``).
    max_upload: str = "20mb"
    #: Images side by side in the "Two images" mode and ``/match_grid``.
    min_images: int = 2
    max_images: int = 4


#: The limits when nothing is configured (what the checks use unless told otherwise).
LIMITS = Limits()


@dataclass(frozen=True)
class Settings:
    """Everything the app is configured with, read once at start."""

    #: The preset loaded at start (a name or a preset file); None: :meth:`start_preset` decides.
    preset: str | None = None
    #: Where the models run: ``auto`` (cuda > mps > cpu), ``cpu``, ``cuda``, ``cuda:N``, ``mps``.
    device: str = "auto"
    #: Model calls that run at the same time (the engines are shared).
    concurrency: int = 1
    #: Presets kept loaded at once (least recently used first out; the start preset stays).
    max_engines: int = 2
    host: str | None = None
    port: int | None = None
    #: A finished benchmark run (eval's ``--out``) shown in the "Explore a run" tab at start; it and
    #: the folders under it may be opened by path or link (``?run=…&example=…``).
    run: str | None = None
    #: A folder under which any run may be opened by path or link (None: only :attr:`run`'s). No other
    #: folder is opened: a link cannot make the app read an arbitrary path.
    run_root: str | None = None
    #: Compute ahead what the next Score click will need while the model is free — an uploaded image's
    #: detector part, the typed captions' texts and boxes — so the click finds it done (never on ZeroGPU;
    #: a click for something else stops a guess). Off: each click computes everything itself.
    prepare: bool = True
    limits: Limits = field(default_factory=Limits)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **given: Any) -> Settings:
        """The settings from the environment (:data:`ENVIRONMENT`), then ``given`` (e.g. the
        command line's; None values are ignored). A value that is not a number where one is due is
        one InputError naming the variable."""
        env = os.environ if env is None else env
        top: dict[str, Any] = {}
        limits: dict[str, Any] = {}
        for name, (attr, kind) in ENVIRONMENT.items():
            raw = env.get(name, "").strip()
            if not raw:
                continue
            try:
                value = kind(raw)
            except ValueError:
                due = "0 or 1" if kind is _flag else "a whole number"
                raise InputError(f"{name} must be {due}, got {raw!r}") from None
            (limits if attr in _LIMIT_NAMES else top)[attr] = value
        top.update({k: v for k, v in given.items() if v is not None})
        return cls(**top, limits=replace(LIMITS, **limits))

    def start_preset(self) -> str:
        """The preset to load at start: the one named, else :data:`GPU_START_PRESET` — or
        :data:`CPU_START_PRESET` when the models would run on a CPU."""
        if self.preset:
            return self.preset
        from comclip.loading import resolve_device

        return CPU_START_PRESET if resolve_device(self.device).type == "cpu" else GPU_START_PRESET


_LIMIT_NAMES = {f.name for f in fields(Limits)}


def _flag(raw: str) -> bool:
    """An on/off environment value: ``1`` (or true, yes, on) or ``0`` (false, no, off)."""
    word = raw.lower()
    if word in ("1", "true", "yes", "on"):
        return True
    if word in ("0", "false", "no", "off"):
        return False
    raise ValueError(raw)

#: Environment variable → (setting, type). The command line's ``--preset/--host/--port/--run/--run-root`` win.
ENVIRONMENT: dict[str, tuple[str, type]] = {
    "COMCLIP_PRESET": ("preset", str),
    "COMCLIP_DEVICE": ("device", str),
    "COMCLIP_CONCURRENCY": ("concurrency", int),
    "COMCLIP_MAX_ENGINES": ("max_engines", int),
    "GRADIO_SERVER_NAME": ("host", str),
    "GRADIO_SERVER_PORT": ("port", int),
    "COMCLIP_RUN": ("run", str),
    "COMCLIP_RUN_ROOT": ("run_root", str),
    "COMCLIP_PREPARE": ("prepare", _flag),
    "COMCLIP_PIXEL_CAP": ("pixel_cap", int),
    "COMCLIP_MAX_DECODE_PIXELS": ("max_decode_pixels", int),
    "COMCLIP_MAX_CAPTION_CHARS": ("max_caption_chars", int),
    "COMCLIP_MAX_UPLOAD": ("max_upload", str),
}
