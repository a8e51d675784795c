"""Text → image retrieval on Flickr30k and COCO (Karpathy split): CLIP ranks, ComCLIP re-ranks.

Protocol, stated plainly because it is not the pairwise one:

* the gallery is every image of the chosen split (``test``: 1000 Flickr30k / 5000 COCO images);
  each caption of those images is one query, and its target is the image it describes;
* **CLIP** ranks the whole gallery by ``cos(t, f_img(I))`` — the same frozen encoder the engine
  uses, called directly: one pass over the gallery (cached in ``OUT/gallery/``), one over the
  captions;
* **ComCLIP** re-ranks only CLIP's top-k (default 10) by the engine's ComCLIP score
  (``match_batch``: each candidate image with all the batch's captions that retrieved it). A
  target outside CLIP's top-k keeps its CLIP rank, so with k = 10, ComCLIP's R@10 equals CLIP's
  by construction; R@1 and R@5 are where re-ranking shows;
* ranks are pessimistic (ties count against the target); Recall@K is the fraction of queries
  ranked at K or better.

A gallery image that cannot be read is left out of the gallery and reported; the captions of
that image fail with the reason. A caption whose candidate image fails in the engine fails too.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from comclip.errors import ComCLIPError, DatasetError
from comclip.eval import metrics
from comclip.eval.batching import match_or_reason
from comclip.images import LoadedImage, load_image

#: dataset → (annotation file, image folders tried under --data, in order)
RETRIEVAL_DATASETS: dict[str, tuple[str, tuple[str, ...]]] = {
    "flickr30k": ("dataset_flickr30k.json", ("flickr30k-images", "images", "")),
    "coco": ("dataset_coco.json", ("images", "")),
}
GALLERY_CHUNK = 256
TEXT_CHUNK = 256


@dataclass
class Query:
    id: str
    caption: str
    target: int  # index into the gallery; -1 when the row is unreadable
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
    notes: list[str] = field(default_factory=list)
    kind: str = "retrieval"


def _one_line(text: object, limit: int = 200) -> str:
    return " ".join(str(text).split())[:limit]


def load_retrieval(dataset: str, data: str | Path, images: str | Path | None = None, *,
                   split: str = "test") -> RetrievalSet:
    """Karpathy-split JSON (``dataset_flickr30k.json`` / ``dataset_coco.json``) + its images."""
    ann_name, image_dirs = RETRIEVAL_DATASETS[dataset]
    folder = Path(data).expanduser()
    if not folder.exists():
        raise DatasetError(f"{dataset} data folder not found: {folder}")
    ann = folder if folder.is_file() else folder / ann_name
    if not ann.is_file():
        raise DatasetError(f"{dataset}: {folder} has no {ann_name} (the Karpathy split annotation file)")
    base = ann.parent
    try:
        doc = json.loads(ann.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DatasetError(f"{dataset}: cannot read {ann}: {_one_line(exc)}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("images"), list):
        raise DatasetError(f"{dataset}: {ann} is not a Karpathy split file (no 'images' list)")
    if images:
        root = Path(images).expanduser()
        if not root.is_dir():
            raise DatasetError(f"{dataset}: images folder not found: {root}")
    else:
        root = next(base / d for d in image_dirs if (base / d).is_dir())

    names: list[str] = []
    paths: list[Path] = []
    queries: list[Query] = []
    splits: set[str] = set()
    dir_ok: dict[str, bool] = {}
    for i, entry in enumerate(doc["images"]):
        if not isinstance(entry, dict):
            queries.append(Query(f"image{i}", "", -1, f"images[{i}] is not an object"))
            continue  # recorded as a failed query
        splits.add(str(entry.get("split")))
        if entry.get("split") != split:
            continue  # another split: not part of this evaluation
        filename, filepath = entry.get("filename"), entry.get("filepath") or ""
        sentences = entry.get("sentences")
        if not isinstance(filename, str) or not filename.strip() or not isinstance(filepath, str):
            queries.append(Query(f"image{i}", "", -1, f"images[{i}] has no filename"))
            continue  # recorded as a failed query
        if not isinstance(sentences, list):
            queries.append(Query(f"image{i}", "", -1, f"images[{i}] ({filename}) has no 'sentences' list"))
            continue  # recorded as a failed query
        if filepath not in dir_ok:
            dir_ok[filepath] = bool(filepath) and (root / filepath).is_dir()
        target = len(names)
        names.append(f"{filepath}/{filename}" if filepath else filename)
        paths.append(root / filepath / filename if dir_ok[filepath] else root / filename)
        for j, s in enumerate(sentences):
            queries.append(_query(s, i, j, target, filename))
    if not names:
        raise DatasetError(f"{dataset}: {ann} has no images in split {split!r} "
                           f"(splits found: {', '.join(sorted(splits)) or 'none'})")
    return RetrievalSet(dataset, str(ann), str(root), split, names, paths, queries, notes=[f"split: {split}"])


def _query(s: Any, i: int, j: int, target: int, filename: str) -> Query:
    sid = s.get("sentid") if isinstance(s, dict) else None
    qid = f"s{sid}" if isinstance(sid, int) else f"{i}.{j}"
    if not isinstance(s, dict):
        return Query(qid, "", target, f"sentence {j} of {filename} is not an object")
    raw = s.get("raw")
    text = raw if isinstance(raw, str) and raw.strip() else " ".join(t for t in s.get("tokens") or []
                                                                       if isinstance(t, str))
    if not text.strip():
        return Query(qid, "", target, f"sentence {j} of {filename} is empty")
    return Query(qid, " ".join(text.split()), target)


# -- the gallery --------------------------------------------------------------------------------

@dataclass
class Gallery:
    embeddings: torch.Tensor  # (n_ok, D), the readable images only
    index: np.ndarray  # gallery position of each embedding row
    failures: dict[int, str]  # gallery position → why it could not be read


def encode_gallery(engine: Any, rs: RetrievalSet, cache: Path, progress: bool) -> Gallery:
    """CLIP embeddings of every gallery image, in chunks cached under ``cache`` (resumable)."""
    cache.mkdir(parents=True, exist_ok=True)
    embs: list[np.ndarray] = []
    index: list[int] = []
    failures: dict[int, str] = {}
    n = len(rs.names)
    bar = tqdm(total=n, unit="img", desc="encoding gallery", file=sys.stderr, disable=not progress,
               dynamic_ncols=True, mininterval=0.5)
    with bar:
        for start in range(0, n, GALLERY_CHUNK):
            names = rs.names[start:start + GALLERY_CHUNK]
            path = cache / f"chunk_{start:07d}.npz"
            chunk = _read_chunk(path, names)
            if chunk is None:
                chunk = _encode_chunk(engine, rs.paths[start:start + GALLERY_CHUNK], names)
                tmp = path.with_name(path.stem + ".tmp.npz")
                np.savez(tmp, **chunk)
                tmp.replace(path)
            ok = chunk["ok"]
            embs.append(chunk["emb"])
            index.extend(int(start + k) for k in np.flatnonzero(ok))
            failures.update({start + k: str(chunk["reasons"][k]) for k in np.flatnonzero(~ok)})
            bar.update(len(names))
    dim = next((e.shape[1] for e in embs if e.ndim == 2 and e.shape[0]), 1)
    emb = np.concatenate([e.reshape(-1, dim) for e in embs]) if embs else np.zeros((0, dim), np.float32)
    return Gallery(torch.from_numpy(emb.astype(np.float32)), np.asarray(index, dtype=np.int64), failures)


def _read_chunk(path: Path, names: list[str]) -> dict[str, np.ndarray] | None:
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            chunk = {k: z[k] for k in ("names", "ok", "reasons", "emb")}
    except (OSError, ValueError, KeyError):
        return None  # unreadable cache: encode again
    if [str(x) for x in chunk["names"]] != names:
        return None
    return chunk


def _encode_chunk(engine: Any, paths: list[Path], names: list[str]) -> dict[str, np.ndarray]:
    loaded: list[LoadedImage] = []
    ok = np.zeros(len(paths), dtype=bool)
    reasons = [""] * len(paths)
    for k, p in enumerate(paths):
        try:
            loaded.append(load_image(p))
        except ComCLIPError as exc:
            reasons[k] = " ".join(str(exc).split())
        else:
            ok[k] = True
    if loaded:
        emb = engine.encoder.encode_images([li.image for li in loaded]).float().cpu().numpy()
    else:
        emb = np.zeros((0, 0), dtype=np.float32)
    return {"names": np.asarray(names), "ok": ok, "reasons": np.asarray(reasons), "emb": emb.astype(np.float32)}


# -- running ------------------------------------------------------------------------------------

def is_done(record: dict[str, Any] | None, retry_failed: bool = False) -> bool:
    if record is None:
        return False
    if record.get("status") == "failed":
        return not retry_failed
    return all(isinstance(record.get(m), dict) and isinstance(record[m].get("rank"), int) for m in ("clip", "comclip"))


def run_retrieval(engine: Any, rs: RetrievalSet, store: Any, *, limit: int | None, batch_size: int, topk: int,
                  retry_failed: bool, progress: bool) -> dict[str, Any]:
    selection = rs.queries[:limit] if limit else rs.queries
    todo = [q for q in selection if not is_done(store.records.get(q.id), retry_failed)]
    gallery_cache = store.out / "gallery"
    gallery = encode_gallery(engine, rs, gallery_cache, progress) if todo else None
    if todo:
        assert gallery is not None
        bar = tqdm(total=len(selection), initial=len(selection) - len(todo), unit="query", desc="ranking",
                   file=sys.stderr, disable=not progress, dynamic_ncols=True, mininterval=0.5)
        with bar:
            for start in range(0, len(todo), batch_size):
                batch = todo[start:start + batch_size]
                store.append(_score_queries(engine, rs, gallery, batch, topk))
                bar.update(len(batch))
    else:
        gallery = _gallery_failures_only(rs, gallery_cache)
    return summarise(rs, selection, store.records, gallery.failures, topk)


def _gallery_failures_only(rs: RetrievalSet, cache: Path) -> Gallery:
    failures: dict[int, str] = {}
    for start in range(0, len(rs.names), GALLERY_CHUNK):
        chunk = _read_chunk(cache / f"chunk_{start:07d}.npz", rs.names[start:start + GALLERY_CHUNK])
        if chunk is not None:
            failures.update({start + k: str(chunk["reasons"][k]) for k in np.flatnonzero(~chunk["ok"])})
    return Gallery(torch.zeros(0, 1), np.zeros(0, dtype=np.int64), failures)


def _failed(q: Query, reason: str) -> dict[str, Any]:
    return {"id": q.id, "status": "failed", "reason": " ".join(reason.split()), "caption": q.caption}


def _score_queries(engine: Any, rs: RetrievalSet, gallery: Gallery, batch: Sequence[Query], topk: int
                   ) -> list[dict[str, Any]]:
    records: dict[str, dict[str, Any]] = {}
    live = [q for q in batch if q.error is None and q.target not in gallery.failures]
    for q in batch:
        if q.error is not None:
            records[q.id] = _failed(q, q.error)
        elif q.target in gallery.failures:
            records[q.id] = _failed(q, f"its image {rs.names[q.target]} could not be read: "
                                       f"{gallery.failures[q.target]}")
    first: dict[str, dict[str, Any]] = {}
    if live:
        with torch.inference_mode():
            t = torch.cat([engine.encoder.encode_texts([q.caption for q in live[i:i + TEXT_CHUNK]]).float().cpu()
                           for i in range(0, len(live), TEXT_CHUNK)])
            sims = (t @ gallery.embeddings.T).numpy()
        position = {int(g): row for row, g in enumerate(gallery.index)}
        for q, row in zip(live, sims, strict=True):
            target_row = position[q.target]
            rank = int(np.count_nonzero(row >= row[target_row]))  # = metrics.rank_of: ties count against
            order = np.lexsort((np.arange(len(row)), -row))[:topk]  # by score, ties by position
            first[q.id] = {"rank": rank, "top": [int(gallery.index[r]) for r in order],
                           "scores": [float(row[r]) for r in order]}

    # ComCLIP: each candidate image once, with every caption of the batch that retrieved it.
    wanted: dict[int, list[Query]] = {}
    for q in live:
        for g in first[q.id]["top"]:
            wanted.setdefault(g, []).append(q)
    comclip: dict[tuple[str, int], float] = {}
    image_failures: dict[int, str] = {}
    items, keys = [], []
    for g, qs in wanted.items():
        try:
            image = load_image(rs.paths[g])
        except ComCLIPError as exc:
            image_failures[g] = str(exc)
        else:
            items.append((image, [q.caption for q in qs]))
            keys.append((g, qs))
    results = match_or_reason(engine, items) if items else []
    if not isinstance(results, list):  # refused as a batch: find the failing image(s)
        results = []
        for item, (g, _) in zip(items, keys, strict=True):
            one = match_or_reason(engine, [item])
            if isinstance(one, list):
                results.append(one[0])
            else:
                image_failures[g] = one
                results.append(None)
    for res, (g, qs) in zip(results, keys, strict=True):
        if res is not None:
            for q, c in zip(qs, res.captions, strict=True):
                comclip[(q.id, g)] = c.comclip_score

    for q in live:
        f = first[q.id]
        bad = [g for g in f["top"] if g in image_failures]
        if bad:
            records[q.id] = _failed(q, f"candidate image {rs.names[bad[0]]} failed: {image_failures[bad[0]]}")
            continue  # recorded as failed above
        scores = [comclip[(q.id, g)] for g in f["top"]]
        reranked = metrics.rerank(f["top"], scores)
        records[q.id] = {
            "id": q.id, "status": "ok", "caption": q.caption, "image": rs.names[q.target],
            "clip": {"rank": f["rank"], "top": [rs.names[g] for g in f["top"]], "scores": f["scores"]},
            "comclip": {"rank": metrics.reranked_rank(f["top"], scores, q.target, f["rank"]),
                        "top": [rs.names[g] for g in reranked], "scores": sorted(scores, reverse=True)},
        }
    return [records[q.id] for q in batch]


def summarise(rs: RetrievalSet, selection: Sequence[Query], records: dict[str, dict[str, Any]],
              gallery_failures: dict[int, str], topk: int) -> dict[str, Any]:
    ok = [records[q.id] for q in selection if is_done(records.get(q.id)) and records[q.id]["status"] == "ok"]
    failures = [{"id": q.id, "reason": records[q.id].get("reason", "")} if q.id in records
                else {"id": q.id, "reason": "not computed"} for q in selection
                if q.id not in records or records[q.id]["status"] != "ok"]
    ks = metrics.RECALL_KS
    return {
        "n_total": len(selection), "n_scored": len(ok), "n_failed": len(failures), "failures": failures,
        "metrics": {m: metrics.recall_at([r[m]["rank"] for r in ok], ks) for m in ("clip", "comclip")},
        "counts": {f"R@{k}": {"n_scored": len(ok), "n_failed": len(failures)} for k in ks},
        "gallery": {"split": rs.split, "n_images": len(rs.names), "n_failed": len(gallery_failures),
                    "failures": [{"image": rs.names[g], "reason": r} for g, r in sorted(gallery_failures.items())]},
        "topk": topk,
    }
