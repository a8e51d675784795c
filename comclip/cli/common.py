"""What every model-running command shares: model flags (generated from :class:`Options`),
loading an engine from them, and reading JSON inputs."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from comclip.errors import InputError
from comclip.options import OFFICIAL_SOURCES, OptionField, Options, OptionValue, resolve_official_source
from comclip.presets import ENCODER_BACKENDS

if TYPE_CHECKING:
    from comclip.engine import ComCLIP


def add_option_flag(p: argparse.ArgumentParser, f: OptionField, default: OptionValue = None) -> None:
    """One :class:`Options` field as a flag; an unset flag leaves the value None (= the default)."""
    assert f.flag is not None
    if f.type is bool:
        p.add_argument(f.flag, dest=f.name, action="store_const", const=not f.default, default=None,
                       help=f.flag_help or f.help)
        return
    shown = "the preset's" if f.default is None else f.default
    p.add_argument(f.flag, dest=f.name, type=f.type, choices=f.choices, default=default,
                   help=f"{f.help} [{shown}]")


def add_model_options(p: argparse.ArgumentParser) -> None:
    """Flags shared by every command that runs the models."""
    p.add_argument("--preset", default=os.environ.get("COMCLIP_PRESET", "default"),
                   help="model preset: default, large, slip-base, slip-large, blip2, or tiny / tiny-blip2 (offline, "
                        "random weights); arch-* for bench [default: %(default)s]")
    p.add_argument("--device", default="auto", help="auto (cuda > mps > cpu), cpu, cuda, cuda:N, mps")
    p.add_argument("--clip-model", default=None, metavar="NAME",
                   help="replace the preset's image-text model: an open_clip name (with --clip-pretrained), an "
                        "open_clip hf-hub:ORG/NAME, or with --clip-backend hf_clip a transformers CLIP id, slip a "
                        "SLIP release checkpoint (PATH_OR_URL), blip2 a transformers BLIP-2 retrieval id")
    p.add_argument("--clip-pretrained", default=None, metavar="TAG", help="open_clip pretrained tag, e.g. openai")
    p.add_argument("--clip-backend", choices=ENCODER_BACKENDS, default=None, help="[open_clip]")
    p.add_argument("--detector", default=None, metavar="ID",
                   help="replace the preset's detector: a transformers Grounding DINO id")
    p.add_argument("--detector-precision", choices=("auto", "fp32", "bf16"), default=None,
                   help="detector forward precision: auto (bf16 autocast on CUDA, fp32 elsewhere), fp32 or bf16 "
                        "[auto]")
    p.add_argument("--official", action="store_true",
                   help="the official code's choices where they differ from the paper, for the backbone in use: "
                        "always --weighting sum --all-boxes --intransitive whole; SLIP adds --embeddings raw "
                        "--score-scale cosine --resize squash; BLIP-2 --score-scale cosine and, as its Winoground "
                        "script, --query-norm l2; CLIP as the ComVG and retrieval code --embeddings raw "
                        "--score-scale dot; eval: as the retrieval script, --denominator all (flags given "
                        "explicitly win; see docs/fidelity.md)")
    p.add_argument("--official-source", choices=("auto", *OFFICIAL_SOURCES), default="auto",
                   help="which official script --official follows where they disagree (implies --official): "
                        "winoground (winoground/*.py), vl-checklist (its notebooks), comvg (ComVG/, SVO), retrieval "
                        "(image_retrieval/); auto: the one that evaluates the eval dataset, winoground for score; "
                        "a backbone without that script (SLIP has only winoground) follows its own [auto]")
    for f in Options.fields():
        if f.flag is not None:
            add_option_flag(p, f)


def official_requested(args: argparse.Namespace) -> bool:
    """``--official``, or an ``--official-source`` (which implies it)."""
    return bool(getattr(args, "official", False)) or getattr(args, "official_source", "auto") not in (None, "auto")


def engine_options(args: argparse.Namespace, backend: str | None = None) -> dict[str, OptionValue]:
    """The :class:`Options` values given on the command line (unset flags left out; with
    ``--official``, the official values for ``backend`` — the encoder backend in use, CLIP when
    None — and the source ``--official-source`` picks, under the explicit ones)."""
    given = {f.name: getattr(args, f.name) for f in Options.fields()
             if f.flag is not None and getattr(args, f.name, None) is not None}
    if official_requested(args):
        source, _ = resolve_official_source(backend, getattr(args, "official_source", "auto"),
                                            getattr(args, "dataset", None))
        given = Options.official(backend, source).changed() | given
    return given


def load_engine(args: argparse.Namespace) -> ComCLIP:
    """The engine the model flags describe; options are validated before anything heavy loads."""
    from comclip.engine import load
    from comclip.loading import resolve_device
    from comclip.presets import custom_preset, get_preset

    preset = custom_preset(get_preset(args.preset), clip_model=args.clip_model, clip_pretrained=args.clip_pretrained,
                           clip_backend=args.clip_backend, detector=args.detector)
    precision = getattr(args, "detector_precision", None)
    if precision is not None:
        preset = dataclasses.replace(preset, detector=dataclasses.replace(preset.detector, precision=precision))
    options = Options.from_mapping(engine_options(args, preset.encoder.backend))
    device = resolve_device(args.device)
    if sys.stderr.isatty():  # progress for people; scripts get a clean stderr (errors only)
        print(f"loading preset '{preset.name}' on {device}: {preset.description}", file=sys.stderr)
    return load(preset, device=device, **options.to_dict())


def read_json_file(path: str, what: str) -> object:
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
