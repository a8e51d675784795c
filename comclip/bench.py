"""``python -m comclip bench``: how fast the engine is, against the official structure and the floor.

Three variants score the same synthetic (image, caption) pairs in the same run, on the same models:

- ``reference`` — the official scripts' structure, with our detector in place of their offline dense
  captioner: for each pair in turn, one detector call with that caption's phrases, then one encoder
  call for the whole image, one for the caption, and one image call plus one text call per
  component (their ``subimage_score_embedding`` loop), then the formula. Nothing is cached.
- ``engine`` — :meth:`comclip.engine.ComCLIP.match_batch` on all pairs at once (its caches are
  cleared before every timed run, so every run does the same work).
- ``floor`` — only the model forward passes the engine made (detector, image encoder, text encoder),
  recorded during an untimed engine run and replayed on the very same input tensors: no parsing,
  tokenising, image preprocessing, sub-image rendering, box selection or formula.

Inputs are seeded: 640×480 images with some structure, and per image K captions that share their
2–3 entities (in the same order) and differ in the relation ("a red mug in a green bowl", "a red mug
under a green bowl", ...) — the usual shape of a compositional candidate set. Every caption is
parsed once, up front, with the ``rules`` parser, and the same graphs are handed to every variant:
parsing is excluded from all three. Because all captions of an image ground the same phrases, the
reference and the engine send the detector identical prompts, so they must agree on every score
(``checks.max_score_diff``): a correctness check of both.

Timing: one untimed warm-up (a full engine run, which also records the floor's forward passes; one
replay of the floor, which also checks it reproduces the engine's outputs; the reference's first
pair), then ``repeats`` rounds of reference → engine → floor. Medians and min–max are reported. On
CUDA every timing is bracketed by ``torch.cuda.synchronize``. Process CPU time is recorded next to
wall time (a cross-check on a CPU shared with other work). Finally the engine runs a few more times
with every model forward answered instantly by its recorded output: what is left is exactly the
engine's own work besides the forwards, per stage (``engine_overhead``). Results: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import os
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
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
VARIANTS = ("reference", "engine", "floor")
MAX_CAPTIONS_PER_IMAGE = len(PREDICATES)
#: Runs of the engine with its forward passes stubbed out (they are cheap).
OVERHEAD_RUNS = 5


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

    _check_counts(pairs, captions_per_image, 1)
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


def _check_counts(pairs: Any, captions_per_image: Any, repeats: Any) -> None:
    for name, v, lo in (("--pairs", pairs, 1), ("--captions-per-image", captions_per_image, 1),
                        ("--repeats", repeats, 1)):
        if isinstance(v, bool) or not isinstance(v, int) or v < lo:
            raise InputError(f"{name} must be a whole number >= {lo}, got {v}")
    if captions_per_image > MAX_CAPTIONS_PER_IMAGE:
        raise InputError(f"--captions-per-image must be at most {MAX_CAPTIONS_PER_IMAGE} (the bench has that many "
                         f"different relations), got {captions_per_image}")


# -- the variants -------------------------------------------------------------------------------

Scores = list[tuple[float, float]]  # (CLIP, ComCLIP) per pair, in input order


def run_reference(engine: Any, inputs: BenchInputs, **options: Any) -> Scores:
    """The official per-pair loop: one detector call per pair, one encoder call per image / text.

    Uses the engine's models and options (``options`` override them, as in ``match_batch``)."""
    from comclip import subimage
    from comclip.components import component_region, grounding_phrases, plan_components
    from comclip.formula import compose

    opts = engine.options.updated(**options) if options else engine.options
    enc, det = engine.encoder, engine.detector
    scale = float(enc.logit_scale)
    scores: Scores = []
    for loaded, caption, graph in inputs.pair_list():
        image = loaded.image
        phrases = list(grounding_phrases(graph))  # the caption's own prompt, as the engine grounds it
        detections = det.detect(image, phrases, box_threshold=opts.box_threshold, text_threshold=opts.text_threshold,
                                boxes_per_entity=opts.boxes_per_entity) if phrases else {}
        v0 = enc.encode_images([image])[0]
        t = enc.encode_texts([caption])[0]
        v_i, t_i = [], []
        for plan in plan_components(graph, opts):
            region = component_region(plan, graph, detections).region
            v_i.append(enc.encode_images([subimage.render(image, region, opts.subimage)])[0])
            t_i.append(enc.encode_texts([plan.text])[0])
        empty = t.new_zeros(0, t.shape[-1])
        comp = compose(t, v0, torch.stack(t_i) if t_i else empty, torch.stack(v_i) if v_i else empty, scale,
                       opts.weighting)
        scores.append((comp.clip_score, comp.comclip_score))
    return scores


def run_engine(engine: Any, inputs: BenchInputs, **options: Any) -> tuple[Scores, dict[str, float]]:
    """``match_batch`` on every item at once; returns the scores and the engine's stage timings."""
    results = engine.match_batch(inputs.items(), **options)
    scores = [(c.clip_score, c.comclip_score) for r in results for c in r.captions]
    return scores, dict(results[0].timings_ms) if results else {}


def clear_caches(engine: Any) -> None:
    """Empty the engine's caches (parses, text embeddings, detections) and any other ``*_cache`` its
    encoder or detector holds, so that every timed run does the same work."""
    if callable(getattr(engine, "clear_caches", None)):
        engine.clear_caches()
    for obj in (engine, getattr(engine, "encoder", None), getattr(engine, "detector", None)):
        for name, value in list(vars(obj).items()) if obj is not None else []:
            if name.endswith("_cache") and callable(getattr(value, "clear", None)):
                value.clear()


# -- the floor: record the engine's forward passes, replay only them -------------------------------

#: Model methods that are one forward pass, by kind: open_clip first, then Hugging Face CLIP.
ENCODER_FORWARDS = {"image": ("encode_image", "get_image_features"), "text": ("encode_text", "get_text_features")}
FORWARD_KINDS = ("detector", "image", "text")


@dataclass
class ForwardCall:
    kind: str  # detector | image | text
    module: torch.nn.Module
    method: str
    args: tuple
    kwargs: dict[str, Any]
    output: torch.Tensor | None = field(default=None, repr=False)  # first output tensor, to check replays
    result: Any = field(default=None, repr=False)  # what the call returned (slimmed), to stand in for it
    #: Autocast regions active when the engine made the call (device type, dtype), re-entered on replay.
    autocast: tuple[tuple[str, torch.dtype], ...] = ()

    def __call__(self) -> Any:
        fn = self.module if self.method == "forward" else getattr(self.module, self.method)
        with contextlib.ExitStack() as stack:
            for device_type, dtype in self.autocast:
                stack.enter_context(torch.autocast(device_type, dtype=dtype))
            return fn(*self.args, **self.kwargs)


def _autocast_state() -> tuple[tuple[str, torch.dtype], ...]:
    return tuple((d, torch.get_autocast_dtype(d)) for d in ("cuda", "cpu") if torch.is_autocast_enabled(d))


def _first_tensor(out: Any) -> torch.Tensor | None:
    if isinstance(out, torch.Tensor):
        return out
    for name in ("logits", "image_embeds", "text_embeds", "pooler_output"):
        v = getattr(out, name, None)
        if isinstance(v, torch.Tensor):
            return v
    if isinstance(out, (tuple, list)) and out and isinstance(out[0], torch.Tensor):
        return out[0]
    return None


def _slim(out: Any) -> Any:
    """A model output reduced to what callers read (detector: logits and boxes), to keep recordings small."""
    keys = getattr(out, "keys", None)
    if isinstance(out, torch.Tensor) or keys is None:
        return out
    kept = {k: out[k] for k in ("logits", "pred_boxes", "image_embeds", "text_embeds", "pooler_output") if k in out}
    return type(out)(**kept) if kept else out


@dataclass
class ForwardRecording:
    """The forward passes one engine run made, with their exact input tensors."""

    calls: list[ForwardCall] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {k: sum(c.kind == k for c in self.calls) for k in FORWARD_KINDS}

    def replay(self, device: torch.device, *, compare: bool = False) -> tuple[dict[str, float], float]:
        """Run every recorded call again, grouped by kind; seconds per kind, and (with ``compare``) the
        largest difference from the recorded outputs, relative to their magnitude (0.0 otherwise)."""
        seconds: dict[str, float] = {}
        worst = 0.0
        with torch.inference_mode():
            for kind in FORWARD_KINDS:
                calls = [c for c in self.calls if c.kind == kind]
                _sync(device)
                start = time.perf_counter()
                for call in calls:
                    out = call()
                    if compare and call.output is not None:
                        got = _first_tensor(out)
                        if got is None or got.shape != call.output.shape:
                            return seconds, math.inf
                        ref = call.output
                        diff = (got.detach().float().cpu() - ref).abs().max().item() if ref.numel() else 0.0
                        worst = max(worst, diff / max(1.0, ref.abs().max().item() if ref.numel() else 0.0))
                _sync(device)
                seconds[kind] = time.perf_counter() - start
        return seconds, worst


def _encoder_targets(engine: Any) -> list[tuple[torch.nn.Module, str, str]]:
    targets = [(engine.detector.model, "forward", "detector")]
    model = getattr(engine.encoder, "model", None)
    for kind, names in ENCODER_FORWARDS.items():
        name = next((n for n in names if model is not None and callable(getattr(model, n, None))), None)
        if name is None:
            raise RuntimeError(f"bench: the encoder {type(engine.encoder).__name__} has no {kind} forward method "
                               f"({' / '.join(names)}) to record for the floor; teach comclip/bench.py about it")
        targets.append((model, name, kind))
    return targets


@contextlib.contextmanager
def _patched_forwards(engine: Any, replace: Callable[[torch.nn.Module, str, str], Callable[..., Any]]
                      ) -> Iterator[None]:
    """Shadow the detector's forward and the encoder's image/text forward methods by instance attributes."""
    patched: list[tuple[torch.nn.Module, str]] = []
    try:
        for module, method, kind in _encoder_targets(engine):
            module.__dict__[method] = replace(module, method, kind)
            patched.append((module, method))
        yield
    finally:
        for module, method in patched:
            module.__dict__.pop(method, None)


@contextlib.contextmanager
def record_forwards(engine: Any) -> Iterator[ForwardRecording]:
    """While active, every detector forward and image/text encoder forward is recorded with its inputs."""
    recording = ForwardRecording()

    def wrap(module: torch.nn.Module, method: str, kind: str) -> Callable[..., Any]:
        original = getattr(module, method)

        def recorded(*args: Any, **kwargs: Any) -> Any:
            out = original(*args, **kwargs)
            first = _first_tensor(out)
            recording.calls.append(ForwardCall(kind, module, method, args, kwargs,
                                               None if first is None else first.detach().float().cpu().clone(),
                                               _slim(out), _autocast_state()))
            return out

        return recorded

    with _patched_forwards(engine, wrap):
        yield recording


@contextlib.contextmanager
def stub_forwards(engine: Any, recording: ForwardRecording) -> Iterator[None]:
    """While active, the recorded forward passes return their recorded outputs instantly, in order: an
    engine run then costs only what the engine does besides the model forwards."""
    queues: dict[tuple[int, str], list[ForwardCall]] = {}
    for call in recording.calls:
        queues.setdefault((id(call.module), call.method), []).append(call)
    pending = {k: list(v) for k, v in queues.items()}

    def stub(module: torch.nn.Module, method: str, kind: str) -> Callable[..., Any]:
        def recorded_output(*args: Any, **kwargs: Any) -> Any:
            left = pending.get((id(module), method))
            if not left:
                raise RuntimeError(f"bench: the engine made a {kind} forward pass its recorded run did not make")
            return left.pop(0).result

        return recorded_output

    with _patched_forwards(engine, stub):
        yield
    if any(pending.values()):
        raise RuntimeError("bench: the engine made fewer forward passes than in its recorded run")


# -- timing -------------------------------------------------------------------------------------

def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(device: torch.device, fn: Callable[[], Any]) -> tuple[float, float, Any]:
    """Wall seconds, this process's CPU seconds (all threads), and ``fn``'s result."""
    _sync(device)
    start, cpu = time.perf_counter(), time.process_time()
    out = fn()
    _sync(device)
    return time.perf_counter() - start, time.process_time() - cpu, out


def _rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB on Linux


def hardware(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (CUDA {torch.version.cuda})"
    name = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            name = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), name)
    return f"{name}, {os.cpu_count()} CPUs, {torch.get_num_threads()} torch threads"


@dataclass
class VariantTiming:
    name: str
    pairs: int
    seconds: list[float] = field(default_factory=list)  # wall clock, per run
    #: CPU time of this process per run (all threads): less sensitive than wall time to other
    #: processes sharing the CPU; on CUDA it is mostly the host's share of the work.
    cpu_seconds: list[float] = field(default_factory=list)
    detector_passes: int | None = None  # per run

    @property
    def median_s(self) -> float:
        return statistics.median(self.seconds)

    def to_dict(self) -> dict[str, Any]:
        ms = [s * 1000.0 / self.pairs for s in self.seconds]
        return {"pairs_per_s": round(self.pairs / self.median_s, 4), "ms_per_pair": round(statistics.median(ms), 3),
                "ms_per_pair_min": round(min(ms), 3), "ms_per_pair_max": round(max(ms), 3),
                "runs_s": [round(s, 4) for s in self.seconds],
                "cpu_ms_per_pair": round(statistics.median(self.cpu_seconds) * 1000.0 / self.pairs, 3)
                if self.cpu_seconds else None,
                "detector_forward_passes": self.detector_passes}


@dataclass
class BenchResult:
    preset: str
    device: str
    hardware: str
    images: int
    pairs: int
    captions_per_image: int
    repeats: int
    variants: dict[str, VariantTiming]
    engine_stages_ms: dict[str, float]
    floor_parts_ms: dict[str, float]
    forward_calls: dict[str, int]
    peak_memory_mb: dict[str, Any]
    checks: dict[str, float]
    options: dict[str, Any] = field(default_factory=dict)
    #: The engine run with every model forward answered by its recorded output: its own work.
    engine_overhead: dict[str, Any] = field(default_factory=dict)
    reference_scores: Scores = field(repr=False, default_factory=list)
    engine_scores: Scores = field(repr=False, default_factory=list)

    @property
    def speedup_vs_reference(self) -> float:
        return self.variants["reference"].median_s / self.variants["engine"].median_s

    @property
    def overhead_vs_floor(self) -> float:
        return self.variants["engine"].median_s / self.variants["floor"].median_s

    def cpu_time_ratios(self) -> dict[str, float]:
        """The two ratios on process CPU time instead of wall time (a cross-check on a shared CPU)."""
        cpu = {k: statistics.median(v.cpu_seconds) for k, v in self.variants.items()}
        return {"speedup_vs_reference": round(cpu["reference"] / cpu["engine"], 4),
                "overhead_vs_floor": round(cpu["engine"] / cpu["floor"], 4)}

    def to_dict(self) -> dict[str, Any]:
        return {
            "preset": self.preset, "device": self.device, "pairs": self.pairs,
            "captions_per_image": self.captions_per_image,
            **{name: self.variants[name].to_dict() for name in VARIANTS},
            "speedup_vs_reference": round(self.speedup_vs_reference, 4),
            "overhead_vs_floor": round(self.overhead_vs_floor, 4),
            "peak_memory_mb": self.peak_memory_mb,
            "images": self.images, "repeats": self.repeats, "hardware": self.hardware,
            "engine_stages_ms": self.engine_stages_ms, "floor_parts_ms": self.floor_parts_ms,
            "forward_calls": self.forward_calls, "checks": self.checks, "options": self.options,
            "cpu_time_ratios": self.cpu_time_ratios(), "engine_overhead": self.engine_overhead,
        }

    def format(self) -> str:
        lines = [f"ComCLIP bench: preset {self.preset} on {self.device} ({self.hardware})",
                 f"{self.pairs} pairs = {self.images} images x up to {self.captions_per_image} captions; "
                 f"{self.repeats} timed repeats after a warm-up; median [min-max]",
                 "",
                 f"{'variant':<10} {'pairs/s':>10} {'ms/pair':>11} {'min-max ms/pair':>21} {'CPU ms/pair':>12} "
                 f"{'detector passes':>16}"]
        for name in VARIANTS:
            d = self.variants[name].to_dict()
            spread = f"{d['ms_per_pair_min']:.1f}-{d['ms_per_pair_max']:.1f}"
            passes = "-" if d["detector_forward_passes"] is None else str(d["detector_forward_passes"])
            lines.append(f"{name:<10} {d['pairs_per_s']:>10.3f} {d['ms_per_pair']:>11.1f} {spread:>21} "
                         f"{d['cpu_ms_per_pair']:>12.1f} {passes:>16}")
        mem = self.peak_memory_mb
        cuda = mem.get("cuda_max_allocated")
        lines += ["",
                  f"speedup vs reference: {self.speedup_vs_reference:.2f}x    "
                  f"overhead vs floor: {self.overhead_vs_floor:.3f}x    (on CPU time: "
                  f"{self.cpu_time_ratios()['speedup_vs_reference']:.2f}x, "
                  f"{self.cpu_time_ratios()['overhead_vs_floor']:.3f}x)",
                  f"peak memory: CPU RSS {mem['cpu_rss']:.0f} MB; CUDA max allocated "
                  + ("n/a" if cuda is None else f"{cuda:.0f} MB"),
                  "engine stages (median ms per run): "
                  + ", ".join(f"{k} {v:.1f}" for k, v in self.engine_stages_ms.items()),
                  "floor forward passes (median ms per run): "
                  + ", ".join(f"{k} {v:.1f}" for k, v in self.floor_parts_ms.items())
                  + f"  [{', '.join(f'{v} {k}' for k, v in self.forward_calls.items())} calls]",
                  f"checks: max |reference - engine| score {self.checks['max_score_diff']:.2e}; "
                  f"floor replay vs engine outputs {self.checks['floor_replay_max_rel_diff']:.2e}"]
        if self.engine_overhead:
            o = self.engine_overhead
            lines.append(f"engine work besides the forward passes (forwards answered by recorded outputs): "
                         f"{o['ms_per_run']:.1f} ms per run = {100 * o['fraction_of_floor']:.2f}% of the floor; "
                         + ", ".join(f"{k} {v:.1f}" for k, v in o["stages_ms"].items() if k != "total"))
        return "\n".join(lines)


def _resolved_options(options: Any, detector: Any) -> dict[str, Any]:
    """The options as a dict, with the detector thresholds actually used (None means the detector's)."""
    d = dataclasses.asdict(options)
    for name in ("box_threshold", "text_threshold"):
        if d.get(name) is None:
            d[name] = getattr(detector, name, None)
    return d


def _median_dict(rows: list[dict[str, float]]) -> dict[str, float]:
    keys = list(dict.fromkeys(k for r in rows for k in r))
    return {k: round(statistics.median(r.get(k, 0.0) for r in rows), 3) for k in keys}


def run_bench(preset: str = "arch-b32", device: str | torch.device | None = "auto", pairs: int = 8,
              captions_per_image: int = 4, repeats: int = 3, *, seed: int = 0, engine: Any = None,
              compile: bool = False, progress: Callable[[str], None] | None = None, **options: Any) -> BenchResult:
    """Time reference, engine and floor on the same seeded inputs.

    ``engine`` reuses a loaded engine (its preset and device then win over ``preset`` and ``device``);
    ``compile`` is passed to :meth:`ComCLIP.from_preset`; ``options`` (engine options such as
    ``fast_subimages=False``) apply to the engine variant and, where they mean anything there, to the
    reference (thresholds, weighting, sub-image mode, relations).
    """
    from comclip.engine import ComCLIP
    from comclip.loading import resolve_device
    from comclip.presets import get_preset

    _check_counts(pairs, captions_per_image, repeats)
    say = progress or (lambda _msg: None)
    if engine is None:
        get_preset(preset)  # an unknown name fails before anything is loaded
        dev = resolve_device(device)
        say(f"loading preset {preset} on {dev}")
        engine = ComCLIP.from_preset(preset, device=dev, parser="rules", **({"compile": True} if compile else {}))
    effective = engine.options.updated(**options) if options else engine.options  # validates them early
    dev = torch.device(engine.encoder.device)
    cuda = dev.type == "cuda"
    inputs = make_inputs(pairs, captions_per_image, seed=seed)
    det = engine.detector

    def passes() -> int | None:
        return getattr(det, "forward_passes", None)

    # Warm-up (untimed): one engine run that records the floor's forward passes, one floor replay
    # that checks them against the engine's outputs, and the reference's first pair.
    say("warm-up: engine (recording its forward passes)")
    clear_caches(engine)
    before = passes()
    with record_forwards(engine) as recording:
        run_engine(engine, inputs, **options)
    counts = recording.counts()
    engine_det = None if before is None else passes() - before
    if engine_det is not None and counts["detector"] != engine_det:
        raise RuntimeError(f"bench: recorded {counts['detector']} detector forward passes but the detector counted "
                           f"{engine_det}; the floor would be wrong — update comclip/bench.py")
    if counts["image"] == 0 or counts["text"] == 0:
        raise RuntimeError(f"bench: recorded no {'image' if counts['image'] == 0 else 'text'} encoder forward pass "
                           "in the engine run; the encoder calls its model some other way — update comclip/bench.py")
    say("warm-up: floor replay (checked against the engine's outputs)")
    _, replay_diff = recording.replay(dev, compare=True)
    say("warm-up: reference (first pair)")
    run_reference(engine, inputs.head(1), **options)
    if cuda:
        torch.cuda.reset_peak_memory_stats(dev)

    timings = {name: VariantTiming(name, inputs.pairs) for name in VARIANTS}
    cuda_peaks = dict.fromkeys(VARIANTS, 0.0)
    stages: list[dict[str, float]] = []
    floor_parts: list[dict[str, float]] = []
    ref_scores: Scores = []
    eng_scores: Scores = []
    for r in range(repeats):
        for name in VARIANTS:
            say(f"repeat {r + 1}/{repeats}: {name}")
            if name == "engine":
                clear_caches(engine)
            if cuda:
                torch.cuda.reset_peak_memory_stats(dev)
            before = passes()
            if name == "reference":
                seconds, cpu_s, ref_scores = _timed(dev, lambda: run_reference(engine, inputs, **options))
            elif name == "engine":
                seconds, cpu_s, (eng_scores, stage_ms) = _timed(dev, lambda: run_engine(engine, inputs, **options))
                stages.append(stage_ms)
            else:
                seconds, cpu_s, (parts, _) = _timed(dev, lambda: recording.replay(dev))
                floor_parts.append({k: v * 1000.0 for k, v in parts.items()})
            timings[name].seconds.append(seconds)
            timings[name].cpu_seconds.append(cpu_s)
            if name == "floor":
                timings[name].detector_passes = counts["detector"]
            elif before is not None:
                timings[name].detector_passes = passes() - before
            if cuda:
                cuda_peaks[name] = max(cuda_peaks[name], torch.cuda.max_memory_allocated(dev) / 2**20)

    # The engine's own work, measured directly: the same run with every model forward answered
    # instantly by its recorded output (a profile of the overhead that does not drown in the
    # forward passes' noise).
    say("engine without forward passes (recorded outputs stand in for the models)")
    bare_s: list[float] = []
    bare_stages: list[dict[str, float]] = []
    bare_scores: Scores = []
    for _ in range(max(OVERHEAD_RUNS, repeats)):
        clear_caches(engine)
        with stub_forwards(engine, recording):
            seconds, _, (bare_scores, stage_ms) = _timed(dev, lambda: run_engine(engine, inputs, **options))
        bare_s.append(seconds)
        bare_stages.append(stage_ms)
    floor_s = timings["floor"].median_s
    overhead = {"ms_per_run": round(statistics.median(bare_s) * 1000.0, 3),
                "ms_per_pair": round(statistics.median(bare_s) * 1000.0 / inputs.pairs, 3),
                "fraction_of_floor": round(statistics.median(bare_s) / floor_s, 5),
                "stages_ms": _median_dict(bare_stages)}

    def max_diff(x: Scores, y: Scores) -> float:
        return max((abs(a - b) for p, q in zip(x, y, strict=True) for a, b in zip(p, q, strict=True)), default=0.0)

    diff = max_diff(ref_scores, eng_scores)
    memory: dict[str, Any] = {"cpu_rss": round(_rss_mb(), 1),
                              "cuda_max_allocated": round(max(cuda_peaks.values()), 1) if cuda else None}
    if cuda:
        memory["cuda_max_allocated_by_variant"] = {k: round(v, 1) for k, v in cuda_peaks.items()}
    return BenchResult(
        preset=engine.preset_name, device=str(dev), hardware=hardware(dev), images=len(inputs.images),
        pairs=inputs.pairs, captions_per_image=captions_per_image, repeats=repeats, variants=timings,
        engine_stages_ms=_median_dict(stages), floor_parts_ms=_median_dict(floor_parts), forward_calls=counts,
        peak_memory_mb=memory, engine_overhead=overhead, options=_resolved_options(effective, det),
        checks={"max_score_diff": diff, "floor_replay_max_rel_diff": replay_diff,
                "stubbed_run_max_score_diff": max_diff(bare_scores, eng_scores)},
        reference_scores=ref_scores, engine_scores=eng_scores)


# -- command line -------------------------------------------------------------------------------

def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench", help="time the engine against the official per-pair loop and the forward-pass floor",
        description="Time three variants on the same seeded inputs in one run: reference (the official "
                    "per-pair loop), engine (ComCLIP.match_batch) and floor (only the engine's model forward "
                    "passes). Reports pairs/s, ms/pair, speedup vs reference, overhead vs floor, peak memory.")
    p.add_argument("--preset", default="arch-b32",
                   help="arch-b32, arch-l14 (real-size architectures, random weights), tiny, or any other preset "
                        "[default: %(default)s]")
    p.add_argument("--device", default="auto", help="auto (cuda > mps > cpu), cpu, cuda, cuda:N [default: auto]")
    p.add_argument("--pairs", type=int, default=8, help="(image, caption) pairs [default: %(default)s]")
    p.add_argument("--captions-per-image", type=int, default=4,
                   help=f"captions per image, 1-{MAX_CAPTIONS_PER_IMAGE} [default: %(default)s]")
    p.add_argument("--repeats", type=int, default=3, help="timed repeats after the warm-up [default: %(default)s]")
    p.add_argument("--seed", type=int, default=0, help="seed of the synthetic inputs [default: %(default)s]")
    p.add_argument("--exact-subimages", action="store_true",
                   help="engine renders every sub-image with PIL (pixel-exact, as the reference) instead of "
                        "masking the preprocessed image")
    p.add_argument("--compile", action="store_true", help="torch.compile the image tower (long GPU runs)")
    p.add_argument("--json", action="store_true", help="print one JSON object (the last stdout line)")
    p.add_argument("--verbose", action="store_true", help="progress on stderr (default: only on a terminal)")
    p.set_defaults(func=run_bench_command)


def run_bench_command(args: argparse.Namespace) -> int:
    from comclip.loading import resolve_device
    from comclip.presets import get_preset

    _check_counts(args.pairs, args.captions_per_image, args.repeats)
    get_preset(args.preset)
    device = resolve_device(args.device)
    verbose = args.verbose or sys.stderr.isatty()
    start = time.perf_counter()
    progress = (lambda msg: print(f"[bench {time.perf_counter() - start:7.1f}s] {msg}", file=sys.stderr, flush=True)
                ) if verbose else None
    options = {"fast_subimages": False} if args.exact_subimages else {}
    result = run_bench(args.preset, device, args.pairs, args.captions_per_image, args.repeats, seed=args.seed,
                       compile=args.compile, progress=progress, **options)
    if args.json:
        print(json.dumps(result.to_dict()))
    else:
        print(result.format())
    return 0
