"""Calling the engine for benchmark examples: per-call failure handling (images are opened by
:func:`comclip.eval.datasets.common.open_image`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from comclip.errors import ComCLIPError

if TYPE_CHECKING:
    from comclip.engine import ComCLIP


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
