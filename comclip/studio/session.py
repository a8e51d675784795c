"""Serving many users: which presets the page offers, the loaded engines, the result cache and
the gate around model calls.

- **Presets**: the page (and the API) offer the presets with real weights that can be loaded here,
  plus the one the app started with; bench-only presets are never offered.
- **Engines**: one per preset, shared by every request. A preset loads on first use without
  holding up requests for presets already loaded (one lock per preset), and at most
  :data:`MAX_ENGINES` stay loaded (least recently used first out; the start preset stays).
- **Results**: a small LRU cache by (preset, image pixels, captions, graphs, options). Identical
  requests that arrive together are computed once: the others wait for the first one's result.
  Cache hits never wait for the model.
- **The gate**: at most :data:`CONCURRENCY` model calls run at once; checking inputs, loading a
  preset and serving cached results happen outside it.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from PIL import Image

from comclip.caches import LRUCache
from comclip.graph import SceneGraph
from comclip.images import LoadedImage, image_digest
from comclip.options import Options
from comclip.result import MatchResult
from comclip.studio.requests import Request

if TYPE_CHECKING:
    from comclip.engine import ComCLIP

#: Model calls that run at the same time (the engines are shared).
CONCURRENCY = int(os.environ.get("COMCLIP_CONCURRENCY", "1"))
#: Presets kept loaded at once.
MAX_ENGINES = int(os.environ.get("COMCLIP_MAX_ENGINES", "2"))
RESULT_CACHE_SIZE = 64


# -- presets ------------------------------------------------------------------------------------

def start_preset() -> str:
    """The preset the app starts with when none is named: ``COMCLIP_PRESET``, else ``default``."""
    return os.environ.get("COMCLIP_PRESET", "default")


def offered_presets(current: str) -> list[str]:
    """The presets the page's menu (and the API) offer: those with real weights that can be
    loaded here, plus ``current`` (e.g. ``tiny`` in offline mode)."""
    from comclip.loading import preset_available
    from comclip.presets import all_presets

    names = [name for name, p in all_presets().items() if not p.random_weights and preset_available(p)]
    return names + ([current] if current not in names else [])


# -- the engines --------------------------------------------------------------------------------

class Engines:
    """The loaded engines, one per preset, shared by all requests.

    A preset loads on first use; requests for other, loaded presets go on meanwhile (one lock
    per preset, not one for all). At most ``capacity`` stay loaded; ``pinned`` is never dropped.
    """

    def __init__(self, loader: Callable[[str], ComCLIP] | None = None, capacity: int = MAX_ENGINES,
                 pinned: str | None = None) -> None:
        self._engines: OrderedDict[str, ComCLIP] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[str, threading.Lock] = {}
        self._loader = loader or _load_preset
        self.capacity = max(1, capacity)
        self.pinned = pinned

    def add(self, name: str, engine: ComCLIP) -> None:
        with self._lock:
            self._engines[name] = engine
            self._engines.move_to_end(name)
            self._evict()

    def loaded(self) -> list[str]:
        with self._lock:
            return list(self._engines)

    def _evict(self) -> None:
        while len(self._engines) > self.capacity:
            victim = next((n for n in self._engines if n != self.pinned), None)
            if victim is None:
                return
            del self._engines[victim]  # requests still holding it finish; then it is freed

    def get(self, name: str) -> ComCLIP:
        with self._lock:
            engine = self._engines.get(name)
            if engine is not None:
                self._engines.move_to_end(name)
                return engine
            lock = self._loading.setdefault(name, threading.Lock())
        with lock:  # one load per preset; later requests for it wait and then share it
            with self._lock:
                engine = self._engines.get(name)
            if engine is None:
                engine = self._loader(name)
                self.add(name, engine)
        return engine


def _load_preset(name: str) -> ComCLIP:
    import comclip

    return comclip.load(name, device=os.environ.get("COMCLIP_DEVICE", "auto"))


# -- results ------------------------------------------------------------------------------------

@dataclass
class Scored:
    """One request's outcome: the result, the (possibly downscaled) image and what to tell the user."""

    result: MatchResult
    image: LoadedImage
    notices: list[str] = field(default_factory=list)
    seconds: float = 0.0
    cached: bool = False


class ResultCache:
    """Results by request (see :meth:`key`) in an LRU cache (:class:`comclip.caches.LRUCache`);
    identical requests in flight at the same time are computed once (the others wait for it)."""

    def __init__(self, size: int = RESULT_CACHE_SIZE) -> None:
        self._items: LRUCache[str, MatchResult] = LRUCache(size)
        self._pending: dict[str, Future] = {}
        self._lock = threading.Lock()  # guards _pending (and the check-then-claim of a key)
        self.computed = 0  # how many results were computed (not served from cache or a twin request)

    @staticmethod
    def key(preset: str, image: Image.Image, captions: Sequence[str], graphs: Sequence[SceneGraph | None] | None,
            options: Options) -> str:
        """The request's identity: equal options (an :class:`Options` value) make equal keys."""
        graph_json = [None if g is None else g.to_dict() for g in graphs] if graphs else None
        blob = json.dumps([preset, image_digest(image), list(captions), graph_json, options.to_dict()],
                          sort_keys=True, default=str)
        return hashlib.sha1(blob.encode()).hexdigest()

    def __len__(self) -> int:
        return len(self._items)


    def get_or_compute(self, key: str, compute: Callable[[], MatchResult]) -> tuple[MatchResult, bool]:
        """(value, served) — ``served`` is True when it came from the cache or a twin request."""
        value = self._items.get(key)
        if value is not None:
            return value, True
        with self._lock:
            value = self._items.get(key)  # stored meanwhile (it is stored before its claim is released)
            if value is not None:
                return value, True
            pending = self._pending.get(key)
            owner = pending is None
            if owner:
                pending = self._pending[key] = Future()
        if not owner:
            return pending.result(), True
        try:
            value = compute()
        except BaseException as exc:
            with self._lock:
                del self._pending[key]
            pending.set_exception(exc)
            raise
        self._items.put(key, value)
        with self._lock:
            del self._pending[key]
            self.computed += 1
        pending.set_result(value)
        return value, False


def _direct(engine: ComCLIP, *args: Any, **kwargs: Any) -> MatchResult:
    return engine.match(*args, **kwargs)


def score(engine: ComCLIP, request: Request, *, cache: ResultCache | None = None, run: Callable[..., Any] | None = None,
          gate: threading.Semaphore | None = None) -> Scored:
    """Score a checked request with the engine (through ``run``, e.g. a ZeroGPU wrapper, inside
    ``gate``), using the cache; the notices say what the user should know about the result."""
    call = run or _direct
    start = time.perf_counter()

    def compute() -> MatchResult:
        graphs = list(request.graphs) if request.graphs else None
        if gate is None:
            return call(engine, request.image, list(request.captions), graphs, request.options)
        with gate:
            return call(engine, request.image, list(request.captions), graphs, request.options)

    if cache is None:
        result, cached = compute(), False
    else:
        key = ResultCache.key(engine.preset_name, request.image.image, request.captions, request.graphs,
                              request.options)
        result, cached = cache.get_or_compute(key, compute)
    limit = getattr(getattr(engine, "encoder", None), "context_length", None)
    notices = list(request.notices) + result_notices(result, limit)
    return Scored(result, request.image, notices, time.perf_counter() - start, cached)


def result_notices(result: MatchResult, context_length: int | None = None) -> list[str]:
    """Plain-language notes about a result: truncated captions, no entities, entities not found."""
    notes = []
    limit = f"{context_length} tokens" if context_length else "its token limit"
    for i, c in enumerate(result.captions, start=1):
        if c.truncated:
            notes.append(f"Caption {i} is longer than the text encoder reads ({limit}); it was truncated and "
                         "only its beginning was scored.")
        if not c.graph.entities:
            notes.append(f"Caption {i} (“{c.caption}”): no entity could be parsed from it, so its ComCLIP score "
                         "equals its CLIP score.")
        missing = [k.text for k in c.components if k.kind == "entity" and not k.grounded]
        if missing:
            notes.append(f"Caption {i}: not found in the image, so the whole image stands in for "
                         f"{', '.join(f'“{m}”' for m in missing)}.")
    return notes
