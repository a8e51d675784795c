"""``python -m comclip score``: one image against captions, CLIP vs ComCLIP (a table or JSON);
``score IMAGE IMAGE… --caption TEXT…``: several images against the same captions, as a grid
(:mod:`comclip.cli.grid` words it; :mod:`comclip.grid` judges it)."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

from comclip.cli.common import add_model_options, load_engine, read_json_file
from comclip.cli.grid import format_grid, image_names, parse_pairing
from comclip.errors import GraphError, InputError
from comclip.graph import SceneGraph
from comclip.options import check_captions

if TYPE_CHECKING:
    from comclip.result import MatchResult


def register(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser("score", help="score an image (or several) against captions: CLIP vs ComCLIP",
                       description="Score one image against captions with plain CLIP and with ComCLIP: "
                                   "`score IMAGE CAPTION...`. With --caption, every positional is an image: "
                                   "`score IMAGE IMAGE... --caption TEXT...` scores 2-4 images against the same "
                                   "2-8 captions (Winoground's test: text, image and group scores for two of each).")
    s.add_argument("image", metavar="IMAGE")
    s.add_argument("captions", nargs="*", metavar="CAPTION",
                   help="captions to compare (optional with --graph: the graphs' captions are used); "
                        "with --caption: more images")
    s.add_argument("--caption", action="extend", nargs="+", metavar="TEXT",
                   help="the captions, when the positionals are all images: after the images, several at once or "
                        "the flag repeated")
    s.add_argument("--pairing", metavar="I,J,...",
                   help="with several images: each image's true caption index (0-based), in the images' order "
                        "[0,1,... when as many images as captions]")
    s.add_argument("--graph", metavar="FILE",
                   help="scene graphs to use instead of parsing: a JSON graph, a JSON list (null = parse that "
                        "caption) or JSON Lines as printed by `parse --json`; one per caption, in order")
    s.add_argument("--json", action="store_true", help="print one JSON object")
    s.add_argument("--debug-embeddings", action="store_true",
                   help="with --json: add every embedding and logit_scale so each score can be recomputed")
    add_model_options(s)
    s.set_defaults(func=run_score)


def load_graphs(path: str, captions: list[str]) -> tuple[list[str], list[SceneGraph | None]]:
    """Graphs from a file, one per caption; with no captions given, the graphs' captions are used."""
    data = read_json_file(path, "graph file")
    items: list[object] = data if isinstance(data, list) else [data]
    if captions and len(items) != len(captions):
        raise InputError(f"graph file {path} has {len(items)} graph(s) but {len(captions)} caption(s) were given")
    graphs: list[SceneGraph | None] = []
    for i, d in enumerate(items):
        try:
            graphs.append(None if d is None else SceneGraph.from_dict(d, caption=captions[i] if captions else None))
        except GraphError as exc:
            raise GraphError(f"graph file {path}, graph {i + 1}: {exc}") from None
    if not captions:
        if any(g is None for g in graphs):
            raise InputError("graph file has null entries but no captions were given")
        captions = [g.caption for g in graphs if g is not None]
    return captions, graphs


def run_score(args: argparse.Namespace) -> int:
    from comclip.images import load_image

    several = args.caption is not None  # every positional is an image
    paths = [args.image, *args.captions] if several else [args.image]
    captions = list(args.caption) if several else list(args.captions)
    graphs: list[SceneGraph | None] | None = None
    if args.graph:
        captions, graphs = load_graphs(args.graph, captions)
    if not captions:
        raise InputError("give at least one caption (or --graph FILE)")
    captions = check_captions(captions)
    if args.debug_embeddings and not args.json:
        raise InputError("--debug-embeddings needs --json")
    if len(paths) > 1:
        return score_grid(args, paths, captions, graphs)
    if args.pairing is not None:
        raise InputError("--pairing needs several images (IMAGE IMAGE... --caption TEXT...)")
    image = load_image(args.image)  # fail on a bad image before loading models
    engine = load_engine(args)
    result = engine.match(image, captions, graphs)
    if args.json:
        print(json.dumps(result.to_dict(embeddings=args.debug_embeddings)))
    else:
        print(format_scores(result))
    return 0


def score_grid(args: argparse.Namespace, paths: list[str], captions: list[str],
               graphs: list[SceneGraph | None] | None) -> int:
    """Several images against the same captions: the grid, Winoground's scores (2x2) or ranks, the story."""
    from comclip.grid import check_grid, check_sizes
    from comclip.images import load_image

    pairing = parse_pairing(args.pairing) if args.pairing is not None else None
    if pairing is None and len(paths) != len(check_sizes(paths, captions)):
        raise InputError(f"{len(paths)} images and {len(captions)} captions: give each image's true caption "
                         "with --pairing (e.g. --pairing 0,2)")
    captions, pairing = check_grid(paths, captions, pairing)  # all checks before the models load
    images = [load_image(p) for p in paths]
    engine = load_engine(args)
    grid = engine.match_grid(images, captions, graphs, pairing=pairing)
    if args.json:
        print(json.dumps(grid.to_dict(embeddings=args.debug_embeddings, names=image_names(paths))))
    else:
        print(format_grid(grid, paths))
    return 0


def format_scores(result: MatchResult) -> str:
    """A readable table: caption, CLIP, ComCLIP, delta; the best under each marked with *."""
    width = min(max(len(c.caption) for c in result.captions), 60)
    lines = [f"image: {result.image_path} ({result.width}x{result.height})   preset: {result.preset}"]
    if result.models.get("random_weights"):
        lines.append("note: this preset has random weights - the scores are meaningless")
    lines.append(f"  #  {'caption':<{width}}  {'CLIP':>8}   {'ComCLIP':>8}   {'delta':>8}")
    for i, c in enumerate(result.captions):
        cap = c.caption if len(c.caption) <= width else c.caption[: width - 3] + "..."
        mark_a = "*" if i == result.best_clip else " "
        mark_b = "*" if i == result.best_comclip else " "
        lines.append(f"{i + 1:>3}  {cap:<{width}}  {c.clip_score:8.4f}{mark_a}  {c.comclip_score:8.4f}{mark_b}  "
                     f"{c.delta:+8.4f}")
        ungrounded = [comp.text for comp in c.components if comp.kind == "entity" and not comp.grounded]
        if not c.components:
            lines.append(f"     {'':<{width}}  (no entities parsed: ComCLIP = CLIP)")
        elif ungrounded:
            lines.append(f"     {'':<{width}}  (not found in the image, whole image used: {', '.join(ungrounded)})")
        if c.truncated:
            lines.append(f"     {'':<{width}}  (caption longer than the text encoder reads: truncated)")
    lines.append("* best under each method")
    return "\n".join(lines)
