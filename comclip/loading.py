"""Specs → models: device choice, hub access, seeded random models, clear failures.

Loading a hub model goes **cache first**: when every file it needs is in the local Hugging Face
cache (``HF_HUB_CACHE`` / ``HF_HOME``, read when loading), it is loaded with no network access at
all. Otherwise the hub is probed once with a real HTTPS request to ``HF_ENDPOINT`` (proxies from
the environment honoured; ``HF_HUB_OFFLINE`` or ``TRANSFORMERS_OFFLINE`` mean offline); when it
answers, the missing files are downloaded, else loading fails at once with one
:class:`ModelUnavailableError` naming only what is missing and its size.

Random-weight models (the ``tiny`` and ``arch-*`` presets) are built offline from the configs in
``comclip/model_configs/`` with a fixed seed. The tiny detector is saved once under
``COMCLIP_CACHE`` (default ``~/.cache/comclip``) and loaded back through the same
``from_pretrained`` path as real ones. Library logging is quietened during a load and restored
exactly afterwards.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from comclip.encoders import Encoder, HFCLIPEncoder, OpenCLIPEncoder
from comclip.errors import InputError, ModelUnavailableError
from comclip.ground import GroundingDINO
from comclip.presets import (
    ENCODER_BACKENDS,
    MODEL_CONFIG_DIR,
    DetectorSpec,
    EncoderSpec,
    JSONDict,
    Preset,
    get_preset,
    model_config,
)

TINY_SEED = 1234
PROBE_TIMEOUT_S = 3.0
#: Files a transformers model needs (first existing alternative of each group).
TRANSFORMERS_FILES = (("config.json",), ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin"),
                      ("preprocessor_config.json", "processor_config.json"), ("tokenizer_config.json",))
OPEN_CLIP_WEIGHTS = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")

_LOAD_LOCK = threading.RLock()


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


# -- the local cache and the hub ------------------------------------------------------------------

def _truthy(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def offline_by_env() -> bool:
    return _truthy("HF_HUB_OFFLINE") or _truthy("TRANSFORMERS_OFFLINE")


def hub_cache_dir() -> Path:
    """The Hugging Face hub cache as the environment says now."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "huggingface"
    return Path(home).expanduser() / "hub"


def hub_reachable(timeout: float = PROBE_TIMEOUT_S) -> bool:
    """A real HTTPS request to ``HF_ENDPOINT`` (through the environment's proxies); any HTTP answer
    means reachable; a TLS failure, refusal or timeout means not. Offline variables win."""
    if offline_by_env():
        return False
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/") + "/api/models?limit=1"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler())  # the proxies the environment names now
    try:
        with opener.open(urllib.request.Request(endpoint, method="HEAD"), timeout=timeout):
            return True
    except urllib.error.HTTPError:
        return True
    except (OSError, ValueError):
        return False


@dataclass(frozen=True)
class Download:
    """Something a spec needs from the hub: a repository and the files missing from the cache."""

    what: str  # e.g. "IDEA-Research/grounding-dino-tiny"
    repo: str
    files: tuple[str, ...]
    size: str | None = None

    def __str__(self) -> str:
        return self.what + (f" ({self.size})" if self.size else "")


def _cached(repo: str, alternatives: tuple[str, ...]) -> bool:
    from huggingface_hub import try_to_load_from_cache

    cache = hub_cache_dir()
    return any(isinstance(try_to_load_from_cache(repo, f, cache_dir=cache), str) for f in alternatives)


def _hub_files(spec: EncoderSpec | DetectorSpec) -> tuple[str, str, tuple[tuple[str, ...], ...]] | None:
    """(description, repo, file groups) a spec loads from the hub; None when nothing comes from it."""
    if isinstance(spec, DetectorSpec):
        return None if spec.random else (spec.model, spec.model, TRANSFORMERS_FILES)
    if spec.backend in ("hf_clip", "blip2"):
        return None if spec.random else (spec.model, spec.model, TRANSFORMERS_FILES)
    if spec.backend == "slip":
        return None  # not from the hub: see ``missing``
    if spec.model.startswith("hf-hub:"):
        return spec.model, spec.model[len("hf-hub:"):], (("open_clip_config.json",), OPEN_CLIP_WEIGHTS)
    if spec.pretrained is None:
        return None
    import open_clip

    cfg = open_clip.get_pretrained_cfg(spec.model, spec.pretrained)
    hub = cfg.get("hf_hub", "")
    what = f"open_clip {spec.model}/{spec.pretrained} weights"
    if not hub:
        return None  # a URL download into open_clip's own cache: left to open_clip
    repo, filename = os.path.split(hub.rstrip("/")) if not hub.endswith("/") else (hub.rstrip("/"), "")
    files = (filename,) if filename else OPEN_CLIP_WEIGHTS
    return f"{what} ({repo})", repo, (files,)


def missing(spec: EncoderSpec | DetectorSpec) -> Download | None:
    """What of a spec is not in the local cache (None: nothing is missing)."""
    if isinstance(spec, EncoderSpec) and spec.backend == "slip":
        from comclip.encoders.slip import pending_download

        url = pending_download(spec.model)
        return Download(f"SLIP checkpoint {url}", url, (url.rsplit("/", 1)[-1],), spec.download_size) if url else None
    found = _hub_files(spec)
    if found is None:
        return None
    what, repo, groups = found
    absent = tuple(g[0] for g in groups if not _cached(repo, g))
    return Download(what, repo, absent, spec.download_size) if absent else None


def missing_downloads(preset: str | Preset) -> list[str]:
    """What loading ``preset`` would download (empty when it is fully cached or random)."""
    p = get_preset(preset)
    return [str(d) for d in (missing(p.encoder), missing(p.detector)) if d is not None]


def preset_available(preset: str | Preset) -> bool:
    """True when ``preset`` can load now: random, fully cached, or the hub answers."""
    return not missing_downloads(preset) or hub_reachable()


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence library log lines and weight-loading progress bars; restore both exactly."""
    from transformers.utils import logging as hf_logging

    disabled = logging.root.manager.disable
    bars = hf_logging.is_progress_bar_enabled()
    logging.disable(logging.ERROR)
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        logging.disable(disabled)
        if bars:
            hf_logging.enable_progress_bar()


@contextlib.contextmanager
def _hub_access(spec: EncoderSpec | DetectorSpec, preset: Preset | None) -> Iterator[bool]:
    """Cache first: yields ``local`` (True: everything is cached, load with no network at all).

    When something is missing the hub is probed; unreachable → :class:`ModelUnavailableError`
    naming only what is missing."""
    import huggingface_hub.constants as hub_constants

    need = missing(spec)
    local = need is None
    if need is not None and not hub_reachable():
        raise ModelUnavailableError(
            f"could not load {need.what}: not in the local Hugging Face cache ({hub_cache_dir()}; missing "
            f"{', '.join(need.files)}{f', about {need.size}' if need.size else ''}) and the hub cannot be reached "
            "(offline). Connect once so it can be downloaded, or point HF_HOME at a cache that has it; "
            "`--preset tiny` runs offline with random weights")
    with _LOAD_LOCK, _quiet():
        old = hub_constants.HF_HUB_OFFLINE
        hub_constants.HF_HUB_OFFLINE = local or offline_by_env()
        try:
            yield local
        finally:
            hub_constants.HF_HUB_OFFLINE = old


def _failed(what: str, exc: BaseException) -> ModelUnavailableError:
    return ModelUnavailableError(f"could not load {what}: {' '.join(str(exc).split())[:300]}")


# -- random models ---------------------------------------------------------------------------------

def _cache_root() -> Path:
    return Path(os.environ.get("COMCLIP_CACHE", Path.home() / ".cache" / "comclip"))


def _digest(obj: object) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:12]


@contextlib.contextmanager
def _seeded(seed: int) -> Iterator[None]:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def random_vocab() -> list[str]:
    """Word-piece vocabulary of the random detectors: every letter and digit plus common words."""
    return (MODEL_CONFIG_DIR / "grounding_dino" / "random-vocab.txt").read_text(encoding="utf-8").splitlines()


_open_clip_registered = False


def _register_open_clip_configs() -> None:
    """Make ``model_configs/open_clip/*.json`` known to open_clip (read in place, nothing written)."""
    global _open_clip_registered
    if not _open_clip_registered:
        import open_clip

        open_clip.add_model_config(MODEL_CONFIG_DIR / "open_clip")
        _open_clip_registered = True


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
    with _seeded(TINY_SEED):
        model = GroundingDinoForObjectDetection(config).eval()
    image_processor = GroundingDinoImageProcessor(**({"size": spec.size} if spec.size else {}))
    return model, GroundingDinoProcessor(image_processor=image_processor, tokenizer=tokenizer)


def saved_once(name: str, key: object, save: Callable[[Path], None]) -> Path:
    """The folder ``COMCLIP_CACHE/<name>-<digest of key>``, filled once by ``save(folder)`` (written
    aside, then moved into place) and reused from then on."""
    folder = _cache_root() / f"{name}-{_digest(key)}"
    if (folder / "done").exists():
        return folder
    tmp = folder.with_name(folder.name + f".tmp{os.getpid()}.{threading.get_ident()}")
    save(tmp)
    (tmp / "done").write_text("ok")
    if not folder.exists():
        tmp.replace(folder)
    return folder


def _random_detector_dir(spec: DetectorSpec) -> Path:
    """Build (once) and save a seeded random Grounding DINO; return its folder."""
    def save(folder: Path) -> None:
        model, processor = build_random_detector(spec)
        model.save_pretrained(folder)
        processor.save_pretrained(folder)  # type: ignore[attr-defined]

    return saved_once(spec.model, [_detector_config(spec), spec.size, TINY_SEED, random_vocab()], save)


# -- loading ------------------------------------------------------------------------------------

def load_encoder(spec: EncoderSpec, device: torch.device, preset: Preset | None = None) -> Encoder:
    """Build the image–text model of a spec on a device."""
    if spec.backend == "open_clip":
        import open_clip

        what = f"open_clip model {spec.model!r}" + (f" (pretrained {spec.pretrained!r})" if spec.pretrained else "")
        with _hub_access(spec, preset):
            if spec.config is not None:
                _register_open_clip_configs()  # under the load lock
            try:
                with _seeded(TINY_SEED):
                    model, _, preprocess = open_clip.create_model_and_transforms(
                        spec.model, pretrained=spec.pretrained, device="cpu", cache_dir=str(hub_cache_dir()))
                tokenizer = open_clip.get_tokenizer(spec.model, cache_dir=str(hub_cache_dir()))
            except (OSError, RuntimeError, ValueError) as exc:
                raise _failed(what, exc) from None
        return OpenCLIPEncoder(model, preprocess, tokenizer, name=spec.label, device=device)
    if spec.backend == "hf_clip":
        from transformers import CLIPModel, CLIPProcessor

        with _hub_access(spec, preset) as local:
            try:
                kw = {"cache_dir": str(hub_cache_dir()), "local_files_only": local}
                model = CLIPModel.from_pretrained(spec.model, **kw)
                processor = CLIPProcessor.from_pretrained(spec.model, **kw)
            except (OSError, RuntimeError, ValueError) as exc:
                raise _failed(f"Hugging Face CLIP {spec.model!r}", exc) from None
        return HFCLIPEncoder(model, processor, name=spec.label, device=device)
    if spec.backend == "slip":
        from comclip.encoders.slip import load_slip_encoder

        return load_slip_encoder(spec.model, device, name=spec.label,
                                 downloads=preset.downloads if preset else spec.download_size)
    if spec.backend == "blip2":
        from comclip.encoders.blip2 import load_blip2_encoder

        return load_blip2_encoder(spec, device, preset)
    raise InputError(f"unknown encoder backend {spec.backend!r}; choose one of: {', '.join(ENCODER_BACKENDS)}")


def load_detector(spec: DetectorSpec, device: torch.device, preset: Preset | None = None, *,
                  box_threshold: float | None = None, text_threshold: float | None = None,
                  boxes_per_entity: int = 1) -> GroundingDINO:
    """Load Grounding DINO (hub id, or a seeded random one built from ``spec.config``) as a Detector."""
    from transformers import AutoModelForZeroShotObjectDetection, AutoProcessor

    with _hub_access(spec, preset) as local:
        if spec.random and not spec.roundtrip:
            model, processor = build_random_detector(spec)
        else:
            source = str(_random_detector_dir(spec)) if spec.random else spec.model
            kw = {} if spec.random else {"cache_dir": str(hub_cache_dir()), "local_files_only": local}
            try:
                model = AutoModelForZeroShotObjectDetection.from_pretrained(source, **kw)
                processor = AutoProcessor.from_pretrained(source, **kw)
            except (OSError, RuntimeError, ValueError) as exc:
                raise _failed(f"Grounding DINO {spec.model!r}", exc) from None
    if spec.size is not None and not spec.random:
        processor.image_processor.size = dict(spec.size)  # type: ignore[attr-defined]
    return GroundingDINO(
        model, processor, device=device, name=spec.model,
        box_threshold=spec.box_threshold if box_threshold is None else box_threshold,
        text_threshold=spec.text_threshold if text_threshold is None else text_threshold,
        boxes_per_entity=boxes_per_entity, precision=spec.precision)

