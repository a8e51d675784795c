"""Sub-images: the parts of an image that one component of a caption is about.

A region is a :class:`~comclip.boxes.Boxes` value (the detector's boxes of the component's
entities), or :data:`~comclip.boxes.WHOLE_IMAGE` (an explicit value: no boxes and ``whole``).
Pixel convention (:func:`comclip.boxes.pixel_box`): a box ``(x0, y0, x1, y1)`` in float pixel
coordinates covers the integer pixels ``floor(x0) <= x < ceil(x1)`` and ``floor(y0) <= y < ceil(y1)``,
clipped to the image.

- ``blackout`` (the paper's choice, default): full-size image with every pixel outside the
  region's boxes set to 0 (black).
- ``crop``: the bounding rectangle of all the region's boxes, cut out.

A relation's region is the union of its subject's and object's regions; if either side is
ungrounded (the whole image), so is the relation (:func:`comclip.boxes.union`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from comclip.boxes import Boxes
from comclip.options import SUBIMAGE_MODES

__all__ = ["SUBIMAGE_MODES", "PixelGeometry", "blackout", "blackout_pixels", "crop", "model_space_mask",
           "region_mask", "render"]


def region_mask(region: Boxes, width: int, height: int) -> np.ndarray:
    """Boolean ``(height, width)`` mask of the pixels a region keeps."""
    if region.whole:
        return np.ones((height, width), dtype=bool)
    mask = np.zeros((height, width), dtype=bool)
    for x0, y0, x1, y1 in region.pixel_boxes(width, height):
        mask[y0:y1, x0:x1] = True
    return mask


def blackout(image: Image.Image, region: Boxes) -> Image.Image:
    """The full-size image with every pixel outside the region set to black."""
    if region.key(image.width, image.height) is None:
        return image
    arr = np.asarray(image.convert("RGB"))
    out = np.zeros_like(arr)
    mask = region_mask(region, image.width, image.height)
    out[mask] = arr[mask]
    return Image.fromarray(out, "RGB")


def crop(image: Image.Image, region: Boxes) -> Image.Image:
    """The bounding rectangle of the region's boxes, cut out of the image."""
    px = region.key(image.width, image.height)
    if px is None:
        return image
    x0 = min(b[0] for b in px)
    y0 = min(b[1] for b in px)
    x1 = max(b[2] for b in px)
    y1 = max(b[3] for b in px)
    return image.crop((x0, y0, x1, y1))


def render(image: Image.Image, region: Boxes, mode: str = "blackout") -> Image.Image:
    """The sub-image for ``region`` in the given mode (``blackout`` or ``crop``)."""
    if mode == "blackout":
        return blackout(image, region)
    if mode == "crop":
        return crop(image, region)
    raise ValueError(f"unknown sub-image mode {mode!r}; choose one of: {', '.join(SUBIMAGE_MODES)}")


# -- sub-images as tensors from the already-preprocessed image -----------------------------------

@dataclass(frozen=True)
class PixelGeometry:
    """How an encoder's preprocessing maps an image to model pixels: resize the shorter side to
    ``resize`` (torchvision's rule), centre-crop ``crop`` (h, w), normalise with mean/std; with
    ``squash``, resize the whole image to ``crop`` instead (the official ``comslip.py``)."""

    resize: int
    crop: tuple[int, int]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    #: Resize straight to ``crop`` (aspect not kept, nothing cut off) instead of short side + crop.
    squash: bool = False

    def resized_size(self, width: int, height: int) -> tuple[int, int]:
        if self.squash:
            return self.crop[1], self.crop[0]
        short, long = (width, height) if width <= height else (height, width)
        new_short, new_long = self.resize, int(self.resize * long / short)
        return (new_short, new_long) if width <= height else (new_long, new_short)


def _coverage(lo: int, hi: int, src: int, dst: int, offset: int, out: int, device: torch.device) -> torch.Tensor:
    """Fraction of each output pixel's footprint (in source pixels) that lies inside [lo, hi)."""
    j = torch.arange(out, device=device, dtype=torch.float64) + offset
    scale = src / dst
    a, b = j * scale, (j + 1) * scale
    return ((torch.minimum(b, torch.tensor(float(hi), dtype=torch.float64, device=device))
             - torch.maximum(a, torch.tensor(float(lo), dtype=torch.float64, device=device))).clamp_min(0) / scale)


def model_space_mask(region: Boxes, width: int, height: int, geometry: PixelGeometry,
                     device: torch.device | str = "cpu") -> torch.Tensor:
    """The blackout mask of ``region`` as the encoder sees it: ``(crop_h, crop_w)`` floats in [0, 1].

    Each model pixel holds the fraction of its source footprint inside the region's boxes (the
    union of boxes is taken as the per-pixel maximum), i.e. an area-average resize of the
    pixel-exact mask followed by the same centre crop as the encoder's preprocessing.
    """
    device = torch.device(device)
    new_w, new_h = geometry.resized_size(width, height)
    ch, cw = geometry.crop
    top, left = int(round((new_h - ch) / 2.0)), int(round((new_w - cw) / 2.0))
    mask = torch.zeros(ch, cw, dtype=torch.float64, device=device)
    for x0, y0, x1, y1 in region.pixel_boxes(width, height) if not region.whole else ((0, 0, width, height),):
        cy = _coverage(y0, y1, height, new_h, top, ch, device)
        cx = _coverage(x0, x1, width, new_w, left, cw, device)
        mask = torch.maximum(mask, cy[:, None] * cx[None, :])
    return mask.float()


def blackout_pixels(global_pixels: torch.Tensor, masks: torch.Tensor, geometry: PixelGeometry) -> torch.Tensor:
    """Blacked-out model pixels from the preprocessed whole image: ``black + m * (x - black)``.

    ``global_pixels``: ``(3, h, w)`` or ``(N, 3, h, w)`` normalised; ``masks``: ``(N, h, w)``;
    returns ``(N, 3, h, w)`` in the pixels' dtype. Black is pixel value 0 after normalisation, ``-mean / std``.
    """
    mean = torch.tensor(geometry.mean, dtype=torch.float32).to(global_pixels.device, non_blocking=True)
    std = torch.tensor(geometry.std, dtype=torch.float32).to(global_pixels.device, non_blocking=True)
    black = (-mean / std)[:, None, None]
    x = global_pixels.float()
    out = black + masks[:, None].to(x.device) * (x - black)
    return out.to(global_pixels.dtype)
