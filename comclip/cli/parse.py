"""``python -m comclip parse``: captions → scene graphs (readable, or JSON Lines)."""

from __future__ import annotations

import argparse

from comclip.cli.common import add_option_flag
from comclip.graph import SceneGraph
from comclip.options import Options


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("parse", help="parse captions into entity/relation graphs",
                       description="Parse captions into scene graphs (entities with attributes, relations).")
    p.add_argument("captions", nargs="+", metavar="CAPTION")
    add_option_flag(p, Options.field("parser"), default=Options().parser)
    p.add_argument("--json", action="store_true", help="JSON Lines: one graph per caption, in order")
    p.set_defaults(func=run_parse)


def run_parse(args: argparse.Namespace) -> int:
    from comclip import parse as parsing

    parser = parsing.get_parser(args.parser)
    for caption in args.captions:
        graph = parser(caption)
        print(graph.to_json() if args.json else format_graph(graph))
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
    return "\n".join(lines)
