"""Calling the engine for benchmark examples: image loading and per-call failure handling."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from comclip.errors import ComCLIPError, InputError
from comclip.eval.datasets import ImageSource, MissingImage
from comclip.images import LoadedImage, load_image

if TYPE_CHECKING:
    from comclip.engine import ComCLIP


def open_image(source: ImageSource) -> LoadedImage:
    """Load an example's image; every problem is one :class:`InputError` naming it."""
    if isinstance(source, MissingImage):
        raise InputError(source.reason)
    if callable(source):
        return load_image(source())
    return load_image(source)


def match_or_reason(engine: ComCLIP, items: list[tuple]) -> list[Any] | str:
    """``engine.match_batch(items)``, or the reason it failed.

    Out-of-memory is not an example's fault and stops the run (lower ``--batch-size``; results so
    far are kept); any other error is returned as text so the caller records it as the failure
    reason of the example(s) concerned — counted and reported, never skipped.
    """
    try:
        return engine.match_batch(items)
    except ComCLIPError as exc:
        return " ".join(str(exc).split())
    except (MemoryError, torch.cuda.OutOfMemoryError):
        raise
    except Exception as exc:  # noqa: BLE001 — becomes the example's reported failure reason
        return f"internal error ({type(exc).__name__}: {' '.join(str(exc).split())[:300]})"
