"""Errors a user can act on. Each carries one clear, single-line message.

The CLI prints ``error: <message>`` and exits 2; the app shows the message in the UI.

Messages never name a front end's controls (a command-line flag, a menu): an error that has a
remedy says which with ``hint`` (one of :data:`HINTS`), and each front end words it as its own
control — :data:`comclip.cli.main.HINTS` as flags, :data:`comclip.studio.messages.HINTS` as menus.
"""

from __future__ import annotations

from collections.abc import Callable

#: Remedies an error may point to.
RUN_OFFLINE = "run-offline"  # a preset with random weights (tiny) runs with no network at all
USE_CPU = "use-cpu"  # run on the CPU
NAME_MODEL = "name-model"  # name the image–text model (a model replacing the preset's)
NAME_PRETRAINED = "name-pretrained"  # give an open_clip pretrained tag
OFFICIAL_SOURCE = "official-source"  # pick another official script to follow
HINTS = (RUN_OFFLINE, USE_CPU, NAME_MODEL, NAME_PRETRAINED, OFFICIAL_SOURCE)
#: A remedy that is an option value (:func:`option_hint`): ``option:<name>=<value>``.
OPTION_HINT = "option:"


def option_hint(name: str, value: object) -> str:
    """The remedy "set the option ``name`` (an :class:`~comclip.options.Options` field) to ``value``"."""
    return f"{OPTION_HINT}{name}={value}"


class ComCLIPError(Exception):
    """Base class: anything a user of the CLI or app should see as one clear line.

    ``hint``: the remedy, one of :data:`HINTS` (None: the message says all there is to say)."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        if hint is not None and hint not in HINTS and not hint.startswith(OPTION_HINT):
            raise ValueError(f"unknown hint {hint!r}")
        super().__init__(message)
        self.hint = hint


class InputError(ComCLIPError, ValueError):
    """Bad user input: an unreadable image, an empty caption, an unknown option value."""


class GraphError(InputError):
    """A scene graph that does not validate (dangling ids, empty names, wrong types)."""


class ModelUnavailableError(ComCLIPError):
    """Model weights cannot be loaded (offline and not cached, unknown model name, ...)."""


class DatasetError(ComCLIPError):
    """A benchmark data folder that is missing or malformed."""


def with_hint(exc: BaseException, hints: dict[str, str], option: Callable[[str, str], str] | None = None) -> str:
    """``exc``'s message with its remedy worded by a front end: ``hints`` by key, ``option(name,
    value)`` for an option value (when the error has a remedy the front end words)."""
    message = " ".join(str(exc).split())
    hint = getattr(exc, "hint", None) or ""
    if hint.startswith(OPTION_HINT) and option is not None:
        name, _, value = hint.removeprefix(OPTION_HINT).partition("=")
        remedy = option(name, value)
    else:
        remedy = hints.get(hint)
    return f"{message}; {remedy}" if remedy else message
