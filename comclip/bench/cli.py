"""``python -m comclip bench``: the command line of the speed benchmark."""

from __future__ import annotations

import argparse
import json
import sys
import time

from comclip.bench.click import CLICK_CAPTIONS, CLICK_IMAGE, SECOND_CAPTIONS, format_click, run_click
from comclip.bench.inputs import MAX_CAPTIONS_PER_IMAGE, check_counts
from comclip.bench.run import OVERHEAD_RUNS, run_bench
from comclip.cli.common import add_model_options, load_engine


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench", help="time the engine against the official per-pair loop and the necessary-forwards floor",
        description="Time four variants on the same seeded inputs in one run: reference (the official per-pair "
                    "loop), engine (ComCLIP.match_batch), floor (only the necessary model forwards, at their best "
                    "settings) and engine_replay (the engine's own forwards replayed). Reports pairs/s, ms/pair, "
                    "speedup vs reference, overhead vs floor, per-model and per-stage ms, peak memory.")
    p.add_argument("--pairs", type=int, default=8, help="(image, caption) pairs [default: %(default)s]")
    p.add_argument("--captions-per-image", type=int, default=4,
                   help=f"captions per image, 1-{MAX_CAPTIONS_PER_IMAGE} [default: %(default)s]")
    p.add_argument("--repeats", type=int, default=3, help="timed repeats after the warm-up [default: %(default)s]")
    p.add_argument("--overhead-runs", type=int, default=OVERHEAD_RUNS,
                   help="engine runs with the forwards stubbed out (its own work) [default: %(default)s]")
    p.add_argument("--seed", type=int, default=0, help="seed of the synthetic inputs [default: %(default)s]")
    p.add_argument("--compile", action="store_true", help="torch.compile the image tower (long GPU runs)")
    p.add_argument("--json", action="store_true", help="print one JSON object (the last stdout line)")
    p.add_argument("--verbose", action="store_true", help="progress on stderr (default: only on a terminal)")
    p.add_argument("--click", action="store_true",
                   help="time what a person waits for instead: one request (--image, --caption …) through match(), "
                        "caches emptied, on the detector's path and on the model's own forward (transformers, "
                        "fp32 eager), with their agreement and the detector's time per block")
    p.add_argument("--image", default=CLICK_IMAGE, help="--click: the image [default: %(default)s]")
    p.add_argument("--caption", action="append", default=None, metavar="TEXT",
                   help=f"--click: a caption (repeat the flag) [default: {' | '.join(CLICK_CAPTIONS)}]")
    p.add_argument("--warm", action="store_true",
                   help="--click: also time a second click — the same image with new captions (--warm-caption), "
                        "right after the first request, its caches warm — and check it against the same request cold")
    p.add_argument("--warm-caption", action="append", default=None, metavar="TEXT",
                   help=f"--warm: a caption of the second click (repeat the flag) "
                        f"[default: {' | '.join(SECOND_CAPTIONS)}]")
    add_model_options(p, preset="arch-b32")  # arch-*: real-size architectures with random weights
    p.set_defaults(func=run_bench_command)


def run_bench_command(args: argparse.Namespace) -> int:
    check_counts(args.pairs, args.captions_per_image, args.repeats)
    check_counts(1, 1, args.overhead_runs)
    verbose = args.verbose or sys.stderr.isatty()
    start = time.perf_counter()
    progress = (lambda msg: print(f"[bench {time.perf_counter() - start:7.1f}s] {msg}", file=sys.stderr, flush=True)
                ) if verbose else None
    engine = load_engine(args, parser="rules")  # every option flag applies to the engine and the reference
    if args.click:
        second = (args.warm_caption or SECOND_CAPTIONS) if args.warm else None
        d = run_click(engine, args.image, args.caption or CLICK_CAPTIONS, args.repeats, say=progress, second=second)
        print(json.dumps(d) if args.json else format_click(d))
        return 0
    result = run_bench(engine.preset_name, engine.encoder.device, args.pairs, args.captions_per_image, args.repeats,
                       seed=args.seed, engine=engine, overhead_runs=args.overhead_runs, progress=progress)
    print(json.dumps(result.to_dict()) if args.json else result.format())
    return 0
