"""BLIP-2 (transformers ``Blip2ForImageTextRetrieval``) as a multi-query encoder: equal to the model's
own ITC forward, composed by the engine as the formula says, scored from the CLI offline."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from comclip.cli.main import main
from comclip.encoders import Encoder, is_multi_query, similarity
from comclip.encoders.blip2 import blip2_config, blip_caption
from comclip.loading import load_encoder, resolve_device
from comclip.presets import model_config

from .conftest import EXAMPLE_IMAGE

CAPS = ["a mug in some grass", "some grass in a mug"]


@pytest.fixture(scope="module")
def blip2_engine(cache_dir):
    import comclip

    return comclip.load("tiny-blip2", device="cpu", parser="rules")


def _images():
    rng = np.random.RandomState(1)
    return [Image.fromarray((rng.rand(70, 90, 3) * 255).astype(np.uint8)), Image.new("RGB", (64, 64), (0, 90, 0)),
            Image.new("RGB", (30, 50), (200, 10, 10))]


def test_encoder_equals_the_models_own_itc_forward(blip2_engine):
    enc = blip2_engine.encoder
    assert isinstance(enc, Encoder) and is_multi_query(enc)
    images, texts = _images(), ["A mug (in) some grass.", "green", "a red thing"]
    rows = enc.encode_images(images)
    assert rows.shape == (3, enc.num_queries, enc.query_dim) == (3, 8, 32) and rows.dtype == torch.float32
    t = enc.encode_texts(texts)
    torch.testing.assert_close(t.norm(dim=-1), torch.ones(3))
    p = torch.nn.functional.normalize(enc.project_queries(rows), dim=-1)
    ours = torch.einsum("iqd,td->itq", p, t).amax(-1)
    tok = enc.tokenizer([blip_caption(x) for x in texts], padding=True, return_tensors="pt")
    with torch.no_grad():
        ref = enc.model(pixel_values=enc.preprocess(images), input_ids=tok["input_ids"],
                        attention_mask=tok["attention_mask"], use_image_text_matching_head=False).logits_per_image
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=0)
    torch.testing.assert_close(similarity(enc, t, rows), ref.T, atol=1e-5, rtol=0)  # (texts, images)
    old = enc.batch_size
    try:  # batches of 2 + 1 give the rows of each image encoded alone
        enc.batch_size = 2
        torch.testing.assert_close(enc.encode_images(images), torch.cat([enc.encode_images([im]) for im in images]),
                                   atol=1e-5, rtol=0)
    finally:
        enc.batch_size = old
    assert blip_caption('A mug (in) "some" grass.') == "a mug in some grass"
    assert enc.count_tokens("a mug") == 4 and enc.context_length == 64


def _projection(enc):
    w = enc.model.vision_projection.weight.detach().double().numpy()
    b = enc.model.vision_projection.bias.detach().double().numpy()
    return w, b


def _best(t, h, w, b):
    p = h @ w.T + b
    return float(np.max(p @ t / np.linalg.norm(p, axis=-1)))


def test_cli_score_offline_and_formula_recomputed_from_per_query_debug_embeddings(capsys, blip2_engine):
    code = main(["score", str(EXAMPLE_IMAGE), *CAPS, "--preset", "tiny-blip2", "--parser", "rules", "--json",
                 "--debug-embeddings"])
    out, err = capsys.readouterr()
    assert code == 0, err
    d = json.loads(out)
    w, b = _projection(blip2_engine.encoder)
    h0 = np.array(d["global_image_embedding"])
    assert h0.shape == (8, 32)  # per-query arrays
    scale = d["logit_scale"]
    for cap in d["captions"]:
        t = np.array(cap["text_embedding"])
        assert cap["clip_score"] == pytest.approx(_best(t, h0, w, b), abs=1e-5)
        comps = cap["components"]
        assert comps, "the rules parser finds mug and grass"
        hi = [np.array(c["image_embedding"]) for c in comps]
        s = np.array([scale * _best(np.array(c["text_embedding"]), h, w, b) for c, h in zip(comps, hi, strict=True)])
        wt = np.exp(s - s.max()) / np.exp(s - s.max()).sum()
        h_star = h0 + sum(wi * h for wi, h in zip(wt, hi, strict=True))
        assert cap["comclip_score"] == pytest.approx(_best(t, h_star, w, b), abs=1e-5)
        np.testing.assert_allclose([c["weight"] for c in comps], wt, atol=1e-5)
        np.testing.assert_allclose([c["similarity"] for c in comps], s / scale, atol=1e-5)
    code = main(["score", str(EXAMPLE_IMAGE), *CAPS, "--preset", "tiny-blip2", "--parser", "rules"])
    out, err = capsys.readouterr()
    assert code == 0 and "ComCLIP" in out and "random weights" in out, err


def test_engine_sum_weighting_and_no_component_caption(blip2_engine):
    res = blip2_engine.match(EXAMPLE_IMAGE, CAPS, graphs=[None, {"entities": [], "relations": []}],
                             weighting="sum", parser="rules")
    full, empty = res.captions
    total = sum(c.similarity for c in full.components)
    assert len(full.components) >= 2
    np.testing.assert_allclose([c.weight for c in full.components],
                               [c.similarity / total for c in full.components], atol=1e-6)
    assert not empty.components and empty.comclip_score == empty.clip_score  # BLIP-2's own score


def test_arch_blip2_has_the_itm_vit_g_geometry():
    """Built on the meta device: EVA ViT-g/14 (39 layers, width 1408), BERT-base Q-Former, 32 queries."""
    from transformers import Blip2ForImageTextRetrieval

    with torch.device("meta"):
        model = Blip2ForImageTextRetrieval(blip2_config(model_config("blip2", "arch-itm-vit-g")))
    cfg = model.config
    assert (cfg.vision_config.hidden_size, cfg.vision_config.num_hidden_layers, cfg.vision_config.patch_size,
            cfg.vision_config.image_size) == (1408, 39, 14, 224)
    assert (cfg.qformer_config.hidden_size, cfg.qformer_config.num_hidden_layers, cfg.num_query_tokens,
            cfg.image_text_hidden_size) == (768, 12, 32, 256)
    assert model.query_tokens.shape == (1, 32, 768) and model.vision_projection.weight.shape == (256, 768)
    assert sum(p.numel() for p in model.parameters()) == pytest.approx(1.172e9, rel=1e-3)


def test_blip2_preset_offline_fails_with_one_clear_error(monkeypatch):
    from huggingface_hub import try_to_load_from_cache

    from comclip.errors import ModelUnavailableError
    from comclip.presets import get_preset

    if isinstance(try_to_load_from_cache("Salesforce/blip2-itm-vit-g", "config.json"), str):
        pytest.skip("the real BLIP-2 is cached on this machine")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    preset = get_preset("blip2")
    with pytest.raises(ModelUnavailableError, match="Salesforce/blip2-itm-vit-g.*4.7 GB"):
        load_encoder(preset.encoder, resolve_device("cpu"))
