"""The network and the local caches, below every loader: hub access, ComCLIP's own cache, seeds.

Loading a hub model goes **cache first**: when every file it needs is in the local Hugging Face
cache (``HF_HUB_CACHE`` / ``HF_HOME``, read when loading), it is loaded with no network access at
all (:func:`hub_access` yields ``local``). Otherwise the hub is probed once with a real HTTPS
request to ``HF_ENDPOINT`` (proxies from the environment honoured; ``HF_HUB_OFFLINE`` or
``TRANSFORMERS_OFFLINE`` mean offline); when it answers, the missing files are downloaded, else
loading fails at once with one :class:`~comclip.errors.ModelUnavailableError` naming only what is
missing and its size.

ComCLIP's own cache (``COMCLIP_CACHE``, default ``~/.cache/comclip``) holds random models saved
once (:func:`saved_once`) and downloaded SLIP checkpoints. Random models are built under
:func:`seeded` with :data:`TINY_SEED`. Library logging is quietened during a load and restored
exactly afterwards. Used by :mod:`comclip.loading` and the encoder backends; imports neither.
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
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from comclip.errors import RUN_OFFLINE, ModelUnavailableError

TINY_SEED = 1234
PROBE_TIMEOUT_S = 3.0
#: Files a transformers model needs (first existing alternative of each group).
TRANSFORMERS_FILES = (("config.json",), ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin"),
                      ("preprocessor_config.json", "processor_config.json"), ("tokenizer_config.json",))

LOAD_LOCK = threading.RLock()


# -- the hub ----------------------------------------------------------------------------------------

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
    """Something a spec needs from the network: a repository (or URL) and the files missing from the cache."""

    what: str  # e.g. "IDEA-Research/grounding-dino-tiny"
    repo: str
    files: tuple[str, ...]
    size: str | None = None

    def __str__(self) -> str:
        return self.what + (f" ({self.size})" if self.size else "")


def _cached(repo: str, alternatives: Sequence[str]) -> bool:
    from huggingface_hub import try_to_load_from_cache

    cache = hub_cache_dir()
    return any(isinstance(try_to_load_from_cache(repo, f, cache_dir=cache), str) for f in alternatives)


def missing_files(what: str, repo: str, groups: Sequence[Sequence[str]], size: str | None = None
                  ) -> Download | None:
    """What of a hub repository is not in the local cache: for each group of alternative file
    names, the first one when none of them is cached (None: nothing is missing)."""
    absent = tuple(g[0] for g in groups if not _cached(repo, g))
    return Download(what, repo, absent, size) if absent else None


@contextlib.contextmanager
def quiet() -> Iterator[None]:
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
def hub_access(need: Download | None) -> Iterator[bool]:
    """Load under this, cache first: yields ``local`` (True: ``need`` is None, everything is cached;
    load with no network at all). When something is missing the hub is probed; unreachable →
    :class:`ModelUnavailableError` naming only what is missing."""
    import huggingface_hub.constants as hub_constants

    local = need is None
    if need is not None and not hub_reachable():
        raise ModelUnavailableError(
            f"could not load {need.what}: not in the local Hugging Face cache ({hub_cache_dir()}; missing "
            f"{', '.join(need.files)}{f', about {need.size}' if need.size else ''}) and the hub cannot be reached "
            "(offline). Connect once so it can be downloaded, or point HF_HOME at a cache that has it",
            hint=RUN_OFFLINE)
    with LOAD_LOCK, quiet():
        old = hub_constants.HF_HUB_OFFLINE
        hub_constants.HF_HUB_OFFLINE = local or offline_by_env()
        try:
            yield local
        finally:
            hub_constants.HF_HUB_OFFLINE = old


def load_failed(what: str, exc: BaseException) -> ModelUnavailableError:
    """The one-line error for a model that failed to load (the library's reason, shortened)."""
    return ModelUnavailableError(f"could not load {what}: {' '.join(str(exc).split())[:300]}")


# -- ComCLIP's own cache and seeded builds ---------------------------------------------------------

def cache_root() -> Path:
    """``COMCLIP_CACHE`` (default ``~/.cache/comclip``), as the environment says now."""
    return Path(os.environ.get("COMCLIP_CACHE", Path.home() / ".cache" / "comclip"))


def _digest(obj: object) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:12]


def saved_once(name: str, key: object, save: Callable[[Path], None]) -> Path:
    """The folder ``COMCLIP_CACHE/<name>-<digest of key>``, filled once by ``save(folder)`` (written
    aside, then moved into place) and reused from then on."""
    folder = cache_root() / f"{name}-{_digest(key)}"
    if (folder / "done").exists():
        return folder
    tmp = folder.with_name(folder.name + f".tmp{os.getpid()}.{threading.get_ident()}")
    save(tmp)
    (tmp / "done").write_text("ok")
    if not folder.exists():
        tmp.replace(folder)
    return folder


@contextlib.contextmanager
def seeded(seed: int = TINY_SEED) -> Iterator[None]:
    """Torch's CPU random state set to ``seed`` inside, restored afterwards."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield
