"""The ComCLIP formula as pure tensor functions (DESIGN.md, "The method, exactly").

For one caption with text embedding ``t``, global image embedding ``v0`` and components
``(t_i, v_i)`` (all L2-normalised)::

    s_i  = logit_scale * cos(t_i, v_i)
    w    = softmax(s)                  (weighting="softmax", the paper)
         | s_i / sum_j s_j             (weighting="sum", the official code's variant)
    v*   = v0 + sum_i w_i v_i
    score = cos(t, v* / |v*|)          baseline = cos(t, v0)

With no components the ComCLIP score equals the baseline.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

WEIGHTINGS = ("softmax", "sum")


def component_weights(s: torch.Tensor, weighting: str = "softmax", mask: torch.Tensor | None = None) -> torch.Tensor:
    """Weights over the last dimension of ``s``; ``mask`` (same shape, bool) drops components.

    ``sum`` divides by the (masked) sum; when that sum is 0 the weights are equal, not infinite.
    """
    if mask is None:
        mask = torch.ones_like(s, dtype=torch.bool)
    if weighting == "softmax":
        w = torch.softmax(s.masked_fill(~mask, float("-inf")), dim=-1)
        return torch.nan_to_num(w, nan=0.0)  # a row with every component masked
    if weighting == "sum":
        sm = s.masked_fill(~mask, 0.0)
        total = sm.sum(dim=-1, keepdim=True)
        count = mask.sum(dim=-1, keepdim=True).clamp_min(1)
        equal = mask.to(s.dtype) / count
        return torch.where(total.abs() > 1e-12, sm / torch.where(total == 0, 1, total), equal)
    raise ValueError(f"unknown weighting {weighting!r}; choose one of: {', '.join(WEIGHTINGS)}")


def cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1)).clamp_min(1e-12)


@dataclass(frozen=True)
class Composition:
    """Numbers of one caption: ``similarities`` and ``weights`` per component, the scores, and
    ``loo_scores[j]``, the ComCLIP score computed without component ``j`` (weights renormalised)."""

    clip_score: float
    comclip_score: float
    similarities: list[float]
    weights: list[float]
    loo_scores: list[float]


def compose(t: torch.Tensor, v0: torch.Tensor, t_i: torch.Tensor, v_i: torch.Tensor, logit_scale: float,
            weighting: str = "softmax") -> Composition:
    """The ComCLIP score of one caption, its parts, and every leave-one-out score.

    ``t``, ``v0``: ``(D,)``; ``t_i``, ``v_i``: ``(n, D)`` with ``n >= 0``.
    """
    t, v0, t_i, v_i = (x.float() for x in (t, v0, t_i, v_i))
    clip = cosine(t, v0)
    n = t_i.shape[0]
    if n == 0:
        c = float(clip)
        return Composition(c, c, [], [], [])
    cos_i = cosine(t_i, v_i)
    s = logit_scale * cos_i
    # Row 0: every component; row 1 + j: all but component j.
    masks = torch.ones(n + 1, n, dtype=torch.bool, device=s.device)
    masks[1:] &= ~torch.eye(n, dtype=torch.bool, device=s.device)
    w = component_weights(s.expand(n + 1, n), weighting, masks)
    v_star = v0 + w @ v_i
    scores = cosine(t.expand_as(v_star), v_star)
    values = scores.tolist()
    return Composition(float(clip), values[0], cos_i.tolist(), w[0].tolist(), values[1:])
