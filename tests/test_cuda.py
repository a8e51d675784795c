"""GPU checks: run only where CUDA exists (skipped on CPU-only machines such as CI)."""

import pytest
import torch

from comclip.engine import load

from .conftest import EXAMPLE_IMAGE

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]

CAPTIONS = ["a mug in some grass", "some grass in a mug", "a white mug standing in green grass"]


def test_half_precision_scores_match_fp32_on_cpu(cache_dir):
    cpu = load("tiny", device="cpu", parser="rules")
    gpu = load("tiny", device="cuda", parser="rules")
    assert gpu.encoder.dtype == torch.float16
    a = cpu.match(EXAMPLE_IMAGE, CAPTIONS)
    b = gpu.match(EXAMPLE_IMAGE, CAPTIONS)
    for x, y in zip(a.captions, b.captions, strict=True):
        assert [c.grounded for c in x.components] == [c.grounded for c in y.components]
        assert y.clip_score == pytest.approx(x.clip_score, abs=5e-3)
        assert y.comclip_score == pytest.approx(x.comclip_score, abs=5e-3)


def test_match_batch_equals_match_on_gpu(cache_dir):
    gpu = load("tiny", device="cuda", parser="rules")
    items = [(EXAMPLE_IMAGE, CAPTIONS[:2]), (EXAMPLE_IMAGE, CAPTIONS[1:])]
    batch = gpu.match_batch(items)
    for item, got in zip(items, batch, strict=True):
        alone = gpu.match(*item)
        for x, y in zip(got.captions, alone.captions, strict=True):
            assert x.comclip_score == pytest.approx(y.comclip_score, abs=1e-3)


def test_detector_bf16_agrees_with_fp32_on_cuda(cache_dir):
    """bf16 autocast (the CUDA default) against fp32 on the same GPU: each phrase's 5 best query
    probabilities within 0.05 (tolerance stated for bf16's ~3 significant digits; unmeasured here)."""
    from PIL import Image

    from .test_ground import bf16_agreement

    gpu = load("tiny", device="cuda", parser="rules")
    assert gpu.detector.autocast_dtype == torch.bfloat16
    assert bf16_agreement(gpu.detector, Image.open(EXAMPLE_IMAGE).convert("RGB")) < 0.05


def test_detector_preprocessing_on_cuda_matches_cpu(cache_dir):
    from PIL import Image

    from comclip.ground import preprocess_images

    gpu = load("tiny", device="cuda", parser="rules")
    ip = gpu.detector.processor.image_processor
    image = Image.open(EXAMPLE_IMAGE).convert("RGB")
    on_gpu = preprocess_images([image], ip, torch.device("cuda"))[0]
    assert on_gpu.device.type == "cuda"
    on_cpu = preprocess_images([image], ip, torch.device("cpu"))[0]
    assert (on_gpu.cpu() - on_cpu).abs().max() <= 1 / 255 / min(ip.image_std) + 1e-4  # one uint8 level


def test_detect_batch_is_batch_invariant_on_cuda(cache_dir):
    """Batched vs alone on CUDA in bf16: the same boxes (within 1 px) and scores within 2e-2."""
    import numpy as np
    from PIL import Image

    det = load("tiny", device="cuda", parser="rules").detector
    image = Image.open(EXAMPLE_IMAGE).convert("RGB")
    queries = [(image, ["mug", "grass"]), (image, ["cat"]), (image, ["grass", "young person", "mug"])]
    kw = {"box_threshold": 0.0, "text_threshold": 0.0}
    batched = det.detect_batch(queries, **kw)
    for (im, phrases), got in zip(queries, batched, strict=True):
        alone = det.replace(caching=False).detect(im, phrases, **kw)  # not the batched run's cached output
        for p in phrases:
            np.testing.assert_allclose(got[p].scores, alone[p].scores, atol=2e-2)
            np.testing.assert_allclose(got[p].xyxy, alone[p].xyxy, atol=1.0)
