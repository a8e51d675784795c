"""ComVG (the ComCLIP authors' Compositional Visual Genome): ``ComVG.csv`` + Visual Genome images.

Columns ``id, sentence, pos_triplet, neg_triplet, pos_image_id, neg_image_id, neg_value,
sentence_id``; images ``{image_id}.jpg`` in ``images/``, ``VG_100K/`` or ``VG_100K_2/``. An
example scores its sentence against the positive and the negative image (keys ``pos, neg``),
grouped by ``neg_value`` (subject / verb / object).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from comclip.errors import DatasetError, GraphError
from comclip.eval.datasets.common import (
    Example,
    ImageFolder,
    Loaded,
    Probe,
    check_columns,
    check_graphs,
    clean_id,
    csv_file,
    folder,
    id_names,
    image_roots,
    read_csv,
    row_problem,
    sentence_graph,
    unique_ids,
)

COLUMNS = ("id", "sentence", "pos_triplet", "neg_triplet", "pos_image_id", "neg_image_id", "neg_value", "sentence_id")
REQUIRED = ("sentence", "pos_triplet", "pos_image_id", "neg_image_id", "neg_value")


def _example(n: int, row: dict[str, Any], finder: ImageFolder, graphs: str) -> Example:
    ex_id = clean_id(row.get("id") or "") or f"row{n}"
    problem = row_problem(row, REQUIRED)
    if problem:
        return Example(ex_id, error=f"row {n}: {problem}")
    sentence = row["sentence"].strip()
    try:
        graph = sentence_graph(sentence, row["pos_triplet"], graphs)
    except GraphError as exc:
        return Example(ex_id, error=f"row {n}: {exc}")
    pos_id, neg_id = clean_id(row["pos_image_id"]), clean_id(row["neg_image_id"])
    return Example(
        ex_id,
        probes=[Probe(finder.find(id_names(pos_id), f"pos_image_id {pos_id}"), [sentence], [graph]),
                Probe(finder.find(id_names(neg_id), f"neg_image_id {neg_id}"), [sentence], [graph])],
        keys=("pos", "neg"),
        groups=(row["neg_value"].strip().lower(),),
        meta={k: row[k] for k in COLUMNS if k in row and row[k] is not None},
    )


def load_comvg(data: str | Path, images: str | Path | None = None, graphs: str = "triplet", **_: Any) -> Loaded:
    """``ComVG.csv`` + Visual Genome images ``{image_id}.jpg`` (``images/``, ``VG_100K/``, ``VG_100K_2/``)."""
    check_graphs(graphs)
    root = folder(data, "comvg")
    path = csv_file(root, ("ComVG.csv", "comvg.csv"), "comvg")
    columns, rows = read_csv(path, "comvg")
    check_columns(columns, REQUIRED, path, "comvg")
    roots = image_roots(root, images, ("images", "VG_100K", "VG_100K_2"), "comvg")
    finder = ImageFolder(roots)
    examples = [_example(n, row, finder, graphs) for n, row in enumerate(rows, 1)]
    if not examples:
        raise DatasetError(f"comvg: {path} has no rows")
    return Loaded("comvg", "pairs", unique_ids(examples), str(path), ", ".join(map(str, roots)),
                  notes=[f"graphs: {graphs}"])
