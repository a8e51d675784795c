"""``python -m comclip`` — parse captions, score an image, evaluate, explore a run, benchmark.

Every failure a user can cause ends with exit code 2 and ONE line on stderr starting with
``error:``; no traceback is ever printed. Each subcommand module exposes
``register(subparsers)`` (adds its parser and sets ``func``) and is imported here statically.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings
from collections.abc import Sequence
from typing import NoReturn

from comclip import bench
from comclip.cli import parse, score
from comclip.cpu import keep_freed_memory
from comclip.errors import (
    NAME_MODEL,
    NAME_PRETRAINED,
    OFFICIAL_SOURCE,
    RUN_OFFLINE,
    USE_CPU,
    ComCLIPError,
    with_hint,
)
from comclip.eval import cli as eval_cli
from comclip.eval import explore_cli

#: The subcommand modules, in the order ``--help`` lists them.
COMMANDS = (parse, score, eval_cli, explore_cli, bench)
#: The remedies errors point to (:data:`comclip.errors.HINTS`), as this command line's flags.
HINTS = {RUN_OFFLINE: "`--preset tiny` runs offline with random weights", USE_CPU: "use --device cpu",
         NAME_MODEL: "name the model with --clip-model", NAME_PRETRAINED: "give the tag with --clip-pretrained",
         OFFICIAL_SOURCE: "choose one of those with --official-source"}


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one ``error:`` line, exit code 2."""

    def error(self, message: str) -> NoReturn:
        raise SystemExit(_fail(f"{message} (see `{self.prog} --help`)"))


def _option_hint(name: str, value: str) -> str:
    from comclip.options import Options

    return f"use {Options.field(name).flag} {value}"


def _fail(message: str) -> int:
    print(f"error: {' '.join(str(message).split())}", file=sys.stderr)
    return 2


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m comclip",
                     description="ComCLIP: training-free compositional image-text matching.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for module in COMMANDS:
        module.register(sub)
    return parser


def _quiet_libraries() -> None:
    warnings.filterwarnings("ignore")
    logging.basicConfig(level=logging.ERROR)
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def main(argv: Sequence[str] | None = None) -> int:
    _quiet_libraries()
    keep_freed_memory()  # a process setting, decided here at start (COMCLIP_KEEP_FREED_MEMORY=0: off)
    try:
        args = build_parser().parse_args(argv)
        return int(args.func(args) or 0)
    except SystemExit as exc:  # argparse --help (0) and usage errors (already printed)
        return int(exc.code or 0) if isinstance(exc.code, int) else 2
    except ComCLIPError as exc:
        return _fail(with_hint(exc, HINTS, _option_hint))
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
