"""Who wins a comparison of scores: the rules every benchmark and the image grid share. Pure
functions, no I/O, no models.

* a comparison is won only with a strict ``>``: a tie is a loss (a model that gives every
  caption the same score scores zero, never 50 %);
* a rank is pessimistic: ``1 + the number of OTHER candidates scoring >= the target``, so a tie
  with the target ranks the target below it.

Winoground's example is a table ``{c0_i0, c0_i1, c1_i0, c1_i1}``: ``cX_iY`` is caption X's score
on image Y, caption 0 being image 0's true caption and caption 1 image 1's. The benchmark
metrics (:mod:`comclip.eval.metrics`) re-export these; :mod:`comclip.grid` applies them to a grid
of images × captions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

WINOGROUND_KEYS = ("c0_i0", "c0_i1", "c1_i0", "c1_i1")


def winoground_text(s: Mapping[str, float]) -> bool:
    """Text score of one example: for each image, its own caption scores strictly higher."""
    return s["c0_i0"] > s["c1_i0"] and s["c1_i1"] > s["c0_i1"]


def winoground_image(s: Mapping[str, float]) -> bool:
    """Image score of one example: for each caption, its own image scores strictly higher."""
    return s["c0_i0"] > s["c0_i1"] and s["c1_i1"] > s["c1_i0"]


def winoground_group(s: Mapping[str, float]) -> bool:
    """Group score of one example: both the text and the image score are won."""
    return winoground_text(s) and winoground_image(s)


def rank_of(scores: Sequence[float], target: int) -> int:
    """1-based rank of ``scores[target]``: 1 + the number of other entries scoring >= it."""
    t = scores[target]
    return 1 + sum(1 for j, s in enumerate(scores) if j != target and s >= t)
