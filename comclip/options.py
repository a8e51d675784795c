"""How ComCLIP is computed: the ONE option vocabulary (names, types, defaults, choices, help).

:class:`Options` is a frozen dataclass whose fields carry their own metadata
(:meth:`Options.fields` → :class:`OptionField`), so the command-line flags
(:func:`comclip.cli.common.add_model_options`) and the app's widgets are generated from it, and
:meth:`Options.from_mapping` / :meth:`Options.updated` validate any mapping of them with one
:class:`~comclip.errors.InputError` naming the bad key or value. Defaults follow the paper.
:class:`EvalOptions` (``comclip eval``'s report rules) is built the same way (:class:`OptionSet`).

The official code's choices (docs/fidelity.md) differ by backbone and by official script:
:meth:`Options.official` gives them for an encoder backend and a source (``winoground``,
``vl-checklist``, ``comvg``, ``retrieval``), :meth:`EvalOptions.official` the evaluation's, and
:func:`resolve_official_source` picks the source for ``--official-source auto``.

This module is light (no torch): importing it costs nothing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Self

from comclip.errors import InputError
from comclip.parse import PARSERS

WEIGHTINGS: tuple[str, ...] = ("softmax", "sum")
RELATION_TEXTS: tuple[str, ...] = ("predicate", "triple")
SUBIMAGE_MODES: tuple[str, ...] = ("blackout", "crop")
INTRANSITIVE_REGIONS: tuple[str, ...] = ("subject", "whole")
SCORE_SCALES: tuple[str, ...] = ("logit", "cosine", "dot")
EMBEDDINGS: tuple[str, ...] = ("normalised", "raw")
QUERY_NORMS: tuple[str, ...] = ("none", "l2")
RESIZES: tuple[str, ...] = ("model", "squash")
DENOMINATORS: tuple[str, ...] = ("scored", "all")
#: ``boxes_per_entity`` the detector is asked for when ``all_boxes`` is on.
ALL_BOXES = 1_000_000

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


def _opt(default: OptionValue, help: str, *, type: type, choices: tuple[str, ...] | None = None,
         flag: str | None = None, optional: bool = False, minimum: float | None = None,
         maximum: float | None = None, flag_help: str | None = None) -> OptionValue:
    meta = {"type": type, "help": help, "choices": choices, "flag": flag, "optional": optional,
            "minimum": minimum, "maximum": maximum, "flag_help": flag_help}
    return field(default=default, metadata=meta)  # type: ignore[return-value]


class OptionSet:
    """What every option set shares: its fields with their metadata, validation, mappings.

    Subclasses are frozen dataclasses whose fields are declared with :func:`_opt`."""

    def __post_init__(self) -> None:
        self.validate()

    @classmethod
    def fields(cls) -> tuple[OptionField, ...]:
        """Every option with its metadata, in declaration order."""
        cached = cls.__dict__.get("_fields_cache")
        if cached is None:
            cached = tuple(OptionField(name=f.name, default=f.default, **f.metadata)  # type: ignore[arg-type]
                           for f in fields(cls))  # type: ignore[arg-type]
            cls._fields_cache = cached  # type: ignore[attr-defined]
        return cached

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
    def from_mapping(cls, values: Mapping[str, OptionValue] | None = None) -> Self:
        """Options from a mapping (None values mean "the default"); unknown keys are named."""
        return cls().updated(**dict(values or {}))

    def updated(self, **changes: OptionValue) -> Self:
        """A copy with ``changes`` applied (None values are ignored), validated."""
        unknown = set(changes) - set(self.names())
        if unknown:
            raise InputError(f"unknown option(s): {', '.join(sorted(unknown))}; known: {', '.join(self.names())}")
        kept = {k: _coerce(self.field(k), v) for k, v in changes.items() if v is not None}
        return replace(self, **kept) if kept else self  # type: ignore[type-var]

    def validate(self) -> Self:
        for f in self.fields():
            _check(f, getattr(self, f.name))
        return self

    def to_dict(self) -> dict[str, OptionValue]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    def changed(self) -> dict[str, OptionValue]:
        """The values that differ from the defaults."""
        base = type(self)()
        return {f.name: getattr(self, f.name) for f in self.fields() if getattr(self, f.name) != getattr(base, f.name)}


@dataclass(frozen=True)
class Options(OptionSet):
    """How ComCLIP is computed. Defaults follow the paper."""

    weighting: str = _opt("softmax", "component weights: softmax (paper) or sum (official code)",
                          type=str, choices=WEIGHTINGS, flag="--weighting")
    relation_text: str = _opt("predicate", "text encoded for a relation: its predicate (paper) or the whole "
                              "triple", type=str, choices=RELATION_TEXTS, flag="--relation-text")
    subimage: str = _opt("blackout", "sub-image: black out everything else (paper) or crop to the boxes",
                         type=str, choices=SUBIMAGE_MODES, flag="--subimage")
    relations: bool = _opt(True, "use relation components (off: entity components only)", type=bool,
                           flag="--no-relations", flag_help="use entity components only (no relations)")
    parser: str = _opt("auto", "caption parser: auto (spacy if installed, else rules), rules, spacy, llm",
                       type=str, choices=PARSERS, flag="--parser")
    box_threshold: float | None = _opt(None, "detector box threshold", type=float, optional=True,
                                       flag="--box-threshold", minimum=0.0, maximum=1.0)
    text_threshold: float | None = _opt(None, "detector text threshold", type=float, optional=True,
                                        flag="--text-threshold", minimum=0.0, maximum=1.0)
    boxes_per_entity: int = _opt(1, "boxes kept per entity", type=int, flag="--boxes-per-entity", minimum=1)
    all_boxes: bool = _opt(False, "an entity's region is the union of every box above the thresholds (the official "
                           "code: every matched object), not only its best --boxes-per-entity", type=bool,
                           flag="--all-boxes")
    intransitive: str = _opt("subject", "region of a relation with no object: its subject's, or the whole image "
                             "(the official code)", type=str, choices=INTRANSITIVE_REGIONS, flag="--intransitive")
    #: Build blackout sub-images from the preprocessed whole image (fast; equal to the PIL path
    #: within a tested tolerance). False: render every sub-image with PIL, pixel-exact.
    fast_subimages: bool = _opt(True, "build blackout sub-images from the preprocessed image (off: render "
                                "each with PIL, pixel-exact)", type=bool, flag="--exact-subimages",
                                flag_help="render every sub-image with PIL, pixel-exact (slower; default: built "
                                "from the preprocessed image, equal within a tested tolerance)")
    # -- where the official code's backbones differ (docs/fidelity.md) ---------------------------
    score_scale: str = _opt("logit", "component score s_i behind the weights: logit_scale * cos (logit, paper), the "
                            "cosine alone (cosine: the official BLIP-2 and SLIP code) or the dot product of the "
                            "embeddings as composed (dot: the official ComVG and retrieval code, with --embeddings "
                            "raw); sum weighting does not depend on a constant scale", type=str,
                            choices=SCORE_SCALES, flag="--score-scale")
    embeddings: str = _opt("normalised", "single-vector encoders: compose the L2-normalised image embeddings "
                           "(normalised, paper) or the encoder's raw outputs (raw: the official SLIP, ComVG and "
                           "retrieval code); BLIP-2 always composes its raw query outputs", type=str,
                           choices=EMBEDDINGS, flag="--embeddings")
    query_norm: str = _opt("none", "multi-query encoders (BLIP-2): each composed query vector goes to the "
                           "projection as is (none), or L2-normalised first (l2: the official Winoground "
                           "comblip.py; its VL-CheckList notebook does not); no effect on other encoders", type=str,
                           choices=QUERY_NORMS, flag="--query-norm")
    resize: str = _opt("model", "image preprocessing: the model's own (model; CLIP and SLIP: short side resized, "
                       "centre crop) or squashed to the model's square input, bicubic, aspect not kept (squash: the "
                       "official comslip.py); BLIP-2's own preprocessing squashes already", type=str,
                       choices=RESIZES, flag="--resize")

    @classmethod
    def official(cls, backend: str | None = None, source: str | None = None) -> Options:
        """The official code's choices where they differ from the paper (docs/fidelity.md), for an
        encoder ``backend`` (:data:`OFFICIAL_FAMILY`; default open_clip: CLIP) as one official
        ``source`` computes them (:data:`OFFICIAL_SOURCES`; default: the backbone's Winoground
        script). Always: ``sum`` weighting, every matched box per entity, the whole image for an
        intransitive relation."""
        family = official_family(backend)
        source = source or "winoground"
        if source not in OFFICIAL_SOURCES:
            raise InputError(f"unknown official source {source!r}; choose one of: {', '.join(OFFICIAL_SOURCES)}")
        by_source = _OFFICIAL[family]
        if source not in by_source:
            raise InputError(f"the official code has no {source} script for {family.upper()} (only "
                             f"{', '.join(by_source)}); choose one of those with --official-source")
        return cls(**_OFFICIAL_COMMON, **by_source[source])  # type: ignore[arg-type]

    @property
    def detector_boxes(self) -> int:
        """How many boxes per phrase the detector keeps."""
        return ALL_BOXES if self.all_boxes else self.boxes_per_entity

    def with_thresholds(self, box_threshold: float, text_threshold: float) -> Options:
        """``None`` thresholds replaced by the detector's own (what a result records)."""
        return replace(self, box_threshold=box_threshold if self.box_threshold is None else self.box_threshold,
                       text_threshold=text_threshold if self.text_threshold is None else self.text_threshold)



@dataclass(frozen=True)
class EvalOptions(OptionSet):
    """How ``comclip eval`` turns per-example results into metrics (the engine does not read these)."""

    denominator: str = _opt("scored", "what a metric is a fraction of: the scored examples (scored; failed ones are "
                            "counted and listed apart) or every selected example, a failed one counting as a miss "
                            "(all: the official retrieval script divides by a fixed 1000)", type=str,
                            choices=DENOMINATORS, flag="--denominator")

    @classmethod
    def official(cls, source: str | None = None) -> EvalOptions:
        """The official evaluation's rule: the retrieval script divides by a fixed number of queries
        (failed ones are misses); the other scripts divide by the examples that did not fail."""
        return cls(denominator="all" if source == "retrieval" else "scored")


# -- the official code's sources and choices (docs/fidelity.md) ----------------------------------

#: The official scripts and notebooks (eric-ai-lab/ComCLIP) ``--official`` can follow.
OFFICIAL_SOURCES: tuple[str, ...] = ("winoground", "vl-checklist", "comvg", "retrieval")
#: The official source that evaluates each ``comclip eval`` dataset (SVO-Probes: the ComVG code).
OFFICIAL_SOURCE_OF_DATASET = {"winoground": "winoground", "vl-checklist": "vl-checklist", "comvg": "comvg",
                              "svo": "comvg", "flickr30k": "retrieval", "coco": "retrieval"}
#: The official code's model family of each encoder backend (open_clip covers CLIP, SigLIP, ...).
OFFICIAL_FAMILY = {"open_clip": "clip", "hf_clip": "clip", "slip": "slip", "blip2": "blip2"}
_OFFICIAL_COMMON: dict[str, OptionValue] = {"weighting": "sum", "all_boxes": True, "intransitive": "whole"}
#: family -> source -> the values (beyond the common ones) that source computes with.
_OFFICIAL: dict[str, dict[str, dict[str, OptionValue]]] = {
    # winoground/comclip.py and the VL-CheckList notebook: HF CLIP's normalised embeddings, logits_per_text.
    # ComVG/comclip.py, image_retrieval/comclip.py (and their notebooks): the OpenAI clip package's raw
    # encode_image / encode_text outputs, s_i their dot product, composed unnormalised.
    "clip": {"winoground": {}, "vl-checklist": {}, "comvg": {"embeddings": "raw", "score_scale": "dot"},
             "retrieval": {"embeddings": "raw", "score_scale": "dot"}},
    # winoground/comslip.py: raw encode_image outputs composed, s_i = F.cosine_similarity, 224x224 bicubic.
    "slip": {"winoground": {"embeddings": "raw", "score_scale": "cosine", "resize": "squash"}},
    # winoground/comblip.py (and demo/winoground): s_i the raw max cosine, each composed query vector
    # L2-normalised before vision_proj; the VL-CheckList notebook leaves that normalisation out.
    "blip2": {"winoground": {"score_scale": "cosine", "query_norm": "l2"},
              "vl-checklist": {"score_scale": "cosine"}},
}


def official_family(backend: str | None) -> str:
    """The official code's model family (``clip``, ``slip``, ``blip2``) of an encoder backend."""
    family = OFFICIAL_FAMILY.get(backend or "open_clip")
    if family is None:
        raise InputError(f"unknown encoder backend {backend!r}; choose one of: {', '.join(OFFICIAL_FAMILY)}")
    return family


def official_sources(backend: str | None) -> tuple[str, ...]:
    """The official sources that exist for a backend's model family."""
    return tuple(_OFFICIAL[official_family(backend)])


def resolve_official_source(backend: str | None, source: str | None = "auto", dataset: str | None = None
                            ) -> tuple[str, str]:
    """``(source the engine's choices follow, source the evaluation's rules follow)``.

    An explicit ``source`` is used for both (and must exist for the backbone). ``auto`` (or None)
    takes the source that evaluates ``dataset`` (Winoground's when there is none, as for ``score``);
    when the backbone has no official code for it, the engine's choices fall back to the backbone's
    Winoground script (the only one SLIP has) while the evaluation's rules stay the dataset's."""
    if source not in (None, "auto"):
        if source not in OFFICIAL_SOURCES:
            raise InputError(f"unknown official source {source!r}; choose one of: auto, {', '.join(OFFICIAL_SOURCES)}")
        Options.official(backend, source)  # refuses a source the backbone has no code for
        return source, source
    wanted = OFFICIAL_SOURCE_OF_DATASET.get(dataset or "", "winoground")
    return (wanted if wanted in official_sources(backend) else "winoground"), wanted


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
