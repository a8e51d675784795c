"""GPU checks: run only where CUDA exists (skipped on CPU-only machines such as CI)."""

import pytest
import torch

from comclip.engine import ComCLIP

from .conftest import EXAMPLE_IMAGE

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]

CAPTIONS = ["a mug in some grass", "some grass in a mug", "a white mug standing in green grass"]


def test_half_precision_scores_match_fp32_on_cpu(cache_dir):
    cpu = ComCLIP.from_preset("tiny", device="cpu", parser="rules")
    gpu = ComCLIP.from_preset("tiny", device="cuda", parser="rules")
    assert gpu.encoder.dtype == torch.float16
    a = cpu.match(EXAMPLE_IMAGE, CAPTIONS)
    b = gpu.match(EXAMPLE_IMAGE, CAPTIONS)
    for x, y in zip(a.captions, b.captions, strict=True):
        assert [c.grounded for c in x.components] == [c.grounded for c in y.components]
        assert y.clip_score == pytest.approx(x.clip_score, abs=5e-3)
        assert y.comclip_score == pytest.approx(x.comclip_score, abs=5e-3)


def test_match_batch_equals_match_on_gpu(cache_dir):
    gpu = ComCLIP.from_preset("tiny", device="cuda", parser="rules")
    items = [(EXAMPLE_IMAGE, CAPTIONS[:2]), (EXAMPLE_IMAGE, CAPTIONS[1:])]
    batch = gpu.match_batch(items)
    for item, got in zip(items, batch, strict=True):
        alone = gpu.match(*item)
        for x, y in zip(got.captions, alone.captions, strict=True):
            assert x.comclip_score == pytest.approx(y.comclip_score, abs=1e-3)
