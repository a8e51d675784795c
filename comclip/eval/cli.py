"""``python -m comclip eval DATASET --data PATH``: run a benchmark, CLIP vs ComCLIP."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from comclip.cli import add_model_options, load_engine
from comclip.cli.common import add_option_flag, official_requested
from comclip.errors import InputError
from comclip.options import EvalOptions, OptionValue, resolve_official_source

DATASET_NAMES = ("winoground", "comvg", "svo", "vl-checklist", "flickr30k", "coco")
PROTOCOLS = ("karpathy", "comclip")

EPILOG = """\
data folders, as each dataset ships (see docs/datasets.md):
  winoground    facebook/winoground: data/test-00000-of-00001.parquet (images embedded), or
                examples.jsonl + images/; or --data hf with the datasets library
  comvg         ComVG.csv + Visual Genome images ({image_id}.jpg in images/, VG_100K/ or VG_100K_2/)
  svo           svo_probes.csv + images/ (file named by image id or by the URL's file name)
  vl-checklist  a checkout of om-ai-lab/VL-CheckList (corpus/v1/**.yaml, data/**.json);
                --images DATASET = the folder holding vg/ hake/ swig/ (default: --data)
  flickr30k     dataset_flickr30k.json + flickr30k-images/ (or images/)
  coco          dataset_coco.json + images/ (or the folder itself) holding val2014/ ...

results: OUT/examples.jsonl (streamed; a rerun with the same --out resumes), OUT/report.json,
OUT/report.md, OUT/report.png; --json also prints the report as the last line of stdout.

several GPUs or nodes: torchrun --nproc-per-node N [--nnodes M ...] -m comclip eval ...
(each process scores its share; rank 0 merges into one examples.jsonl and report)
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="run a benchmark: CLIP vs ComCLIP",
                       description="Evaluate CLIP and ComCLIP on a compositional benchmark or a retrieval test "
                                   "split. Every example is counted: failures are reported with their reason.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dataset", choices=DATASET_NAMES, metavar="DATASET", help=", ".join(DATASET_NAMES))
    p.add_argument("--data", required=True, metavar="PATH", help="the dataset's folder (or its annotation file)")
    p.add_argument("--images", metavar="DIR", default=None, help="images folder, if not the expected one under PATH")
    p.add_argument("--limit", type=int, default=None, metavar="N", help="only the first N examples (queries)")
    p.add_argument("--out", metavar="DIR", default=None,
                   help="results folder; a rerun with the same folder resumes [runs/eval/DATASET-PRESET]")
    p.add_argument("--json", action="store_true", help="print the report as one JSON line (the last on stdout)")
    p.add_argument("--batch-size", type=int, default=16, metavar="N",
                   help="examples (retrieval: queries) per engine call [16]")
    p.add_argument("--topk", type=int, default=10, metavar="K",
                   help="retrieval: ComCLIP re-ranks CLIP's top K images [10]")
    p.add_argument("--split", default="test", help="retrieval: Karpathy split to evaluate [test]")
    p.add_argument("--protocol", choices=PROTOCOLS, default="karpathy",
                   help="retrieval: karpathy = every caption, text->image and image->text, R@1/5/10 (default); "
                        "comclip = the paper's: one caption per test image, text->image, R@1/5 [karpathy]")
    p.add_argument("--queries", metavar="CSV", default=None,
                   help="retrieval, --protocol comclip: the queries (columns image, sentence), e.g. the official "
                        "flickr30k_test.pkl exported to CSV (docs/datasets.md) [each image's first caption]")
    p.add_argument("--pairs", choices=("first", "all"), default="first",
                   help="vl-checklist: the first POS vs the first NEG per entry, as VL-CheckList does, or every "
                        "POS/NEG pair [first]")
    p.add_argument("--max-num", type=int, default=None, metavar="N",
                   help="vl-checklist: only the first N entries of each annotation file (its MAX_NUM) [all]")
    p.add_argument("--graphs", choices=("triplet", "parse"), default="triplet",
                   help="comvg, svo: build each sentence's graph from its triplet (paper) or parse it [triplet]")
    for f in EvalOptions.fields():
        add_option_flag(p, f)
    p.add_argument("--retry-failed", action="store_true", help="on resume, score failed examples again")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress bar (shown on stderr only when it is a terminal)")
    add_model_options(p)
    p.set_defaults(func=run_eval)


def eval_options(args: argparse.Namespace) -> EvalOptions:
    """The :class:`EvalOptions` given on the command line; with ``--official``, the rules of the
    official script that evaluates the dataset (or of ``--official-source``) under the explicit ones."""
    given: dict[str, OptionValue] = {f.name: getattr(args, f.name) for f in EvalOptions.fields()
                                     if getattr(args, f.name, None) is not None}
    if official_requested(args):
        _, source = resolve_official_source(None, args.official_source, args.dataset)
        given = EvalOptions.official(source).changed() | given
    return EvalOptions.from_mapping(given)


def run_eval(args: argparse.Namespace) -> int:
    from comclip.eval import distributed, runner
    from comclip.eval import report as reporting
    from comclip.eval.store import ResultStore
    from comclip.presets import get_preset

    for flag, value in (("--limit", args.limit), ("--batch-size", args.batch_size), ("--topk", args.topk),
                        ("--max-num", args.max_num)):
        if value is not None and value < 1:
            raise InputError(f"{flag} must be a whole number >= 1, got {value}")
    preset = get_preset(args.preset)  # an unknown preset is refused before reading any data
    rules = eval_options(args)
    # The data folder is checked first: a bad one fails at once, before any model is loaded.
    loaded = runner.load(args.dataset, args.data, args.images, split=args.split, graphs=args.graphs,
                         protocol=args.protocol, pairs=args.pairs, max_num=args.max_num, queries=args.queries)
    out = Path(args.out) if args.out else Path("runs") / "eval" / f"{args.dataset}-{preset.name}"
    ResultStore.precheck(out, runner.data_signature(loaded, args.topk) | {"preset": preset.name})
    world, args.device = distributed.start(args.device)  # torchrun: this process's rank and GPU
    try:
        engine = load_engine(args)
        report = runner.evaluate(engine, loaded, out, limit=args.limit, batch_size=args.batch_size,
                                 topk=args.topk, retry_failed=args.retry_failed, world=world,
                                 denominator=rules.denominator,
                                 # progress bars for people; scripts get a clean stderr (as every command)
                                 progress=not args.no_progress and sys.stderr.isatty())
    finally:
        distributed.stop(world)
    if report is None:  # not rank 0: its share is in the report rank 0 wrote
        return 0
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
    else:
        print(reporting.table(report))
        print(f"\n{report['n_total']} examples: {report['n_scored']} scored, {report['n_failed']} failed; "
              f"report in {out}/report.md")
    return 0
