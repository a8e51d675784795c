"""Serving many users: which presets the page offers, the loaded engines, the result cache and
the gate around model calls.

- **Presets**: the page (and the API) offer the presets with real weights that can be loaded here,
  plus the one the app started with; bench-only presets are never offered.
- **Engines**: one per preset, shared by every request. A preset loads on first use without
  holding up requests for presets already loaded (one lock per preset), and at most
  :data:`MAX_ENGINES` stay loaded (least recently used first out; the start preset stays).
- **Results**: a small LRU cache by (preset, image pixels, captions, graphs, options). Identical
  requests that arrive together are computed once: the others wait for the first one's result.
  Cache hits never wait for the model. The examples' results are computed once at start and
  pinned (never evicted), so clicking an example shows its result at once.
- **Pace**: how long the model's stages took so far (per phrase set grounded, and the rest), so a
  long request can say what it is doing and about how long it will take.
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
    from comclip.engine import ComCLIP, OnStage

#: Model calls that run at the same time (the engines are shared).
CONCURRENCY = int(os.environ.get("COMCLIP_CONCURRENCY", "1"))
#: Presets kept loaded at once.
MAX_ENGINES = int(os.environ.get("COMCLIP_MAX_ENGINES", "2"))
RESULT_CACHE_SIZE = 64


# -- presets ------------------------------------------------------------------------------------

#: The preset the app starts with on a CPU when none is named: the default models, their detector
#: reading smaller images (seconds per click instead of tens on 2 cores; see the README's presets).
CPU_START_PRESET = "fast"


def start_preset() -> str:
    """The preset the app starts with when none is named: ``COMCLIP_PRESET``, else ``default`` —
    or :data:`CPU_START_PRESET` when the models would run on a CPU (``COMCLIP_DEVICE``)."""
    named = os.environ.get("COMCLIP_PRESET")
    if named:
        return named
    from comclip.loading import resolve_device

    on_cpu = resolve_device(os.environ.get("COMCLIP_DEVICE", "auto")).type == "cpu"
    return CPU_START_PRESET if on_cpu else "default"


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
    key: str | None = None  # the request's identity in the result cache (None: not cached)


class ResultCache:
    """Results by request (see :meth:`key`) in an LRU cache (:class:`comclip.caches.LRUCache`);
    identical requests in flight at the same time are computed once (the others wait for it)."""

    def __init__(self, size: int = RESULT_CACHE_SIZE) -> None:
        self._items: LRUCache[str, MatchResult] = LRUCache(size)
        self._pinned: dict[str, MatchResult] = {}  # the examples' results: never evicted
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
        return len(self._items) + len(self._pinned)

    def get(self, key: str) -> MatchResult | None:
        pinned = self._pinned.get(key)
        return pinned if pinned is not None else self._items.get(key)

    def pinned(self) -> int:
        """How many results are pinned."""
        return len(self._pinned)

    def get_or_compute(self, key: str, compute: Callable[[], MatchResult], *, pin: bool = False
                       ) -> tuple[MatchResult, bool]:
        """(value, served) — ``served`` is True when it came from the cache or a twin request.
        ``pin``: keep the value for good (the examples' results), whoever computed it."""
        value = self.get(key)
        if value is not None:
            return self._pin(key, value) if pin else value, True
        with self._lock:
            value = self.get(key)  # stored meanwhile (it is stored before its claim is released)
            if value is not None:
                return self._pin(key, value) if pin else value, True
            pending = self._pending.get(key)
            owner = pending is None
            if owner:
                pending = self._pending[key] = Future()
        if not owner:
            value = pending.result()
            return self._pin(key, value) if pin else value, True
        try:
            value = compute()
        except BaseException as exc:
            with self._lock:
                del self._pending[key]
            pending.set_exception(exc)
            raise
        if pin:
            self._pin(key, value)
        else:
            self._items.put(key, value)
        with self._lock:
            del self._pending[key]
            self.computed += 1
        pending.set_result(value)
        return value, False

    def _pin(self, key: str, value: MatchResult) -> MatchResult:
        with self._lock:
            return self._pinned.setdefault(key, value)


# -- pace: what a long request is doing, and about how long it takes ----------------------------------

#: Where each stage of a match starts, as a fraction of the progress bar.
STAGE_FRACTION = {"queue": 0.02, "parse": 0.05, "ground": 0.1, "encode": 0.8, "compose": 0.95}


class Pace:
    """How long one preset's requests took so far: seconds per phrase set grounded and seconds for
    everything else (a moving average, newest weighted half), so a request can say how long it
    will take before it starts. Thread-safe."""

    def __init__(self) -> None:
        self.ground_s: float | None = None  # per phrase set
        self.other_s: float | None = None
        self._lock = threading.Lock()

    def observe(self, result: MatchResult, grounded: int) -> None:
        """Learn from a computed result that grounded ``grounded`` phrase sets."""
        t = result.timings_ms
        ground = t.get("ground", 0.0) / 1000.0
        other = max(0.0, t.get("total", sum(t.values())) / 1000.0 - ground)
        with self._lock:
            self.other_s = other if self.other_s is None else 0.5 * (self.other_s + other)
            if grounded:
                each = ground / grounded
                self.ground_s = each if self.ground_s is None else 0.5 * (self.ground_s + each)

    def estimate(self, grounded: int) -> float | None:
        """Seconds a request grounding ``grounded`` phrase sets should take (None before any is seen)."""
        with self._lock:
            if self.other_s is None or (grounded and self.ground_s is None):
                return None
            return self.other_s + grounded * (self.ground_s or 0.0)

    def describe(self, stage: str, count: int) -> str:
        """What the user reads while a stage runs, e.g. "Grounding 2 phrase sets… (about 9 s)"."""
        if stage == "queue":
            return "Waiting for the request before yours…"
        if stage == "parse":
            return f"Parsing {count} caption{'s' * (count != 1)}…"
        if stage == "ground":
            if not count:
                return "Grounding: boxes from earlier requests…"
            about = self.estimate(count)
            wait = f" (about {about:.0f} s)" if about is not None and about >= 1.5 else ""
            return f"Grounding {count} phrase set{'s' * (count != 1)} with the detector…{wait}"
        if stage == "encode":
            return f"Encoding the image{'s' * (count != 1)} and sub-images ({count}), then the captions…"
        return "Composing the scores…"


def _direct(engine: ComCLIP, *args: Any, **kwargs: Any) -> MatchResult:
    return engine.match(*args, **kwargs)


def score(engine: ComCLIP, request: Request, *, cache: ResultCache | None = None, run: Callable[..., Any] | None = None,
          gate: threading.Semaphore | None = None, on_stage: OnStage | None = None, pace: Pace | None = None,
          pin: bool = False) -> Scored:
    """Score a checked request with the engine (through ``run``, e.g. a ZeroGPU wrapper, inside
    ``gate``), using the cache; the notices say what the user should know about the result.
    ``on_stage(stage, count)`` is told each stage as it starts (``queue`` while waiting for the
    gate, then as :meth:`ComCLIP.match_batch`); a computed result teaches ``pace``; ``pin`` keeps
    the result in the cache for good."""
    call = run or _direct
    start = time.perf_counter()
    grounded = [0]

    def tell(stage: str, count: int) -> None:
        if stage == "ground":
            grounded[0] = count
        if on_stage is not None:
            on_stage(stage, count)

    def compute() -> MatchResult:
        graphs = list(request.graphs) if request.graphs else None
        if gate is not None and not gate.acquire(blocking=False):
            tell("queue", 0)
            gate.acquire()
        try:
            result = call(engine, request.image, list(request.captions), graphs, request.options, on_stage=tell)
        finally:
            if gate is not None:
                gate.release()
        if pace is not None:
            pace.observe(result, grounded[0])
        return result

    key = None
    if cache is None:
        result, cached = compute(), False
    else:
        key = ResultCache.key(engine.preset_name, request.image.image, request.captions, request.graphs,
                              request.options)
        result, cached = cache.get_or_compute(key, compute, pin=pin)
    limit = getattr(getattr(engine, "encoder", None), "context_length", None)
    notices = list(request.notices) + result_notices(result, limit)
    return Scored(result, request.image, notices, time.perf_counter() - start, cached, key)


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
