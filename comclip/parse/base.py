"""What every parse backend shares: the parser protocol and caption checking.

Contract: a ``Parser`` has a ``name`` (the backend actually used) and is called as
``parser(caption) -> SceneGraph`` whose ``caption`` is the caption as given. ``require_caption``
returns its argument unchanged, or raises InputError "caption must be a string, got T" for a
non-string and "caption is empty" for an empty or whitespace-only string.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from comclip.errors import InputError
from comclip.graph import SceneGraph

__all__ = ["Parser", "require_caption"]


@runtime_checkable
class Parser(Protocol):
    """A named callable that turns a caption into a SceneGraph."""

    name: str

    def __call__(self, caption: str) -> SceneGraph: ...


def require_caption(caption: object) -> str:
    """Return the caption, or raise InputError for a non-string or empty/whitespace caption."""
    if not isinstance(caption, str):
        raise InputError(f"caption must be a string, got {type(caption).__name__}")
    if not caption.strip():
        raise InputError("caption is empty")
    return caption
