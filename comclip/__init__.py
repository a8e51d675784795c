"""ComCLIP: training-free compositional image–text matching.

    import comclip
    engine = comclip.load("default", device="auto")          # or "tiny" offline
    result = engine.match("photo.jpg", ["a mug in some grass", "some grass in a mug"])
    print(result.captions[0].comclip_score)

Public face: :func:`load` (the one factory), :func:`list_presets` (the names it takes; a preset
file's path works too, see :mod:`comclip.presets`), :class:`ComCLIP`, :class:`Options` (the one
option vocabulary), the results :class:`MatchResult` / :class:`CaptionResult` / :class:`Component`,
:class:`GridResult` (several images against the same captions: ``ComCLIP.match_grid``) and
:class:`SceneGraph`. Importing ``comclip`` is light: torch-heavy parts load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from comclip.graph import Entity, Relation, SceneGraph
from comclip.options import Options
from comclip.presets import list_presets

if TYPE_CHECKING:
    from comclip.engine import ComCLIP, load
    from comclip.grid import GridResult
    from comclip.result import CaptionResult, Component, MatchResult

__all__ = ["CaptionResult", "ComCLIP", "Component", "Entity", "GridResult", "MatchResult", "Options", "Relation",
           "SceneGraph", "list_presets", "load"]


def __getattr__(name: str) -> object:
    """The torch-heavy names, imported on first use."""
    if name in ("ComCLIP", "load"):
        from comclip import engine

        return getattr(engine, name)
    if name in ("CaptionResult", "Component", "MatchResult"):
        from comclip import result

        return getattr(result, name)
    if name == "GridResult":
        from comclip import grid

        return grid.GridResult
    raise AttributeError(f"module 'comclip' has no attribute {name!r}")
