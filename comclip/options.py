"""How ComCLIP is computed: the ONE option vocabulary (names, types, defaults, choices, help).

:class:`Options` is a frozen dataclass whose fields carry their own metadata
(:meth:`Options.fields` → :class:`OptionField`), so the command-line flags
(:func:`comclip.cli.common.add_model_options`) and the app's widgets are generated from it, and
:meth:`Options.from_mapping` / :meth:`Options.updated` validate any mapping of them with one
:class:`~comclip.errors.InputError` naming the bad key or value. Defaults follow the paper.

This module is light (no torch): importing it costs nothing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import ClassVar

from comclip.errors import InputError
from comclip.parse import PARSERS

WEIGHTINGS: tuple[str, ...] = ("softmax", "sum")
RELATION_TEXTS: tuple[str, ...] = ("predicate", "triple")
SUBIMAGE_MODES: tuple[str, ...] = ("blackout", "crop")
INTRANSITIVE_REGIONS: tuple[str, ...] = ("subject", "whole")
#: ``boxes_per_entity`` the detector is asked for when ``all_boxes`` is on.
ALL_BOXES = 1_000_000
#: What an unset (``None``) detector threshold means — resolved by :func:`detector_thresholds` only.
UNSET_THRESHOLD = "unset: the detector's own, from its preset"

OptionValue = str | bool | int | float | None


@dataclass(frozen=True)
class OptionField:
    """One option as the CLI and the app present it.

    ``flag`` is the command-line flag; for a boolean it switches the option away from its
    default (``--no-relations`` sets ``relations=False``). ``flag=None``: not on the command line.
    """

    name: str
    type: type
    default: OptionValue
    help: str
    choices: tuple[str, ...] | None = None
    flag: str | None = None
    optional: bool = False  # None is a valid value (meaning: the detector's own)
    minimum: float | None = None
    maximum: float | None = None
    #: What a boolean's flag does (it switches the option away from its default); None: ``help``.
    flag_help: str | None = None

    def check(self, value: OptionValue) -> None:
        """One :class:`~comclip.errors.InputError` naming this option when ``value`` is not one of its values."""
        _check(self, value)


def _opt(default: OptionValue, help: str, *, type: type, choices: tuple[str, ...] | None = None,
         flag: str | None = None, optional: bool = False, minimum: float | None = None,
         maximum: float | None = None, flag_help: str | None = None) -> OptionValue:
    meta = {"type": type, "help": help, "choices": choices, "flag": flag, "optional": optional,
            "minimum": minimum, "maximum": maximum, "flag_help": flag_help}
    return field(default=default, metadata=meta)  # type: ignore[return-value]


@dataclass(frozen=True)
class Options:
    """How ComCLIP is computed. Defaults follow the paper."""

    weighting: str = _opt("softmax", "component weights: softmax (the paper) or sum, s_i / Σ s_j (the official code)",
                          type=str, choices=WEIGHTINGS, flag="--weighting")
    relation_text: str = _opt("predicate", "text encoded for a relation: its predicate (the paper) or the whole "
                              "triple, “subject predicate object”", type=str, choices=RELATION_TEXTS,
                              flag="--relation-text")
    subimage: str = _opt("blackout", "a component's sub-image: blackout keeps its boxes and blacks out the rest (the "
                         "paper); crop cuts the boxes out", type=str, choices=SUBIMAGE_MODES, flag="--subimage")
    relations: bool = _opt(True, "use relation components (off: entity components only)", type=bool,
                           flag="--no-relations", flag_help="use entity components only (no relations)")
    parser: str = _opt("auto", "caption parser: auto (spaCy if installed, else the built-in rules), rules, spacy, or "
                       "llm (needs the COMCLIP_LLM_* settings)", type=str, choices=PARSERS, flag="--parser")
    box_threshold: float | None = _opt(None, "detector box threshold: a box is kept only when its best word score is "
                                       f"above this ({UNSET_THRESHOLD})", type=float, optional=True,
                                       flag="--box-threshold", minimum=0.0, maximum=1.0)
    text_threshold: float | None = _opt(None, "detector text threshold: a box belongs to an entity only when that "
                                        f"entity's words score above this ({UNSET_THRESHOLD})", type=float,
                                        optional=True, flag="--text-threshold", minimum=0.0, maximum=1.0)
    boxes_per_entity: int = _opt(1, "boxes kept per entity", type=int, flag="--boxes-per-entity", minimum=1)
    all_boxes: bool = _opt(False, "an entity's region is the union of every box above the thresholds (the official "
                           "code: every matched object), not only its best (boxes per entity)", type=bool,
                           flag="--all-boxes")
    intransitive: str = _opt("subject", "region of a relation with no object: its subject's, or the whole image "
                             "(the official code)", type=str, choices=INTRANSITIVE_REGIONS, flag="--intransitive")
    #: Build blackout sub-images from the preprocessed whole image (fast; equal to the PIL path
    #: within a tested tolerance). False: render every sub-image with PIL, pixel-exact.
    fast_subimages: bool = _opt(True, "build blackout sub-images from the preprocessed image (off: render "
                                "each with PIL, pixel-exact)", type=bool, flag="--exact-subimages",
                                flag_help="render every sub-image with PIL, pixel-exact (slower; default: built "
                                "from the preprocessed image, equal within a tested tolerance)")

    _FIELDS: ClassVar[tuple[OptionField, ...] | None] = None

    def __post_init__(self) -> None:
        self.validate()

    @classmethod
    def official(cls) -> Options:
        """The official code's choices where they differ from the paper (docs/fidelity.md):
        ``sum`` weighting, every matched box per entity, the whole image for an intransitive relation."""
        return cls(weighting="sum", all_boxes=True, intransitive="whole")

    @property
    def detector_boxes(self) -> int:
        """How many boxes per phrase the detector keeps."""
        return ALL_BOXES if self.all_boxes else self.boxes_per_entity

    @classmethod
    def fields(cls) -> tuple[OptionField, ...]:
        """Every option with its metadata, in declaration order."""
        if cls._FIELDS is None:
            cls._FIELDS = tuple(OptionField(name=f.name, default=f.default, **f.metadata)  # type: ignore[arg-type]
                                for f in fields(cls))
        return cls._FIELDS

    @classmethod
    def field(cls, name: str) -> OptionField:
        for f in cls.fields():
            if f.name == name:
                return f
        raise InputError(f"unknown option {name!r}; known: {', '.join(cls.names())}")

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in cls.fields())

    @classmethod
    def from_mapping(cls, values: Mapping[str, OptionValue] | None = None) -> Options:
        """Options from a mapping (None values mean "the default"); unknown keys are named."""
        return cls().updated(**dict(values or {}))

    def updated(self, **changes: OptionValue) -> Options:
        """A copy with ``changes`` applied (None values are ignored), validated."""
        unknown = set(changes) - set(self.names())
        if unknown:
            raise InputError(f"unknown option(s): {', '.join(sorted(unknown))}; known: {', '.join(self.names())}")
        kept = {k: _coerce(self.field(k), v) for k, v in changes.items() if v is not None}
        return replace(self, **kept) if kept else self

    def validate(self) -> Options:
        for f in self.fields():
            _check(f, getattr(self, f.name))
        return self

    def with_thresholds(self, detector: object) -> Options:
        """The thresholds ``detector`` will use filled in (what a result records): see
        :func:`detector_thresholds`."""
        box, text = detector_thresholds(detector, self.box_threshold, self.text_threshold)
        return replace(self, box_threshold=box, text_threshold=text)

    def to_dict(self) -> dict[str, OptionValue]:
        return dataclasses.asdict(self)


def detector_thresholds(detector: object, box_threshold: float | None, text_threshold: float | None
                        ) -> tuple[float, float]:
    """The (box, text) thresholds a detection uses: an unset (``None``) one is the detector's own
    (``detector.box_threshold`` / ``detector.text_threshold``, from its preset)."""
    return (detector.box_threshold if box_threshold is None else box_threshold,  # type: ignore[attr-defined]
            detector.text_threshold if text_threshold is None else text_threshold)  # type: ignore[attr-defined]


def _label(f: OptionField) -> str:
    return f.name.replace("_", " ")


def _coerce(f: OptionField, value: OptionValue) -> OptionValue:
    """Numbers given as text (a form field, an environment variable) become numbers."""
    if isinstance(value, str) and f.type in (int, float):
        try:
            return f.type(value.strip())
        except ValueError:
            raise InputError(f"{_label(f)} must be a number, got {value!r}") from None
    return value


def _check(f: OptionField, v: OptionValue) -> None:
    if v is None:
        if not f.optional:
            raise InputError(f"{_label(f)} must be given")
        return
    if f.choices is not None:
        if v not in f.choices:
            raise InputError(f"unknown {_label(f)} {v!r}; choose one of: {', '.join(f.choices)}")
        return
    if f.type is bool:
        if not isinstance(v, bool):
            raise InputError(f"{_label(f)} must be true or false, got {v!r}")
        return
    if f.type is int and (isinstance(v, bool) or not isinstance(v, int)):
        raise InputError(f"{_label(f)} must be a whole number >= {f.minimum:g}, got {v!r}")
    if f.type is float and (isinstance(v, bool) or not isinstance(v, (int, float))):
        raise InputError(f"{_label(f)} must be a number, got {v!r}")
    lo = -float("inf") if f.minimum is None else f.minimum
    hi = float("inf") if f.maximum is None else f.maximum
    if not lo <= float(v) <= hi:  # type: ignore[arg-type]
        if f.maximum is not None:
            raise InputError(f"{_label(f)} must be between {lo:g} and {hi:g}, got {v}")
        raise InputError(f"{_label(f)} must be a whole number >= {lo:g}, got {v}")


def check_captions(captions: str | Sequence[str]) -> list[str]:
    """The one caption check: a non-empty list of non-blank texts, whitespace collapsed."""
    if isinstance(captions, str):
        captions = [captions]
    if not captions:
        raise InputError("no captions given")
    out = []
    for i, c in enumerate(captions):
        if not isinstance(c, str):
            raise InputError(f"caption {i + 1} is not text")
        if not c.strip():
            raise InputError(f"caption {i + 1} is empty")
        out.append(" ".join(c.split()))
    return out
