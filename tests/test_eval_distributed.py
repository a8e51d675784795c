"""``torchrun --standalone --nproc-per-node 2 -m comclip eval ...`` on CPU (gloo): the two processes
share the examples, rank 0 merges their shards, and the result equals a single-process run —
same counts, metrics and per-example scores, in the same order — with ``world_size`` 2. After a
crash of one process, rerunning the command scores only what is missing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from comclip.eval.distributed import SINGLE, World

from . import eval_synth as synth

ROOT = Path(__file__).resolve().parent.parent
EVAL_ARGS = ["--preset", "tiny", "--device", "cpu", "--parser", "rules", "--no-progress", "--batch-size", "2"]

#: a launcher that makes rank 1 die (as a crashed process would) when about to write its 2nd batch
CRASHING = """
import os, sys
from comclip.eval.store import ResultStore
real = ResultStore.append
calls = []
def append(self, records):
    calls.append(1)
    if os.environ.get("RANK") == "1" and len(calls) == 2:
        os._exit(17)  # no cleanup, no exception handling: a hard crash
    return real(self, records)
ResultStore.append = append
from comclip.__main__ import main
sys.exit(main())
"""


def _env(cache_dir: Path) -> dict[str, str]:
    env = dict(os.environ, COMCLIP_CACHE=str(cache_dir), HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1",
               PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    return env


def _single(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "comclip", "eval", *args, *EVAL_ARGS], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)


def _torchrun(target: list[str], args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", *target,
           "eval", *args, *EVAL_ARGS]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def _records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "examples.jsonl").read_text().splitlines()]


def _same(report_a: dict, report_b: dict, out_a: Path, out_b: Path) -> None:
    for key in ("n_total", "n_scored", "n_failed", "failures", "counts", "groups"):
        assert report_a.get(key) == report_b.get(key), key
    for m in ("clip", "comclip"):
        assert report_a["metrics"][m] == pytest.approx(report_b["metrics"][m], abs=1e-6)
    a, b = _records(out_a), _records(out_b)
    assert [r["id"] for r in a] == [r["id"] for r in b]  # one file, in the examples' order
    for ra, rb in zip(a, b, strict=True):
        assert ra["status"] == rb["status"] and ra.get("reason") == rb.get("reason")
        for m in ("clip", "comclip"):
            if ra["status"] == "ok" and "rank" in ra[m]:  # retrieval: same ranks and candidates
                assert (ra[m]["rank"], ra[m]["top"]) == (rb[m]["rank"], rb[m]["top"]), ra["id"]
                assert ra[m]["scores"] == pytest.approx(rb[m]["scores"], abs=1e-6), ra["id"]
            elif ra["status"] == "ok":
                assert ra[m] == pytest.approx(rb[m], abs=1e-6), ra["id"]


@pytest.fixture(scope="module")
def comvg_single(cache_dir, tmp_path_factory):
    """A small ComVG copy (one image missing) and its single-process run."""
    tmp = tmp_path_factory.mktemp("comvg")
    data = synth.write_comvg(tmp / "comvg", n=7, missing_ids=(1003,))
    single = _single(["comvg", "--data", str(data), "--out", str(tmp / "one"), "--json"], _env(cache_dir))
    assert single.returncode == 0, single.stderr
    return data, tmp / "one", json.loads(single.stdout.splitlines()[-1])


def test_two_processes_equal_one(cache_dir, tmp_path, comvg_single):
    data, one, r1 = comvg_single
    two = tmp_path / "two"
    dist = _torchrun(["-m", "comclip"], ["comvg", "--data", str(data), "--out", str(two), "--json"], _env(cache_dir))
    assert dist.returncode == 0, dist.stderr[-3000:]
    lines = [ln for ln in dist.stdout.splitlines() if ln.startswith("{")]
    assert len(lines) == 1  # only rank 0 reports
    r2 = json.loads(lines[0])
    assert (r1["world_size"], r2["world_size"]) == (1, 2)
    assert json.loads((two / "report.json").read_text())["world_size"] == 2
    assert (r2["n_total"], r2["n_failed"]) == (7, 1)
    _same(r1, r2, one, two)
    assert not list((two / "shards").glob("*.jsonl"))  # merged into examples.jsonl


def test_crash_of_one_process_then_resume(cache_dir, tmp_path, comvg_single):
    data, one, r1 = comvg_single
    env = _env(cache_dir)
    two = tmp_path / "two"
    args = ["comvg", "--data", str(data), "--out", str(two)]
    launcher = tmp_path / "crashing.py"
    launcher.write_text(CRASHING)
    crashed = _torchrun([str(launcher)], args, env)
    assert crashed.returncode != 0
    shard = two / "shards" / "rank-00001.jsonl"
    assert shard.is_file() and len(shard.read_text().splitlines()) == 2  # rank 1's first batch survived
    assert not (two / "report.json").exists()
    kept = {r["id"]: r for r in map(json.loads, shard.read_text().splitlines())}
    resumed = _torchrun(["-m", "comclip"], args, env)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    r2 = json.loads((two / "report.json").read_text())
    assert r2["world_size"] == 2
    _same(r1, r2, one, two)
    merged = {r["id"]: r for r in _records(two)}
    assert all(merged[i] == kept[i] for i in kept)  # what the crashed process wrote was kept, not redone


def test_retrieval_two_processes(cache_dir, tmp_path):
    """Both directions of retrieval, the gallery encoded in shares: the same counts, ranks and
    scores as one process (each caption is grounded on its own, whatever shares its batch)."""
    env = _env(cache_dir)
    data = synth.write_karpathy(tmp_path / "f", "flickr30k", n_test=5, missing=(1,))
    one, two = tmp_path / "one", tmp_path / "two"
    args = ["flickr30k", "--data", str(data), "--topk", "3"]
    assert _single([*args, "--out", str(one)], env).returncode == 0
    dist = _torchrun(["-m", "comclip"], [*args, "--out", str(two)], env)
    assert dist.returncode == 0, dist.stderr[-3000:]
    r1, r2 = (json.loads((o / "report.json").read_text()) for o in (one, two))
    assert r2["world_size"] == 2 and r2["n_total"] == 15 and r2["n_failed"] == 3  # the missing image's queries
    for key in ("n_total", "n_scored", "n_failed", "failures", "counts", "gallery"):
        assert r1[key] == r2[key], key
    assert r1["metrics"]["clip"] == r2["metrics"]["clip"]
    a, b = _records(one), _records(two)
    assert [r["id"] for r in a] == [r["id"] for r in b]
    for ra, rb in zip(a, b, strict=True):
        if ra["status"] == "ok":
            assert (ra["clip"]["rank"], ra["clip"]["top"]) == (rb["clip"]["rank"], rb["clip"]["top"])
    _same(r1, r2, one, two)


def test_world_shares():
    world = World(rank=1, size=3)
    assert world.share(list(range(8))) == [1, 4, 7] and world.owns(4) and not world.owns(3)
    assert SINGLE.share([1, 2]) == [1, 2] and SINGLE.main and not SINGLE.distributed
