"""What the page says when something goes wrong: our own errors as they are, with their remedy in
the page's words (a menu, an environment variable — never a command-line flag); anything else as
one line asking for a report (and logged with its traceback)."""

from __future__ import annotations

import logging

from comclip.errors import RUN_OFFLINE, USE_CPU, ComCLIPError, with_hint
from comclip.options import Options

log = logging.getLogger("comclip.app")

#: The remedies errors point to (:data:`comclip.errors.HINTS`), as this page's controls.
HINTS = {RUN_OFFLINE: "choose “tiny” in the Preset menu to run offline with random weights",
         USE_CPU: "start the app with COMCLIP_DEVICE=cpu"}


def option_remedy(name: str, value: str) -> str:
    """An option value as the settings panel offers it."""
    return f"choose “{value}” for {Options.field(name).label.capitalize()} in the settings"


def user_message(exc: BaseException) -> str:
    """One line for the page."""
    if isinstance(exc, ComCLIPError):
        return with_hint(exc, HINTS, option_remedy)
    if isinstance(exc, MemoryError):
        return "Out of memory: try a smaller image or fewer captions."
    log.exception("unexpected error")
    return f"Something went wrong ({type(exc).__name__}: {str(exc)[:200]}). Please report it."
