"""Encoder backends behind one protocol: normalised float32 rows, batching, token counts."""

import string

import pytest
import torch
from PIL import Image

from comclip.encoders import Encoder, HFCLIPEncoder, is_multi_query, similarity


class _Processor:
    """A CLIP processor stand-in: the real image processor + a small offline BERT tokenizer."""

    def __init__(self):
        from transformers import BertTokenizer, CLIPImageProcessor

        vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + list(string.ascii_lowercase) + \
            ["##" + c for c in string.ascii_lowercase]
        self.tokenizer = BertTokenizer(vocab={w: i for i, w in enumerate(vocab)}, model_max_length=32)
        self.image_processor = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})

    def __call__(self, images, return_tensors):
        return self.image_processor(images=images, return_tensors=return_tensors)


def tiny_hf_clip(device: torch.device, batch_size: int = 64) -> HFCLIPEncoder:
    """A tiny random transformers CLIP (seeded) on ``device``."""
    from transformers import CLIPConfig, CLIPModel

    torch.manual_seed(0)
    config = CLIPConfig(
        text_config={"vocab_size": 64, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
                     "num_attention_heads": 2, "max_position_embeddings": 32},
        vision_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2,
                       "image_size": 32, "patch_size": 8},
        projection_dim=16)
    return HFCLIPEncoder(CLIPModel(config), _Processor(), name="hf-tiny", device=device, batch_size=batch_size)


@pytest.fixture(scope="module")
def hf_encoder():
    return tiny_hf_clip(torch.device("cpu"), batch_size=2)


def test_hf_clip_backend_follows_the_protocol(hf_encoder):
    assert isinstance(hf_encoder, Encoder)
    images = [Image.new("RGB", (40, 30), c) for c in [(255, 0, 0), (0, 255, 0), (0, 0, 255)]]
    v = hf_encoder.encode_images(images)  # 3 images in batches of 2
    t = hf_encoder.encode_texts(["a red thing", "green", "blue box"])
    assert v.shape == (3, 16) and t.shape == (3, 16)
    assert v.dtype == torch.float32 and t.dtype == torch.float32
    torch.testing.assert_close(v.norm(dim=-1), torch.ones(3))
    torch.testing.assert_close(t.norm(dim=-1), torch.ones(3))
    # Rows of a batch of 2 (images 0, 1) and of the trailing batch of 1 equal each image encoded alone,
    # and the three images do differ (so a mixed-up or repeated row would be caught).
    alone = torch.cat([hf_encoder.encode_images([im]) for im in images])
    torch.testing.assert_close(v, alone, atol=1e-5, rtol=0)
    assert min((v[i] - v[j]).abs().max().item() for i, j in [(0, 1), (0, 2), (1, 2)]) > 1e-3
    assert hf_encoder.context_length == 32
    assert hf_encoder.count_tokens("ab") == 4  # [CLS] a ##b [SEP]
    assert hf_encoder.logit_scale > 0
    assert not is_multi_query(hf_encoder)
    torch.testing.assert_close(similarity(hf_encoder, t, v), t @ v.T)


def test_open_clip_backend_batches_consistently(tiny_engine):
    enc = tiny_engine.encoder
    assert isinstance(enc, Encoder)
    texts = [f"caption number {i}" for i in range(5)]
    old = enc.batch_size
    try:
        enc.batch_size = 2
        small = enc.encode_texts(texts)
    finally:
        enc.batch_size = old
    torch.testing.assert_close(small, enc.encode_texts(texts), atol=1e-5, rtol=0)
    assert enc.count_tokens("a mug") == 4
    assert enc.count_tokens("word " * 100) > enc.context_length


def test_open_clip_text_tower_stops_at_the_longest_caption_with_the_same_features(tiny_engine):
    """A causal text tower pooled at end-of-text: positions after the batch's longest caption change
    nothing, so the engine runs only up to it (about 7x less work for short captions) — same features."""
    from comclip.encoders.open_clip import _trimmable

    enc = tiny_engine.encoder
    assert _trimmable(enc.model)
    texts = ["a cup on a saucer", "a red cup sitting on a blue saucer next to a small silver spoon", "cup", "on"]
    lengths = []
    hook = enc.model.transformer.register_forward_pre_hook(lambda mod, args, kw: lengths.append(args[0].shape[1]),
                                                           with_kwargs=True)
    try:
        got = enc.encode_texts(texts, normalise=False)
    finally:
        hook.remove()
    with torch.inference_mode():
        full = enc.model.encode_text(enc.tokenizer(texts))
    assert lengths and max(lengths) == max(enc.count_tokens(t) for t in texts) < enc.context_length
    torch.testing.assert_close(got.float(), full.float(), atol=1e-5, rtol=1e-5)
