"""``bench --click``: what a person waits for — one request (one image, a few captions) through
:meth:`ComCLIP.match`, caches emptied before each run — with the detector's default path beside the
model's own forward (``transformers``, fp32 eager), their agreement, and where the detector's time goes.

Per detector block (forward hooks, wall time): the Swin backbone, the input projections, the BERT text
backbone, the feature enhancer (its text self-attention, image↔text fusion and deformable layers
separately), the proposal heads, the decoder and the final heads. A block's time is summed over every
call in the request (e.g. the fusion layers of two prompts). The detector's forwards are counted
by :func:`~comclip.bench.count.count_detector` (image parts, text parts, fusions, model forwards).

``second`` (``--warm``): also a *second click* — the same image with new captions, timed right after
an untimed first request on emptied caches, so the detector's image part, the known prompts' text
parts and the parses and text embeddings already computed are reused, as in the app — and its result
checked against the same request on empty caches (``second_click_vs_cold``). The detector's caches
are exact, so boxes agree exactly; scores and weights may differ by float rounding (measured 2e-8 /
9e-8 on ``tiny``) because the engine's text-embedding cache encodes a new caption in other company
than an empty cache would.
"""

from __future__ import annotations

import statistics
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from comclip.bench.count import count_detector
from comclip.bench.report import hardware, rss_mb

if TYPE_CHECKING:
    from comclip.engine import ComCLIP
    from comclip.result import MatchResult

#: The default request: a photograph and four captions of one phrase set (cup, saucer).
CLICK_IMAGE = "assets/examples/coffee_cup_saucer.jpg"
CLICK_CAPTIONS = ("a cup on a saucer", "a saucer on a cup", "a cup sitting on a saucer", "a saucer sitting on a cup")
#: A second click on that image (``--warm``): new captions, another phrase set (cup, spoon).
SECOND_CAPTIONS = ("a spoon next to a cup", "a cup next to a spoon", "a spoon in a cup", "a cup in a spoon")


def _blocks(model: Any) -> list[tuple[str, torch.nn.Module]]:
    """(name, module) of each timed block of a transformers Grounding DINO."""
    mm = model.model
    out = [("swin backbone", mm.backbone.conv_encoder), ("position embeddings", mm.backbone.position_embedding)]
    out += [("input projections", m) for m in mm.input_proj_vision]
    out += [("bert text backbone", mm.text_backbone), ("text projection", mm.text_projection)]
    for layer in mm.encoder.layers:
        out += [("enhancer: text self-attention", layer.text_enhancer_layer),
                ("enhancer: image-text fusion", layer.fusion_layer),
                ("enhancer: deformable image layers", layer.deformable_layer)]
    out += [("proposal heads", mm.encoder_output_class_embed), ("proposal heads", mm.encoder_output_bbox_embed),
            ("decoder", mm.decoder)]
    out += [("final heads", m) for m in (*model.class_embed, *model.bbox_embed)]
    return out


@contextmanager
def block_timer(model: Any) -> Iterator[dict[str, float]]:
    """While active, the wall seconds spent in each detector block, summed by block name."""
    spent: dict[str, float] = defaultdict(float)
    started: dict[int, float] = {}
    handles = []
    for name, module in _blocks(model):
        def pre(mod: Any, *_: Any) -> None:
            started[id(mod)] = time.perf_counter()

        def post(mod: Any, *_: Any, name: str = name) -> None:
            spent[name] += time.perf_counter() - started.pop(id(mod))

        handles += [module.register_forward_pre_hook(pre), module.register_forward_hook(post)]
    try:
        yield spent
    finally:
        for h in handles:
            h.remove()


@dataclass
class ClickRun:
    backend: str
    #: ``first``: the request on empty caches; ``second``: the same image with new captions, right after
    #: the first request (what a person's next click costs).
    click: str = "first"
    seconds: list[float] = field(default_factory=list)
    cpu_seconds: list[float] = field(default_factory=list)
    stages_ms: dict[str, float] = field(default_factory=dict)
    blocks_ms: dict[str, float] = field(default_factory=dict)
    detector: dict[str, int] = field(default_factory=dict)
    #: ``second`` click: its result against the same request on empty caches (:func:`agreement`).
    check: dict[str, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {"backend": self.backend, "click": self.click, "wall_s": round(statistics.median(self.seconds), 3),
               "wall_s_runs": [round(s, 3) for s in self.seconds],
               "cpu_s": round(statistics.median(self.cpu_seconds), 3), "stages_ms": self.stages_ms,
               "detector_blocks_ms": self.blocks_ms, "detector_passes": self.detector.get("passes", 0),
               "detector_forwards": self.detector}
        return out if self.check is None else {**out, "second_click_vs_cold": self.check}


def with_backend(engine: ComCLIP, backend: str) -> ComCLIP:
    """The engine, or one on the same models whose detector wrapper runs ``backend`` (own caches)."""
    det = engine.detector
    if det.backend == backend:
        return engine
    from comclip.engine import ComCLIP

    return ComCLIP(engine.encoder, det.replace(backend=backend), engine.options, preset=engine.preset)


def _timed_runs(engine: ComCLIP, image: str, captions: Sequence[str], repeats: int,
                before: Sequence[str] = ()) -> tuple[ClickRun, MatchResult]:
    """``repeats`` timed requests, each on emptied caches after an untimed request of ``before`` (the
    same image) when given; one untimed warm-up first."""
    run = ClickRun(engine.detector.backend, "second" if before else "first")
    result = None
    engine.clear_caches()
    engine.match(image, list(captions))  # warm-up
    for k in range(repeats):
        engine.clear_caches()
        if before:
            engine.match(image, list(before))
        with count_detector(engine.detector) as count, block_timer(engine.detector.model) if k == 0 else \
                _nothing() as blocks:
            start, cpu = time.perf_counter(), time.process_time()
            result = engine.match(image, list(captions))
            run.seconds.append(time.perf_counter() - start)
            run.cpu_seconds.append(time.process_time() - cpu)
        if k == 0:
            run.blocks_ms = {name: round(s * 1000.0, 1) for name, s in blocks.items()}
            run.stages_ms = dict(result.timings_ms)
            run.detector = {"passes": count.passes, "image_parts": count.image_parts, "text_parts": count.text_parts,
                            "fusions": count.fusions, "model_forwards": count.model_forwards, "units": count.units}
    assert result is not None
    return run, result


@contextmanager
def _nothing() -> Iterator[dict[str, float]]:
    yield {}


def agreement(a: MatchResult, b: MatchResult) -> dict[str, float]:
    """Largest differences between two results of the same request: scores, weights, box corners (px)."""
    score = weight = box = 0.0
    for x, y in zip(a.captions, b.captions, strict=True):
        score = max(score, abs(x.clip_score - y.clip_score), abs(x.comclip_score - y.comclip_score))
        for p, q in zip(x.components, y.components, strict=True):
            weight = max(weight, abs(p.weight - q.weight))
            if len(p.boxes.xyxy) != len(q.boxes.xyxy):
                box = float("inf")
                continue
            for u, v in zip(p.boxes.xyxy, q.boxes.xyxy, strict=True):
                box = max(box, *(abs(i - j) for i, j in zip(u, v, strict=True)))
    return {"max_score_diff": score, "max_weight_diff": weight, "max_box_diff_px": box}


def run_click(engine: ComCLIP, image: str = CLICK_IMAGE, captions: Sequence[str] = CLICK_CAPTIONS,
              repeats: int = 3, compare: bool = True, say: Callable[[str], None] | None = None,
              second: Sequence[str] | None = None) -> dict[str, Any]:
    """Time one request on the engine's detector path and (``compare``) on the model's own forward;
    with ``second`` (captions) also a second click: the same image with those captions right after
    the first request, checked against the same request on empty caches (``second_click_vs_cold``)."""
    say = say or (lambda _msg: None)
    det = engine.detector
    backends = [det.backend] + (["transformers"] if compare and det.backend != "transformers" else [])
    runs, results = [], []
    for backend in backends:
        eng = with_backend(engine, backend)
        say(f"click: {backend} detector path, {repeats} run(s) after a warm-up")
        run, result = _timed_runs(eng, image, captions, repeats)
        runs.append(run)
        results.append(result)
        if second:
            say(f"click: {backend} detector path, a second click (new captions), {repeats} run(s)")
            warm_run, warm = _timed_runs(eng, image, second, repeats, before=captions)
            runs.append(warm_run)
            eng.clear_caches()
            warm_run.check = agreement(warm, eng.match(image, list(second)))
    out: dict[str, Any] = {
        "preset": engine.preset_name, "device": str(det.device), "hardware": hardware(det.device),
        "date": time.strftime("%Y-%m-%d"), "image": image, "captions": list(captions),
        "second_captions": list(second or ()),
        "detector_size": dict(det.processor.image_processor.size), "detector_precision":
            f"{det.precision} ({'bf16 autocast' if det.autocast_dtype == torch.bfloat16 else 'fp32'})",
        "runs": [r.to_dict() for r in runs], "peak_rss_mb": round(rss_mb(), 1)}
    if len(results) == 2:
        first = [r for r in runs if r.click == "first"]
        out["agreement_vs_transformers"] = agreement(results[0], results[1])
        out["speedup_vs_transformers"] = round(statistics.median(first[1].seconds) / statistics.median(
            first[0].seconds), 3)
    return out


def format_click(d: dict[str, Any]) -> str:
    """The click result as a small text report."""
    lines = [f"one request: {d['image']} × {len(d['captions'])} captions — preset {d['preset']} on {d['hardware']}",
             f"detector size {d['detector_size']}, precision {d['detector_precision']}"]
    for r in d["runs"]:
        f = r["detector_forwards"]
        lines.append(f"  {r['backend']:<13} {r['click']} click: wall {r['wall_s']:.2f} s "
                     f"(runs {', '.join(map(str, r['wall_s_runs']))}), CPU {r['cpu_s']:.2f} s, detector passes "
                     f"{r['detector_passes']} (image parts {f['image_parts']}, text parts {f['text_parts']}, "
                     f"fusions {f['fusions']}, model forwards {f['model_forwards']})")
        if "second_click_vs_cold" in r:
            c = r["second_click_vs_cold"]
            lines.append(f"    second click vs the same request cold: max |Δ| score {c['max_score_diff']:.1e}, "
                         f"weight {c['max_weight_diff']:.1e}, box {c['max_box_diff_px']:.1e} px")
        stages = ", ".join(f"{k} {v:.0f}" for k, v in r["stages_ms"].items())
        lines.append(f"    stages ms: {stages}")
        blocks = ", ".join(f"{k} {v:.0f}" for k, v in r["detector_blocks_ms"].items())
        lines.append(f"    detector blocks ms: {blocks}")
    if "agreement_vs_transformers" in d:
        a = d["agreement_vs_transformers"]
        lines.append(f"  vs transformers: {d['speedup_vs_transformers']:.2f}× faster; max |Δ| score "
                     f"{a['max_score_diff']:.1e}, weight {a['max_weight_diff']:.1e}, box {a['max_box_diff_px']:.1e} px")
    return "\n".join(lines)
