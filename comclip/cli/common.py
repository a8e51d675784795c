"""What every model-running command shares: the preset, device, model and option flags (the option
and detector-setting flags generated from :class:`Options` and :class:`DetectorSpec`, the preset and
backend lists from their tables), loading an engine from them, and reading JSON inputs."""

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
from comclip.presets import ENCODER_PRECISIONS, DetectorSpec, Preset, get_preset, names_help

if TYPE_CHECKING:
    from comclip.engine import ComCLIP

DEVICE_HELP = "auto (cuda > mps > cpu), cpu, cuda, cuda:N or mps"


def add_option_flag(p: argparse.ArgumentParser, f: OptionField, default: OptionValue = None, *,
                    dest: str | None = None, unset: str | None = None) -> None:
    """One option (an :class:`Options` field or a detector setting) as a flag; an unset flag leaves
    the value None (= the default, or ``unset`` when given: what an unset value means)."""
    assert f.flag is not None
    if f.type is bool:
        p.add_argument(f.flag, dest=dest or f.name, action="store_const", const=not f.default, default=None,
                       help=f.flag_help or f.help)
        return
    shown = unset or ("" if f.default is None else f.default)
    p.add_argument(f.flag, dest=dest or f.name, type=f.type, choices=f.choices, default=default,
                   help=f"{f.help} [{shown}]" if shown != "" else f.help)


def add_preset_option(p: argparse.ArgumentParser, default: str | None = None) -> None:
    p.add_argument("--preset", default=default or os.environ.get("COMCLIP_PRESET", "default"),
                   help=f"model preset: {names_help()}; or a preset JSON file [default: %(default)s]")


def add_device_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", help=f"{DEVICE_HELP} [default: %(default)s]")


def add_model_choice_options(p: argparse.ArgumentParser) -> None:
    """Flags that replace the preset's models, and the detector settings (one flag each)."""
    from comclip.encoders import BACKENDS

    takes = "; ".join(f"{name}: {row.takes}" for name, row in BACKENDS.items())
    p.add_argument("--clip-model", default=None, metavar="NAME",
                   help=f"replace the preset's image-text model, named as --clip-backend takes it ({takes})")
    p.add_argument("--clip-pretrained", default=None, metavar="TAG", help="open_clip pretrained tag, e.g. openai")
    p.add_argument("--clip-backend", choices=tuple(BACKENDS), default=None, help="[open_clip]")
    p.add_argument("--clip-precision", choices=ENCODER_PRECISIONS, default=None,
                   help="the image-text model's precision: auto (fp16 on CUDA, bf16 on a CPU with native bf16: "
                        "AVX-512 BF16 or AMX; fp32 elsewhere), fp32, fp16 or bf16 [the preset's; auto unless it says]")
    p.add_argument("--detector", default=None, metavar="ID",
                   help="replace the preset's detector: a transformers Grounding DINO id")
    for s in DetectorSpec.settings():
        add_option_flag(p, s, dest=f"detector_{s.name}", unset=f"the preset's; {s.default} unless it says")


def add_option_flags(p: argparse.ArgumentParser) -> None:
    """``--official`` and one flag per :class:`Options` field."""
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


def add_model_options(p: argparse.ArgumentParser, *, preset: str | None = None) -> None:
    """Flags shared by every command that runs the models (``preset``: the default preset)."""
    add_preset_option(p, preset)
    add_device_option(p)
    add_model_choice_options(p)
    add_option_flags(p)


def official_requested(args: argparse.Namespace) -> bool:
    """``--official``, or an ``--official-source`` (which implies it)."""
    return bool(getattr(args, "official", False)) or getattr(args, "official_source", "auto") not in (None, "auto")


def engine_options(args: argparse.Namespace, backend: str | None = None) -> dict[str, OptionValue]:
    """The :class:`Options` values given on the command line (unset flags left out; with
    ``--official``, the official values for ``backend`` — the encoder backend in use (its row's model
    family), CLIP when None — and the source ``--official-source`` picks, under the explicit ones)."""
    given = {f.name: getattr(args, f.name) for f in Options.fields()
             if f.flag is not None and getattr(args, f.name, None) is not None}
    if official_requested(args):
        from comclip.encoders import get_backend

        family = get_backend(backend).family if backend else None
        source, _ = resolve_official_source(family, getattr(args, "official_source", "auto"),
                                            getattr(args, "dataset", None))
        given = Options.official(family, source).changed() | given
    return given


def preset_from_args(args: argparse.Namespace) -> Preset:
    """The preset the flags describe: ``--preset`` with the models and detector settings they replace."""
    from comclip.loading import custom_preset

    preset = custom_preset(get_preset(args.preset), clip_model=getattr(args, "clip_model", None),
                           clip_pretrained=getattr(args, "clip_pretrained", None),
                           clip_backend=getattr(args, "clip_backend", None), detector=getattr(args, "detector", None))
    settings = {s.name: value for s in DetectorSpec.settings()
                if (value := getattr(args, f"detector_{s.name}", None)) is not None}
    if settings:
        preset = dataclasses.replace(preset, detector=dataclasses.replace(preset.detector, **settings))
    if getattr(args, "clip_precision", None) is not None:
        preset = dataclasses.replace(preset, encoder=dataclasses.replace(preset.encoder, precision=args.clip_precision))
    return preset


def load_engine(args: argparse.Namespace, **defaults: OptionValue) -> ComCLIP:
    """The engine the model flags describe (``defaults``: option values the flags override); options
    are validated before anything heavy loads."""
    from comclip.engine import load
    from comclip.loading import resolve_device

    preset = preset_from_args(args)
    options = Options.from_mapping({**defaults, **engine_options(args, preset.encoder.backend)})
    device = resolve_device(args.device)
    if sys.stderr.isatty():  # progress for people; scripts get a clean stderr (errors only)
        print(f"loading preset '{preset.name}' on {device}: {preset.description}", file=sys.stderr)
    return load(preset, device=device, compile=bool(getattr(args, "compile", False)), **options.to_dict())


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
