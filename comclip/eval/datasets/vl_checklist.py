"""VL-CheckList (om-ai-lab/VL-CheckList), read the way its own evaluation reads it.

A checkout of the repository holds the annotations in ``data/**.json`` (entries
``[image_path, {"POS": [...], "NEG": [...]}]``) and, for each annotation file, a
``corpus/v1/<Type>/<subtype...>/<corpus>.yaml`` with ``ANNO_PATH`` (the JSON, relative to the
checkout) and ``IMG_ROOT`` (``vg/``, ``hake/`` or ``swig/``, relative to the ``$DATASET`` folder of
its DATASETS.md). Image paths in the JSON are relative to that file's ``IMG_ROOT``.

Protocol as VL-CheckList's ``itc`` evaluation: per entry, the first positive caption against the
first negative one (``pairs="all"`` scores every POS/NEG pair instead); ``max_num`` keeps the
first N entries of each annotation file (its ``MAX_NUM`` config; its itc task takes MAX_NUM/2).
Results are reported per annotation file, then per subtype (the yaml's folder, e.g.
``Object/Location/center``: the mean over image sources of the mean over their files, as its
``corpus.json`` + ``radar.py`` do), then up the folder tree to each type (Attribute, Object,
Relation) as the mean of its children. Unlike VL-CheckList, an entry whose image is missing is
not dropped silently: it fails with the reason and is counted.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from comclip.errors import DatasetError
from comclip.eval.datasets.common import Example, Loaded, Probe, folder, one_line, subfolder, unique_ids

TYPES = ("Attribute", "Object", "Relation")
PAIRS = ("first", "all")
CORPUS = Path("corpus") / "v1"


def read_yaml(path: Path, checkout: Path) -> tuple[Path, str]:
    """``(annotation file, IMG_ROOT)`` of one corpus yaml; :class:`DatasetError` if unusable."""
    import yaml

    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise DatasetError(f"vl-checklist: cannot read {path}: {one_line(exc)}") from None
    if not isinstance(doc, dict):
        raise DatasetError(f"vl-checklist: {path} is not a mapping with ANNO_PATH and IMG_ROOT")
    missing = [k for k in ("ANNO_PATH", "IMG_ROOT") if not isinstance(doc.get(k), str) or not doc[k].strip()]
    if missing:
        raise DatasetError(f"vl-checklist: {path} has no {' or '.join(missing)}")
    anno = Path(doc["ANNO_PATH"].strip())
    return (anno if anno.is_absolute() else checkout / anno), doc["IMG_ROOT"].strip()


def load_vl_checklist(data: str | Path, images: str | Path | None = None, *, pairs: str = "first",
                      max_num: int | None = None, **_: Any) -> Loaded:
    """``data``: a VL-CheckList checkout (``corpus/v1/``, ``data/``); ``images``: its ``$DATASET``
    folder holding ``vg/``, ``hake/``, ``swig/`` (default: the checkout itself)."""
    if pairs not in PAIRS:
        raise DatasetError(f"unknown pairing {pairs!r}; choose one of: {', '.join(PAIRS)}")
    if max_num is not None and (not isinstance(max_num, int) or max_num < 1):
        raise DatasetError(f"--max-num must be a whole number >= 1, got {max_num}")
    checkout = folder(data, "vl-checklist")
    corpus = checkout / CORPUS
    if not corpus.is_dir():
        raise DatasetError(f"vl-checklist: {checkout} has no {CORPUS}/ folder (expected a checkout of "
                           "om-ai-lab/VL-CheckList: corpus/v1/**.yaml + data/**.json)")
    dataset = subfolder(Path(images).expanduser() if images else checkout, "vl-checklist", "images ($DATASET)")
    yamls = sorted(p for p in corpus.rglob("*.yaml") if p.relative_to(corpus).parts[0] in TYPES)
    if not yamls:
        raise DatasetError(f"vl-checklist: no <Type>/**/<corpus>.yaml under {corpus} for the types "
                           f"{', '.join(TYPES)}")
    plans = [(y.relative_to(corpus).with_suffix("").as_posix(), *read_yaml(y, checkout)) for y in yamls]
    roots = {root.rstrip("/"): (dataset / root).is_dir() for _, _, root in plans}
    if not any(roots.values()):
        raise DatasetError(f"vl-checklist: none of the image roots {', '.join(sorted(roots))} is in {dataset}; "
                           "pass --images $DATASET (the folder holding vg/, hake/, swig/; see docs/datasets.md)")
    examples: list[Example] = []
    for label, anno, root in plans:
        entries = _entries(anno, label)
        if max_num is not None:
            entries = entries[:max_num]
        img_root = dataset / root
        missing_root = None if roots[root.rstrip("/")] else (f"image root {img_root} not found (IMG_ROOT {root!r} of "
                                                 f"{CORPUS}/{label}.yaml); pass --images $DATASET")
        for idx, entry in enumerate(entries):
            examples += _examples(f"{label}#{idx}", entry, label, img_root, pairs, missing_root)
    if not examples:
        raise DatasetError(f"vl-checklist: the annotation files named in {corpus} have no entries")
    notes = [f"pairs: {pairs} ({'first POS vs first NEG per entry' if pairs == 'first' else 'every POS/NEG pair'})"]
    if max_num is not None:
        notes.append(f"max-num: first {max_num} entries per annotation file")
    missing = sorted(r for r, ok in roots.items() if not ok)
    if missing:
        notes.append(f"image roots not found in {dataset}: {', '.join(missing)} (their entries fail)")
    return Loaded("vl-checklist", "vl-checklist", unique_ids(examples), str(checkout), str(dataset), notes=notes)


def _entries(anno: Path, label: str) -> list[Any]:
    try:
        entries = json.loads(anno.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DatasetError(f"vl-checklist: annotation file {anno} (ANNO_PATH of {CORPUS}/{label}.yaml) "
                           "not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DatasetError(f"vl-checklist: cannot read annotation file {anno}: {one_line(exc)}") from None
    if not isinstance(entries, list):
        raise DatasetError(f"vl-checklist: {anno} is not a JSON list of [image, {{POS, NEG}}] entries")
    return entries


def _pairs(pos: list[str], neg: list[str], how: str) -> list[tuple[str, str]] | None:
    if how == "first":
        return [(pos[0], neg[0])]
    if len(pos) == len(neg):
        return list(zip(pos, neg, strict=True))
    if len(pos) == 1:
        return [(pos[0], n) for n in neg]
    if len(neg) == 1:
        return [(p, neg[0]) for p in pos]
    return None


def _examples(ex_id: str, entry: Any, label: str, img_root: Path, how: str, missing_root: str | None
              ) -> list[Example]:
    """One annotation entry → its example(s), or one failed example with the reason."""
    groups = (label,)
    problem = _problem(entry) or missing_root
    if problem:
        return [Example(ex_id, groups=groups, error=f"{ex_id}: {problem}")]
    image_path, texts = entry
    pairs = _pairs(texts["POS"], texts["NEG"], how)
    if pairs is None:
        n_pos, n_neg = len(texts["POS"]), len(texts["NEG"])
        return [Example(ex_id, groups=groups, error=f"{ex_id}: {n_pos} POS and {n_neg} NEG captions cannot be paired")]
    source = img_root / image_path
    return [Example(ex_id if len(pairs) == 1 else f"{ex_id}.{j}", probes=[Probe(source, [pos, neg])],
                    keys=("pos", "neg"), groups=groups, meta={"image": image_path, "pos": pos, "neg": neg})
            for j, (pos, neg) in enumerate(pairs)]


def _problem(entry: Any) -> str | None:
    if not (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], str) and isinstance(entry[1], dict)):
        return "entry is not [image_path, {POS: [...], NEG: [...]}]"
    if not entry[0].strip() or Path(entry[0]).is_absolute() or ".." in Path(entry[0]).parts:
        return f"image path {entry[0]!r} is not a path under IMG_ROOT"
    for key in ("POS", "NEG"):
        texts = entry[1].get(key)
        if not isinstance(texts, list) or not texts:
            return f"no {key} captions"
        if not all(isinstance(t, str) and t.strip() for t in texts):
            return f"a {key} caption is empty or not text"
    return None


# -- VL-CheckList's aggregation -------------------------------------------------------------------

def source_of(label: str) -> str:
    """The image source of an annotation file label: ``Object/Size/large/vg_subj`` → ``vg``."""
    return label.rsplit("/", 1)[-1].split("_", 1)[0]


def aggregate(files: Mapping[str, float | None]) -> dict[str, float | None]:
    """Subtype and type scores from per-file scores (labels ``<Type>/<subtype...>/<corpus>``).

    A subtype (the yaml's folder) is the mean over its image sources of the mean over their files
    (VL-CheckList's ``corpus.json`` + ``radar.py``); every folder above is the mean of its
    children, up to the type. Files with no score (nothing scored) are left out; a node with no
    scored file is ``None``.
    """
    by_subtype: dict[str, dict[str, list[float]]] = {}
    for label, value in files.items():
        subtype = label.rsplit("/", 1)[0]
        by_subtype.setdefault(subtype, {}).setdefault(source_of(label), [])
        if value is not None:
            by_subtype[subtype][source_of(label)].append(value)
    scores: dict[str, float | None] = {}
    for subtype, sources in by_subtype.items():
        means = [sum(v) / len(v) for v in sources.values() if v]
        scores[subtype] = sum(means) / len(means) if means else None
    children: dict[str, set[str]] = {}
    for subtype in by_subtype:
        parts = subtype.split("/")
        for depth in range(1, len(parts)):
            children.setdefault("/".join(parts[:depth]), set()).add("/".join(parts[:depth + 1]))
    for node in sorted(children, key=lambda n: -n.count("/")):  # deepest first
        values = [scores[c] for c in sorted(children[node]) if scores.get(c) is not None]
        scores[node] = sum(values) / len(values) if values else None  # type: ignore[arg-type]
    return dict(sorted(scores.items(), key=lambda kv: (kv[0].count("/"), kv[0])))
