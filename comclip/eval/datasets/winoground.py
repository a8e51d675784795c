"""Winoground (facebook/winoground on the Hugging Face hub), in each layout it ships in.

* **parquet** (the hub's current layout): ``data/test-00000-of-00001.parquet`` with the images
  embedded — columns ``id, image_0, image_1, caption_0, caption_1, tag, secondary_tag,
  num_main_preds, collapsed_tag``, each image a ``struct<bytes, path>``. Read with ``pyarrow``,
  one row group at a time, so the images are decoded only when scored.
* **examples.jsonl + images/** (the earlier layout): one JSON object per line, image names
  without extension, files ``images/{name}.png``.
* ``--data hf`` / ``hf:NAME``: through the optional ``datasets`` library (gated: accept the
  terms and log in first).

An example scores both captions against both images: keys ``c{caption}_i{image}``. Its ``meta``
(copied into ``examples.jsonl``) holds the two captions and the tags: ``caption_0, caption_1, tag,
secondary_tag, num_main_preds, collapsed_tag`` (runs made before the captions were added lack them).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image

from comclip.errors import DatasetError, InputError
from comclip.eval.datasets.common import (
    IMAGE_EXTENSIONS,
    Example,
    ImageSource,
    Loaded,
    MissingImage,
    Probe,
    folder,
    one_line,
    subfolder,
    unique_ids,
)
from comclip.images import load_image

KEYS_ORDER = ("c0_i0", "c1_i0", "c0_i1", "c1_i1")  # probe 0 = image 0, probe 1 = image 1
FIELDS = ("id", "caption_0", "caption_1", "image_0", "image_1")
META = ("caption_0", "caption_1", "tag", "secondary_tag", "num_main_preds", "collapsed_tag")
IMAGE_COLUMNS = ("image_0", "image_1")


def example(row: Any, where: str, image: Callable[[Any, str], ImageSource]) -> Example:
    """One Winoground row (a mapping with :data:`FIELDS`) → an example; a bad row fails alone."""
    if not isinstance(row, dict):
        return Example(where, error=f"{where} is not a JSON object")
    ex_id = str(row["id"]) if "id" in row and row["id"] is not None else where
    missing = [k for k in FIELDS if k not in row]
    if missing:
        return Example(ex_id, error=f"{where} lacks key(s) {', '.join(missing)}")
    for key in ("caption_0", "caption_1"):
        if not isinstance(row[key], str) or not row[key].strip():
            return Example(ex_id, error=f"{where}: {key} is empty or not text")
    captions = [row["caption_0"], row["caption_1"]]
    tag = row.get("collapsed_tag")
    return Example(
        ex_id,
        probes=[Probe(image(row["image_0"], "image_0"), captions), Probe(image(row["image_1"], "image_1"), captions)],
        keys=KEYS_ORDER,
        groups=(str(tag),) if isinstance(tag, str) and tag.strip() else (),
        meta={k: row[k] for k in META if k in row},
    )


def load_winoground(data: str | Path, images: str | Path | None = None, **_: Any) -> Loaded:
    """The parquet file(s) with embedded images, ``examples.jsonl`` + ``images/``, or ``hf[:NAME]``."""
    if str(data) == "hf" or str(data).startswith("hf:"):
        return _from_hub(str(data))
    root = folder(data, "winoground")
    if root.is_file() and root.suffix == ".parquet":
        return _from_parquet([root], images)
    if root.is_file():
        return _from_jsonl(root, images)
    for jsonl in (root / "examples.jsonl", root / "data" / "examples.jsonl"):
        if jsonl.is_file():
            return _from_jsonl(jsonl, images)
    for where in (root, root / "data"):
        parquets = sorted(where.glob("test-*.parquet")) or sorted(where.glob("*.parquet"))
        if parquets:
            return _from_parquet(parquets, images)
    raise DatasetError(f"winoground: {root} has neither data/test-*.parquet nor examples.jsonl (expected a "
                       "copy of facebook/winoground: its data/ folder, or examples.jsonl + images/)")


# -- examples.jsonl + images/ -------------------------------------------------------------------

def _from_jsonl(jsonl: Path, images: str | Path | None) -> Loaded:
    img_root = subfolder(Path(images).expanduser() if images else jsonl.parent / "images", "winoground", "images")
    try:
        lines = jsonl.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"winoground: cannot read {jsonl}: {one_line(exc)}") from None

    def image(name: Any, key: str) -> ImageSource:
        if not isinstance(name, str) or not name.strip():
            return MissingImage(f"{key} is not an image name")
        return img_root / (name if Path(name).suffix.lower() in IMAGE_EXTENSIONS else f"{name}.png")

    examples = [_line(n, line, image) for n, line in enumerate(lines, 1) if line.strip()]
    if not examples:
        raise DatasetError(f"winoground: {jsonl} is empty")
    if all(ex.error for ex in examples):
        raise DatasetError(f"winoground: {jsonl} does not look like Winoground's examples.jsonl: no line has "
                           f"the keys {', '.join(FIELDS)} ({examples[0].error})")
    return Loaded("winoground", "winoground", unique_ids(examples), str(jsonl), str(img_root))


def _line(n: int, line: str, image: Callable[[Any, str], ImageSource]) -> Example:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        return Example(f"line{n}", error=f"line {n} is not valid JSON: {one_line(exc)}")
    return example(row, f"line {n}", image)


# -- parquet with embedded images ---------------------------------------------------------------

class ParquetImages:
    """Images embedded in parquet files, read one row group at a time (the last one cached)."""

    def __init__(self, files: list[Path], images: Path | None) -> None:
        import pyarrow.parquet as pq

        self.files = [pq.ParquetFile(f) for f in files]
        self.paths = files
        self.images = images
        #: global row → (file, row group, row within the group)
        self.where: list[tuple[int, int, int]] = []
        for f, pf in enumerate(self.files):
            for g in range(pf.num_row_groups):
                self.where += [(f, g, r) for r in range(pf.metadata.row_group(g).num_rows)]
        self._cached: tuple[tuple[int, int], dict[str, list[Any]]] | None = None

    def source(self, row: int, column: str) -> Callable[[], Image.Image]:
        """The decoded image, loaded when called; problems name the row and column."""
        def load() -> Image.Image:
            try:
                return load_image(self.read(row, column)).image
            except InputError as exc:
                raise InputError(f"{column} of row {row}: {exc}") from None
        return load

    def read(self, row: int, column: str) -> bytes | Path:
        f, g, r = self.where[row]
        if self._cached is None or self._cached[0] != (f, g):
            table = self.files[f].read_row_group(g, columns=list(IMAGE_COLUMNS))
            self._cached = ((f, g), {c: table.column(c).to_pylist() for c in IMAGE_COLUMNS})
        cell = self._cached[1][column][r]
        if isinstance(cell, dict) and cell.get("bytes"):
            return cell["bytes"]
        name = cell.get("path") if isinstance(cell, dict) else None
        if isinstance(name, str) and name and self.images is not None and (self.images / name).is_file():
            return self.images / name
        raise InputError(f"{column} of row {row} in {self.paths[f].name} has no embedded image"
                         + (f" and {name} is not in {self.images}" if name and self.images else ""))


def _from_parquet(files: list[Path], images: str | Path | None) -> Loaded:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise DatasetError("winoground: reading the parquet layout needs pyarrow (pip install pyarrow)") from None
    img_root = subfolder(Path(images).expanduser(), "winoground", "images") if images else None
    rows: list[dict[str, Any]] = []
    try:
        for f in files:
            pf = pq.ParquetFile(f)
            columns = pf.schema_arrow.names
            missing = [c for c in FIELDS if c not in columns]
            if missing:
                raise DatasetError(f"winoground: {f} lacks column(s) {', '.join(missing)}; columns found: "
                                   f"{', '.join(columns) or 'none'}")
            text = [c for c in columns if c not in IMAGE_COLUMNS]
            rows += pf.read(columns=text).to_pylist()
        source = ParquetImages(files, img_root)
    except (OSError, ValueError) as exc:  # pyarrow's errors (ArrowInvalid is a ValueError)
        raise DatasetError(f"winoground: cannot read {files[0]}: {one_line(exc)}") from None
    if not rows:
        raise DatasetError(f"winoground: {files[0]} has no rows")
    examples = []
    for i, row in enumerate(rows):
        def image(_cell: Any, key: str, i: int = i) -> ImageSource:
            return source.source(i, key)
        examples.append(example(row | {k: k for k in IMAGE_COLUMNS}, f"row {i}", image))
    return Loaded("winoground", "winoground", unique_ids(examples), ", ".join(map(str, files)),
                  "embedded in the parquet file" if img_root is None else str(img_root))


# -- the datasets library -----------------------------------------------------------------------

def _from_hub(spec: str) -> Loaded:
    name = spec.split(":", 1)[1] if ":" in spec else "facebook/winoground"
    try:
        import datasets  # type: ignore[import-not-found]
    except ImportError:
        raise DatasetError("--data hf needs the `datasets` library (pip install datasets) and access to the gated "
                           f"{name} dataset (accept its terms, then `huggingface-cli login`); or download its "
                           "data/ folder and pass it") from None
    try:
        ds = datasets.load_dataset(name, split="test")
    except Exception as exc:  # noqa: BLE001 — any loading problem is one clear user-facing error
        raise DatasetError(f"cannot load {name} with the datasets library ({type(exc).__name__}: "
                           f"{one_line(exc)}); accept the dataset's terms and `huggingface-cli login`, "
                           "or pass the data folder") from None
    text_columns = [c for c in ds.column_names if c not in IMAGE_COLUMNS]
    rows = ds.select_columns(text_columns).to_list()
    examples = []
    for i, row in enumerate(rows):
        def image(_name: Any, key: str, i: int = i) -> ImageSource:
            return lambda: ds[i][key]
        # the images stay in the dataset, decoded only when scored
        examples.append(example(row | {k: k for k in IMAGE_COLUMNS}, f"row {i}", image))
    return Loaded("winoground", "winoground", unique_ids(examples), f"datasets:{name}", None)
