"""Exploring a finished benchmark run (``comclip.eval.explore``, ``python -m comclip explore``):
per-example outcomes that add up to the report, margins, groups, filters, sorting, paging, one
example shown and scored again, and the command line's table, JSON lines and one-line errors."""

import json
import shutil

import pytest

from comclip.cli.main import main
from comclip.errors import InputError
from comclip.eval import explore_cli, metrics
from comclip.eval import report as reporting
from comclip.eval.datasets import Example
from comclip.eval.explore import FAILED, OUTCOMES, SORTS, groups_of, load_run, outcome
from comclip.eval.explore_source import loader_arguments, open_dataset
from comclip.eval.runner import data_signature, failed, load, run

from . import eval_synth as synth

# -- runs shared by the tests (tiny preset, a handful of examples) --------------------------------


# ``wino`` (a finished 5-example Winoground run, one failed): tests/conftest.py


@pytest.fixture(scope="module")
def flickr(tiny_engine, tmp_path_factory):
    root = tmp_path_factory.mktemp("flickr")
    data = synth.write_karpathy(root / "data", "flickr30k", n_test=3)
    out = root / "out"
    report = run(tiny_engine, "flickr30k", data, out, topk=2, batch_size=4, progress=False)
    return out, report, data


WINO_RULES = {"text": metrics.winoground_text, "image": metrics.winoground_image, "group": metrics.winoground_group}


def check_against_report(run_, report, names):
    """Counts add up to n_scored and give the report's scores, overall and per group."""
    for metric, name in names.items():
        for c in run_.counts(metric):
            key = name if c.group is None else f"{name}[{c.group}]"
            if key not in report["metrics"]["clip"]:
                continue  # a label the report does not break down by (Winoground's meta tags)
            n = report["counts"][key]
            assert (c.n_scored, c.n_failed) == (n["n_scored"], n["n_failed"]), key
            assert sum(c.get(o) for o in OUTCOMES) == c.n_scored
            if c.n_scored:
                assert c.comclip_right / c.n_scored == pytest.approx(report["metrics"]["comclip"][key]), key
                assert c.clip_right / c.n_scored == pytest.approx(report["metrics"]["clip"][key]), key


# -- a hand-made Winoground run: every outcome, known margins ---------------------------------------

RIGHT = {"c0_i0": .6, "c1_i0": .4, "c0_i1": .2, "c1_i1": .7}  # text margin .2, image margin .3
WRONG = {"c0_i0": .5, "c1_i0": .6, "c0_i1": .2, "c1_i1": .7}  # text margin -.1 (image .1: right)
SURER = {"c0_i0": .7, "c1_i0": .4, "c0_i1": .2, "c1_i1": .7}  # text margin .3, image .3
TIE = dict.fromkeys(metrics.WINOGROUND_KEYS, .5)  # every margin 0: a tie loses
HAND = [  # id, CLIP, ComCLIP, collapsed_tag
    ("fixes", WRONG, RIGHT, "Object"),
    ("breaks", RIGHT, WRONG, "Relation"),
    ("right", RIGHT, SURER, "Object"),
    ("tie", TIE, TIE, "Relation"),
]


def write_hand_run(out, dataset_source="/nowhere/examples.jsonl"):
    out.mkdir(parents=True)
    records = [{"id": i, "status": "ok", "meta": {"caption_0": f"{i} zero", "caption_1": f"{i} one", "tag": "Noun",
                                                  "secondary_tag": "", "num_main_preds": 1, "collapsed_tag": tag},
                "clip": clip, "comclip": comclip} for i, clip, comclip, tag in HAND]
    records.append({"id": "lost", "status": "failed", "reason": "image file not found: x.png",
                    "meta": {"collapsed_tag": "Relation", "tag": "Verb", "num_main_preds": 2}})
    examples = [Example(r["id"], keys=metrics.WINOGROUND_KEYS, groups=(r["meta"]["collapsed_tag"],)) for r in records]
    summary = reporting.summarise_pairs("winoground", examples, {r["id"]: r for r in records})
    info = {"dataset": "winoground", "source": dataset_source, "images": "/nowhere/images", "notes": [],
            "preset": "tiny", "models": {"encoder": "x"}, "options": {"weighting": "sum"}}
    (out / "run.json").write_text(json.dumps(info))
    (out / "examples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (out / "report.json").write_text(json.dumps({"dataset": "winoground", **summary, "limit": None}))
    return out


def test_outcome_from_both_verdicts():
    assert [outcome(a, b) for a, b in [(False, True), (True, False), (True, True), (False, False)]] == list(OUTCOMES)


@pytest.mark.parametrize(("right", "margin", "scores"), [
    (metrics.winoground_text, metrics.winoground_text_margin, RIGHT),
    (metrics.winoground_text, metrics.winoground_text_margin, WRONG),
    (metrics.winoground_image, metrics.winoground_image_margin, WRONG),
    (metrics.winoground_group, metrics.winoground_group_margin, WRONG),
    (metrics.winoground_group, metrics.winoground_group_margin, TIE),
    (metrics.pair_correct, metrics.pair_margin, {"pos": .3, "neg": .3}),
    (metrics.pair_correct, metrics.pair_margin, {"pos": .3, "neg": .2}),
])
def test_a_margin_is_positive_exactly_when_the_example_is_won(right, margin, scores):
    assert (margin(scores) > 0) == right(scores)


def test_hand_made_run_outcomes_and_margins(tmp_path):
    r = load_run(write_hand_run(tmp_path / "out"))
    assert r.metrics == ("text", "image", "group")
    assert [row.outcome("text") for row in r.rows] == ["fixed", "broken", "both_right", "both_wrong", None]
    assert [row.outcome("image") for row in r.rows] == ["both_right", "both_right", "both_right", "both_wrong", None]
    fixes = r.row("fixes").results["text"]
    assert (fixes.clip, fixes.comclip, fixes.change) == pytest.approx((-.1, .2, .3))
    assert r.row("right").results["text"].change == pytest.approx(.1)
    assert r.row("tie").results["group"].clip == 0.0
    lost = r.row("lost")
    assert (lost.status, lost.reason, lost.results) == (FAILED, "image file not found: x.png", {})
    assert lost.groups == ("Relation", "tag=Verb", "num_main_preds=2")
    assert r.row("fixes").captions == ("fixes zero", "fixes one")
    c = r.counts("text")[0]
    assert (c.group, c.fixed, c.broken, c.both_right, c.both_wrong, c.n_failed) == (None, 1, 1, 1, 1, 1)
    by_group = {c.group: (c.fixed, c.broken, c.both_right, c.both_wrong, c.n_failed) for c in r.counts("text")}
    assert by_group["Object"] == (1, 0, 1, 0, 0) and by_group["Relation"] == (0, 1, 0, 1, 1)
    assert by_group["tag=Noun"] == (1, 1, 1, 1, 0) and by_group["num_main_preds=2"] == (0, 0, 0, 0, 1)
    check_against_report(r, r.report, {m: f"{m}_score" for m in r.metrics})
    s = r.summary()
    assert (s.n_total, s.n_scored, s.n_failed, s.kind) == (5, 4, 1, "winoground")
    head = {h.name: h for h in s.headlines}
    assert list(head)[:3] == ["text_score", "image_score", "group_score"]
    assert head["text_score"].comclip == .5 and head["text_score"].counts.comclip_right == 2
    assert head["text_score[Object]"].group == "Object" and all(h.matches_counts for h in s.headlines)


def test_select_filters_sorts_and_pages(tmp_path):
    r = load_run(write_hand_run(tmp_path / "out"))
    ids = lambda page: [row.id for row in page]  # noqa: E731
    assert ids(r.select()) == ["fixes", "breaks", "right", "tie", "lost"]
    assert ids(r.select(sort="margin-gain")) == ["fixes", "right", "tie", "breaks", "lost"]
    assert ids(r.select(sort="margin-loss")) == ["breaks", "tie", "right", "fixes", "lost"]
    assert ids(r.select(sort="margin-change", metric="group")) == ["fixes", "breaks", "right", "tie", "lost"]
    assert ids(r.select(outcome="fixed")) == ["fixes"]
    assert ids(r.select(outcome="broken", metric="group")) == ["breaks"]
    assert ids(r.select(outcome="both_right", metric="image", sort="margin-gain")) == ["fixes", "right", "breaks"]
    assert ids(r.select(outcome=FAILED)) == ["lost"]
    assert ids(r.select(group="Relation")) == ["breaks", "tie", "lost"]
    assert ids(r.select(group="Relation", outcome="both_wrong")) == ["tie"]
    page = r.select(sort="margin-gain", limit=2, offset=1)
    assert (ids(page), page.total, page.offset, len(page)) == (["right", "tie"], 5, 1, 2)
    assert ids(r.select(limit=2, offset=4)) == ["lost"] and ids(r.select(offset=9)) == []
    for bad, message in [({"outcome": "won"}, "unknown outcome 'won'"), ({"group": "Nope"}, "unknown group 'Nope'"),
                         ({"metric": "pair"}, "unknown metric 'pair' for winoground; choose one of: text"),
                         ({"sort": "margin"}, "unknown sort 'margin'"), ({"limit": -1}, "limit must be")]:
        with pytest.raises(InputError, match=message):
            r.select(**bad)


def test_the_dataset_gone_leaves_the_rest(tmp_path):
    r = load_run(write_hand_run(tmp_path / "out"))
    detail = r.example("fixes")
    assert detail.probes == () and "winoground data folder not found: /nowhere" in detail.dataset_error
    assert detail.record["clip"] == WRONG and detail.row.captions == ("fixes zero", "fixes one")
    assert (detail.preset, detail.options, detail.models) == ("tiny", {"weighting": "sum"}, {"encoder": "x"})
    assert r.engine_options().weighting == "sum" and r.engine_options().subimage == "blackout"  # defaults filled
    with pytest.raises(InputError, match="could not be opened again"):
        r.image("fixes", "image_0")
    with pytest.raises(InputError, match="no example 'nope'"):
        r.example("nope")


# -- a real tiny run ----------------------------------------------------------------------------

def test_winoground_run_agrees_with_its_report(wino):
    out, report, _ = wino
    r = load_run(out)
    assert sum(row.status == "ok" for row in r.rows) == report["n_scored"] == 4
    check_against_report(r, report, {m: f"{m}_score" for m in r.metrics})
    records = {x["id"]: x for x in map(json.loads, (out / "examples.jsonl").read_text().splitlines())}
    for row in r.rows:
        rec = records[row.id]
        for metric, right in WINO_RULES.items():
            if row.status == "ok":
                res = row.results[metric]
                assert res.outcome == outcome(right(rec["clip"]), right(rec["comclip"]))
                assert res.change == pytest.approx(res.comclip - res.clip)
                assert (res.clip > 0) == right(rec["clip"]) and (res.comclip > 0) == right(rec["comclip"])
    assert r.row("1").captions == tuple(synth.WINOGROUND_ROWS[1][:2])
    assert r.row("1").groups == ("Relation", "tag=Adjective-Color", "secondary_tag=Symbolic", "num_main_preds=1")
    assert r.groups[:3] == r.breakdown == ("Object", "Relation", "Both")  # the report's order, then the meta tags
    assert r.groups[3:] == tuple(sorted(r.groups[3:])) and "tag=Noun" in r.groups and r.default_sort == "order"
    assert r.row("3").status == FAILED and "ex_3_img_1.png" in r.row("3").reason


def test_example_detail_images_and_scoring_again(wino, tiny_engine):
    out, _, data = wino
    r = load_run(out)
    detail = r.example("0")
    assert detail.dataset_error is None
    assert [(p.role, p.keys) for p in detail.probes] == [("image_0", ("c0_i0", "c1_i0")),
                                                         ("image_1", ("c0_i1", "c1_i1"))]
    assert detail.probes[1].path == str(data / "images" / "ex_0_img_1.png")
    assert detail.probes[0].captions == tuple(synth.WINOGROUND_ROWS[0][:2])
    assert detail.options["parser"] == "rules" and detail.preset == "tiny"
    assert r.image("0", "image_1").size == (160, 128)
    again = r.rescore(tiny_engine, "0")
    for m in ("clip", "comclip"):
        assert again[m] == pytest.approx(detail.record[m], abs=1e-5)
    missing = r.example("3").probes[1]
    assert missing.path == str(data / "images" / "ex_3_img_1.png") and "not found" in missing.error
    with pytest.raises(InputError, match="not found"):
        r.image("3", "image_1")


def test_a_run_from_before_the_captions_were_stored(wino, tmp_path):
    """Older runs' Winoground records have no captions: they come from the dataset, or are left out
    (with a note) when it is gone."""
    out, _, data = wino
    old = tmp_path / "old"
    shutil.copytree(out, old)
    lines = [json.loads(x) for x in (old / "examples.jsonl").read_text().splitlines()]
    for x in lines:
        x.get("meta", {}).pop("caption_0", None)
        x.get("meta", {}).pop("caption_1", None)
    (old / "examples.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    assert load_run(old).row("2").captions == tuple(synth.WINOGROUND_ROWS[2][:2])
    info = json.loads((old / "run.json").read_text())
    (old / "run.json").write_text(json.dumps(info | {"source": str(tmp_path / "gone.jsonl")}))
    r = load_run(old)
    assert r.row("2").captions == () and "captions not shown" in r.notes[0]


def test_a_pair_dataset(tiny_engine, tmp_path):
    data = synth.write_comvg(tmp_path / "comvg", n=5, missing_ids=(1003,))
    report = run(tiny_engine, "comvg", data, tmp_path / "out", progress=False)
    r = load_run(tmp_path / "out")
    assert r.metrics == ("pair",) and r.groups == ("subject", "verb", "object")
    check_against_report(r, report, {"pair": "accuracy"})
    row = r.row("1")
    assert row.captions == ("man sit table",) and row.images == ("1000", "1001")
    assert row.results["pair"].clip == pytest.approx(row.clip["pos"] - row.clip["neg"])
    assert r.row("2").status == FAILED and "1003" in r.row("2").reason
    probes = r.example("1").probes
    assert [(p.role, p.keys, p.path) for p in probes] == [
        ("pos", ("pos",), str(data / "VG_100K" / "1000.jpg")), ("neg", ("neg",), str(data / "VG_100K" / "1001.jpg"))]
    again = r.rescore(tiny_engine, "1")
    assert again["comclip"] == pytest.approx(r.example("1").record["comclip"], abs=1e-5)


def test_vl_checklist_groups_are_files_and_every_level_above(tiny_engine, tmp_path):
    repo = synth.write_vl_checklist(tmp_path / "vl")
    report = run(tiny_engine, "vl-checklist", repo, tmp_path / "out", progress=False)
    r = load_run(tmp_path / "out")
    assert set(r.groups) == set(report["groups"])  # files, subtypes, types: the report's rows
    assert r.row("Attribute/color/vaw#1").groups == ("Attribute/color/vaw", "Attribute", "Attribute/color")
    assert [row.id for row in r.select(group="Attribute")] == [
        "Attribute/color/vaw#0", "Attribute/color/vaw#1", "Attribute/color/vg#0", "Attribute/material/vg#0"]
    heads = r.summary().headlines
    pooled = {h.name for h in heads if h.matches_counts}  # the files and the whole run; levels are means
    assert pooled == {"accuracy", *(f"accuracy[{f}]" for f in synth.VL_CORPUS)}
    assert {h.name for h in heads} == set(report["metrics"]["clip"])
    for h in heads:
        n = report["counts"][h.name]
        assert (h.counts.n_scored, h.counts.n_failed) == (n["n_scored"], n["n_failed"])
        if h.matches_counts:
            assert h.counts.comclip_right / h.counts.n_scored == pytest.approx(h.comclip)
            assert h.counts.clip_right / h.counts.n_scored == pytest.approx(h.clip)


def test_retrieval_ranks_and_candidates(flickr, tiny_engine):
    out, report, data = flickr
    r = load_run(out)
    assert r.metrics == ("R@1", "R@5", "R@10") and r.groups == ("t2i", "i2t")
    for metric in r.metrics:
        for c in r.counts(metric)[1:]:
            key = f"{c.group}_{metric}"
            assert c.n_scored == report["counts"][key]["n_scored"]
            assert c.comclip_right / c.n_scored == pytest.approx(report["metrics"]["comclip"][key])
            assert c.clip_right / c.n_scored == pytest.approx(report["metrics"]["clip"][key])
    for row in r.rows:
        a, b = row.clip["rank"], row.comclip["rank"]
        for k in (1, 5, 10):
            assert row.results[f"R@{k}"].outcome == outcome(a <= k, b <= k)
            assert row.results[f"R@{k}"].change == a - b
    assert {h.name for h in r.summary().headlines} == set(report["metrics"]["clip"])
    # its own view: the queries whose rank changed most first
    assert r.default_sort == "margin-change" and r.select().sort == "margin-change"
    most = sorted(r.rows, key=lambda row: (-abs(row.clip["rank"] - row.comclip["rank"]), row.index))
    assert [row.id for row in r.select(metric="R@5")] == [row.id for row in most]
    t2i = r.example("s0")
    assert t2i.row.captions == ("A dog runs on the grass.",) and t2i.row.images == ("1000092795.jpg",)
    assert [c.name for c in t2i.clip_top] == t2i.record["clip"]["top"]
    assert [c.target for c in t2i.clip_top] == [n == "1000092795.jpg" for n in t2i.record["clip"]["top"]]
    assert t2i.probes[0].role == "target" and t2i.probes[0].path.endswith("flickr30k-images/1000092795.jpg")
    i2t = r.example("i1")
    assert i2t.probes[0].role == "query" and i2t.probes[0].captions == tuple(
        c[0].upper() + c[1:] + "." for c in synth.RETRIEVAL_CAPTIONS[1])
    assert all(c.text and c.target == (c.name in ("s2", "s3")) for c in i2t.comclip_top)
    for qid in ("s0", "i1"):
        again = r.rescore(tiny_engine, qid)
        stored = r.example(qid).record["comclip"]
        assert (again["comclip"]["rank"], again["comclip"]["top"]) == (stored["rank"], stored["top"])
        assert again["comclip"]["scores"] == pytest.approx(stored["scores"], abs=1e-5)


# -- the dataset, opened again from run.json ---------------------------------------------------------

def test_groups_of_a_record_are_the_loaders_groups(tmp_path):
    cases = [("winoground", synth.write_winoground(tmp_path / "w", n=3)), ("comvg", synth.write_comvg(tmp_path / "c")),
             ("svo", synth.write_svo(tmp_path / "s")), ("vl-checklist", synth.write_vl_checklist(tmp_path / "v"))]
    for dataset, data in cases:
        for ex in load(dataset, data).examples:
            assert groups_of(dataset, failed(ex, "x"))[:len(ex.groups)] == ex.groups, (dataset, ex.id)


@pytest.mark.parametrize(("dataset", "write", "kwargs"), [
    ("winoground", lambda p: synth.write_winoground_parquet(p, n=2) / "data", {}),
    ("comvg", lambda p: synth.write_comvg(p, n=2), {"graphs": "parse"}),
    ("vl-checklist", lambda p: synth.write_vl_checklist(p), {"pairs": "all", "max_num": 1}),
    ("flickr30k", lambda p: synth.write_karpathy(p, "flickr30k", n_test=3), {"protocol": "comclip"}),
    ("coco", lambda p: synth.write_karpathy(p, "coco", n_test=3), {"split": "train"}),
])
def test_the_dataset_opens_again_as_the_run_loaded_it(tmp_path, dataset, write, kwargs):
    loaded = load(dataset, write(tmp_path / "d"), **kwargs)
    info = {"dataset": dataset, **data_signature(loaded)}
    assert {k: v for k, v in loader_arguments(info)[2].items() if k in kwargs} == kwargs
    again = open_dataset(json.loads(json.dumps(info)))
    items = lambda x: [(e.id, e.error) for e in getattr(x, "queries", None) or x.examples]  # noqa: E731
    assert items(again) == items(loaded) and again.notes == loaded.notes and again.source == loaded.source


def test_a_later_run_with_a_smaller_limit(tiny_engine, tmp_path):
    """examples.jsonl may hold more than the report covers: the dataset says which come first."""
    data = synth.write_comvg(tmp_path / "c", n=4)
    run(tiny_engine, "comvg", data, tmp_path / "out", progress=False)
    report = run(tiny_engine, "comvg", data, tmp_path / "out", limit=2, progress=False)
    r = load_run(tmp_path / "out")
    assert [row.id for row in r.rows] == ["1", "2"] and report["n_total"] == 2
    shutil.rmtree(data)
    with pytest.raises(InputError, match="holds 4 examples but .* covers 2"):
        load_run(tmp_path / "out")


# -- the command line -----------------------------------------------------------------------------

def test_cli_choices_are_the_modules():
    assert explore_cli.OUTCOME_CHOICES == (*OUTCOMES, FAILED) and explore_cli.SORT_CHOICES == SORTS


def test_cli_table(tmp_path, capsys):
    out = write_hand_run(tmp_path / "out")
    assert main(["explore", str(out), "--sort", "margin-gain", "--limit", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    # on top, the outcome x group counts of the report's breakdown (Winoground's meta tags: --counts)
    assert lines[0] == "winoground, metric text: outcomes per group (CLIP % and ComCLIP % over the scored ones)"
    assert [x.split() for x in lines[2:5]] == [["(all)", "1", "1", "1", "1", "4", "1", "50.0", "50.0"],
                                               ["Object", "1", "0", "1", "0", "2", "0", "50.0", "100.0"],
                                               ["Relation", "0", "1", "0", "1", "2", "1", "50.0", "0.0"]]
    assert lines[5] == ""
    lines = lines[6:]  # then the rows
    assert lines[0].split() == ["id", "group", "text", "image", "group", "CLIP", "margin", "ComCLIP", "margin",
                                "change", "captions"]
    assert lines[1].split() == ["fixes", "Object", "fixed", "both_right", "fixed", "-0.1000", "+0.2000", "+0.3000",
                                "fixes", "zero", "/", "fixes", "one"]
    assert lines[2].split()[:3] == ["right", "Object", "both_right"]
    assert lines[4] == "showing 1-2 of 5 (metric text; sorted by margin-gain)"
    assert lines[5] == "winoground (preset tiny): 5 examples, 4 scored, 1 failed"
    assert lines[6] == ("text_score: CLIP 50.0, ComCLIP 50.0; fixed 1, broken 1, both_right 1, both_wrong 1 "
                        "(of 4 scored; 1 failed)")
    assert len(lines) == 7
    assert main(["explore", str(out), "--outcome", "failed", "--group", "Relation"]) == 0
    text = capsys.readouterr().out
    assert "failed: image file not found: x.png" in text and "text_score[Relation]: CLIP 50.0, ComCLIP 0.0" in text
    assert "\nObject " not in text and "\nRelation  0      1 " in text  # counts: the whole run and the group
    assert main(["explore", str(out), "--group", "tag=Verb"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[3].split() == ["tag=Verb", "0", "0", "0", "0", "0", "1", "—", "—"] and lines[-1].startswith("winog")
    assert main(["explore", str(out), "--counts", "--metric", "image"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[2].split() == ["(all)", "0", "0", "3", "1", "4", "1", "75.0", "75.0"]
    assert lines[3].split() == ["Object", "0", "0", "2", "0", "2", "0", "100.0", "100.0"]


def test_cli_json_lines(wino, capsys):
    out, report, _ = wino
    assert main(["explore", str(out), "--json", "--metric", "image", "--sort", "margin-gain", "--limit", "3"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    rows, last = lines[:-1], lines[-1]
    assert len(rows) == 3 and all(set(x["outcomes"]) == {"text", "image", "group"} for x in rows)
    changes = [x["results"]["image"]["change"] for x in rows]
    assert changes == sorted(changes, reverse=True)
    assert last["page"] == {"metric": "image", "outcome": None, "group": None, "sort": "margin-gain", "offset": 0,
                            "shown": 3, "total": 5}
    assert last["summary"]["n_scored"] == report["n_scored"]
    assert last["summary"]["headlines"][1]["name"] == "image_score"
    assert main(["explore", str(out), "--json", "--counts"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert lines[0]["group"] is None and lines[0]["n_scored"] == 4 and lines[0]["n_failed"] == 1
    assert "summary" in lines[-1]


@pytest.mark.parametrize(("argv", "message"), [
    (["{tmp}/missing"], "no such folder: {tmp}/missing"),
    (["{tmp}"], "is not a benchmark run folder: it has no run.json"),
    (["{out}", "--group", "Nope"], "unknown group 'Nope'; this run's groups: Object, Relation"),
    (["{out}", "--counts", "--group", "Nope"], "unknown group 'Nope'"),
    (["{out}", "--metric", "R@1"], "unknown metric 'R@1' for winoground; choose one of: text, image, group"),
    (["{out}", "--limit", "0"], "--limit must be a whole number >= 1, got 0"),
    (["{out}", "--outcome", "won"], "invalid choice: 'won'"),
    (["{incomplete}"], "is incomplete: no report.json yet"),
    (["{sharded}"], "is incomplete: shards/ holds results not merged yet"),
])
def test_cli_errors_are_one_line(tmp_path, capsys, argv, message):
    out = write_hand_run(tmp_path / "out")
    incomplete = write_hand_run(tmp_path / "incomplete")
    (incomplete / "report.json").unlink()
    sharded = write_hand_run(tmp_path / "sharded")
    (sharded / "shards").mkdir()
    (sharded / "shards" / "rank-00001.jsonl").write_text("")
    fill = {"tmp": tmp_path, "out": out, "incomplete": incomplete, "sharded": sharded}
    code = main(["explore", *(a.format(**fill) for a in argv)])
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), err
    assert message.format(**fill) in lines[0]


# -- `eval` then `explore`, both from the command line ----------------------------------------------

def eval_then_explore(capsys, dataset, data, out, *explore_args):
    code = main(["eval", dataset, "--data", str(data), "--preset", "tiny", "--device", "cpu", "--parser", "rules",
                 "--out", str(out), "--json", "--no-progress"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    report = json.loads(captured.out.strip().splitlines()[-1])
    assert main(["explore", str(out), "--json", "--limit", "1000", *explore_args]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    return report, lines[:-1], lines[-1]


def test_cli_eval_then_explore_winoground(tmp_path, capsys):
    data = synth.write_winoground(tmp_path / "data", n=5, missing=(3,))
    report, rows, last = eval_then_explore(capsys, "winoground", data, tmp_path / "out")
    assert [x["id"] for x in rows] == ["0", "1", "2", "3", "4"] and last["page"]["total"] == 5
    ok = [x for x in rows if x["status"] == "ok"]
    assert len(ok) == report["n_scored"] == 4 and rows[3]["status"] == FAILED and rows[3]["outcomes"] == {}
    for metric in ("text", "image", "group"):
        tally = {o: sum(x["outcomes"][metric] == o for x in ok) for o in OUTCOMES}
        assert sum(tally.values()) == report["n_scored"]
        n = report["n_scored"]
        assert tally["fixed"] + tally["both_right"] == round(report["metrics"]["comclip"][f"{metric}_score"] * n)
        assert tally["broken"] + tally["both_right"] == round(report["metrics"]["clip"][f"{metric}_score"] * n)
    for x in ok:  # each row's numbers are its stored scores' margins
        clip, comclip = x["clip"], x["comclip"]
        for metric, margin in (("text", metrics.winoground_text_margin), ("group", metrics.winoground_group_margin)):
            res = x["results"][metric]
            assert (res["clip"], res["comclip"]) == pytest.approx((margin(clip), margin(comclip)))
            assert res["outcome"] == x["outcomes"][metric] == outcome(res["clip"] > 0, res["comclip"] > 0)
    assert rows[1]["captions"] == list(synth.WINOGROUND_ROWS[1][:2]) and rows[1]["groups"][0] == "Relation"

    # filters and sorting, against what the rows above say
    out = str(tmp_path / "out")
    for metric in ("text", "group"):
        for o in OUTCOMES:
            assert main(["explore", out, "--json", "--metric", metric, "--outcome", o]) == 0
            got = [json.loads(x)["id"] for x in capsys.readouterr().out.splitlines()[:-1]]
            assert got == [x["id"] for x in ok if x["outcomes"][metric] == o], (metric, o)
    for sort, key in (("margin-change", lambda c: -abs(c)), ("margin-loss", lambda c: c)):
        assert main(["explore", out, "--json", "--sort", sort, "--metric", "image"]) == 0
        got = [json.loads(x)["id"] for x in capsys.readouterr().out.splitlines()[:-1]]
        by_change = sorted(ok, key=lambda x: (key(x["results"]["image"]["change"]), int(x["id"])))  # noqa: B023
        assert got == [x["id"] for x in by_change] + ["3"]  # failed last
    assert main(["explore", out, "--json", "--group", "Object", "--offset", "1", "--limit", "1"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    objects = [x["id"] for x in rows if "Object" in x["groups"]]
    assert [x["id"] for x in lines[:-1]] == objects[1:2] and lines[-1]["page"]["total"] == len(objects)


def test_cli_eval_then_explore_a_pair_dataset(tmp_path, capsys):
    data = synth.write_svo(tmp_path / "svo", n=4)
    report, rows, last = eval_then_explore(capsys, "svo", data, tmp_path / "out", "--metric", "pair")
    ok = [x for x in rows if x["status"] == "ok"]
    assert len(ok) == report["n_scored"] and last["summary"]["metrics"] == ["pair"]
    for x in ok:
        res = x["results"]["pair"]
        assert res["clip"] == pytest.approx(x["clip"]["pos"] - x["clip"]["neg"])
        assert res["change"] == pytest.approx(res["comclip"] - res["clip"])
        assert x["outcomes"] == {"pair": outcome(x["clip"]["pos"] > x["clip"]["neg"],
                                                 x["comclip"]["pos"] > x["comclip"]["neg"])}
        assert x["captions"] == [x["captions"][0]] and x["groups"]
    n = report["n_scored"]
    right = sum(x["outcomes"]["pair"] in ("fixed", "both_right") for x in ok)
    assert right == round(report["metrics"]["comclip"]["accuracy"] * n)
    for group in {g for x in ok for g in x["groups"]}:
        assert main(["explore", str(tmp_path / "out"), "--json", "--group", group, "--sort", "margin-gain"]) == 0
        got = [json.loads(x)["id"] for x in capsys.readouterr().out.splitlines()[:-1]]
        want = sorted((x for x in ok if group in x["groups"]), key=lambda x: (-x["results"]["pair"]["change"],
                                                                              rows.index(x)))
        assert got == [x["id"] for x in want], group
        key = f"accuracy[{group}]"
        assert report["counts"][key]["n_scored"] == len(want)
    assert main(["explore", str(tmp_path / "out"), "--metric", "text"]) == 2
    assert "unknown metric 'text' for svo; choose one of: pair" in capsys.readouterr().err


# -- a large run ------------------------------------------------------------------------------------

def test_a_25k_example_run_loads_in_one_pass(tmp_path, monkeypatch):
    """25k Winoground records load in seconds: each record is typed once, the dataset is never
    opened (the records hold all the table needs), and a page is a filter over the typed rows."""
    import random
    import time

    from comclip.eval import explore, explore_source

    rng = random.Random(0)
    n, tags = 25_000, ("Object", "Relation", "Both")
    records = [{"id": str(i), "status": "ok", "meta": {"caption_0": f"a {i}", "caption_1": f"b {i}", "tag": "Noun",
                                                        "secondary_tag": "", "num_main_preds": 1,
                                                        "collapsed_tag": tags[i % 3]},
                "clip": {k: rng.random() for k in metrics.WINOGROUND_KEYS},
                "comclip": {k: rng.random() for k in metrics.WINOGROUND_KEYS}} for i in range(n)]
    examples = [Example(r["id"], keys=metrics.WINOGROUND_KEYS, groups=(r["meta"]["collapsed_tag"],)) for r in records]
    summary = reporting.summarise_pairs("winoground", examples, {r["id"]: r for r in records})
    out = tmp_path / "big"
    out.mkdir()
    (out / "run.json").write_text(json.dumps({"dataset": "winoground", "source": "/nowhere", "preset": "tiny"}))
    (out / "examples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (out / "report.json").write_text(json.dumps({"dataset": "winoground", **summary, "limit": None}))
    typed, opened = [], []
    real_row = explore._row
    monkeypatch.setattr(explore, "_row", lambda *a: typed.append(a[1]) or real_row(*a))
    monkeypatch.setattr(explore_source, "open_dataset", lambda info: opened.append(info))

    start = time.perf_counter()
    r = load_run(out)
    page = r.select(metric="group", outcome="fixed", sort="margin-gain", limit=50, offset=100)
    counts = r.counts("text")
    seconds = time.perf_counter() - start
    assert typed == list(range(n)) and opened == []  # one pass over the records; no dataset
    assert seconds < 4, f"{seconds:.1f} s"  # about 1.5 s on a shared 2-core machine
    fixed = [row for row in r.rows if row.outcome("group") == "fixed"]
    assert page.total == len(fixed) == summary["counts"]["group_score"]["n_scored"] - sum(
        row.outcome("group") != "fixed" for row in r.rows)
    want = sorted(fixed, key=lambda row: (-row.results["group"].change, row.index))[100:150]
    assert [row.id for row in page] == [row.id for row in want]
    assert counts[0].fixed + counts[0].both_right == round(summary["metrics"]["comclip"]["text_score"] * n)


def test_retrieval_view_sorts_by_rank_change(flickr, tmp_path, capsys):
    """The queries whose rank changed most come first (ranks edited in a copy of the run)."""
    out, _, _ = flickr
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    records = [json.loads(x) for x in (copy / "examples.jsonl").read_text().splitlines()]
    new_ranks = {"s1": (3, 1), "s2": (1, 3), "s4": (5, 1), "i0": (2, 1)}  # id: (CLIP rank, ComCLIP rank)
    for x in records:
        if x["id"] in new_ranks:
            x["clip"]["rank"], x["comclip"]["rank"] = new_ranks[x["id"]]
    (copy / "examples.jsonl").write_text("".join(json.dumps(x) + "\n" for x in records))
    r = load_run(copy)
    unchanged = [x["id"] for x in records if x["clip"]["rank"] == x["comclip"]["rank"]]
    assert [row.id for row in r.select()] == ["s4", "s1", "s2", "i0", *unchanged]
    assert [row.id for row in r.select(sort="margin-gain", limit=3)] == ["s4", "s1", "i0"]
    assert [row.id for row in r.select(sort="margin-loss", limit=1)] == ["s2"]
    assert [row.id for row in r.select(outcome="fixed")] == ["s4", "s1", "i0"]  # R@1: ranked first by ComCLIP only
    assert [row.id for row in r.select(outcome="broken", metric="R@1")] == ["s2"]
    assert [row.id for row in r.select(outcome="fixed", metric="R@5")] == []  # 5 -> 1 stays within R@5
    assert main(["explore", str(copy), "--limit", "2", "--group", "t2i"]) == 0
    rows = capsys.readouterr().out.split("\n\n")[1].splitlines()
    assert rows[0].split() == ["id", "group", "R@1", "R@5", "R@10", "CLIP", "rank", "ComCLIP", "rank", "change",
                               "query"]
    assert rows[1].split()[:9] == ["s4", "t2i", "fixed", "both_right", "both_right", "5", "1", "+4", "A"]
