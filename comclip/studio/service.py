"""Serving requests: one function from a checked request to its answer (:meth:`Service.serve`).

``serve`` does, in order: the request's cache key, the result cache (a hit never waits for the
model; identical requests in flight are computed once), the gate (at most ``concurrency`` model
calls at once), and the model call (:mod:`comclip.studio.model_call`: in this thread, or on ZeroGPU
in a forked worker). What it returns is an :class:`Answer`: the results, the image(s), what the
person should know (notices), how long it took and whether it came from the cache.

Around it, what one app's requests share (:class:`Service`): the preset it started with, the
presets it offers, the loaded engines (:class:`Engines`: one per preset, loaded on first use, a few
kept), the :class:`ResultCache` (the examples' answers pinned for good, with their drawn panels),
and per preset a :class:`Pace` (how long requests took, so a long one can say how long it will take).
The examples are computed at start (:meth:`Service.warm_examples`), in ONE model call on ZeroGPU.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import KW_ONLY, dataclass, field
from typing import TYPE_CHECKING, Any

from comclip import stopping
from comclip.caches import LRUCache
from comclip.images import LoadedImage
from comclip.options import Options
from comclip.presets import Preset, get_preset
from comclip.result import MatchResult
from comclip.studio.checks import Request
from comclip.studio.model_call import ModelCall, ModelRunner, call_for
from comclip.studio.settings import Settings

if TYPE_CHECKING:
    from comclip.engine import ComCLIP

log = logging.getLogger("comclip.studio")

RESULT_CACHE_SIZE = 64
#: ``progress(fraction, desc=...)``: what a page shows while a request runs (Gradio's ``gr.Progress``).
Progress = Callable[..., Any]


# -- presets ------------------------------------------------------------------------------------

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

    def __init__(self, loader: Callable[[str], ComCLIP], capacity: int = 2, pinned: str | None = None) -> None:
        self._engines: OrderedDict[str, ComCLIP] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[str, threading.Lock] = {}
        self._loader = loader
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

    def peek(self, name: str) -> ComCLIP | None:
        """The engine if it is loaded, without loading it or taking the lock (a dict read): what a
        process forked from this one may call — a lock held by another thread at the fork would stay
        held in the child for ever."""
        return self._engines.get(name)

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


# -- answers and the result cache ---------------------------------------------------------------------

@dataclass
class Answer:
    """A served request: its results (one per image), the image(s) as scored (possibly downscaled),
    what the person should know, how long it took, whether it came from the cache, and the request's
    key (its identity: preset, pixels, captions, graphs, options)."""

    results: list[MatchResult]
    images: tuple[LoadedImage, ...]
    notices: list[str]
    key: str
    _: KW_ONLY  # the rest by name
    seconds: float = 0.0
    from_cache: bool = False
    #: Where the time went, in ms: ``gate`` (waiting for the model), ``model`` (the model call) and
    #: the engine's own stages (``parse``, ``ground``, …); empty for an answer from the cache.
    stages: dict[str, float] = field(default_factory=dict, repr=False, compare=False)
    #: The panels drawn from these results so far (``panels`` fills it), kept with the results in the
    #: cache: a result served again shows at once.
    drawn: dict[Any, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def result(self) -> MatchResult:
        """The (first) image's result."""
        return self.results[0]

    @property
    def image(self) -> LoadedImage:
        return self.images[0]


@dataclass
class _Entry:
    results: list[MatchResult]
    drawn: dict[Any, Any] = field(default_factory=dict)


def request_key(request: Request) -> str:
    """A request's identity: equal requests (equal options, equal pixels, …) have equal keys."""
    graphs = [None if g is None else g.to_dict() for g in request.graphs] if request.graphs else None
    blob = json.dumps([request.preset, [im.digest for im in request.images], list(request.captions), graphs,
                       request.options.to_dict()], sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()


class ResultCache:
    """Results by request key in an LRU cache, plus pinned entries (never evicted: the examples');
    identical requests in flight at the same time are computed once (the others wait for it)."""

    def __init__(self, size: int = RESULT_CACHE_SIZE) -> None:
        self._items: LRUCache[str, _Entry] = LRUCache(size)
        self._pinned: dict[str, _Entry] = {}
        self._pending: dict[str, Future] = {}
        self._lock = threading.Lock()  # guards _pending and _pinned (and the check-then-claim of a key)
        self.computed = 0  # how many results were computed (not served from cache or a twin request)

    def __len__(self) -> int:
        with self._lock:
            return len(self._pinned) + sum(1 for k in self._items.keys() if k not in self._pinned)

    def pinned(self) -> int:
        """How many entries are pinned."""
        return len(self._pinned)

    def _get(self, key: str) -> _Entry | None:
        return self._pinned.get(key) or self._items.get(key)

    def has(self, key: str) -> bool:
        return self._get(key) is not None

    def get_or_compute(self, key: str, compute: Callable[[], list[MatchResult]], *, pin: bool = False
                       ) -> tuple[_Entry, str]:
        """(entry, how): ``how`` is ``"cache"`` (it was there), ``"twin"`` (an identical request in
        flight computed it: this one waited for it) or ``"computed"``. ``pin``: keep the entry for
        good (the examples'), whoever computed it."""
        with self._lock:
            entry = self._get(key)
            pending = None if entry is not None else self._pending.get(key)
            owner = entry is None and pending is None
            if owner:
                pending = self._pending[key] = Future()
        how = "cache"
        if entry is None and not owner:
            entry, how = pending.result(), "twin"  # type: ignore[union-attr]
        if entry is not None:
            return (self.pin(key, entry) if pin else entry), how
        try:
            entry = _Entry(compute())
        except BaseException as exc:
            with self._lock:
                del self._pending[key]
            pending.set_exception(exc)  # type: ignore[union-attr]
            raise
        with self._lock:
            if pin:
                self._pinned[key] = entry
            else:
                self._items.put(key, entry)  # stored before the claim is released
            del self._pending[key]
            self.computed += 1
        pending.set_result(entry)  # type: ignore[union-attr]
        return entry, "computed"

    def pin_computed(self, key: str, results: list[MatchResult]) -> None:
        """Pin results computed outside :meth:`get_or_compute` (the examples' batched call), counted."""
        with self._lock:
            self._pinned[key] = _Entry(results)
            self.computed += 1

    def pin(self, key: str, entry: _Entry) -> _Entry:
        with self._lock:
            return self._pinned.setdefault(key, entry)


# -- pace: what a long request is doing, and about how long it takes ----------------------------------

#: Where each stage of a match starts, as a fraction of the progress bar.
STAGE_FRACTION = {"queue": 0.02, "guessed": 0.05, "parse": 0.05, "ground": 0.1, "encode": 0.8, "compose": 0.95}


class Pace:
    """How long one preset's requests took so far: seconds per phrase set grounded and seconds for
    everything else (a moving average, newest weighted half), so a request can say how long it
    will take before it starts. Thread-safe."""

    def __init__(self) -> None:
        self.ground_s: float | None = None  # per phrase set
        self.other_s: float | None = None
        self._lock = threading.Lock()

    def observe(self, seconds: float, ground_s: float, grounded: int) -> None:
        """Learn from a request that took ``seconds``, ``ground_s`` of them grounding ``grounded`` phrase sets."""
        other = max(0.0, seconds - ground_s)
        with self._lock:
            self.other_s = other if self.other_s is None else 0.5 * (self.other_s + other)
            if grounded:
                each = ground_s / grounded
                self.ground_s = each if self.ground_s is None else 0.5 * (self.ground_s + each)

    def estimate(self, grounded: int) -> float | None:
        """Seconds a request grounding ``grounded`` phrase sets should take (None before any is seen)."""
        with self._lock:
            if self.other_s is None or (grounded and self.ground_s is None):
                return None
            return self.other_s + grounded * (self.ground_s or 0.0)

    def describe(self, stage: str, count: int) -> str:
        """What the person reads while a stage runs, e.g. "Grounding 2 phrase sets… (about 9 s)"."""
        if stage == "queue":
            return "Waiting for the request before yours…"
        if stage == "guessed":
            return "Finishing the boxes begun while you typed…"
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


class Waiting:
    """One request's wait, told to the page: each stage as it starts (with the pace's estimate), and
    what the request teaches the pace when it is done."""

    def __init__(self, pace: Pace, progress: Progress | None) -> None:
        self.pace = pace
        self.progress = progress
        self.grounded = 0

    def stage(self, stage: str, count: int) -> None:
        """``on_stage`` for the engine."""
        if stage == "ground":
            self.grounded = count
        if self.progress is not None:
            self.progress(STAGE_FRACTION[stage], desc=self.pace.describe(stage, count))

    def done(self, results: Sequence[MatchResult]) -> None:
        t = results[0].timings_ms
        self.pace.observe(t.get("total", 0.0) / 1000.0, t.get("ground", 0.0) / 1000.0, self.grounded)


class Guesses:
    """The guess at the next click (at most one at a time; it holds one place in the model gate) and
    the clicks on their way into the gate.

    A guess starts only when a place in the gate is free and no click is on its way in. A click on the
    request a guess computes (same key) waits for the guess and reuses its work; a click on anything
    else stops it — unless a click on its request is waiting for it too. A guess with no key (an
    uploaded image's detector part, captions' texts before there is an image) is useful to any click, so
    no click stops it."""

    def __init__(self, gate: threading.BoundedSemaphore) -> None:
        self.gate = gate
        self._lock = threading.Lock()  # over the fields below
        self._running = False
        self._key: str | None = None
        self._asking: list[str] = []  # the requests of clicks on their way into the gate
        self._stop = threading.Event()
        self._done = threading.Event()  # set while no guess runs
        self._done.set()

    def idle(self) -> bool:
        """No guess runs and no click is on its way in (a look, not a promise)."""
        return not self._running and not self._asking

    def start(self, key: str | None) -> bool:
        """Begin a guess at request ``key`` if it may; then :meth:`finish` must follow."""
        with self._lock:
            if self._running or self._asking or not self.gate.acquire(blocking=False):
                return False
            self._running, self._key = True, key
            self._stop.clear()
            self._done.clear()
            return True

    def finish(self) -> None:
        with self._lock:
            self._running, self._key = False, None
        self.gate.release()
        self._done.set()

    def stopped(self) -> bool:
        """Whether the running guess was told to stop (what its stopping points ask)."""
        return self._stop.is_set()

    def wait(self) -> None:
        """Until no guess runs."""
        self._done.wait()

    @contextlib.contextmanager
    def asking(self, key: str) -> Iterator[bool]:
        """A click on request ``key`` on its way into the gate; yields whether the running guess is at
        this very request (then the click waits for it: :meth:`wait`)."""
        with self._lock:
            own = self._running and self._key == key
            if self._running and self._key is not None and not own and self._key not in self._asking:
                self._stop.set()
            self._asking.append(key)
        try:
            yield own
        finally:
            with self._lock:
                self._asking.remove(key)


# -- the service --------------------------------------------------------------------------------------

class Service:
    """What one app's requests share, and :meth:`serve`, the one way a request reaches the model."""

    def __init__(self, start: Preset, settings: Settings, engines: Engines, *, offered: Sequence[str] | None = None,
                 gpu: Callable[..., Any] | None = None) -> None:
        self.start = start
        self.settings = settings
        self.engines = engines
        self.offered = list(offered) if offered is not None else offered_presets(start.name)
        self.cache = ResultCache()
        self.gate = threading.BoundedSemaphore(max(1, settings.concurrency))
        self.runner = ModelRunner(engines.get, gpu=gpu, find=engines.peek)
        self.paces: dict[str, Pace] = {}
        self.warmed = threading.Event()  # set once the examples' answers are cached
        self.closing = threading.Event()  # set when the app stops: the warm-up stops too
        self._people = 0  # people's requests in progress: the warm-up waits for them
        self._quiet = threading.Condition()
        self.guesses = Guesses(self.gate)

    @classmethod
    def create(cls, engine: ComCLIP | None = None, *, settings: Settings | None = None,
               preset: str | Preset | None = None, engines: Engines | None = None,
               gpu: Callable[..., Any] | None = None) -> Service:
        """A service around ``engine`` (an already loaded engine, shared by every request; other
        presets load on first use). ``preset``: the start preset (default: the engine's, else the
        settings'). On ZeroGPU only the presets loaded before the app starts are offered (a worker
        is forked from this process and finds its engines there)."""
        settings = settings or Settings()
        start = get_preset(preset or (engine.preset if engine is not None and engine.preset else None)
                           or settings.start_preset())
        if engines is None:
            engines = Engines(lambda name: _load(start if name == start.name else name, settings.device),  # a file's
                              settings.max_engines, pinned=start.name)
        if engine is not None:
            engines.add(start.name, engine)
        service = cls(start, settings, engines, gpu=gpu)
        if service.runner.zerogpu:
            service.offered = engines.loaded() or [start.name]
        return service

    def pace(self, preset: str) -> Pace:
        return self.paces.setdefault(preset, Pace())

    def preset(self, name: str) -> Preset:
        """One of the offered presets (the start preset may be a file's: it is not registered by name)."""
        return self.start if name == self.start.name else get_preset(name)

    # -- the click path ---------------------------------------------------------------------------
    def serve(self, request: Request, progress: Progress | None = None, *, pin: bool = False) -> Answer:
        """The request's answer: from the cache, or computed by one model call inside the gate.
        ``progress`` is told each stage as it starts, with an estimate once one is known; ``pin``
        keeps the answer in the cache for good."""
        started = time.perf_counter()
        key = request_key(request)
        waiting = Waiting(self.pace(request.preset), progress)
        if progress is not None and request.preset not in self.engines.loaded():
            progress(0.02, desc=f"Loading preset “{request.preset}” (first use; may download weights)…")

        stages: dict[str, float] = {}

        def compute() -> list[MatchResult]:
            call = call_for(request.preset, request.images, request.captions, request.graphs, request.options)
            asked = time.perf_counter()
            with self.guesses.asking(key) as own:
                if own:  # a guess at this very request: its work is this click's
                    waiting.stage("guessed", 0)
                    self.guesses.wait()
                if not self.gate.acquire(blocking=False):
                    waiting.stage("queue", 0)
                    self.gate.acquire()
            try:
                called = time.perf_counter()
                results = self.runner(call, waiting.stage)
                stages.update(gate=(called - asked) * 1e3, model=(time.perf_counter() - called) * 1e3)
            finally:
                self.gate.release()
            stages.update((k, v) for k, v in results[0].timings_ms.items() if k != "total")
            waiting.done(results)
            return results

        with self._person(not pin):
            entry, how = self.cache.get_or_compute(key, compute, pin=pin)
        notices = list(request.notices) + answer_notices(entry.results, self._context_length(request.preset))
        return Answer(entry.results, request.images, notices, key, seconds=time.perf_counter() - started,
                      from_cache=how == "cache", drawn=entry.drawn, stages=stages)

    def prepare(self, image: LoadedImage, preset: str) -> int:
        """Compute an uploaded image's detector part before its Score click (:meth:`ComCLIP.prepare`),
        while the person types captions. Only when it costs no one anything: not on ZeroGPU (a GPU
        allocation for a guess), not for a preset that is not loaded, not while a model call runs (the
        gate is taken without waiting; a click that comes meanwhile waits for it and reuses what it
        computed). Returns how many image parts were computed."""
        return self._when_free(preset, lambda engine: engine.prepare([image]))

    def prepare_captions(self, request: Request) -> int:
        """Compute what a Score click on ``request`` (the page as it is) will need before it comes
        (:meth:`ComCLIP.prepare_captions`): its captions' text parts and, with its image and no edited
        graph, their boxes — while the person goes from typing to the button. Only when it costs no one
        anything, as :meth:`prepare`; and a click for another request (other captions, another
        person's) stops its boxes at their next stopping point instead of waiting for them
        (:class:`Guesses`). Returns how many texts were encoded plus how many phrase sets were grounded
        (0 when stopped)."""
        key = request_key(request)
        if self.cache.has(key):  # (an example's captions: its answer is kept)
            return 0
        edited = any(g is not None for g in request.graphs or ())
        images = () if edited else request.images
        return self._when_free(request.preset,
                               lambda engine: engine.prepare_captions(request.captions, request.options, images),
                               key if images else None)

    def may_guess(self) -> bool:
        """Whether a guess at the next click could start now (a cheap look before building one; the
        guess itself checks again)."""
        return self.settings.prepare and not self.runner.zerogpu and self.guesses.idle()

    def _when_free(self, preset: str, work: Callable[[ComCLIP], int], guess: str | None = None) -> int:
        """``work(engine)`` for a guess at the next click — one at a time, not on ZeroGPU, not when the
        settings say not to (``prepare``), not for a preset that is not loaded, not while the gate is
        taken or a click waits for it; else 0. ``guess``: the key of the request it prepares — a click
        for another one stops it (0) at its next stopping point (:mod:`comclip.stopping`)."""
        engine = self.engines.peek(preset)
        if not self.may_guess() or engine is None or not self.guesses.start(guess):
            return 0
        try:
            with stopping.stoppable(self.guesses.stopped):
                return work(engine)
        except stopping.Stopped:
            log.info("a guess at the next click gave way to a click for another request")
            return 0
        finally:
            self.guesses.finish()

    def _context_length(self, preset: str) -> int | None:
        engine = self.engines.peek(preset)  # a preset not loaded (or dropped meanwhile) is not loaded for this
        return getattr(engine.encoder, "context_length", None) if engine is not None else None

    # -- the examples, computed at start ---------------------------------------------------------------
    def warm_examples(self, requests: Sequence[Request], draw: Callable[[Answer], Any] | None = None) -> int:
        """Compute the examples' answers (``requests``: as the page sends them before any setting is
        changed), pin them in the cache and ``draw`` their panels, so clicking an example shows its
        answer at once; this also teaches the pace. On ZeroGPU the examples of one preset and options
        (all of them, as the app sends them) go in ONE model call (one GPU allocation); elsewhere one
        at a time, each waiting until no person's request is in progress. Returns how many were
        computed; an example that fails is logged and skipped."""
        computed, started = 0, time.perf_counter()
        try:
            batches = [list(requests)] if self.runner.zerogpu else [[r] for r in requests]
            for batch in batches:
                if not self._wait_for_quiet():
                    break
                computed += self._compute_together(batch) if len(batch) > 1 else 0
                for request in batch:
                    try:
                        answer = self.serve(request, pin=True)
                    except Exception:  # noqa: BLE001 — a bad example must not stop the app
                        log.exception("example %s could not be scored", request.captions)
                        continue
                    computed += not answer.from_cache
                    if draw is not None:
                        draw(answer)
        finally:
            self.warmed.set()
        log.info("examples: %d scored and cached in %.1f s (a click on one shows it at once)", computed,
                 time.perf_counter() - started)
        return computed

    def _compute_together(self, batch: list[Request]) -> int:
        """Pin the answers of the batch's requests with one model call per (preset, options) — every
        image of every request of a group as the call's items, inside the gate; returns how many were
        computed. Requests with edited graphs, and a group whose call fails, are left to :meth:`serve`."""
        groups: dict[tuple[str, Options], list[Request]] = {}
        for r in batch:
            if r.graphs is None and not self.cache.has(request_key(r)):
                groups.setdefault((r.preset, r.options), []).append(r)
        computed = 0
        for (preset, options), todo in groups.items():
            call = ModelCall(preset, tuple(item for r in todo for item in
                                           call_for(preset, r.images, r.captions, None, options).items), options)
            waiting = Waiting(self.pace(preset), None)
            try:
                with self.gate:
                    results = self.runner(call, waiting.stage)
            except Exception:  # noqa: BLE001 — then each is computed alone
                log.exception("the examples could not be scored together")
                continue
            waiting.done(results)
            at = 0
            for r in todo:
                self.cache.pin_computed(request_key(r), results[at:at + len(r.images)])
                at += len(r.images)
            computed += len(todo)
        return computed

    @contextlib.contextmanager
    def _person(self, counted: bool) -> Iterator[None]:
        """A person's request in progress (``counted``): the warm-up gives way while there is one."""
        if not counted:
            yield
            return
        with self._quiet:
            self._people += 1
        try:
            yield
        finally:
            with self._quiet:
                self._people -= 1
                self._quiet.notify_all()

    def _wait_for_quiet(self) -> bool:
        """Wait until no person's request is in progress; False when the app is closing."""
        with self._quiet:
            self._quiet.wait_for(lambda: not self._people or self.closing.is_set())
        return not self.closing.is_set()

    def close(self) -> None:
        """Stop the warm-up (the app is closing)."""
        self.closing.set()
        with self._quiet:
            self._quiet.notify_all()


def _load(name: str | Preset, device: str) -> ComCLIP:
    import comclip

    return comclip.load(name, device=device)


def answer_notices(results: Sequence[MatchResult], context_length: int | None = None) -> list[str]:
    """Plain-language notes about an answer's results (one per image, the same captions): truncated
    captions, no entities, entities not found — in which image, when there are several."""
    notes = []
    limit = f"{context_length} tokens" if context_length else "its token limit"
    for i, c in enumerate(results[0].captions, start=1):
        if c.truncated:
            notes.append(f"Caption {i} is longer than the text encoder reads ({limit}); it was truncated and "
                         "only its beginning was scored.")
        if not c.graph.entities:
            notes.append(f"Caption {i} (“{c.caption}”): no entity could be parsed from it, so its ComCLIP score "
                         "equals its CLIP score.")
        for n, result in enumerate(results, start=1):
            missing = result.captions[i - 1].ungrounded
            if missing:
                where = f"image {n}" if len(results) > 1 else "the image"
                notes.append(f"Caption {i}: not found in {where}, so the whole image stands in for "
                             f"{', '.join(f'“{k.text}”' for k in missing)}.")
    return notes
