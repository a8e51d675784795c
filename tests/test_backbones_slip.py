"""SLIP release checkpoints: safe loading, key conversion, and embeddings equal to an independent
forward written here from the checkpoint's tensors (SLIP's model definition, restated)."""

import argparse
import math
import pickle

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from comclip.encoders import Encoder
from comclip.encoders.slip import (
    SLIPGeometry,
    build_slip_model,
    convert_state_dict,
    load_slip_encoder,
    read_checkpoint,
)
from comclip.errors import InputError

SSL_MLP, SSL_EMB = 96, 32
TINY = dict(vision_width=128, vision_depth=2, patch=16, image=32, embed=64, text_width=128, text_layers=2,
            context=77, vocab=49408)


def slip_state_shapes(model: str, vision_width: int, vision_depth: int, patch: int, image: int, embed: int,
                      text_width: int, text_layers: int, context: int, vocab: int,
                      ssl_mlp: int = 4096, ssl_emb: int = 256) -> dict[str, tuple[int, ...]]:
    """Every tensor of a SLIP release ``state_dict`` with its shape, from SLIP's public ``models.py``:
    a timm ViT (``num_classes=0``) as ``visual``, CLIP's text transformer, two projections, the
    logit scale, and for SLIP models the SSL ``image_mlp`` (3 linear layers, 2 batch norms)."""
    w, t = vision_width, text_width
    s: dict[str, tuple[int, ...]] = {
        "visual.cls_token": (1, 1, w), "visual.pos_embed": (1, 1 + (image // patch) ** 2, w),
        "visual.patch_embed.proj.weight": (w, 3, patch, patch), "visual.patch_embed.proj.bias": (w,),
        "visual.norm.weight": (w,), "visual.norm.bias": (w,),
        "token_embedding.weight": (vocab, t), "positional_embedding": (context, t),
        "ln_final.weight": (t,), "ln_final.bias": (t,),
        "image_projection": (w, embed), "text_projection": (t, embed), "logit_scale": (),
    }
    for i in range(vision_depth):
        b = f"visual.blocks.{i}."
        s |= {b + "norm1.weight": (w,), b + "norm1.bias": (w,), b + "attn.qkv.weight": (3 * w, w),
              b + "attn.qkv.bias": (3 * w,), b + "attn.proj.weight": (w, w), b + "attn.proj.bias": (w,),
              b + "norm2.weight": (w,), b + "norm2.bias": (w,), b + "mlp.fc1.weight": (4 * w, w),
              b + "mlp.fc1.bias": (4 * w,), b + "mlp.fc2.weight": (w, 4 * w), b + "mlp.fc2.bias": (w,)}
    for i in range(text_layers):
        b = f"transformer.resblocks.{i}."
        s |= {b + "attn.in_proj_weight": (3 * t, t), b + "attn.in_proj_bias": (3 * t,),
              b + "attn.out_proj.weight": (t, t), b + "attn.out_proj.bias": (t,),
              b + "ln_1.weight": (t,), b + "ln_1.bias": (t,), b + "mlp.c_fc.weight": (4 * t, t),
              b + "mlp.c_fc.bias": (4 * t,), b + "mlp.c_proj.weight": (t, 4 * t), b + "mlp.c_proj.bias": (t,),
              b + "ln_2.weight": (t,), b + "ln_2.bias": (t,)}
    if model.startswith("SLIP"):
        layers = {"layer1": (ssl_mlp, w), "layer2": (ssl_mlp, ssl_mlp), "layer3": (ssl_emb, ssl_mlp)}
        for name, (o, i) in layers.items():
            s |= {f"image_mlp.{name}.weight": (o, i), f"image_mlp.{name}.bias": (o,)}
        for bn in ("bn1", "bn2"):
            s |= {f"image_mlp.{bn}.{p}": (ssl_mlp,) for p in ("weight", "bias", "running_mean", "running_var")}
            s[f"image_mlp.{bn}.num_batches_tracked"] = ()
    return s


def write_tiny_checkpoint(path, model="SLIP_VITB16", seed=0, **overrides):
    """A seeded random file in the release layout: ``module.``-prefixed state_dict, Namespace args."""
    g = torch.Generator().manual_seed(seed)
    shapes = slip_state_shapes(model, **(TINY | overrides), ssl_mlp=SSL_MLP, ssl_emb=SSL_EMB)
    sd = {}
    for k, shape in shapes.items():
        if k.endswith("num_batches_tracked"):
            sd[k] = torch.tensor(7)
        elif k == "logit_scale":
            sd[k] = torch.tensor(math.log(1 / 0.07))
        elif k.endswith(("norm1.weight", "norm2.weight", "norm.weight", "ln_1.weight", "ln_2.weight",
                         "ln_final.weight", "running_var")):
            sd[k] = 1 + 0.1 * torch.randn(shape, generator=g)
        else:
            sd[k] = 0.05 * torch.randn(shape, generator=g)
    args = argparse.Namespace(model=model, ssl_mlp_dim=SSL_MLP, ssl_emb_dim=SSL_EMB, lr=3e-3, epochs=25)
    torch.save({"state_dict": {"module." + k: v for k, v in sd.items()}, "args": args, "epoch": 25,
                "best_acc": 12.5}, path)
    return sd


# -- an independent forward of SLIP's CLIP part, from the raw tensors -----------------------------

def _ln(x, sd, prefix, eps):
    return F.layer_norm(x, x.shape[-1:], sd[prefix + ".weight"], sd[prefix + ".bias"], eps)


def _attention(x, w_in, b_in, w_out, b_out, heads, mask=None):
    n, length, width = x.shape
    q, k, v = (x @ w_in.T + b_in).reshape(n, length, 3, heads, width // heads).permute(2, 0, 3, 1, 4)
    a = (q @ k.transpose(-1, -2)) / math.sqrt(width // heads)
    if mask is not None:
        a = a + mask
    return (a.softmax(-1) @ v).transpose(1, 2).reshape(n, length, width) @ w_out.T + b_out


def slip_image_forward(sd, pixels, heads, depth, patch):
    x = F.conv2d(pixels, sd["visual.patch_embed.proj.weight"], sd["visual.patch_embed.proj.bias"], stride=patch)
    x = x.flatten(2).transpose(1, 2)
    x = torch.cat([sd["visual.cls_token"].expand(x.shape[0], -1, -1), x], dim=1) + sd["visual.pos_embed"]
    for i in range(depth):
        b = f"visual.blocks.{i}."
        x = x + _attention(_ln(x, sd, b + "norm1", 1e-6), sd[b + "attn.qkv.weight"], sd[b + "attn.qkv.bias"],
                           sd[b + "attn.proj.weight"], sd[b + "attn.proj.bias"], heads)
        h = F.gelu(_ln(x, sd, b + "norm2", 1e-6) @ sd[b + "mlp.fc1.weight"].T + sd[b + "mlp.fc1.bias"])
        x = x + h @ sd[b + "mlp.fc2.weight"].T + sd[b + "mlp.fc2.bias"]
    return _ln(x, sd, "visual.norm", 1e-6)[:, 0] @ sd["image_projection"]


def slip_text_forward(sd, ids, heads, layers):
    x = sd["token_embedding.weight"][ids] + sd["positional_embedding"]
    n = ids.shape[1]
    mask = torch.full((n, n), float("-inf")).triu(1)
    for i in range(layers):
        b = f"transformer.resblocks.{i}."
        x = x + _attention(_ln(x, sd, b + "ln_1", 1e-5), sd[b + "attn.in_proj_weight"], sd[b + "attn.in_proj_bias"],
                           sd[b + "attn.out_proj.weight"], sd[b + "attn.out_proj.bias"], heads, mask)
        h = _ln(x, sd, b + "ln_2", 1e-5) @ sd[b + "mlp.c_fc.weight"].T + sd[b + "mlp.c_fc.bias"]
        x = x + (h * torch.sigmoid(1.702 * h)) @ sd[b + "mlp.c_proj.weight"].T + sd[b + "mlp.c_proj.bias"]
    x = _ln(x, sd, "ln_final", 1e-5)
    return x[torch.arange(ids.shape[0]), ids.argmax(-1)] @ sd["text_projection"]


def slip_token_ids(texts, context=77):
    from open_clip.tokenizer import SimpleTokenizer

    bpe = SimpleTokenizer()
    out = torch.zeros(len(texts), context, dtype=torch.long)
    for i, text in enumerate(texts):
        ids = ([49406] + bpe.encode(text) + [49407])[:context]
        out[i, :len(ids)] = torch.tensor(ids)
    return out


def slip_pixels(images, size):
    from torchvision import transforms as T

    tf = T.Compose([T.Resize(size), T.CenterCrop(size), T.ToTensor(),
                    T.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))])
    return torch.stack([tf(im.convert("RGB")) for im in images])


@pytest.fixture(scope="module")
def tiny_slip(tmp_path_factory):
    path = tmp_path_factory.mktemp("slip") / "slip_tiny.pt"
    sd = write_tiny_checkpoint(path)
    return path, sd


def _cos(a, b):
    return F.cosine_similarity(a, b, dim=-1)


def test_tiny_checkpoint_matches_independent_forward(tiny_slip):
    path, sd = tiny_slip
    enc = load_slip_encoder(str(path), torch.device("cpu"))
    assert isinstance(enc, Encoder)
    rng = np.random.RandomState(0)
    images = [Image.fromarray((rng.rand(48, 40, 3) * 255).astype(np.uint8)), Image.new("L", (50, 30), 128)]
    texts = ["a mug in some grass", "some grass in a mug", "dog", "word " * 90]
    got_v, got_t = enc.encode_images(images), enc.encode_texts(texts)
    with torch.no_grad():
        ref_v = slip_image_forward(sd, slip_pixels(images, TINY["image"]), heads=2, depth=2, patch=16)
        ref_t = slip_text_forward(sd, slip_token_ids(texts), heads=2, layers=2)
    cos_v, cos_t = _cos(got_v, ref_v), _cos(got_t, ref_t)
    assert cos_v.min() >= 0.999 and cos_t.min() >= 0.999, (cos_v, cos_t)
    assert (_cos(got_v[0], got_v[1]) < 0.99) and (_cos(got_t[0], got_t[1]) < 0.99)  # inputs do differ
    assert enc.logit_scale == pytest.approx(1 / 0.07, rel=1e-5)
    assert enc.context_length == 77 and enc.count_tokens("a mug") == 4
    assert enc.pixel_geometry is not None and enc.pixel_geometry.mean == (0.485, 0.456, 0.406)
    # SLIP's truncation: 92 tokens cut at 77 keep no end token in the last place.
    ids = enc.tokenizer(["word " * 90])[0]
    assert ids.shape == (77,) and ids[-1].item() != 49407 and (ids == 49407).sum() == 0


def test_ssl_head_is_dropped_and_keys_convert(tiny_slip):
    path, sd = tiny_slip
    name, converted = read_checkpoint(path)
    assert name == "SLIP_VITB16"
    assert not any("image_mlp" in k for k in converted)
    torch.testing.assert_close(converted["visual.head.proj.weight"], sd["image_projection"].t())
    assert "visual.trunk.blocks.1.attn.qkv.weight" in converted


@pytest.mark.parametrize("model,width,depth", [("SLIP_VITB16", 768, 12), ("SLIP_VITL16", 1024, 24),
                                               ("CLIP_VITS16", 384, 12)])
def test_real_size_geometry_matches_slip_state_dict_key_by_key(model, width, depth):
    """The model as built for a release name has exactly the release file's CLIP tensors (shapes
    compared key by key, built on the meta device: nothing is allocated)."""
    expected = slip_state_shapes(model, width, depth, 16, 224, 512, 512, 12, 77, 49408)
    geom = SLIPGeometry.release(model)
    with torch.device("meta"):
        built = build_slip_model(geom).state_dict()
        converted = convert_state_dict({"module." + k: torch.empty(s) for k, s in expected.items()})
    assert set(built) == set(converted)
    assert {k: tuple(v.shape) for k, v in built.items()} == {k: tuple(v.shape) for k, v in converted.items()}
    assert SLIPGeometry.of_state_dict(model, converted) == geom
    assert geom.vision_heads == {"SLIP_VITB16": 12, "SLIP_VITL16": 16, "CLIP_VITS16": 12}[model]


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_files_that_are_not_slip_checkpoints(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("arbitrary code",))

    cases = {
        "missing.pt": None,
        "text.pt": b"hello, not a checkpoint",
        "pickle.pt": pickle.dumps({"state_dict": {}, "args": Evil()}),
    }
    for name, content in cases.items():
        if content is not None:
            (tmp_path / name).write_bytes(content)
    torch.save({"weights": torch.zeros(2)}, tmp_path / "plain.pt")
    torch.save({"state_dict": {"module.x": torch.zeros(1)}, "args": argparse.Namespace(model="SIMCLR_VITB16")},
               tmp_path / "simclr.pt")
    torch.save({"state_dict": {"module.x": torch.zeros(1)}, "args": argparse.Namespace(model="ResNet50")},
               tmp_path / "other.pt")
    expect = {"missing.pt": "does not exist", "text.pt": "not a SLIP checkpoint", "pickle.pt": "not a SLIP checkpoint",
              "plain.pt": "'state_dict' and 'args'", "simclr.pt": "no text encoder", "other.pt": "ResNet50"}
    for name, message in expect.items():
        with pytest.raises(InputError, match=message):
            load_slip_encoder(str(tmp_path / name), torch.device("cpu"))
    write_tiny_checkpoint(tmp_path / "narrow.pt")
    ckpt = torch.load(tmp_path / "narrow.pt", weights_only=False)
    del ckpt["state_dict"]["module.visual.blocks.1.mlp.fc2.bias"]
    torch.save(ckpt, tmp_path / "broken.pt")
    with pytest.raises(InputError, match="missing: visual.trunk.blocks.1.mlp.fc2.bias"):
        load_slip_encoder(str(tmp_path / "broken.pt"), torch.device("cpu"))


def test_cli_scores_with_a_slip_file_and_the_formula_recomputes(capsys, tiny_slip, cache_dir):
    import json

    from comclip.cli.main import main

    from .conftest import EXAMPLE_IMAGE

    path, _ = tiny_slip
    code = main(["score", str(EXAMPLE_IMAGE), "a mug in some grass", "some grass in a mug", "--preset", "tiny",
                 "--clip-backend", "slip", "--clip-model", str(path), "--parser", "rules", "--json",
                 "--debug-embeddings"])
    out, err = capsys.readouterr()
    assert code == 0, err
    d = json.loads(out)
    assert d["models"]["encoder"] == f"slip:{path}"
    v0, scale = np.array(d["global_image_embedding"]), d["logit_scale"]
    assert scale == pytest.approx(1 / 0.07, rel=1e-5)
    for cap in d["captions"]:
        t = np.array(cap["text_embedding"])
        vi = np.array([c["image_embedding"] for c in cap["components"]])
        ti = np.array([c["text_embedding"] for c in cap["components"]])
        s = scale * np.sum(ti * vi, axis=1)
        w = np.exp(s - s.max()) / np.exp(s - s.max()).sum()
        v = v0 + w @ vi
        assert cap["clip_score"] == pytest.approx(float(t @ v0), abs=1e-5)
        assert cap["comclip_score"] == pytest.approx(float(t @ v / np.linalg.norm(v)), abs=1e-5)


def test_release_url_is_fetched_once_into_the_cache_then_read_offline(tiny_slip, cache_dir):
    import shutil

    from comclip.encoders.slip import checkpoint_file, pending_download
    from comclip.errors import ModelUnavailableError

    url = "http://127.0.0.1:9/slip/slip_cached_test.pt"  # nothing listens on port 9: a download fails at once
    assert pending_download(url) == url and pending_download(str(tiny_slip[0])) is None
    with pytest.raises(ModelUnavailableError, match="could not download the SLIP checkpoint.*--clip-model"):
        checkpoint_file(url, "about 1 GB")
    assert not list((cache_dir / "slip").glob("*.part*"))  # no half-written file left
    (cache_dir / "slip").mkdir(exist_ok=True)
    shutil.copy(tiny_slip[0], cache_dir / "slip" / "slip_cached_test.pt")
    assert checkpoint_file(url) == cache_dir / "slip" / "slip_cached_test.pt"
    assert checkpoint_file("slip_cached_test.pt") == cache_dir / "slip" / "slip_cached_test.pt"  # a release name
    assert pending_download(url) is None


# -- the official winoground/comslip.py, restated (docs/fidelity.md) ---------------------------------------

@pytest.fixture(scope="module")
def slip_engine(tiny_slip, cache_dir):
    import comclip
    from comclip.presets import custom_preset, get_preset

    return comclip.load(custom_preset(get_preset("tiny"), clip_backend="slip", clip_model=str(tiny_slip[0])),
                        device="cpu", parser="rules")


def comslip_pixels(image, size):
    """comslip.py L41-45: ``Resize((224, 224), BICUBIC)`` (aspect not kept), ``ToTensor``, ImageNet mean/std —
    written with PIL and NumPy."""
    a = np.asarray(image.convert("RGB").resize((size, size), Image.BICUBIC), dtype=np.float64) / 255.0
    a = (a - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])
    return a.transpose(2, 0, 1)


def official_comslip(t, v0, t_i, v_i):
    """comslip.py (75ef16e): ``score = F.cosine_similarity(image_embed, text_embed)`` of the raw
    ``encode_image`` / ``encode_text`` outputs (L49-51); ``normalize_tensor_list`` (L84: over the plain sum);
    ``original_image_embed += score * image`` on the raw embeddings (L85-87); both normalised, one dot (L88-90)."""
    def cos(a, b):
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))

    s = np.array([cos(a, b) for a, b in zip(v_i, t_i, strict=True)])
    w = s / s.sum()
    v = np.asarray(v0, np.float64) + sum(wk * np.asarray(b, np.float64) for wk, b in zip(w, v_i, strict=True))
    return cos(t, v)


def test_squash_preprocessing_is_the_official_transform(slip_engine, tiny_slip):
    from .conftest import EXAMPLE_IMAGE

    enc = slip_engine.encoder
    images = [Image.open(EXAMPLE_IMAGE), Image.new("RGB", (90, 30), (10, 200, 30))]
    got = enc.preprocess(images, resize="squash").double().numpy()
    assert got.shape == (2, 3, 32, 32)
    for g, im in zip(got, images, strict=True):
        np.testing.assert_allclose(g, comslip_pixels(im, 32), atol=1e-5)
    assert enc.geometry("squash").squash and not enc.geometry("model").squash
    # the raw embedding of the squashed image is SLIP's own encode_image of those pixels (the forward above)
    _, sd = tiny_slip
    pixels = torch.tensor(np.stack([comslip_pixels(im, 32) for im in images]), dtype=torch.float32)
    own = slip_image_forward(sd, pixels, heads=2, depth=2, patch=16)
    torch.testing.assert_close(enc.encode_images(images, resize="squash", normalise=False), own, atol=1e-4, rtol=1e-4)


def test_official_comslip_matches_its_numpy_restatement(slip_engine):
    from comclip.options import Options

    from .conftest import EXAMPLE_IMAGE
    from .test_official import MUG

    opts = Options.official("slip")
    assert (opts.embeddings, opts.score_scale, opts.resize, opts.weighting) == ("raw", "cosine", "squash", "sum")
    r = slip_engine.match(EXAMPLE_IMAGE, [MUG.caption], [MUG], **opts.to_dict())
    c = r.captions[0]
    v0 = r.global_image_embedding
    assert abs(np.linalg.norm(v0) - 1) > 1e-3  # raw
    expected = official_comslip(c.text_embedding, v0, [k.text_embedding for k in c.components],
                                [k.image_embedding for k in c.components])
    assert c.comclip_score == pytest.approx(expected, abs=1e-6)
    assert c.clip_score == pytest.approx(float(_cos(torch.tensor(v0), torch.tensor(c.text_embedding))), abs=1e-6)
    # the global row is the official transform + SLIP's own forward (checked above): resize reached the engine
    with torch.no_grad():
        squashed = slip_engine.encoder.encode_images([Image.open(EXAMPLE_IMAGE)], resize="squash", normalise=False)
    np.testing.assert_allclose(v0, squashed[0].numpy(), atol=1e-5)


def test_slip_options_move_the_score(slip_engine):
    from .conftest import EXAMPLE_IMAGE
    from .test_official import MUG

    def one(**options):
        return slip_engine.match(EXAMPLE_IMAGE, [MUG.caption], [MUG], **options).captions[0]

    base = one()
    squash = one(resize="squash")
    assert abs(squash.clip_score - base.clip_score) > 1e-2 and abs(squash.comclip_score - base.comclip_score) > 1e-2
    assert abs(one(weighting="sum", embeddings="raw").comclip_score - one(weighting="sum").comclip_score) > 1e-4
    assert abs(one(score_scale="cosine").comclip_score - base.comclip_score) > 1e-4
