"""ComVG (the ComCLIP authors' Compositional Visual Genome): ``ComVG.csv`` + Visual Genome images.

Columns ``id, sentence, pos_triplet, neg_triplet, pos_image_id, neg_image_id, neg_value,
sentence_id``; images ``{image_id}.jpg`` in ``images/``, ``VG_100K/`` or ``VG_100K_2/``. An
example scores its sentence against the positive and the negative image (keys ``pos, neg``),
grouped by ``neg_value`` (subject / verb / object).
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
)

COLUMNS = ("id", "sentence", "pos_triplet", "neg_triplet", "pos_image_id", "neg_image_id", "neg_value", "sentence_id")
REQUIRED = ("sentence", "pos_triplet", "pos_image_id", "neg_image_id", "neg_value")


def _example(n: int, row: dict[str, Any], finder: ImageFolder, graphs: str) -> Example:
    ex_id = clean_id(row.get("id") or "") or f"row{n}"
    problem = row_problem(row, REQUIRED)
    if problem:
        return Example(ex_id, error=f"row {n}: {problem}")
    try:
        sentence, graph = sentence_graph(row, graphs)
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
    csv = open_csv_dataset("comvg", data, images, names=("ComVG.csv", "comvg.csv"), required=REQUIRED,
                           image_dirs=("images", "VG_100K", "VG_100K_2"), graphs=graphs)
    return csv.loaded([_example(n, row, csv.finder, graphs) for n, row in enumerate(csv.rows, 1)], graphs)
