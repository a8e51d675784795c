#!/usr/bin/env bash
# The GPU checks, in one run of under 10 minutes on one lent GPU (an H200 here):
#   1. the speed bench: python -m comclip bench --preset arch-l14 --device cuda --pairs 256 --captions-per-image 4
#   2. the CUDA tests:  python -m pytest -m cuda
#   3. an app request's latency: bench --click (1 image, 4 captions, caches emptied) on arch-b32, 20 runs
# then the targets: >= 100 pairs/s, >= 25x the reference, <= 1.25x the floor, one request p50 <= 100 ms.
#
#   scripts/gpu_check.sh --wheels   # here, once: fetch the wheels the GPU machine lacks into .whl/
#   scripts/gpu_check.sh            # there: install .whl/ if present, run the checks; files under $OUT
#
# Exit status: 0 when every check ran and every target is met, 1 otherwise.
set -uo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = "--wheels" ]; then  # open_clip and its two small needs (torch, transformers, timm are there)
    grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo /.whl/ >> .git/info/exclude
    exec python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 --platform any -d .whl \
        "open_clip_torch>=3.3,<4" ftfy wcwidth
fi

OUT=${OUT:-gpu-check}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
if ls .whl/*.whl > /dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        || exit 1
    export PYTHONPATH=/tmp/site:$PWD
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)" \
    | tee -a "$OUT/gpu.txt"

echo "== 1. bench arch-l14 on cuda, 256 pairs"
timeout 330 python3 -m comclip bench --preset arch-l14 --device cuda --pairs 256 --captions-per-image 4 --repeats 3 \
    --json --verbose > "$OUT/bench.json" 2> "$OUT/bench.log"
echo "rc=$?"; tail -3 "$OUT/bench.log"

echo "== 2. pytest -m cuda"
timeout 150 python3 -m pytest -q -p no:cacheprovider -m cuda tests/test_cuda.py 2>&1 | tee "$OUT/pytest-cuda.txt" | tail -15

echo "== 3. one app request (1 image, 4 captions), arch-b32 on cuda"
timeout 90 python3 -m comclip bench --click --preset arch-b32 --device cuda --repeats 20 --json \
    > "$OUT/click.json" 2> "$OUT/click.log"
echo "rc=$?"

python3 - "$OUT" <<'PY'
import json, sys
from pathlib import Path

out = Path(sys.argv[1])
ok = True

def last_json(name):
    try:
        return json.loads((out / name).read_text().strip().splitlines()[-1])
    except Exception as exc:  # noqa: BLE001
        print(f"{name}: no result ({exc})")
        return None

def target(what, value, good):
    global ok
    ok &= bool(good)
    print(f"{'PASS' if good else 'FAIL'}  {what}: {value}")

bench = last_json("bench.json")
if bench:
    target("engine pairs/s >= 100", bench["engine"]["pairs_per_s"], bench["engine"]["pairs_per_s"] >= 100)
    target("speedup vs reference >= 25", bench["speedup_vs_reference"], bench["speedup_vs_reference"] >= 25)
    target("engine / floor <= 1.25", bench["overhead_vs_floor"], bench["overhead_vs_floor"] <= 1.25)
    target("engine = reference (max score diff <= 1e-3 in half precision)", bench["checks"]["max_score_diff"],
           bench["checks"]["max_score_diff"] <= 1e-3)
else:
    ok = False
click = last_json("click.json")
if click:
    runs = sorted(click["runs"][0]["wall_s_runs"])
    p50 = runs[len(runs) // 2]
    target(f"one request p50 <= 0.100 s ({click['runs'][0]['backend']} detector path)", p50, p50 <= 0.100)
else:
    ok = False
tests = (out / "pytest-cuda.txt").read_text() if (out / "pytest-cuda.txt").exists() else ""
target("pytest -m cuda passed", tests.strip().splitlines()[-1:] or "no output", " passed" in tests and "failed" not in tests
       and "error" not in tests.lower().split("warnings")[0])
print("ALL TARGETS MET" if ok else "SOME TARGETS NOT MET")
sys.exit(0 if ok else 1)
PY
