"""Errors a user can act on. Each carries one clear, single-line message.

The CLI prints ``error: <message>`` and exits 2; the app shows the message in the UI.
"""

from __future__ import annotations


class ComCLIPError(Exception):
    """Base class: anything a user of the CLI or app should see as one clear line."""


class InputError(ComCLIPError, ValueError):
    """Bad user input: an unreadable image, an empty caption, an unknown option value."""


class GraphError(InputError):
    """A scene graph that does not validate (dangling ids, empty names, wrong types)."""


class ModelUnavailableError(ComCLIPError):
    """Model weights cannot be loaded (offline and not cached, unknown model name, ...)."""


class DatasetError(ComCLIPError):
    """A benchmark data folder that is missing or malformed."""
