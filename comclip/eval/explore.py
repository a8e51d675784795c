"""Explore a benchmark run: where ComCLIP fixes CLIP, where it breaks it, and why.

Pure data (no Gradio; no torch until an example is scored again). ``run = load_run(OUT)`` reads a
finished ``python -m comclip eval`` folder — ``run.json``, ``examples.jsonl``, ``report.json`` —
and types every example once (:class:`Row`), so a 25k-example run loads in a second or two and
every query after is a filter over those rows. The dataset itself is opened again only for what
the records lack (images, retrieval's candidate captions; :mod:`comclip.eval.explore_source`).

**Outcomes**, per example and metric, right/wrong exactly as the report counts it
(:mod:`comclip.eval.metrics`; a tie is a loss): ``fixed`` (CLIP wrong, ComCLIP right),
``broken`` (CLIP right, ComCLIP wrong), ``both_right``, ``both_wrong``. So over a metric's scored
examples ``(fixed + both_right) / n_scored`` is ComCLIP's score in ``report.json`` and
``(broken + both_right) / n_scored`` CLIP's (with ``denominator="all"`` the report divides by
``n_total``; VL-CheckList's subtype and type rows are means of per-file accuracies instead).

**Metrics**: Winoground ``text``, ``image``, ``group``; ComVG, SVO, VL-CheckList ``pair``;
Flickr30K and COCO ``R@1``, ``R@5`` (and ``R@10`` with the karpathy protocol): the target ranked at
K or better (fixed at ``R@1``: ComCLIP ranks the target first and CLIP does not).

**Margins** (:class:`MetricResult`): how far an example is from its decision, ``> 0`` exactly
when it is right, in the stored scores' units — ``text``: min(c0_i0 − c1_i0, c1_i1 − c0_i1) (each
image's own caption over the other); ``image``: min(c0_i0 − c0_i1, c1_i1 − c1_i0) (each caption's
own image over the other); ``group``: min(text, image); ``pair``: pos − neg. ``change`` = ComCLIP's
margin − CLIP's (> 0: ComCLIP is surer of the right answer, or less sure of the wrong one).
Retrieval has ranks instead: ``clip``/``comclip`` are the target's ranks and ``change`` = CLIP's rank
− ComCLIP's (> 0: re-ranking moved the target up), the same for every K.

**Groups**: the report's breakdown labels — Winoground's ``collapsed_tag`` (``Object`` ...),
ComVG's ``neg_value`` (``subject`` ...), SVO's negative type(s) (``verb``, ``subject+object``),
VL-CheckList's annotation file and every level above it (``Attribute``, ``Attribute/color``,
``Attribute/color/vaw``), retrieval's direction (``t2i``, ``i2t``) — and Winoground's meta tags
``tag=Noun``, ``secondary_tag=Symbolic``, ``num_main_preds=2`` (:attr:`Run.breakdown` holds the
report's labels, :attr:`Run.groups` all of them).

**Order** (:data:`SORTS`): the run's, or by ``change`` — ``margin-change`` (the biggest either way
first; retrieval's default: the queries whose rank changed most), ``margin-gain``, ``margin-loss``;
ties keep the run's order, failed examples come last. :meth:`Run.select` returns one
:class:`Page`; each (metric, order) is sorted once and kept.

A folder that is not a finished run is refused with one :class:`InputError`: no such folder, no
``run.json`` (not a run folder), no ``report.json`` or unmerged ``shards/`` (still running or
interrupted), or records that do not add up to the report.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from comclip.errors import InputError
from comclip.eval import metrics
from comclip.eval.explore_source import Candidate, DatasetView, ProbeView
from comclip.eval.store import EXAMPLES, RUN, SHARDS, has_ranks, has_scores, read_json_object, read_records
from comclip.options import Options

if TYPE_CHECKING:
    from PIL import Image

    from comclip.engine import ComCLIP
    from comclip.graph import SceneGraph
    from comclip.images import LoadedImage

OUTCOMES = ("fixed", "broken", "both_right", "both_wrong")
#: ``select(outcome=FAILED)``: the examples that could not be scored.
FAILED = "failed"
#: ``order``: as in examples.jsonl; ``margin-change``: the biggest change either way first
#: (``|change|`` descending); ``margin-gain``: ComCLIP's biggest gains first (``change``
#: descending); ``margin-loss``: its biggest losses first (``change`` ascending). Ties keep the
#: run's order; failed examples come last.
SORTS = ("order", "margin-change", "margin-gain", "margin-loss")
REPORT = "report.json"
PAIR_DATASETS = ("comvg", "svo", "vl-checklist")
RETRIEVAL_DATASETS = ("flickr30k", "coco")

Rule = tuple[str, Callable[[Mapping[str, float]], bool], Callable[[Mapping[str, float]], float]]
#: metric → (its name in report.json, is it right, its margin), for the pair benchmarks
WINOGROUND_RULES: dict[str, Rule] = {
    "text": ("text_score", metrics.winoground_text, metrics.winoground_text_margin),
    "image": ("image_score", metrics.winoground_image, metrics.winoground_image_margin),
    "group": ("group_score", metrics.winoground_group, metrics.winoground_group_margin),
}
PAIR_RULES: dict[str, Rule] = {"pair": ("accuracy", metrics.pair_correct, metrics.pair_margin)}


def outcome(clip_right: bool, comclip_right: bool) -> str:
    """``fixed`` / ``broken`` / ``both_right`` / ``both_wrong`` from whether each method is right."""
    if clip_right:
        return "both_right" if comclip_right else "broken"
    return "fixed" if comclip_right else "both_wrong"


@dataclass(frozen=True, slots=True)
class MetricResult:
    """One example under one metric: the outcome, each method's margin (retrieval: the target's
    rank) and ``change`` (ComCLIP's margin − CLIP's; retrieval: CLIP's rank − ComCLIP's)."""

    outcome: str
    clip: float
    comclip: float
    change: float

    def to_dict(self) -> dict[str, Any]:
        return {"outcome": self.outcome, "clip": self.clip, "comclip": self.comclip, "change": self.change}


@dataclass(frozen=True, slots=True)
class Row:
    """One example of the run, typed once (read-only mappings: do not change them).

    ``index``: its position in the run (examples.jsonl order). ``status``: ``ok`` (every score
    present) or ``failed`` (``reason`` says why). ``groups``: its labels, the report's breakdown
    label first. ``captions``: what it says — Winoground (caption_0, caption_1), ComVG/SVO
    (sentence,), VL-CheckList (pos, neg), text→image (the query,), image→text () — and ``images``
    the image names the record holds (ComVG/SVO pos and neg ids, VL-CheckList's path, retrieval's
    target image). ``results``: metric → :class:`MetricResult` (empty when failed). ``clip`` /
    ``comclip``: the stored scores (Winoground c0_i0 ..., pairs pos/neg; retrieval {"rank"}).
    ``meta``: the dataset's fields as stored.
    """

    id: str
    index: int
    status: str
    reason: str | None
    groups: tuple[str, ...]
    captions: tuple[str, ...]
    images: tuple[str, ...]
    results: Mapping[str, MetricResult]
    clip: Mapping[str, float]
    comclip: Mapping[str, float]
    meta: Mapping[str, Any]

    def outcome(self, metric: str) -> str | None:
        r = self.results.get(metric)
        return None if r is None else r.outcome

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (``explore --json`` prints one per line)."""
        d: dict[str, Any] = {"id": self.id, "index": self.index, "status": self.status}
        if self.reason is not None:
            d["reason"] = self.reason
        d |= {"groups": list(self.groups), "captions": list(self.captions), "images": list(self.images),
              "outcomes": {m: r.outcome for m, r in self.results.items()},
              "results": {m: r.to_dict() for m, r in self.results.items()},
              "clip": dict(self.clip), "comclip": dict(self.comclip)}
        return d


@dataclass(frozen=True)
class OutcomeCounts:
    """How many examples of ``group`` (None: all) fall in each outcome of ``metric``."""

    metric: str
    group: str | None
    fixed: int = 0
    broken: int = 0
    both_right: int = 0
    both_wrong: int = 0
    n_failed: int = 0

    @property
    def n_scored(self) -> int:
        return self.fixed + self.broken + self.both_right + self.both_wrong

    @property
    def clip_right(self) -> int:
        return self.broken + self.both_right

    @property
    def comclip_right(self) -> int:
        return self.fixed + self.both_right

    def get(self, name: str) -> int:
        """The count of an outcome, or of ``failed``."""
        return self.n_failed if name == FAILED else getattr(self, name)

    def to_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "group": self.group, **{o: self.get(o) for o in OUTCOMES},
                "n_scored": self.n_scored, "n_failed": self.n_failed}


@dataclass(frozen=True)
class Headline:
    """One row of the report (``name`` as in report.json: ``text_score``, ``accuracy[verb]``,
    ``t2i_R@1``) with the explorer's counts behind it. ``matches_counts``: the report's values are
    exactly ``counts.clip_right / counts.n_scored`` and ``counts.comclip_right / counts.n_scored``
    (False with ``denominator="all"`` and for VL-CheckList's subtype and type levels)."""

    name: str
    metric: str
    group: str | None
    clip: float | None
    comclip: float | None
    counts: OutcomeCounts
    matches_counts: bool

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "metric": self.metric, "group": self.group, "clip": self.clip,
                "comclip": self.comclip, "counts": self.counts.to_dict(), "matches_counts": self.matches_counts}


@dataclass(frozen=True)
class Summary:
    """The run at a glance: what it scored and the report's rows with their outcome counts."""

    dataset: str
    kind: str  # "winoground" | "pairs" | "retrieval"
    preset: str
    n_total: int
    n_scored: int
    n_failed: int
    denominator: str
    metrics: tuple[str, ...]
    headlines: tuple[Headline, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"dataset": self.dataset, "kind": self.kind, "preset": self.preset, "n_total": self.n_total,
                "n_scored": self.n_scored, "n_failed": self.n_failed, "denominator": self.denominator,
                "metrics": list(self.metrics), "headlines": [h.to_dict() for h in self.headlines]}


@dataclass(frozen=True)
class Page:
    """One page of :meth:`Run.select`: ``rows`` from ``offset``; ``total`` rows match in all."""

    rows: tuple[Row, ...]
    total: int
    offset: int
    metric: str
    outcome: str | None
    group: str | None
    sort: str

    def __iter__(self) -> Iterator[Row]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)


@dataclass(frozen=True)
class ExampleDetail:
    """Everything needed to show one example again and to score it again.

    ``record``: its examples.jsonl line as stored. ``probes``: each image with the captions scored
    against it (and their score keys); ``clip_top`` / ``comclip_top``: a retrieval query's top-k
    under each method, best first. Images, candidate texts and targets come from the dataset:
    when it cannot be opened again, ``dataset_error`` says why and they are left out. ``preset``,
    ``models`` and ``options`` are the run's (:meth:`Run.engine_options` gives the Options).
    """

    row: Row
    record: Mapping[str, Any]
    dataset: str
    preset: str
    models: Mapping[str, Any]
    options: Mapping[str, Any]
    probes: tuple[ProbeView, ...]
    clip_top: tuple[Candidate, ...] = ()
    comclip_top: tuple[Candidate, ...] = ()
    dataset_error: str | None = None


# -- reading a run ------------------------------------------------------------------------------

def kind_of(dataset: str) -> str:
    if dataset == "winoground":
        return "winoground"
    if dataset in PAIR_DATASETS:
        return "pairs"
    if dataset in RETRIEVAL_DATASETS:
        return "retrieval"
    raise InputError(f"run.json names an unknown dataset {dataset!r}")


def _check_folder(out: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(run.json, report.json)`` of a finished run; one :class:`InputError` otherwise."""
    if not out.exists():
        raise InputError(f"no such folder: {out}")
    if not out.is_dir():
        raise InputError(f"{out} is not a folder")
    if not (out / RUN).is_file():
        raise InputError(f"{out} is not a benchmark run folder: it has no {RUN} (`python -m comclip eval ... "
                         "--out DIR` makes one)")
    info = read_json_object(out / RUN, "a run record")
    again = "rerun the same eval command with this --out to finish it"
    if any((out / SHARDS).glob("*.jsonl")):
        raise InputError(f"the run in {out} is incomplete: {SHARDS}/ holds results not merged yet (torchrun "
                         f"processes still running or interrupted); {again}")
    if not (out / REPORT).is_file() or not (out / EXAMPLES).is_file():
        missing = REPORT if (out / EXAMPLES).is_file() else EXAMPLES
        raise InputError(f"the run in {out} is incomplete: no {missing} yet (still running or interrupted); {again}")
    report = read_json_object(out / REPORT, "a benchmark report")
    if report.get("dataset") != info.get("dataset") or not isinstance(report.get("metrics"), dict):
        raise InputError(f"{out / REPORT} is not the report of the run in {out / RUN}")
    return info, report


def load_run(out: str | Path) -> Run:
    """Read a finished run folder (``python -m comclip eval ... --out OUT``) and type its examples."""
    path = Path(out).expanduser()
    info, report = _check_folder(path)
    kind = kind_of(str(info.get("dataset")))
    records = read_records(path / EXAMPLES)
    source = DatasetView(info)
    ids = _selection(path, report, records, source)
    run = Run(path, info, report, kind, [records[i] for i in ids], source)
    if run.summary().n_scored != report.get("n_scored"):
        raise InputError(f"{path / EXAMPLES} and {path / REPORT} disagree ({run.summary().n_scored} scored "
                         f"examples, the report says {report.get('n_scored')}); rerun the eval with this --out "
                         "to write the report again")
    return run


def _selection(out: Path, report: dict[str, Any], records: dict[str, dict[str, Any]], source: DatasetView
               ) -> list[str]:
    """The ids of the examples the report covers, in the run's order.

    Normally every record: the report is written from all of them. A later run with a smaller
    ``limit`` leaves more records than the report covers: the dataset says which come first."""
    n_total = report.get("n_total")
    if n_total == len(records):
        return list(records)
    if isinstance(n_total, int) and n_total < len(records) and report.get("limit"):
        ids = source.selection(report["limit"])
        if ids is not None and all(i in records for i in ids):
            return ids
    raise InputError(f"{out / EXAMPLES} holds {len(records)} examples but {out / REPORT} covers {n_total} (a run "
                     "still going, or a later run with another --limit); rerun the eval with this --out to "
                     "write the report again")


# -- typing the records -------------------------------------------------------------------------

def _winoground_groups(meta: Mapping[str, Any]) -> tuple[str, ...]:
    groups = []
    tag = meta.get("collapsed_tag")
    if isinstance(tag, str) and tag.strip():
        groups.append(str(tag))  # as the loader groups it (report's text_score[Object] ...)
    if isinstance(meta.get("tag"), str) and meta["tag"].strip():
        groups.append(f"tag={meta['tag'].strip()}")
    for part in str(meta.get("secondary_tag") or "").split(","):
        if part.strip():
            groups.append(f"secondary_tag={part.strip()}")
    if meta.get("num_main_preds") not in (None, ""):
        groups.append(f"num_main_preds={meta['num_main_preds']}")
    return tuple(groups)


def groups_of(dataset: str, record: Mapping[str, Any]) -> tuple[str, ...]:
    """An example's group labels from its record alone, the report's breakdown label first (the
    loaders' ``Example.groups``; the tests check they agree)."""
    meta = record.get("meta") if isinstance(record.get("meta"), dict) else {}
    if dataset == "winoground":
        return _winoground_groups(meta)
    if dataset == "comvg":
        value = meta.get("neg_value")
        return (value.strip().lower(),) if isinstance(value, str) and value.strip() else ()
    if dataset == "svo":
        types = meta.get("neg_type")
        return ("+".join(types),) if isinstance(types, list) and types else ()
    if dataset == "vl-checklist":  # ids are "<annotation file label>#<entry>[.<pair>][~n]"
        label = str(record["id"]).rsplit("#", 1)[0]
        parts = label.split("/")
        return (label, *("/".join(parts[:d]) for d in range(1, len(parts))))
    direction = record.get("direction")  # retrieval
    return (direction,) if isinstance(direction, str) else ()


def _texts(dataset: str, record: Mapping[str, Any]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``(captions, image names)`` a record holds."""
    meta = record.get("meta") if isinstance(record.get("meta"), dict) else {}

    def pick(keys: tuple[str, ...], where: Mapping[str, Any]) -> tuple[str, ...]:
        return tuple(str(where[k]) for k in keys if isinstance(where.get(k), (str, int)))

    if dataset == "winoground":
        return pick(("caption_0", "caption_1"), meta), ()
    if dataset in ("comvg", "svo"):
        return pick(("sentence",), meta), pick(("pos_image_id", "neg_image_id"), meta)
    if dataset == "vl-checklist":
        return pick(("pos", "neg"), meta), pick(("image",), meta)
    captions = pick(("caption",), record) if record.get("direction") == "t2i" else ()
    return captions, pick(("image",), record)


def _failed_reason(record: Mapping[str, Any]) -> str:
    reason = record.get("reason") if record.get("status") == "failed" else None
    return str(reason) if reason else "not computed"


def _row(dataset: str, index: int, record: dict[str, Any], rules: dict[str, Rule], ks: tuple[int, ...]) -> Row:
    captions, images = _texts(dataset, record)
    if rules:
        ok = has_scores(record, metrics.WINOGROUND_KEYS if dataset == "winoground" else ("pos", "neg"))
    else:
        ok = has_ranks(record)
    results: dict[str, MetricResult] = {}
    clip: Mapping[str, float] = {}
    comclip: Mapping[str, float] = {}
    if ok:
        clip, comclip = record["clip"], record["comclip"]
        for name, (_, right, margin) in rules.items():
            a, b = margin(clip), margin(comclip)
            results[name] = MetricResult(outcome(right(clip), right(comclip)), a, b, b - a)
        if ks:
            a, b = clip["rank"], comclip["rank"]
            clip, comclip = {"rank": a}, {"rank": b}
            results = {f"R@{k}": MetricResult(outcome(a <= k, b <= k), a, b, a - b) for k in ks}
    return Row(str(record["id"]), index, "ok" if ok else FAILED, None if ok else _failed_reason(record),
               groups_of(dataset, record), captions, images, results, clip, comclip,
               record.get("meta") if isinstance(record.get("meta"), dict) else {})


def _report_name(kind: str, metric: str, group: str | None) -> str:
    if kind == "retrieval":
        return f"{group}_{metric}"
    base = (WINOGROUND_RULES if kind == "winoground" else PAIR_RULES)[metric][0]
    return base if group is None else f"{base}[{group}]"


class Run:
    """A finished benchmark run, its examples typed once (see the module's docstring)."""

    def __init__(self, out: Path, info: dict[str, Any], report: dict[str, Any], kind: str,
                 records: list[dict[str, Any]], source: DatasetView) -> None:
        self.out, self.info, self.report, self.kind = out, info, report, kind
        self.dataset = str(info["dataset"])
        self._source = source
        self._records = {str(r["id"]): r for r in records}
        names = list(report["metrics"].get("clip") or {})
        self.ks = tuple(sorted({int(n.rsplit("@", 1)[1]) for n in names if "@" in n})) if kind == "retrieval" else ()
        rules = {} if kind == "retrieval" else WINOGROUND_RULES if kind == "winoground" else PAIR_RULES
        #: the explorer's metrics, in the report's order
        self.metrics: tuple[str, ...] = tuple(rules) if rules else tuple(f"R@{k}" for k in self.ks)
        self.rows: tuple[Row, ...] = tuple(_row(self.dataset, i, r, rules, self.ks) for i, r in enumerate(records))
        self._by_id = {row.id: row for row in self.rows}
        self.notes: list[str] = []
        if kind == "winoground" and any(r.status == "ok" and not r.captions for r in self.rows):
            self._fill_captions()
        seen = dict.fromkeys(g for row in self.rows for g in row.groups)
        known = [g for g in (report.get("groups") or {}) if g in seen]  # the report's order first
        if kind == "retrieval":
            known = [d for d in ("t2i", "i2t") if d in seen]
        #: the labels the report breaks its metrics down by, in the report's order
        self.breakdown: tuple[str, ...] = tuple(known)
        #: every group label, :attr:`breakdown` first, then the rest (Winoground's meta tags) sorted
        self.groups: tuple[str, ...] = (*known, *sorted(set(seen) - set(known)))
        #: the order :meth:`select` uses when given none: retrieval's biggest rank changes first
        self.default_sort = "margin-change" if kind == "retrieval" else "order"
        self._counts: dict[str, dict[str | None, OutcomeCounts]] = {}
        self._orders: dict[tuple[str, str], list[Row]] = {}

    def _fill_captions(self) -> None:
        """Runs made before Winoground's captions were stored: take them from the dataset."""
        rows = []
        for row in self.rows:
            ex = self._source.example(row.id) if not row.captions else None
            captions = tuple(ex.probes[0].captions) if ex is not None and ex.probes else row.captions
            rows.append(row if captions == row.captions else replace(row, captions=captions))
        self.rows = tuple(rows)
        self._by_id = {row.id: row for row in self.rows}
        if self._source.error:
            self.notes.append(f"captions not shown: this run did not store them and {self._source.error}")

    # -- the API ------------------------------------------------------------------------------
    def row(self, ex_id: str) -> Row:
        row = self._by_id.get(str(ex_id))
        if row is None:
            raise InputError(f"no example {ex_id!r} in the run in {self.out}")
        return row

    def check_metric(self, metric: str | None) -> str:
        if metric is None:
            return self.metrics[0]
        if metric not in self.metrics:
            raise InputError(f"unknown metric {metric!r} for {self.dataset}; choose one of: {', '.join(self.metrics)}")
        return metric

    def check_group(self, group: str | None) -> str | None:
        if group is not None and group not in self.groups:
            more = f", ... ({len(self.groups)} in all)" if len(self.groups) > 30 else ""
            shown = ", ".join(self.groups[:30]) + more
            raise InputError(f"unknown group {group!r}; this run's groups: {shown or 'none'}")
        return group

    def counts(self, metric: str | None = None) -> tuple[OutcomeCounts, ...]:
        """The outcome × group table of ``metric`` (default: the first): all examples first
        (``group`` None), then one row per label of :attr:`groups`."""
        metric = self.check_metric(metric)
        return tuple(self._count(metric)[g] for g in (None, *self.groups))

    def _count(self, metric: str) -> dict[str | None, OutcomeCounts]:
        if metric not in self._counts:
            tally: dict[str | None, dict[str, int]] = {g: dict.fromkeys((*OUTCOMES, FAILED), 0)
                                                        for g in (None, *self.groups)}
            for row in self.rows:
                name = row.results[metric].outcome if metric in row.results else FAILED
                for g in (None, *row.groups):
                    tally[g][name] += 1
            self._counts[metric] = {g: OutcomeCounts(metric, g, *(t[o] for o in OUTCOMES), n_failed=t[FAILED])
                                    for g, t in tally.items()}
        return self._counts[metric]

    def summary(self) -> Summary:
        """The report's rows (every metric, overall and per group) with their outcome counts."""
        r = self.report
        denominator = str(r.get("denominator") or "scored")
        files = {row.groups[0] for row in self.rows if row.groups} if self.dataset == "vl-checklist" else set()
        heads = []
        for metric in self.metrics:
            table = self._count(metric)
            groups = (None, *self.groups) if self.kind != "retrieval" else self.groups
            for g in groups:
                name = _report_name(self.kind, metric, g)
                if name not in r["metrics"].get("clip", {}):
                    continue  # a group the report does not break down by (Winoground's meta tags)
                level = self.dataset == "vl-checklist" and g is not None and g not in files
                values = (r["metrics"]["clip"].get(name), r["metrics"]["comclip"].get(name))
                heads.append(Headline(name, metric, g, *values, table[g], denominator == "scored" and not level))
        order = {n: i for i, n in enumerate(r["metrics"].get("clip", {}))}
        heads.sort(key=lambda h: order.get(h.name, len(order)))
        n_scored = sum(1 for row in self.rows if row.status == "ok")
        return Summary(self.dataset, self.kind, str(self.info.get("preset")), len(self.rows), n_scored,
                       len(self.rows) - n_scored, denominator, self.metrics, tuple(heads))

    def select(self, *, metric: str | None = None, outcome: str | None = None, group: str | None = None,
               sort: str | None = None, limit: int | None = None, offset: int = 0) -> Page:
        """The examples with ``outcome`` (one of :data:`OUTCOMES`, or ``failed``; None: all) under
        ``metric`` (default: the first) in ``group`` (None: all), sorted (:data:`SORTS`; None:
        :attr:`default_sort`), one page: ``limit`` rows (None: all) from ``offset``."""
        metric = self.check_metric(metric)
        sort = self.default_sort if sort is None else sort
        group = self.check_group(group)
        if outcome is not None and outcome not in (*OUTCOMES, FAILED):
            raise InputError(f"unknown outcome {outcome!r}; choose one of: {', '.join((*OUTCOMES, FAILED))}")
        if sort not in SORTS:
            raise InputError(f"unknown sort {sort!r}; choose one of: {', '.join(SORTS)}")
        for name, value in (("limit", limit), ("offset", offset)):
            if value is not None and (not isinstance(value, int) or value < 0):
                raise InputError(f"{name} must be a whole number >= 0, got {value}")
        rows = [r for r in self._ordered(metric, sort)
                if (group is None or group in r.groups)
                and (outcome is None or (r.outcome(metric) if r.status == "ok" else FAILED) == outcome)]
        end = None if limit is None else offset + limit
        return Page(tuple(rows[offset:end]), len(rows), offset, metric, outcome, group, sort)

    def _ordered(self, metric: str, sort: str) -> list[Row]:
        if sort == "order":
            return list(self.rows)
        key = (metric, sort)
        if key not in self._orders:
            key_of: dict[str, Callable[[float], float]] = {
                "margin-change": lambda c: -abs(c), "margin-gain": lambda c: -c, "margin-loss": lambda c: c}
            by = key_of[sort]
            scored = sorted((r for r in self.rows if metric in r.results),
                            key=lambda r: (by(r.results[metric].change), r.index))
            self._orders[key] = scored + [r for r in self.rows if metric not in r.results]
        return self._orders[key]

    def example(self, ex_id: str) -> ExampleDetail:
        """One example with everything needed to show it again (images, captions, both methods'
        stored scores, the run's preset and options); see :class:`ExampleDetail`."""
        row = self.row(ex_id)
        record = self._records[row.id]
        probes = self._source.probes(row.id, record)
        tops: tuple[tuple[Candidate, ...], ...] = ((), ())
        if self.kind == "retrieval":
            tops = tuple(self._source.candidates(record, m) for m in ("clip", "comclip"))
        return ExampleDetail(row, record, self.dataset, str(self.info.get("preset")), self.info.get("models") or {},
                             self.info.get("options") or {}, probes, tops[0], tops[1], self._source.error)

    def engine_options(self) -> Options:
        """The run's engine options (fields added since the run take their defaults)."""
        return Options.from_mapping(self.info.get("options") or {})

    def image(self, ex_id: str, role: str) -> Image.Image:
        """An example's image by role (:class:`ProbeView.role`), decoded; :class:`InputError` if it
        cannot be opened. Works for images embedded in the dataset (Winoground's parquet)."""
        return self._source.image(self.row(ex_id).id, role)

    def items(self, ex_id: str) -> list[tuple[LoadedImage, list[str], list[SceneGraph | None] | None]]:
        """A pair-dataset example as the run gave it to the engine: ``(image, captions, graphs)`` per
        probe (:meth:`ExampleDetail.probes` order; their ``keys`` name the scores). Scoring them with
        the run's preset and :meth:`engine_options` reproduces the stored record (the app does this
        through its own service). :class:`InputError` for retrieval queries and unscorable examples."""
        return self._source.items(self.row(ex_id).id)

    def rescore(self, engine: ComCLIP, ex_id: str, options: Options | None = None) -> dict[str, Any]:
        """Score the example again with ``engine`` and return a record shaped like the stored one
        (pairs: both methods' scores; retrieval: ComCLIP's re-ranking of the stored CLIP top-k).
        ``options``: the engine options to use (default: the run's, :meth:`engine_options`): with
        an engine of the run's preset, it reproduces the stored record."""
        row = self.row(ex_id)
        return self._source.rescore(engine, row.id, self._records[row.id], options or self.engine_options())


__all__ = ["FAILED", "OUTCOMES", "SORTS", "Candidate", "ExampleDetail", "Headline", "MetricResult", "OutcomeCounts",
           "Page", "ProbeView", "Row", "Run", "Summary", "groups_of", "load_run", "outcome"]
