"""What the engine returns: :class:`MatchResult` → :class:`CaptionResult` → :class:`Component`.

Plain values (NumPy arrays for embeddings, no torch), with ``to_dict`` giving the JSON form the
CLI prints and the app serves.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from comclip.boxes import Boxes
from comclip.graph import SceneGraph
from comclip.options import Options

#: What a result records about the models: encoder label, detector id, ``random_weights``.
ModelsInfo = dict[str, str | bool]


def _as_list(x: np.ndarray | None) -> list | None:
    return None if x is None else np.asarray(x, dtype=np.float64).tolist()  # per-query rows (BLIP-2) are 2-D


@dataclass
class Component:
    kind: str  # "entity" | "relation"
    ref: str  # entity id ("e0") or relation index ("r0")
    text: str  # what was encoded as t_i
    boxes: Boxes  # its region: its entities' boxes with their detector scores, or the whole image (boxes.whole)
    grounded: bool  # every entity it covers was found (an entity not found: the whole image stands in for it)
    similarity: float  # cos(t_i, v_i)
    weight: float
    loo_score: float  # ComCLIP score without this component (leave-one-out)
    #: What it adds to its caption's ComCLIP score: the score minus :attr:`loo_score`.
    effect: float
    image_embedding: np.ndarray | None = field(default=None, repr=False)
    text_embedding: np.ndarray | None = field(default=None, repr=False)

    def to_dict(self, embeddings: bool = False) -> dict[str, Any]:
        boxes, scores = self.boxes.to_lists()
        d: dict[str, Any] = {"kind": self.kind, "ref": self.ref, "text": self.text, "boxes": boxes,
                             "box_scores": scores, "grounded": self.grounded, "similarity": self.similarity,
                             "weight": self.weight, "loo_score": self.loo_score, "effect": self.effect}
        if embeddings:
            d["image_embedding"] = _as_list(self.image_embedding)
            d["text_embedding"] = _as_list(self.text_embedding)
        return d


@dataclass
class CaptionResult:
    caption: str
    clip_score: float
    comclip_score: float
    graph: SceneGraph
    components: list[Component]
    truncated: bool = False  # longer than the text encoder reads
    text_embedding: np.ndarray | None = field(default=None, repr=False)

    @property
    def delta(self) -> float:
        return self.comclip_score - self.clip_score

    @property
    def ungrounded(self) -> list[Component]:
        """The entity components the detector did not find (the whole image stood in for them)."""
        return [k for k in self.components if k.kind == "entity" and not k.grounded]

    @property
    def entity_index(self) -> dict[str, int]:
        """Each entity's position in the graph, by id: its colour in every picture of it."""
        return {e.id: i for i, e in enumerate(self.graph.entities)}

    def to_dict(self, embeddings: bool = False) -> dict[str, Any]:
        d: dict[str, Any] = {"caption": self.caption, "clip_score": self.clip_score,
                             "comclip_score": self.comclip_score, "truncated": self.truncated,
                             "graph": self.graph.to_dict(),
                             "components": [c.to_dict(embeddings) for c in self.components]}
        if embeddings:
            d["text_embedding"] = _as_list(self.text_embedding)
        return d


@dataclass
class MatchResult:
    image_path: str | None
    width: int
    height: int
    captions: list[CaptionResult]
    preset: str
    models: ModelsInfo
    options: Options
    logit_scale: float
    timings_ms: dict[str, float]
    global_image_embedding: np.ndarray | None = field(default=None, repr=False)

    @property
    def best_clip(self) -> int:
        return int(np.argmax([c.clip_score for c in self.captions]))

    @property
    def best_comclip(self) -> int:
        return int(np.argmax([c.comclip_score for c in self.captions]))

    def to_dict(self, embeddings: bool = False) -> dict[str, Any]:
        d: dict[str, Any] = {
            "image": {"path": self.image_path, "width": self.width, "height": self.height},
            "preset": self.preset,
            "models": self.models,
            "options": self.options.to_dict(),
            "captions": [c.to_dict(embeddings) for c in self.captions],
            "best": {"clip": self.best_clip, "comclip": self.best_comclip},
            "timings_ms": self.timings_ms,
        }
        if embeddings:
            d["logit_scale"] = self.logit_scale
            d["global_image_embedding"] = _as_list(self.global_image_embedding)
        return d
