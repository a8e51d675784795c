"""Stage 3a: a caption's scene graph + its groundings → typed component plans and regions.

- :func:`grounding_phrases`: what the detector is asked for one caption — its own entity phrases,
  normalised, unique and sorted (so a caption's boxes never depend on what else is scored).
- :func:`plan_components`: the components of a caption, entities first (graph order), then
  relations (if enabled), each with the text to encode and the entities whose boxes it covers.
- :func:`component_region`: the region of one component: the union of its entities' boxes, or
  the whole image when any of them is ungrounded (the paper's rule) or when the plan says so (an
  intransitive relation with ``intransitive="whole"``, as the official code).
- :func:`plan_captions`: every caption of every item planned at once, with the unique
  sub-images to render (de-duplicated per image) in a :class:`SubImageTable`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from comclip.boxes import WHOLE_IMAGE, Boxes, PixelBox, union
from comclip.graph import SceneGraph
from comclip.ground import canonical_phrases, normalise_phrase
from comclip.images import LoadedImage
from comclip.options import Options

#: The detector's answers for one caption, keyed by normalised phrase.
Groundings = Mapping[str, Boxes]


@dataclass(frozen=True)
class ComponentPlan:
    """One component before encoding: what text to encode and which entities' boxes it covers."""

    kind: str  # "entity" | "relation"
    ref: str  # "e0" | "r0"
    text: str
    entity_ids: tuple[str, ...]
    whole_image: bool = False  # the whole image whatever the boxes (intransitive="whole")


@dataclass(frozen=True)
class ComponentRegion:
    """Where a component is in the image: its region (the union of its entities' boxes, with their
    scores, or :data:`~comclip.boxes.WHOLE_IMAGE`) and whether every entity it covers was found. An
    ungrounded component is the whole image."""

    region: Boxes
    grounded: bool


@dataclass(frozen=True)
class PlannedComponent:
    plan: ComponentPlan
    where: ComponentRegion
    pixel_row: int  # row of its sub-image in the pixel batch


@dataclass(frozen=True)
class CaptionPlan:
    item: int  # index of its (image, captions) item; also the row of its global image
    caption: str
    graph: SceneGraph
    components: tuple[PlannedComponent, ...]


@dataclass(frozen=True)
class ScoringItem:
    """One image with its checked captions and their graphs (one per caption)."""

    image: LoadedImage
    captions: tuple[str, ...]
    graphs: tuple[SceneGraph, ...]


@dataclass
class SubImageTable:
    """The unique sub-images of a batch: the global images first (row ``i`` is item ``i``), then
    every distinct (item, rendered region) once."""

    items: int
    renders: list[tuple[int, Boxes]] = field(default_factory=list)
    _rows: dict[tuple[int, tuple[PixelBox, ...] | None], int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for i in range(self.items):
            self._rows[(i, None)] = len(self.renders)
            self.renders.append((i, WHOLE_IMAGE))

    def row(self, item: int, region: Boxes, width: int, height: int) -> int:
        key = (item, region.key(width, height))
        if key not in self._rows:
            self._rows[key] = len(self.renders)
            self.renders.append((item, region))
        return self._rows[key]

    @property
    def subimages(self) -> list[tuple[int, Boxes]]:
        """The non-global renders, in row order (rows ``items``, ``items + 1``, ...)."""
        return self.renders[self.items:]


def grounding_phrases(graph: SceneGraph) -> tuple[str, ...]:
    """The detector prompt of one caption: its entity phrases, normalised, unique, sorted."""
    return tuple(canonical_phrases([e.phrase for e in graph.entities]))


def plan_components(graph: SceneGraph, options: Options) -> list[ComponentPlan]:
    """Entities first (in graph order), then relations (if enabled)."""
    plans = [ComponentPlan("entity", e.id, e.phrase, (e.id,)) for e in graph.entities]
    if options.relations:
        for i, r in enumerate(graph.relations):
            text = r.predicate if options.relation_text == "predicate" else graph.triple_text(r)
            ids = (r.subject,) if r.object is None else (r.subject, r.object)
            whole = r.object is None and options.intransitive == "whole"
            plans.append(ComponentPlan("relation", f"r{i}", text, ids, whole))
    return plans


def component_region(plan: ComponentPlan, graph: SceneGraph, groundings: Groundings) -> ComponentRegion:
    """The component's region from its caption's groundings (keyed by normalised phrase)."""
    found = [groundings.get(normalise_phrase(graph.entity(eid).phrase)) for eid in plan.entity_ids]
    hits = [f for f in found if f]  # an entity with boxes (a found one)
    if len(hits) != len(found) or plan.whole_image:
        return ComponentRegion(WHOLE_IMAGE, len(hits) == len(found))
    return ComponentRegion(union(hits), True)


def plan_captions(items: Sequence[ScoringItem], groundings: Sequence[Sequence[Groundings]], options: Options
                  ) -> tuple[list[CaptionPlan], SubImageTable]:
    """Plan every caption; ``groundings[i][k]`` belongs to caption ``k`` of item ``i``."""
    table = SubImageTable(len(items))
    plans: list[CaptionPlan] = []
    for i, item in enumerate(items):
        w, h = item.image.width, item.image.height
        for k, (caption, graph) in enumerate(zip(item.captions, item.graphs, strict=True)):
            comps = []
            for plan in plan_components(graph, options):
                where = component_region(plan, graph, groundings[i][k])
                comps.append(PlannedComponent(plan, where, table.row(i, where.region, w, h)))
            plans.append(CaptionPlan(i, caption, graph, tuple(comps)))
    return plans, table
