"""``python -m comclip bench``: how fast the engine is, against the official loop and the floor.

Four variants score the same synthetic (image, caption) pairs in the same run, on the same models:

- ``reference`` (:mod:`.reference`) — the official scripts' per-pair loop, restated on its own
  (its own planning, sub-images and formula): one detector call per pair, one encoder call per image
  and per text. Its scores must equal the engine's: a check of the engine's planning too.
- ``engine`` — :meth:`ComCLIP.match_batch` on all pairs at once, caches cleared before every run.
- ``floor`` (:mod:`.floor`) — only the forwards a run cannot avoid (one detector pass per unique
  (image, phrase set), one image-encoder pass over the unique sub-images, one text pass over the
  unique texts) at their best settings, inputs already on the device.
- ``engine_replay`` (:mod:`.record`) — the engine's own forwards, recorded and replayed.

Inputs: :mod:`.inputs`; orchestration and timing: :mod:`.run`; result and table: :mod:`.report`;
command line: :mod:`.cli`. Method and numbers: docs/benchmarks.md.
"""

from comclip.bench.cli import register, run_bench_command
from comclip.bench.floor import Floor, build_floor, necessary_units
from comclip.bench.inputs import MAX_CAPTIONS_PER_IMAGE, BenchInputs, check_counts, make_inputs
from comclip.bench.record import ForwardRecording, record_forwards, stub_forwards
from comclip.bench.reference import run_reference
from comclip.bench.report import VARIANTS, BenchResult, VariantTiming
from comclip.bench.run import OVERHEAD_RUNS, engine_results, run_bench, run_engine, timed

__all__ = ["MAX_CAPTIONS_PER_IMAGE", "OVERHEAD_RUNS", "VARIANTS", "BenchInputs", "BenchResult", "Floor",
           "ForwardRecording", "VariantTiming", "build_floor", "check_counts", "engine_results", "make_inputs",
           "necessary_units", "record_forwards", "register", "run_bench", "run_bench_command", "run_engine",
           "run_reference", "stub_forwards", "timed"]
