"""What every benchmark loader shares: the example types and the file/image helpers.

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
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from PIL import Image

from comclip.errors import DatasetError, GraphError, InputError
from comclip.eval.triplets import triplet_graph
from comclip.graph import SceneGraph
from comclip.images import LoadedImage, load_image

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


def open_image(source: ImageSource) -> LoadedImage:
    """Load an example's image; every problem is one :class:`InputError` naming it."""
    if isinstance(source, MissingImage):
        raise InputError(source.reason)
    if callable(source):
        return load_image(source())
    return load_image(source)


# -- helpers ------------------------------------------------------------------------------------

def folder(data: str | Path, dataset: str) -> Path:
    path = Path(data).expanduser()
    if not path.exists():
        raise DatasetError(f"{dataset} data folder not found: {path}")
    return path


def subfolder(path: Path, dataset: str, what: str) -> Path:
    if not path.is_dir():
        raise DatasetError(f"{dataset}: {what} folder not found: {path}")
    return path


def one_line(text: object, limit: int = 200) -> str:
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


def read_csv(path: Path, dataset: str) -> tuple[list[str], list[dict[str, Any]]]:
    try:
        with path.open(encoding="utf-8-sig", newline="") as f:
            reader = csv.DictReader(f)
            rows = list(reader)
            columns = [c for c in (reader.fieldnames or [])]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DatasetError(f"{dataset}: cannot read {path}: {one_line(exc)}") from None
    return columns, rows


def check_columns(columns: list[str], required: Iterable[str], path: Path, dataset: str,
                   any_of: Iterable[tuple[str, ...]] = ()) -> None:
    missing = [c for c in required if c not in columns]
    missing += [" or ".join(group) for group in any_of if not any(c in columns for c in group)]
    if missing:
        found = ", ".join(c for c in columns if c) or "none"
        raise DatasetError(f"{dataset}: {path} lacks column(s) {', '.join(missing)}; columns found: {found}")


def row_problem(row: Mapping[str, Any], required: Iterable[str]) -> str | None:
    if None in row:
        return f"row has {len(row) - 1 + len(row[None])} fields, more than the header"  # type: ignore[index]
    empty = [c for c in required if row.get(c) is None or not str(row.get(c)).strip()]
    if empty:
        return f"row has no value for {', '.join(empty)}"
    return None


def sentence_graph(row: Mapping[str, Any], graphs: str) -> tuple[str, SceneGraph | None]:
    """A CSV row's ``sentence`` and its graph: from ``pos_triplet`` (the paper) or None (parse it).
    An unreadable triplet raises :class:`GraphError` naming the column."""
    sentence = row["sentence"].strip()
    if graphs != "triplet":
        return sentence, None
    try:
        return sentence, triplet_graph(sentence, row["pos_triplet"])
    except GraphError as exc:
        raise GraphError(f"pos_triplet: {exc}") from None


def check_graphs(graphs: str) -> None:
    if graphs not in GRAPH_SOURCES:
        raise DatasetError(f"unknown graph source {graphs!r}; choose one of: {', '.join(GRAPH_SOURCES)}")


def csv_file(data: Path, names: Iterable[str], dataset: str) -> Path:
    """``data`` itself if it is a file, else the first of ``names`` inside it."""
    if data.is_file():
        return data
    for name in names:
        if (data / name).is_file():
            return data / name
    found = sorted(p.name for p in data.glob("*.csv"))
    raise DatasetError(f"{dataset}: {data} has no {' or '.join(names)}"
                       + (f" (CSV files found: {', '.join(found)})" if found else ""))


@dataclass
class CsvDataset:
    """A CSV benchmark opened and checked: its file, columns, rows and an image finder."""

    dataset: str
    path: Path
    columns: list[str]
    rows: list[dict[str, Any]]
    roots: list[Path]
    finder: ImageFolder

    def loaded(self, examples: list[Example], graphs: str) -> Loaded:
        if not examples:
            raise DatasetError(f"{self.dataset}: {self.path} has no rows")
        return Loaded(self.dataset, "pairs", unique_ids(examples), str(self.path), ", ".join(map(str, self.roots)),
                      notes=[f"graphs: {graphs}"])


def open_csv_dataset(dataset: str, data: str | Path, images: str | Path | None, *, names: Iterable[str],
                     required: Iterable[str], image_dirs: Iterable[str], graphs: str,
                     any_of: Iterable[tuple[str, ...]] = ()) -> CsvDataset:
    """The checks every CSV benchmark makes before reading a row: graph source, folder, CSV file
    (``data`` itself or one of ``names`` in it), columns, images folder(s)."""
    check_graphs(graphs)
    root = folder(data, dataset)
    path = csv_file(root, tuple(names), dataset)
    columns, rows = read_csv(path, dataset)
    check_columns(columns, required, path, dataset, any_of=any_of)
    roots = image_roots(root, images, image_dirs, dataset)
    return CsvDataset(dataset, path, columns, rows, roots, ImageFolder(roots))


def image_roots(data: Path, images: str | Path | None, defaults: Iterable[str], dataset: str) -> list[Path]:
    """``--images`` if given, else every one of ``defaults`` that exists beside the annotations."""
    if images:
        return [subfolder(Path(images).expanduser(), dataset, "images")]
    base = data if data.is_dir() else data.parent
    roots = [base / d for d in defaults if (base / d).is_dir()]
    if not roots:
        raise DatasetError(f"{dataset}: no images folder: expected {' or '.join(str(base / d) for d in defaults)} "
                           "(or pass --images DIR)")
    return roots
