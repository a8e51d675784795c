"""Stopping work begun on a guess, when the guess turns out wrong.

The app computes ahead what the next click will need (``comclip.studio.service``); when a click for
something else comes, that work should give way at once instead of holding the models until it ends.
Work run inside :func:`stoppable` asks :func:`check` at its stopping points — the detector at each of its
parts and attention blocks (``comclip.dino``: about 30 a forward, tens of ms apart on a CPU), the engine
between its stages (``ComCLIP.prepare_captions``) — and :class:`Stopped` is raised there once
``should_stop()`` is true. The setting is a ``contextvars`` variable: per thread and per task, so a
request computed meanwhile in another thread is never stopped. Caches take a part or an output only once
it is whole, so nothing half-computed is kept.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextvars import ContextVar

_SHOULD_STOP: ContextVar[Callable[[], bool] | None] = ContextVar("comclip_should_stop", default=None)


class Stopped(Exception):
    """Work inside :func:`stoppable` was told to stop."""


@contextlib.contextmanager
def stoppable(should_stop: Callable[[], bool]) -> Iterator[None]:
    """Work run in this context (this thread, this task) raises :class:`Stopped` at its next stopping
    point once ``should_stop()`` is true."""
    token = _SHOULD_STOP.set(should_stop)
    try:
        yield
    finally:
        _SHOULD_STOP.reset(token)


def check() -> None:
    """A stopping point: raise :class:`Stopped` if the work running here was told to stop (outside
    :func:`stoppable`, nothing)."""
    should_stop = _SHOULD_STOP.get()
    if should_stop is not None and should_stop():
        raise Stopped("stopped: a click for something else came")
