"""The bench's inputs: seeded scene-like images and per image K captions that share their entities.

Per image K captions share the image's 2–3 entities (in the same order) and differ in their one
relation ("a red mug in a green bowl", "a red mug under a green bowl", ...): the usual shape of a
compositional candidate set. Every caption is parsed once, up front, with the ``rules`` parser; the
same graphs go to every variant, so parsing is excluded from all of them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from comclip.errors import InputError
from comclip.graph import SceneGraph
from comclip.images import LoadedImage

IMAGE_SIZE = (640, 480)
#: Relations the captions of one image differ by.
PREDICATES = ("in", "on", "under", "behind", "next to", "in front of", "near", "above", "below", "beside",
              "on top of", "inside", "to the left of", "to the right of", "against", "leaning on")
NOUNS = ("mug", "bowl", "dog", "cat", "car", "horse", "bench", "table", "chair", "ball", "plate", "hat", "truck",
         "bike", "tree", "bus")
ATTRIBUTES = ("red", "blue", "green", "yellow", "black", "white", "brown", "small", "large", "wooden", "old")
MAX_CAPTIONS_PER_IMAGE = len(PREDICATES)


# -- inputs -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class BenchInputs:
    """Images, their captions and the captions' graphs (parsed once); a pair is (image, caption)."""

    images: list[LoadedImage]
    captions: list[list[str]]
    graphs: list[list[SceneGraph]]

    @property
    def pairs(self) -> int:
        return sum(len(c) for c in self.captions)

    def items(self) -> list[tuple[LoadedImage, list[str], list[SceneGraph]]]:
        return list(zip(self.images, self.captions, self.graphs, strict=True))

    def pair_list(self) -> list[tuple[LoadedImage, str, SceneGraph]]:
        return [(im, c, g) for im, cs, gs in self.items() for c, g in zip(cs, gs, strict=True)]

    def head(self, n: int) -> BenchInputs:
        """The first ``n`` pairs."""
        images, captions, graphs, left = [], [], [], n
        for im, cs, gs in self.items():
            if left <= 0:
                break
            images.append(im)
            captions.append(cs[:left])
            graphs.append(gs[:left])
            left -= len(captions[-1])
        return BenchInputs(images, captions, graphs)


def synthetic_image(rng: np.random.Generator, size: tuple[int, int] = IMAGE_SIZE) -> Image.Image:
    """A seeded scene-like image: a two-tone gradient, a few filled shapes, mild texture noise."""
    w, h = size
    top, bottom = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    ramp = np.linspace(0.0, 1.0, h)[:, None, None]
    arr = (top * (1 - ramp) + bottom * ramp) * np.ones((1, w, 1))
    img = Image.fromarray(arr.astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(3, 7))):
        x0, y0 = int(rng.integers(0, w - 60)), int(rng.integers(0, h - 60))
        x1, y1 = int(rng.integers(x0 + 40, min(w, x0 + 320))), int(rng.integers(y0 + 40, min(h, y0 + 260)))
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)((x0, y0, x1, y1), fill=colour)
    img = img.filter(ImageFilter.GaussianBlur(1.0))
    noise = rng.normal(0.0, 8.0, (h, w, 3))
    return Image.fromarray(np.clip(np.asarray(img, dtype=np.float64) + noise, 0, 255).astype(np.uint8), "RGB")


def _with_article(phrase: str) -> str:
    return ("an " if phrase[0] in "aeiou" else "a ") + phrase


def caption_for(entities: Sequence[str], predicate: str) -> str:
    """2 entities: "a A pred a B"; 3: "a A is pred a B and there is a C" (one relation either way)."""
    a, b = _with_article(entities[0]), _with_article(entities[1])
    if len(entities) == 2:
        return f"{a} {predicate} {b}"
    return f"{a} is {predicate} {b} and there is {_with_article(entities[2])}"


def make_inputs(pairs: int, captions_per_image: int, *, seed: int = 0, size: tuple[int, int] = IMAGE_SIZE
                ) -> BenchInputs:
    """``pairs`` (image, caption) pairs: ``ceil(pairs / K)`` images, K captions each (the last may have fewer).

    Images alternate between 2 and 3 entities; every caption has exactly one relation. Graphs come
    from the ``rules`` parser and are checked to be what the template means.
    """
    from comclip import parse as parsing

    check_counts(pairs, captions_per_image, 1)
    rng = np.random.default_rng(seed)
    images, captions, graphs = [], [], []
    for i in range(math.ceil(pairs / captions_per_image)):
        k = min(captions_per_image, pairs - i * captions_per_image)
        n_entities = 2 + i % 2
        nouns = rng.choice(len(NOUNS), n_entities, replace=False)
        entities = [f"{ATTRIBUTES[int(rng.integers(len(ATTRIBUTES)))]} {NOUNS[int(j)]}" for j in nouns]
        preds = [PREDICATES[int(j)] for j in rng.choice(len(PREDICATES), k, replace=False)]
        caps = [caption_for(entities, p) for p in preds]
        gs = [parsing.parse(c, "rules") for c in caps]
        for c, g in zip(caps, gs, strict=True):
            got = ([e.phrase for e in g.entities], [(r.subject, r.object) for r in g.relations])
            if got != (entities, [("e0", "e1")]):
                raise RuntimeError(f"bench caption {c!r} parsed as {got}; fix the bench templates")
        images.append(LoadedImage(synthetic_image(rng, size)))
        captions.append(caps)
        graphs.append(gs)
    return BenchInputs(images, captions, graphs)


def check_counts(pairs: Any, captions_per_image: Any, repeats: Any) -> None:
    for name, v, lo in (("--pairs", pairs, 1), ("--captions-per-image", captions_per_image, 1),
                        ("--repeats", repeats, 1)):
        if isinstance(v, bool) or not isinstance(v, int) or v < lo:
            raise InputError(f"{name} must be a whole number >= {lo}, got {v}")
    if captions_per_image > MAX_CAPTIONS_PER_IMAGE:
        raise InputError(f"--captions-per-image must be at most {MAX_CAPTIONS_PER_IMAGE} (the bench has that many "
                         f"different relations), got {captions_per_image}")


