"""``python -m comclip bench``: the command line of the speed benchmark."""

from __future__ import annotations

import argparse
import json
import sys
import time

from comclip.bench.inputs import MAX_CAPTIONS_PER_IMAGE, check_counts
from comclip.bench.run import OVERHEAD_RUNS, load_engine, run_bench


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench", help="time the engine against the official per-pair loop and the necessary-forwards floor",
        description="Time four variants on the same seeded inputs in one run: reference (the official per-pair "
                    "loop), engine (ComCLIP.match_batch), floor (only the necessary model forwards, at their best "
                    "settings) and engine_replay (the engine's own forwards replayed). Reports pairs/s, ms/pair, "
                    "speedup vs reference, overhead vs floor, per-model and per-stage ms, peak memory.")
    p.add_argument("--preset", default="arch-b32",
                   help="arch-b32, arch-l14, arch-blip2 (real-size architectures, random weights), tiny, "
                        "tiny-blip2, or any other preset [default: %(default)s]")
    p.add_argument("--device", default="auto", help="auto (cuda > mps > cpu), cpu, cuda, cuda:N [default: auto]")
    p.add_argument("--pairs", type=int, default=8, help="(image, caption) pairs [default: %(default)s]")
    p.add_argument("--captions-per-image", type=int, default=4,
                   help=f"captions per image, 1-{MAX_CAPTIONS_PER_IMAGE} [default: %(default)s]")
    p.add_argument("--repeats", type=int, default=3, help="timed repeats after the warm-up [default: %(default)s]")
    p.add_argument("--overhead-runs", type=int, default=OVERHEAD_RUNS,
                   help="engine runs with the forwards stubbed out (its own work) [default: %(default)s]")
    p.add_argument("--seed", type=int, default=0, help="seed of the synthetic inputs [default: %(default)s]")
    p.add_argument("--exact-subimages", action="store_true",
                   help="engine renders every sub-image with PIL (pixel-exact, as the reference) instead of "
                        "masking the preprocessed image")
    p.add_argument("--compile", action="store_true", help="torch.compile the image tower (long GPU runs)")
    p.add_argument("--json", action="store_true", help="print one JSON object (the last stdout line)")
    p.add_argument("--verbose", action="store_true", help="progress on stderr (default: only on a terminal)")
    p.set_defaults(func=run_bench_command)


def run_bench_command(args: argparse.Namespace) -> int:
    check_counts(args.pairs, args.captions_per_image, args.repeats)
    check_counts(1, 1, args.overhead_runs)
    verbose = args.verbose or sys.stderr.isatty()
    start = time.perf_counter()
    progress = (lambda msg: print(f"[bench {time.perf_counter() - start:7.1f}s] {msg}", file=sys.stderr, flush=True)
                ) if verbose else None
    engine = load_engine(args.preset, args.device, args.compile)
    options = {"fast_subimages": False} if args.exact_subimages else {}
    result = run_bench(args.preset, engine.encoder.device, args.pairs, args.captions_per_image, args.repeats,
                       seed=args.seed, engine=engine, overhead_runs=args.overhead_runs, progress=progress, **options)
    print(json.dumps(result.to_dict()) if args.json else result.format())
    return 0
