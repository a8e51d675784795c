"""Benchmark loaders: a data folder in the dataset's own on-disk format → typed examples.

Every loader checks the folder first and raises :class:`DatasetError` at once when it is missing
or is not the dataset (no annotation file, wrong columns, unparseable annotation file). A single
bad row, or a missing image, does NOT stop the run: it becomes an :class:`Example` with
``error`` set (or an image source that fails to load), is counted as failed and reported with
its reason.

Pairwise benchmarks (everything except retrieval) share one shape: an example is a few
:class:`Probe`\\ s — an image and the captions to score against it — and ``keys`` names every
(probe, caption) score in order, e.g. Winoground's ``c0_i0, c1_i0, c0_i1, c1_i1``.
"""

from __future__ import annotations

import csv
import json
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from PIL import Image

from comclip.errors import DatasetError, GraphError
from comclip.eval.triplets import triplet_graph
from comclip.graph import SceneGraph

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp")
GRAPH_SOURCES = ("triplet", "parse")


@dataclass(frozen=True)
class MissingImage:
    """An image that could not be found; loading it fails the example with ``reason``."""

    reason: str


ImageSource = str | Path | Callable[[], Image.Image] | MissingImage


@dataclass
class Probe:
    """One engine item: an image and the captions to score against it (graphs: None = parse)."""

    image: ImageSource
    captions: list[str]
    graphs: list[SceneGraph | None] | None = None


@dataclass
class Example:
    id: str
    probes: list[Probe] = field(default_factory=list)
    #: Names of the scores, in probe order then caption order.
    keys: tuple[str, ...] = ()
    #: Breakdown labels: the example also counts in each of these groups (e.g. ``subject``).
    groups: tuple[str, ...] = ()
    #: What the dataset says about the example; copied into ``examples.jsonl``.
    meta: dict[str, Any] = field(default_factory=dict)
    #: Set when the row itself is unreadable: the example fails with this reason.
    error: str | None = None


@dataclass
class Loaded:
    """A loaded benchmark: its examples and where they came from."""

    dataset: str
    kind: str  # "winoground" | "pairs"
    examples: list[Example]
    source: str
    images: str | None = None
    notes: list[str] = field(default_factory=list)


# -- helpers ------------------------------------------------------------------------------------

def _folder(data: str | Path, dataset: str) -> Path:
    path = Path(data).expanduser()
    if not path.exists():
        raise DatasetError(f"{dataset} data folder not found: {path}")
    return path


def _subfolder(path: Path, dataset: str, what: str) -> Path:
    if not path.is_dir():
        raise DatasetError(f"{dataset}: {what} folder not found: {path}")
    return path


def _one_line(text: object, limit: int = 200) -> str:
    return " ".join(str(text).split())[:limit]


def unique_ids(examples: list[Example]) -> list[Example]:
    """Make example ids unique (``id``, ``id~2``, ...) so results can be resumed by id."""
    seen: dict[str, int] = {}
    for ex in examples:
        n = seen.get(ex.id, 0) + 1
        seen[ex.id] = n
        if n > 1:
            ex.id = f"{ex.id}~{n}"
    return examples


def clean_id(value: object) -> str:
    """``"2345.0"`` → ``"2345"`` (ids read back from CSVs written by pandas), else stripped text."""
    text = str(value).strip()
    if re.fullmatch(r"\d+\.0+", text):
        return text.split(".")[0]
    return text


class ImageFolder:
    """Finds images by file name in one or more folders (indexed once, not searched per image)."""

    def __init__(self, roots: Iterable[Path]) -> None:
        self.roots = [Path(r) for r in roots]
        self._index: dict[str, Path] | None = None

    def _build(self) -> dict[str, Path]:
        index: dict[str, Path] = {}
        for root in self.roots:
            with os.scandir(root) as entries:
                for entry in entries:
                    if entry.name not in index and not entry.is_dir():
                        index[entry.name] = Path(entry.path)
        return index

    def find(self, names: Iterable[str], what: str) -> Path | MissingImage:
        if self._index is None:
            self._index = self._build()
        tried = []
        for name in names:
            if not name or name in tried:
                continue
            tried.append(name)
            hit = self._index.get(name)
            if hit is not None:
                return hit
        where = ", ".join(str(r) for r in self.roots)
        return MissingImage(f"image not found: {what} (looked for {', '.join(tried) or 'nothing'} in {where})")


def id_names(image_id: str) -> list[str]:
    """File names an image id may have on disk: the id itself, then with each image extension."""
    if not image_id:
        return []
    names = [image_id] if Path(image_id).suffix.lower() in IMAGE_EXTENSIONS else []
    return names + [image_id + ext for ext in IMAGE_EXTENSIONS]


def url_name(url: str) -> str:
    """The file name at the end of an image URL (query string and escapes removed)."""
    return unquote(Path(urlparse(url.strip()).path).name) if url and url.strip() else ""


def _read_csv(path: Path, dataset: str) -> tuple[list[str], list[dict[str, Any]]]:
    try:
        with path.open(encoding="utf-8-sig", newline="") as f:
            reader = csv.DictReader(f)
            rows = list(reader)
            columns = [c for c in (reader.fieldnames or [])]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DatasetError(f"{dataset}: cannot read {path}: {_one_line(exc)}") from None
    return columns, rows


def _check_columns(columns: list[str], required: Iterable[str], path: Path, dataset: str,
                   any_of: Iterable[tuple[str, ...]] = ()) -> None:
    missing = [c for c in required if c not in columns]
    missing += [" or ".join(group) for group in any_of if not any(c in columns for c in group)]
    if missing:
        found = ", ".join(c for c in columns if c) or "none"
        raise DatasetError(f"{dataset}: {path} lacks column(s) {', '.join(missing)}; columns found: {found}")


def _row_problem(row: Mapping[str, Any], required: Iterable[str]) -> str | None:
    if None in row:
        return f"row has {len(row) - 1 + len(row[None])} fields, more than the header"  # type: ignore[index]
    empty = [c for c in required if row.get(c) is None or not str(row.get(c)).strip()]
    if empty:
        return f"row has no value for {', '.join(empty)}"
    return None


def _graph(caption: str, triplet: str, graphs: str) -> SceneGraph | None:
    return triplet_graph(caption, triplet) if graphs == "triplet" else None


def _check_graphs(graphs: str) -> None:
    if graphs not in GRAPH_SOURCES:
        raise DatasetError(f"unknown graph source {graphs!r}; choose one of: {', '.join(GRAPH_SOURCES)}")


# -- Winoground ---------------------------------------------------------------------------------

WINOGROUND_KEYS_ORDER = ("c0_i0", "c1_i0", "c0_i1", "c1_i1")  # probe 0 = image 0, probe 1 = image 1
WINOGROUND_FIELDS = ("id", "caption_0", "caption_1", "image_0", "image_1")
WINOGROUND_META = ("tag", "secondary_tag", "num_main_preds", "collapsed_tag")


def _winoground_example(row: Any, where: str, image: Callable[[str, str], ImageSource]) -> Example:
    if not isinstance(row, dict):
        return Example(where, error=f"{where} is not a JSON object")
    ex_id = str(row["id"]) if "id" in row and row["id"] is not None else where
    missing = [k for k in WINOGROUND_FIELDS if k not in row]
    if missing:
        return Example(ex_id, error=f"{where} lacks key(s) {', '.join(missing)}")
    for key in ("caption_0", "caption_1"):
        if not isinstance(row[key], str) or not row[key].strip():
            return Example(ex_id, error=f"{where}: {key} is empty or not text")
    captions = [row["caption_0"], row["caption_1"]]
    meta = {k: row[k] for k in WINOGROUND_META if k in row}
    tag = row.get("collapsed_tag")
    return Example(
        ex_id,
        probes=[Probe(image(row["image_0"], "image_0"), captions), Probe(image(row["image_1"], "image_1"), captions)],
        keys=WINOGROUND_KEYS_ORDER,
        groups=(str(tag),) if isinstance(tag, str) and tag.strip() else (),
        meta=meta,
    )


def _winoground_line(n: int, line: str, image: Callable[[str, str], ImageSource]) -> Example:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        return Example(f"line{n}", error=f"line {n} is not valid JSON: {_one_line(exc)}")
    return _winoground_example(row, f"line {n}", image)


def load_winoground(data: str | Path, images: str | Path | None = None, **_: Any) -> Loaded:
    """``examples.jsonl`` + ``images/{image_N}.png`` (the facebook/winoground data folder), or
    ``--data hf`` / ``hf:NAME`` through the ``datasets`` library."""
    if str(data) == "hf" or str(data).startswith("hf:"):
        return _winoground_hf(str(data))
    folder = _folder(data, "winoground")
    jsonl = folder / "examples.jsonl" if folder.is_dir() else folder
    if folder.is_dir() and not jsonl.is_file() and (folder / "data" / "examples.jsonl").is_file():
        jsonl = folder / "data" / "examples.jsonl"  # the root of a clone of the facebook/winoground repo
    if not jsonl.is_file():
        raise DatasetError(f"winoground: {folder} has no examples.jsonl (expected the facebook/winoground "
                           "data folder: examples.jsonl + images/)")
    img_root = _subfolder(Path(images) if images else jsonl.parent / "images", "winoground", "images")
    try:
        lines = jsonl.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"winoground: cannot read {jsonl}: {_one_line(exc)}") from None

    def image(name: Any, key: str) -> ImageSource:
        if not isinstance(name, str) or not name.strip():
            return MissingImage(f"{key} is not an image name")
        return img_root / (name if Path(name).suffix.lower() in IMAGE_EXTENSIONS else f"{name}.png")

    examples = [_winoground_line(n, line, image) for n, line in enumerate(lines, 1) if line.strip()]
    if not examples:
        raise DatasetError(f"winoground: {jsonl} is empty")
    if all(ex.error for ex in examples):
        raise DatasetError(f"winoground: {jsonl} does not look like Winoground's examples.jsonl: no line has "
                           f"the keys {', '.join(WINOGROUND_FIELDS)} ({examples[0].error})")
    return Loaded("winoground", "winoground", unique_ids(examples), str(jsonl), str(img_root))


def _winoground_hf(spec: str) -> Loaded:
    name = spec.split(":", 1)[1] if ":" in spec else "facebook/winoground"
    try:
        import datasets  # type: ignore[import-not-found]
    except ImportError:
        raise DatasetError("--data hf needs the `datasets` library (pip install datasets) and access to the gated "
                           f"{name} dataset (accept its terms, then `huggingface-cli login`); or pass the data "
                           "folder (examples.jsonl + images/)") from None
    try:
        ds = datasets.load_dataset(name, split="test")
    except Exception as exc:  # noqa: BLE001 — any loading problem is one clear user-facing error
        raise DatasetError(f"cannot load {name} with the datasets library ({type(exc).__name__}: "
                           f"{_one_line(exc)}); accept the dataset's terms and `huggingface-cli login`, "
                           "or pass the data folder") from None
    text_columns = [c for c in ds.column_names if c not in ("image_0", "image_1")]
    rows = ds.select_columns(text_columns).to_list()
    examples = []
    for i, row in enumerate(rows):
        def image(_name: Any, key: str, i: int = i) -> ImageSource:
            return lambda: ds[i][key]
        # the images stay in the dataset, decoded only when scored
        examples.append(_winoground_example(row | {"image_0": "image_0", "image_1": "image_1"}, f"row {i}", image))
    return Loaded("winoground", "winoground", unique_ids(examples), f"datasets:{name}", None)


# -- ComVG --------------------------------------------------------------------------------------

COMVG_COLUMNS = ("id", "sentence", "pos_triplet", "neg_triplet", "pos_image_id", "neg_image_id", "neg_value",
                 "sentence_id")
COMVG_REQUIRED = ("sentence", "pos_triplet", "pos_image_id", "neg_image_id", "neg_value")


def _csv_file(data: Path, names: Iterable[str], dataset: str) -> Path:
    if data.is_file():
        return data
    for name in names:
        if (data / name).is_file():
            return data / name
    found = sorted(p.name for p in data.glob("*.csv"))
    raise DatasetError(f"{dataset}: {data} has no {' or '.join(names)}"
                       + (f" (CSV files found: {', '.join(found)})" if found else ""))


def _image_roots(data: Path, images: str | Path | None, defaults: Iterable[str], dataset: str) -> list[Path]:
    if images:
        return [_subfolder(Path(images).expanduser(), dataset, "images")]
    base = data if data.is_dir() else data.parent
    roots = [base / d for d in defaults if (base / d).is_dir()]
    if not roots:
        raise DatasetError(f"{dataset}: no images folder: expected {' or '.join(str(base / d) for d in defaults)} "
                           "(or pass --images DIR)")
    return roots


def _comvg_example(n: int, row: dict[str, Any], finder: ImageFolder, graphs: str) -> Example:
    ex_id = clean_id(row.get("id") or "") or f"row{n}"
    problem = _row_problem(row, COMVG_REQUIRED)
    if problem:
        return Example(ex_id, error=f"row {n}: {problem}")
    sentence = row["sentence"].strip()
    try:
        graph = _graph(sentence, row["pos_triplet"], graphs)
    except GraphError as exc:
        return Example(ex_id, error=f"row {n}: {exc}")
    pos_id, neg_id = clean_id(row["pos_image_id"]), clean_id(row["neg_image_id"])
    return Example(
        ex_id,
        probes=[Probe(finder.find(id_names(pos_id), f"pos_image_id {pos_id}"), [sentence], [graph]),
                Probe(finder.find(id_names(neg_id), f"neg_image_id {neg_id}"), [sentence], [graph])],
        keys=("pos", "neg"),
        groups=(row["neg_value"].strip().lower(),),
        meta={k: row[k] for k in COMVG_COLUMNS if k in row and row[k] is not None},
    )


def load_comvg(data: str | Path, images: str | Path | None = None, graphs: str = "triplet", **_: Any) -> Loaded:
    """``ComVG.csv`` + Visual Genome images ``{image_id}.jpg`` (``images/``, ``VG_100K/``, ``VG_100K_2/``)."""
    _check_graphs(graphs)
    folder = _folder(data, "comvg")
    path = _csv_file(folder, ("ComVG.csv", "comvg.csv"), "comvg")
    columns, rows = _read_csv(path, "comvg")
    _check_columns(columns, COMVG_REQUIRED, path, "comvg")
    roots = _image_roots(folder, images, ("images", "VG_100K", "VG_100K_2"), "comvg")
    finder = ImageFolder(roots)
    examples = [_comvg_example(n, row, finder, graphs) for n, row in enumerate(rows, 1)]
    if not examples:
        raise DatasetError(f"comvg: {path} has no rows")
    return Loaded("comvg", "pairs", unique_ids(examples), str(path), ", ".join(map(str, roots)),
                  notes=[f"graphs: {graphs}"])


# -- SVO-Probes ---------------------------------------------------------------------------------

SVO_REQUIRED = ("sentence", "pos_triplet", "neg_triplet", "subj_neg", "verb_neg", "obj_neg")
SVO_IMAGES = (("pos_image_id", "pos_url"), ("neg_image_id", "neg_url"))
SVO_NEG_TYPES = (("subj_neg", "subject"), ("verb_neg", "verb"), ("obj_neg", "object"))
_ID_COLUMNS = ("id", "index", "", "Unnamed: 0")


def _truth(value: Any) -> bool | None:
    text = str(value).strip().lower()
    if text in ("true", "1", "1.0", "yes", "t"):
        return True
    if text in ("false", "0", "0.0", "no", "f", ""):
        return False
    return None


def _svo_example(n: int, row: dict[str, Any], finder: ImageFolder, graphs: str, id_column: str | None) -> Example:
    ex_id = (clean_id(row.get(id_column) or "") if id_column is not None else "") or f"row{n}"
    problem = _row_problem(row, ("sentence", "pos_triplet"))
    if problem:
        return Example(ex_id, error=f"row {n}: {problem}")
    flags = {name: _truth(row.get(col)) for col, name in SVO_NEG_TYPES}
    bad = [col for col, name in SVO_NEG_TYPES if flags[name] is None]
    if bad:
        return Example(ex_id, error=f"row {n}: {', '.join(bad)} is not True/False")
    neg_types = [name for name, on in flags.items() if on]
    if not neg_types:
        return Example(ex_id, error=f"row {n}: no negative type (subj_neg, verb_neg, obj_neg all false)")
    sentence = row["sentence"].strip()
    try:
        graph = _graph(sentence, row["pos_triplet"], graphs)
    except GraphError as exc:
        return Example(ex_id, error=f"row {n}: {exc}")
    probes = []
    for side, (id_col, url_col) in zip(("pos", "neg"), SVO_IMAGES, strict=True):
        image_id = clean_id(row.get(id_col) or "")
        url = (row.get(url_col) or "").strip()
        names = id_names(image_id) + [url_name(url)]
        what = f"{side} image {image_id or url or '(no id, no url)'}"
        probes.append(Probe(finder.find(names, what), [sentence], [graph]))
    meta = {k: row[k] for k in ("sentence", "pos_triplet", "neg_triplet", "pos_image_id", "neg_image_id",
                                "pos_url", "neg_url") if row.get(k) is not None}
    return Example(ex_id, probes=probes, keys=("pos", "neg"), groups=("+".join(neg_types),),
                   meta=meta | {"neg_type": neg_types})


def load_svo(data: str | Path, images: str | Path | None = None, graphs: str = "triplet", **_: Any) -> Loaded:
    """The SVO-Probes CSV (``svo_probes.csv``, released column names) + an ``images/`` folder.

    Images are found by ``pos_image_id``/``neg_image_id`` (as a file name, or with an image
    extension) or else by the file name at the end of ``pos_url``/``neg_url``.
    """
    _check_graphs(graphs)
    folder = _folder(data, "svo")
    path = _csv_file(folder, ("svo_probes.csv", "svo-probes.csv"), "svo")
    columns, rows = _read_csv(path, "svo")
    _check_columns(columns, SVO_REQUIRED, path, "svo", any_of=SVO_IMAGES)
    roots = _image_roots(folder, images, ("images",), "svo")
    finder = ImageFolder(roots)
    id_column = next((c for c in _ID_COLUMNS if c in columns), None)
    examples = [_svo_example(n, row, finder, graphs, id_column) for n, row in enumerate(rows, 1)]
    if not examples:
        raise DatasetError(f"svo: {path} has no rows")
    return Loaded("svo", "pairs", unique_ids(examples), str(path), ", ".join(map(str, roots)),
                  notes=[f"graphs: {graphs}"])


# -- VL-Checklist -------------------------------------------------------------------------------

VL_CATEGORIES = ("Attribute", "Object", "Relation")
VL_SUBTYPES = ("action", "color", "material", "size", "state", "location", "spatial")


def vl_subtype(relative: Path) -> str:
    """The subtype of an annotation file from its path under the category folder:
    ``vaw/color.json`` → ``color``, ``Location/center.json`` → ``location``, ``hake_action.json`` →
    ``action``; otherwise the file's name."""
    tokens = [t for part in relative.with_suffix("").parts for t in re.split(r"[_\-. ]+", part.lower()) if t]
    for t in tokens:
        if t in VL_SUBTYPES:
            return t
    return relative.stem.lower()


def _vl_pairs(pos: list[str], neg: list[str]) -> list[tuple[str, str]] | None:
    if len(pos) == len(neg):
        return list(zip(pos, neg, strict=True))
    if len(pos) == 1:
        return [(pos[0], n) for n in neg]
    if len(neg) == 1:
        return [(p, neg[0]) for p in pos]
    return None


def load_vl_checklist(data: str | Path, images: str | Path | None = None, **_: Any) -> Loaded:
    """VL-Checklist's annotation JSON files (``data/{Attribute,Object,Relation}/**/*.json``, each a
    list of ``[image_path, {"POS": [...], "NEG": [...]}]``) + an images root the paths are relative to."""
    folder = _folder(data, "vl-checklist")
    if not folder.is_dir():
        raise DatasetError(f"vl-checklist: {folder} is not a folder")
    ann_root = folder / "data" if (folder / "data").is_dir() else folder
    categories = {p.name.lower(): p for p in ann_root.iterdir() if p.is_dir()}
    found = [(name, categories[name.lower()]) for name in VL_CATEGORIES if name.lower() in categories]
    if not found:
        raise DatasetError(f"vl-checklist: {ann_root} has none of the folders {', '.join(VL_CATEGORIES)} "
                           "(expected VL-Checklist's data/ folder)")
    img_root = _subfolder(Path(images).expanduser() if images else folder / "images", "vl-checklist", "images")
    examples = []
    n_files = 0
    for category, cat_dir in found:
        for path in sorted(cat_dir.rglob("*.json")):
            n_files += 1
            rel = path.relative_to(cat_dir)
            try:
                entries = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise DatasetError(f"vl-checklist: cannot read annotation file {path}: {_one_line(exc)}") from None
            if not isinstance(entries, list):
                raise DatasetError(f"vl-checklist: {path} is not a JSON list of [image, {{POS, NEG}}] entries")
            subtype = vl_subtype(rel)
            groups = (category, f"{category}/{subtype}")
            name = f"{category}/{rel.as_posix()}"
            examples += [ex for idx, entry in enumerate(entries)
                         for ex in _vl_examples(f"{name}#{idx}", entry, groups, img_root)]
    if n_files == 0:
        raise DatasetError(f"vl-checklist: no .json annotation files under {ann_root}")
    if not examples:
        raise DatasetError(f"vl-checklist: the annotation files under {ann_root} have no entries")
    return Loaded("vl-checklist", "pairs", unique_ids(examples), str(ann_root), str(img_root))


def _vl_examples(ex_id: str, entry: Any, groups: tuple[str, ...], img_root: Path) -> list[Example]:
    """One annotation entry → one example per (POS, NEG) pair, or one failed example."""
    problem = _vl_problem(entry)
    if problem:
        return [Example(ex_id, groups=groups, error=f"{ex_id}: {problem}")]
    image_path, texts = entry
    pairs = _vl_pairs(texts["POS"], texts["NEG"])
    if pairs is None:
        n_pos, n_neg = len(texts["POS"]), len(texts["NEG"])
        return [Example(ex_id, groups=groups, error=f"{ex_id}: {n_pos} POS and {n_neg} NEG captions cannot be paired")]
    p = Path(image_path)
    source = p if p.is_absolute() else img_root / p
    return [Example(ex_id if len(pairs) == 1 else f"{ex_id}.{j}", probes=[Probe(source, [pos, neg])],
                    keys=("pos", "neg"), groups=groups, meta={"image": image_path, "pos": pos, "neg": neg})
            for j, (pos, neg) in enumerate(pairs)]


def _vl_problem(entry: Any) -> str | None:
    if not (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], str) and isinstance(entry[1], dict)):
        return "entry is not [image_path, {POS: [...], NEG: [...]}]"
    if not entry[0].strip():
        return "empty image path"
    for key in ("POS", "NEG"):
        texts = entry[1].get(key)
        if not isinstance(texts, list) or not texts:
            return f"no {key} captions"
        if not all(isinstance(t, str) and t.strip() for t in texts):
            return f"a {key} caption is empty or not text"
    return None


PAIR_LOADERS: dict[str, Callable[..., Loaded]] = {
    "winoground": load_winoground,
    "comvg": load_comvg,
    "svo": load_svo,
    "vl-checklist": load_vl_checklist,
}
