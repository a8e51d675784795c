"""The model call: where a request meets the engine — in this process, or on ZeroGPU.

A :class:`ModelCall` is what the model needs and nothing more: the preset's name, the images with
their captions (and edited graphs), and the options — small, plain, picklable values. The
:class:`ModelRunner` runs it with the engine loaded for that preset and returns one
:class:`~comclip.result.MatchResult` per image (plain values too), telling ``on_stage`` each stage
as it starts.

**ZeroGPU** (a Hugging Face Space whose GPU is lent per call; the ``spaces`` package): the runner's
device function is wrapped once with ``spaces.GPU``. Each call then asks the scheduler for a GPU
(one allocation per call), pickles the call's arguments into a worker process forked from this
one, runs there, and pickles what it returns back — so the call carries a :class:`ModelCall`, never
the engine: the worker finds the engines in its own memory, forked after they were loaded. The
device function is a generator (``spaces`` streams a generator's values back as they come), so the
stages reach the page from the worker: it yields :class:`Stage` values, then the results. How long
to ask the GPU for is estimated from the call's size (:func:`gpu_seconds`). Where ``spaces`` is
absent, or present but not on ZeroGPU (``spaces.GPU`` then returns the function unchanged), the
engine is called directly in this thread.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from comclip.errors import ComCLIPError
from comclip.graph import SceneGraph
from comclip.images import LoadedImage
from comclip.options import Options

if TYPE_CHECKING:
    from comclip.engine import ComCLIP, OnStage
    from comclip.result import MatchResult

#: Seconds asked of ZeroGPU for a call: a fixed part (the first call of a worker moves the models to
#: the GPU), per image and per (image, caption). Generous: a call that outlives it is cut off.
GPU_SECONDS = {"base": 20.0, "image": 2.0, "caption": 0.5, "most": 120.0}


@dataclass(frozen=True)
class ModelCall:
    """One call of the model: images scored against their captions with one preset and options."""

    preset: str
    #: (image, captions, graphs or None) per image; a graph per caption, None = parse it.
    items: tuple[tuple[LoadedImage, tuple[str, ...], tuple[SceneGraph | None, ...] | None], ...]
    options: Options

    @property
    def captions(self) -> int:
        """(image, caption) pairs in the call."""
        return sum(len(captions) for _, captions, _ in self.items)


class Stage(NamedTuple):
    """A stage of the engine starting (``ComCLIP.match_batch``'s ``on_stage``), as it crosses from a worker."""

    stage: str
    count: int


def gpu_seconds(call: ModelCall) -> int:
    """How long to ask ZeroGPU for, from the call's size (``spaces.GPU(duration=...)``): a fixed part,
    per image, and per (image, caption) pair."""
    s = GPU_SECONDS
    return int(min(s["most"], s["base"] + s["image"] * len(call.items) + s["caption"] * call.captions))


class ModelRunner:
    """Runs :class:`ModelCall` values with the engines of ``engines`` (``engines(preset) -> ComCLIP``)."""

    def __init__(self, engines: Callable[[str], ComCLIP], *, gpu: Callable[..., Any] | None = None,
                 find: Callable[[str], ComCLIP | None] | None = None) -> None:
        self.engines = engines
        #: A lock-free lookup of a loaded engine, for the GPU worker (a lock held by another thread at
        #: the fork stays held in the child).
        self.find = find
        self._pid = os.getpid()  # the process that loaded the engines (a worker is forked from it)
        wrap = gpu if gpu is not None else zerogpu_decorator()
        on_gpu = wrap(self._on_device, duration=gpu_seconds) if wrap is not None else None
        #: The device function as ZeroGPU wraps it; None: the engine runs in this thread.
        self.on_gpu = on_gpu if on_gpu is not None and hasattr(on_gpu, "zerogpu") else None

    @property
    def zerogpu(self) -> bool:
        return self.on_gpu is not None

    def __call__(self, call: ModelCall, on_stage: OnStage) -> list[MatchResult]:
        """The results of ``call``, one per image; ``on_stage(stage, count)`` is told each stage."""
        if self.on_gpu is None:
            return self.engines(call.preset).match_batch(call.items, call.options, on_stage=on_stage)
        with contextlib.closing(self.on_gpu(call)) as events:
            for event in events:
                if isinstance(event, Stage):
                    on_stage(*event)
                elif isinstance(event, Failed):
                    raise event.error  # our own error, its message intact (spaces would reword it)
                else:
                    return event
        raise RuntimeError("the GPU worker ended without a result")

    def _on_device(self, call: ModelCall) -> Iterator[Stage | Failed | list[MatchResult]]:
        """In the GPU worker: the stages as they start, then the results (or our own error, as a value:
        ``spaces`` would turn a raised one into "ZeroGPU worker error"). The engine runs in a thread of
        its own so that its stage reports can be yielded while it works."""
        if os.getpid() != self._pid:
            _forked_worker()
        events: queue.SimpleQueue[Any] = queue.SimpleQueue()
        engine = (self.find(call.preset) if self.find is not None else None) or self.engines(call.preset)

        def work() -> None:
            try:
                events.put(engine.match_batch(call.items, call.options,
                                              on_stage=lambda stage, count: events.put(Stage(stage, count))))
            except BaseException as exc:  # noqa: BLE001 — passed on below, from the worker's own thread
                events.put(Failed(exc))

        threading.Thread(target=work, name="comclip-model-call", daemon=True).start()
        while True:
            event = events.get()
            if isinstance(event, Failed) and not isinstance(event.error, ComCLIPError):
                raise event.error
            yield event
            if not isinstance(event, Stage):
                return


class Failed(NamedTuple):
    """An error of the call (raised again where the call was made)."""

    error: BaseException


def _forked_worker() -> None:
    """Make torch usable in a process forked after the parent ran torch on the CPU: GNU OpenMP's
    thread pool does not survive a fork (measured here: the child's first parallel CPU operation hangs
    for ever), so the worker runs its CPU operations on one thread — as PyTorch's own DataLoader
    workers do. (On ZeroGPU the work is on the GPU; the CPU does only small steps.)"""
    import torch

    torch.set_num_threads(1)


def zerogpu_decorator() -> Callable[..., Any] | None:
    """``spaces.GPU`` where the ``spaces`` package is installed (Hugging Face Spaces), else None.
    (It returns the function unchanged unless the Space runs on ZeroGPU hardware.)"""
    try:
        import spaces
    except ImportError:
        return None
    return getattr(spaces, "GPU", None)  # (a folder named "spaces" on the path imports as an empty package)


def call_for(preset: str, images: Sequence[LoadedImage], captions: Sequence[str],
             graphs: Sequence[SceneGraph | None] | None, options: Options) -> ModelCall:
    """The model call for images scored against the same captions (and graphs)."""
    frozen = None if graphs is None else tuple(graphs)
    return ModelCall(preset, tuple((image, tuple(captions), frozen) for image in images), options)
