"""A stand-in for Hugging Face's ``spaces`` package on ZeroGPU hardware, for tests only.

Written from ``spaces`` 0.51 (``spaces/zero/decorator.py`` and ``spaces/zero/wrappers.py``), it keeps
what matters to an app that is called this way:

- ``spaces.GPU`` decorates a function, bare or with ``duration=`` (seconds, or a callable given the
  call's own arguments) and ``size=``; the decorated function carries a ``zerogpu`` attribute.
- **Every call is one GPU allocation** (the real one asks the scheduler; this one counts, and keeps
  each call's duration).
- **Arguments are pickled into a worker forked from this process** and the function runs there: it
  finds what was in memory at the fork (the models), but nothing it is given travels except by
  pickle. (The real package forks a worker when none is idle and reuses it, running the task in a
  thread; this one forks one per call — what a call leaves behind in a reused worker is not modelled.)
- **Results are pickled back**; a generator function's values stream back one by one as it yields.
- **Errors** other than ``gradio.Error`` come back as a ``gradio.Error`` titled "ZeroGPU worker error"
  whose message is the exception's class name, the worker's traceback printed, as the real package does.

:func:`installed` puts it in ``sys.modules["spaces"]`` for the duration of a ``with`` block.
"""

from __future__ import annotations

import contextlib
import inspect
import multiprocessing
import pickle
import sys
import traceback
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

_FORK = multiprocessing.get_context("fork")
_END = "__end__"


@dataclass
class Allocations:
    """What the stand-in was asked for: one entry per call (the function's name, the seconds asked)."""

    calls: list[tuple[str, float]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.calls)


ALLOCATIONS = Allocations()


def _worker(payload: bytes, out: Any, task: Callable[..., Any], generator: bool) -> None:
    """In the forked child: unpickle the arguments, run, send each value (pickled) back."""
    try:
        args, kwargs = pickle.loads(payload)
        if generator:
            for value in task(*args, **kwargs):
                out.send_bytes(pickle.dumps(("ok", value)))
            out.send_bytes(pickle.dumps((_END, None)))
        else:
            out.send_bytes(pickle.dumps(("ok", task(*args, **kwargs))))
    except BaseException as exc:  # noqa: BLE001 — sent back to the parent, as the real worker does
        out.send_bytes(pickle.dumps(("error", (type(exc).__name__, _gradio_error(exc), traceback.format_exc()))))
    finally:
        out.close()


def _gradio_error(exc: BaseException) -> BaseException | None:
    import gradio as gr

    return exc if isinstance(exc, gr.Error) else None


def _raise(error: tuple[str, BaseException | None, str]) -> None:
    import gradio as gr

    name, gradio_error, trace = error
    if gradio_error is not None:
        raise gradio_error
    print(trace, file=sys.stderr)
    raise gr.Error(name, title="ZeroGPU worker error")  # the real one: title, then the class name as the message


def _start(task: Callable[..., Any], generator: bool, args: tuple, kwargs: dict) -> tuple[Any, Any]:
    payload = pickle.dumps((args, kwargs))  # a PicklingError (or AttributeError) here is the app's bug
    receive, send = _FORK.Pipe(duplex=False)
    process = _FORK.Process(target=_worker, args=(payload, send, task, generator), daemon=True)
    process.start()
    send.close()
    return process, receive


def _messages(process: Any, receive: Any) -> Iterator[tuple[str, Any]]:
    try:
        while True:
            try:
                yield pickle.loads(receive.recv_bytes())
            except EOFError:
                import gradio as gr

                raise gr.Error("GPU task aborted", title="ZeroGPU worker error") from None
    finally:
        receive.close()
        process.join(timeout=30)


def _seconds(duration: Any, args: tuple, kwargs: dict) -> float:
    value = duration(*args, **kwargs) if callable(duration) else duration
    return 60.0 if value is None else float(getattr(value, "total_seconds", lambda: value)())


def _decorate(task: Callable[..., Any], duration: Any, size: str | None) -> Callable[..., Any]:
    generator = inspect.isgeneratorfunction(task)
    name = getattr(task, "__qualname__", repr(task))

    if generator:
        def wrapper(*args: Any, **kwargs: Any) -> Iterator[Any]:
            ALLOCATIONS.calls.append((name, _seconds(duration, args, kwargs)))
            for kind, value in _messages(*_start(task, True, args, kwargs)):
                if kind == "error":
                    _raise(value)
                if kind == _END:
                    return
                yield value
    else:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            ALLOCATIONS.calls.append((name, _seconds(duration, args, kwargs)))
            for kind, value in _messages(*_start(task, False, args, kwargs)):
                if kind == "error":
                    _raise(value)
                return value
            raise AssertionError("unreachable")

    wrapper.zerogpu = None  # as the real decorator marks what it wrapped
    return wrapper


def GPU(task: Callable[..., Any] | None = None, *, duration: Any = None, size: str | None = None) -> Any:  # noqa: N802 — the real name
    """``@spaces.GPU``, ``@spaces.GPU(duration=…)`` or ``spaces.GPU(fn, duration=…)``."""
    if task is None:
        return lambda fn: _decorate(fn, duration, size)
    return _decorate(task, duration, size)


@contextlib.contextmanager
def installed() -> Iterator[Allocations]:
    """``import spaces`` finds this stand-in inside the block; the allocations are counted from zero."""
    module = types.ModuleType("spaces")
    module.GPU = GPU
    module.__doc__ = __doc__
    saved = sys.modules.get("spaces")
    sys.modules["spaces"] = module
    ALLOCATIONS.calls.clear()
    try:
        yield ALLOCATIONS
    finally:
        if saved is None:
            sys.modules.pop("spaces", None)
        else:
            sys.modules["spaces"] = saved
