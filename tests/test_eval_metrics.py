"""Every metric function against hand-computed values on fixed score tables, ties included."""

import pytest

from comclip.eval import metrics
from comclip.eval.datasets import Example
from comclip.eval.report import markdown, summarise_pairs, table

# Winoground tables, with the outcome worked out by hand:
WON_ALL = {"c0_i0": 0.9, "c1_i0": 0.1, "c0_i1": 0.2, "c1_i1": 0.8}  # text, image, group
TEXT_ONLY = {"c0_i0": 0.5, "c1_i0": 0.4, "c0_i1": 0.6, "c1_i1": 0.7}  # .5>.4, .7>.6; but .5 < .6 (image lost)
IMAGE_ONLY_TIE = {"c0_i0": 0.5, "c1_i0": 0.5, "c0_i1": 0.1, "c1_i1": 0.9}  # text tie .5 = .5 -> lost
ALL_EQUAL = {"c0_i0": 0.3, "c1_i0": 0.3, "c0_i1": 0.3, "c1_i1": 0.3}  # every comparison a tie -> all lost


@pytest.mark.parametrize(("table", "text", "image", "group"), [
    (WON_ALL, True, True, True),
    (TEXT_ONLY, True, False, False),
    (IMAGE_ONLY_TIE, False, True, False),
    (ALL_EQUAL, False, False, False),
    # image score needs BOTH captions to prefer their own image: c1 prefers image 0 (.6 > .5);
    # the text score is still won (.9 > .6 on image 0, .5 > .1 on image 1)
    ({"c0_i0": 0.9, "c1_i0": 0.6, "c0_i1": 0.1, "c1_i1": 0.5}, True, False, False),
    # on image 1 both captions tie (.2 = .2): text lost; image won (.9 > .2, .2 > .1)
    ({"c0_i0": 0.9, "c1_i0": 0.1, "c0_i1": 0.2, "c1_i1": 0.2}, False, True, False),
])
def test_winoground_per_example(table, text, image, group):
    assert metrics.winoground_text(table) is text
    assert metrics.winoground_image(table) is image
    assert metrics.winoground_group(table) is group


def test_winoground_aggregate_hand_computed():
    got = metrics.winoground([WON_ALL, TEXT_ONLY, IMAGE_ONLY_TIE, ALL_EQUAL])
    assert got == {"text_score": 2 / 4, "image_score": 2 / 4, "group_score": 1 / 4}
    assert metrics.winoground([]) == {"text_score": None, "image_score": None, "group_score": None}


def test_pair_accuracy_strict():
    tables = [{"pos": 1.0, "neg": 0.0}, {"pos": 0.5, "neg": 0.5}, {"pos": 0.2, "neg": 0.3}, {"pos": -0.1, "neg": -0.2}]
    assert [metrics.pair_correct(t) for t in tables] == [True, False, False, True]
    assert metrics.pair_accuracy(tables) == 0.5
    assert metrics.pair_accuracy([]) is None


def test_rank_is_pessimistic_on_ties():
    scores = [0.9, 0.5, 0.5, 0.1]
    assert metrics.rank_of(scores, 0) == 1
    assert metrics.rank_of(scores, 1) == 3  # 0.9 and the other 0.5 count against it
    assert metrics.rank_of(scores, 2) == 3
    assert metrics.rank_of(scores, 3) == 4
    assert metrics.rank_of([0.5, 0.5], 0) == 2
    assert metrics.rank_of([0.7], 0) == 1


def test_top_k_and_rerank_break_ties_by_position():
    assert metrics.top_k([0.2, 0.9, 0.5, 0.9], 3) == [1, 3, 2]
    assert metrics.top_k([0.2, 0.9], 10) == [1, 0]
    assert metrics.rerank([7, 3, 5], [0.1, 0.9, 0.9]) == [3, 5, 7]


def test_reranked_rank():
    cands, scores = [7, 3, 5], [0.1, 0.9, 0.9]
    assert metrics.reranked_rank(cands, scores, target=3, first_stage_rank=2) == 2  # tie with 5 counts against
    assert metrics.reranked_rank(cands, scores, target=7, first_stage_rank=1) == 3  # re-ranking demoted it
    assert metrics.reranked_rank(cands, scores, target=9, first_stage_rank=12) == 12  # outside the top-k: kept


def test_recall_at():
    assert metrics.recall_at([1, 2, 5, 11]) == {"R@1": 0.25, "R@5": 0.75, "R@10": 0.75}
    assert metrics.recall_at([10, 10], (1, 10)) == {"R@1": 0.0, "R@10": 1.0}
    assert metrics.recall_at([]) == {"R@1": None, "R@5": None, "R@10": None}


def test_summarise_pairs_counts_failures_and_groups():
    ex = [Example("a", keys=("pos", "neg"), groups=("subject",)),
          Example("b", keys=("pos", "neg"), groups=("verb",)),
          Example("c", keys=("pos", "neg"), groups=("subject",)),
          Example("d", keys=("pos", "neg"), groups=("verb",)),
          Example("e", keys=("pos", "neg"), groups=("object",))]
    records = {
        "a": {"id": "a", "status": "ok", "clip": {"pos": 0.6, "neg": 0.4}, "comclip": {"pos": 0.6, "neg": 0.4}},
        "b": {"id": "b", "status": "ok", "clip": {"pos": 0.4, "neg": 0.4}, "comclip": {"pos": 0.5, "neg": 0.4}},
        "c": {"id": "c", "status": "ok", "clip": {"pos": 0.1, "neg": 0.4}, "comclip": {"pos": 0.3, "neg": 0.2}},
        "d": {"id": "d", "status": "failed", "reason": "image not found: 7.jpg"},
        # "e" has no record at all: it must still be counted, as failed, never dropped
    }
    s = summarise_pairs("pairs", ex, records)
    assert (s["n_total"], s["n_scored"], s["n_failed"]) == (5, 3, 2)
    assert s["failures"] == [{"id": "d", "reason": "image not found: 7.jpg"}, {"id": "e", "reason": "not computed"}]
    assert s["metrics"]["clip"] == {"accuracy": 1 / 3, "accuracy[subject]": 1 / 2, "accuracy[verb]": 0.0,
                                    "accuracy[object]": None}
    assert s["metrics"]["comclip"] == {"accuracy": 1.0, "accuracy[subject]": 1.0, "accuracy[verb]": 1.0,
                                       "accuracy[object]": None}
    assert s["counts"]["accuracy"] == {"n_scored": 3, "n_failed": 2}
    assert s["counts"]["accuracy[verb]"] == {"n_scored": 1, "n_failed": 1}
    assert s["groups"]["object"] == {"n_total": 1, "n_scored": 0, "n_failed": 1}


def test_summarise_winoground_and_markdown_table():
    ex = [Example(str(i), keys=metrics.WINOGROUND_KEYS, groups=(g,)) for i, g in enumerate(["Object", "Relation"])]
    records = {"0": {"id": "0", "status": "ok", "clip": WON_ALL, "comclip": WON_ALL},
               "1": {"id": "1", "status": "ok", "clip": ALL_EQUAL, "comclip": TEXT_ONLY}}
    s = summarise_pairs("winoground", ex, records)
    assert s["metrics"]["clip"]["text_score"] == 0.5
    assert s["metrics"]["comclip"]["text_score"] == 1.0
    assert s["metrics"]["comclip"]["image_score"] == 0.5
    assert s["metrics"]["clip"]["group_score[Relation]"] == 0.0
    report = {"dataset": "winoground", **s, "source": "x", "images": "y", "preset": "tiny",
              "models": {"encoder": "e", "detector": "d", "random_weights": True}, "options": {}, "notes": []}
    md = table(report)
    assert "| text_score | 2 | 0 | 50.0 | 100.0 | +50.0 |" in md
    assert "| group_score[Relation] | 1 | 0 | 0.0 | 0.0 | +0.0 |" in md
    assert "random weights" in markdown(report)
