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
        load_encoder(preset.encoder, resolve_device("cpu"), preset)


# -- the official comblip.py and VL-CheckList notebook, restated in NumPy (docs/fidelity.md) ------------------

@pytest.fixture(scope="module")
def biased_blip2(cache_dir):
    """tiny-blip2 with a non-zero ``vision_projection`` bias (the real one has one; the seeded tiny one is 0):
    only then does normalising the composed query vectors before the projection change the score much."""
    import comclip

    engine = comclip.load("tiny-blip2", device="cpu", parser="rules")
    proj = engine.encoder.model.vision_projection
    with torch.no_grad():
        proj.bias.copy_(0.5 * torch.randn(proj.bias.shape, generator=torch.Generator().manual_seed(5)))
    assert proj.bias.abs().max() > 0.1
    return engine


def official_comblip(t, h0, t_i, h_i, w, b, normalise_queries):
    """winoground/comblip.py (75ef16e): a component's score is ``(image_embeds_proj @ text_embeds_proj.T).max()``
    (L34) — the raw max over queries of the cosine of the projected, normalised query outputs and the text;
    weights ``normalize_tensor_list`` (L64: over their plain sum); ``original_image_embed += score * image`` on
    the 32 x 768 query outputs (L65-66); each query vector normalised over its last dimension (L67); then
    ``F.normalize(vision_proj(.))`` dotted with the text and the max over queries (L68). The VL-CheckList
    notebook (demo/VL-checklist/ComBLIP_BLIP.ipynb, lines 298-301 of the file) skips L67."""
    def embeds_proj(h):
        p = np.asarray(h, np.float64) @ w.T + b
        return p / np.linalg.norm(p, axis=-1, keepdims=True)

    sims = np.array([float((embeds_proj(h) @ np.asarray(ti, np.float64)).max())
                     for ti, h in zip(t_i, h_i, strict=True)])
    weights = sims / sims.sum()
    h_star = np.asarray(h0, np.float64) + sum(wk * np.asarray(h, np.float64)
                                              for wk, h in zip(weights, h_i, strict=True))
    if normalise_queries:
        h_star = h_star / np.linalg.norm(h_star, axis=-1, keepdims=True)
    return float((embeds_proj(h_star) @ np.asarray(t, np.float64)).max()), sims, weights


@pytest.mark.parametrize("source", ["winoground", "vl-checklist"])
def test_official_blip2_sources_match_their_numpy_restatement(biased_blip2, source):
    from comclip.options import Options

    from .test_official import MUG

    opts = Options.official("blip2", source)
    r = biased_blip2.match(EXAMPLE_IMAGE, [MUG.caption], [MUG], **opts.to_dict())
    c = r.captions[0]
    w, b = _projection(biased_blip2.encoder)
    expected, sims, weights = official_comblip(
        c.text_embedding, r.global_image_embedding, [k.text_embedding for k in c.components],
        [k.image_embedding for k in c.components], w, b, normalise_queries=source == "winoground")
    assert opts.query_norm == ("l2" if source == "winoground" else "none") and opts.score_scale == "cosine"
    assert c.comclip_score == pytest.approx(expected, abs=1e-6)
    np.testing.assert_allclose([k.similarity for k in c.components], sims, atol=1e-6)
    np.testing.assert_allclose([k.weight for k in c.components], weights, atol=1e-6)
    assert c.clip_score == pytest.approx(_best(c.text_embedding, r.global_image_embedding, w, b), abs=1e-6)


def test_blip2_options_move_the_score(biased_blip2):
    from .test_official import MUG

    def one(**options):
        return biased_blip2.match(EXAMPLE_IMAGE, [MUG.caption], [MUG], **options).captions[0]

    base, normed = one(), one(query_norm="l2")
    assert abs(normed.comclip_score - base.comclip_score) > 0.01  # 0.053 on this model
    raw = one(score_scale="cosine")  # softmax over the raw cosines instead of x 1/0.07: flatter weights
    assert max(abs(a.weight - c.weight) for a, c in zip(base.components, raw.components, strict=True)) > 1e-3
    assert raw.comclip_score != base.comclip_score
    # a caption with no components: BLIP-2's own score by default; the Winoground script's value with l2
    empty = {"entities": [], "relations": []}
    plain = biased_blip2.match(EXAMPLE_IMAGE, ["a mug"], [empty]).captions[0]
    quirk = biased_blip2.match(EXAMPLE_IMAGE, ["a mug"], [empty], query_norm="l2")
    w, b = _projection(biased_blip2.encoder)
    h0 = quirk.global_image_embedding
    assert plain.comclip_score == plain.clip_score
    assert quirk.captions[0].comclip_score == pytest.approx(
        _best(quirk.captions[0].text_embedding, h0 / np.linalg.norm(h0, axis=-1, keepdims=True), w, b), abs=1e-6)
    assert abs(quirk.captions[0].comclip_score - plain.clip_score) > 0.01
    # BLIP-2's own preprocessing squashes already; raw embeddings change nothing (its rows are raw)
    assert one(resize="squash").comclip_score == base.comclip_score
    assert one(embeddings="raw").comclip_score == base.comclip_score


def test_cli_official_blip2_records_the_source(capsys, cache_dir):
    from .test_official import MUG

    cases = (([], "l2"), (["--official-source", "vl-checklist"], "none"), (["--query-norm", "none"], "none"))
    for extra, norm in cases:
        code = main(["score", str(EXAMPLE_IMAGE), MUG.caption, "--preset", "tiny-blip2", "--parser", "rules", "--json",
                     "--official", *extra])
        out, err = capsys.readouterr()
        assert code == 0, err
        opts = json.loads(out)["options"]
        assert (opts["query_norm"], opts["score_scale"], opts["weighting"]) == (norm, "cosine", "sum"), extra
