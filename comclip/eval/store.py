"""``OUT/examples.jsonl``: per-example results streamed as they are computed, and resumed.

Each line is one example: ``{"id", "status": "ok"|"failed", "reason"?, "clip": {...},
"comclip": {...}, ...}``. Lines are appended and flushed to disk after every batch, so an
interrupted run loses nothing it computed; a rerun with the same ``--out`` reads them back and
computes only what is missing. ``OUT/run.json`` records what produced the results (dataset,
data, preset, models, options); a rerun that differs is refused instead of mixing results.

Several processes (``torchrun``, see :mod:`comclip.eval.distributed`) share one ``OUT``: each
opens the store with its ``shard`` name and appends to ``OUT/shards/<shard>.jsonl``, while
reading every shard and ``examples.jsonl`` to know what is done; rank 0 then merges
everything into ``examples.jsonl`` and removes the shards.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from comclip.errors import InputError
from comclip.options import Options

EXAMPLES = "examples.jsonl"
RUN = "run.json"
SHARDS = "shards"


class ResultStore:
    def __init__(self, out: str | Path, signature: dict[str, Any], *, shard: str | None = None) -> None:
        self.out = Path(out).expanduser()
        try:
            (self.out / SHARDS if shard else self.out).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"cannot create output folder {self.out}: {exc.strerror or exc}") from None
        self.main = self.out / EXAMPLES
        self.path = self.out / SHARDS / f"{shard}.jsonl" if shard else self.main
        self._check_signature(signature)
        self.records: dict[str, dict[str, Any]] = {}
        for path in [self.main, *self.shards()]:
            # only this store's own file is repaired (a torn last line cut off); others are just read
            self.records |= self._read(path, repair=path == self.path)
        self._fh = None

    def shards(self) -> list[Path]:
        return sorted((self.out / SHARDS).glob("*.jsonl"))

    def merge(self, order: list[str]) -> None:
        """Write every record (ids in ``order`` first, then the rest as read) to ``examples.jsonl``
        at once, then remove the shards: one file, as a single-process run writes it."""
        self.close()
        records = dict(self.records)
        for path in self.shards():
            records |= self._read(path, repair=False)
        ordered = [records[i] for i in order if i in records]
        seen = set(order)
        ordered += [r for i, r in records.items() if i not in seen]
        _write_atomic(self.main, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in ordered))
        for path in self.shards():
            path.unlink(missing_ok=True)
        self.records = {r["id"]: r for r in ordered}

    # -- run.json -----------------------------------------------------------------------------
    @staticmethod
    def precheck(out: str | Path, partial: dict[str, Any]) -> None:
        """Refuse early (before loading any model) an ``out`` made by a run that differs in the
        given keys; the full check happens when the store is opened."""
        _compare(Path(out).expanduser(), partial, only_given=True)

    def _check_signature(self, signature: dict[str, Any]) -> None:
        run = self.out / RUN
        if run.is_file():
            _compare(self.out, signature)
        elif self.main.exists():
            raise InputError(f"{self.main} exists but {run} does not, so it cannot be resumed safely; "
                             "use another --out or delete that folder")
        else:
            _write_atomic(run, json.dumps(_as_json(signature), indent=2) + "\n")

    # -- examples.jsonl -----------------------------------------------------------------------
    @staticmethod
    def _read(path: Path, repair: bool = True) -> dict[str, dict[str, Any]]:
        if not path.exists():
            return {}
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
        records: dict[str, dict[str, Any]] = {}
        bad = 0
        pos = 0
        good_end = 0
        for raw in data.split(b"\n"):
            end = pos + len(raw) + 1
            complete = end <= len(data)  # the last piece has no newline: a write cut short
            pos = end
            if not raw.strip():
                if complete:
                    good_end = end
                continue
            rec = _parse(raw)
            if rec is None:
                bad += 1
            else:
                records[rec["id"]] = rec  # the last line for an id wins
            if complete:
                good_end = end
        if repair and good_end < len(data):  # drop a torn last line so new lines start cleanly
            with path.open("r+b") as f:
                f.truncate(good_end)
        if bad:
            print(f"warning: {path}: {bad} unreadable line(s) ignored; those examples are recomputed",
                  file=sys.stderr)
        return records

    def append(self, records: list[dict[str, Any]]) -> None:
        """Append and flush to disk at once: an interruption keeps every finished batch."""
        if not records:
            return
        if self._fh is None:
            self._fh = self.path.open("a", encoding="utf-8")
        self._fh.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
        self._fh.flush()
        os.fsync(self._fh.fileno())
        for r in records:
            self.records[r["id"]] = r

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_json_object(path: Path, what: str, remedy: str = "") -> dict[str, Any]:
    """The JSON object in ``path``; one InputError (``… is unreadable (why)`` or ``… is not WHAT``, then
    ``remedy``) otherwise."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path} is unreadable ({' '.join(str(exc).split())}){remedy}") from None
    if not isinstance(doc, dict):
        raise InputError(f"{path} is not {what}{remedy}")
    return doc


def _as_json(value: Any) -> Any:
    return json.loads(json.dumps(value))  # tuples become lists etc., as they read back


def _compare(out: Path, signature: dict[str, Any], only_given: bool = False) -> None:
    run = out / RUN
    if not run.is_file():
        return
    old = read_json_object(run, "a run record", "; use another --out or delete it")
    signature = _as_json(signature)
    if isinstance(old.get("options"), dict):  # options added since that run: it used their defaults
        old["options"] = _as_json(Options().to_dict()) | old["options"]
    keys = set(signature) if only_given else set(old) | set(signature)
    for key in sorted(keys):
        if old.get(key) != signature.get(key):
            raise InputError(f"{out} holds results of a different run ({key}: {_short(old.get(key))} there, "
                             f"{_short(signature.get(key))} now); use another --out or delete that folder")


def _parse(raw: bytes) -> dict[str, Any] | None:
    try:
        rec = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(rec, dict) or not isinstance(rec.get("id"), str) or rec.get("status") not in ("ok", "failed"):
        return None
    return rec


def _short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def read_records(path: str | Path) -> dict[str, dict[str, Any]]:
    """The records of an ``examples.jsonl`` (or shard) by id, in file order, read only: nothing is
    repaired; unreadable lines are skipped with one warning on stderr, as a resume does."""
    return ResultStore._read(Path(path), repair=False)


def has_ranks(record: dict[str, Any] | None) -> bool:
    """An ``ok`` retrieval record holding the target's rank under both methods."""
    return (record is not None and record.get("status") == "ok"
            and all(isinstance(record.get(m), dict) and isinstance(record[m].get("rank"), int)
                    for m in ("clip", "comclip")))


def has_scores(record: dict[str, Any] | None, keys: tuple[str, ...] | list[str]) -> bool:
    """An ``ok`` record holding every named score for both methods."""
    return (record is not None and record.get("status") == "ok"
            and all(isinstance(record.get(m), dict)
                    and all(isinstance(record[m].get(k), (int, float)) for k in keys) for m in ("clip", "comclip")))
