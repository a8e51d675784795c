"""Sub-images: the parts of an image that one component of a caption is about.

A :class:`Region` is a set of boxes in pixel coordinates, or the whole image (no boxes).
Pixel convention: a box ``(x0, y0, x1, y1)`` in float pixel coordinates covers the integer
pixels ``floor(x0) <= x < ceil(x1)`` and ``floor(y0) <= y < ceil(y1)``, clipped to the image.

- ``blackout`` (the paper's choice, default): full-size image with every pixel outside the
  region's boxes set to 0 (black).
- ``crop``: the bounding rectangle of all the region's boxes, cut out.

A relation's region is the union of its subject's and object's regions; if either side is
ungrounded (the whole image), so is the relation.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

Box = tuple[float, float, float, float]
PixelBox = tuple[int, int, int, int]
SUBIMAGE_MODES = ("blackout", "crop")


def pixel_box(box: Sequence[float], width: int, height: int) -> PixelBox:
    """Integer pixel bounds ``(x0, y0, x1, y1)`` (end-exclusive) covered by a float box."""
    x0, y0, x1, y1 = (float(v) for v in box)
    ix0 = min(max(math.floor(x0), 0), width)
    iy0 = min(max(math.floor(y0), 0), height)
    ix1 = min(max(math.ceil(x1), 0), width)
    iy1 = min(max(math.ceil(y1), 0), height)
    return ix0, iy0, max(ix1, ix0), max(iy1, iy0)


@dataclass(frozen=True)
class Region:
    """Boxes (float pixel coordinates) of one component; empty means the whole image."""

    boxes: tuple[Box, ...] = ()

    @property
    def whole(self) -> bool:
        return not self.boxes

    def pixel_boxes(self, width: int, height: int) -> tuple[PixelBox, ...]:
        """Sorted, de-duplicated integer boxes that cover at least one pixel."""
        px = {pixel_box(b, width, height) for b in self.boxes}
        return tuple(sorted(b for b in px if b[2] > b[0] and b[3] > b[1]))

    def key(self, width: int, height: int) -> tuple[PixelBox, ...] | None:
        """Identity of the rendered sub-image: None for the whole image."""
        if self.whole:
            return None
        px = self.pixel_boxes(width, height)
        if not px or px == ((0, 0, width, height),):
            return None
        return px


def union(regions: Iterable[Region]) -> Region:
    """Union of regions; the whole image if any of them is the whole image."""
    boxes: list[Box] = []
    for r in regions:
        if r.whole:
            return Region()
        boxes.extend(r.boxes)
    return Region(tuple(boxes))


def region_mask(region: Region, width: int, height: int) -> np.ndarray:
    """Boolean ``(height, width)`` mask of the pixels a region keeps."""
    if region.whole:
        return np.ones((height, width), dtype=bool)
    mask = np.zeros((height, width), dtype=bool)
    for x0, y0, x1, y1 in region.pixel_boxes(width, height):
        mask[y0:y1, x0:x1] = True
    return mask


def blackout(image: Image.Image, region: Region) -> Image.Image:
    """The full-size image with every pixel outside the region set to black."""
    if region.key(image.width, image.height) is None:
        return image
    arr = np.asarray(image.convert("RGB"))
    out = np.zeros_like(arr)
    mask = region_mask(region, image.width, image.height)
    out[mask] = arr[mask]
    return Image.fromarray(out, "RGB")


def crop(image: Image.Image, region: Region) -> Image.Image:
    """The bounding rectangle of the region's boxes, cut out of the image."""
    px = region.key(image.width, image.height)
    if px is None:
        return image
    x0 = min(b[0] for b in px)
    y0 = min(b[1] for b in px)
    x1 = max(b[2] for b in px)
    y1 = max(b[3] for b in px)
    return image.crop((x0, y0, x1, y1))


def render(image: Image.Image, region: Region, mode: str = "blackout") -> Image.Image:
    """The sub-image for ``region`` in the given mode (``blackout`` or ``crop``)."""
    if mode == "blackout":
        return blackout(image, region)
    if mode == "crop":
        return crop(image, region)
    raise ValueError(f"unknown sub-image mode {mode!r}; choose one of: {', '.join(SUBIMAGE_MODES)}")
