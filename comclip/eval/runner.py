"""Running a benchmark through the engine: batching, streaming, resume, progress.

``load(dataset, data)`` reads and checks the data folder (fails at once on a bad one);
``evaluate(engine, loaded, out)`` scores whatever ``OUT/examples.jsonl`` does not hold yet, many
examples per :meth:`ComCLIP.match_batch` call, appends each batch's results to it, then writes
the report from ALL the results of the selected examples — so a resumed run and an
uninterrupted one give the same report.

Failures are never skipped: an example whose row is unreadable or whose image is missing is
written as ``{"status": "failed", "reason": ...}`` and counted in the report. When a whole
batch is refused by the engine, its examples are retried one by one so only the bad one fails.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tqdm import tqdm

from comclip.errors import ComCLIPError, InputError
from comclip.eval import report as reporting
from comclip.eval import retrieval
from comclip.eval.batching import match_or_reason
from comclip.eval.datasets import PAIR_LOADERS, Example, Loaded
from comclip.eval.datasets.common import open_image
from comclip.eval.distributed import SINGLE, World
from comclip.eval.retrieval import RETRIEVAL_DATASETS, RetrievalSet, load_retrieval
from comclip.eval.store import ResultStore, has_scores
from comclip.options import EvalOptions

if TYPE_CHECKING:
    from comclip.engine import ComCLIP

DATASETS = (*PAIR_LOADERS, *RETRIEVAL_DATASETS)
DEFAULT_BATCH_SIZE = 16
DEFAULT_TOPK = 10


def load(dataset: str, data: str | Path, images: str | Path | None = None, *, split: str = "test",
         graphs: str = "triplet", protocol: str = "karpathy", pairs: str = "first", max_num: int | None = None,
         queries: str | Path | None = None) -> Loaded | RetrievalSet:
    """Read and check a benchmark's data folder; :class:`DatasetError` at once if it is unusable."""
    if dataset in PAIR_LOADERS:
        return PAIR_LOADERS[dataset](data, images, graphs=graphs, pairs=pairs, max_num=max_num)
    if dataset in RETRIEVAL_DATASETS:
        return load_retrieval(dataset, data, images, split=split, protocol=protocol, queries=queries)
    raise InputError(f"unknown dataset {dataset!r}; choose one of: {', '.join(DATASETS)}")


def data_signature(loaded: Loaded | RetrievalSet, topk: int = DEFAULT_TOPK) -> dict[str, Any]:
    """The part of a run's signature known before any model is loaded."""
    sig = {"dataset": loaded.dataset, "source": loaded.source, "images": loaded.images, "notes": loaded.notes}
    return sig | ({"topk": topk} if isinstance(loaded, RetrievalSet) else {})


def signature(engine: ComCLIP, loaded: Loaded | RetrievalSet, topk: int = DEFAULT_TOPK) -> dict[str, Any]:
    """What a result depends on: a resumed run must match it exactly."""
    return data_signature(loaded, topk) | {"preset": engine.preset_name, "models": engine.models(),
                                           "options": asdict(engine.options)}


def evaluate(engine: ComCLIP, loaded: Loaded | RetrievalSet, out: str | Path, *, limit: int | None = None,
             batch_size: int = DEFAULT_BATCH_SIZE, topk: int = DEFAULT_TOPK, retry_failed: bool = False,
             progress: bool = True, world: World = SINGLE, denominator: str = "scored") -> dict[str, Any] | None:
    """Score what is not in ``OUT`` yet, then write and return the report.

    ``denominator`` (:class:`~comclip.options.EvalOptions`): metrics over the scored examples, or
    over all of them with the failed ones as misses. It only changes the report, so a folder may be
    reported again either way.

    With several processes (``world``), each scores its share into its own shard and rank 0
    merges them and writes the report (the other ranks return None).
    """
    for name, value in (("limit", limit), ("batch size", batch_size), ("top-k", topk)):
        if value is not None and (not isinstance(value, int) or value < 1):
            raise InputError(f"{name} must be a whole number >= 1, got {value}")
    denominator = EvalOptions(denominator=denominator).denominator  # validated
    out = Path(out)
    sig = signature(engine, loaded, topk)
    if world.distributed and world.main:
        ResultStore(out, sig).close()  # rank 0 writes or checks run.json before the others read it
    world.barrier()
    progress = progress and world.main
    shard = f"rank-{world.rank:05d}" if world.distributed else None
    selection: list[Any] = loaded.queries if isinstance(loaded, RetrievalSet) else loaded.examples
    selection = selection[:limit] if limit else selection
    with ResultStore(out, sig, shard=shard) as store:
        if isinstance(loaded, RetrievalSet):
            todo = retrieval.todo_queries(selection, store.records, retry_failed)
        else:
            todo = [ex for ex in selection if not is_done(store.records.get(ex.id), ex, retry_failed)]
        world.barrier()  # every process has its list before any writes: they all hold the same list
        if isinstance(loaded, RetrievalSet):
            _run_retrieval(engine, loaded, store, todo, batch_size, topk, progress, world, len(selection))
        else:
            run_pairs(engine, world.share(todo), store, batch_size=batch_size, progress=progress,
                      total=len(selection))
    world.barrier()  # every shard is complete
    if not world.main:
        return None
    with ResultStore(out, sig) as store:
        if store.shards():
            store.merge([x.id for x in selection])
        if isinstance(loaded, RetrievalSet):
            summary = retrieval.summarise(
                loaded, selection, store.records,
                retrieval.gallery_failures(loaded, out / "gallery", engine.options.resize), topk, denominator)
        else:
            summary = reporting.summarise_pairs(loaded.kind, selection, store.records, denominator)
    report = reporting.build(loaded, summary, engine=engine, limit=limit, out=out) | {"world_size": world.size}
    reporting.write(report, out)
    return report


def _run_retrieval(engine: ComCLIP, rs: RetrievalSet, store: ResultStore, todo: list[Any], batch_size: int,
                   topk: int, progress: bool, world: World, total: int) -> None:
    if not todo:  # the same in every process: all skip the gallery together
        return
    cache = store.out / "gallery"
    if world.distributed:  # each process encodes its chunks of the gallery into the shared cache
        retrieval.encode_gallery(engine, rs, cache, progress, mine=world.owns)
        world.barrier()
    gallery = retrieval.encode_gallery(engine, rs, cache, progress)
    retrieval.run_retrieval(engine, rs, store, world.share(todo), gallery, batch_size=batch_size, topk=topk,
                            progress=progress, total=total)


def run(engine: ComCLIP, dataset: str, data: str | Path, out: str | Path, *, images: str | Path | None = None,
        split: str = "test", graphs: str = "triplet", protocol: str = "karpathy", pairs: str = "first",
        max_num: int | None = None, queries: str | Path | None = None, **kwargs: Any) -> dict[str, Any] | None:
    """``load`` then ``evaluate``: the Python equivalent of ``python -m comclip eval``."""
    loaded = load(dataset, data, images, split=split, graphs=graphs, protocol=protocol, pairs=pairs, max_num=max_num,
                  queries=queries)
    return evaluate(engine, loaded, out, **kwargs)


# -- pairwise benchmarks ------------------------------------------------------------------------

def is_done(record: dict[str, Any] | None, example: Example, retry_failed: bool = False) -> bool:
    """Is there a usable result for ``example`` (failed ones count unless ``retry_failed``)?"""
    if record is not None and record.get("status") == "failed":
        return not retry_failed
    return has_scores(record, example.keys)


def run_pairs(engine: ComCLIP, todo: Sequence[Example], store: ResultStore, *, batch_size: int = DEFAULT_BATCH_SIZE,
              progress: bool = True, total: int | None = None) -> None:
    """Score ``todo`` in batches of ``batch_size``, appending each batch's records to ``store``."""
    total = len(todo) if total is None else total
    bar = tqdm(total=total, initial=total - len(todo), unit="ex", desc="scoring",
               file=sys.stderr, disable=not progress, dynamic_ncols=True, mininterval=0.5)
    with bar:
        for start in range(0, len(todo), batch_size):
            batch = todo[start:start + batch_size]
            store.append(score_batch(engine, batch))
            bar.update(len(batch))


def failed(example: Example, reason: str) -> dict[str, Any]:
    rec: dict[str, Any] = {"id": example.id, "status": "failed", "reason": " ".join(str(reason).split())}
    if example.meta:
        rec["meta"] = example.meta
    return rec


def scored(example: Example, results: Sequence[Any]) -> dict[str, Any]:
    captions = [c for r in results for c in r.captions]
    if len(captions) != len(example.keys):
        raise InputError(f"{len(captions)} scores for {len(example.keys)} names")  # a loader bug, loudly
    rec: dict[str, Any] = {"id": example.id, "status": "ok"}
    if example.meta:
        rec["meta"] = example.meta
    rec["clip"] = {k: c.clip_score for k, c in zip(example.keys, captions, strict=True)}
    rec["comclip"] = {k: c.comclip_score for k, c in zip(example.keys, captions, strict=True)}
    return rec


def score_batch(engine: ComCLIP, batch: Sequence[Example]) -> list[dict[str, Any]]:
    """Score a batch of examples with ONE ``match_batch`` call; one record per example, in order."""
    records: dict[str, dict[str, Any]] = {}
    ready: list[tuple[Example, list[tuple]]] = []
    for ex in batch:
        if ex.error is not None:
            records[ex.id] = failed(ex, ex.error)
            continue  # already recorded as failed, with the row's problem as reason
        try:
            items = [(open_image(p.image), p.captions, p.graphs) for p in ex.probes]
        except ComCLIPError as exc:
            records[ex.id] = failed(ex, str(exc))
        else:
            ready.append((ex, items))
    flat = [item for _, items in ready for item in items]
    results = match_or_reason(engine, flat) if flat else []
    if isinstance(results, list):
        i = 0
        for ex, items in ready:
            records[ex.id] = scored(ex, results[i:i + len(items)])
            i += len(items)
    else:  # the engine refused the batch: find the example(s) at fault, one by one
        for ex, items in ready:
            one = match_or_reason(engine, items)
            records[ex.id] = scored(ex, one) if isinstance(one, list) else failed(ex, one)
    return [records[ex.id] for ex in batch]
