"""SVO-Probes (deepmind/svo_probes): ``svo_probes.csv`` + the images downloaded from its URLs.

Columns (as released): ``sentence, pos_triplet, neg_triplet, subj_neg, verb_neg, obj_neg,
pos_url, neg_url, pos_image_id, neg_image_id`` (pandas may add an unnamed index column). A
triplet cell may be a list literal (``"['dog,catch,frisbee']"``): it is read as such, and a cell
that cannot be read fails its example with the reason. An example scores the sentence against
the positive and the negative image (keys ``pos, neg``), grouped by the negative's type.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from comclip.errors import GraphError
from comclip.eval.datasets.common import (
    Example,
    ImageFolder,
    Loaded,
    Probe,
    clean_id,
    id_names,
    open_csv_dataset,
    row_problem,
    sentence_graph,
    url_name,
)

REQUIRED = ("sentence", "pos_triplet", "neg_triplet", "subj_neg", "verb_neg", "obj_neg")
IMAGES = (("pos_image_id", "pos_url"), ("neg_image_id", "neg_url"))
NEG_TYPES = (("subj_neg", "subject"), ("verb_neg", "verb"), ("obj_neg", "object"))
ID_COLUMNS = ("id", "index", "", "Unnamed: 0")
META = ("sentence", "pos_triplet", "neg_triplet", "pos_image_id", "neg_image_id", "pos_url", "neg_url")


def _truth(value: Any) -> bool | None:
    text = str(value).strip().lower()
    if text in ("true", "1", "1.0", "yes", "t"):
        return True
    if text in ("false", "0", "0.0", "no", "f", ""):
        return False
    return None


def _example(n: int, row: dict[str, Any], finder: ImageFolder, graphs: str, id_column: str | None) -> Example:
    ex_id = (clean_id(row.get(id_column) or "") if id_column is not None else "") or f"row{n}"
    problem = row_problem(row, ("sentence", "pos_triplet"))
    if problem:
        return Example(ex_id, error=f"row {n}: {problem}")
    flags = {name: _truth(row.get(col)) for col, name in NEG_TYPES}
    bad = [col for col, name in NEG_TYPES if flags[name] is None]
    if bad:
        return Example(ex_id, error=f"row {n}: {', '.join(bad)} is not True/False")
    neg_types = [name for name, on in flags.items() if on]
    if not neg_types:
        return Example(ex_id, error=f"row {n}: no negative type (subj_neg, verb_neg, obj_neg all false)")
    try:
        sentence, graph = sentence_graph(row, graphs)
    except GraphError as exc:
        return Example(ex_id, error=f"row {n}: {exc}")
    probes = []
    for side, (id_col, url_col) in zip(("pos", "neg"), IMAGES, strict=True):
        image_id = clean_id(row.get(id_col) or "")
        url = (row.get(url_col) or "").strip()
        names = id_names(image_id) + [url_name(url)]
        what = f"{side} image {image_id or url or '(no id, no url)'}"
        probes.append(Probe(finder.find(names, what), [sentence], [graph]))
    meta = {k: row[k] for k in META if row.get(k) is not None}
    return Example(ex_id, probes=probes, keys=("pos", "neg"), groups=("+".join(neg_types),),
                   meta=meta | {"neg_type": neg_types})


def load_svo(data: str | Path, images: str | Path | None = None, graphs: str = "triplet", **_: Any) -> Loaded:
    """The SVO-Probes CSV (``svo_probes.csv``, released column names) + an ``images/`` folder.

    Images are found by ``pos_image_id``/``neg_image_id`` (as a file name, or with an image
    extension) or else by the file name at the end of ``pos_url``/``neg_url``.
    """
    csv = open_csv_dataset("svo", data, images, names=("svo_probes.csv", "svo-probes.csv"), required=REQUIRED,
                           image_dirs=("images",), graphs=graphs, any_of=IMAGES)
    id_column = next((c for c in ID_COLUMNS if c in csv.columns), None)
    return csv.loaded([_example(n, row, csv.finder, graphs, id_column) for n, row in enumerate(csv.rows, 1)], graphs)
