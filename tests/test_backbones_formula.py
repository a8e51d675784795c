"""The multi-query (BLIP-2) composition against an independent numpy computation."""

import numpy as np
import pytest
import torch

from comclip.formula import compose, compose_batch

Q, DQ, D = 4, 12, 8


def _unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _numpy_blip_comclip(t, h0, ti, hi, W, b, scale, weighting):
    """The official comblip.py structure, written out in numpy (without its pre-projection norm)."""
    def best(text, h):  # max over queries of the cosine of projected, normalised query vectors
        return max(float(text @ _unit(W @ h[q] + b)) for q in range(h.shape[0]))

    s = np.array([scale * best(ti[i], hi[i]) for i in range(len(hi))])
    if weighting == "softmax":
        w = np.exp(s - s.max())
        w = w / w.sum()
    else:
        w = s / s.sum()
    h_star = h0.copy()
    for i in range(len(hi)):
        h_star = h_star + w[i] * hi[i]
    return best(t, h_star), best(t, h0), w, s / scale


def _case(seed, n):
    rng = np.random.default_rng(seed)
    W, b = rng.standard_normal((D, DQ)), rng.standard_normal(D)
    t, ti = _unit(rng.standard_normal(D)), _unit(rng.standard_normal((n, D)))
    h0, hi = 3 * rng.standard_normal((Q, DQ)), 3 * rng.standard_normal((n, Q, DQ))
    return t, h0, ti, hi, W, b


def _project(W, b):
    Wt, bt = torch.tensor(W), torch.tensor(b)
    return lambda h: h.to(Wt.dtype) @ Wt.T + bt


@pytest.mark.parametrize("weighting", ["softmax", "sum"])
def test_multi_query_compose_matches_numpy(weighting):
    t, h0, ti, hi, W, b = _case(0, 3)
    scale = 14.0 if weighting == "softmax" else 1.0
    expected, baseline, w, sims = _numpy_blip_comclip(t, h0, ti, hi, W, b, scale, weighting)
    got = compose(*(torch.tensor(x) for x in (t, h0, ti, hi)), scale, weighting, project=_project(W, b))
    assert got.comclip_score == pytest.approx(expected, abs=1e-6)
    assert got.clip_score == pytest.approx(baseline, abs=1e-6)
    np.testing.assert_allclose(got.weights, w, atol=1e-6)
    np.testing.assert_allclose(got.similarities, sims, atol=1e-6)
    assert got.comclip_score != pytest.approx(got.clip_score, abs=1e-4)  # the composition changed something
    for j in range(3):  # leave-one-out = recomputation without component j
        keep = [k for k in range(3) if k != j]
        alone, _, _, _ = _numpy_blip_comclip(t, h0, ti[keep], hi[keep], W, b, scale, weighting)
        assert got.loo_scores[j] == pytest.approx(alone, abs=1e-6)


def test_multi_query_batch_with_padding_and_no_components():
    cases = [_case(s, n) for s, n in [(1, 2), (2, 0), (3, 3)]]
    W, b = cases[0][4], cases[0][5]
    n = 3
    t = torch.tensor(np.stack([c[0] for c in cases]))
    h0 = torch.tensor(np.stack([c[1] for c in cases]))
    ti, hi = torch.zeros(3, n, D, dtype=torch.float64), torch.zeros(3, n, Q, DQ, dtype=torch.float64)
    valid = torch.zeros(3, n, dtype=torch.bool)
    for k, c in enumerate(cases):
        m = len(c[2])
        ti[k, :m], hi[k, :m], valid[k, :m] = torch.tensor(c[2]), torch.tensor(c[3]), True
    out = compose_batch(t, h0, ti, hi, valid, 10.0, "softmax", project=_project(W, b))
    for k, c in enumerate(cases):
        if len(c[2]) == 0:
            assert out["comclip"][k].item() == out["clip"][k].item()  # no components: BLIP-2's own score
            continue
        expected, baseline, w, _ = _numpy_blip_comclip(c[0], c[1], c[2], c[3], W, b, 10.0, "softmax")
        assert out["comclip"][k].item() == pytest.approx(expected, abs=1e-6)
        assert out["clip"][k].item() == pytest.approx(baseline, abs=1e-6)
        np.testing.assert_allclose(out["weight"][k, :len(w)].numpy(), w, atol=1e-6)
    assert not out["weight"][0, 2] and not out["loo"][0, 2]  # padding holds 0


def test_multi_query_rows_need_a_projection():
    t, h0, ti, hi, _, _ = _case(4, 1)
    with pytest.raises(ValueError, match="projection"):
        compose(*(torch.tensor(x) for x in (t, h0, ti, hi)), 1.0)


def _numpy_official_variants(t, h0, ti, hi, W, b, scale, weighting, score_scale, query_norm):
    """The structure above with the official variants: ``s_i`` the raw max cosine (``cosine``/``dot``) or
    x scale (``logit``); each composed query vector L2-normalised before the projection (``l2``, comblip.py L67)."""
    def best(text, h):
        return max(float(text @ _unit(W @ h[q] + b)) for q in range(h.shape[0]))

    sims = np.array([best(ti[i], hi[i]) for i in range(len(hi))])
    s = scale * sims if score_scale == "logit" else sims
    w = np.exp(s - s.max()) / np.exp(s - s.max()).sum() if weighting == "softmax" else s / s.sum()
    h_star = h0 + sum(w[i] * hi[i] for i in range(len(hi)))
    if query_norm == "l2":
        h_star = h_star / np.linalg.norm(h_star, axis=-1, keepdims=True)
    return best(t, h_star), w


@pytest.mark.parametrize("score_scale", ["logit", "cosine", "dot"])
@pytest.mark.parametrize("query_norm", ["none", "l2"])
@pytest.mark.parametrize("weighting", ["softmax", "sum"])
def test_multi_query_official_variants_match_numpy(score_scale, query_norm, weighting):
    t, h0, ti, hi, W, b = _case(7, 3)
    assert np.abs(b).max() > 0.1  # a projection with a bias: there the pre-projection norm matters
    expected, w = _numpy_official_variants(t, h0, ti, hi, W, b, 14.0, weighting, score_scale, query_norm)
    got = compose(*(torch.tensor(x) for x in (t, h0, ti, hi)), 14.0, weighting, project=_project(W, b),
                  score_scale=score_scale, query_norm=query_norm)
    assert got.comclip_score == pytest.approx(expected, abs=1e-6)
    np.testing.assert_allclose(got.weights, w, atol=1e-6)
    for j in range(3):
        keep = [k for k in range(3) if k != j]
        alone, _ = _numpy_official_variants(t, h0, ti[keep], hi[keep], W, b, 14.0, weighting, score_scale, query_norm)
        assert got.loo_scores[j] == pytest.approx(alone, abs=1e-6)
    plain = compose(*(torch.tensor(x) for x in (t, h0, ti, hi)), 14.0, weighting, project=_project(W, b),
                    score_scale=score_scale)
    if query_norm == "l2":
        assert abs(got.comclip_score - plain.comclip_score) > 1e-3  # the option moves the score


def test_single_vector_raw_dot_and_cosine_scores_match_numpy():
    rng = np.random.default_rng(11)
    n, d = 3, 8
    t, v0 = rng.standard_normal(d), 2 + rng.standard_normal(d)
    ti, vi = rng.standard_normal((n, d)) * [[1.0], [3.0], [0.5]], 2 + rng.standard_normal((n, d)) * [[2.0], [1], [4]]
    for score_scale in ("logit", "cosine", "dot"):
        dots = np.einsum("nd,nd->n", ti, vi)
        sims = dots if score_scale == "dot" else dots / (np.linalg.norm(ti, axis=1) * np.linalg.norm(vi, axis=1))
        s = 10.0 * sims if score_scale == "logit" else sims
        for weighting in ("softmax", "sum"):
            w = np.exp(s - s.max()) / np.exp(s - s.max()).sum() if weighting == "softmax" else s / s.sum()
            v = v0 + w @ vi
            got = compose(*(torch.tensor(x) for x in (t, v0, ti, vi)), 10.0, weighting, score_scale=score_scale)
            assert got.comclip_score == pytest.approx(float(_unit(t) @ _unit(v)), abs=1e-6)
            np.testing.assert_allclose(got.similarities, sims, atol=1e-6)
            np.testing.assert_allclose(got.weights, w, atol=1e-6)
