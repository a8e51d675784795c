import numpy as np
import pytest
import torch

from comclip.formula import component_weights, compose


def _unit(rng, *shape):
    x = rng.standard_normal(shape)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _numpy_comclip(t, v0, ti, vi, scale, weighting):
    s = scale * np.sum(ti * vi, axis=1)
    if weighting == "softmax":
        w = np.exp(s - s.max())
        w /= w.sum()
    else:
        w = s / s.sum()
    v = v0 + (w[:, None] * vi).sum(0)
    return float(t @ (v / np.linalg.norm(v))), w


@pytest.mark.parametrize("weighting", ["softmax", "sum"])
def test_compose_matches_independent_numpy(weighting):
    rng = np.random.default_rng(0)
    t, v0 = _unit(rng, 16), _unit(rng, 16)
    ti, vi = _unit(rng, 4, 16), _unit(rng, 4, 16)
    scale = 100.0 if weighting == "softmax" else 10.0
    expected, w = _numpy_comclip(t, v0, ti, vi, scale, weighting)
    got = compose(*(torch.tensor(x) for x in (t, v0, ti, vi)), scale, weighting)
    assert got.comclip_score == pytest.approx(expected, abs=1e-5)
    assert got.clip_score == pytest.approx(float(t @ v0), abs=1e-6)
    np.testing.assert_allclose(got.weights, w, atol=1e-5)
    np.testing.assert_allclose(got.similarities, np.sum(ti * vi, axis=1), atol=1e-6)


@pytest.mark.parametrize("weighting", ["softmax", "sum"])
def test_leave_one_out_equals_recomputation_without_the_component(weighting):
    rng = np.random.default_rng(1)
    t, v0 = _unit(rng, 8), _unit(rng, 8)
    ti, vi = _unit(rng, 3, 8), _unit(rng, 3, 8)
    full = compose(*(torch.tensor(x) for x in (t, v0, ti, vi)), 5.0, weighting)
    for j in range(3):
        keep = [k for k in range(3) if k != j]
        alone = compose(*(torch.tensor(x) for x in (t, v0, ti[keep], vi[keep])), 5.0, weighting)
        assert full.loo_scores[j] == pytest.approx(alone.comclip_score, abs=1e-6)


def test_single_component_loo_is_baseline():
    rng = np.random.default_rng(2)
    t, v0, ti, vi = _unit(rng, 8), _unit(rng, 8), _unit(rng, 1, 8), _unit(rng, 1, 8)
    out = compose(*(torch.tensor(x) for x in (t, v0, ti, vi)), 100.0)
    assert out.weights == pytest.approx([1.0])
    assert out.loo_scores[0] == pytest.approx(out.clip_score, abs=1e-6)


def test_no_components_equals_clip():
    rng = np.random.default_rng(3)
    t, v0 = torch.tensor(_unit(rng, 8)), torch.tensor(_unit(rng, 8))
    out = compose(t, v0, torch.zeros(0, 8), torch.zeros(0, 8), 100.0)
    assert out.comclip_score == out.clip_score
    assert out.weights == [] and out.loo_scores == []


def test_softmax_and_sum_differ_and_sum_weights_are_proportional():
    s = torch.tensor([1.0, 2.0, 5.0])
    np.testing.assert_allclose(component_weights(s, "sum").numpy(), [0.125, 0.25, 0.625], atol=1e-7)
    np.testing.assert_allclose(component_weights(s, "softmax").numpy(), np.exp([1, 2, 5]) / np.exp([1, 2, 5]).sum(),
                               atol=1e-6)


def test_sum_weighting_with_zero_total_falls_back_to_equal():
    np.testing.assert_allclose(component_weights(torch.tensor([1.0, -1.0]), "sum").numpy(), [0.5, 0.5])


def test_unknown_weighting():
    with pytest.raises(ValueError, match="softmax, sum"):
        component_weights(torch.tensor([1.0]), "max")
