"""``python -m comclip parse``: captions → scene graphs (readable, or JSON Lines); with
``--evaluate FILE…``, a parser's entity / attribute / relation F1 on gold files instead."""

from __future__ import annotations

import argparse
import datetime

from comclip.cli.common import add_option_flag
from comclip.errors import InputError
from comclip.graph import SceneGraph
from comclip.options import Options


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("parse", help="parse captions into entity/relation graphs",
                       description="Parse captions into scene graphs (entities with attributes, relations).")
    p.add_argument("captions", nargs="*", metavar="CAPTION")
    add_option_flag(p, Options.field("parser"), default=Options().parser)
    p.add_argument("--json", action="store_true",
                   help="JSON Lines: one graph per caption, in order, with the parser's notes (guesses to check)")
    p.add_argument("--evaluate", nargs="+", metavar="FILE",
                   help="score the parser on gold files (JSON Lines graphs, e.g. tests/data/parse_hard.jsonl): "
                        "entity, attribute and relation F1 per file and split")
    p.add_argument("--by-family", action="store_true", help="with --evaluate: one line per caption family too")
    p.add_argument("--mismatches", action="store_true",
                   help="with --evaluate: list the captions whose graph differs from the gold")
    p.set_defaults(func=run_parse)


def run_parse(args: argparse.Namespace) -> int:
    from comclip import parse as parsing

    if args.evaluate:
        if args.captions:
            raise InputError("give captions or --evaluate FILE..., not both")
        return run_evaluate(args)
    if not args.captions:
        raise InputError("give at least one caption (or --evaluate FILE...)")
    parser = parsing.get_parser(args.parser)
    for caption in args.captions:
        graph = parser(caption)
        print(graph.to_json(notes=True) if args.json else format_graph(graph))
    return 0


def format_graph(graph: SceneGraph) -> str:
    lines = [f"caption: {graph.caption}"]
    if not graph.entities:
        lines.append("  (no entities found)")
    for e in graph.entities:
        attrs = f"  [{', '.join(e.attributes)}]" if e.attributes else ""
        lines.append(f"  {e.id}: {e.name}{attrs}")
    for i, r in enumerate(graph.relations):
        obj = f" {r.object}" if r.object else ""
        lines.append(f"  r{i}: {r.subject} --{r.predicate}-->{obj}")
    lines.extend(f"  note: {n.message}" for n in graph.notes)
    return "\n".join(lines)


def run_evaluate(args: argparse.Namespace) -> int:
    from comclip import parse as parsing
    from comclip.parse.evaluate import evaluate_files, format_report

    parser = parsing.get_parser(args.parser)
    results = evaluate_files(args.evaluate, parser, by_family=args.by_family)
    print(f"parser: {parser.name} · {datetime.date.today().isoformat()}")
    print(format_report(results, mismatches=args.mismatches))
    return 0
