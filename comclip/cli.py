"""``python -m comclip`` — parse captions, score an image, run benchmarks.

Every failure a user can cause ends with exit code 2 and ONE line on stderr starting with
``error:``; no traceback is ever printed. Subcommands live in their own modules, each with
``register(subparsers)`` (adds its parser and sets ``func``), imported here by name.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from comclip.errors import ComCLIPError, InputError

#: Subcommand modules; each exposes ``register(subparsers)``.
COMMAND_MODULES = ("comclip.commands", "comclip.eval.cli", "comclip.bench")


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one ``error:`` line, exit code 2."""

    def error(self, message: str) -> NoReturn:
        raise SystemExit(_fail(f"{message} (see `{self.prog} --help`)"))


def _fail(message: str) -> int:
    print(f"error: {' '.join(str(message).split())}", file=sys.stderr)
    return 2


def add_model_options(p: argparse.ArgumentParser) -> None:
    """Flags shared by every command that runs the models."""
    p.add_argument("--preset", default=os.environ.get("COMCLIP_PRESET", "default"),
                   help="model preset: default, large or tiny (offline, random weights) [default: %(default)s]")
    p.add_argument("--device", default="auto", help="auto (cuda > mps > cpu), cpu, cuda, cuda:N, mps")
    p.add_argument("--clip-model", default=None, metavar="NAME",
                   help="replace the preset's image-text model: an open_clip name (with --clip-pretrained), an "
                        "open_clip hf-hub:ORG/NAME, or with --clip-backend hf_clip a transformers CLIP id, slip a "
                        "SLIP release checkpoint (PATH_OR_URL), blip2 a transformers BLIP-2 retrieval id")
    p.add_argument("--clip-pretrained", default=None, metavar="TAG", help="open_clip pretrained tag, e.g. openai")
    p.add_argument("--clip-backend", choices=("open_clip", "hf_clip", "slip", "blip2"), default=None,
                   help="[open_clip]")
    p.add_argument("--detector", default=None, metavar="ID",
                   help="replace the preset's detector: a transformers Grounding DINO id")
    p.add_argument("--parser", default=None, help="caption parser: auto, rules, spacy, llm [default: auto]")
    p.add_argument("--weighting", choices=("softmax", "sum"), default=None,
                   help="component weights: softmax (paper, default) or sum (official code)")
    p.add_argument("--relation-text", choices=("predicate", "triple"), default=None,
                   help="text encoded for a relation: its predicate (paper, default) or the whole triple")
    p.add_argument("--subimage", choices=("blackout", "crop"), default=None,
                   help="sub-image: black out everything else (paper, default) or crop to the boxes")
    p.add_argument("--no-relations", action="store_true", help="use entity components only")
    p.add_argument("--box-threshold", type=float, default=None, help="detector box threshold [preset's]")
    p.add_argument("--text-threshold", type=float, default=None, help="detector text threshold [preset's]")
    p.add_argument("--boxes-per-entity", type=int, default=None, help="boxes kept per entity [1]")


def engine_options(args: argparse.Namespace) -> dict[str, Any]:
    opts = {"parser": args.parser, "weighting": args.weighting, "relation_text": args.relation_text,
            "subimage": args.subimage, "box_threshold": args.box_threshold, "text_threshold": args.text_threshold,
            "boxes_per_entity": args.boxes_per_entity}
    if args.no_relations:
        opts["relations"] = False
    return {k: v for k, v in opts.items() if v is not None}


def load_engine(args: argparse.Namespace):  # -> ComCLIP (imported lazily: torch is slow to import)
    from comclip.engine import ComCLIP, Options
    from comclip.models import custom_preset, get_preset, resolve_device

    preset = custom_preset(get_preset(args.preset), clip_model=args.clip_model, clip_pretrained=args.clip_pretrained,
                           clip_backend=args.clip_backend, detector=args.detector)
    options = Options().updated(**engine_options(args))  # validate before loading anything heavy
    device = resolve_device(args.device)
    if sys.stderr.isatty():  # progress for people; scripts get a clean stderr (errors only)
        print(f"loading preset '{preset.name}' on {device}: {preset.description}", file=sys.stderr)
    return ComCLIP.from_preset(preset, device=device, **vars(options))


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m comclip",
                     description="ComCLIP: training-free compositional image-text matching.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def _quiet_libraries() -> None:
    warnings.filterwarnings("ignore")
    logging.basicConfig(level=logging.ERROR)
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def main(argv: Sequence[str] | None = None) -> int:
    _quiet_libraries()
    try:
        args = build_parser().parse_args(argv)
        return int(args.func(args) or 0)
    except SystemExit as exc:  # argparse --help (0) and usage errors (already printed)
        return int(exc.code or 0) if isinstance(exc.code, int) else 2
    except ComCLIPError as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except MemoryError:
        return _fail("out of memory; try a smaller image, fewer captions or --device cpu")
    except Exception as exc:  # noqa: BLE001 — last line of defence: never show a traceback
        print(f"error: internal error ({type(exc).__name__}: {' '.join(str(exc).split())[:300]}); "
              "please report it with the command you ran", file=sys.stderr)
        return 1


def read_json_file(path: str, what: str) -> Any:
    """Read a JSON document or JSON Lines file; one ``InputError`` for any problem."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{what} not found: {path}")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {what} {path}: {exc}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        lines = [ln for ln in text.splitlines() if ln.strip()]
        try:
            return [json.loads(ln) for ln in lines] if len(lines) > 1 else json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"{what} {path} is not valid JSON or JSON Lines: {exc}") from None
