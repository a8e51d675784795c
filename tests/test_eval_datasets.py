"""Each benchmark end to end on a tiny synthetic copy in its exact on-disk format (tiny preset),
plus the loaders' checks: a missing image fails that example with its reason, a missing or
malformed data folder fails the run at once."""

import json
import sys
import types

import numpy as np
import pytest
import torch

from comclip.errors import DatasetError
from comclip.eval import metrics
from comclip.eval.datasets import MissingImage, load_comvg, load_svo, load_vl_checklist, load_winoground
from comclip.eval.datasets.vl_checklist import aggregate
from comclip.eval.runner import load, run
from comclip.eval.triplets import restore_predicate, triplet_graph
from comclip.graph import Relation

from . import eval_synth as synth


def read_records(out):
    return [json.loads(line) for line in (out / "examples.jsonl").read_text().splitlines()]


def check_common(report, out, n_total, n_failed):
    assert (report["n_total"], report["n_failed"]) == (n_total, n_failed)
    assert report["n_scored"] + report["n_failed"] == report["n_total"]
    assert len(report["failures"]) == n_failed
    for name in ("examples.jsonl", "report.json", "report.md", "report.png"):
        assert (out / name).is_file(), name
    assert json.loads((out / "report.json").read_text()) == json.loads(json.dumps(report))
    md = (out / "report.md").read_text()
    assert "| metric | scored | failed | CLIP | ComCLIP | Δ |" in md
    assert f"{n_total} examples: {n_total - n_failed} scored, {n_failed} failed" in md
    records = read_records(out)
    assert len(records) == n_total
    assert sum(r["status"] == "failed" for r in records) == n_failed
    assert all(set(r) >= {"id", "status"} for r in records)
    assert all(r["reason"] for r in records if r["status"] == "failed")
    assert (out / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return records


# -- Winoground ---------------------------------------------------------------------------------

def test_winoground_end_to_end(tiny_engine, tmp_path):
    data = synth.write_winoground(tmp_path / "winoground", n=5, missing=(3,))
    out = tmp_path / "out"
    report = run(tiny_engine, "winoground", data, out, batch_size=2, progress=False)
    records = check_common(report, out, n_total=5, n_failed=1)
    assert report["failures"][0]["id"] == "3"
    assert "ex_3_img_1.png" in report["failures"][0]["reason"] and "not found" in report["failures"][0]["reason"]
    ok = [r for r in records if r["status"] == "ok"]
    for m in ("clip", "comclip"):
        assert set(ok[0][m]) == set(metrics.WINOGROUND_KEYS)
        expected = metrics.winoground([r[m] for r in ok])
        assert {k: report["metrics"][m][k] for k in expected} == expected
    assert report["metrics"]["clip"]["text_score[Object]"] == metrics.winoground(
        [r["clip"] for r in ok if r["meta"]["collapsed_tag"] == "Object"])["text_score"]
    assert ok[0]["meta"] == {"caption_0": "a dog on a table", "caption_1": "a table on a dog", "tag": "Noun",
                             "secondary_tag": "", "num_main_preds": 1, "collapsed_tag": "Object"}

    # c{caption}_i{image}: check the mapping against the engine called directly
    row = ok[1]
    c0, c1 = synth.WINOGROUND_ROWS[1][:2]
    i0 = tiny_engine.match(data / "images" / "ex_1_img_0.png", [c0, c1])
    i1 = tiny_engine.match(data / "images" / "ex_1_img_1.png", [c0, c1])
    direct = {"c0_i0": i0.captions[0], "c1_i0": i0.captions[1], "c0_i1": i1.captions[0], "c1_i1": i1.captions[1]}
    for key, cap in direct.items():
        assert row["clip"][key] == pytest.approx(cap.clip_score, abs=1e-5)
        assert row["comclip"][key] == pytest.approx(cap.comclip_score, abs=1e-5)


def test_winoground_bad_rows_fail_alone(tiny_engine, tmp_path):
    data = synth.write_winoground(tmp_path / "w", n=2)
    with (data / "examples.jsonl").open("a") as f:
        f.write('{"id": 7, "caption_0": "a cat", "image_0": "ex_0_img_0", "image_1": "ex_0_img_1"}\n')
        f.write("{not json\n")
        f.write('{"id": 9, "caption_0": "", "caption_1": "b", "image_0": "ex_0_img_0", "image_1": "ex_0_img_1"}\n')
    report = run(tiny_engine, "winoground", data, tmp_path / "out", progress=False)
    reasons = {f["id"]: f["reason"] for f in report["failures"]}
    assert (report["n_total"], report["n_scored"]) == (5, 2)
    assert "lacks key(s) caption_1" in reasons["7"]
    assert "line 4 is not valid JSON" in reasons["line4"]
    assert "caption_0 is empty" in reasons["9"]


def test_winoground_malformed_folders(tmp_path):
    with pytest.raises(DatasetError, match="data folder not found"):
        load_winoground(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match=r"has neither data/test-\*.parquet nor examples.jsonl"):
        load_winoground(tmp_path / "empty")
    data = synth.write_winoground(tmp_path / "w", n=1)
    (data / "examples.jsonl").write_text("id,caption\n1,2\n")
    with pytest.raises(DatasetError, match="does not look like Winoground"):
        load_winoground(data)
    data = synth.write_winoground(tmp_path / "w2", n=1)
    for p in (data / "images").iterdir():
        p.unlink()
    (data / "images").rmdir()
    with pytest.raises(DatasetError, match="images folder not found"):
        load_winoground(data)


def test_winoground_through_datasets_library(monkeypatch, tmp_path):
    with monkeypatch.context() as m:
        m.setitem(sys.modules, "datasets", None)  # not installed
        with pytest.raises(DatasetError, match="needs the `datasets` library"):
            load_winoground("hf")
    data = synth.write_winoground(tmp_path / "w", n=2)
    rows = [json.loads(line) for line in (data / "examples.jsonl").read_text().splitlines()]
    from PIL import Image

    class FakeDataset:
        column_names = [*rows[0], "image_0", "image_1"]

        def select_columns(self, columns):
            return types.SimpleNamespace(to_list=lambda: [{c: r[c] for c in columns} for r in rows])

        def __getitem__(self, i):
            return {**rows[i], "image_0": Image.open(data / "images" / f"ex_{i}_img_0.png"),
                    "image_1": Image.open(data / "images" / f"ex_{i}_img_1.png")}

    fake = types.SimpleNamespace(load_dataset=lambda name, split: FakeDataset())
    monkeypatch.setitem(sys.modules, "datasets", fake)
    loaded = load_winoground("hf:facebook/winoground")
    assert [e.id for e in loaded.examples] == ["0", "1"]
    assert loaded.examples[1].probes[1].image().size == (160, 128)
    assert loaded.source == "datasets:facebook/winoground"


def test_winoground_parquet_layout_scores_as_the_jsonl_layout(tiny_engine, tmp_path):
    """The hub's current layout (images embedded in data/test-00000-of-00001.parquet) gives the
    same examples and scores as examples.jsonl + images/ holding the same images."""
    pq_root = synth.write_winoground_parquet(tmp_path / "hub", n=3, unreadable=(2,))
    js_root = synth.write_winoground(tmp_path / "old", n=3)
    loaded = load_winoground(pq_root)  # the repository root: data/*.parquet is found
    assert loaded.source.endswith("data/test-00000-of-00001.parquet")
    assert loaded.images == "embedded in the parquet file"
    assert [e.id for e in loaded.examples] == ["0", "1", "2"]
    assert loaded.examples[1].meta == {"caption_0": "the red ball is left of the blue box",
                                       "caption_1": "the blue ball is left of the red box", "tag": "Adjective-Color",
                                       "secondary_tag": "Symbolic", "num_main_preds": 1, "collapsed_tag": "Relation"}
    report = run(tiny_engine, "winoground", pq_root / "data", tmp_path / "o1", batch_size=2, progress=False)
    records = check_common(report, tmp_path / "o1", n_total=3, n_failed=1)
    assert report["failures"][0]["id"] == "2"
    assert report["failures"][0]["reason"].startswith("image_1 of row 2: not an image file")
    other = check_common(run(tiny_engine, "winoground", js_root, tmp_path / "o2", progress=False),
                         tmp_path / "o2", n_total=3, n_failed=0)
    for a, b in zip(records[:2], other[:2], strict=True):
        assert a["id"] == b["id"]
        for m in ("clip", "comclip"):
            assert a[m] == pytest.approx(b[m], abs=1e-6)


def test_winoground_parquet_without_the_columns(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    (tmp_path / "data").mkdir()
    pq.write_table(pa.table({"id": [0], "caption": ["a"]}), tmp_path / "data" / "test-00000-of-00001.parquet")
    with pytest.raises(DatasetError, match=r"lacks column\(s\) caption_0, caption_1, image_0, image_1"):
        load_winoground(tmp_path)


# -- ComVG --------------------------------------------------------------------------------------

def test_restore_predicate():
    assert restore_predicate("nextto") == "next to"
    assert restore_predicate("layingin") == "laying in"
    assert restore_predicate("leaningagainst") == "leaning against"
    assert restore_predicate("infrontof") == "in front of"
    assert restore_predicate("sittingontopof") == "sitting on top of"
    assert restore_predicate("standing_on") == "standing on"
    assert restore_predicate("attached to") == "attached to"
    for word in ("on", "sit", "eat", "wearing", "within", "onto", "behind", "holding", "cover"):
        assert restore_predicate(word) == word


def test_triplet_graph():
    g = triplet_graph("cat next to dog", "cat,nextto,dog")
    assert [e.name for e in g.entities] == ["cat", "dog"]
    assert g.relations == (Relation("e0", "next to", "e1"),)
    g = triplet_graph("a tennis racket leaning", "tennis_racket,leaning")
    assert [e.name for e in g.entities] == ["tennis racket"] and g.relations == (Relation("e0", "leaning", None),)


def test_comvg_end_to_end_with_triplet_graphs(tiny_engine, tmp_path):
    data = synth.write_comvg(tmp_path / "comvg", n=5, missing_ids=(1005,),
                             extra_rows=[[99, "a dog", "dog", "cat", 1, 2, "subject", 3]])  # 1-part triplet
    spy = synth.SpyEngine(tiny_engine)
    out = tmp_path / "out"
    report = run(spy, "comvg", data, out, progress=False)
    records = check_common(report, out, n_total=6, n_failed=2)
    reasons = {f["id"]: f["reason"] for f in report["failures"]}
    assert "image not found: neg_image_id 1005" in reasons["3"] and "1005.jpg" in reasons["3"]
    assert "not 'subject,predicate,object'" in reasons["99"]
    assert len(spy.calls) == 1  # all examples in one engine call (batch size 16)
    graphs = {cap[0]: g[0] for _, cap, g in spy.calls[0]}
    assert graphs["cat next to dog"].relations[0].predicate == "next to"
    assert graphs["bike leaning against wall"].relations[0].predicate == "leaning against"
    ok = [r for r in records if r["status"] == "ok"]
    for m in ("clip", "comclip"):
        assert report["metrics"][m]["accuracy"] == metrics.pair_accuracy([r[m] for r in ok])
        assert report["metrics"][m]["accuracy[object]"] == metrics.pair_accuracy(
            [r[m] for r in ok if r["meta"]["neg_value"] == "object"])
    assert report["counts"]["accuracy[subject]"] == {"n_scored": 2, "n_failed": 0}
    assert report["counts"]["accuracy[object]"] == {"n_scored": 1, "n_failed": 1}


def test_comvg_parse_option_and_bad_columns(tmp_path):
    data = synth.write_comvg(tmp_path / "comvg", n=2)
    loaded = load_comvg(data, graphs="parse")
    assert loaded.examples[0].probes[0].graphs == [None]
    (tmp_path / "noimg").mkdir()
    (tmp_path / "noimg" / "ComVG.csv").write_text((data / "ComVG.csv").read_text())
    with pytest.raises(DatasetError, match="no images folder"):
        load_comvg(tmp_path / "noimg")
    (data / "ComVG.csv").write_text("sentence,triplet\nman sit,man\n")
    with pytest.raises(DatasetError, match=r"lacks column\(s\) pos_triplet.*columns found: sentence, triplet"):
        load_comvg(data)


# -- SVO-Probes ---------------------------------------------------------------------------------

def test_svo_end_to_end(tiny_engine, tmp_path):
    data = synth.write_svo(tmp_path / "svo", n=4, missing=(2,))
    out = tmp_path / "out"
    report = run(tiny_engine, "svo", data, out, progress=False)
    records = check_common(report, out, n_total=4, n_failed=1)
    assert report["failures"][0]["id"] == "row3"
    assert "2002.jpg" in report["failures"][0]["reason"] and "2002_web.jpg" in report["failures"][0]["reason"]
    ok = [r for r in records if r["status"] == "ok"]
    assert {r["id"] for r in ok} == {"row1", "row2", "row4"}  # rows 2 and 4 found by the URL's file name
    assert [r["meta"]["neg_type"] for r in ok] == [["subject"], ["verb"], ["verb"]]
    for m in ("clip", "comclip"):
        assert report["metrics"][m]["accuracy[verb]"] == metrics.pair_accuracy(
            [r[m] for r in ok if r["meta"]["neg_type"] == ["verb"]])
    assert report["metrics"]["clip"]["accuracy[object]"] is None  # its only row failed
    assert report["counts"]["accuracy[object]"] == {"n_scored": 0, "n_failed": 1}


def test_svo_list_literal_cells(tmp_path):
    """Released cells like "['dog,catch,frisbee']" are read as the triplet; one that cannot be
    read fails its example with the reason instead of giving a wrong graph."""
    cells = {0: "['girl,sit,shore']", 1: "['man', 'ride', 'horse']", 2: "['dog,catch", 3: "['a,b,c', 'd,e,f']"}
    loaded = load_svo(synth.write_svo(tmp_path / "svo", n=4, cells=cells))
    ok, one, bad, two = loaded.examples
    graph = ok.probes[0].graphs[0]
    assert [e.name for e in graph.entities] == ["girl", "shore"] and graph.relations[0].predicate == "sit"
    assert [e.name for e in one.probes[0].graphs[0].entities] == ["man", "horse"]
    assert bad.error is not None and "pos_triplet" in bad.error and "not readable" in bad.error
    assert two.error is not None and "holds 2 triplets" in two.error
    assert load_svo(tmp_path / "svo", graphs="parse").examples[2].error is None  # the triplet is not used


def test_svo_column_mismatch_lists_columns(tmp_path):
    cols = ["caption", "pos_triplet", "neg_triplet", "subj_neg", "verb_neg", "obj_neg", "pos_url", "neg_url",
            "pos_image_id", "neg_image_id"]
    data = synth.write_svo(tmp_path / "svo", n=1, columns=cols)
    with pytest.raises(DatasetError) as err:
        load_svo(data)
    assert "lacks column(s) sentence" in str(err.value)
    assert "columns found: caption, pos_triplet, neg_triplet, subj_neg" in str(err.value)


# -- VL-CheckList -------------------------------------------------------------------------------

def test_vl_checklist_checkout_with_a_separate_dataset_folder(tiny_engine, tmp_path):
    """--data = the checkout (corpus/v1 yamls, data/ JSONs), --images = $DATASET with vg/ hake/ swig/;
    each file's images under its IMG_ROOT; first POS vs first NEG per entry."""
    repo = synth.write_vl_checklist(tmp_path / "VL-CheckList", dataset=tmp_path / "DATASET",
                                    missing=("VG_100K_2/14.jpg",), broken_entry=True, skip_roots=("hake",))
    out = tmp_path / "out"
    report = run(tiny_engine, "vl-checklist", repo, out, images=tmp_path / "DATASET", progress=False)
    records = check_common(report, out, n_total=10, n_failed=3)
    reasons = {f["id"]: f["reason"] for f in report["failures"]}
    assert "no NEG captions" in reasons["Attribute/material/vg#1"]
    assert "14.jpg" in reasons["Relation/spatial/vg#0"] and "not found" in reasons["Relation/spatial/vg#0"]
    hake = reasons["Object/Location/center/hake#0"]
    assert "image root" in hake and "DATASET/hake" in hake and "IMG_ROOT 'hake/'" in hake
    ok = {r["id"]: r for r in records if r["status"] == "ok"}
    swig = ok["Object/Location/center/swig_agent#0"]  # 2 POS x 2 NEG: only the first of each
    assert (swig["meta"]["pos"], swig["meta"]["neg"]) == ("a man cooking food", "a man cooking shoe")
    assert swig["meta"]["image"] == "cooking_1.jpg"

    # per annotation file, then VL-CheckList's levels: subtype = mean over sources of the files'
    # means; every folder above = the mean of its children
    for m in ("clip", "comclip"):
        acc = report["metrics"][m]
        files = {f: metrics.pair_accuracy([r[m] for i, r in ok.items() if i.startswith(f + "#")])
                 for f in synth.VL_CORPUS}
        for f, v in files.items():
            assert acc[f"accuracy[{f}]"] == v
        color = (files["Attribute/color/vaw"] + files["Attribute/color/vg"]) / 2
        assert acc["accuracy[Attribute/color]"] == pytest.approx(color)
        assert acc["accuracy[Attribute]"] == pytest.approx((color + files["Attribute/material/vg"]) / 2)
        assert acc["accuracy[Object/Location/center]"] == files["Object/Location/center/swig_agent"]  # hake: none
        assert acc["accuracy[Object]"] == acc["accuracy[Object/Location]"] == acc["accuracy[Object/Location/center]"]
        assert acc["accuracy[Relation/spatial]"] is None  # its only entry failed
        assert acc["accuracy[Relation]"] == acc["accuracy[Relation/action]"]
        assert acc["accuracy"] == metrics.pair_accuracy([r[m] for r in ok.values()])
    assert report["groups"]["Attribute"] == {"n_total": 5, "n_scored": 4, "n_failed": 1}
    assert report["groups"]["Object/Location/center"] == {"n_total": 2, "n_scored": 1, "n_failed": 1}
    assert report["counts"]["accuracy[Relation/spatial]"] == {"n_scored": 0, "n_failed": 1}
    assert any("image roots not found" in n and "hake" in n for n in report["notes"])


def test_vl_checklist_all_pairs_and_max_num(tmp_path):
    repo = synth.write_vl_checklist(tmp_path / "vl")  # images inside the checkout: --images defaults to it
    every = load_vl_checklist(repo, pairs="all")
    ids = [e.id for e in every.examples]
    assert "Object/Location/center/swig_agent#0.0" in ids and "Object/Location/center/swig_agent#0.1" in ids
    assert len(ids) == 10  # 9 entries; the one with 2 POS and 2 NEG gives 2 pairs
    capped = load_vl_checklist(repo, max_num=1)
    assert [e.id for e in capped.examples if e.id.startswith("Relation/action/swig")] == ["Relation/action/swig#0"]
    assert len(capped.examples) == 7 and "max-num: first 1 entries per annotation file" in capped.notes


def test_vl_checklist_aggregate_levels():
    files = {"Object/Size/large/vg_obj": 1.0, "Object/Size/large/vg_subj": 0.0, "Object/Size/large/swig_agent": 1.0,
             "Object/Location/mid/hake": 0.25, "Object/Location/margin/hake": None}
    levels = aggregate(files)
    assert levels["Object/Size/large"] == pytest.approx((0.5 + 1.0) / 2)  # vg: mean of 2 files; swig: 1
    assert levels["Object/Location/margin"] is None and levels["Object/Location"] == 0.25
    assert levels["Object"] == pytest.approx((0.75 + 0.25) / 2)
    assert list(levels)[0] == "Object"


def test_vl_checklist_failures(tmp_path):
    with pytest.raises(DatasetError, match=r"has no corpus/v1/ folder"):
        load_vl_checklist(tmp_path)
    repo = synth.write_vl_checklist(tmp_path / "vl")
    with pytest.raises(DatasetError, match="none of the image roots hake, swig, vg is in"):
        load_vl_checklist(repo, images=tmp_path)
    with pytest.raises(DatasetError, match=r"images \(\$DATASET\) folder not found"):
        load_vl_checklist(repo, images=tmp_path / "nope")
    bad_yaml = repo / "corpus" / "v1" / "Relation" / "spatial" / "vg.yaml"
    bad_yaml.write_text('ANNO_PATH: "data/Relation/vg/spatial.json\nIMG_ROOT: [vg')
    with pytest.raises(DatasetError, match=r"cannot read .*Relation/spatial/vg.yaml"):
        load_vl_checklist(repo)
    bad_yaml.write_text('IMG_ROOT: "vg/"\n')
    with pytest.raises(DatasetError, match=r"vg.yaml has no ANNO_PATH"):
        load_vl_checklist(repo)
    bad_yaml.write_text('ANNO_PATH: "data/Relation/vg/gone.json"\nIMG_ROOT: "vg/"\n')
    with pytest.raises(DatasetError, match=r"annotation file .*gone.json \(ANNO_PATH of corpus/v1/Relation/spatial"):
        load_vl_checklist(repo)
    bad_yaml.write_text('ANNO_PATH: "data/Relation/vg/spatial.json"\nIMG_ROOT: "vg/"\n')
    (repo / "data" / "Relation" / "vg" / "spatial.json").write_text("[[broken")
    with pytest.raises(DatasetError, match="cannot read annotation file"):
        load_vl_checklist(repo)


# -- retrieval ----------------------------------------------------------------------------------

@pytest.mark.parametrize("dataset", ["flickr30k", "coco"])
def test_retrieval_karpathy_protocol_both_directions(tiny_engine, tmp_path, dataset):
    data = synth.write_karpathy(tmp_path / dataset, dataset, n_test=6, missing=(2,))
    out = tmp_path / "out"
    topk = 3
    report = run(tiny_engine, dataset, data, out, topk=topk, batch_size=4, progress=False)
    # 6 test images x 2 captions (text→image) + 6 images (image→text); train left out
    records = check_common(report, out, n_total=18, n_failed=3)
    assert {f["id"] for f in report["failures"]} == {"s4", "s5", "i2"}  # the missing image's queries
    assert all("could not be read" in f["reason"] for f in report["failures"])
    assert report["gallery"]["n_images"] == 6 and report["gallery"]["n_failed"] == 1
    assert report["topk"] == topk and report["protocol"] == "karpathy"
    assert report["counts"]["t2i_R@1"] == {"n_scored": 10, "n_failed": 2}
    assert report["counts"]["i2t_R@10"] == {"n_scored": 5, "n_failed": 1}

    # CLIP ranks recomputed with the encoder directly over the 5 readable test images / their captions
    loaded = load(dataset, data)
    from comclip.images import load_image

    keep = [i for i in range(6) if i != 2]
    with torch.inference_mode():
        v = tiny_engine.encoder.encode_images([load_image(loaded.paths[i]).image for i in keep]).float()
        t_all = tiny_engine.encoder.encode_texts([c.text for c in loaded.captions]).float()
    ok = [r for r in records if r["status"] == "ok"]
    queries = {q.id: q for q in loaded.queries}
    for r in ok:
        q = queries[r["id"]]
        assert r["direction"] == q.direction
        if q.direction == "t2i":
            sims = (t_all[[c.id for c in loaded.captions].index(q.id)] @ v.T).tolist()
            assert r["clip"]["rank"] == metrics.rank_of(sims, keep.index(q.target))
            target = r["image"]
        else:
            sims = (v[keep.index(q.target)] @ t_all.T).tolist()
            targets = [j for j, c in enumerate(loaded.captions) if c.image == q.target]
            assert r["clip"]["rank"] == metrics.rank_of_any(sims, targets)
            target = {loaded.captions[j].id for j in targets}
        assert len(r["comclip"]["top"]) == topk and sorted(r["comclip"]["top"]) == sorted(r["clip"]["top"])
        hits = [k for k, x in enumerate(r["comclip"]["top"]) if x == target or x in (target if isinstance(target, set)
                                                                                     else ())]
        if not hits:
            assert r["comclip"]["rank"] == r["clip"]["rank"]
        else:
            assert r["comclip"]["rank"] == 1 + hits[0]
    for m in ("clip", "comclip"):
        for d in ("t2i", "i2t"):
            expected = metrics.recall_at([r[m]["rank"] for r in ok if r["direction"] == d])
            assert {k: report["metrics"][m][f"{d}_{k}"] for k in expected} == expected
    # re-ranking only permutes CLIP's top-k: recall at K >= k cannot change
    for key in ("t2i_R@5", "t2i_R@10", "i2t_R@5", "i2t_R@10"):
        assert report["metrics"]["comclip"][key] == report["metrics"]["clip"][key]


def test_retrieval_comclip_protocol(tiny_engine, tmp_path):
    """The paper's protocol: one caption per test image (the first), text→image, R@1/5."""
    data = synth.write_karpathy(tmp_path / "f", "flickr30k", n_test=6)
    report = run(tiny_engine, "flickr30k", data, tmp_path / "out", protocol="comclip", progress=False)
    records = check_common(report, tmp_path / "out", n_total=6, n_failed=0)
    assert [r["id"] for r in records] == ["s0", "s2", "s4", "s6", "s8", "s10"]  # each image's first caption
    assert set(report["metrics"]["clip"]) == {"t2i_R@1", "t2i_R@5"} and report["protocol"] == "comclip"
    karpathy = run(tiny_engine, "flickr30k", data, tmp_path / "k", progress=False)
    assert karpathy["n_total"] == 18
    loaded = load("flickr30k", data, protocol="comclip")
    assert any("caption 0" in n for n in loaded.notes)


def test_retrieval_comclip_protocol_with_the_official_queries(tmp_path):
    """--queries: a CSV of (image, sentence) rows, as the official flickr30k_test.pkl exports."""
    data = synth.write_karpathy(tmp_path / "f", "flickr30k", n_test=3)
    queries = tmp_path / "flickr30k_test.csv"
    queries.write_text("image,sentence,clip_baseline,original_index\n"
                       "1000092795.jpg,A dog runs.,\"[(0, 0.3)]\",0\n"
                       "1000092797.jpg,A cat sleeps.,\"[(2, 0.2)]\",1\n"
                       "999.jpg,Not in the split.,[],2\n")
    loaded = load("flickr30k", data, protocol="comclip", queries=queries)
    assert [(q.id, q.caption, q.target, q.error) for q in loaded.queries[:2]] == [
        ("q0", "A dog runs.", 0, None), ("q1", "A cat sleeps.", 2, None)]
    assert loaded.queries[2].error == "row 2: image '999.jpg' is not in the split"
    with pytest.raises(DatasetError, match="--queries goes with --protocol comclip"):
        load("flickr30k", data, queries=queries)
    queries.write_text("filename,caption\nx.jpg,y\n")
    with pytest.raises(DatasetError, match="lacks the columns image, sentence; columns found: filename, caption"):
        load("flickr30k", data, protocol="comclip", queries=queries)


def test_retrieval_malformed(tmp_path):
    with pytest.raises(DatasetError, match="has no dataset_coco.json"):
        load("coco", tmp_path)
    (tmp_path / "dataset_flickr30k.json").write_text('{"annotations": []}')
    with pytest.raises(DatasetError, match="not a Karpathy split file"):
        load("flickr30k", tmp_path)
    data = synth.write_karpathy(tmp_path / "f", "flickr30k", n_test=1)
    with pytest.raises(DatasetError, match=r"no images in split 'val' \(splits found: test, train\)"):
        load("flickr30k", data, split="val")


def test_missing_image_source_is_reported(tiny_engine, tmp_path):
    data = synth.write_comvg(tmp_path / "c", n=1, missing_ids=(1000, 1001))
    probes = load_comvg(data).examples[0].probes
    assert all(isinstance(p.image, MissingImage) for p in probes)
    assert np.all([("1000.jpg" in probes[0].image.reason), ("1001.jpg" in probes[1].image.reason)])
