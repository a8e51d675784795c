"""The app's "Explore a run" tab as plain events (``comclip.studio.explore_view``), no server: a run
opened by path or link (only under the allowed folders), its headlines and counts, filtered pages of
20, an example scored again through the studio's service that reproduces the stored scores to 1e-5
(with the run's preset and options), a warning when an option differs, and one message per bad folder."""

import json
import re
import shutil

import pytest

from comclip.eval import metrics
from comclip.eval import report as reporting
from comclip.eval.datasets import Example
from comclip.eval.explore import load_run
from comclip.eval.runner import run
from comclip.studio.events import Studio
from comclip.studio.explore_view import PAGE_SIZE, TOLERANCE, Explorer, check_run_path, example_link
from comclip.studio.settings import Settings

from . import eval_synth as synth

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def ids(html: str) -> list[str]:
    """The example ids of a rendered page of the list, in order."""
    return re.findall(r'data-example="([^"]+)"', html)


def status_text(html: str) -> str:
    return re.sub(r"<[^>]+>", "", html).replace("&#x27;", "'")


@pytest.fixture(scope="module")
def svo(tiny_engine, tmp_path_factory):
    root = tmp_path_factory.mktemp("svo")
    data = synth.write_svo(root / "data", n=4)
    run(tiny_engine, "svo", data, root / "runs" / "svo", progress=False)
    return root / "runs" / "svo"


@pytest.fixture(scope="module")
def explorer(tiny_engine, wino, svo):
    """The app's explorer: started with ``--run`` the Winoground run, ``--run-root`` the SVO run's parent."""
    settings = Settings(run=str(wino[0]), run_root=str(svo.parent))
    return Explorer(Studio.create(tiny_engine, settings=settings).service)


def write_big_run(out, n: int):
    """A run of ``n`` Winoground records (random scores; the dataset is not there)."""
    import random

    rng = random.Random(1)
    records = [{"id": f"x{i}", "status": "ok", "meta": {"caption_0": f"a {i}", "caption_1": f"b {i}",
                                                        "collapsed_tag": ("Object", "Relation")[i % 2]},
                "clip": {k: rng.random() for k in metrics.WINOGROUND_KEYS},
                "comclip": {k: rng.random() for k in metrics.WINOGROUND_KEYS}} for i in range(n)]
    examples = [Example(r["id"], keys=metrics.WINOGROUND_KEYS, groups=(r["meta"]["collapsed_tag"],)) for r in records]
    summary = reporting.summarise_pairs("winoground", examples, {r["id"]: r for r in records})
    out.mkdir(parents=True)
    (out / "run.json").write_text(json.dumps({"dataset": "winoground", "source": "/nowhere/x.jsonl", "preset": "tiny",
                                              "options": {}}))
    (out / "examples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (out / "report.json").write_text(json.dumps({"dataset": "winoground", **summary, "limit": None}))
    return out


# -- a run opened -----------------------------------------------------------------------------------

def test_the_run_opens_with_its_numbers_and_first_page(explorer, wino):
    out, report, _ = wino
    shown = explorer.load({"explore_path": str(out)})
    assert shown["explore_status"] == "" and shown["explore_run"] == str(out.resolve())
    head = shown["explore_head"]
    for name in ("text_score", "image_score", "group_score"):  # each headline: both methods' value and counts
        clip, com = report["metrics"]["clip"][name], report["metrics"]["comclip"][name]
        c = load_run(out).summary().headlines
        counts = next(h.counts for h in c if h.name == name)
        cells = (f"<td>{name}</td><td class='num'>{clip:.3f}</td><td class='num'>{com:.3f}</td>")
        assert cells in head
        assert "".join(f"<td class='num'>{counts.get(o)}</td>" for o in
                       ("fixed", "broken", "both_right", "both_wrong", "failed")) in head
    assert ids(shown["explore_list"]) == ["0", "1", "2", "3", "4"]
    assert "1–5 of 5 examples" in shown["explore_pageinfo"]
    assert shown["explore_list"].count('class="xthumb"') == 8  # 4 scored examples × 2 images; "3" failed
    counts = shown["explore_counts"]
    assert "<td class='cap'>all</td>" in counts and "<td class='cap'>Object</td>" in counts
    assert json.loads(shown["explore_options"])["parser"] == "rules"  # the run's options, ready to edit


def test_filters_and_pages_give_the_runs_rows(explorer, svo):
    big = write_big_run(svo.parent / "big", 45)
    r = load_run(big)
    shown = explorer.load({"explore_path": str(big)})
    assert ids(shown["explore_list"]) == [row.id for row in r.rows[:PAGE_SIZE]]
    assert shown["explore_list"].count('class="xnoimg"') == 2 * PAGE_SIZE  # dataset gone: placeholders
    values = {"explore_run": str(big), "explore_metric": "text", "explore_outcome": "all", "explore_group": "all",
              "explore_sort": "order", "explore_offset": 0}
    page2 = explorer.filtered(values, +1)
    assert ids(page2["explore_list"]) == [row.id for row in r.rows[20:40]] and page2["explore_offset"] == 20
    assert "21–40 of 45 examples" in page2["explore_pageinfo"]
    page3 = explorer.filtered({**values, "explore_offset": 20}, +1)
    assert ids(page3["explore_list"]) == [row.id for row in r.rows[40:]]
    assert explorer.filtered({**values, "explore_offset": 40}, +1)["explore_offset"] == 40  # Next on the last page
    assert explorer.filtered(values, -1)["explore_offset"] == 0  # Prev on the first
    for metric, outcome, group, sort in [("group", "fixed", "all", "order"), ("text", "both_wrong", "Relation",
                                                                              "margin-gain"),
                                         ("image", "all", "Object", "margin-loss"), ("text", "broken", "all",
                                                                                     "margin-change")]:
        got = explorer.filtered({**values, "explore_metric": metric, "explore_outcome": outcome,
                                 "explore_group": group, "explore_sort": sort, "explore_offset": 20})
        want = r.select(metric=metric, outcome=None if outcome == "all" else outcome,
                        group=None if group == "all" else group, sort=sort, limit=PAGE_SIZE)
        assert ids(got["explore_list"]) == [row.id for row in want]  # a filter starts at the first page
        assert f"of {want.total} examples" in got["explore_pageinfo"] and got["explore_offset"] == 0
        assert f"caption>{metric}: outcome × group" in got["explore_counts"]
    bad = explorer.filtered({**values, "explore_metric": "pair"})
    assert set(bad) == {"explore_status"} and "unknown metric 'pair'" in status_text(bad["explore_status"])


# -- an example opened ----------------------------------------------------------------------------------

def open_values(out, ex_id, options=None):
    return {"explore_run": str(out), "explore_options": options, "explore_base": "http://app.test/",
            "explore_pick": ex_id}


def test_an_example_is_scored_again_through_the_service_as_stored(explorer, wino):
    out, _, _ = wino
    svc = explorer.service
    options = explorer.load({"explore_path": str(out)})["explore_options"]
    before = svc.cache.computed
    shown = explorer.open_example(open_values(out, "1", options))
    assert "Scored again with preset “tiny”" in status_text(shown["explore_note"])
    assert svc.cache.computed == before + 1  # both images in ONE request (one model call), cached
    state = shown["explore_state"]
    records = [json.loads(x) for x in (out / "examples.jsonl").read_text().splitlines()]
    record = next(x for x in records if x["id"] == "1")
    for k, answer in enumerate(state.answers):  # image k's captions: c0_ik, c1_ik
        for j, c in enumerate(answer.result.captions):
            key = f"c{j}_i{k}"
            assert c.clip_score == pytest.approx(record["clip"][key], abs=TOLERANCE)
            assert c.comclip_score == pytest.approx(record["comclip"][key], abs=TOLERANCE)
    example = shown["explore_example"]
    assert "✓ Scored again: every score equals the stored one" in example and "⚠" not in example
    assert example.count("<img") == 2 and "caption \\ image" in example and example.count("match</span>") == 2
    # the app's own panels for image 0, its own caption marked true (Winoground: caption 0)
    assert "True caption: <i title=\"the red ball is left of the blue box\"" in shown["explore_summary"]
    assert shown["explore_selector"]["choices"][0][1] == 0 and "<img" in shown["explore_grounding"]
    assert shown["explore_image"]["choices"] == [("image 0", 0), ("image 1", 1)]
    other = explorer.image_changed({"explore_image": 1, "explore_state": state})
    assert "True caption: <i title=\"the blue ball is left of the red box\"" in other["explore_summary"]
    assert other["explore_state"].shown == 1
    again = explorer.open_example(open_values(out, "1", options))
    assert svc.cache.computed == before + 1 and "from cache" in again["explore_note"]


def test_a_changed_option_shows_the_warning(explorer, wino):
    out, _, _ = wino
    options = json.loads(explorer.load({"explore_path": str(out)})["explore_options"])
    shown = explorer.open_example(open_values(out, "0", json.dumps(options | {"weighting": "sum"})))
    example = shown["explore_example"]
    assert 'class="xcheck bad" role="alert"' in example and "✓" not in example
    assert "weighting: sum (the run: softmax)" in example and "now " in example  # the new scores beside the stored
    assert shown["explore_state"].answers  # the panels show the new scores


def test_a_pair_dataset_example(explorer, svo):
    r = load_run(svo)
    row = r.rows[0]
    shown = explorer.open_example(open_values(svo, row.id))  # no options typed: the run's
    assert "✓ Scored again" in shown["explore_example"]
    assert shown["explore_image"]["choices"] == [("positive image", 0), ("negative image", 1)]
    assert f"with “{row.captions[0]}”" in shown["explore_summary"]  # one caption: its scores, inside out
    assert "<img" in shown["explore_gallery"]
    grid = shown["explore_example"]
    assert grid.count("<tr><td class='cap'>") == 1 and "<code>pos</code>" in grid and "<code>neg</code>" in grid


def test_a_preset_the_app_does_not_offer(explorer, wino, svo):
    moved = svo.parent / "other-preset"
    shutil.copytree(wino[0], moved)
    info = json.loads((moved / "run.json").read_text())
    (moved / "run.json").write_text(json.dumps(info | {"preset": "large"}))
    shown = explorer.open_example(open_values(moved, "0"))
    note = status_text(shown["explore_note"])
    assert "scored with the preset “large”, which this app does not offer" in note and "COMCLIP_PRESET=large" in note
    assert "CLIP" in shown["explore_example"] and not shown["explore_state"].answers  # stored scores still shown
    failed = explorer.open_example(open_values(wino[0], "3"))
    assert "not scored in the run: image file not found" in status_text(failed["explore_note"])


# -- links and folders ----------------------------------------------------------------------------------

def test_a_link_opens_the_example(explorer, wino):
    out = wino[0].resolve()
    link = example_link("http://app.test/?x=1", str(out), "2")
    assert link == f"http://app.test/?run={str(out).replace('/', '%2F')}&example=2"
    from urllib.parse import parse_qs, urlparse

    query = {k: v[0] for k, v in parse_qs(urlparse(link).query).items()}
    shown = explorer.first_load(query, "http://app.test/")
    assert shown["explore_run"] == str(out) and shown["explore_link"] == link.replace("?x=1", "")
    assert "<b>Example 2</b>" in shown["explore_example"] and shown["explore_state"].example == "2"
    assert shown["tabs"].selected == "explore"
    start = explorer.first_load({}, "http://app.test/")  # no link: the --run folder, no example
    assert start["explore_run"] == str(out) and "tabs" not in start and "Click an example" in start["explore_example"]


@pytest.mark.parametrize("where", ["outside", "symlink", "not-a-run", "incomplete", "empty", "no-example"])
def test_a_bad_folder_is_one_message(explorer, wino, svo, tmp_path, where):
    root = svo.parent
    if where == "outside":
        path, message = str(wino[2]), "is not a folder this app may open"
    elif where == "symlink":  # inside the root by name, outside it in fact
        link = root / f"escape-{tmp_path.name}"
        link.symlink_to(tmp_path)
        path, message = str(link), "is not a folder this app may open"
    elif where == "not-a-run":
        path, message = str(root), "is not a benchmark run folder: it has no run.json"
    elif where == "incomplete":
        half = root / f"half-{tmp_path.name}"
        shutil.copytree(svo, half)
        (half / "report.json").unlink()
        path, message = str(half), "is incomplete: no report.json yet"
    elif where == "empty":
        path, message = "  ", "Type the folder of a finished run"
    else:
        shown = explorer.open_example(open_values(svo, "nope"))
        assert set(shown) == {"explore_note"} and "no example 'nope'" in status_text(shown["explore_note"])
        return
    shown = explorer.load({"explore_path": path})
    assert set(shown) == {"explore_status"}  # one message; nothing else on the page changes
    assert message in status_text(shown["explore_status"]) and shown["explore_status"].count("<p") == 1
    linked = explorer.first_load({"run": path, "example": "0"}, "")
    assert message in status_text(linked["explore_status"]) and "explore_example" not in linked


def test_allowed_folders(tmp_path):
    run_dir, root = tmp_path / "run", tmp_path / "root"
    settings = Settings(run=str(run_dir), run_root=str(root))
    assert check_run_path(str(run_dir / "inner"), settings) == (run_dir / "inner").resolve()
    assert check_run_path(str(root / "a" / ".." / "b"), settings) == (root / "b").resolve()
    with pytest.raises(Exception, match="not a folder this app may open"):
        check_run_path(str(root / ".." / "elsewhere"), settings)
    with pytest.raises(Exception, match="not a folder this app may open"):
        check_run_path(str(tmp_path), Settings())  # nothing configured: nothing opens


def test_settings_and_command_line(tiny_engine, wino):
    import app

    env = Settings.from_env({"COMCLIP_RUN": "runs/a", "COMCLIP_RUN_ROOT": "runs"})
    assert (env.run, env.run_root) == ("runs/a", "runs")
    assert Settings.from_env({"COMCLIP_RUN": "runs/a"}, run="runs/b").run == "runs/b"  # the flag wins
    args = app.parse_args(["--run", "OUT", "--run-root", "DIR"])
    assert (args.run, args.run_root) == ("OUT", "DIR")

    def elem_ids(settings):
        demo = app.build_demo(Studio.create(tiny_engine, settings=settings))
        return {getattr(b, "elem_id", None) for b in demo.blocks.values()}

    assert "explore-list" not in elem_ids(Settings())  # the tab only with a run or a root of runs
    assert {"explore-list", "explore-example", "explore-link", "explore-path"} <= elem_ids(Settings(run=str(wino[0])))
