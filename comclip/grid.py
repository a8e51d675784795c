"""Several images against the same captions — Winoground's test (two images, two captions with the
same words: "a mug in some grass" / "some grass in a mug") and its bigger cousins — as one
torch-free value, :class:`GridResult`, and a sentence telling what each method did (:func:`story`).

Contracts:

* a grid is 2–4 images × 2–8 distinct captions; ``pairing[i]`` is image i's true caption (0-based),
  a different caption for each image. When images and captions are as many, the default pairing is
  i ↔ i; otherwise it must be given. :func:`check_grid` raises one :class:`InputError` for anything
  else (messages name no front end's controls).
* ``scores(method)[i][j]`` (``clip`` / ``comclip``) is image i vs caption j: exactly the score
  ``match(image_i, captions)`` gives caption j (``images[i]`` is that :class:`MatchResult`).
* every win and rank follows :mod:`comclip.ranking`: a tie is a loss, a rank is pessimistic
  (1 + the others scoring >= the target). A pick (the caption an image picks, the image a caption
  picks) is the one scoring strictly highest; ``None`` when the top is tied.
* a 2×2 grid has Winoground's text / image / group scores (:meth:`GridResult.winoground`), judged
  on the table ``cX_iY`` where caption X is image X's TRUE caption: the pairing decides, not the
  captions' order (pairing ``(1, 0)``: image 0's caption is caption 1).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from comclip.errors import InputError
from comclip.options import check_captions
from comclip.ranking import rank_of, winoground_group, winoground_image, winoground_text
from comclip.result import MatchResult

__all__ = ["LABELS", "MAX_CAPTIONS", "MAX_IMAGES", "METHODS", "GridResult", "check_grid", "check_pairing",
           "check_sizes", "story", "summary"]

METHODS = ("clip", "comclip")
#: Each method's name as people read it.
LABELS = {"clip": "CLIP", "comclip": "ComCLIP"}
MIN_IMAGES, MAX_IMAGES = 2, 4
MIN_CAPTIONS, MAX_CAPTIONS = 2, 8
QUOTE_CHARS = 40


def check_pairing(pairing: Sequence[int] | None, n_images: int, n_captions: int) -> tuple[int, ...]:
    """The pairing as a tuple: one in-range caption index per image, no caption twice; ``None``
    means i ↔ i, allowed only when images and captions are as many."""
    if pairing is None:
        if n_images != n_captions:
            raise InputError(f"{n_images} images and {n_captions} captions: give the pairing "
                             "(each image's true caption index)")
        return tuple(range(n_images))
    if isinstance(pairing, (str, bytes)) or not isinstance(pairing, Sequence) or not all(
            isinstance(p, int) and not isinstance(p, bool) for p in pairing):
        raise InputError("the pairing must be a list of caption indices (whole numbers), one per image")
    if len(pairing) != n_images:
        raise InputError(f"the pairing has {len(pairing)} {'entry' if len(pairing) == 1 else 'entries'} for "
                         f"{n_images} images")
    for p in pairing:
        if not 0 <= p < n_captions:
            raise InputError(f"the pairing names caption {p}, but the captions are numbered 0 to {n_captions - 1}")
    for k, p in enumerate(pairing):
        if p in pairing[:k]:
            raise InputError(f"the pairing gives caption {p} to two images; each image needs its own true caption")
    return tuple(pairing)


def check_sizes(images: object, captions: Sequence[str]) -> list[str]:
    """A grid's images (a list of 2–4) and captions (2–8, distinct): the cleaned captions."""
    if isinstance(images, (str, bytes)) or not isinstance(images, Sequence):
        raise InputError(f"give the images as a list ({MIN_IMAGES} to {MAX_IMAGES})")
    if not MIN_IMAGES <= len(images) <= MAX_IMAGES:
        raise InputError(f"a grid takes {MIN_IMAGES} to {MAX_IMAGES} images; {len(images)} given")
    captions = check_captions(captions)
    if not MIN_CAPTIONS <= len(captions) <= MAX_CAPTIONS:
        raise InputError(f"a grid takes {MIN_CAPTIONS} to {MAX_CAPTIONS} captions; {len(captions)} given")
    for k, c in enumerate(captions):
        if c in captions[:k]:
            raise InputError(f"caption {k + 1} repeats caption {captions.index(c) + 1}: a grid's captions must differ")
    return captions


def check_grid(images: object, captions: Sequence[str], pairing: Sequence[int] | None = None
               ) -> tuple[list[str], tuple[int, ...]]:
    """One grid request's checks before anything runs (:func:`check_sizes`, :func:`check_pairing`):
    the cleaned captions and the pairing."""
    captions = check_sizes(images, captions)
    return captions, check_pairing(pairing, len(images), len(captions))  # type: ignore[arg-type]


def _check_method(method: str) -> str:
    if method not in METHODS:
        raise InputError(f"unknown method {method!r}; choose {' or '.join(METHODS)}")
    return method


def _pick(scores: Sequence[float]) -> int | None:
    """The index scoring strictly highest; None when the top is tied."""
    best = max(range(len(scores)), key=lambda j: scores[j])
    return best if rank_of(scores, best) == 1 else None


@dataclass(frozen=True)
class GridResult:
    """Images × captions under both methods: ``images[i]`` is image i's :class:`MatchResult`
    (its captions in the grid's order), ``pairing[i]`` image i's true caption."""

    images: tuple[MatchResult, ...]
    pairing: tuple[int, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "images", tuple(self.images))
        if not self.images or any([c.caption for c in r.captions] != list(self.captions) for r in self.images):
            raise InputError("every image of a grid must be scored against the same captions")
        object.__setattr__(self, "pairing", check_pairing(self.pairing, len(self.images), len(self.captions)))

    @property
    def captions(self) -> tuple[str, ...]:
        return tuple(c.caption for c in self.images[0].captions)

    @property
    def shape(self) -> tuple[int, int]:
        """(images, captions)."""
        return len(self.images), len(self.captions)

    @property
    def is_pair(self) -> bool:
        """Two images, two captions: Winoground's example."""
        return self.shape == (2, 2)

    def scores(self, method: str) -> tuple[tuple[float, ...], ...]:
        """``[i][j]``: image i vs caption j under ``method`` (``clip`` or ``comclip``)."""
        attr = f"{_check_method(method)}_score"
        return tuple(tuple(float(getattr(c, attr)) for c in r.captions) for r in self.images)

    @property
    def clip(self) -> tuple[tuple[float, ...], ...]:
        return self.scores("clip")

    @property
    def comclip(self) -> tuple[tuple[float, ...], ...]:
        return self.scores("comclip")

    def true_image(self, caption: int) -> int | None:
        """The image whose true caption is ``caption``; None for a caption no image is paired with."""
        return self.pairing.index(caption) if caption in self.pairing else None

    def caption_ranks(self, method: str) -> tuple[int, ...]:
        """Per image: the rank of its true caption among all captions (1 = strictly first)."""
        return tuple(rank_of(row, self.pairing[i]) for i, row in enumerate(self.scores(method)))

    def image_ranks(self, method: str) -> tuple[int | None, ...]:
        """Per caption: the rank of its true image among all images; None for an unpaired caption."""
        columns = list(zip(*self.scores(method), strict=True))
        return tuple(None if (i := self.true_image(j)) is None else rank_of(col, i) for j, col in enumerate(columns))

    def caption_picks(self, method: str) -> tuple[int | None, ...]:
        """Per image: the caption scoring strictly highest on it (None: a tie at the top)."""
        return tuple(_pick(row) for row in self.scores(method))

    def image_picks(self, method: str) -> tuple[int | None, ...]:
        """Per caption: the image on which it scores strictly highest (None: a tie at the top)."""
        return tuple(_pick(col) for col in zip(*self.scores(method), strict=True))

    def table(self, method: str) -> dict[str, float]:
        """A 2×2 grid as Winoground's ``{c0_i0, c0_i1, c1_i0, c1_i1}``: caption X = image X's true caption."""
        if not self.is_pair:
            raise InputError(f"Winoground's scores need 2 images and 2 captions, not {self.shape[0]} and "
                             f"{self.shape[1]}")
        s = self.scores(method)
        return {f"c{x}_i{y}": s[y][self.pairing[x]] for x in (0, 1) for y in (0, 1)}

    def winoground(self, method: str) -> dict[str, bool]:
        """A 2×2 grid's ``{"text", "image", "group"}`` under ``method`` (ties lose)."""
        t = self.table(method)
        return {"text": winoground_text(t), "image": winoground_image(t), "group": winoground_group(t)}

    def to_dict(self, embeddings: bool = False, names: Sequence[str] | None = None) -> dict[str, Any]:
        """The JSON form: captions, pairing, both score matrices, picks, ranks, ``winoground`` (2×2
        only), ``story`` per method (``names``: the images as the story calls them) and ``images``
        (each image's own result, as ``score --json`` prints it)."""
        d: dict[str, Any] = {"captions": list(self.captions), "pairing": list(self.pairing)}
        d.update({m: [list(row) for row in self.scores(m)] for m in METHODS})
        d["picks"] = {m: {"caption_per_image": list(self.caption_picks(m)),
                          "image_per_caption": list(self.image_picks(m))} for m in METHODS}
        d["ranks"] = {m: {"caption_per_image": list(self.caption_ranks(m)),
                          "image_per_caption": list(self.image_ranks(m))} for m in METHODS}
        if self.is_pair:
            d["winoground"] = {m: self.winoground(m) for m in METHODS}
        d["story"] = {m: story(self, m, names) for m in METHODS}
        d["images"] = [r.to_dict(embeddings) for r in self.images]
        return d


# -- the story ----------------------------------------------------------------------------------

def _quote(caption: str) -> str:
    short = caption if len(caption) <= QUOTE_CHARS else caption[: QUOTE_CHARS - 1].rstrip() + "…"
    return f'"{short}"'


def _names(grid: GridResult, names: Sequence[str] | None) -> list[str]:
    if names is None:
        return [f"image {i}" for i in range(len(grid.images))]
    if isinstance(names, str) or len(names) != len(grid.images):
        raise InputError(f"give one name per image ({len(grid.images)})")
    return [str(n) for n in names]


def _text_failure(grid: GridResult, method: str, names: Sequence[str]) -> str:
    """What went wrong when the images picked their captions (2×2, text score lost)."""
    picks, caps = grid.caption_picks(method), grid.captions
    if None not in picks:  # no tie: both picked one caption, or each the other's
        return f"gives {_quote(caps[picks[0]])} to both images" if picks[0] == picks[1] else \
            "gives each image the other's caption"
    return " and ".join(f"cannot tell the captions apart for {names[i]}" if p is None else
                        f"gives {_quote(caps[p])} to {names[i]}"
                        for i, p in enumerate(picks) if p != grid.pairing[i])


def _image_failure(grid: GridResult, method: str, names: Sequence[str]) -> str:
    """What went wrong when the captions picked their images (2×2, image score lost)."""
    picks, caps = grid.image_picks(method), grid.captions
    if None not in picks:
        return f"gives both captions to {names[picks[0]]}" if picks[0] == picks[1] else \
            "gives each caption the other image"
    return " and ".join(f"cannot tell the images apart for {_quote(caps[j])}" if p is None else
                        f"gives {_quote(caps[j])} to {names[p]}"
                        for j, p in enumerate(picks) if p != grid.true_image(j))


def _pair_story(grid: GridResult, method: str, names: Sequence[str]) -> str:
    label, won = LABELS[method], grid.winoground(method)
    if won["group"]:
        return f"{label} matches both ways — group score won"
    if not won["text"] and not won["image"]:
        text, image = _text_failure(grid, method, names), _image_failure(grid, method, names)
        if text.startswith("gives ") and image.startswith("gives "):
            image = image.removeprefix("gives ")  # "gives X to both images and both captions to Y"
        return f"{label} {text} and {image} — text and image scores lost"
    if not won["text"]:
        return f"{label} {_text_failure(grid, method, names)} — text score lost, image score won"
    return f"{label} {_image_failure(grid, method, names)} — image score lost, text score won"


def _count(k: int, n: int, what: str) -> str:
    return f"all {n} {what}" if k == n else f"none of the {n} {what}" if k == 0 else f"{k} of {n} {what}"


def _ranks_story(grid: GridResult, method: str) -> str:
    to_caption = grid.caption_ranks(method)
    to_image = [r for r in grid.image_ranks(method) if r is not None]
    captions = "captions" if len(to_image) == len(grid.captions) else "paired captions"
    return (f"{LABELS[method]} ranks the true caption first for "
            f"{_count(sum(r == 1 for r in to_caption), len(to_caption), 'images')} and the true image first for "
            f"{_count(sum(r == 1 for r in to_image), len(to_image), captions)}")


def story(grid: GridResult, method: str, names: Sequence[str] | None = None) -> str:
    """One plain-text sentence (no final full stop) on what ``method`` did with the grid.

    2×2: which way it matched, e.g. ``CLIP gives both captions to the left image — image score lost,
    text score won`` or ``ComCLIP matches both ways — group score won``; bigger grids: how many true
    captions and true images it ranks first. ``names``: how the sentence calls each image ("the left
    image", a file name; default ``image 0``, ``image 1``, ...)."""
    _check_method(method)
    called = _names(grid, names)
    return _pair_story(grid, method, called) if grid.is_pair else _ranks_story(grid, method)


def summary(grid: GridResult, names: Sequence[str] | None = None) -> str:
    """Both methods' stories in one sentence: ``CLIP …; ComCLIP …``."""
    return "; ".join(story(grid, m, names) for m in METHODS)
