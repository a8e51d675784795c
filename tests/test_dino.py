"""The detector in three parts (comclip.dino) and the CPU path: the same answers as the model's own forward."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import numpy as np
import pytest
import torch
from PIL import Image
from transformers.models.grounding_dino.modeling_grounding_dino import MultiScaleDeformableAttention

from comclip import dino
from comclip.bench.count import count_detector
from comclip.errors import InputError
from comclip.ground import GroundingDINO, build_prompt
from comclip.presets import DetectorSpec

from .conftest import ROOT

PROMPTS = [["mug", "grass"], ["red mug", "young person", "dog on a bench"], ["cat"]]


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
    enc = det.processor.tokenizer([build_prompt(p)[0] for p in PROMPTS], padding="longest", return_tensors="pt")
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


def _gather_at(value, spatial, shapes, starts, locations, weights, im2col_step=64):
    """``dino.gather_sampling`` called as transformers' ``MultiScaleDeformableAttention`` is (locations
    in [0, 1] per level), with positions in pixels as grid_sample computes them (location × size − 0.5)."""
    wh = torch.tensor([[w, h] for h, w in shapes], dtype=torch.float32).view(1, 1, 1, len(shapes), 1, 2)
    pixels = locations.float() * wh - 0.5
    return dino.gather_sampling(value, shapes, pixels[..., 0], pixels[..., 1], weights)


def test_gather_sampling_is_grid_sampling():
    args = _sampling_inputs()
    with torch.inference_mode():
        ref = MultiScaleDeformableAttention()(*args, 64)
        got = _gather_at(*args)
    assert got.shape == ref.shape
    assert (got - ref).abs().max() <= 1e-5


@pytest.mark.parametrize("coordinates", [2, 4])
def test_cpu_deformable_attention_is_the_models(coordinates):
    """The CPU deformable attention (positions in pixels, one gather) gives the model's own output and
    attention weights, for the encoder's point references (2) and the decoder's box references (4),
    with padded pixels masked out of the values, at the real model's width."""
    from transformers import GroundingDinoConfig
    from transformers.models.grounding_dino.modeling_grounding_dino import GroundingDinoMultiscaleDeformableAttention

    torch.manual_seed(2)
    attn = GroundingDinoMultiscaleDeformableAttention(GroundingDinoConfig(d_model=256), num_heads=8, n_points=3).eval()
    for p in attn.parameters():
        torch.nn.init.normal_(p, std=0.2)
    shapes = [(20, 30), (10, 15), (5, 8), (3, 4)]
    spatial = torch.tensor(shapes)
    starts = torch.cat([spatial.new_zeros(1), spatial.prod(1).cumsum(0)[:-1]])
    source = torch.randn(2, sum(h * w for h, w in shapes), 256)
    queries = torch.randn(2, 40, 256)
    mask = torch.ones(2, source.shape[1], dtype=torch.bool)
    mask[1, -30:] = False  # the second row's last pixels are padding
    ref = torch.rand(2, 40, len(shapes), coordinates) * 1.2 - 0.1  # some near and beyond the border
    kwargs = {"hidden_states": queries, "attention_mask": mask, "encoder_hidden_states": source,
              "position_embeddings": torch.randn(2, 40, 256) * 0.1, "reference_points": ref,
              "spatial_shapes": spatial, "spatial_shapes_list": shapes, "level_start_index": starts}
    with torch.inference_mode():
        ref_out, ref_weights = attn(**kwargs)
        out, weights = dino.deformable_attention(attn, **kwargs)
    assert torch.equal(weights, ref_weights)
    assert ref_out.abs().max() > 0.1
    assert (out - ref_out).abs().max() <= 1e-4 * ref_out.abs().max()
    _same_under_autocast(lambda: attn(**kwargs)[0], lambda: dino.deformable_attention(attn, **kwargs)[0])


def test_gather_sampling_is_exact_on_a_large_table():
    """The flat row index (row in the padded maps × heads + head) is computed in integers: past 2**24
    rows × heads a float32 index would read a neighbouring head (one 1,500 × 1,500 map, 8 heads)."""
    torch.manual_seed(4)
    shapes = [(1500, 1500)]
    value = torch.randn(1, 1500 * 1500, 8, 1)
    loc = torch.rand(1, 64, 8, 1, 2, 2) * 0.05 + 0.95  # the map's far corner: the largest indices
    weights = torch.softmax(torch.randn(1, 64, 8, 2), -1).view(1, 64, 8, 1, 2)
    spatial = torch.tensor(shapes)
    args = (value, spatial, shapes, torch.zeros(1, dtype=torch.long), loc, weights)
    with torch.inference_mode():
        ref = MultiScaleDeformableAttention()(*args, 64)
        got = _gather_at(*args)
    assert (got - ref).abs().max() <= 1e-5


def test_backends_give_the_same_boxes_and_scores(tiny_engine):
    """``torch`` (three parts, image part once per image, CPU kernels) against the
    model's own forward: every box within 1e-3 px, every score within 1e-5."""
    queries = [(im, p) for im in _images() for p in PROMPTS]
    fast, eager = _detector(tiny_engine, "torch"), _detector(tiny_engine, "transformers")  # one model, shared
    assert fast.kernels == "cpu" and eager.kernels == "native"
    with count_detector(fast) as counted:
        got = fast.detect_batch(queries)
    # two images, their parts alone (batch size 1 on the CPU); three prompts' text parts; six fusions
    assert (counted.image_parts, counted.text_parts, counted.fusions, counted.units) == (2, 3, 6, 6)
    with count_detector(eager) as counted:
        ref = eager.detect_batch(queries)
    assert (counted.model_forwards, counted.image_parts, counted.units) == (6, 0, 6)
    for g, r in zip(got, ref, strict=True):
        assert list(g) == list(r)
        for phrase in g:
            np.testing.assert_allclose(g[phrase].xyxy, r[phrase].xyxy, atol=1e-3)
            np.testing.assert_allclose(g[phrase].scores, r[phrase].scores, atol=1e-5)


def test_prompts_on_one_image_share_its_image_part(tiny_engine, noise_image):
    """Exact savings: several prompts on one image run its image part once, and each gets exactly
    what it gets alone (nothing cached)."""
    det = _detector(tiny_engine, "torch").replace(caching=False)
    with count_detector(det) as counted:
        together = det.detect_batch([(noise_image, p) for p in PROMPTS])
        assert (counted.image_parts, counted.units) == (1, 3)
        for phrases, got in zip(PROMPTS, together, strict=True):
            assert det.detect(noise_image, phrases) == got
    assert counted.image_parts == 1 + len(PROMPTS)


def test_backend_choices_and_errors(tiny_engine):
    det = tiny_engine.detector
    assert det.backend == "torch"  # auto, for a transformers Grounding DINO
    with pytest.raises(InputError, match="unknown detector backend 'onnx'; choose one of: auto, torch, transformers"):
        det.replace(backend="onnx")
    with pytest.raises(InputError, match="unknown detector backend"):
        DetectorSpec(model="x", backend="onnx")
    with pytest.raises(TypeError, match="unknown settings colour"):
        det.replace(colour="red")
    assert det.kernels == "cpu" and det.replace(kernels="native").kernels == "native"  # auto: cpu on the CPU
    assert det.replace(kernels="native").replace(batch_size=2).kernels == "native"  # kept by replace
    with pytest.raises(InputError, match="unknown detector kernels 'simd'; choose one of: auto, native, cpu"):
        det.replace(kernels="simd")

    class NotDino(torch.nn.Module):
        config = type("C", (), {"max_text_len": 256})()

    other = GroundingDINO(NotDino(), det.processor, device=torch.device("cpu"), name="other")
    assert other.backend == "transformers" and other.kernels == "native"  # auto: the model's own forward
    with pytest.raises(InputError, match="torch detector backend needs a two-stage"):
        other.replace(backend="torch")


def test_wrappers_sharing_a_model_never_change_each_others_kernels(tiny_engine, monkeypatch):
    """Issue 23: the kernels are chosen per forward (a context variable), not by swapping modules on the
    shared model. Two wrappers of one model — CPU kernels and transformers' own — detect from two
    threads at once: every deformable attention's sampling and every text–image cross-attention a
    thread runs uses its own wrapper's kernels, and each gets exactly the results it gets alone. Outside
    a wrapper the model computes as shipped, with the state dict it was loaded with."""
    from transformers.models.grounding_dino.modeling_grounding_dino import (
        GroundingDinoBiMultiHeadAttention,
        GroundingDinoMultiheadAttention,
        GroundingDinoMultiscaleDeformableAttention,
    )

    fast = _detector(tiny_engine, "torch").replace(caching=False)
    eager = _detector(tiny_engine, "transformers").replace(caching=False)
    queries = [(im, p) for im in _images()[:1] for p in PROMPTS[:2]]
    alone = {"fast": fast.detect_batch(queries), "eager": eager.detect_batch(queries)}
    used: dict[str, set[str]] = {}
    names: dict[int, str] = {}

    def spy(owner, attribute, label):
        original = getattr(owner, attribute)

        def spied(*args, **kwargs):
            used.setdefault(names.get(threading.get_ident(), "main"), set()).add(label)
            return original(*args, **kwargs)

        monkeypatch.setattr(owner, attribute, spied)

    spy(dino, "deformable_attention", "deformable")
    spy(MultiScaleDeformableAttention, "forward", "native sampling")
    spy(dino, "folded_bi_attention", "folded")
    spy(GroundingDinoBiMultiHeadAttention, "forward", "native cross-attention")
    spy(dino, "scaled_attention", "scaled")
    spy(GroundingDinoMultiheadAttention, "forward", "native attention")
    barrier = threading.Barrier(2)
    results: dict[str, list] = {}

    def work(label, det):
        names[threading.get_ident()] = label
        barrier.wait()
        results[label] = [det.detect_batch(queries) for _ in range(3)]

    threads = [threading.Thread(target=work, args=(label, det)) for label, det in (("fast", fast), ("eager", eager))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    native = {"native sampling", "native cross-attention", "native attention"}
    assert used == {"fast": {"deformable", "folded", "scaled"}, "eager": native}
    assert all(r == alone["fast"] for r in results["fast"]) and all(r == alone["eager"] for r in results["eager"])
    pixels = fast.preprocess(_images()[:1])[0][None]
    enc = fast.processor.tokenizer(["cat."], return_tensors="pt")
    with torch.inference_mode():
        fast.model(pixel_values=pixels, **enc)
    assert used["main"] == native  # outside any wrapper: as shipped
    for shipped, switch in ((GroundingDinoBiMultiHeadAttention, dino.BiAttentionSwitch),
                            (GroundingDinoMultiheadAttention, dino.AttentionSwitch),
                            (GroundingDinoMultiscaleDeformableAttention, dino.DeformableAttentionSwitch)):
        modules = [m for m in fast.model.modules() if isinstance(m, shipped)]
        assert modules and all(type(m) is switch for m in modules)
    assert dino.install_switches(fast.model) == 0  # idempotent
    assert list(fast.model.state_dict()) == list(type(fast.model)(fast.model.config).state_dict())
    with pytest.raises(ValueError, match="unknown detector kernels 'gpu'; choose one of: native, cpu"):
        with dino.kernels("gpu"):
            pass


def test_scaled_attention_is_the_models_attention():
    """Multi-head attention with the scale on the queries: the model's output and weights, queries and
    keys of different lengths (the decoder's text cross-attention: 40 × 13), keys and values apart, with
    an additive mask (the text enhancer's) and without; under bf16 autocast, the model's dtype and an
    error of the model's size."""
    from transformers import GroundingDinoConfig
    from transformers.models.grounding_dino.modeling_grounding_dino import GroundingDinoMultiheadAttention

    torch.manual_seed(3)
    attn = GroundingDinoMultiheadAttention(GroundingDinoConfig(d_model=256), num_attention_heads=8).eval()
    for p in attn.parameters():
        torch.nn.init.normal_(p, std=0.1)
    queries, keys, values = torch.randn(2, 40, 256), torch.randn(2, 13, 256), torch.randn(2, 13, 256)
    mask = torch.zeros(2, 8, 40, 13)
    mask[1, :, :, 10:] = torch.finfo(torch.float32).min  # the second row's last keys are padding
    for m in (None, mask):
        with torch.inference_mode():
            ref_out, ref_probs = attn(queries, keys, values, attention_mask=m, output_attentions=True)
            out, probs = dino.scaled_attention(attn, queries, keys, values, attention_mask=m, output_attentions=True)
        assert ref_out.abs().max() > 0.1
        assert (out - ref_out).abs().max() <= 1e-4 * ref_out.abs().max()
        assert (probs - ref_probs).abs().max() <= 1e-5
    assert probs[1, :, :, 10:].max() == 0.0
    _same_under_autocast(lambda: attn(queries, keys, values, attention_mask=mask)[0],
                         lambda: dino.scaled_attention(attn, queries, keys, values, attention_mask=mask)[0])


def _same_under_autocast(native, cpu_kernel) -> None:
    """Under bf16 autocast a CPU kernel returns the model's dtype, off the fp32 answer by no more than
    twice what the model's own bf16 forward is (and at most 25 %: sampling positions in bf16 move)."""
    with torch.inference_mode():
        exact = native().float()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            theirs, ours = native(), cpu_kernel()
    assert ours.dtype == theirs.dtype
    scale = exact.abs().max()
    model_error = (theirs.float() - exact).abs().max() / scale
    assert (ours.float() - exact).abs().max() / scale <= min(max(2 * model_error, 0.01), 0.25)


def _cross_attention_inputs(seed: int = 0):
    torch.manual_seed(seed)
    vision, text = torch.randn(2, 300, 256) * 3, torch.randn(2, 7, 256) * 3
    vision_pad = torch.zeros(2, 300, dtype=torch.bool)
    vision_pad[1, 250:] = True  # the second row's last pixels are padding
    text_pad = torch.zeros(2, 7, dtype=torch.bool)
    text_pad[0, 5:] = True  # the first row's last two tokens are padding
    return vision, text, vision_pad, text_pad


def test_folded_cross_attention_is_the_models_cross_attention():
    """The text–image cross-attention computed through the text tokens gives the model's outputs for
    both directions, with padded text tokens and padded pixels masked, at the real model's width."""
    from transformers import GroundingDinoConfig
    from transformers.models.grounding_dino.modeling_grounding_dino import GroundingDinoBiMultiHeadAttention

    torch.manual_seed(1)
    attn = GroundingDinoBiMultiHeadAttention(GroundingDinoConfig(d_model=256, encoder_ffn_dim=2048,
                                                                 encoder_attention_heads=8)).eval()
    for p in attn.parameters():  # the layer's own init is near zero: make every term matter
        torch.nn.init.normal_(p, std=0.05)
    args = _cross_attention_inputs()
    with torch.inference_mode():
        (ref_v, _), (ref_t, _) = attn(*args)
        (got_v, _), (got_t, _) = dino.folded_bi_attention(attn, *args)
    assert got_v.shape == ref_v.shape and got_t.shape == ref_t.shape
    assert ref_v.abs().max() > 0.5 and ref_t.abs().max() > 0.05
    assert (got_v - ref_v).abs().max() <= 1e-4 * ref_v.abs().max()
    assert (got_t - ref_t).abs().max() <= 1e-4 * ref_t.abs().max()
    # a padded text token changes nothing; a padded pixel changes no text output
    vision, text, vision_pad, text_pad = args
    moved = text.clone()
    moved[0, 5:] += 10
    with torch.inference_mode():
        (again_v, _), _ = dino.folded_bi_attention(attn, vision, moved, vision_pad, text_pad)
    assert torch.allclose(again_v[0], got_v[0], atol=1e-5)
    moved = vision.clone()
    moved[1, 250:] += 10
    with torch.inference_mode():
        _, (again_t, _) = dino.folded_bi_attention(attn, moved, text, vision_pad, text_pad)
    assert torch.allclose(again_t[1], got_t[1], atol=1e-5)
    _same_under_autocast(lambda: attn(*args)[0][0], lambda: dino.folded_bi_attention(attn, *args)[0][0])
    _same_under_autocast(lambda: attn(*args)[1][0], lambda: dino.folded_bi_attention(attn, *args)[1][0])


def test_switched_models_copy_and_pickle_and_the_switches_are_made_once(tiny_engine):
    """A model with its attention blocks switched deep-copies (the copy computes the same), and a switched
    module pickles as its class (found by name); the switch classes are made once even when several
    threads ask first (a fresh process)."""
    import copy
    import pickle

    det = _detector(tiny_engine, "torch").replace(caching=False)
    twin = det.replace(caching=False)
    twin.model = copy.deepcopy(det.model)
    query = [(_images()[0], PROMPTS[1])]
    assert twin.detect_batch(query) == det.detect_batch(query)
    attn = next(m for m in det.model.modules() if type(m) is dino.BiAttentionSwitch)
    assert type(pickle.loads(pickle.dumps(attn))) is dino.BiAttentionSwitch
    code = ("import threading; from comclip import dino; b = threading.Barrier(4); seen = []\n"
            "def ask(): b.wait(); seen.append(tuple(dino._switches().values()))\n"
            "ts = [threading.Thread(target=ask) for _ in range(4)]; [t.start() for t in ts]; [t.join() for t in ts]\n"
            "print(len(set(seen)), len(seen))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.stdout.split() == ["1", "4"], out.stderr


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
