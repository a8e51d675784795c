"""The ComCLIP formula as pure tensor functions (README.md, "The method, exactly").

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


def compose_batch(t: torch.Tensor, v0: torch.Tensor, t_i: torch.Tensor, v_i: torch.Tensor, valid: torch.Tensor,
                  logit_scale: float, weighting: str = "softmax") -> dict[str, torch.Tensor]:
    """Many captions at once, on the tensors' device, with no host round-trip.

    ``t``, ``v0``: ``(C, D)``; ``t_i``, ``v_i``: ``(C, n, D)`` padded to the longest caption's
    ``n`` components; ``valid``: ``(C, n)`` bool marks real components. Returns tensors:
    ``clip (C,)``, ``comclip (C,)``, ``similarity (C, n)``, ``weight (C, n)``, ``loo (C, n)``
    (padding positions hold 0). A caption with no component has ``comclip == clip``.
    """
    t, v0, t_i, v_i = (x.float() for x in (t, v0, t_i, v_i))
    c, n = valid.shape
    clip = cosine(t, v0)
    cos_i = cosine(t_i, v_i) if n else t.new_zeros(c, 0)
    s = logit_scale * cos_i
    # masks[:, 0]: every valid component; masks[:, 1 + j]: all valid components but j.
    masks = valid[:, None, :].expand(c, n + 1, n).clone()
    masks[:, 1:] &= ~torch.eye(n, dtype=torch.bool, device=valid.device)
    w = component_weights(s[:, None, :].expand(c, n + 1, n), weighting, masks)
    v_star = v0[:, None, :] + w @ v_i  # (C, n + 1, D)
    scores = cosine(t[:, None, :].expand_as(v_star), v_star)
    zero = torch.zeros((), device=s.device)
    return {"clip": clip, "comclip": scores[:, 0], "similarity": torch.where(valid, cos_i, zero),
            "weight": torch.where(valid, w[:, 0], zero), "loo": torch.where(valid, scores[:, 1:], zero)}


def compose(t: torch.Tensor, v0: torch.Tensor, t_i: torch.Tensor, v_i: torch.Tensor, logit_scale: float,
            weighting: str = "softmax") -> Composition:
    """The ComCLIP score of one caption, its parts, and every leave-one-out score.

    ``t``, ``v0``: ``(D,)``; ``t_i``, ``v_i``: ``(n, D)`` with ``n >= 0``.
    """
    n = t_i.shape[0]
    out = compose_batch(t[None], v0[None], t_i[None], v_i[None], torch.ones(1, n, dtype=torch.bool, device=t.device),
                        logit_scale, weighting)
    vals = {k: v[0].tolist() for k, v in out.items()}
    return Composition(vals["clip"], vals["comclip"], vals["similarity"], vals["weight"], vals["loo"])
