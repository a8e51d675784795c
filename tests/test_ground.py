"""Grounding: prompt building, token-span mapping and box selection on controlled outputs."""

import copy
import random

import numpy as np
import pytest
import torch
from PIL import Image

from comclip.bench.count import count_detector
from comclip.boxes import Boxes
from comclip.errors import InputError
from comclip.ground import (
    IMAGE_CACHE_SIZE,
    GroundingDINO,
    build_prompt,
    canonical_phrases,
    chunk_phrases,
    cxcywh_to_xyxy,
    normalise_phrase,
    phrase_token_indices,
    preprocess_images,
    resized_size,
    select_boxes,
)


def test_build_prompt_spans_point_at_phrases():
    prompt, spans = build_prompt(["red mug", "grass", "young person"])
    assert prompt == "red mug. grass. young person."
    assert [prompt[a:b] for a, b in spans] == ["red mug", "grass", "young person"]


def test_phrase_token_indices_uses_offsets_not_strings():
    # [CLS] red mug . grass . [SEP]
    offsets = [(0, 0), (0, 3), (4, 7), (7, 8), (9, 14), (14, 15), (0, 0)]
    assert phrase_token_indices(offsets, [(0, 7), (9, 14)]) == [[1, 2], [4]]


def _probs(rows):
    return torch.tensor(rows, dtype=torch.float32)


def test_select_boxes_ranks_candidates_per_phrase_by_its_own_tokens():
    # tokens: 0 CLS, 1-2 phrase A, 3 ".", 4 phrase B
    probs = _probs([
        [0.0, 0.9, 0.2, 0.1, 0.3],   # candidate 0 -> A (0.9)
        [0.0, 0.1, 0.1, 0.0, 0.8],   # candidate 1 -> B (0.8)
        [0.0, 0.6, 0.0, 0.0, 0.1],   # candidate 2 -> A (0.6), weaker
        [0.0, 0.1, 0.1, 0.9, 0.1],   # candidate 3 -> only the "." token is high: no phrase above text threshold
        [0.0, 0.3, 0.0, 0.0, 0.32],  # candidate 4 -> both phrases, weakly (max token 0.32 < box threshold): dropped
    ])
    boxes = torch.tensor([[0, 0, 10, 10], [20, 20, 30, 30], [50, 50, 60, 60], [70, 70, 80, 80], [90, 90, 99, 99]],
                         dtype=torch.float32)
    out = select_boxes(probs, boxes, [[1, 2], [4]], box_threshold=0.35, text_threshold=0.25, boxes_per_entity=1)
    assert out[0].xyxy == ((0.0, 0.0, 10.0, 10.0),) and out[0].scores == pytest.approx((0.9,))
    assert out[1].xyxy == ((20.0, 20.0, 30.0, 30.0),) and out[1].scores == pytest.approx((0.8,))
    out = select_boxes(probs, boxes, [[1, 2], [4]], box_threshold=0.35, text_threshold=0.25, boxes_per_entity=3)
    assert out[0].xyxy == ((0.0, 0.0, 10.0, 10.0), (50.0, 50.0, 60.0, 60.0))  # candidate 0 (0.9) then candidate 2 (0.6)
    assert out[0].scores == pytest.approx((0.9, 0.6))  # one score per box, best first
    # candidate 0 also scores 0.3 on B (> text threshold): a box can belong to two phrases, as in Grounding DINO
    assert out[1].xyxy == ((20.0, 20.0, 30.0, 30.0), (0.0, 0.0, 10.0, 10.0))


def test_select_boxes_top_k_with_nms():
    probs = _probs([[0.9], [0.85], [0.7]])
    boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 10, 10], [40, 40, 50, 50]], dtype=torch.float32)
    out = select_boxes(probs, boxes, [[0]], box_threshold=0.3, text_threshold=0.25, boxes_per_entity=2)
    # candidate 1 overlaps candidate 0 (IoU 0.81) and is suppressed; candidate 2 is the second box
    assert out[0].xyxy == ((0.0, 0.0, 10.0, 10.0), (40.0, 40.0, 50.0, 50.0))


def test_select_boxes_thresholds_leave_phrase_ungrounded():
    probs = _probs([[0.0, 0.3, 0.2]])
    boxes = torch.tensor([[0, 0, 5, 5]], dtype=torch.float32)
    out = select_boxes(probs, boxes, [[1], [2]], box_threshold=0.35, text_threshold=0.25, boxes_per_entity=1)
    assert out == [Boxes(), Boxes()]


def test_phrase_with_no_tokens_gets_nothing():
    probs = _probs([[0.9, 0.9]])
    out = select_boxes(probs, torch.tensor([[0, 0, 5, 5.0]]), [[], [1]], box_threshold=0.3, text_threshold=0.2,
                       boxes_per_entity=1)
    assert out[0] == Boxes() and out[1].xyxy == ((0.0, 0.0, 5.0, 5.0),)


def test_chunk_phrases_respects_limit():
    counts = {"a": 3, "b": 3, "c": 3}
    # each phrase costs its tokens + 1 for "."; 2 for CLS/SEP
    assert chunk_phrases(["a", "b", "c"], counts.__getitem__, 10) == [["a", "b"], ["c"]]
    assert chunk_phrases(["a", "b", "c"], counts.__getitem__, 100) == [["a", "b", "c"]]


def test_cxcywh_to_xyxy_scales_and_clips():
    out = cxcywh_to_xyxy(torch.tensor([[0.5, 0.5, 0.2, 0.4], [0.0, 0.0, 0.5, 0.5]]), 100, 50)
    torch.testing.assert_close(out, torch.tensor([[40.0, 15.0, 60.0, 35.0], [0.0, 0.0, 25.0, 12.5]]))


def test_normalise_phrase():
    assert normalise_phrase("  Red   Mug. ") == "red mug"


def test_canonical_phrases_are_unique_normalised_sorted():
    assert canonical_phrases(["Red mug.", "grass", "red  mug", "", " . "]) == ["grass", "red mug"]


class _FakeOutputs:
    def __init__(self, logits, pred_boxes):
        self.logits, self.pred_boxes = logits, pred_boxes


class _ScriptedModel(torch.nn.Module):
    """A detector whose every candidate looks at the token it is told to: controlled outputs, per batch row."""

    def __init__(self, tokenizer, want: dict[str, tuple[float, float, float, float]]):
        super().__init__()
        self.config = type("C", (), {"max_text_len": 256})()
        self.tokenizer, self.want = tokenizer, want
        self.calls, self.batch_sizes = 0, []

    def forward(self, input_ids, pixel_values, **_):
        self.calls += 1
        self.batch_sizes.append(input_ids.shape[0])
        q = len(self.want)
        logits = torch.full((input_ids.shape[0], q, 256), -10.0)
        boxes = torch.zeros(input_ids.shape[0], q, 4)
        for row, ids in enumerate(input_ids.tolist()):
            tokens = self.tokenizer.convert_ids_to_tokens(ids)
            for k, (word, box) in enumerate(self.want.items()):
                if word in tokens:
                    logits[row, k, tokens.index(word)] = 5.0
                boxes[row, k] = torch.tensor(box)
        return _FakeOutputs(logits, boxes)


def _scripted(tiny_engine, want, **kw):
    processor = tiny_engine.detector.processor
    model = _ScriptedModel(processor.tokenizer, want)
    return model, GroundingDINO(model, processor, device=torch.device("cpu"), name="scripted",
                                box_threshold=0.5, text_threshold=0.5, **kw)


def test_grounding_dino_wrapper_one_pass_and_span_mapping(tiny_engine, noise_image):
    # "grass" appears inside two phrases; the box for token "mug" must go to "red mug" only.
    model, det = _scripted(tiny_engine, {"mug": (0.5, 0.5, 0.2, 0.2), "cat": (0.25, 0.25, 0.1, 0.1)})
    found = det.detect(noise_image, ["red mug", "green grass", "cat", "Red Mug"])
    assert model.calls == 1
    assert list(found) == ["red mug", "green grass", "cat", "Red Mug"]  # keys: the phrases as given
    assert found["red mug"].xyxy == ((128.0, 96.0, 192.0, 144.0),)
    assert found["Red Mug"].xyxy == found["red mug"].xyxy  # same phrase after normalisation
    assert not found["green grass"].xyxy
    assert found["cat"].xyxy == ((64.0, 48.0, 96.0, 72.0),)


def test_detect_batch_runs_a_prompt_once_per_image_and_groups_images_by_size(tiny_engine, noise_image):
    model, det = _scripted(tiny_engine, {"mug": (0.5, 0.5, 0.2, 0.2)}, batch_size=2)
    other = Image.new("RGB", (100, 400), "white")  # another resized size: never padded into one forward
    queries = [(noise_image, ["mug", "cat"]), (noise_image, ["cat", "Mug"]), (other, ["mug"]),
               (noise_image, ["mug"]), (noise_image, ["bowl", "mug"]), (noise_image, [])]
    out = det.detect_batch(queries)
    # prompts: noise×(cat, mug) [asked by two queries], noise×(mug), noise×(bowl, mug), other×(mug)
    assert model.calls == 3 and sorted(model.batch_sizes) == [1, 1, 2]  # 4 rows
    assert [list(d) for d in out] == [["mug", "cat"], ["cat", "Mug"], ["mug"], ["mug"], ["bowl", "mug"], []]
    np.testing.assert_allclose(out[2]["mug"].xyxy, [(40.0, 160.0, 60.0, 240.0)], atol=1e-4)  # its own pixels
    assert out[0]["mug"].xyxy == out[1]["Mug"].xyxy == out[3]["mug"].xyxy == ((128.0, 96.0, 192.0, 144.0),)


def _images():
    rng = np.random.RandomState(1)
    return [Image.fromarray((rng.rand(h, w, 3) * 255).astype(np.uint8), "RGB")
            for w, h in ((320, 240), (320, 240), (240, 320), (300, 300))]


PROMPTS = [["mug", "grass"], ["red mug", "young person", "dog on a bench"], ["cat"], ["grass", "mug", "bowl"],
               ["a very long phrase about a small brown dog", "tree"]]


def test_detect_batch_is_batch_invariant(tiny_engine):
    """Each query gets alone what it gets in any batch, in any order (CPU fp32): with batch size 1
    exactly; with larger batches boxes within 1e-3 px, scores within 1e-5 (text padding and batched
    matrix products change logits by float rounding)."""
    det = tiny_engine.detector
    images = _images()
    queries = [(im, ps) for im in images for ps in PROMPTS]
    alone = [det.replace(caching=False).detect(im, ps, box_threshold=0.0, text_threshold=0.0, boxes_per_entity=2)
             for im, ps in queries]
    rnd = random.Random(0)
    for batch_size in (1, 3, 16):
        batched = det.replace(batch_size=batch_size, caching=False)
        order = list(range(len(queries)))
        rnd.shuffle(order)
        subset = order[: len(order) // 2 + 3]
        got = batched.detect_batch([queries[k] for k in subset], box_threshold=0.0, text_threshold=0.0,
                                   boxes_per_entity=2)
        for k, found in zip(subset, got, strict=True):
            assert list(found) == list(alone[k])
            if batch_size == 1:  # the CPU default: every prompt on its image alone, whatever its company
                assert found == alone[k]
            for phrase, pb in found.items():
                assert pb.xyxy
                np.testing.assert_allclose(pb.xyxy, alone[k][phrase].xyxy, atol=1e-3)
                np.testing.assert_allclose(pb.scores, alone[k][phrase].scores, atol=1e-5)


def test_caches_never_change_a_result(tiny_engine):
    """Issue 26: image parts, text parts and prompt outputs are reused across calls, and a query's
    result is exactly what it gets alone with no cache — cold, warm, in other company and order; the
    reuse is real (forwards counted) and bounded (LRU)."""
    det = tiny_engine.detector.replace()  # own, empty caches
    loose = {"box_threshold": 0.0, "text_threshold": 0.0, "boxes_per_entity": 2}
    images = _images()
    queries = [(im, ps) for im in images for ps in PROMPTS[:3]]
    alone = [det.replace(caching=False).detect(im, ps, **loose) for im, ps in queries]
    assert det.detect_batch(queries[:4], **loose) == alone[:4]  # cold
    # image 0 and its three prompts are known: the same pixels in a new PIL image, with another prompt
    # (image part reused, BERT runs), and a known prompt on a new image (BERT reused, backbone runs)
    twin = images[0].copy()
    with count_detector(det) as counted:
        got = det.detect_batch([(images[3], PROMPTS[0]), (twin, PROMPTS[3])], **loose)
    assert (counted.image_parts, counted.text_parts, counted.fusions) == (1, 1, 2)
    assert got == [alone[9], det.replace(caching=False).detect(images[0], PROMPTS[3], **loose)]
    strict = det.replace(caching=False).detect(images[0], PROMPTS[1])
    with count_detector(det) as counted:  # a known prompt on a known image, new thresholds: no forward
        assert det.detect(twin, PROMPTS[1]) == strict
    assert counted.passes == counted.text_parts == 0
    order = list(range(len(queries)))
    random.Random(1).shuffle(order)
    for k in range(0, len(order), 5):  # warm, in other company and order, the LRUs evicting as they go
        chunk = order[k:k + 5]
        assert det.detect_batch([queries[j] for j in chunk], **loose) == [alone[j] for j in chunk]
    assert det.cache_sizes()["image"] <= IMAGE_CACHE_SIZE
    eager = det.replace(backend="transformers")  # the model's own forward: prompt outputs only
    first = eager.detect_batch(queries[:2], **loose)
    with count_detector(eager) as counted:
        assert eager.detect_batch(queries[1::-1], **loose) == first[::-1]
    assert counted.model_forwards == 0 and eager.cache_sizes() == {"image": 0, "text": 0, "output": 2}


def test_image_cache_is_keyed_by_the_resized_size(tiny_engine, noise_image):
    """A wrapper whose processor's size rule changes between calls never reuses an image part of
    another size: its result is a fresh wrapper's at the new size."""
    det = tiny_engine.detector
    processor = copy.deepcopy(det.processor)
    own = GroundingDINO(det.model, processor, device=det.device, name="own")
    own.detect(noise_image, ["mug"])
    processor.image_processor.size = {"shortest_edge": 96, "longest_edge": 160}
    fresh = GroundingDINO(det.model, copy.deepcopy(processor), device=det.device, name="fresh", caching=False)
    expected = fresh.detect(noise_image, ["mug"], box_threshold=0.0)
    with count_detector(own) as counted:  # (the hooks count the shared model's forwards)
        assert own.detect(noise_image, ["mug"], box_threshold=0.0) == expected
    assert counted.image_parts == 1 and counted.text_parts == 0 and own.cache_sizes()["image"] == 2


def test_phrase_order_does_not_change_the_prompt(tiny_engine, noise_image):
    det = tiny_engine.detector
    a = det.detect(noise_image, ["mug", "grass", "young person"])
    b = det.detect(noise_image, ["young person", "Grass", "mug"])
    assert a["mug"] == b["mug"] and a["young person"] == b["young person"]
    assert a["grass"].xyxy == b["Grass"].xyxy


def test_device_preprocessing_matches_the_processors(tiny_engine):
    from transformers.models.grounding_dino.image_processing_pil_grounding_dino import GroundingDinoImageProcessorPil

    ip = tiny_engine.detector.processor.image_processor
    slow = GroundingDinoImageProcessorPil(size={"shortest_edge": ip.size.shortest_edge,
                                                "longest_edge": ip.size.longest_edge})
    images = _images() + [Image.new("L", (641, 479), 90), Image.new("RGBA", (100, 700), (10, 200, 30, 128))]
    mine = preprocess_images(images, ip, torch.device("cpu"))
    level = 1 / 255 / min(ip.image_std)  # one uint8 step after normalisation
    for im, px in zip(images, mine, strict=True):
        fast = ip(images=im.convert("RGB"), return_tensors="pt")["pixel_values"][0]
        assert px.shape == fast.shape
        torch.testing.assert_close(px, fast, atol=1e-5, rtol=0)  # transformers' torchvision processor
        pil = slow(images=im.convert("RGB"), return_tensors="pt")["pixel_values"][0]
        diff = (px - pil).abs()
        assert diff.max() <= level + 1e-4 and diff.mean() < 1e-3  # PIL's resize: within one uint8 level


def test_resized_size_follows_the_processor_rule():
    size = {"shortest_edge": 800, "longest_edge": 1333}
    assert resized_size(480, 640, size) == (800, 1066)
    assert resized_size(2, 8000, size) == (1, 1333)  # the processor itself would ask for height 0
    assert resized_size(8000, 2, size) == (1333, 1)
    assert resized_size(100, 200, {"height": 64, "width": 32}) == (64, 32)
    with pytest.raises(InputError):
        resized_size(10, 10, {})


@pytest.mark.parametrize("size", [(8000, 2), (2, 8000), (1, 1)])
def test_extreme_aspect_ratios_are_detected(tiny_engine, size):
    image = Image.new("RGB", size, "gray")
    found = tiny_engine.detector.detect(image, ["mug"], box_threshold=0.0, text_threshold=0.0)
    (x0, y0, x1, y1), = found["mug"].xyxy
    assert 0 <= x0 <= x1 <= size[0] and 0 <= y0 <= y1 <= size[1]


def bf16_agreement(det: GroundingDINO, image: Image.Image) -> float:
    """Largest difference between fp32 and bf16-autocast forwards in each phrase token's 5 best candidate
    probabilities (order-free: bf16 may reorder the detector's candidates)."""
    bf16 = GroundingDINO(det.model, det.processor, device=det.device, name="bf16", precision="bf16")
    fp32 = GroundingDINO(det.model, det.processor, device=det.device, name="fp32", precision="fp32")
    assert bf16.autocast_dtype == torch.bfloat16 and fp32.autocast_dtype is None
    with torch.inference_mode():
        pixels, prompt = fp32.preprocess([image]), fp32._prompt(("grass", "mug"))
        p32 = fp32._forward(pixels, [prompt])[0].float().sigmoid()
        p16 = bf16._forward(pixels, [prompt])[0].float().sigmoid()
    cols = [t for phrase in prompt.token_indices for t in phrase]
    return float((p32[0][:, cols].topk(5, dim=0).values - p16[0][:, cols].topk(5, dim=0).values).abs().max())


def test_bf16_agrees_with_fp32(tiny_engine, noise_image):
    """bf16 autocast (CUDA's default; here on the CPU) against fp32 on the tiny random model: each
    phrase's 5 best candidate probabilities within 0.03. (Random weights saturate many candidates near 1,
    so the single best box may differ between near-ties; tests/test_cuda.py checks CUDA.)"""
    assert bf16_agreement(tiny_engine.detector, noise_image) < 0.03
    with pytest.raises(InputError):
        GroundingDINO(tiny_engine.detector.model, tiny_engine.detector.processor, device=torch.device("cpu"),
                      name="x", precision="fp8")


def test_tiny_detector_agrees_with_transformers_post_processing(tiny_engine, noise_image):
    """Our box for a one-token phrase is the candidate transformers' own pipeline (its processor and
    ``post_process_grounded_object_detection``) ranks best for that token."""
    det = tiny_engine.detector
    found = det.detect(noise_image, ["mug"], box_threshold=0.3, text_threshold=0.25, boxes_per_entity=1)
    inputs = det.processor(images=noise_image, text="mug.", return_tensors="pt")
    with torch.inference_mode():
        outputs = det.model(**inputs)
    post = det.processor.post_process_grounded_object_detection(
        outputs, inputs["input_ids"], threshold=0.3, text_threshold=0.25,
        target_sizes=[(noise_image.height, noise_image.width)])[0]
    mug = inputs["input_ids"][0].tolist().index(det.processor.tokenizer.convert_tokens_to_ids("mug"))
    probs = outputs.logits[0].sigmoid()[:, mug]
    kept = outputs.logits[0].sigmoid().max(dim=1).values > 0.3
    best = int(torch.where(kept & (probs > 0.25), probs, torch.tensor(-1.0)).argmax())
    assert found["mug"].xyxy and found["mug"].scores[0] == pytest.approx(float(probs[best]), abs=1e-5)
    # transformers lists that candidate among its detections, with the same box in pixels
    match = [i for i, b in enumerate(post["boxes"].tolist())
             if np.allclose(b, found["mug"].xyxy[0], atol=1e-2)]
    assert match and "mug" in post["text_labels"][match[0]]
