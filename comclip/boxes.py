"""The one box value, from grounding to the result and its pictures: :class:`Boxes`.

The detector answers each phrase with a :class:`Boxes` (best first; no boxes: not found); a
component's region is the union of its entities' :class:`Boxes`, or :data:`WHOLE_IMAGE` — an explicit
value, distinct from "no boxes" — when it covers the whole image (an entity not found stands for the
whole image, as in the paper); a result's component keeps that value; the app draws it
(supervision's ``Detections`` is built from it, one box, one score each).

Pixel convention: a box ``(x0, y0, x1, y1)`` in float pixel coordinates covers the integer pixels
``floor(x0) <= x < ceil(x1)`` and ``floor(y0) <= y < ceil(y1)``, clipped to the image
(:func:`pixel_box`). Plain values (no torch, no NumPy).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

Box = tuple[float, float, float, float]
PixelBox = tuple[int, int, int, int]


def pixel_box(box: Sequence[float], width: int, height: int) -> PixelBox:
    """Integer pixel bounds ``(x0, y0, x1, y1)`` (end-exclusive) covered by a float box."""
    x0, y0, x1, y1 = (float(v) for v in box)
    ix0 = min(max(math.floor(x0), 0), width)
    iy0 = min(max(math.floor(y0), 0), height)
    ix1 = min(max(math.ceil(x1), 0), width)
    iy1 = min(max(math.ceil(y1), 0), height)
    return ix0, iy0, max(ix1, ix0), max(iy1, iy0)


@dataclass(frozen=True)
class Boxes:
    """Boxes in float pixel coordinates ``(x0, y0, x1, y1)``, each with its detector score.

    ``scores`` always has one entry per box: :meth:`drawn` makes boxes without a detector (score
    1.0). ``whole``: as a region, the whole image (:data:`WHOLE_IMAGE`; it holds no boxes)."""

    xyxy: tuple[Box, ...] = ()
    scores: tuple[float, ...] = ()
    whole: bool = False

    def __post_init__(self) -> None:
        if self.whole and self.xyxy:
            raise ValueError("the whole-image region holds no boxes")
        xyxy = tuple(tuple(float(v) for v in b) for b in self.xyxy)
        if any(len(b) != 4 for b in xyxy):
            raise ValueError(f"a box is (x0, y0, x1, y1), got {self.xyxy!r}")
        if len(self.scores) != len(xyxy):
            raise ValueError(f"{len(xyxy)} boxes but {len(self.scores)} scores: give one score per box")
        object.__setattr__(self, "xyxy", xyxy)
        object.__setattr__(self, "scores", tuple(float(s) for s in self.scores))

    @classmethod
    def drawn(cls, *xyxy: Sequence[float]) -> Boxes:
        """Boxes drawn by hand (no detector): each scores 1.0."""
        return cls(tuple(xyxy), (1.0,) * len(xyxy))  # type: ignore[arg-type]

    def __len__(self) -> int:
        return len(self.xyxy)

    def __iter__(self) -> Iterator[Box]:
        return iter(self.xyxy)

    def pixel_boxes(self, width: int, height: int) -> tuple[PixelBox, ...]:
        """Sorted, de-duplicated integer boxes that cover at least one pixel."""
        px = {pixel_box(b, width, height) for b in self.xyxy}
        return tuple(sorted(b for b in px if b[2] > b[0] and b[3] > b[1]))

    def key(self, width: int, height: int) -> tuple[PixelBox, ...] | None:
        """Identity of the rendered sub-image: None for the whole image."""
        if self.whole:
            return None
        px = self.pixel_boxes(width, height)
        if not px or px == ((0, 0, width, height),):
            return None
        return px

    def to_lists(self) -> tuple[list[list[float]], list[float]]:
        """``(boxes, scores)`` as JSON lists."""
        return [list(b) for b in self.xyxy], list(self.scores)


#: The whole image as a region (a sub-image that is the image itself).
WHOLE_IMAGE = Boxes(whole=True)


def union(regions: Iterable[Boxes]) -> Boxes:
    """Union of regions (boxes and scores concatenated); the whole image if any of them is the whole image."""
    xyxy: list[Box] = []
    scores: list[float] = []
    for r in regions:
        if r.whole:
            return WHOLE_IMAGE
        xyxy.extend(r.xyxy)
        scores.extend(r.scores)
    return Boxes(tuple(xyxy), tuple(scores))
