"""What an answer shows (comclip.studio.presentation): the story, margins, the score table, downloads."""

from __future__ import annotations

import csv
import io

import pytest

from comclip.graph import SceneGraph
from comclip.options import Options
from comclip.result import CaptionResult, MatchResult
from comclip.studio import presentation


def result(scores: list[tuple[float, float]], captions: list[str] | None = None) -> MatchResult:
    captions = captions or [f"caption {i}" for i in range(len(scores))]
    caps = [CaptionResult(caption=t, clip_score=a, comclip_score=b, graph=SceneGraph(t), components=[])
            for t, (a, b) in zip(captions, scores, strict=True)]
    return MatchResult(image_path=None, width=10, height=10, captions=caps, preset="tiny",
                       models={"random_weights": True}, options=Options(), logit_scale=100.0, timings_ms={})


# -- the story ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("scores", "true", "lead"), [
    ([(0.20, 0.30), (0.231, 0.288)], 0,
     "CLIP prefers the wrong caption “caption 1” by 0.031 — ComCLIP picks the true one by 0.012."),
    ([(0.25, 0.30), (0.20, 0.31)], 0,
     "CLIP picks the true caption by 0.050 — ComCLIP prefers the wrong caption “caption 1” by 0.010."),
    ([(0.25, 0.30), (0.20, 0.20)], 0, "Both pick the true caption: CLIP by 0.050, ComCLIP by 0.100 (ComCLIP widens"),
    ([(0.25, 0.30), (0.20, 0.20), (0.31, 0.40)], 0,
     "Both prefer a wrong caption: CLIP “caption 2” by 0.060, ComCLIP “caption 2” by 0.100."),
    ([(0.25, 0.30), (0.20, 0.20)], 1,
     "Both prefer a wrong caption: CLIP “caption 0” by 0.050, ComCLIP “caption 0” by 0.100."),
])
def test_story_names_the_true_caption_and_who_got_it_right(scores, true, lead):
    text = presentation.story(result(scores), true)
    plain = text.replace("<b>", "").replace("</b>", "")
    plain = plain.replace('<i title="caption 1">', "").replace('<i title="caption 0">', "")
    plain = plain.replace('<i title="caption 2">', "").replace("</i>", "")
    assert plain.startswith(lead)


def test_margins_and_tiny_numbers_are_printed_precisely():
    clip, com = presentation.verdicts(result([(0.2000, 0.3), (0.20002, 0.2999)]), 0)
    assert clip.margin == pytest.approx(-0.00002) and not clip.right and clip.best_wrong == 1
    assert com.margin == pytest.approx(0.0001) and com.right
    assert presentation.fmt_num(0.00002) == "2e-05" and presentation.fmt_num(0.0312) == "0.031"
    assert presentation.fmt_num(0.00312) == "0.0031"
    assert presentation.fmt_signed(-0.0000751, 4) == "−7.5e-05"


def test_score_table_marks_picks_and_the_true_caption_and_shortens_long_captions():
    long = "a cup on a saucer " * 20
    r = result([(0.20, 0.30), (0.25, 0.28)], ["a cup on a saucer", long.strip()])
    table = presentation.score_table(r, 0)
    assert table.count('class="num pick"') == 2 and "★ 0.2500" in table and "★ 0.3000" in table
    assert '<tr class=is-true><td class="idx">1</td>' in table and 'class="tag">true' in table
    assert f'title="{long.strip()}"' in table and "…" in table  # full text on hover


def test_downloads_hold_the_result_the_true_caption_and_margins(tmp_path, monkeypatch):
    monkeypatch.setattr(presentation, "DOWNLOADS", tmp_path)
    r = result([(0.20, 0.30), (0.25, 0.28)], ["a cup on a saucer", "a saucer on a cup"])
    json_path, csv_path = presentation.write_downloads(r, 0, "k" * 40)
    record = __import__("json").loads(open(json_path, encoding="utf-8").read())
    assert record["true_caption"] == "a cup on a saucer"
    assert record["margins"]["clip"] == pytest.approx(-0.05) and record["margins"]["comclip"] == pytest.approx(0.02)
    assert record["captions"][1]["clip_score"] == 0.25
    rows = list(csv.DictReader(io.StringIO(open(csv_path, encoding="utf-8").read())))
    assert [r["caption"] for r in rows] == ["a cup on a saucer", "a saucer on a cup"]
    assert rows[0]["true"] == "True" and rows[1]["clip_rank"] == "1" and float(rows[0]["comclip_score"]) == 0.3
