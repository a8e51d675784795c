"""Tiny synthetic copies of each benchmark, in the exact on-disk format of the real release.

Used by the eval tests; each writer returns the data folder. Images are small drawn scenes
(coloured shapes on a background), different per name, so scores differ between images.
"""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

from PIL import Image, ImageDraw

COLOURS = [(200, 40, 40), (40, 160, 60), (40, 70, 200), (230, 200, 40), (150, 60, 170), (30, 170, 170)]


def draw(path: Path, name: str, size: tuple[int, int] = (160, 128)) -> Path:
    """A deterministic little scene, different for every ``name``."""
    seed = int(hashlib.sha256(name.encode()).hexdigest()[:8], 16)
    img = Image.new("RGB", size, COLOURS[seed % len(COLOURS)])
    d = ImageDraw.Draw(img)
    w, h = size
    for k in range(3):
        s = (seed >> (4 * k)) & 0xFFFF
        x0, y0 = s % (w // 2), (s // 7) % (h // 2)
        colour = COLOURS[(seed // (k + 2)) % len(COLOURS)]
        if k % 2:
            d.ellipse((x0, y0, x0 + w // 3, y0 + h // 3), fill=colour)
        else:
            d.rectangle((x0, y0, x0 + w // 3, y0 + h // 4), fill=colour)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
    return path


# -- Winoground: examples.jsonl + images/{image_N}.png --------------------------------------------

WINOGROUND_ROWS = [
    ("a dog on a table", "a table on a dog", "Object", "Noun", 1),
    ("the red ball is left of the blue box", "the blue ball is left of the red box", "Relation", "Adjective-Color", 1),
    ("a person rides a horse", "a horse rides a person", "Both", "Verb", 2),
    ("some grass in a mug", "a mug in some grass", "Object", "Noun", 1),
    ("the cat sits under the chair", "the chair sits under the cat", "Relation", "Preposition", 1),
]


def write_winoground(root: Path, n: int = 5, missing: tuple[int, ...] = ()) -> Path:
    """``missing``: example ids whose ``image_1`` file is not written."""
    (root / "images").mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(n):
        c0, c1, collapsed, tag, preds = WINOGROUND_ROWS[i % len(WINOGROUND_ROWS)]
        row = {"id": i, "caption_0": c0, "caption_1": c1, "tag": tag, "secondary_tag": "Symbolic" if i % 2 else "",
               "num_main_preds": preds, "collapsed_tag": collapsed,
               "image_0": f"ex_{i}_img_0", "image_1": f"ex_{i}_img_1"}
        lines.append(json.dumps(row))
        draw(root / "images" / f"ex_{i}_img_0.png", f"wino{i}a")
        if i not in missing:
            draw(root / "images" / f"ex_{i}_img_1.png", f"wino{i}b")
    (root / "examples.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


def write_winoground_parquet(root: Path, n: int = 3, unreadable: tuple[int, ...] = ()) -> Path:
    """The hub's current layout: ``data/test-00000-of-00001.parquet`` with the images embedded as
    ``struct<bytes, path>``; ``unreadable``: ids whose image_1 bytes are not an image."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = []
    for i in range(n):
        c0, c1, collapsed, tag, preds = WINOGROUND_ROWS[i % len(WINOGROUND_ROWS)]
        cells = []
        for k in (0, 1):
            png = draw(root / "scratch.png", f"wino{i}{'ab'[k]}").read_bytes()
            data = b"not a png" if (k == 1 and i in unreadable) else png
            cells.append({"bytes": data, "path": f"ex_{i}_img_{k}.png"})
        rows.append({"id": i, "image_0": cells[0], "image_1": cells[1], "caption_0": c0, "caption_1": c1,
                     "tag": tag, "secondary_tag": "Symbolic" if i % 2 else "", "num_main_preds": preds,
                     "collapsed_tag": collapsed})
    (root / "scratch.png").unlink()
    image = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    schema = pa.schema([("id", pa.int32()), ("image_0", image), ("image_1", image), ("caption_0", pa.string()),
                        ("caption_1", pa.string()), ("tag", pa.string()), ("secondary_tag", pa.string()),
                        ("num_main_preds", pa.int32()), ("collapsed_tag", pa.string())])
    (root / "data").mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), root / "data" / "test-00000-of-00001.parquet",
                   row_group_size=2)
    return root


# -- ComVG: ComVG.csv + Visual Genome images {image_id}.jpg --------------------------------------

COMVG_COLUMNS = ["id", "sentence", "pos_triplet", "neg_triplet", "pos_image_id", "neg_image_id", "neg_value",
                 "sentence_id"]
#: neg_triplet cells are Python tuple literals in the released ComVG.csv; pos_triplet is "s,v,o".
COMVG_ROWS = [
    ("man sit table", "man,sit,table", "('woman', 'sit', 'table')", "subject"),
    ("cat next to dog", "cat,nextto,dog", "('cat', 'on', 'dog')", "verb"),
    ("woman laying in bed", "woman,layingin,bed", "('woman', 'layingin', 'sofa')", "object"),
    ("bike leaning against wall", "bike,leaningagainst,wall", "('bike', 'leaningagainst', 'tree')", "object"),
    ("boy holding kite", "boy,holding,kite", "('girl', 'holding', 'kite')", "subject"),
]


def write_comvg(root: Path, n: int = 5, missing_ids: tuple[int, ...] = (), extra_rows: list[list] | None = None
                ) -> Path:
    """Images go to ``VG_100K/`` (the Visual Genome release folder); ``missing_ids`` are not written."""
    (root / "VG_100K").mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        sentence, pos, neg, value = COMVG_ROWS[i % len(COMVG_ROWS)]
        pos_id, neg_id = 1000 + 2 * i, 1001 + 2 * i
        rows.append([i + 1, sentence, pos, neg, pos_id, neg_id, value, 50 + i])  # ids from 1, as shipped
        for image_id in (pos_id, neg_id):
            if image_id not in missing_ids:
                draw(root / "VG_100K" / f"{image_id}.jpg", f"vg{image_id}")
    rows += extra_rows or []
    with (root / "ComVG.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(COMVG_COLUMNS)
        w.writerows(rows)
    return root


# -- SVO-Probes: svo_probes.csv + images/ -------------------------------------------------------

SVO_COLUMNS = ["sentence", "pos_triplet", "neg_triplet", "subj_neg", "verb_neg", "obj_neg", "pos_url", "neg_url",
               "pos_image_id", "neg_image_id"]
SVO_ROWS = [
    ("A girl sits on the shore.", "girl,sit,shore", "boy,sit,shore", (True, False, False)),
    ("A man rides a horse.", "man,ride,horse", "man,feed,horse", (False, True, False)),
    ("A dog catches a frisbee.", "dog,catch,frisbee", "dog,catch,ball", (False, False, True)),
    ("A woman walks on the beach.", "woman,walk,beach", "woman,run,beach", (False, True, False)),
]


def write_svo(root: Path, n: int = 4, missing: tuple[int, ...] = (), columns: list[str] | None = None,
              cells: dict[int, str] | None = None) -> Path:
    """Even rows' images are named by image id, odd rows' only by the URL's file name.
    ``cells``: row → pos_triplet cell written as is (list literals as in the released CSV)."""
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        sentence, pos, neg, flags = SVO_ROWS[i % len(SVO_ROWS)]
        pos_id, neg_id = str(2000 + i), str(5000 + i)  # integer image ids, as shipped
        pos_url = f"https://example.org/pics/{pos_id}_web.jpg?size=large"
        neg_url = f"https://example.org/pics/{neg_id}_web.jpg"
        pos = (cells or {}).get(i, pos)
        rows.append([sentence, pos, neg, *map(str, flags), pos_url, neg_url, pos_id, neg_id])
        if i in missing:
            continue  # this row's images are deliberately absent
        for image_id, url in ((pos_id, pos_url), (neg_id, neg_url)):
            name = f"{image_id}.jpg" if i % 2 == 0 else url.split("/")[-1].split("?")[0]
            draw(root / "images" / name, f"svo{image_id}")
    (root / "images").mkdir(exist_ok=True)
    with (root / "svo_probes.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(columns or SVO_COLUMNS)
        w.writerows(rows)
    return root


# -- VL-CheckList: a checkout (corpus/v1/**.yaml + data/**.json) and a $DATASET folder --------------

#: corpus yaml (under corpus/v1/, without .yaml) → (ANNO_PATH, IMG_ROOT, entries); the layout of
#: om-ai-lab/VL-CheckList: image paths are relative to IMG_ROOT, IMG_ROOT to $DATASET.
VL_CORPUS = {
    "Attribute/color/vaw": ("data/Attribute/vaw/color.json", "vg", [
        ["VG_100K/10.jpg", {"POS": ["a red car"], "NEG": ["a blue car"]}],
        ["VG_100K/11.jpg", {"POS": ["a white dog"], "NEG": ["a black dog"]}],
    ]),
    "Attribute/color/vg": ("data/Attribute/vg/color.json", "vg", [
        ["VG_100K_2/12.jpg", {"POS": ["a green bench"], "NEG": ["a pink bench"]}],
    ]),
    "Attribute/material/vg": ("data/Attribute/vg/material.json", "vg/", [
        ["VG_100K/13.jpg", {"POS": ["a wooden table"], "NEG": ["a metal table"]}],
    ]),
    "Object/Location/center/swig_agent": (
        "data/Object/Location/swig_location/swig_agent/swig_agent_center.json", "swig/", [
            ["cooking_1.jpg", {"POS": ["a man cooking food", "a person cooking food"],
                               "NEG": ["a man cooking shoe", "a cat cooking food"]}],
        ]),
    "Object/Location/center/hake": ("data/Object/Location/hake_location/hake_obj_center.json", "hake/", [
        ["hake_images_20190730/pic_1.jpg", {"POS": ["a person holds a cup"], "NEG": ["a person holds a tree"]}],
    ]),
    "Relation/action/swig": ("data/Relation/swig_action.json", "swig/", [
        ["dialing_8.jpg", {"POS": ["a woman dials on a phone"], "NEG": ["a woman bites on a phone"]}],
        ["skiing_189.jpg", {"POS": ["a skier skis on a slope"], "NEG": ["a skier eats on a slope"]}],
    ]),
    "Relation/spatial/vg": ("data/Relation/vg/spatial.json", "vg/", [
        ["VG_100K_2/14.jpg", {"POS": ["a cup on a table"], "NEG": ["a table on a cup"]}],
    ]),
}


def write_vl_checklist(root: Path, dataset: Path | None = None, missing: tuple[str, ...] = (),
                       broken_entry: bool = False, skip_roots: tuple[str, ...] = ()) -> Path:
    """A VL-CheckList checkout at ``root``; images under ``dataset`` (default: ``root``) as
    ``{IMG_ROOT}/{path}``. ``missing``: image paths (IMG_ROOT-relative) not written;
    ``skip_roots``: image roots (``hake`` ...) not created at all."""
    dataset = root if dataset is None else dataset
    for name, (anno, img_root, entries) in VL_CORPUS.items():
        entries = list(entries)
        if broken_entry and name == "Attribute/material/vg":
            entries.append(["VG_100K/15.jpg", {"POS": ["only a positive"]}])
        yaml_path = root / "corpus" / "v1" / f"{name}.yaml"
        yaml_path.parent.mkdir(parents=True, exist_ok=True)
        yaml_path.write_text(f'ANNO_PATH: "{anno}"\nIMG_ROOT: "{img_root}"\nTYPE: "TUPLE_JSON"', encoding="utf-8")
        (root / anno).parent.mkdir(parents=True, exist_ok=True)
        (root / anno).write_text(json.dumps(entries), encoding="utf-8")
        if img_root.strip("/") in skip_roots:
            continue  # this image source is not downloaded
        for image, _ in entries:
            if image not in missing:
                draw(dataset / img_root / image, f"vl{img_root}{image}")
    return root


# -- Karpathy splits: dataset_flickr30k.json / dataset_coco.json --------------------------------

RETRIEVAL_CAPTIONS = [
    ("a dog runs on the grass", "a brown dog running outside"),
    ("two people ride bikes", "people riding bicycles on a road"),
    ("a cat sleeps on a sofa", "a sleeping cat on the couch"),
    ("a man holds an umbrella", "a person with an umbrella in the rain"),
    ("a red car parked on a street", "a car next to the sidewalk"),
    ("children play football", "kids playing soccer in a park"),
]


def write_karpathy(root: Path, dataset: str, n_test: int = 6, missing: tuple[int, ...] = ()) -> Path:
    """Flickr30k: ``flickr30k-images/{filename}``; COCO: ``{filepath}/{filename}`` (``val2014/``).
    Two train images are included too: they must not enter the test gallery."""
    images, sentid = [], 0
    for i in range(n_test + 2):
        split = "test" if i < n_test else "train"
        caps = RETRIEVAL_CAPTIONS[i % len(RETRIEVAL_CAPTIONS)]
        sentences = []
        for c in caps:
            sentences.append({"tokens": c.split(), "raw": c[0].upper() + c[1:] + ".", "imgid": i, "sentid": sentid})
            sentid += 1
        if dataset == "coco":
            filename = f"COCO_val2014_{i:012d}.jpg"
            entry = {"filepath": "val2014", "sentids": [s["sentid"] for s in sentences], "filename": filename,
                     "imgid": i, "split": split, "sentences": sentences, "cocoid": 100 + i}
            path = root / "val2014" / filename
        else:
            filename = f"{1000092795 + i}.jpg"
            entry = {"sentids": [s["sentid"] for s in sentences], "imgid": i, "sentences": sentences,
                     "split": split, "filename": filename}
            path = root / "flickr30k-images" / filename
        images.append(entry)
        if i not in missing:
            draw(path, f"{dataset}{i}")
    root.mkdir(parents=True, exist_ok=True)
    (root / f"dataset_{dataset}.json").write_text(json.dumps({"images": images, "dataset": dataset}),
                                                  encoding="utf-8")
    return root


class SpyEngine:
    """Wraps an engine: records every ``match_batch`` call; can simulate an interruption (Ctrl-C)
    on the N-th call, as a killed run would stop."""

    def __init__(self, engine, interrupt_on_call: int | None = None) -> None:
        self.engine = engine
        self.calls: list[list[tuple]] = []
        self.interrupt_on_call = interrupt_on_call

    def match_batch(self, items, **options):
        self.calls.append(list(items))
        if self.interrupt_on_call is not None and len(self.calls) == self.interrupt_on_call:
            raise KeyboardInterrupt
        return self.engine.match_batch(items, **options)

    def __getattr__(self, name):
        return getattr(self.engine, name)
