"""The ComCLIP engine: parse → ground → sub-images → one batched encoder pass → compose.

``ComCLIP.match(image, captions)`` scores one image against several captions;
``ComCLIP.match_batch(items)`` scores many (image, captions) items with one image-encoder pass
and one text-encoder pass for all of them. Every stage is a function over plain values; this
module only orchestrates, batches and caches.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import torch
from PIL import Image

from comclip import parse as parsing
from comclip import subimage
from comclip.encoders import Encoder
from comclip.errors import InputError
from comclip.formula import WEIGHTINGS, compose_batch
from comclip.graph import SceneGraph
from comclip.ground import Detector, PhraseBoxes
from comclip.images import LoadedImage, image_digest, load_image
from comclip.models import Preset, describe, get_preset, load_detector, load_encoder, resolve_device

RELATION_TEXTS = ("predicate", "triple")
TEXT_CACHE_SIZE = 8192
PARSE_CACHE_SIZE = 8192
DETECTION_CACHE_SIZE = 64


@dataclass(frozen=True)
class Options:
    """How ComCLIP is computed. Defaults follow the paper."""

    weighting: str = "softmax"  # softmax (paper) | sum (official code)
    relation_text: str = "predicate"  # predicate (paper) | triple ("subject predicate object")
    subimage: str = "blackout"  # blackout (paper) | crop
    relations: bool = True  # include relation components
    parser: str = "auto"  # auto | rules | spacy | llm
    box_threshold: float | None = None  # None: the preset's
    text_threshold: float | None = None  # None: the preset's
    boxes_per_entity: int = 1
    #: Build blackout sub-images from the preprocessed whole image (fast; equal to the PIL path
    #: within a tested tolerance). False: render every sub-image with PIL, pixel-exact.
    fast_subimages: bool = True

    def validate(self) -> Options:
        if self.weighting not in WEIGHTINGS:
            raise InputError(f"unknown weighting {self.weighting!r}; choose one of: {', '.join(WEIGHTINGS)}")
        if self.relation_text not in RELATION_TEXTS:
            raise InputError(f"unknown relation text {self.relation_text!r}; choose one of: "
                             f"{', '.join(RELATION_TEXTS)}")
        if self.subimage not in subimage.SUBIMAGE_MODES:
            raise InputError(f"unknown sub-image mode {self.subimage!r}; choose one of: "
                             f"{', '.join(subimage.SUBIMAGE_MODES)}")
        if self.parser not in parsing.PARSERS:
            raise InputError(f"unknown parser {self.parser!r}; choose one of: {', '.join(parsing.PARSERS)}")
        for name in ("box_threshold", "text_threshold"):
            v = getattr(self, name)
            if v is not None and not (0.0 <= float(v) <= 1.0):
                raise InputError(f"{name.replace('_', ' ')} must be between 0 and 1, got {v}")
        if not isinstance(self.boxes_per_entity, int) or self.boxes_per_entity < 1:
            raise InputError(f"boxes per entity must be a whole number >= 1, got {self.boxes_per_entity}")
        return self

    def updated(self, **changes: Any) -> Options:
        unknown = set(changes) - set(self.__dataclass_fields__)
        if unknown:
            raise InputError(f"unknown option(s): {', '.join(sorted(unknown))}")
        return replace(self, **{k: v for k, v in changes.items() if v is not None}).validate()


# -- results ------------------------------------------------------------------------------------

@dataclass
class Component:
    kind: str  # "entity" | "relation"
    ref: str  # entity id ("e0") or relation index ("r0")
    text: str  # what was encoded as t_i
    boxes: list[list[float]]
    box_scores: list[float]
    grounded: bool
    similarity: float  # cos(t_i, v_i)
    weight: float
    loo_score: float  # ComCLIP score without this component
    image_embedding: np.ndarray | None = field(default=None, repr=False)
    text_embedding: np.ndarray | None = field(default=None, repr=False)

    def to_dict(self, embeddings: bool = False) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in ("kind", "ref", "text", "boxes", "box_scores", "grounded",
                                           "similarity", "weight", "loo_score")}
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
    models: dict[str, Any]
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
            "options": asdict(self.options),
            "captions": [c.to_dict(embeddings) for c in self.captions],
            "best": {"clip": self.best_clip, "comclip": self.best_comclip},
            "timings_ms": self.timings_ms,
        }
        if embeddings:
            d["logit_scale"] = self.logit_scale
            d["global_image_embedding"] = _as_list(self.global_image_embedding)
        return d


def _as_list(x: np.ndarray | None) -> list | None:
    return None if x is None else np.asarray(x, dtype=np.float64).tolist()  # per-query rows (BLIP-2) are 2-D


# -- pure planning ------------------------------------------------------------------------------

@dataclass(frozen=True)
class ComponentPlan:
    """One component before encoding: what text to encode and which entities' boxes it covers."""

    kind: str
    ref: str
    text: str
    entity_ids: tuple[str, ...]


def plan_components(graph: SceneGraph, options: Options) -> list[ComponentPlan]:
    """Entities first (in graph order), then relations (if enabled)."""
    plans = [ComponentPlan("entity", e.id, e.phrase, (e.id,)) for e in graph.entities]
    if options.relations:
        for i, r in enumerate(graph.relations):
            text = r.predicate if options.relation_text == "predicate" else graph.triple_text(r)
            ids = (r.subject,) if r.object is None else (r.subject, r.object)
            plans.append(ComponentPlan("relation", f"r{i}", text, ids))
    return plans


def component_region(plan: ComponentPlan, graph: SceneGraph, detections: dict[str, PhraseBoxes]
                     ) -> tuple[subimage.Region, bool, list[float]]:
    """The component's region, whether it is grounded (every entity it covers has a box), and the
    detector scores of its boxes. An ungrounded component is the whole image, with no boxes."""
    found = [detections.get(graph.entity(eid).phrase) for eid in plan.entity_ids]
    if not all(f is not None and f.grounded for f in found):
        return subimage.Region(), False, []
    region = subimage.union(subimage.Region(f.boxes) for f in found)  # type: ignore[union-attr]
    return region, True, [s for f in found for s in f.scores]  # type: ignore[union-attr]


def check_captions(captions: Sequence[str]) -> list[str]:
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


# -- the engine ---------------------------------------------------------------------------------

ImageInput = str | bytes | Image.Image | LoadedImage


@dataclass
class _Item:
    image: LoadedImage
    captions: list[str]
    graphs: list[SceneGraph]
    detections: dict[str, PhraseBoxes] = field(default_factory=dict)


def compose_captions(captions: Sequence[tuple[int, int, Sequence[tuple[int, int]]]], image_emb: torch.Tensor,
                     text_emb: torch.Tensor, logit_scale: float, weighting: str,
                     project: Any = None) -> dict[str, np.ndarray]:
    """Every caption's numbers at once, on the embeddings' device, with one transfer to the host.

    Each caption is ``(global image row, caption text row, [(component text row, component image
    row), ...])`` into ``image_emb`` / ``text_emb``. Returns :func:`compose_batch`'s arrays.
    """
    n = max((len(c[2]) for c in captions), default=0)
    comp_text = torch.zeros(len(captions), n, dtype=torch.long)
    comp_image = torch.zeros(len(captions), n, dtype=torch.long)
    valid = torch.zeros(len(captions), n, dtype=torch.bool)
    for k, (_, _, comps) in enumerate(captions):
        for j, (t_row, i_row) in enumerate(comps):
            comp_text[k, j], comp_image[k, j], valid[k, j] = t_row, i_row, True
    dev = image_emb.device
    cap_image = torch.tensor([c[0] for c in captions], dtype=torch.long, device=dev)
    cap_text = torch.tensor([c[1] for c in captions], dtype=torch.long, device=dev)
    comp_text, comp_image, valid = comp_text.to(dev), comp_image.to(dev), valid.to(dev)
    out = compose_batch(text_emb[cap_text], image_emb[cap_image], text_emb[comp_text], image_emb[comp_image],
                        valid, logit_scale, weighting, project)
    return {k: v.float().cpu().numpy() for k, v in out.items()}


@dataclass(frozen=True)
class _Row:
    """One component of one caption, resolved: its plan, region and row in the pixel batch."""

    plan: ComponentPlan
    region: subimage.Region
    grounded: bool
    scores: list[float]
    pixel_row: int


class ComCLIP:
    """Frozen image–text model + open-vocabulary detector + the ComCLIP composition."""

    def __init__(self, encoder: Encoder, detector: Detector, options: Options | None = None, *,
                 preset: Preset | None = None) -> None:
        self.encoder = encoder
        self.detector = detector
        self.options = (options or Options()).validate()
        self.preset = preset
        self._text_cache: OrderedDict[str, torch.Tensor] = OrderedDict()
        self._parse_cache: OrderedDict[tuple[str, str], SceneGraph] = OrderedDict()
        self._detection_cache: OrderedDict[tuple, dict[str, PhraseBoxes]] = OrderedDict()

    def clear_caches(self) -> None:
        """Forget cached parses, text embeddings and detections (benchmarks call this between runs)."""
        self._text_cache.clear()
        self._parse_cache.clear()
        self._detection_cache.clear()

    @classmethod
    def from_preset(cls, name: str | Preset = "default", *, device: str | torch.device | None = "auto",
                    compile: bool = False, **options: Any) -> ComCLIP:
        """Load a preset's models (``default``, ``large``, ``tiny``, ``arch-*``, or a ``Preset``
        such as :func:`comclip.models.custom_preset` builds) on a device.

        ``compile=True`` wraps the image tower in ``torch.compile`` (worth it for long GPU runs).
        """
        preset = name if isinstance(name, Preset) else get_preset(name)
        opts = Options().updated(**options)
        dev = resolve_device(device)
        encoder = load_encoder(preset.encoder, dev, preset)
        detector = load_detector(preset.detector, dev, preset)
        if compile:
            encoder.compile()
        return cls(encoder, detector, opts, preset=preset)

    @property
    def preset_name(self) -> str:
        return self.preset.name if self.preset else "custom"

    def models(self) -> dict[str, Any]:
        if self.preset is not None:
            return describe(self.preset)
        return {"encoder": self.encoder.name, "detector": getattr(self.detector, "name", type(self.detector).__name__)}

    # -- caches -------------------------------------------------------------------------------
    def parse(self, caption: str, parser: str | None = None) -> SceneGraph:
        key = (parser or self.options.parser, caption)
        graph = self._parse_cache.get(key)
        if graph is None:
            graph = parsing.parse(caption, key[0])
            self._parse_cache[key] = graph
            if len(self._parse_cache) > PARSE_CACHE_SIZE:
                self._parse_cache.popitem(last=False)
        return graph

    def encode_texts(self, texts: Iterable[str]) -> dict[str, torch.Tensor]:
        """Embeddings of texts: cached ones from the LRU cache, the rest in ONE encoder pass."""
        wanted = list(dict.fromkeys(texts))
        missing = [t for t in wanted if t not in self._text_cache]
        if missing:
            for t, v in zip(missing, self.encoder.encode_texts(missing), strict=True):
                self._text_cache[t] = v
        out = {}
        for t in wanted:
            self._text_cache.move_to_end(t)
            out[t] = self._text_cache[t]
        while len(self._text_cache) > TEXT_CACHE_SIZE:
            self._text_cache.popitem(last=False)
        return out

    # -- public API ---------------------------------------------------------------------------
    def match(self, image: ImageInput, captions: Sequence[str], graphs: Sequence[SceneGraph | None] | None = None,
              **options: Any) -> MatchResult:
        """Score one image against captions; ``graphs`` (per caption, None = parse) override parsing."""
        return self.match_batch([(image, captions, graphs)], **options)[0]

    def match_batch(self, items: Sequence[tuple[ImageInput, Sequence[str]] |
                                          tuple[ImageInput, Sequence[str], Sequence[SceneGraph | None] | None]],
                    **options: Any) -> list[MatchResult]:
        """Score many (image, captions[, graphs]) items with one image pass and one text pass."""
        opts = self.options.updated(**options) if options else self.options
        # Record the thresholds actually used (None means the detector's own).
        opts = replace(opts, box_threshold=self.detector.box_threshold if opts.box_threshold is None
                       else opts.box_threshold,
                       text_threshold=self.detector.text_threshold if opts.text_threshold is None
                       else opts.text_threshold)
        timings: dict[str, float] = {}
        clock = time.perf_counter()

        def lap(stage: str) -> None:
            nonlocal clock
            now = time.perf_counter()
            timings[stage] = timings.get(stage, 0.0) + (now - clock) * 1000.0
            clock = now

        prepared = [self._prepare(item, opts) for item in items]
        lap("parse")
        for it in prepared:
            phrases = [e.phrase for g in it.graphs for e in g.entities]
            it.detections = self._detect(it.image.image, phrases, opts) if phrases else {}
        lap("ground")

        # Sub-images, de-duplicated per image; key None is the global image itself (rows 0..I-1).
        pixel_index: dict[tuple[int, Any], int] = {(i, None): i for i in range(len(prepared))}
        to_render: list[tuple[int, subimage.Region]] = [(i, subimage.Region()) for i in range(len(prepared))]
        captions: list[tuple[int, str, SceneGraph, list[_Row]]] = []
        for i, it in enumerate(prepared):
            w, h = it.image.width, it.image.height
            for caption, g in zip(it.captions, it.graphs, strict=True):
                rows = []
                for plan in plan_components(g, opts):
                    region, grounded, scores = component_region(plan, g, it.detections)
                    key = (i, region.key(w, h))
                    if key not in pixel_index:
                        pixel_index[key] = len(to_render)
                        to_render.append((i, region))
                    rows.append(_Row(plan, region, grounded, scores, pixel_index[key]))
                captions.append((i, caption, g, rows))
        pixels = self._subimage_pixels(prepared, to_render, opts)
        lap("subimages")
        image_emb = self.encoder.encode_pixels(pixels)
        lap("encode_images")
        texts = list(dict.fromkeys([c[1] for c in captions] + [r.plan.text for c in captions for r in c[3]]))
        cached = self.encode_texts(texts)
        text_emb = torch.stack([cached[t] for t in texts])
        text_row = {t: k for k, t in enumerate(texts)}
        lap("encode_texts")

        scale = float(self.encoder.logit_scale)
        host = compose_captions([(i, text_row[cap], [(text_row[r.plan.text], r.pixel_row) for r in rows])
                                 for i, cap, _, rows in captions], image_emb, text_emb, scale, opts.weighting,
                                getattr(self.encoder, "project_queries", None))
        image_np = image_emb.float().cpu().numpy()
        text_np = text_emb.float().cpu().numpy()

        per_image: list[list[CaptionResult]] = [[] for _ in prepared]
        for k, (i, caption, graph, rows) in enumerate(captions):
            components = [Component(
                kind=r.plan.kind, ref=r.plan.ref, text=r.plan.text, boxes=[list(b) for b in r.region.boxes],
                box_scores=r.scores, grounded=r.grounded, similarity=float(host["similarity"][k, j]),
                weight=float(host["weight"][k, j]), loo_score=float(host["loo"][k, j]),
                image_embedding=image_np[r.pixel_row], text_embedding=text_np[text_row[r.plan.text]])
                for j, r in enumerate(rows)]
            per_image[i].append(CaptionResult(
                caption=caption, clip_score=float(host["clip"][k]), comclip_score=float(host["comclip"][k]),
                graph=graph, components=components,
                truncated=self.encoder.count_tokens(caption) > self.encoder.context_length,
                text_embedding=text_np[text_row[caption]]))
        results = [MatchResult(
            image_path=it.image.path, width=it.image.width, height=it.image.height, captions=per_image[i],
            preset=self.preset_name, models=self.models(), options=opts, logit_scale=scale, timings_ms={},
            global_image_embedding=image_np[i]) for i, it in enumerate(prepared)]
        lap("compose")
        timings["total"] = sum(timings.values())
        for r in results:
            r.timings_ms = {k: round(v, 3) for k, v in timings.items()}
        return results

    # -- stages -------------------------------------------------------------------------------
    def _prepare(self, item: tuple, opts: Options) -> _Item:
        if not isinstance(item, (tuple, list)) or len(item) not in (2, 3):
            raise InputError("each item must be (image, captions) or (image, captions, graphs)")
        image, captions = item[0], check_captions(item[1])
        graphs_in = item[2] if len(item) == 3 else None
        loaded = image if isinstance(image, LoadedImage) else load_image(image)
        if graphs_in is None:
            graphs_in = [None] * len(captions)
        if len(graphs_in) != len(captions):
            raise InputError(f"{len(graphs_in)} graphs given for {len(captions)} captions")
        graphs = []
        for caption, g in zip(captions, graphs_in, strict=True):
            if g is None:
                graphs.append(self.parse(caption, opts.parser))
            elif isinstance(g, SceneGraph):
                graphs.append(g)
            else:
                graphs.append(SceneGraph.from_dict(g, caption=caption))
        return _Item(loaded, captions, graphs)

    def _subimage_pixels(self, prepared: list[_Item], to_render: list[tuple[int, subimage.Region]],
                         opts: Options) -> torch.Tensor:
        """Model pixels for every unique (sub-)image: globals first, in ``to_render`` order.

        Blackout sub-images are made from the already-preprocessed whole image when the encoder
        tells its pixel geometry (one preprocessing per image, masks applied on the device);
        otherwise, and for ``crop``, each sub-image is rendered with PIL and preprocessed.
        """
        geometry = getattr(self.encoder, "pixel_geometry", None)
        if opts.subimage != "blackout" or geometry is None or not opts.fast_subimages:
            return self.encoder.preprocess(
                [subimage.render(prepared[i].image.image, region, opts.subimage) for i, region in to_render])
        global_px = self.encoder.preprocess([it.image.image for it in prepared])
        subs = to_render[len(prepared):]
        if not subs:
            return global_px
        masks = torch.stack([subimage.model_space_mask(region, prepared[i].image.width, prepared[i].image.height,
                                                       geometry) for i, region in subs])
        owners = torch.tensor([i for i, _ in subs], device=global_px.device)
        sub_px = subimage.blackout_pixels(global_px[owners], masks.to(global_px.device), geometry)
        return torch.cat([global_px, sub_px])

    def _detect(self, image: Image.Image, phrases: list[str], opts: Options) -> dict[str, PhraseBoxes]:
        """One detector call for all phrases of an image; repeated identical calls (the app
        re-scoring an edited graph) are served from a small cache keyed by the image's pixels."""
        phrases = list(dict.fromkeys(phrases))
        key = (image_digest(image), tuple(phrases), opts.box_threshold, opts.text_threshold, opts.boxes_per_entity)
        found = self._detection_cache.get(key)
        if found is None:
            found = self.detector.detect(image, phrases, box_threshold=opts.box_threshold,
                                         text_threshold=opts.text_threshold, boxes_per_entity=opts.boxes_per_entity)
            self._detection_cache[key] = found
            if len(self._detection_cache) > DETECTION_CACHE_SIZE:
                self._detection_cache.popitem(last=False)
        else:
            self._detection_cache.move_to_end(key)
        return found
