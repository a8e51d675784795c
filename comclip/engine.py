"""The ComCLIP engine: parse → ground → sub-images → one batched encoder pass → compose.

``ComCLIP.match(image, captions)`` scores one image against several captions;
``ComCLIP.match_batch(items)`` scores many (image, captions) items with one image-encoder pass
and one text-encoder pass for all of them; ``ComCLIP.match_grid(images, captions)`` scores several
images against the same captions (Winoground's test, :mod:`comclip.grid`). The stages live in
their own modules (``parse``, ``ground``, ``components``, ``subimage``, ``encoders``, ``formula``);
this module only orchestrates, batches and caches (thread-safe LRU caches: one engine may serve several threads).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence

import numpy as np
import torch
from PIL import Image

from comclip import parse as parsing
from comclip import stopping, subimage
from comclip.boxes import Boxes
from comclip.caches import LRUCache
from comclip.components import (
    CaptionPlan,
    Groundings,
    ScoringItem,
    SubImageTable,
    grounding_phrases,
    plan_captions,
    plan_components,
)
from comclip.encoders import Encoder, is_multi_query
from comclip.errors import InputError
from comclip.formula import Projection, compose_batch
from comclip.graph import SceneGraph
from comclip.grid import GridResult, check_grid
from comclip.ground import Detector
from comclip.images import LoadedImage, load_image
from comclip.loading import encoder_label, load_detector, load_encoder, resolve_device
from comclip.options import Options, OptionValue, check_captions
from comclip.presets import Preset, get_preset
from comclip.result import CaptionResult, Component, MatchResult, ModelsInfo

__all__ = ["ComCLIP", "ImageInput", "Item", "compose_captions", "describe", "load"]

TEXT_CACHE_SIZE = 8192
PARSE_CACHE_SIZE = 8192
DETECTION_CACHE_SIZE = 64

ImageInput = str | bytes | Image.Image | LoadedImage
GraphInput = SceneGraph | Mapping[str, object] | None
Item = tuple[ImageInput, Sequence[str]] | tuple[ImageInput, Sequence[str], Sequence[GraphInput] | None]
DetectionKey = tuple[str, tuple[str, ...], float | None, float | None, int]


def compose_captions(plans: Sequence[CaptionPlan], text_row: Mapping[str, int], image_emb: torch.Tensor,
                     text_emb: torch.Tensor, logit_scale: float, weighting: str,
                     project: Projection | None = None, *, score_scale: str = "logit",
                     query_norm: str = "none") -> dict[str, np.ndarray]:
    """Every caption's numbers at once, on the embeddings' device, with one transfer to the host.

    Caption ``k``'s global image is row ``plans[k].item`` of ``image_emb``; texts are looked up in
    ``text_row``. Returns :func:`~comclip.formula.compose_batch`'s arrays."""
    n = max((len(p.components) for p in plans), default=0)
    comp_text = torch.zeros(len(plans), n, dtype=torch.long)
    comp_image = torch.zeros(len(plans), n, dtype=torch.long)
    valid = torch.zeros(len(plans), n, dtype=torch.bool)
    for k, p in enumerate(plans):
        for j, c in enumerate(p.components):
            comp_text[k, j], comp_image[k, j], valid[k, j] = text_row[c.plan.text], c.pixel_row, True
    dev = image_emb.device
    # Host → device copies are non-blocking (a blocking one would wait for the device's queued work).
    cap_image = torch.tensor([p.item for p in plans], dtype=torch.long).to(dev, non_blocking=True)
    cap_text = torch.tensor([text_row[p.caption] for p in plans], dtype=torch.long).to(dev, non_blocking=True)
    comp_text, comp_image, valid = (x.to(dev, non_blocking=True) for x in (comp_text, comp_image, valid))
    out = compose_batch(text_emb[cap_text], image_emb[cap_image], text_emb[comp_text], image_emb[comp_image],
                        valid, logit_scale, weighting, project, score_scale=score_scale, query_norm=query_norm)
    names = list(out)
    flat = torch.cat([out[k].float().reshape(-1) for k in names]).cpu().numpy()  # the one transfer (and wait)
    parts = np.split(flat, np.cumsum([out[k].numel() for k in names])[:-1])
    return {k: part.reshape(tuple(out[k].shape)) for k, part in zip(names, parts, strict=True)}


#: ``on_stage(stage, count)``: told as each stage of a match starts (see :meth:`ComCLIP.match_batch`).
OnStage = Callable[[str, int], None]


def _silent(stage: str, count: int) -> None:
    return None


def describe(preset: Preset) -> ModelsInfo:
    """What a result records about the models that produced it."""
    return {"encoder": encoder_label(preset.encoder), "detector": preset.detector.model,
            "random_weights": preset.random_weights}


class ComCLIP:
    """Frozen image–text model + open-vocabulary detector + the ComCLIP composition."""

    def __init__(self, encoder: Encoder, detector: Detector, options: Options | None = None, *,
                 preset: Preset | None = None) -> None:
        self.encoder = encoder
        self.detector = detector
        self.options = options or Options()  # validated when built
        self.preset = preset
        self._text_cache: LRUCache[str, torch.Tensor] = LRUCache(TEXT_CACHE_SIZE)
        #: Raw (unnormalised) text embeddings, for ``embeddings="raw"`` (the official ComVG / SLIP code).
        self._raw_text_cache: LRUCache[str, torch.Tensor] = LRUCache(TEXT_CACHE_SIZE)
        self._parse_cache: LRUCache[tuple[str, str], SceneGraph] = LRUCache(PARSE_CACHE_SIZE)
        self._detection_cache: LRUCache[DetectionKey, dict[str, Boxes]] = LRUCache(DETECTION_CACHE_SIZE)

    def clear_caches(self) -> None:
        """Forget cached parses, text embeddings and detections, and the detector's own caches (image and
        text parts, prompt outputs) when it has any (benchmarks call this between runs)."""
        for cache in (self._text_cache, self._raw_text_cache, self._parse_cache, self._detection_cache):
            cache.clear()
        clear_detector = getattr(self.detector, "clear_caches", None)
        if callable(clear_detector):
            clear_detector()

    def prepare(self, images: Sequence[ImageInput]) -> int:
        """Compute now what depends on the images alone and is kept for reuse — the detector's image part
        (:meth:`GroundingDINO.prepare`) — so a later request on them skips it (the app calls this when an
        image is uploaded, while the person types captions). Results never depend on it. Returns how
        many image parts were computed."""
        prepare = getattr(self.detector, "prepare", None)
        if not callable(prepare):
            return 0
        return int(prepare([im.image if isinstance(im, LoadedImage) else load_image(im).image for im in images]))

    def prepare_captions(self, captions: Sequence[str], options: Options | None = None,
                         images: Sequence[ImageInput] = ()) -> int:
        """Compute now what a request with these captions (and ``options``, the engine's own by default)
        will need and is kept for reuse — their parses, the image–text model's embeddings of each caption
        and its components' texts, the detector's text part of each caption's prompt and, for each of
        ``images``, the detector's boxes for each caption (the detection cache) — so the request skips it
        (the app calls this while the person goes from typing to the Score button). Results never depend
        on it. Returns how many texts the image–text model encoded plus how many phrase sets the detector
        grounded. Inside :func:`comclip.stopping.stoppable` it stops between its stages and inside the
        detector's forwards (:class:`comclip.stopping.Stopped`)."""
        opts = options or self.options
        captions = check_captions(captions)
        graphs = [self.parse(c, opts.parser) for c in captions]
        texts = list(dict.fromkeys([*captions, *(p.text for g in graphs for p in plan_components(g, opts))]))
        cache = self._raw_text_cache if self._raw(opts) else self._text_cache
        encoded = sum(cache.get(t) is None for t in texts)
        stopping.check()
        self.encode_texts(texts, normalise=not self._raw(opts))
        prepare = getattr(self.detector, "prepare_texts", None)
        if callable(prepare):
            prepare([grounding_phrases(g) for g in graphs])
        grounded = 0
        if images:
            stopping.check()
            loaded = [im if isinstance(im, LoadedImage) else load_image(im) for im in images]
            counted: list[int] = []
            self.ground([ScoringItem(im, tuple(captions), tuple(graphs)) for im in loaded],
                        opts.with_thresholds(self.detector), lambda stage, n: counted.append(n))
            grounded = sum(counted)
        return encoded + grounded

    @property
    def preset_name(self) -> str:
        return self.preset.name if self.preset else "custom"

    def models(self) -> ModelsInfo:
        if self.preset is not None:
            return describe(self.preset)
        return {"encoder": self.encoder.name, "detector": getattr(self.detector, "name", type(self.detector).__name__),
                "random_weights": False}

    # -- cached stages ----------------------------------------------------------------------------
    def parse(self, caption: str, parser: str | None = None) -> SceneGraph:
        name = parser or self.options.parser
        return self._parse_cache.get_or_compute((name, caption), lambda: parsing.parse(caption, name))

    def encode_texts(self, texts: Iterable[str], normalise: bool = True) -> dict[str, torch.Tensor]:
        """Embeddings of texts: cached ones from the LRU cache, the rest in ONE encoder pass
        (``normalise=False``: the raw outputs, cached apart)."""
        cache = self._text_cache if normalise else self._raw_text_cache
        wanted = list(dict.fromkeys(texts))
        out = {t: v for t in wanted if (v := cache.get(t)) is not None}
        missing = [t for t in wanted if t not in out]
        if missing:
            enc = self.encoder
            rows = enc.encode_texts(missing) if normalise else enc.encode_texts(missing, normalise=False)
            for t, v in zip(missing, rows, strict=True):
                out[t] = cache.put(t, v)
        return {t: out[t] for t in wanted}

    def ground(self, items: Sequence[ScoringItem], opts: Options, on_stage: OnStage = _silent
               ) -> list[list[Groundings]]:
        """Boxes for every caption, each grounded with a prompt of its own phrases only
        (:func:`~comclip.components.grounding_phrases`), so its boxes never depend on what else is
        scored. Captions of one image with the same phrase set share one request; requests not in
        the cache go to the detector in one ``detect_batch`` call."""
        thresholds = (opts.box_threshold, opts.text_threshold, opts.detector_boxes)
        phrase_sets = [[grounding_phrases(g) for g in item.graphs] for item in items]
        keys: dict[tuple[int, tuple[str, ...]], DetectionKey] = {}
        for i, (item, sets) in enumerate(zip(items, phrase_sets, strict=True)):
            digest = item.image.digest if any(sets) else ""
            for phrases in sets:
                if phrases:
                    keys[(i, phrases)] = (digest, phrases, *thresholds)  # type: ignore[assignment]
        found = {req: hit for req, key in keys.items() if (hit := self._detection_cache.get(key)) is not None}
        todo = [req for req in keys if req not in found]
        on_stage("ground", len(todo))
        if todo:
            answers = self.detector.detect_batch(
                [(items[i].image.image, list(phrases)) for i, phrases in todo], box_threshold=opts.box_threshold,
                text_threshold=opts.text_threshold, boxes_per_entity=opts.detector_boxes)
            for req, answer in zip(todo, answers, strict=True):
                found[req] = self._detection_cache.put(keys[req], answer)
        return [[found[(i, phrases)] if phrases else {} for phrases in sets] for i, sets in enumerate(phrase_sets)]

    # -- public API ---------------------------------------------------------------------------
    def match(self, image: ImageInput, captions: Sequence[str], graphs: Sequence[GraphInput] | None = None,
              options: Options | None = None, *, on_stage: OnStage | None = None, **changes: OptionValue
              ) -> MatchResult:
        """Score one image against captions; ``graphs`` (per caption, None = parse) override parsing.
        Options and ``on_stage`` as :meth:`match_batch`."""
        return self.match_batch([(image, captions, graphs)], options, on_stage=on_stage, **changes)[0]

    def match_grid(self, images: Sequence[ImageInput], captions: Sequence[str],
                   graphs: Sequence[GraphInput] | None = None, options: Options | None = None, *,
                   on_stage: OnStage | None = None, pairing: Sequence[int] | None = None, **changes: OptionValue
                   ) -> GridResult:
        """Score 2–4 images against the same 2–8 captions in one :meth:`match_batch` call (each image
        grounded on its own, each caption parsed and encoded once): a :class:`~comclip.grid.GridResult`
        whose cell (i, j) is what ``match(images[i], captions)`` gives caption j. ``pairing[i]``: image
        i's true caption (default i ↔ i when as many images as captions); ``graphs`` per caption.
        The request is checked (:func:`~comclip.grid.check_grid`) before anything runs."""
        captions, pairing = check_grid(images, captions, pairing)
        results = self.match_batch([(image, captions, graphs) for image in images], options, on_stage=on_stage,
                                   **changes)
        return GridResult(tuple(results), pairing)

    def match_batch(self, items: Sequence[Item], options: Options | None = None, *, on_stage: OnStage | None = None,
                    **changes: OptionValue) -> list[MatchResult]:
        """Score many (image, captions[, graphs]) items with one image pass and one text pass.

        ``options`` (an :class:`Options` value) replaces the engine's own for this call; ``changes``
        (Options fields by name) are applied on top of whichever is used. ``on_stage(stage, count)``,
        when given, is told as each stage starts: ``parse`` (captions), ``ground`` (phrase sets the
        detector must ground: those not in the cache), ``encode`` (images and texts to encode) and
        ``compose`` (captions) — what a progress display shows."""
        opts = options or self.options
        opts = opts.updated(**changes) if changes else opts
        # Record the thresholds actually used (None means the detector's own).
        opts = opts.with_thresholds(self.detector)
        timings: dict[str, float] = {}
        clock = time.perf_counter()

        def lap(stage: str) -> None:
            nonlocal clock
            now = time.perf_counter()
            timings[stage] = timings.get(stage, 0.0) + (now - clock) * 1000.0
            clock = now

        tell = on_stage or _silent
        tell("parse", sum(len(item[1]) if isinstance(item, (tuple, list)) and len(item) > 1 else 0 for item in items))
        prepared = [self._prepare(item, opts) for item in items]
        lap("parse")
        groundings = self.ground(prepared, opts, tell)
        lap("ground")
        plans, table = plan_captions(prepared, groundings, opts)
        tell("encode", len(prepared) + len(table.subimages))
        pixels = self._subimage_pixels(prepared, table, opts)
        lap("subimages")
        raw = self._raw(opts)
        image_emb = self.encoder.encode_pixels(pixels, normalise=False) if raw else self.encoder.encode_pixels(pixels)
        lap("encode_images")
        texts = list(dict.fromkeys([p.caption for p in plans] + [c.plan.text for p in plans for c in p.components]))
        cached = self.encode_texts(texts, normalise=not raw)
        text_emb = torch.stack([cached[t] for t in texts])
        text_row = {t: k for k, t in enumerate(texts)}
        lap("encode_texts")
        tell("compose", len(plans))
        scale = float(self.encoder.logit_scale)
        host = compose_captions(plans, text_row, image_emb, text_emb, scale, opts.weighting,
                                self.encoder.project_queries if is_multi_query(self.encoder) else None,  # BLIP-2
                                score_scale=opts.score_scale, query_norm=opts.query_norm)
        results = self._results(prepared, plans, host, image_emb.float().cpu().numpy(),
                                text_emb.float().cpu().numpy(), text_row, opts, scale)
        lap("compose")
        timings["total"] = sum(timings.values())
        for r in results:
            r.timings_ms = {k: round(v, 3) for k, v in timings.items()}
        return results

    # -- stages -------------------------------------------------------------------------------
    def _raw(self, opts: Options) -> bool:
        """Raw (unnormalised) single-vector embeddings: the official SLIP / ComVG / retrieval code composes
        those (multi-query rows are raw query outputs either way)."""
        return opts.embeddings == "raw" and not is_multi_query(self.encoder)

    def _prepare(self, item: Item, opts: Options) -> ScoringItem:
        if not isinstance(item, (tuple, list)) or len(item) not in (2, 3):
            raise InputError("each item must be (image, captions) or (image, captions, graphs)")
        image, captions = item[0], check_captions(item[1])
        graphs_in = item[2] if len(item) == 3 else None  # type: ignore[misc]
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
                graphs.append(SceneGraph.from_dict(g, caption=caption))  # type: ignore[arg-type]
        return ScoringItem(loaded, tuple(captions), tuple(graphs))

    def _subimage_pixels(self, prepared: Sequence[ScoringItem], table: SubImageTable, opts: Options) -> torch.Tensor:
        """Model pixels for every unique (sub-)image, in the table's row order.

        Blackout sub-images are made from the already-preprocessed whole image when the encoder
        tells its pixel geometry (one preprocessing per image, masks applied on the device);
        otherwise, and for ``crop``, each sub-image is rendered with PIL and preprocessed.
        """
        if opts.resize == "model":
            geometry = getattr(self.encoder, "pixel_geometry", None)
            preprocess = self.encoder.preprocess
        else:  # the official comslip.py's squash resize (an encoder that cannot do it says so)
            geometry = self.encoder.geometry(opts.resize)  # type: ignore[attr-defined]

            def preprocess(images: Sequence[Image.Image]) -> torch.Tensor:
                return self.encoder.preprocess(images, resize=opts.resize)
        if opts.subimage != "blackout" or geometry is None or not opts.fast_subimages:
            return preprocess(
                [subimage.render(prepared[i].image.image, region, opts.subimage) for i, region in table.renders])
        global_px = preprocess([it.image.image for it in prepared])
        subs = table.subimages
        if not subs:
            return global_px
        masks = torch.stack([subimage.model_space_mask(region, prepared[i].image.width, prepared[i].image.height,
                                                       geometry) for i, region in subs])
        owners = torch.tensor([i for i, _ in subs]).to(global_px.device, non_blocking=True)
        sub_px = subimage.blackout_pixels(global_px[owners], masks.to(global_px.device, non_blocking=True), geometry)
        return torch.cat([global_px, sub_px])

    def _results(self, prepared: Sequence[ScoringItem], plans: Sequence[CaptionPlan], host: dict[str, np.ndarray],
                 image_np: np.ndarray, text_np: np.ndarray, text_row: Mapping[str, int], opts: Options,
                 scale: float) -> list[MatchResult]:
        per_image: list[list[CaptionResult]] = [[] for _ in prepared]
        for k, p in enumerate(plans):
            components = [Component(
                kind=c.plan.kind, ref=c.plan.ref, text=c.plan.text, boxes=c.where.region, grounded=c.where.grounded,
                similarity=float(host["similarity"][k, j]), weight=float(host["weight"][k, j]),
                loo_score=float(host["loo"][k, j]), effect=float(host["comclip"][k]) - float(host["loo"][k, j]),
                image_embedding=image_np[c.pixel_row],
                text_embedding=text_np[text_row[c.plan.text]]) for j, c in enumerate(p.components)]
            per_image[p.item].append(CaptionResult(
                caption=p.caption, clip_score=float(host["clip"][k]), comclip_score=float(host["comclip"][k]),
                graph=p.graph, components=components,
                truncated=self.encoder.count_tokens(p.caption) > self.encoder.context_length,
                text_embedding=text_np[text_row[p.caption]]))
        models = self.models()
        return [MatchResult(image_path=it.image.path, width=it.image.width, height=it.image.height,
                            captions=per_image[i], preset=self.preset_name, models=dict(models), options=opts,
                            logit_scale=scale, timings_ms={}, global_image_embedding=image_np[i])
                for i, it in enumerate(prepared)]


def load(preset: str | Preset = "default", *, device: str | torch.device | None = "auto", compile: bool = False,
         **options: OptionValue) -> ComCLIP:
    """Load a preset's models (a name from :func:`comclip.list_presets`, a preset file's path, or a
    :class:`Preset` such as :func:`comclip.loading.custom_preset` builds) on a device; ``options`` are
    :class:`Options` fields, validated before anything heavy is loaded.

    ``compile=True`` wraps the image tower in ``torch.compile`` (worth it for long GPU runs).
    """
    spec = get_preset(preset)
    opts = Options.from_mapping(options)
    dev = resolve_device(device)
    encoder = load_encoder(spec.encoder, dev)
    detector = load_detector(spec.detector, dev)
    if compile:
        encoder.compile()
    return ComCLIP(encoder, detector, opts, preset=spec)
