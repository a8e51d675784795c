"""Loading user images robustly: odd colour modes, EXIF rotation, animation, size limits, and
downscaling (the one image decoder: the engine, the CLI, eval and the app all load through
:func:`load_image`).

Sizes are checked from the file's header before anything is decoded. A JPEG is decoded directly
at a reduced scale (JPEG's "draft" mode: 1/2, 1/4 or 1/8) when it is far over the pixel limit or
over the size it is to be downscaled to (``fit_pixels``; :func:`_decode_reduced`, written once).
Every failure is one :class:`~comclip.errors.InputError` with a message naming the file.
"""

from __future__ import annotations

import functools
import hashlib
import io
import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from comclip.errors import InputError

#: Images with more pixels than this are refused (about 100 megapixels, e.g. 10000 x 10000).
MAX_PIXELS = 100_000_000
#: Files larger than this are refused before decoding.
MAX_FILE_BYTES = 200 * 1024 * 1024
#: A JPEG at least this many times over the pixel limit is decoded reduced (1/2, 1/4 or 1/8 scale,
#: JPEG's "draft" mode) when that brings it under the limit; other images over the limit are refused.
DRAFT_FACTOR = 4
#: Images more elongated than this (long side / short side) are refused: the encoders resize the
#: short side to their input size (an 8000x2 image would become ~900000x224 pixels for ViT-B/32)
#: and no detector finds anything in a line of pixels.
MAX_ASPECT_RATIO = 200

# PIL's own decompression-bomb guard (Image.MAX_IMAGE_PIXELS) stays as it is, process-wide: the
# size checks here are local. Image.open only reads the header, so sizes are checked before decoding.


@dataclass(frozen=True)
class LoadedImage:
    """An RGB image ready for the engine, with where it came from."""

    image: Image.Image
    path: str | None = None
    #: ``(width, height)`` before it was downscaled (``load_image(fit_pixels=...)``); None: not downscaled.
    downscaled_from: tuple[int, int] | None = None

    @functools.cached_property
    def digest(self) -> str:
        """The pixels' content hash (:func:`image_digest`), computed once: what caches key by."""
        return image_digest(self.image)

    @property
    def width(self) -> int:
        return self.image.width

    @property
    def height(self) -> int:
        return self.image.height


def _open(source: str | os.PathLike | bytes | Image.Image, where: str) -> Image.Image:
    """The image, opened (its header read, nothing decoded); ``where`` names it in messages."""
    if isinstance(source, Image.Image):
        return source
    if isinstance(source, (bytes, bytearray)):
        fp: object = io.BytesIO(source)
    else:
        path = Path(source)
        if not path.exists():
            raise InputError(f"image file not found: {where}")
        if path.is_dir():
            raise InputError(f"{where} is a folder, not an image file")
        size = path.stat().st_size
        if size == 0:
            raise InputError(f"image file is empty: {where}")
        if size > MAX_FILE_BYTES:
            raise InputError(f"image file is too large: {where} ({size / 2**20:.0f} MiB; limit "
                             f"{MAX_FILE_BYTES / 2**20:.0f} MiB)")
        fp = path
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return Image.open(fp)  # type: ignore[arg-type]
    except Image.DecompressionBombError as exc:
        raise InputError(f"image is too large: {where} ({exc}); downscale it first") from None
    except UnidentifiedImageError:
        raise InputError(f"not an image file (format not recognised): {where}") from None
    except OSError as exc:
        raise InputError(f"cannot read image {where}: {exc}") from None


def to_rgb(img: Image.Image) -> Image.Image:
    """Convert any PIL mode to 8-bit RGB; transparency is composited on white."""
    if img.mode == "RGB":
        return img
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        if img.mode.startswith("I;16"):
            arr = arr / 257.0
        else:
            lo, hi = float(arr.min()), float(arr.max())
            arr = (arr - lo) / (hi - lo) * 255.0 if hi > lo else np.zeros_like(arr)
        return Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8), "L").convert("RGB")
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def _decode_reduced(img: Image.Image, pixels: int) -> None:
    """Make a JPEG decode directly at the smallest of JPEG's scales (1/2, 1/4, 1/8) that still holds
    at least ``pixels`` pixels (draft mode; sizes rounded up). Other formats are left alone."""
    if img.format != "JPEG":
        return
    scale = math.sqrt(pixels / (img.width * img.height))
    img.draft("RGB", (max(1, math.ceil(img.width * scale)), max(1, math.ceil(img.height * scale))))


def _decode(img: Image.Image, where: str) -> Image.Image:
    """First frame, decoded, EXIF-rotated, in RGB."""
    try:
        if getattr(img, "is_animated", False):
            img.seek(0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            img.load()
            img = ImageOps.exif_transpose(img) or img
        rgb = to_rgb(img)
        rgb.load()
    except (OSError, ValueError, SyntaxError) as exc:
        raise InputError(f"cannot decode image {where} (truncated or corrupt?): {exc}") from None
    return rgb


def _check_size(w: int, h: int, max_pixels: int, where: str) -> None:
    if w * h > max_pixels:
        raise InputError(f"image is too large: {where} is {w}x{h} = {w * h / 1e6:.0f} megapixels "
                         f"(limit {max_pixels / 1e6:.0f} megapixels); downscale it first")
    if max(w, h) > MAX_ASPECT_RATIO * min(w, h):
        raise InputError(f"image is too elongated: {where} is {w}x{h} (aspect ratio "
                         f"{max(w, h) / min(w, h):.0f}:1; limit {MAX_ASPECT_RATIO}:1); crop or pad it first")


def load_image(source: str | os.PathLike | bytes | Image.Image, *, max_pixels: int | None = None,
               fit_pixels: int | None = None, name: str | None = None) -> LoadedImage:
    """Open, size-check, decode, EXIF-rotate and convert an image to RGB.

    Accepts a path, raw bytes or a PIL image. Animated images give their first frame. Sizes are
    checked from the header, before decoding: over ``max_pixels`` (default :data:`MAX_PIXELS`) is
    refused, except a JPEG at least :data:`DRAFT_FACTOR` times over, decoded reduced when that
    brings it under. ``fit_pixels``: downscale (aspect kept, Lanczos) to at most this many pixels
    — a JPEG over it is decoded reduced first, no smaller than it — recording the size before in
    ``downscaled_from``. ``name``: what messages call the image (default: its path).
    """
    max_pixels = MAX_PIXELS if max_pixels is None else max_pixels
    path = str(source) if isinstance(source, (str, os.PathLike)) else None
    where = f"“{name}”" if name else (path or "the image")
    img = _open(source, where)
    w, h = original = img.size
    if w <= 0 or h <= 0:
        raise InputError(f"image has no pixels: {where}")
    if fit_pixels is not None and w * h > fit_pixels:
        _decode_reduced(img, fit_pixels)
    elif w * h >= DRAFT_FACTOR * max_pixels:
        _decode_reduced(img, max_pixels)
    _check_size(*img.size, max_pixels, where)
    rgb = _decode(img, where)
    if rgb is img and not isinstance(source, Image.Image):
        rgb = rgb.copy()
    if fit_pixels is None or (rgb.width * rgb.height <= fit_pixels and img.size == original):
        return LoadedImage(rgb, path)
    before = original if img.size != original else rgb.size  # the file's size, or the decoded (rotated) one
    if rgb.width * rgb.height > fit_pixels:
        scale = math.sqrt(fit_pixels / (rgb.width * rgb.height))
        rgb = rgb.resize((max(1, int(rgb.width * scale)), max(1, int(rgb.height * scale))), Image.Resampling.LANCZOS)
    return LoadedImage(rgb, path, downscaled_from=before)


def image_digest(image: Image.Image) -> str:
    """A content hash of an image's pixels, mode and size (for caches keyed by pixels)."""
    h = hashlib.sha1(f"{image.mode}{image.size}".encode())
    h.update(image.tobytes())
    return h.hexdigest()
