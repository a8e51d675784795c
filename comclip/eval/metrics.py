"""Benchmark metrics: pure functions over score tables. No I/O, no models.

Conventions, the same for every benchmark:

* a comparison is won only with a strict ``>``: a tie is a loss (a model that gives every
  caption the same score scores zero, never 50 %);
* a rank is pessimistic: ``1 + the number of OTHER candidates scoring >= the target``, so a tie
  with the target ranks the target below it;
* an aggregate over no examples is ``None`` (shown as "—"), never 0;
* a margin says how far an example is from its decision: it is ``> 0`` exactly when the example
  is won (so a tie, margin 0, is a loss), and its size is in the scores' own units.

The per-example rules (Winoground's text / image / group, :func:`rank_of`) live in
:mod:`comclip.ranking`, below the engine, so the image grid (:mod:`comclip.grid`) judges with the
same definitions; they are re-exported here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from comclip.ranking import WINOGROUND_KEYS as WINOGROUND_KEYS
from comclip.ranking import rank_of as rank_of
from comclip.ranking import winoground_group as winoground_group
from comclip.ranking import winoground_image as winoground_image
from comclip.ranking import winoground_text as winoground_text

WINOGROUND_METRICS = ("text_score", "image_score", "group_score")
RECALL_KS = (1, 5, 10)


def mean(flags: Iterable[bool | float]) -> float | None:
    """Mean of booleans (a fraction in [0, 1]) or numbers; ``None`` for no values."""
    values = [float(f) for f in flags]
    return sum(values) / len(values) if values else None


# -- Winoground ---------------------------------------------------------------------------------

def winoground_text_margin(s: Mapping[str, float]) -> float:
    """How surely the text score is won: the smaller of each image's own-caption lead,
    ``min(c0_i0 - c1_i0, c1_i1 - c0_i1)``; ``> 0`` exactly when :func:`winoground_text` holds."""
    return min(s["c0_i0"] - s["c1_i0"], s["c1_i1"] - s["c0_i1"])


def winoground_image_margin(s: Mapping[str, float]) -> float:
    """How surely the image score is won: the smaller of each caption's own-image lead,
    ``min(c0_i0 - c0_i1, c1_i1 - c1_i0)``; ``> 0`` exactly when :func:`winoground_image` holds."""
    return min(s["c0_i0"] - s["c0_i1"], s["c1_i1"] - s["c1_i0"])


def winoground_group_margin(s: Mapping[str, float]) -> float:
    """The group score's margin: the smaller of the text and the image margin."""
    return min(winoground_text_margin(s), winoground_image_margin(s))


def winoground(tables: Sequence[Mapping[str, float]]) -> dict[str, float | None]:
    """Text, image and group score (fractions) over examples given as ``{c0_i0, c0_i1, c1_i0, c1_i1}``."""
    return {
        "text_score": mean(winoground_text(s) for s in tables),
        "image_score": mean(winoground_image(s) for s in tables),
        "group_score": mean(winoground_group(s) for s in tables),
    }


# -- positive vs negative -----------------------------------------------------------------------

def pair_correct(s: Mapping[str, float]) -> bool:
    """One positive/negative pair ``{pos, neg}`` is right when the positive scores strictly higher."""
    return s["pos"] > s["neg"]


def pair_margin(s: Mapping[str, float]) -> float:
    """How surely a pair is won: ``pos - neg``; ``> 0`` exactly when :func:`pair_correct` holds."""
    return s["pos"] - s["neg"]


def pair_accuracy(tables: Sequence[Mapping[str, float]]) -> float | None:
    """Fraction of ``{pos, neg}`` pairs where the positive scores strictly higher."""
    return mean(pair_correct(s) for s in tables)


# -- retrieval ----------------------------------------------------------------------------------

def rank_of_any(scores: Sequence[float], targets: Iterable[int]) -> int:
    """1-based rank of the best of several targets (image→text: any of the image's captions):
    1 + the number of non-target entries scoring >= the best target."""
    targets = set(targets)
    best = max(scores[t] for t in targets)
    return 1 + sum(1 for j, s in enumerate(scores) if j not in targets and s >= best)


def top_k(scores: Sequence[float], k: int) -> list[int]:
    """Indices of the ``k`` highest scores, highest first; ties keep the lower index first."""
    order = sorted(range(len(scores)), key=lambda j: (-scores[j], j))
    return order[:k]


def rerank(candidates: Sequence[int], scores: Sequence[float]) -> list[int]:
    """``candidates`` re-ordered by ``scores`` (one per candidate), highest first; ties keep order."""
    order = sorted(range(len(candidates)), key=lambda j: (-scores[j], j))
    return [candidates[j] for j in order]


def reranked_rank(candidates: Sequence[int], scores: Sequence[float], target: int, first_stage_rank: int) -> int:
    """Rank of ``target`` after re-ranking the first stage's ``candidates`` with ``scores``.

    A target among the candidates gets its (pessimistic) rank among them; a target outside them
    keeps its first-stage rank — re-ranking only permutes the top-k.
    """
    return reranked_rank_any(candidates, scores, (target,), first_stage_rank)


def reranked_rank_any(candidates: Sequence[int], scores: Sequence[float], targets: Iterable[int],
                      first_stage_rank: int) -> int:
    """:func:`reranked_rank` for several targets: the best target among the candidates, or the
    first-stage rank when none of them is a candidate."""
    targets = set(targets)
    inside = [j for j, c in enumerate(candidates) if c in targets]
    if not inside:
        return first_stage_rank
    return rank_of_any(scores, inside)


def recall_at(ranks: Sequence[int], ks: Sequence[int] = RECALL_KS) -> dict[str, float | None]:
    """Recall@K: the fraction of queries whose target ranks at K or better."""
    return {f"R@{k}": mean(r <= k for r in ranks) for k in ks}
