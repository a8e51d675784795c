"""Grounding: prompt building, token-span mapping and box selection on controlled outputs."""

import pytest
import torch

from comclip.ground import (
    GroundingDINO,
    build_prompt,
    chunk_phrases,
    cxcywh_to_xyxy,
    normalise_phrase,
    phrase_token_indices,
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


def test_select_boxes_ranks_queries_per_phrase_by_its_own_tokens():
    # tokens: 0 CLS, 1-2 phrase A, 3 ".", 4 phrase B
    probs = _probs([
        [0.0, 0.9, 0.2, 0.1, 0.3],   # query 0 -> A (0.9)
        [0.0, 0.1, 0.1, 0.0, 0.8],   # query 1 -> B (0.8)
        [0.0, 0.6, 0.0, 0.0, 0.1],   # query 2 -> A (0.6), weaker
        [0.0, 0.1, 0.1, 0.9, 0.1],   # query 3 -> only the "." token is high: no phrase above text threshold
        [0.0, 0.3, 0.0, 0.0, 0.32],  # query 4 -> both phrases, weakly (max token 0.32 < box threshold): dropped
    ])
    boxes = torch.tensor([[0, 0, 10, 10], [20, 20, 30, 30], [50, 50, 60, 60], [70, 70, 80, 80], [90, 90, 99, 99]],
                         dtype=torch.float32)
    out = select_boxes(probs, boxes, [[1, 2], [4]], box_threshold=0.35, text_threshold=0.25, boxes_per_entity=1)
    assert out[0] == ([(0.0, 0.0, 10.0, 10.0)], [pytest.approx(0.9)])
    assert out[1] == ([(20.0, 20.0, 30.0, 30.0)], [pytest.approx(0.8)])
    out = select_boxes(probs, boxes, [[1, 2], [4]], box_threshold=0.35, text_threshold=0.25, boxes_per_entity=3)
    assert out[0][0] == [(0.0, 0.0, 10.0, 10.0), (50.0, 50.0, 60.0, 60.0)]  # query 0 (0.9) then query 2 (0.6)
    # query 0 also scores 0.3 on B (> text threshold): a box can belong to two phrases, as in Grounding DINO
    assert out[1][0] == [(20.0, 20.0, 30.0, 30.0), (0.0, 0.0, 10.0, 10.0)]


def test_select_boxes_top_k_with_nms():
    probs = _probs([[0.9], [0.85], [0.7]])
    boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 10, 10], [40, 40, 50, 50]], dtype=torch.float32)
    out = select_boxes(probs, boxes, [[0]], box_threshold=0.3, text_threshold=0.25, boxes_per_entity=2)
    # query 1 overlaps query 0 (IoU 0.81) and is suppressed; query 2 is the second box
    assert out[0][0] == [(0.0, 0.0, 10.0, 10.0), (40.0, 40.0, 50.0, 50.0)]


def test_select_boxes_thresholds_leave_phrase_ungrounded():
    probs = _probs([[0.0, 0.3, 0.2]])
    boxes = torch.tensor([[0, 0, 5, 5]], dtype=torch.float32)
    out = select_boxes(probs, boxes, [[1], [2]], box_threshold=0.35, text_threshold=0.25, boxes_per_entity=1)
    assert out == [([], []), ([], [])]


def test_phrase_with_no_tokens_gets_nothing():
    probs = _probs([[0.9, 0.9]])
    out = select_boxes(probs, torch.tensor([[0, 0, 5, 5.0]]), [[], [1]], box_threshold=0.3, text_threshold=0.2,
                       boxes_per_entity=1)
    assert out[0] == ([], []) and out[1][0] == [(0.0, 0.0, 5.0, 5.0)]


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


class _FakeOutputs:
    def __init__(self, logits, pred_boxes):
        self.logits, self.pred_boxes = logits, pred_boxes


class _ScriptedModel(torch.nn.Module):
    """A detector whose every query looks at the token it is told to: controlled outputs."""

    def __init__(self, tokenizer, want: dict[str, tuple[float, float, float, float]]):
        super().__init__()
        self.config = type("C", (), {"max_text_len": 256})()
        self.tokenizer, self.want = tokenizer, want
        self.calls = 0

    def forward(self, input_ids, **_):
        self.calls += 1
        ids = input_ids[0].tolist()
        tokens = self.tokenizer.convert_ids_to_tokens(ids)
        q = len(self.want)
        logits = torch.full((1, q, 256), -10.0)
        boxes = torch.zeros(1, q, 4)
        for k, (word, box) in enumerate(self.want.items()):
            logits[0, k, tokens.index(word)] = 5.0
            boxes[0, k] = torch.tensor(box)
        return _FakeOutputs(logits, boxes)


def test_grounding_dino_wrapper_one_pass_and_span_mapping(tiny_engine, noise_image):
    processor = tiny_engine.detector.processor
    # "grass" appears inside two phrases; the box for token "mug" must go to "red mug" only.
    model = _ScriptedModel(processor.tokenizer, {"mug": (0.5, 0.5, 0.2, 0.2), "cat": (0.25, 0.25, 0.1, 0.1)})
    det = GroundingDINO(model, processor, device=torch.device("cpu"), name="scripted",
                        box_threshold=0.5, text_threshold=0.5)
    found = det.detect(noise_image, ["red mug", "green grass", "cat", "Red Mug"])
    assert model.calls == 1
    assert found["red mug"].boxes == ((128.0, 96.0, 192.0, 144.0),)
    assert found["Red Mug"].boxes == found["red mug"].boxes  # same phrase after normalisation
    assert not found["green grass"].grounded
    assert found["cat"].boxes == ((64.0, 48.0, 96.0, 72.0),)


def test_tiny_detector_finds_boxes(tiny_engine, noise_image):
    found = tiny_engine.detector.detect(noise_image, ["mug", "grass"])
    assert all(f.grounded for f in found.values())
    for f in found.values():
        x0, y0, x1, y1 = f.boxes[0]
        assert 0 <= x0 <= x1 <= noise_image.width and 0 <= y0 <= y1 <= noise_image.height
