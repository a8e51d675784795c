"""Retrieval on Flickr30K and COCO: CLIP ranks, ComCLIP re-ranks CLIP's top-k.

The data and the protocols (``karpathy``: every caption, both directions, R@1/5/10;
``comclip``: the paper's one caption per image, text→image, R@1/5) are described in
:mod:`comclip.eval.datasets.karpathy`. Here, for every query:

* **CLIP** ranks the whole gallery with the engine's own frozen encoder, called directly —
  text→image: the split's images by ``cos(t, f_img(I))`` (one pass over the images, cached in
  ``OUT/gallery/``); image→text: all the split's captions;
* **ComCLIP** re-ranks only CLIP's top-k (default 10) by the engine's ComCLIP score
  (``match_batch``). A target outside CLIP's top-k keeps its CLIP rank, so with k = 10
  ComCLIP's R@10 equals CLIP's by construction; R@1 and R@5 are where re-ranking shows;
* ranks are pessimistic (ties count against the target); image→text ranks the best of the
  image's captions; Recall@K is the fraction of queries ranked at K or better.

A gallery image that cannot be read is left out of the gallery and reported; its queries fail
with the reason. A query whose candidate fails in the engine fails too.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from tqdm import tqdm

from comclip.encoders import similarity
from comclip.errors import ComCLIPError
from comclip.eval import metrics
from comclip.eval.batching import match_or_reason
from comclip.eval.datasets.karpathy import DATASETS as RETRIEVAL_DATASETS
from comclip.eval.datasets.karpathy import Query, RetrievalSet, load_retrieval
from comclip.eval.store import has_ranks
from comclip.images import LoadedImage, load_image

if TYPE_CHECKING:
    from comclip.engine import ComCLIP

__all__ = ["RETRIEVAL_DATASETS", "RetrievalSet", "encode_gallery", "load_retrieval", "run_retrieval", "summarise"]

GALLERY_CHUNK = 256
TEXT_CHUNK = 256


# -- the galleries ------------------------------------------------------------------------------

@dataclass
class Gallery:
    embeddings: torch.Tensor  # (n_ok, D) or (n_ok, Q, D_q), the readable images only
    index: np.ndarray  # gallery position of each embedding row
    failures: dict[int, str]  # gallery position → why it could not be read

    def position(self) -> dict[int, int]:
        return {int(g): row for row, g in enumerate(self.index)}


def encode_gallery(engine: ComCLIP, rs: RetrievalSet, cache: Path, progress: bool,
                   mine: Callable[[int], bool] | None = None) -> Gallery:
    """CLIP embeddings of every gallery image, in chunks cached under ``cache`` (resumable).

    ``mine``: encode only the chunks it accepts (by chunk number) — a process's share when
    several processes fill one cache; the returned gallery then holds only those. A chunk records
    the image preprocessing it was encoded with (``Options.resize``) and is encoded again if that
    differs from the engine's.
    """
    resize = engine.options.resize
    cache.mkdir(parents=True, exist_ok=True)
    embs: list[np.ndarray] = []
    index: list[int] = []
    failures: dict[int, str] = {}
    n = len(rs.names)
    bar = tqdm(total=n, unit="img", desc="encoding gallery", file=sys.stderr, disable=not progress,
               dynamic_ncols=True, mininterval=0.5)
    with bar:
        for number, start in enumerate(range(0, n, GALLERY_CHUNK)):
            names = rs.names[start:start + GALLERY_CHUNK]
            if mine is not None and not mine(number):
                continue  # another process encodes this chunk
            path = cache / f"chunk_{start:07d}.npz"
            chunk = _read_chunk(path, names, resize)
            if chunk is None:
                chunk = _encode_chunk(engine, rs.paths[start:start + GALLERY_CHUNK], names, resize)
                tmp = path.with_name(f"{path.stem}.{id(chunk)}.tmp.npz")
                np.savez(tmp, **chunk)
                tmp.replace(path)
            ok = chunk["ok"]
            embs.append(chunk["emb"])
            index.extend(int(start + k) for k in np.flatnonzero(ok))
            failures.update({start + k: str(chunk["reasons"][k]) for k in np.flatnonzero(~ok)})
            bar.update(len(names))
    # A row is (D,) or, for a multi-query encoder (BLIP-2), (Q, D_q); a chunk with no readable image is empty.
    row_shape = next((e.shape[1:] for e in embs if e.ndim >= 2 and e.shape[0]), (1,))
    emb = (np.concatenate([e.reshape(-1, *row_shape) for e in embs]) if embs
           else np.zeros((0, *row_shape), np.float32))
    return Gallery(torch.from_numpy(emb.astype(np.float32)), np.asarray(index, dtype=np.int64), failures)


def _read_chunk(path: Path, names: list[str], resize: str = "model") -> dict[str, np.ndarray] | None:
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            chunk = {k: z[k] for k in ("names", "ok", "reasons", "emb")}
            made_with = str(z["resize"]) if "resize" in z.files else "model"  # caches from before the option
    except (OSError, ValueError, KeyError):
        return None  # unreadable cache: encode again
    if [str(x) for x in chunk["names"]] != names or made_with != resize:
        return None
    return chunk


def _encode_chunk(engine: ComCLIP, paths: list[Path], names: list[str], resize: str = "model"
                  ) -> dict[str, np.ndarray]:
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
        with torch.inference_mode():
            images = [li.image for li in loaded]
            rows = (engine.encoder.encode_images(images) if resize == "model"
                    else engine.encoder.encode_images(images, resize=resize))
            emb = rows.float().cpu().numpy()
    else:
        emb = np.zeros((0, 0), dtype=np.float32)
    return {"names": np.asarray(names), "ok": ok, "reasons": np.asarray(reasons), "emb": emb.astype(np.float32),
            "resize": np.asarray(resize)}


def gallery_failures(rs: RetrievalSet, cache: Path, resize: str = "model") -> dict[int, str]:
    """The unreadable gallery images, as recorded in the cache."""
    failures: dict[int, str] = {}
    for start in range(0, len(rs.names), GALLERY_CHUNK):
        chunk = _read_chunk(cache / f"chunk_{start:07d}.npz", rs.names[start:start + GALLERY_CHUNK], resize)
        if chunk is not None:
            failures.update({start + k: str(chunk["reasons"][k]) for k in np.flatnonzero(~chunk["ok"])})
    return failures


def encode_texts(engine: ComCLIP, texts: Sequence[str]) -> torch.Tensor:
    with torch.inference_mode():
        return torch.cat([engine.encoder.encode_texts(list(texts[i:i + TEXT_CHUNK])).float().cpu()
                          for i in range(0, len(texts), TEXT_CHUNK)])


@dataclass
class TextGallery:
    """image→text: the readable captions of the split, embedded."""

    embeddings: torch.Tensor
    captions: list[int]  # index into rs.captions of each row
    rows_of: dict[int, list[int]]  # gallery image → its captions' rows

    @classmethod
    def build(cls, engine: ComCLIP, rs: RetrievalSet) -> TextGallery:
        keep = [j for j, c in enumerate(rs.captions) if c.error is None]
        rows_of: dict[int, list[int]] = {}
        for row, j in enumerate(keep):
            rows_of.setdefault(rs.captions[j].image, []).append(row)
        return cls(encode_texts(engine, [rs.captions[j].text for j in keep]), keep, rows_of)


# -- running ------------------------------------------------------------------------------------

def is_done(record: dict[str, Any] | None, retry_failed: bool = False) -> bool:
    if record is None:
        return False
    if record.get("status") == "failed":
        return not retry_failed
    return has_ranks(record)


def todo_queries(selection: Sequence[Query], records: dict[str, dict[str, Any]], retry_failed: bool) -> list[Query]:
    return [q for q in selection if not is_done(records.get(q.id), retry_failed)]


def run_retrieval(engine: ComCLIP, rs: RetrievalSet, store: Any, todo: Sequence[Query], gallery: Gallery, *,
                  batch_size: int, topk: int, progress: bool, total: int | None = None) -> None:
    """Score ``todo`` (this process's share) in batches, appending each batch to ``store``."""
    texts = TextGallery.build(engine, rs) if any(q.direction == "i2t" for q in todo) else None
    total = len(todo) if total is None else total
    bar = tqdm(total=total, initial=total - len(todo), unit="query", desc="ranking", file=sys.stderr,
               disable=not progress, dynamic_ncols=True, mininterval=0.5)
    with bar:
        for start in range(0, len(todo), batch_size):
            batch = todo[start:start + batch_size]
            records = _score_t2i(engine, rs, gallery, [q for q in batch if q.direction == "t2i"], topk)
            records |= _score_i2t(engine, rs, gallery, texts, [q for q in batch if q.direction == "i2t"], topk)
            store.append([records[q.id] for q in batch])
            bar.update(len(batch))


def _failed(q: Query, reason: str) -> dict[str, Any]:
    return {"id": q.id, "status": "failed", "direction": q.direction, "reason": " ".join(reason.split()),
            "caption" if q.direction == "t2i" else "image": q.caption}


def _unusable(rs: RetrievalSet, gallery: Gallery, batch: Sequence[Query]) -> dict[str, dict[str, Any]]:
    records = {}
    for q in batch:
        if q.error is not None:
            records[q.id] = _failed(q, q.error)
        elif q.target in gallery.failures:
            records[q.id] = _failed(q, f"its image {rs.names[q.target]} could not be read: "
                                       f"{gallery.failures[q.target]}")
    return records


def _match_each(engine: ComCLIP, items: list[tuple], keys: list[Any]) -> tuple[list[Any], dict[Any, str]]:
    """``match_batch`` over ``items``; if the batch is refused, item by item: (results or None, failures)."""
    results = match_or_reason(engine, items) if items else []
    if isinstance(results, list):
        return results, {}
    results, failures = [], {}
    for item, key in zip(items, keys, strict=True):
        one = match_or_reason(engine, [item])
        results.append(one[0] if isinstance(one, list) else None)
        if not isinstance(one, list):
            failures[key] = one
    return results, failures


def _score_t2i(engine: ComCLIP, rs: RetrievalSet, gallery: Gallery, batch: Sequence[Query], topk: int
               ) -> dict[str, dict[str, Any]]:
    records = _unusable(rs, gallery, batch)
    live = [q for q in batch if q.id not in records]
    first: dict[str, dict[str, Any]] = {}
    if live:
        queries = encode_texts(engine, [q.caption for q in live])
        sims = similarity(engine.encoder, queries, gallery.embeddings).cpu().numpy()
        position = gallery.position()
        for q, row in zip(live, sims, strict=True):
            rank = metrics.rank_of(row.tolist(), position[q.target])
            order = np.lexsort((np.arange(len(row)), -row))[:topk]  # by score, ties by position
            first[q.id] = {"rank": rank, "top": [int(gallery.index[r]) for r in order],
                           "scores": [float(row[r]) for r in order]}

    # ComCLIP: each candidate image once, with every caption of the batch that retrieved it.
    wanted: dict[int, list[Query]] = {}
    for q in live:
        for g in first[q.id]["top"]:
            wanted.setdefault(g, []).append(q)
    image_failures: dict[int, str] = {}
    items, keys = [], []
    for g, qs in wanted.items():
        try:
            image = load_image(rs.paths[g])
        except ComCLIPError as exc:
            image_failures[g] = str(exc)
        else:
            items.append((image, [q.caption for q in qs]))
            keys.append(g)
    results, refused = _match_each(engine, items, keys)
    image_failures |= refused
    comclip: dict[tuple[str, int], float] = {}
    for res, g in zip(results, keys, strict=True):
        if res is not None:
            for q, c in zip(wanted[g], res.captions, strict=True):
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
            "id": q.id, "status": "ok", "direction": "t2i", "caption": q.caption, "image": rs.names[q.target],
            "clip": {"rank": f["rank"], "top": [rs.names[g] for g in f["top"]], "scores": f["scores"]},
            "comclip": {"rank": metrics.reranked_rank(f["top"], scores, q.target, f["rank"]),
                        "top": [rs.names[g] for g in reranked], "scores": sorted(scores, reverse=True)},
        }
    return records


def _score_i2t(engine: ComCLIP, rs: RetrievalSet, gallery: Gallery, texts: TextGallery | None, batch: Sequence[Query],
               topk: int) -> dict[str, dict[str, Any]]:
    records = _unusable(rs, gallery, batch)
    live = [q for q in batch if q.id not in records]
    if not live:
        return records
    assert texts is not None
    position = gallery.position()
    v = gallery.embeddings[[position[q.target] for q in live]]
    sims = similarity(engine.encoder, texts.embeddings, v).T.cpu().numpy()
    first: dict[str, dict[str, Any]] = {}
    items, keys = [], []
    for q, row in zip(live, sims, strict=True):
        targets = texts.rows_of[q.target]
        order = [int(r) for r in np.lexsort((np.arange(len(row)), -row))[:topk]]
        first[q.id] = {"rank": metrics.rank_of_any(row.tolist(), targets), "top": order,
                       "scores": [float(row[r]) for r in order], "targets": targets}
        try:
            image = load_image(rs.paths[q.target])
        except ComCLIPError as exc:
            records[q.id] = _failed(q, str(exc))
            continue  # recorded as failed
        items.append((image, [rs.captions[texts.captions[r]].text for r in order]))
        keys.append(q.id)
    results, refused = _match_each(engine, items, keys)
    for res, qid in zip(results, keys, strict=True):
        q = next(x for x in live if x.id == qid)
        if res is None:
            records[qid] = _failed(q, refused[qid])
            continue  # recorded as failed
        f = first[qid]
        scores = [c.comclip_score for c in res.captions]
        reranked = metrics.rerank(f["top"], scores)
        ids = [rs.captions[texts.captions[r]].id for r in f["top"]]
        records[qid] = {
            "id": qid, "status": "ok", "direction": "i2t", "image": q.caption,
            "clip": {"rank": f["rank"], "top": ids, "scores": f["scores"]},
            "comclip": {"rank": metrics.reranked_rank_any(f["top"], scores, f["targets"], f["rank"]),
                        "top": [rs.captions[texts.captions[r]].id for r in reranked],
                        "scores": sorted(scores, reverse=True)},
        }
    return records


def summarise(rs: RetrievalSet, selection: Sequence[Query], records: dict[str, dict[str, Any]],
              failures_in_gallery: dict[int, str], topk: int, denominator: str = "scored") -> dict[str, Any]:
    """Counts, failures and Recall@K per direction, from the records alone: over the scored queries,
    or with ``denominator="all"`` over all of them, a failed query a miss (the official script
    divides by a fixed 1000)."""
    def ok(q: Query) -> bool:
        return is_done(records.get(q.id)) and records[q.id]["status"] == "ok"

    failures = [{"id": q.id, "reason": records[q.id].get("reason", "") if q.id in records else "not computed"}
                for q in selection if not ok(q)]
    result: dict[str, dict[str, float | None]] = {"clip": {}, "comclip": {}}
    counts: dict[str, dict[str, int]] = {}
    for d in rs.directions:
        mine = [q for q in selection if q.direction == d]
        good = [records[q.id] for q in mine if ok(q)]
        misses = [math.inf] * (len(mine) - len(good)) if denominator == "all" else []
        for m in ("clip", "comclip"):
            ranks = [r[m]["rank"] for r in good] + misses
            result[m].update({f"{d}_{k}": v for k, v in metrics.recall_at(ranks, rs.ks).items()})
        counts.update({f"{d}_R@{k}": {"n_scored": len(good), "n_failed": len(mine) - len(good)} for k in rs.ks})
    n_scored = len(selection) - len(failures)
    return {
        "n_total": len(selection), "n_scored": n_scored, "n_failed": len(failures), "failures": failures,
        "metrics": result, "counts": counts, "protocol": rs.protocol,
        "gallery": {"split": rs.split, "n_images": len(rs.names), "n_captions": len(rs.captions),
                    "n_failed": len(failures_in_gallery),
                    "failures": [{"image": rs.names[g], "reason": r} for g, r in sorted(failures_in_gallery.items())]},
        "topk": topk, "denominator": denominator,
    }
