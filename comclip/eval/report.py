"""The final report: ``report.json``, ``report.md`` (CLIP vs ComCLIP, with counts) and ``report.png``.

Every number is computed from the per-example records in ``examples.jsonl`` — never from state
held by the run — so a resumed run reports exactly what an uninterrupted one does. Metrics are
over the scored examples (``denominator="all"``: over every selected example, a failed one counting
as a miss, as the official retrieval script's fixed 1000); ``n_scored + n_failed == n_total``
always, and every failure is listed with its reason.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from comclip.eval import metrics
from comclip.eval.datasets import Example, vl_checklist
from comclip.eval.store import has_scores

if TYPE_CHECKING:
    from comclip.engine import ComCLIP

METHODS = ("clip", "comclip")
LABELS = {"clip": "CLIP", "comclip": "ComCLIP"}
MD_FAILURES = 100


def _metric_fn(kind: str):
    if kind == "winoground":
        return metrics.winoground
    return lambda tables: {"accuracy": metrics.pair_accuracy(tables)}


def _miss(kind: str) -> dict[str, float]:
    """A score table that loses every comparison (all ties): what a failed example counts as with
    ``denominator="all"``."""
    return dict.fromkeys(metrics.WINOGROUND_KEYS if kind == "winoground" else ("pos", "neg"), 0.0)


def summarise_pairs(kind: str, selection: Sequence[Example], records: dict[str, dict[str, Any]],
                    denominator: str = "scored") -> dict[str, Any]:
    """Counts, failures and metrics (overall and per group) of the selected examples' records.

    ``denominator``: metrics over the scored examples (``scored``) or over all of them, each failed
    one a miss (``all``)."""
    ok: list[tuple[Example, dict[str, Any]]] = []
    failures: list[dict[str, str]] = []
    for ex in selection:
        rec = records.get(ex.id)
        if has_scores(rec, ex.keys):
            ok.append((ex, rec))  # type: ignore[arg-type]
        else:
            reason = rec.get("reason") if rec is not None and rec.get("status") == "failed" else None
            failures.append({"id": ex.id, "reason": reason or "not computed"})
    fn = _metric_fn(kind)
    groups: list[str] = list(dict.fromkeys(g for ex in selection for g in ex.groups))
    group_counts = {}
    for g in groups:
        total = sum(1 for ex in selection if g in ex.groups)
        scored = sum(1 for ex, _ in ok if g in ex.groups)
        group_counts[g] = {"n_total": total, "n_scored": scored, "n_failed": total - scored}
    result: dict[str, dict[str, float | None]] = {m: {} for m in METHODS}
    counts: dict[str, dict[str, int]] = {}
    for label, members in [(None, ok)] + [(g, [(e, r) for e, r in ok if g in e.groups]) for g in groups]:
        n_failed = len(failures) if label is None else group_counts[label]["n_failed"]
        misses = [_miss(kind)] * n_failed if denominator == "all" else []
        for m in METHODS:
            for name, value in fn([r[m] for _, r in members] + misses).items():
                key = name if label is None else f"{name}[{label}]"
                result[m][key] = value
                counts[key] = {"n_scored": len(members), "n_failed": n_failed}
    if kind == "vl-checklist":
        _vl_checklist_levels(result, counts, group_counts)
    return {"n_total": len(selection), "n_scored": len(ok), "n_failed": len(failures), "failures": failures,
            "metrics": result, "counts": counts, "groups": group_counts, "denominator": denominator}


def _vl_checklist_levels(result: dict[str, dict[str, float | None]], counts: dict[str, dict[str, int]],
                         group_counts: dict[str, dict[str, int]]) -> None:
    """Add VL-CheckList's subtype and type scores (means of the per-file accuracies, see
    :func:`comclip.eval.datasets.vl_checklist.aggregate`) with the counts of the files under them."""
    files = dict(group_counts)
    for m in METHODS:
        levels = vl_checklist.aggregate({f: result[m][f"accuracy[{f}]"] for f in files})
        result[m].update({f"accuracy[{node}]": v for node, v in levels.items()})
    for node in levels:
        under = [c for f, c in files.items() if f.startswith(node + "/")]
        group_counts[node] = {k: sum(c[k] for c in under) for k in ("n_total", "n_scored", "n_failed")}
        counts[f"accuracy[{node}]"] = {k: group_counts[node][k] for k in ("n_scored", "n_failed")}
    # shown from the top: overall, types, subtypes ..., then the annotation files
    order = ["accuracy", *(f"accuracy[{n}]" for n in levels), *(f"accuracy[{f}]" for f in files)]
    for m in METHODS:
        result[m] = {k: result[m][k] for k in order}


def build(loaded: Any, summary: dict[str, Any], *, engine: ComCLIP, limit: int | None, out: Path) -> dict[str, Any]:
    report = {"dataset": loaded.dataset, **summary, "source": loaded.source, "images": loaded.images,
              "preset": engine.preset_name, "models": engine.models(), "options": asdict(engine.options),
              "limit": limit, "notes": list(loaded.notes),
              "files": {name: str(out / name) for name in ("examples.jsonl", "report.json", "report.md", "report.png")}}
    if report["n_scored"] + report["n_failed"] != report["n_total"]:  # an invariant, checked loudly
        raise AssertionError(f"report counts do not add up: {report['n_scored']} + {report['n_failed']} "
                             f"!= {report['n_total']}")
    return report


def write(report: dict[str, Any], out: Path) -> None:
    _atomic(out / "report.json", json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    _atomic(out / "report.md", markdown(report))
    figure(report, out / "report.png")


def _atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def pct(value: float | None) -> str:
    return "—" if value is None else f"{100.0 * value:.1f}"


def delta(a: float | None, b: float | None) -> str:
    return "—" if a is None or b is None else f"{100.0 * (b - a):+.1f}"


def table(report: dict[str, Any]) -> str:
    """The CLIP vs ComCLIP table (values in %), one row per metric, with how many examples it
    covers: ``scored`` (the metric is over these) and ``failed`` (could not be scored; with
    ``denominator="all"`` the metric is over both, the failed ones as misses)."""
    lines = ["| metric | scored | failed | CLIP | ComCLIP | Δ |", "|---|---:|---:|---:|---:|---:|"]
    clip, comclip = report["metrics"]["clip"], report["metrics"]["comclip"]
    for name in clip:
        n = report["counts"].get(name, {})
        lines.append(f"| {name} | {n.get('n_scored', '')} | {n.get('n_failed', '')} | {pct(clip[name])} "
                     f"| {pct(comclip.get(name))} | {delta(clip[name], comclip.get(name))} |")
    return "\n".join(lines)


def markdown(report: dict[str, Any]) -> str:
    opts = report["options"]
    parts = [
        f"# ComCLIP evaluation: {report['dataset']}",
        "",
        table(report),
        "",
        f"{report['n_total']} examples: {report['n_scored']} scored, {report['n_failed']} failed. "
        + ("Metrics are over all the examples, a failed one counting as a miss (`--denominator all`)"
           if report.get("denominator") == "all" else "Metrics are over the scored examples")
        + ", in %; a tie counts as a loss.",
    ]
    if "gallery" in report:
        g = report["gallery"]
        parts.append(f"Gallery: the {g['n_images']} images of the `{g['split']}` split ({g['n_failed']} unreadable, "
                     f"left out); CLIP ranks all of them, ComCLIP re-ranks CLIP's top {report['topk']}.")
    parts += [
        "",
        f"- preset `{report['preset']}`: encoder `{report['models'].get('encoder')}`, "
        f"detector `{report['models'].get('detector')}`",
        "- options: " + ", ".join(f"{k}={v}" for k, v in opts.items()),
        f"- data: `{report['source']}`; images: `{report['images']}`"
        + (f"; first {report['limit']} examples" if report.get("limit") else ""),
    ]
    parts += [f"- {n}" for n in report.get("notes", [])]
    if report.get("world_size", 1) > 1:
        parts.append(f"- scored by {report['world_size']} processes (torchrun), merged into one examples.jsonl")
    if report["models"].get("random_weights"):
        parts += ["", f"**Preset `{report['preset']}` has random weights: these numbers mean nothing.**"]
    if report["failures"]:
        parts += ["", f"## Failures ({report['n_failed']})", "", "| id | reason |", "|---|---|"]
        for f in report["failures"][:MD_FAILURES]:
            parts.append(f"| {_cell(f['id'])} | {_cell(f['reason'])} |")
        if report["n_failed"] > MD_FAILURES:
            parts.append(f"\n… and {report['n_failed'] - MD_FAILURES} more: see report.json.")
    return "\n".join(parts) + "\n"


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def figure(report: dict[str, Any], path: Path) -> None:
    """Grouped bars, CLIP vs ComCLIP, one pair per metric (values in %)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    names = list(report["metrics"]["clip"])
    values = {m: [report["metrics"][m].get(n) for n in names] for m in METHODS}
    height = max(2.5, 0.45 * len(names) + 1.2)
    fig = Figure(figsize=(7.5, height), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ys = range(len(names))
    bar = 0.38
    for k, m in enumerate(METHODS):
        xs = [0.0 if v is None else 100.0 * v for v in values[m]]
        pos = [y + (k - 0.5) * bar for y in ys]
        ax.barh(pos, xs, height=bar, label=LABELS[m], color=("#9aa5b1", "#2f7ed8")[k])
        for p, v in zip(pos, values[m], strict=True):
            ax.text(1.0 if v is None else 100.0 * v + 1.0, p, pct(v), va="center", fontsize=7)
    ax.set_yticks(list(ys))
    ax.set_yticklabels([f"{n} (n={report['counts'].get(n, {}).get('n_scored', 0)})" for n in names], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 110)
    ax.set_xlabel("%")
    ax.set_title(f"{report['dataset']}: CLIP vs ComCLIP ({report['n_scored']} of {report['n_total']} scored, "
                 f"preset {report['preset']})", fontsize=9)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
