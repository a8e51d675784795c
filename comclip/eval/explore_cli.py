"""``python -m comclip explore OUT``: a finished benchmark run, example by example — where ComCLIP
fixes CLIP, where it breaks it, and by how much (:mod:`comclip.eval.explore`)."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

from comclip.errors import InputError

if TYPE_CHECKING:
    from comclip.eval.explore import Headline, OutcomeCounts, Page, Run

#: :data:`comclip.eval.explore.OUTCOMES` + ``failed`` and :data:`~comclip.eval.explore.SORTS`,
#: written out so that ``--help`` imports nothing (a test keeps them equal).
OUTCOME_CHOICES = ("fixed", "broken", "both_right", "both_wrong", "failed")
SORT_CHOICES = ("order", "margin-change", "margin-gain", "margin-loss")
CAPTION_WIDTH = 70

EPILOG = """\
outcomes, per example and metric (right/wrong as report.json counts it; a tie is a loss):
  fixed       CLIP wrong, ComCLIP right         broken      CLIP right, ComCLIP wrong
  both_right  both right                        both_wrong  both wrong
  failed      not scored (the reason is shown)
metrics: text, image, group (winoground); pair (comvg, svo, vl-checklist); R@1, R@5, R@10 (retrieval:
  the target ranked at K or better)
margins (> 0 exactly when right): text min(c0_i0 - c1_i0, c1_i1 - c0_i1); image min(c0_i0 - c0_i1,
  c1_i1 - c1_i0); group min(text, image); pair pos - neg. change = ComCLIP's margin - CLIP's.
  Retrieval shows each method's rank of the target; change = CLIP's rank - ComCLIP's.
  --sort margin-change: the biggest change either way first; margin-gain: ComCLIP's biggest gains
  first; margin-loss: its biggest losses first (ties in the run's order; failed examples last).
groups: the report's breakdown (winoground collapsed_tag, comvg neg_value, svo negative type,
  vl-checklist file / subtype / type, retrieval t2i / i2t) and winoground's tag=..., secondary_tag=...,
  num_main_preds=...; --counts lists them with their outcome counts.

--json: one JSON object per example ({"id", "status", "groups", "captions", "outcomes": {METRIC:
OUTCOME}, "results": {METRIC: {"outcome", "clip", "comclip", "change"}}, "clip", "comclip"}), then a
last line {"summary": ..., "page": ...}; with --counts, one object per group, then the summary.
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("explore", help="a benchmark run's examples: where ComCLIP fixes or breaks CLIP",
                       description="List the examples of a finished `eval` run by outcome (ComCLIP fixes CLIP, "
                                   "breaks it, both right, both wrong), group and margin change.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", metavar="OUT", help="the run's folder (eval's --out)")
    p.add_argument("--metric", metavar="NAME", default=None,
                   help="text, image or group (winoground); pair; R@1, R@5, R@10 (retrieval) [the first]")
    p.add_argument("--outcome", choices=OUTCOME_CHOICES, default=None, help="only the examples with this outcome")
    p.add_argument("--group", metavar="LABEL", default=None, help="only the examples of this group (see --counts)")
    p.add_argument("--sort", choices=SORT_CHOICES, default=None,
                   help="order (as in examples.jsonl), margin-change (the biggest change either way first), "
                        "margin-gain (ComCLIP's biggest gains first) or margin-loss (its losses first) "
                        "[order; retrieval: margin-change, the queries whose rank changed most]")
    p.add_argument("--limit", type=int, default=20, metavar="N", help="at most N examples [20]")
    p.add_argument("--offset", type=int, default=0, metavar="N", help="skip the first N matching examples [0]")
    p.add_argument("--counts", action="store_true", help="the outcome x group table instead of the examples")
    p.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    p.set_defaults(func=run_explore)


def run_explore(args: argparse.Namespace) -> int:
    from comclip.eval.explore import load_run

    if args.limit < 1:
        raise InputError(f"--limit must be a whole number >= 1, got {args.limit}")
    if args.offset < 0:
        raise InputError(f"--offset must be a whole number >= 0, got {args.offset}")
    run = load_run(args.out)
    metric = run.check_metric(args.metric)
    if args.counts:
        run.check_group(args.group)
        print_counts(run, metric, args.group, args.json)
        return 0
    page = run.select(metric=metric, outcome=args.outcome, group=args.group, sort=args.sort, limit=args.limit,
                      offset=args.offset)
    if args.json:
        for row in page:
            print(json.dumps(row.to_dict(), ensure_ascii=False))
        place = {"metric": page.metric, "outcome": page.outcome, "group": page.group, "sort": page.sort,
                 "offset": page.offset, "shown": len(page), "total": page.total}
        print(json.dumps({"summary": run.summary().to_dict(), "page": place}, ensure_ascii=False))
        return 0
    for note in run.notes:
        print(f"note: {note}")
    top = [g for g in (None, *run.breakdown) if args.group is None or g in (None, args.group)]
    if args.group is not None and args.group not in top:
        top.append(args.group)
    print(counts_table(run, metric, top))
    print()
    print(table(run, page))
    print()
    print(page_line(page))
    for line in summary_lines(run, metric, args.group):
        print(line)
    return 0


def _short(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[:width - 1] + "…"


def _number(value: float, retrieval: bool, signed: bool = False) -> str:
    if retrieval:
        return f"{int(value):+d}" if signed else str(int(value))
    return f"{value:+.4f}"


def _columns(rows: list[list[str]]) -> str:
    widths = [max(len(r[k]) for r in rows) for k in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows)


def table(run: Run, page: Page) -> str:
    """The page's examples: id, group, each metric's outcome, the chosen metric's CLIP and ComCLIP
    margin (retrieval: rank) and their change, and the captions (or why it failed), shortened."""
    retrieval = run.kind == "retrieval"
    what = "rank" if retrieval else "margin"
    head = ["id", "group", *run.metrics, f"CLIP {what}", f"ComCLIP {what}", "change",
            "query" if retrieval else "captions"]
    lines = [head]
    for row in page:
        r = row.results.get(page.metric)
        texts = row.captions or row.images
        words = " / ".join(texts) if row.status == "ok" else f"failed: {row.reason}"
        numbers = (["—"] * 3 if r is None else
                   [_number(r.clip, retrieval), _number(r.comclip, retrieval), _number(r.change, retrieval, True)])
        lines.append([row.id, row.groups[0] if row.groups else "—", *(row.outcome(m) or "—" for m in run.metrics),
                      *numbers, _short(words, CAPTION_WIDTH)])
    if len(lines) == 1:
        return "(no example matches)"
    return _columns(lines)


def page_line(page: Page) -> str:
    where = [f"metric {page.metric}"] + [f"{k} {v}" for k, v in (("outcome", page.outcome), ("group", page.group))
                                         if v is not None]
    span = f"{page.offset + 1}-{page.offset + len(page)}" if len(page) else "none"
    return f"showing {span} of {page.total} ({', '.join(where)}; sorted by {page.sort})"


def summary_lines(run: Run, metric: str, group: str | None) -> list[str]:
    """The run's counts, then one line per report row of ``metric`` for ``group`` (None: the whole
    run; retrieval: each direction) with its outcome counts."""
    s = run.summary()
    lines = [f"{s.dataset} (preset {s.preset}): {s.n_total} examples, {s.n_scored} scored, {s.n_failed} failed"]
    for h in s.headlines:
        if h.metric == metric and (h.group == group or (group is None and run.kind == "retrieval")):
            lines.append(_headline(h, s.denominator))
    return lines  # no headline for a group the report does not break down by (Winoground's meta tags)


def _headline(h: Headline, denominator: str) -> str:
    def pct(v: float | None) -> str:
        return "—" if v is None else f"{100 * v:.1f}"

    why = ""
    if not h.matches_counts:
        why = (" (the report's values are over all the examples, a failed one a miss)" if denominator == "all"
               else " (the report's values are means of the per-file accuracies)")
    return f"{h.name}: CLIP {pct(h.clip)}, ComCLIP {pct(h.comclip)}; " + _outcome_counts(h.counts) + why


def _outcome_counts(c: OutcomeCounts) -> str:
    return (f"fixed {c.fixed}, broken {c.broken}, both_right {c.both_right}, both_wrong {c.both_wrong} "
            f"(of {c.n_scored} scored; {c.n_failed} failed)")


def print_counts(run: Run, metric: str, group: str | None, as_json: bool) -> None:
    """``--counts``: every group's outcome counts (or the whole run's and ``group``'s)."""
    if as_json:
        for c in run.counts(metric):
            if group is None or c.group in (None, group):
                print(json.dumps(c.to_dict(), ensure_ascii=False))
        print(json.dumps({"summary": run.summary().to_dict()}, ensure_ascii=False))
        return
    print(counts_table(run, metric, [None, *run.groups] if group is None else [None, group]))


def counts_table(run: Run, metric: str, groups: list[str | None]) -> str:
    """The outcome x group table of ``metric`` for ``groups`` (None: the whole run), with each
    method's score over the scored examples."""
    rows = [c for c in run.counts(metric) if c.group in groups]
    lines = [["group", "fixed", "broken", "both_right", "both_wrong", "scored", "failed", "CLIP %", "ComCLIP %"]]
    for c in rows:
        pct = [f"{100 * n / c.n_scored:.1f}" if c.n_scored else "—" for n in (c.clip_right, c.comclip_right)]
        lines.append([c.group or "(all)", *map(str, (c.fixed, c.broken, c.both_right, c.both_wrong, c.n_scored,
                                                     c.n_failed)), *pct])
    head = f"{run.dataset}, metric {metric}: outcomes per group (CLIP % and ComCLIP % over the scored ones)"
    return head + "\n" + _columns(lines)
