"""The ComCLIP formula as pure tensor functions (README.md, "The method, exactly").

For one caption with text embedding ``t``, global image embedding ``v0`` and components
``(t_i, v_i)`` (all L2-normalised)::

    s_i  = logit_scale * cos(t_i, v_i)
    w    = softmax(s)                  (weighting="softmax", the paper)
         | s_i / sum_j s_j             (weighting="sum", the official code's variant)
    v*   = v0 + sum_i w_i v_i
    score = cos(t, v* / |v*|)          baseline = cos(t, v0)

With no components the ComCLIP score equals the baseline.

Options (``comclip.options``; defaults as above): ``score_scale`` is what ``s_i`` is —
``logit_scale * cos(t_i, v_i)`` (``logit``), ``cos(t_i, v_i)`` (``cosine``) or the dot product
``t_i . v_i`` of the embeddings as given (``dot``; with raw, unnormalised embeddings this is the
official ComVG / retrieval score). The vectors may be raw encoder outputs (``embeddings="raw"``):
every cosine above is scale-free, and ``v*`` is then composed from the raw vectors.

Multi-query image side (BLIP-2). The image rows are per-query features ``h0, h_i`` of shape
``(Q, D_q)`` (the Q-Former's query outputs before the projection) and ``P`` is the model's affine
image projection; ``p(h)_q = P(h_q) / |P(h_q)|``::

    s_i   = logit_scale * max_q cos(t_i, p(h_i)_q)
    w     = softmax(s) | s_i / sum_j s_j          (as above)
    h*    = h0 + sum_i w_i h_i                    (per query)
    score = max_q cos(t, P(h*_q))                 baseline = max_q cos(t, P(h0_q))

as the official ``comblip.py`` composes the query outputs before projecting. That script also
L2-normalises each ``h*_q`` before ``P`` (``query_norm="l2"``: ``score = max_q cos(t, P(h*_q/|h*_q|))``);
by default we do not, so that with no components the score is BLIP-2's own (with a bias in ``P`` the
two differ). ``score_scale`` ``cosine`` and ``dot`` are the same here: ``s_i = max_q cos(t_i, p(h_i)_q)``,
the official raw max cosine.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

WEIGHTINGS = ("softmax", "sum")
SCORE_SCALES = ("logit", "cosine", "dot")
QUERY_NORMS = ("none", "l2")


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


#: An image projection for multi-query rows: ``(…, D_q) -> (…, D)`` (affine, not normalised).
Projection = Callable[[torch.Tensor], torch.Tensor]


def _loo_masks(valid: torch.Tensor) -> torch.Tensor:
    """``(C, n + 1, n)``: ``[:, 0]`` every valid component; ``[:, 1 + j]`` all valid components but j."""
    c, n = valid.shape
    masks = valid[:, None, :].expand(c, n + 1, n).clone()
    masks[:, 1:] &= ~torch.eye(n, dtype=torch.bool, device=valid.device)
    return masks


def _scaled(sim_i: torch.Tensor, logit_scale: float, score_scale: str) -> torch.Tensor:
    """The component scores ``s`` behind the weights, from the similarities (cosines, or with
    ``dot`` the dot products already): ``logit`` multiplies by ``logit_scale``, the others do not."""
    if score_scale == "logit":
        return logit_scale * sim_i
    if score_scale in SCORE_SCALES:
        return sim_i
    raise ValueError(f"unknown score scale {score_scale!r}; choose one of: {', '.join(SCORE_SCALES)}")


def compose_batch(t: torch.Tensor, v0: torch.Tensor, t_i: torch.Tensor, v_i: torch.Tensor, valid: torch.Tensor,
                  logit_scale: float, weighting: str = "softmax", project: Projection | None = None, *,
                  score_scale: str = "logit", query_norm: str = "none") -> dict[str, torch.Tensor]:
    """Many captions at once, on the tensors' device, with no host round-trip.

    ``t``, ``v0``: ``(C, D)``; ``t_i``, ``v_i``: ``(C, n, D)`` padded to the longest caption's
    ``n`` components; ``valid``: ``(C, n)`` bool marks real components. Returns tensors:
    ``clip (C,)``, ``comclip (C,)``, ``similarity (C, n)``, ``weight (C, n)``, ``loo (C, n)``
    (padding positions hold 0). A caption with no component has ``comclip == clip``.

    Multi-query rows: ``v0`` ``(C, Q, D_q)`` and ``v_i`` ``(C, n, Q, D_q)`` with ``project`` the
    image projection (module docstring); ``t``, ``t_i`` stay ``(C, D)``, ``(C, n, D)``.

    ``similarity`` is ``cos(t_i, v_i)``, or with ``score_scale="dot"`` the dot product ``t_i . v_i``.
    """
    if query_norm not in QUERY_NORMS:
        raise ValueError(f"unknown query norm {query_norm!r}; choose one of: {', '.join(QUERY_NORMS)}")
    if v0.dim() == 3:
        if project is None:
            raise ValueError("multi-query image rows (C, Q, D_q) need the encoder's projection")
        return _compose_batch_queries(t, v0, t_i, v_i, valid, logit_scale, weighting, project, score_scale,
                                      query_norm)
    t, v0, t_i, v_i = (x.float() for x in (t, v0, t_i, v_i))
    c, n = valid.shape
    clip = cosine(t, v0)
    if not n:
        sim_i = t.new_zeros(c, 0)
    else:
        sim_i = (t_i * v_i).sum(-1) if score_scale == "dot" else cosine(t_i, v_i)
    s = _scaled(sim_i, logit_scale, score_scale)
    masks = _loo_masks(valid)
    w = component_weights(s[:, None, :].expand(c, n + 1, n), weighting, masks)
    v_star = v0[:, None, :] + w @ v_i  # (C, n + 1, D)
    scores = cosine(t[:, None, :].expand_as(v_star), v_star)
    zero = torch.zeros((), device=s.device)
    return {"clip": clip, "comclip": scores[:, 0], "similarity": torch.where(valid, sim_i, zero),
            "weight": torch.where(valid, w[:, 0], zero), "loo": torch.where(valid, scores[:, 1:], zero)}


def _max_query_cosine(t: torch.Tensor, projected: torch.Tensor) -> torch.Tensor:
    """``max_q cos(t, projected_q)``: ``t`` ``(…, D)``, ``projected`` ``(…, Q, D)`` → ``(…)``."""
    return cosine(t[..., None, :].expand_as(projected), projected).amax(dim=-1)


def _compose_batch_queries(t: torch.Tensor, h0: torch.Tensor, t_i: torch.Tensor, h_i: torch.Tensor,
                           valid: torch.Tensor, logit_scale: float, weighting: str,
                           project: Projection, score_scale: str = "logit",
                           query_norm: str = "none") -> dict[str, torch.Tensor]:
    t, h0, t_i, h_i = (x.float() for x in (t, h0, t_i, h_i))
    c, n = valid.shape

    def proj(h: torch.Tensor) -> torch.Tensor:
        return project(h).float()

    clip = _max_query_cosine(t, proj(h0))
    cos_i = _max_query_cosine(t_i, proj(h_i)) if n else t.new_zeros(c, 0)
    s = _scaled(cos_i, logit_scale, score_scale)  # dot = cosine: the projected rows are normalised
    masks = _loo_masks(valid)
    w = component_weights(s[:, None, :].expand(c, n + 1, n), weighting, masks)
    h_star = h0[:, None] + torch.einsum("cmn,cnqd->cmqd", w, h_i)  # (C, n + 1, Q, D_q)
    if query_norm == "l2":  # the official Winoground comblip.py: each composed query vector to unit length
        h_star = h_star / h_star.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    scores = _max_query_cosine(t[:, None, :].expand(c, n + 1, t.shape[-1]), proj(h_star))
    zero = torch.zeros((), device=s.device)
    return {"clip": clip, "comclip": scores[:, 0], "similarity": torch.where(valid, cos_i, zero),
            "weight": torch.where(valid, w[:, 0], zero), "loo": torch.where(valid, scores[:, 1:], zero)}


def compose(t: torch.Tensor, v0: torch.Tensor, t_i: torch.Tensor, v_i: torch.Tensor, logit_scale: float,
            weighting: str = "softmax", project: Projection | None = None, *, score_scale: str = "logit",
            query_norm: str = "none") -> Composition:
    """The ComCLIP score of one caption, its parts, and every leave-one-out score.

    ``t``, ``v0``: ``(D,)``; ``t_i``, ``v_i``: ``(n, D)`` with ``n >= 0`` (multi-query: ``v0``
    ``(Q, D_q)``, ``v_i`` ``(n, Q, D_q)`` and ``project``, as :func:`compose_batch`).
    """
    n = t_i.shape[0]
    out = compose_batch(t[None], v0[None], t_i[None], v_i[None], torch.ones(1, n, dtype=torch.bool, device=t.device),
                        logit_scale, weighting, project, score_scale=score_scale, query_norm=query_norm)
    vals = {k: v[0].tolist() for k, v in out.items()}
    return Composition(vals["clip"], vals["comclip"], vals["similarity"], vals["weight"], vals["loo"])
