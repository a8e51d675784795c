"""Counting a detector's forwards for the bench, with forward hooks on the model's own modules.

The detector keeps no counters: the bench installs hooks for the length of its own run
(:func:`count_detector`) and counts what the model's modules actually ran. A *pass* is one model
forward (``transformers`` backend), one image part (the backbone run outside a model forward) or one
fusion (the feature enhancer run outside a model forward; it includes its prompts' text parts unless
they were cached); text parts (BERT run outside a model forward) are counted apart; *units* are the
(image, prompt) rows through the feature enhancer, with either backend. The hooks see every thread's
use of the model: count a run that has the model to itself.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any


@dataclass
class DetectorCount:
    model_forwards: int = 0
    image_parts: int = 0
    text_parts: int = 0
    fusions: int = 0
    units: int = 0

    @property
    def passes(self) -> int:
        """Model forwards, image parts and fusions."""
        return self.model_forwards + self.image_parts + self.fusions


def _rows(args: tuple, kwargs: dict[str, Any]) -> int:
    first = args[0] if args else kwargs.get("vision_features")
    return int(first.shape[0]) if first is not None else 0


@contextlib.contextmanager
def count_detector(detector: Any) -> Iterator[DetectorCount]:
    """While active, count the forwards of ``detector.model`` (a transformers Grounding DINO's parts told
    apart; another module's forwards are counted as model forwards only)."""
    model = detector.model
    count = DetectorCount()
    depth = [0]  # inside the model's own forward

    def enter(*_: Any) -> None:
        depth[0] += 1

    def leave(*_: Any) -> None:
        depth[0] -= 1
        count.model_forwards += 1

    def part(name: str) -> Any:
        def hook(_module: Any, args: tuple, kwargs: dict[str, Any], _out: Any) -> None:
            if name == "fusions":
                count.units += _rows(args, kwargs)
            if depth[0] == 0:
                setattr(count, name, getattr(count, name) + 1)
        return hook

    handles = [model.register_forward_pre_hook(enter), model.register_forward_hook(leave)]
    inner = getattr(model, "model", None)
    for attr, name in (("backbone", "image_parts"), ("text_backbone", "text_parts"), ("encoder", "fusions")):
        module = getattr(inner, attr, None)
        if module is not None:
            handles.append(module.register_forward_hook(part(name), with_kwargs=True))
    try:
        yield count
    finally:
        for h in handles:
            h.remove()

