"""A benchmark run's dataset, opened again from ``run.json``: what ``examples.jsonl`` does not hold.

``examples.jsonl`` holds each example's scores and the dataset's own fields (``meta``: captions,
tags, image ids); the images themselves, Winoground's captions in runs made before they were
stored, and retrieval's candidate captions are in the dataset. ``run.json`` records the dataset,
its annotation file or folder (``source``), its images and the loader's ``notes``, which name the
loader's arguments (``graphs: triplet``, ``pairs: all (...)``, ``max-num: first N ...``, ``split:
test``, ``protocol: comclip (the queries of PATH; ...)``). :func:`loader_arguments` reads them back
so :func:`open_dataset` builds the very examples the run scored — same ids, images, captions and
scene graphs. Paths are the ones the run recorded (a relative one is taken from the current folder).

:class:`DatasetView` opens the dataset once, on first use; when it cannot be opened (moved,
deleted, another machine) it says why (``error``) and everything it would add is left out. Threads
may share one view (the app's requests): it is opened once.
Light to import: no torch (the engine is only called by :meth:`DatasetView.rescore`).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from comclip.errors import ComCLIPError, InputError
from comclip.eval import metrics
from comclip.eval.datasets import PAIR_LOADERS, Example, Loaded, MissingImage
from comclip.eval.datasets.common import ImageSource, open_image
from comclip.eval.datasets.karpathy import DATASETS as RETRIEVAL_DATASETS
from comclip.eval.datasets.karpathy import Query, RetrievalSet, load_retrieval
from comclip.images import load_image

if TYPE_CHECKING:
    from PIL import Image

    from comclip.engine import ComCLIP
    from comclip.graph import SceneGraph
    from comclip.images import LoadedImage
    from comclip.options import Options

#: The images of a pair dataset's example, in probe order (what each probe's image is called).
ROLES = {"winoground": ("image_0", "image_1"), "comvg": ("pos", "neg"), "svo": ("pos", "neg"),
         "vl-checklist": ("image",)}
EMBEDDED = "embedded in the parquet file"


@dataclass(frozen=True)
class ProbeView:
    """One image of an example with the captions scored against it.

    ``role``: ``image_0``/``image_1`` (Winoground), ``pos``/``neg`` (ComVG, SVO), ``image``
    (VL-CheckList), ``target`` (retrieval text→image: the image the caption must find) or ``query``
    (image→text: the query image; ``captions`` are its own captions, any of which is a hit).
    ``path``: the image file, or None when it is not a file (Winoground's parquet and ``hf``
    layouts embed it: :meth:`DatasetView.image` opens it either way) or was not found (``error``).
    ``keys``: each caption's score key in the record (``c0_i0``...; retrieval: none).
    """

    role: str
    path: str | None
    captions: tuple[str, ...]
    keys: tuple[str, ...] = ()
    error: str | None = None


@dataclass(frozen=True)
class Candidate:
    """One entry of a retrieval query's top-k, best first: an image (text→image; ``path``) or a
    caption (image→text; ``name`` is its id, ``text`` its words). ``target``: is it what the query
    must find (None: unknown, the dataset could not be opened)."""

    name: str
    score: float
    text: str | None = None
    path: str | None = None
    target: bool | None = None


def loader_arguments(info: dict[str, Any]) -> tuple[str, str | None, dict[str, Any]]:
    """``(data, images, keyword arguments)`` for the loader named in ``run.json`` (``info``), read
    from the paths and notes it recorded."""
    dataset, source, images = info.get("dataset"), str(info.get("source") or ""), info.get("images")
    kwargs: dict[str, Any] = {}
    for note in info.get("notes") or []:
        key, _, value = str(note).partition(": ")
        if key in ("graphs", "split"):
            kwargs[key] = value
        elif key == "pairs":
            kwargs["pairs"] = value.split(" ", 1)[0]
        elif key == "max-num" and (m := re.match(r"first (\d+) ", value)):
            kwargs["max_num"] = int(m[1])
        elif key == "protocol":
            kwargs["protocol"] = value.split(" ", 1)[0]
            if m := re.match(r"comclip \(the queries of (.+); text→image; ", value):
                kwargs["queries"] = m[1]
            elif m := re.match(r"comclip \(one caption per image: caption (\d+);", value):
                kwargs["caption_index"] = int(m[1])
    if dataset == "winoground":
        return (*_winoground_paths(source, images), kwargs)
    if dataset in ("comvg", "svo") and images and ", " in images and not Path(images).is_dir():
        images = None  # several default image folders were found: the loader finds them again
    return source, images, kwargs


def _winoground_paths(source: str, images: str | None) -> tuple[str, str | None]:
    if source.startswith("datasets:"):
        return "hf:" + source.split(":", 1)[1], None
    files = source.split(", ")
    if len(files) > 1:  # several parquet files: their folder holds them all
        return str(Path(files[0]).parent), None if images == EMBEDDED else images
    return source, None if images == EMBEDDED else images


def open_dataset(info: dict[str, Any]) -> Loaded | RetrievalSet:
    """The dataset a run scored, loaded as the run loaded it (:class:`DatasetError` if it cannot be)."""
    dataset = info.get("dataset")
    data, images, kwargs = loader_arguments(info)
    if dataset in PAIR_LOADERS:
        return PAIR_LOADERS[dataset](data, images, **kwargs)
    if dataset in RETRIEVAL_DATASETS:
        return load_retrieval(dataset, data, images, **kwargs)
    raise InputError(f"unknown dataset {dataset!r} in run.json")


def _path(source: ImageSource | Path) -> tuple[str | None, str | None]:
    """A probe image's file (None if embedded) and why it is missing (None if it is not)."""
    if isinstance(source, MissingImage):
        return None, source.reason
    if isinstance(source, (str, Path)):
        return str(source), None if Path(source).is_file() else f"image file not found: {source}"
    return None, None


class DatasetView:
    """The run's dataset, opened on first use (once); ``error`` says why it could not be."""

    def __init__(self, info: dict[str, Any]) -> None:
        self.info = info
        self.dataset = str(info.get("dataset"))
        self.error: str | None = None
        self._loaded: Loaded | RetrievalSet | None = None
        self._tried = False
        self._examples: dict[str, Example] = {}
        self._queries: dict[str, Query] = {}
        self._where: dict[str, int] = {}
        self._lock = threading.Lock()

    def loaded(self) -> Loaded | RetrievalSet | None:
        """The dataset, opened on the first call (by one thread; the others wait for it)."""
        with self._lock:
            if not self._tried:
                self._tried = True
                try:
                    self._loaded = open_dataset(self.info)
                except ComCLIPError as exc:
                    self.error = f"the dataset could not be opened again: {' '.join(str(exc).split())}"
                else:
                    self._index(self._loaded)
        return self._loaded

    def _index(self, loaded: Loaded | RetrievalSet) -> None:
        if isinstance(loaded, RetrievalSet):
            self._queries = {q.id: q for q in loaded.queries}
            self._where = {name: g for g, name in enumerate(loaded.names)}
        else:
            self._examples = {ex.id: ex for ex in loaded.examples}

    def selection(self, limit: int | None) -> list[str] | None:
        """The ids of the examples (queries) a run with ``limit`` selects, in order; None if unknown."""
        loaded = self.loaded()
        if loaded is None:
            return None
        items: Sequence[Example | Query] = loaded.queries if isinstance(loaded, RetrievalSet) else loaded.examples
        return [x.id for x in (items[:limit] if limit else items)]

    def example(self, ex_id: str) -> Example | None:
        return self._examples.get(ex_id) if self.loaded() is not None else None

    # -- what an example shows --------------------------------------------------------------
    def probes(self, ex_id: str, record: dict[str, Any]) -> tuple[ProbeView, ...]:
        """Each image of the example with its captions; () when the dataset is unavailable."""
        loaded = self.loaded()
        if loaded is None:
            return ()
        if isinstance(loaded, RetrievalSet):
            return self._retrieval_probe(loaded, ex_id, record)
        ex = self._examples.get(ex_id)
        if ex is None:
            return ()
        views, k = [], 0
        for role, probe in zip(ROLES.get(self.dataset, ()), ex.probes, strict=False):
            path, error = _path(probe.image)
            views.append(ProbeView(role, path, tuple(probe.captions), tuple(ex.keys[k:k + len(probe.captions)]),
                                   error))
            k += len(probe.captions)
        return tuple(views)

    def _retrieval_probe(self, rs: RetrievalSet, ex_id: str, record: dict[str, Any]) -> tuple[ProbeView, ...]:
        q = self._queries.get(ex_id)
        if q is None or q.target < 0:
            return ()
        path, error = _path(rs.paths[q.target])
        if q.direction == "t2i":
            return (ProbeView("target", path, (q.caption,), (), error),)
        own = tuple(c.text for c in rs.captions if c.image == q.target and c.error is None)
        return (ProbeView("query", path, own, (), error),)

    def candidates(self, record: dict[str, Any], method: str) -> tuple[Candidate, ...]:
        """A retrieval record's top-k under ``method``, best first, with paths / texts / targets
        from the dataset when it is available."""
        part = record.get(method) or {}
        top, scores = list(part.get("top") or []), list(part.get("scores") or [])
        rs = self.loaded()
        rs = rs if isinstance(rs, RetrievalSet) else None
        captions = {c.id: c for c in rs.captions} if rs is not None and record.get("direction") == "i2t" else {}
        out = []
        for name, score in zip(top, scores, strict=False):
            if record.get("direction") == "i2t":
                c = captions.get(name)
                target = None if rs is None else (c is not None and c.image == self._where.get(record.get("image")))
                out.append(Candidate(name, float(score), text=c.text if c else None, target=target))
            else:
                g = self._where.get(name)
                path = str(rs.paths[g]) if rs is not None and g is not None else None
                out.append(Candidate(name, float(score), path=path, target=name == record.get("image")))
        return tuple(out)

    def image(self, ex_id: str, role: str) -> Image.Image:
        """The image ``role`` of an example (:class:`InputError` if it cannot be opened)."""
        loaded = self.loaded()
        if loaded is None:
            raise InputError(self.error or "the dataset could not be opened again")
        if isinstance(loaded, RetrievalSet):
            q = self._queries.get(ex_id)
            if q is None or q.target < 0 or role not in ("target", "query"):
                raise InputError(f"no image {role!r} for {ex_id!r}")
            return load_image(loaded.paths[q.target]).image
        ex = self._examples.get(ex_id)
        roles = ROLES.get(self.dataset, ())
        if ex is None or role not in roles[:len(ex.probes)]:
            raise InputError(f"no image {role!r} for {ex_id!r}; its images: {', '.join(roles) or 'none'}")
        return open_image(ex.probes[roles.index(role)].image).image

    # -- scoring again ------------------------------------------------------------------------
    def rescore(self, engine: ComCLIP, ex_id: str, record: dict[str, Any], options: Options) -> dict[str, Any]:
        """Score the example again with ``engine`` and ``options``, as the run did; the result has
        the record's shape (pairs: ``clip`` and ``comclip`` scores per key; retrieval: ComCLIP's
        re-ranking of the stored CLIP top-k, ``clip`` as stored)."""
        loaded = self.loaded()
        if loaded is None:
            raise InputError(self.error or "the dataset could not be opened again")
        if isinstance(loaded, RetrievalSet):
            return self._rerank(engine, loaded, ex_id, record, options)
        from comclip.eval.runner import scored

        items = self.items(ex_id)
        return scored(self._examples[ex_id], engine.match_batch(items, options=options))

    def items(self, ex_id: str) -> list[tuple[LoadedImage, list[str], list[SceneGraph | None] | None]]:
        """A pair dataset's example as the run gave it to the engine: ``(image, captions, graphs)``
        per probe, in probe order (graphs: None = parse; the loader's own, e.g. ``graphs: triplet``).
        :class:`InputError` when the dataset is unavailable, the example failed or an image is missing."""
        loaded = self.loaded()
        if loaded is None:
            raise InputError(self.error or "the dataset could not be opened again")
        if isinstance(loaded, RetrievalSet):
            raise InputError(f"{ex_id!r} is a retrieval query: it is re-ranked (rescore), not scored as items")
        ex = self._examples.get(ex_id)
        if ex is None or ex.error is not None:
            raise InputError(f"example {ex_id!r} cannot be scored: {ex.error if ex else 'not in the dataset'}")
        return [(open_image(p.image), p.captions, p.graphs) for p in ex.probes]

    def _rerank(self, engine: ComCLIP, rs: RetrievalSet, ex_id: str, record: dict[str, Any], options: Options
                ) -> dict[str, Any]:
        q = self._queries.get(ex_id)
        clip = record.get("clip") or {}
        top = list(clip.get("top") or [])
        if q is None or q.error is not None or not top or not isinstance(clip.get("rank"), int):
            raise InputError(f"query {ex_id!r} has no stored CLIP top-k to re-rank")
        if q.direction == "t2i":
            items = [(load_image(rs.paths[self._where[name]]), [q.caption]) for name in top]
            results = engine.match_batch(items, options=options)
            scores = [r.captions[0].comclip_score for r in results]
            rank = metrics.reranked_rank(top, scores, record.get("image"), clip["rank"])
        else:
            texts = {c.id: c.text for c in rs.captions}
            result = engine.match_batch([(load_image(rs.paths[q.target]), [texts[c] for c in top])], options=options)[0]
            scores = [c.comclip_score for c in result.captions]
            targets = [c.id for c in rs.captions if c.image == q.target]
            rank = metrics.reranked_rank_any(top, scores, targets, clip["rank"])
        comclip = {"rank": rank, "top": metrics.rerank(top, scores), "scores": sorted(scores, reverse=True)}
        return {"id": ex_id, "status": "ok", "direction": q.direction, "clip": clip, "comclip": comclip}
