"""The detector in three parts (comclip.dino) and the CPU path: the same answers as the model's own forward."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image
from transformers.models.grounding_dino.modeling_grounding_dino import MultiScaleDeformableAttention

from comclip import dino
from comclip.errors import InputError
from comclip.ground import GroundingDINO, build_prompt
from comclip.presets import DetectorSpec

from .conftest import ROOT

PHRASE_SETS = [["mug", "grass"], ["red mug", "young person", "dog on a bench"], ["cat"]]


def _detector(tiny_engine, backend: str) -> GroundingDINO:
    d = tiny_engine.detector
    return GroundingDINO(d.model, d.processor, device=d.device, name=d.name, box_threshold=0.0, text_threshold=0.0,
                         boxes_per_entity=2, backend=backend)


def _images() -> list[Image.Image]:
    rng = np.random.RandomState(3)
    return [Image.fromarray((rng.rand(h, w, 3) * 255).astype(np.uint8), "RGB") for w, h in ((320, 240), (320, 240))]


def test_three_parts_are_the_models_own_forward(tiny_engine):
    """Image part once, repeated for each of its prompts; prompts of different lengths padded: the
    logits and boxes of the model's own forward (rows of two images, three prompts)."""
    det = _detector(tiny_engine, "transformers")
    pixels = det.preprocess(_images())
    rows = [0, 0, 1]
    enc = det.processor.tokenizer([build_prompt(p)[0] for p in PHRASE_SETS], padding="longest", return_tensors="pt")
    with torch.inference_mode():
        ref = det.model(pixel_values=torch.stack([pixels[r] for r in rows]), **enc)
        vision = dino.image_part(det.model, torch.stack(pixels)).rows(rows)
        text = dino.text_part(det.model, enc["input_ids"], enc["attention_mask"], enc["token_type_ids"])
        logits, boxes = dino.fusion_part(det.model, vision, text)
    finite = torch.isfinite(ref.logits)
    assert torch.equal(finite, torch.isfinite(logits))  # the same padded tokens masked
    assert (logits - ref.logits)[finite].abs().max() <= 1e-5
    assert (boxes - ref.pred_boxes).abs().max() <= 1e-6


def _sampling_inputs(seed: int = 0):
    torch.manual_seed(seed)
    shapes = [(12, 17), (6, 9), (3, 5), (2, 3)]
    b, heads, dim, q, levels, points = 2, 4, 8, 50, len(shapes), 3
    s = sum(h * w for h, w in shapes)
    value = torch.randn(b, s, heads, dim)
    # sampling locations inside, on the border and far outside the maps (zero padding must apply)
    loc = torch.rand(b, q, heads, levels, points, 2) * 1.6 - 0.3
    loc[0, 0, 0, 0, 0] = torch.tensor([0.0, 1.0])
    loc[0, 1, 0, 0, 0] = torch.tensor([-5.0, 7.0])
    weights = torch.softmax(torch.randn(b, q, heads, levels * points), -1).view(b, q, heads, levels, points)
    spatial = torch.tensor(shapes)
    starts = torch.cat([spatial.new_zeros(1), spatial.prod(1).cumsum(0)[:-1]])
    return value, spatial, shapes, starts, loc, weights


def test_gather_sampling_is_grid_sampling():
    args = _sampling_inputs()
    with torch.inference_mode():
        ref = MultiScaleDeformableAttention()(*args, 64)
        got = dino.GatherSampling()(*args, 64)
    assert got.shape == ref.shape
    assert (got - ref).abs().max() <= 1e-5


def test_backends_give_the_same_boxes_and_scores(tiny_engine):
    """``torch`` (three parts, image part once per image, gather sampling on the CPU) against the
    model's own forward: every box within 1e-3 px, every score within 1e-5."""
    requests = [(im, p) for im in _images() for p in PHRASE_SETS]
    fast = _detector(tiny_engine, "torch")  # the wrappers share one model: build each just before its use
    try:
        assert all(isinstance(m.attn, dino.GatherSampling) for m in fast.model.modules() if hasattr(m, "attn")
                   and type(m).__name__ == "GroundingDinoMultiscaleDeformableAttention")
        got = fast.detect_batch(requests)
        assert fast.image_passes == 1 and fast.units_detected == 6  # two equal-size images: one image part
        eager = _detector(tiny_engine, "transformers")
        ref = eager.detect_batch(requests)
        assert eager.image_passes == 0
    finally:
        fast.use_backend("torch")  # the shared model's sampling as the tiny engine had it
    for g, r in zip(got, ref, strict=True):
        assert list(g) == list(r)
        for phrase in g:
            np.testing.assert_allclose(g[phrase].xyxy, r[phrase].xyxy, atol=1e-3)
            np.testing.assert_allclose(g[phrase].scores, r[phrase].scores, atol=1e-5)


def test_phrase_sets_of_one_image_share_its_image_part(tiny_engine, noise_image):
    """Exact savings: several phrase sets on one image run its image part once, and each gets what it
    gets alone (≤ 1e-6)."""
    det = _detector(tiny_engine, "torch")
    together = det.detect_batch([(noise_image, p) for p in PHRASE_SETS])
    assert det.image_passes == 1 and det.units_detected == 3
    for phrases, got in zip(PHRASE_SETS, together, strict=True):
        alone = det.detect(noise_image, phrases)
        for phrase in phrases:
            np.testing.assert_allclose(got[phrase].xyxy, alone[phrase].xyxy, atol=1e-4)
            np.testing.assert_allclose(got[phrase].scores, alone[phrase].scores, atol=1e-6)
    assert det.image_passes == 1 + len(PHRASE_SETS)


def test_backend_choices_and_errors(tiny_engine):
    det = tiny_engine.detector
    assert det.backend == "torch"  # auto, for a transformers Grounding DINO
    with pytest.raises(InputError, match="unknown detector backend 'onnx'; choose one of: auto, torch, transformers"):
        det.use_backend("onnx")
    with pytest.raises(InputError, match="unknown detector backend"):
        DetectorSpec(model="x", backend="onnx")

    class NotDino(torch.nn.Module):
        config = type("C", (), {"max_text_len": 256})()

    other = GroundingDINO(NotDino(), det.processor, device=torch.device("cpu"), name="other")
    assert other.backend == "transformers"  # auto falls back to the model's own forward
    with pytest.raises(InputError, match="torch detector backend needs a two-stage"):
        other.use_backend("torch")


def test_detector_size_is_the_shortest_edge_read():
    assert DetectorSpec(model="x").size_rule() is None
    assert DetectorSpec(model="x", size=512).size_rule() == {"shortest_edge": 512, "longest_edge": 853}
    with pytest.raises(InputError, match="detector size must be a whole number >= 64, got 32"):
        DetectorSpec(model="x", size=32)


def test_cli_detector_size_and_backend_reach_the_detector(tiny_engine):
    import argparse

    from comclip.cli.common import add_model_options, preset_from_args
    from comclip.loading import load_detector

    p = argparse.ArgumentParser()
    add_model_options(p, preset="tiny")
    args = p.parse_args(["--detector-size", "96", "--detector-backend", "transformers"])
    spec = preset_from_args(args).detector
    det = load_detector(spec, torch.device("cpu"))
    assert det.backend == "transformers"
    assert tuple(det.preprocess([Image.new("RGB", (300, 200))])[0].shape) == (3, 96, 144)


@pytest.mark.skipif(sys.platform != "linux", reason="glibc's mallopt")
def test_keep_freed_memory_is_on_by_default_and_can_be_turned_off():
    code = "from comclip.cpu import keep_freed_memory as k; print(k(), k())"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    on = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    off = subprocess.run([sys.executable, "-c", code], env={**env, "COMCLIP_KEEP_FREED_MEMORY": "0"},
                         capture_output=True, text=True, check=True)
    assert on.stdout.split() == ["True", "True"] and off.stdout.split() == ["False", "False"]


@pytest.mark.skipif(sys.platform != "linux", reason="glibc's mallopt")
def test_loading_a_detector_leaves_the_process_allocator_alone(tiny_engine):
    """Issue 23: keeping freed memory is a start-up decision of a program (the CLI, the app), not a side
    effect of loading a detector on the CPU."""
    code = ("import torch; from comclip.loading import load_detector; from comclip.presets import get_preset; "
            "from comclip.cpu import freed_memory_kept as kept; "
            "load_detector(get_preset('tiny').detector, torch.device('cpu')); print(kept())")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split()[-1] == "None"


def test_the_command_line_keeps_freed_memory_at_start(monkeypatch, capsys):
    from comclip.cli import main as cli_main

    calls = []
    monkeypatch.setattr(cli_main, "keep_freed_memory", lambda: calls.append(1) or True)
    assert cli_main.main(["--help"]) == 0
    capsys.readouterr()
    assert calls == [1]
