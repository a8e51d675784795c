"""Flickr30K and COCO retrieval: Karpathy's split files and the two protocols run on them.

The annotation file is ``dataset_flickr30k.json`` / ``dataset_coco.json`` (Karpathy & Fei-Fei):
``{"images": [{"filename", "filepath"?, "split", "sentences": [{"raw", "tokens", "sentid"}, ...]},
...]}``; the images sit in ``flickr30k-images/`` (Flickr30K) or ``{filepath}/{filename}`` under
the COCO folder (``val2014/`` ...).

Protocols (``--protocol``):

* ``karpathy`` (default; the standard one): every caption of the split's images; both directions
  — text→image (each caption retrieves its image among the split's images) and image→text
  (each image retrieves any of its captions among all the split's captions); Recall@1/5/10.
* ``comclip`` (the paper's Flickr30K setting, its ``flickr30k_test.pkl``): the test split's images
  (1,000 for Flickr30K), ONE caption per image, text→image only, Recall@1/5. The caption is the
  image's first by default (``caption_index``); the official pickle's caption is not always the
  first (for ``1007129816.jpg`` it is Karpathy's fourth). ``queries`` = a CSV with the columns
  ``image, sentence`` (the official pickle's, exported as docs/datasets.md shows) takes the
  queries from it instead: the paper's exact 1,000.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from comclip.errors import DatasetError
from comclip.eval.datasets.common import one_line

#: dataset → (annotation file, image folders tried under --data, in order)
DATASETS: dict[str, tuple[str, tuple[str, ...]]] = {
    "flickr30k": ("dataset_flickr30k.json", ("flickr30k-images", "images", "")),
    "coco": ("dataset_coco.json", ("images", "")),
}
PROTOCOLS = ("karpathy", "comclip")
DEFAULT_PROTOCOL = "karpathy"
#: directions and Recall@K reported per protocol
PROTOCOL_DIRECTIONS = {"karpathy": ("t2i", "i2t"), "comclip": ("t2i",)}
PROTOCOL_KS = {"karpathy": (1, 5, 10), "comclip": (1, 5)}


@dataclass
class Query:
    """One retrieval query: a caption (``t2i``) or an image (``i2t``) and what it must find."""

    id: str
    direction: str  # "t2i" | "i2t"
    caption: str  # the query text (t2i), or the image's name (i2t)
    target: int  # t2i: gallery image index; i2t: the query image's index (-1: unreadable row)
    error: str | None = None


@dataclass
class Caption:
    id: str
    text: str
    image: int  # index into the gallery
    error: str | None = None


@dataclass
class RetrievalSet:
    dataset: str
    source: str
    images: str
    split: str
    names: list[str]  # gallery images, as the annotation names them (filepath/filename)
    paths: list[Path]
    queries: list[Query]
    captions: list[Caption] = field(default_factory=list)  # every caption of the split (i2t's gallery)
    protocol: str = DEFAULT_PROTOCOL
    notes: list[str] = field(default_factory=list)
    kind: str = "retrieval"

    @property
    def directions(self) -> tuple[str, ...]:
        return PROTOCOL_DIRECTIONS[self.protocol]

    @property
    def ks(self) -> tuple[int, ...]:
        return PROTOCOL_KS[self.protocol]


def load_retrieval(dataset: str, data: str | Path, images: str | Path | None = None, *, split: str = "test",
                   protocol: str = DEFAULT_PROTOCOL, caption_index: int = 0,
                   queries: str | Path | None = None) -> RetrievalSet:
    """Karpathy-split JSON (``dataset_flickr30k.json`` / ``dataset_coco.json``) + its images."""
    if protocol not in PROTOCOLS:
        raise DatasetError(f"unknown protocol {protocol!r}; choose one of: {', '.join(PROTOCOLS)}")
    if queries is not None and protocol != "comclip":
        raise DatasetError("--queries goes with --protocol comclip (one caption per image, text→image)")
    ann_name, image_dirs = DATASETS[dataset]
    root_in = Path(data).expanduser()
    if not root_in.exists():
        raise DatasetError(f"{dataset} data folder not found: {root_in}")
    ann = root_in if root_in.is_file() else root_in / ann_name
    if not ann.is_file():
        raise DatasetError(f"{dataset}: {root_in} has no {ann_name} (the Karpathy split annotation file)")
    try:
        doc = json.loads(ann.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DatasetError(f"{dataset}: cannot read {ann}: {one_line(exc)}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("images"), list):
        raise DatasetError(f"{dataset}: {ann} is not a Karpathy split file (no 'images' list)")
    if images:
        root = Path(images).expanduser()
        if not root.is_dir():
            raise DatasetError(f"{dataset}: images folder not found: {root}")
    else:
        root = next(ann.parent / d for d in image_dirs if (ann.parent / d).is_dir())

    names: list[str] = []
    paths: list[Path] = []
    captions: list[Caption] = []
    bad_rows: list[Query] = []
    per_image: list[list[Caption]] = []
    splits: set[str] = set()
    dir_ok: dict[str, bool] = {}
    for i, entry in enumerate(doc["images"]):
        if not isinstance(entry, dict):
            bad_rows.append(Query(f"image{i}", "t2i", "", -1, f"images[{i}] is not an object"))
            continue  # recorded as a failed query
        splits.add(str(entry.get("split")))
        if entry.get("split") != split:
            continue  # another split: not part of this evaluation
        filename, filepath = entry.get("filename"), entry.get("filepath") or ""
        sentences = entry.get("sentences")
        if not isinstance(filename, str) or not filename.strip() or not isinstance(filepath, str):
            bad_rows.append(Query(f"image{i}", "t2i", "", -1, f"images[{i}] has no filename"))
            continue  # recorded as a failed query
        if not isinstance(sentences, list):
            bad_rows.append(Query(f"image{i}", "t2i", "", -1, f"images[{i}] ({filename}) has no 'sentences' list"))
            continue  # recorded as a failed query
        if filepath not in dir_ok:
            dir_ok[filepath] = bool(filepath) and (root / filepath).is_dir()
        target = len(names)
        names.append(f"{filepath}/{filename}" if filepath else filename)
        paths.append(root / filepath / filename if dir_ok[filepath] else root / filename)
        mine = [_caption(s, i, j, target, filename) for j, s in enumerate(sentences)]
        per_image.append(mine)
        captions += mine
    if not names:
        raise DatasetError(f"{dataset}: {ann} has no images in split {split!r} "
                           f"(splits found: {', '.join(sorted(splits)) or 'none'})")
    if protocol == "karpathy":
        qs = [Query(c.id, "t2i", c.text, c.image, c.error) for c in captions]
        qs += [Query(f"i{g}", "i2t", names[g], g, None if any(c.error is None for c in per_image[g])
                     else f"image {names[g]} has no readable caption") for g in range(len(names))]
        notes = [f"split: {split}", "protocol: karpathy (every caption; text→image and image→text; R@1/5/10)"]
    elif queries is not None:
        path = Path(queries).expanduser()
        qs = _from_file(path, names, dataset)
        notes = [f"split: {split}", f"protocol: comclip (the queries of {path}; text→image; R@1/5)"]
        bad_rows = []  # the split's rows are only the gallery here
    else:
        qs = [_first(per_image[g], g, names[g], caption_index) for g in range(len(names))]
        notes = [f"split: {split}", f"protocol: comclip (one caption per image: caption {caption_index}; "
                 "text→image; R@1/5)"]
    return RetrievalSet(dataset, str(ann), str(root), split, names, paths, bad_rows + qs, captions,
                        protocol, notes)


def _from_file(path: Path, names: list[str], dataset: str) -> list[Query]:
    """Queries from a CSV with ``image`` (a gallery file name) and ``sentence`` columns."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as f:
            reader = csv.DictReader(f)
            rows = list(reader)
            columns = list(reader.fieldnames or [])
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DatasetError(f"{dataset}: cannot read the queries file {path}: {one_line(exc)}") from None
    if not {"image", "sentence"} <= set(columns):
        raise DatasetError(f"{dataset}: {path} lacks the columns image, sentence; columns found: "
                           f"{', '.join(c for c in columns if c) or 'none'}")
    where = {Path(n).name: g for g, n in enumerate(names)}
    out = []
    for n, row in enumerate(rows):
        image, text = (row.get("image") or "").strip(), " ".join((row.get("sentence") or "").split())
        g = where.get(Path(image).name, -1)
        error = None
        if g < 0:
            error = f"row {n}: image {image!r} is not in the split"
        elif not text:
            error = f"row {n}: empty sentence"
        out.append(Query(f"q{n}", "t2i", text, g, error))
    if not out:
        raise DatasetError(f"{dataset}: {path} has no rows")
    return out


def _first(mine: list[Caption], g: int, name: str, index: int) -> Query:
    if index >= len(mine):
        return Query(f"image{g}", "t2i", "", g, f"image {name} has {len(mine)} caption(s), no caption {index}")
    c = mine[index]
    return Query(c.id, "t2i", c.text, g, c.error)


def _caption(s: Any, i: int, j: int, target: int, filename: str) -> Caption:
    sid = s.get("sentid") if isinstance(s, dict) else None
    cid = f"s{sid}" if isinstance(sid, int) else f"{i}.{j}"
    if not isinstance(s, dict):
        return Caption(cid, "", target, f"sentence {j} of {filename} is not an object")
    raw = s.get("raw")
    text = raw if isinstance(raw, str) and raw.strip() else " ".join(t for t in s.get("tokens") or []
                                                                       if isinstance(t, str))
    if not text.strip():
        return Caption(cid, "", target, f"sentence {j} of {filename} is empty")
    return Caption(cid, " ".join(text.split()), target)
