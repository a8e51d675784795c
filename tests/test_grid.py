"""Several images against the same captions (issue 24): the grid equals scoring each image alone,
Winoground's text / image / group follow the definitions (ties lose, the pairing decides), ranks are
pessimistic, the story says what happened, bad requests are one clear error, and the CLI prints
the grid and its JSON."""

import itertools
import json
import random
import subprocess
import sys

import numpy as np
import pytest

from comclip import ranking
from comclip.cli.main import main
from comclip.errors import InputError
from comclip.eval import metrics
from comclip.graph import SceneGraph
from comclip.grid import GridResult, check_grid, story, summary
from comclip.options import Options
from comclip.result import CaptionResult, MatchResult

from .conftest import ASSETS, ROOT

TOL = 1e-6
MUG, GRASS = "a mug in some grass", "some grass in a mug"
PAIRS = json.loads((ASSETS / "pairs.json").read_text(encoding="utf-8"))
MUG_PAIR = [str(ASSETS / p) for p in PAIRS[0]["images"]]  # mug in grass, grass in a mug
LEFT_RIGHT = ["the left image", "the right image"]


def _grid(clip, comclip=None, pairing=None, captions=None) -> GridResult:
    """A hand-made grid: ``clip[i][j]`` image i vs caption j (ComCLIP the same unless given)."""
    comclip = clip if comclip is None else comclip
    captions = captions or [MUG, GRASS, "a cat", "a dog"][: len(clip[0])]
    images = tuple(MatchResult(
        image_path=f"image{i}.png", width=4, height=3, preset="hand", models={}, options=Options(), logit_scale=1.0,
        timings_ms={}, captions=[CaptionResult(caption=c, clip_score=a, comclip_score=b, graph=SceneGraph(c),
                                               components=[]) for c, a, b in zip(captions, row_a, row_b, strict=True)])
        for i, (row_a, row_b) in enumerate(zip(clip, comclip, strict=True)))
    return GridResult(images, tuple(range(len(clip))) if pairing is None else tuple(pairing))


# -- Winoground on hand-made tables -------------------------------------------------------------

def _by_definition(s, pairing):
    """Winoground read off the grid directly: each image's true caption beats the other caption on
    it; each caption's true image beats the other image on it (strictly)."""
    true_image = {c: i for i, c in enumerate(pairing)}
    text = all(s[i][pairing[i]] > s[i][1 - pairing[i]] for i in (0, 1))
    image = all(s[true_image[j]][j] > s[1 - true_image[j]][j] for j in (0, 1))
    return {"text": text, "image": image, "group": text and image}


@pytest.mark.parametrize("pairing", [(0, 1), (1, 0)])
def test_winoground_follows_the_definitions_on_every_small_table(pairing):
    values = (0.1, 0.2, 0.3)  # few values: ties come up often
    for cells in itertools.product(values, repeat=4):
        s = [list(cells[:2]), list(cells[2:])]
        grid = _grid(s, pairing=pairing)
        assert grid.winoground("clip") == _by_definition(s, pairing), (s, pairing)
        t = grid.table("clip")
        assert grid.winoground("clip") == {"text": metrics.winoground_text(t), "image": metrics.winoground_image(t),
                                           "group": metrics.winoground_group(t)}


def test_the_table_maps_the_pairing():
    s = [[0.1, 0.9], [0.8, 0.2]]
    assert _grid(s).table("clip") == {"c0_i0": 0.1, "c0_i1": 0.8, "c1_i0": 0.9, "c1_i1": 0.2}
    swapped = _grid(s, pairing=(1, 0))  # image 0's true caption is caption 1
    assert swapped.table("clip") == {"c0_i0": 0.9, "c0_i1": 0.2, "c1_i0": 0.1, "c1_i1": 0.8}
    assert swapped.winoground("clip") == {"text": True, "image": True, "group": True}
    assert _grid(s).winoground("clip") == {"text": False, "image": False, "group": False}


def test_ties_lose():
    tied_row = _grid([[0.5, 0.5], [0.2, 0.8]])  # image 0 cannot tell its captions apart
    assert tied_row.winoground("clip") == {"text": False, "image": True, "group": False}
    tied_column = _grid([[0.5, 0.4], [0.5, 0.8]])  # caption 0 scores both images alike
    assert tied_column.winoground("clip") == {"text": True, "image": False, "group": False}
    assert _grid([[0.3, 0.3], [0.3, 0.3]]).winoground("clip") == {"text": False, "image": False, "group": False}


def test_the_rules_are_the_benchmarks_own():
    assert metrics.rank_of is ranking.rank_of and metrics.winoground_text is ranking.winoground_text
    assert metrics.WINOGROUND_KEYS == ("c0_i0", "c0_i1", "c1_i0", "c1_i1")


# -- ranks and picks ----------------------------------------------------------------------------

def test_ranks_are_pessimistic_and_follow_the_pairing():
    s = [[0.9, 0.1, 0.5, 0.9],  # image 0: its caption 0 ties caption 3 -> rank 2
         [0.2, 0.3, 0.8, 0.4],  # image 1: its caption 2 is first
         [0.1, 0.7, 0.6, 0.0]]  # image 2: its caption 3 is last
    grid = _grid(s, pairing=(0, 2, 3))
    assert grid.caption_ranks("clip") == (2, 1, 4)
    # caption 0's image 0 is first; caption 1 is nobody's; caption 2's image 1 is first; caption 3's image 2 is last
    assert grid.image_ranks("clip") == (1, None, 1, 3)
    assert grid.caption_picks("clip") == (None, 2, 1)  # image 0's top is tied: no pick
    assert grid.image_picks("clip") == (0, 2, 1, 0)
    assert grid.true_image(3) == 2 and grid.true_image(1) is None
    for i, row in enumerate(s):
        assert grid.caption_ranks("clip")[i] == metrics.rank_of(row, grid.pairing[i])


def test_methods_are_read_apart():
    grid = _grid([[0.9, 0.1], [0.2, 0.8]], comclip=[[0.1, 0.9], [0.2, 0.8]])
    assert grid.clip == ((0.9, 0.1), (0.2, 0.8)) and grid.comclip == ((0.1, 0.9), (0.2, 0.8))
    assert grid.winoground("clip")["group"] and not grid.winoground("comclip")["text"]
    with pytest.raises(InputError, match="unknown method"):
        grid.scores("blip")


# -- the story ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("clip", "pairing", "want"), [
    ([[0.9, 0.1], [0.2, 0.8]], (0, 1), "CLIP matches both ways — group score won"),
    ([[0.1, 0.9], [0.8, 0.2]], (1, 0), "CLIP matches both ways — group score won"),
    ([[0.9, 0.8], [0.6, 0.7]], (0, 1), "CLIP gives both captions to the left image — image score lost, text score won"),
    ([[0.9, 0.1], [0.8, 0.7]], (0, 1), f'CLIP gives "{MUG}" to both images — text score lost, image score won'),
    ([[0.1, 0.9], [0.8, 0.2]], (0, 1), "CLIP gives each image the other's caption and each caption the other image — "
                                       "text and image scores lost"),
    ([[0.5, 0.5], [0.2, 0.8]], (0, 1), "CLIP cannot tell the captions apart for the left image — text score lost, "
                                       "image score won"),
    ([[0.9, 0.3], [0.8, 0.2]], (0, 1), f'CLIP gives "{MUG}" to both images and both captions to the left image — '
                                       "text and image scores lost"),
])
def test_story_of_a_pair(clip, pairing, want):
    assert story(_grid(clip, pairing=pairing), "clip", LEFT_RIGHT) == want


def test_story_default_names_summary_and_bigger_grids():
    pair = _grid([[0.9, 0.8], [0.6, 0.7]], comclip=[[0.9, 0.1], [0.2, 0.8]])
    assert story(pair, "clip") == "CLIP gives both captions to image 0 — image score lost, text score won"
    assert summary(pair, LEFT_RIGHT) == ("CLIP gives both captions to the left image — image score lost, text score "
                                         "won; ComCLIP matches both ways — group score won")
    big = _grid([[0.9, 0.1, 0.5, 0.9], [0.2, 0.3, 0.8, 0.4], [0.1, 0.7, 0.6, 0.0]],
                comclip=[[0.9, 0.1, 0.5, 0.2], [0.2, 0.3, 0.8, 0.4], [0.1, 0.2, 0.3, 0.9]], pairing=(0, 2, 3))
    assert story(big, "clip") == ("CLIP ranks the true caption first for 1 of 3 images and the true image first for "
                                  "2 of 3 paired captions")
    assert story(big, "comclip") == ("ComCLIP ranks the true caption first for all 3 images and the true image first "
                                     "for all 3 paired captions")
    square = _grid([[0.1, 0.9, 0.5], [0.9, 0.1, 0.5], [0.9, 0.9, 0.1]])
    assert story(square, "clip") == ("CLIP ranks the true caption first for none of the 3 images and the true image "
                                     "first for none of the 3 captions")
    with pytest.raises(InputError, match="one name per image"):
        story(pair, "clip", ["only one"])


# -- JSON ---------------------------------------------------------------------------------------

def test_to_dict_of_a_pair_and_of_a_bigger_grid():
    pair = _grid([[0.1, 0.9], [0.8, 0.2]], comclip=[[0.1, 0.9], [0.8, 0.9]], pairing=(1, 0))
    d = json.loads(json.dumps(pair.to_dict(names=LEFT_RIGHT)))
    assert d["captions"] == [MUG, GRASS] and d["pairing"] == [1, 0]
    assert d["clip"] == [[0.1, 0.9], [0.8, 0.2]] and d["comclip"] == [[0.1, 0.9], [0.8, 0.9]]
    assert d["winoground"] == {"clip": {"text": True, "image": True, "group": True},
                               "comclip": {"text": False, "image": False, "group": False}}
    assert d["ranks"]["clip"] == {"caption_per_image": [1, 1], "image_per_caption": [1, 1]}
    assert d["ranks"]["comclip"] == {"caption_per_image": [1, 2], "image_per_caption": [1, 2]}
    assert d["picks"]["comclip"] == {"caption_per_image": [1, 1], "image_per_caption": [1, None]}  # a tie: no pick
    assert d["story"]["clip"] == "CLIP matches both ways — group score won"
    assert d["images"] == [json.loads(json.dumps(r.to_dict())) for r in pair.images]
    big = _grid([[0.9, 0.1, 0.5], [0.2, 0.3, 0.8]], pairing=(0, 2)).to_dict()
    assert "winoground" not in big and big["ranks"]["clip"] == {"caption_per_image": [1, 1],
                                                                "image_per_caption": [1, None, 1]}


# -- bad requests -------------------------------------------------------------------------------

@pytest.mark.parametrize(("images", "captions", "pairing", "message"), [
    (["a.png"], [MUG, GRASS], None, "a grid takes 2 to 4 images; 1 given"),
    (["a.png"] * 5, [MUG, GRASS], None, "a grid takes 2 to 4 images; 5 given"),
    ("a.png", [MUG, GRASS], None, "give the images as a list"),
    (["a.png", "b.png"], [MUG], None, "a grid takes 2 to 8 captions; 1 given"),
    (["a.png", "b.png"], [f"caption {k}" for k in range(9)], None, "a grid takes 2 to 8 captions; 9 given"),
    (["a.png", "b.png"], [MUG, "  "], None, "caption 2 is empty"),
    (["a.png", "b.png"], [MUG, " a mug  in some grass"], None, "caption 2 repeats caption 1"),
    (["a.png", "b.png"], [MUG, GRASS, "a cat"], None, "2 images and 3 captions: give the pairing"),
    (["a.png", "b.png"], [MUG, GRASS], [0], "the pairing has 1 entry for 2 images"),
    (["a.png", "b.png"], [MUG, GRASS], [0, 1, 1], "the pairing has 3 entries for 2 images"),
    (["a.png", "b.png"], [MUG, GRASS], [0, 2], "the pairing names caption 2, but the captions are numbered 0 to 1"),
    (["a.png", "b.png"], [MUG, GRASS], [-1, 0], "the pairing names caption -1"),
    (["a.png", "b.png"], [MUG, GRASS], [1, 1], "the pairing gives caption 1 to two images"),
    (["a.png", "b.png"], [MUG, GRASS], ["0", "1"], "the pairing must be a list of caption indices"),
    (["a.png", "b.png"], [MUG, GRASS], [True, False], "the pairing must be a list of caption indices"),
])
def test_bad_requests_are_one_clear_error(images, captions, pairing, message):
    with pytest.raises(InputError) as err:
        check_grid(images, captions, pairing)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_checks_give_cleaned_captions_and_the_default_pairing():
    assert check_grid(["a", "b"], [" a  mug ", GRASS]) == (["a mug", GRASS], (0, 1))
    assert check_grid(["a", "b"], [MUG, GRASS, "a cat"], [2, 0]) == ([MUG, GRASS, "a cat"], (2, 0))


def test_a_grid_needs_the_same_captions_for_every_image():
    grid = _grid([[0.9, 0.1], [0.2, 0.8]])
    other = _grid([[0.9, 0.1], [0.2, 0.8]], captions=["a cat", "a dog"])
    with pytest.raises(InputError, match="same captions"):
        GridResult((grid.images[0], other.images[1]), (0, 1))
    with pytest.raises(InputError, match="Winoground's scores need 2 images and 2 captions"):
        _grid([[0.9, 0.1, 0.3], [0.2, 0.8, 0.3]]).winoground("clip")


# -- the engine ---------------------------------------------------------------------------------

def _assert_grid_is_each_image_alone(engine, grid, images, captions, **changes):
    for i, image in enumerate(images):
        engine.clear_caches()
        alone = engine.match(image, captions, **changes)
        np.testing.assert_allclose(grid.clip[i], [c.clip_score for c in alone.captions], atol=TOL, rtol=0)
        np.testing.assert_allclose(grid.comclip[i], [c.comclip_score for c in alone.captions], atol=TOL, rtol=0)
        for got, want in zip(grid.images[i].captions, alone.captions, strict=True):
            assert len(got.components) == len(want.components)
            np.testing.assert_allclose([k.weight for k in got.components], [k.weight for k in want.components],
                                       atol=TOL, rtol=0)
            for a, b in zip(got.components, want.components, strict=True):
                np.testing.assert_allclose(np.asarray(a.boxes.xyxy), np.asarray(b.boxes.xyxy), atol=TOL, rtol=0)


def test_the_grid_equals_scoring_each_image_alone(tiny_engine):
    grid = tiny_engine.match_grid(MUG_PAIR, [MUG, GRASS])
    assert grid.shape == (2, 2) and grid.pairing == (0, 1) and grid.captions == (MUG, GRASS)
    assert [r.image_path for r in grid.images] == MUG_PAIR
    _assert_grid_is_each_image_alone(tiny_engine, grid, MUG_PAIR, [MUG, GRASS])
    t = grid.table("comclip")
    assert t["c1_i0"] == grid.comclip[0][1] and grid.winoground("comclip")["text"] == metrics.winoground_text(t)


def test_a_bigger_grid_with_a_pairing_equals_each_image_alone(tiny_engine):
    images = [str(ASSETS / "examples" / n) for n in ("cat_on_box.png", "box_on_cat.png", "red_ball_blue_box.png")]
    captions = ["a box sitting on a cat", "a red ball next to a blue box", "a cat sitting on a box", MUG]
    grid = tiny_engine.match_grid(images, captions, pairing=[2, 0, 1], weighting="sum")
    assert grid.pairing == (2, 0, 1) and not grid.is_pair and grid.images[0].options.weighting == "sum"
    _assert_grid_is_each_image_alone(tiny_engine, grid, images, captions, weighting="sum")
    assert grid.image_ranks("clip")[3] is None  # the mug caption is nobody's


def test_one_image_pass_and_each_caption_encoded_once(tiny_engine, monkeypatch):
    tiny_engine.clear_caches()
    passes, texts = [], []
    encoder = tiny_engine.encoder
    encode_pixels, encode_texts = encoder.encode_pixels, encoder.encode_texts
    monkeypatch.setattr(encoder, "encode_pixels", lambda *a, **k: passes.append(1) or encode_pixels(*a, **k))
    monkeypatch.setattr(encoder, "encode_texts", lambda t, *a, **k: texts.extend(t) or encode_texts(t, *a, **k))
    stages = []
    tiny_engine.match_grid(MUG_PAIR, [MUG, GRASS], on_stage=lambda stage, n: stages.append((stage, n)))
    assert passes == [1]
    assert texts.count(MUG) == 1 and texts.count(GRASS) == 1
    assert stages[0] == ("parse", 4) and [s for s, _ in stages] == ["parse", "ground", "encode", "compose"]


def test_the_engine_checks_before_any_work(tiny_engine, monkeypatch):
    monkeypatch.setattr(tiny_engine, "match_batch", lambda *a, **k: pytest.fail("ran despite a bad request"))
    with pytest.raises(InputError, match="1 given"):
        tiny_engine.match_grid(MUG_PAIR[:1], [MUG, GRASS])
    with pytest.raises(InputError, match="gives caption 0 to two images"):
        tiny_engine.match_grid(MUG_PAIR, [MUG, GRASS], pairing=(0, 0))


# -- the example pairs --------------------------------------------------------------------------

def test_the_example_pairs_are_well_formed(tiny_engine):
    assert len(PAIRS) >= 3
    for pair in PAIRS:
        assert set(pair) == {"images", "captions", "pairing", "note"}
        paths = [ASSETS / p for p in pair["images"]]
        assert all(p.is_file() and p.stat().st_size < 100_000 for p in paths), paths
        check_grid(paths, pair["captions"], pair["pairing"])
        assert len(paths) == len(pair["captions"]) == 2 and sorted(pair["pairing"]) == [0, 1]
        assert sorted(pair["captions"][0].split()) == sorted(pair["captions"][1].split())  # the same words
    assert {tuple(p["pairing"]) for p in PAIRS} == {(0, 1), (1, 0)}  # one lists its captions the other way
    grid = tiny_engine.match_grid([ASSETS / p for p in PAIRS[-1]["images"]], PAIRS[-1]["captions"],
                                  pairing=PAIRS[-1]["pairing"])
    assert grid.table("clip")["c0_i0"] == grid.clip[0][PAIRS[-1]["pairing"][0]]


# -- the command line ---------------------------------------------------------------------------

def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


TINY = ("--preset", "tiny", "--parser", "rules")


def test_cli_grid_table(capsys, cache_dir, tiny_engine):
    code, out, err = _run(capsys, "score", *MUG_PAIR, "--caption", MUG, "--caption", GRASS, *TINY)
    assert code == 0, err
    grid = tiny_engine.match_grid(MUG_PAIR, [MUG, GRASS])
    lines = out.splitlines()
    assert lines[:6] == ["images:", f"  i0  {MUG_PAIR[0]} (640x480)   true caption: c0",
                         f"  i1  {MUG_PAIR[1]} (640x480)   true caption: c1", "captions:", f"  c0  {MUG}",
                         f"  c1  {GRASS}"]
    for m, label in (("clip", "CLIP"), ("comclip", "ComCLIP")):
        at = lines.index(next(line for line in lines if line.startswith(f"{label} ")))
        assert lines[at].split() == [label, "c0", "c1"]
        for i in range(2):
            cells = lines[at + 1 + i].split("  ")
            row = [c for c in cells if c.strip()][1:]
            assert [float(c.strip(" []*^")) for c in row] == pytest.approx(grid.scores(m)[i], abs=1e-4)
            assert [c.strip().startswith("[") for c in row] == [j == i for j in range(2)]  # the true pair
            assert [c.rstrip().rstrip("^").endswith("*") for c in row] == [j == grid.caption_picks(m)[i]
                                                                          for j in range(2)]
            assert ["^" in c for c in row] == [grid.image_picks(m)[j] == i for j in range(2)]
        won = grid.winoground(m)
        assert f"  {label:<10}" + "".join(f"{'won' if won[k] else 'lost':>7}" for k in ("text", "image", "group")) \
            in lines
    names = [p.rsplit("/", 1)[1] for p in MUG_PAIR]
    assert lines[-2:] == [f"{story(grid, 'clip', names)}.", f"{story(grid, 'comclip', names)}."]
    assert "random weights" in out


def test_cli_grid_json_with_a_swapped_pairing(capsys, cache_dir, tiny_engine):
    code, out, err = _run(capsys, "score", *MUG_PAIR, "--caption", GRASS, MUG, "--pairing", "1,0", "--json", *TINY)
    assert code == 0, err
    d = json.loads(out)
    grid = tiny_engine.match_grid(MUG_PAIR, [GRASS, MUG], pairing=(1, 0))
    assert d["pairing"] == [1, 0] and d["captions"] == [GRASS, MUG]
    np.testing.assert_allclose(d["clip"], grid.clip, atol=TOL)
    np.testing.assert_allclose(d["comclip"], grid.comclip, atol=TOL)
    assert d["winoground"] == {m: grid.winoground(m) for m in ("clip", "comclip")}
    assert d["story"]["clip"] == story(grid, "clip", ["mug_in_grass.png", "grass_in_mug.png"])
    assert [im["image"]["path"] for im in d["images"]] == MUG_PAIR
    assert d["images"][0]["captions"][0]["caption"] == GRASS


def test_cli_bigger_grid_prints_ranks(capsys, cache_dir, tiny_engine):
    images = [*MUG_PAIR, str(ASSETS / "examples" / "cat_on_box.png")]
    captions = [MUG, GRASS, "a cat sitting on a box"]
    code, out, err = _run(capsys, "score", *images, "--caption", *captions, *TINY)
    assert code == 0, err
    grid = tiny_engine.match_grid(images, captions)
    assert "Winoground" not in out
    row = next(line for line in out.splitlines() if line.startswith("  i2 -> its caption c2"))
    assert row.split()[-2:] == [str(grid.caption_ranks("clip")[2]), str(grid.caption_ranks("comclip")[2])]
    assert "CLIP ranks the true caption first for" in out


def test_cli_one_image_with_caption_flags_is_the_single_image_table(capsys, cache_dir):
    code, out, err = _run(capsys, "score", MUG_PAIR[0], "--caption", MUG, GRASS, *TINY)
    assert code == 0, err
    code2, out2, _ = _run(capsys, "score", MUG_PAIR[0], MUG, GRASS, *TINY)
    assert code2 == 0 and out == out2 and "delta" in out


@pytest.mark.parametrize(("argv", "message"), [
    ([*MUG_PAIR, "--caption", MUG], "a grid takes 2 to 8 captions; 1 given"),
    ([*MUG_PAIR, "--caption", MUG, GRASS, "a cat"], "give each image's true caption with --pairing"),
    ([*MUG_PAIR, "--caption", MUG, GRASS, "--pairing", "0,x"], "--pairing takes caption indices"),
    ([*MUG_PAIR, "--caption", MUG, GRASS, "--pairing", "0,2"], "the pairing names caption 2"),
    ([*MUG_PAIR, "--caption", MUG, GRASS, "--pairing", "0"], "the pairing has 1 entry for 2 images"),
    ([MUG_PAIR[0], MUG, GRASS, "--pairing", "0,1"], "--pairing needs several images"),
    ([MUG_PAIR[0], "missing.png", "--caption", MUG, GRASS], "image file not found: missing.png"),
    ([*MUG_PAIR, "--caption", MUG, GRASS, "--debug-embeddings"], "--debug-embeddings needs --json"),
])
def test_cli_grid_errors_are_one_line(capsys, argv, message):
    code, out, err = _run(capsys, "score", *argv, *TINY)
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], err


def test_random_grids_keep_the_story_consistent_with_the_scores():
    rng = random.Random(0)
    for _ in range(200):
        s = [[rng.choice((0.1, 0.2, 0.3)) for _ in range(2)] for _ in range(2)]
        pairing = rng.choice(((0, 1), (1, 0)))
        grid = _grid(s, pairing=pairing)
        text = story(grid, "clip")
        won = grid.winoground("clip")
        assert text.endswith("group score won") == won["group"]
        assert ("text score lost" in text or "text and image scores lost" in text) == (not won["text"])
        assert ("image score lost" in text or "text and image scores lost" in text) == (not won["image"])


def test_the_grid_value_and_its_words_load_without_torch():
    code = "import sys, comclip.grid, comclip.cli.grid; assert 'torch' not in sys.modules, 'torch imported'"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
