"""One bench run: reference, engine, floor and engine replay on the same inputs, interleaved.

Timing: one untimed warm-up (a full engine run, which also records the engine's forward passes;
one replay of them, checked against the engine's outputs; on CUDA one run of the floor; the
reference's first pair), then ``repeats`` rounds of reference → engine → floor → engine_replay. Medians and
min–max are reported. On CUDA every timing is bracketed by ``torch.cuda.synchronize``. Process CPU
time is recorded next to wall time (a cross-check on a CPU shared with other work). Finally the
engine runs ``overhead_runs`` more times with every model forward answered instantly by its
recorded output: what is left is the engine's own work besides the forwards, per stage.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch

from comclip.bench.count import count_detector
from comclip.bench.floor import build_floor, necessary_units
from comclip.bench.inputs import BenchInputs, check_counts, make_inputs
from comclip.bench.record import ForwardRecording, record_forwards, stub_forwards, sync
from comclip.bench.reference import Scores, run_reference
from comclip.bench.report import VARIANTS, BenchResult, VariantTiming, hardware, rss_mb

if TYPE_CHECKING:
    from comclip.engine import ComCLIP
    from comclip.result import MatchResult

#: Runs of the engine with its forward passes stubbed out (they are cheap).
OVERHEAD_RUNS = 5


def engine_results(engine: ComCLIP, inputs: BenchInputs, **options: Any) -> list[MatchResult]:
    """``match_batch`` on every item at once, after emptying the engine's caches (the same work every run)."""
    engine.clear_caches()
    return engine.match_batch(inputs.items(), **options)


def run_engine(engine: ComCLIP, inputs: BenchInputs, **options: Any) -> tuple[Scores, dict[str, float]]:
    """The engine variant: its scores and its stage timings."""
    results = engine_results(engine, inputs, **options)
    scores = [(c.clip_score, c.comclip_score) for r in results for c in r.captions]
    return scores, dict(results[0].timings_ms) if results else {}


def timed(device: torch.device, fn: Callable[[], Any], clock: Callable[[], float] = time.perf_counter,
          cpu_clock: Callable[[], float] = time.process_time) -> tuple[float, float, Any]:
    """Wall seconds, this process's CPU seconds (all threads), and ``fn``'s result."""
    sync(device)
    start, cpu = clock(), cpu_clock()
    out = fn()
    sync(device)
    return clock() - start, cpu_clock() - cpu, out


def max_score_diff(x: Scores, y: Scores) -> float:
    return max((abs(a - b) for p, q in zip(x, y, strict=True) for a, b in zip(p, q, strict=True)), default=0.0)


def _median_dict(rows: list[dict[str, float]]) -> dict[str, float]:
    keys = list(dict.fromkeys(k for r in rows for k in r))
    return {k: round(statistics.median(r.get(k, 0.0) for r in rows), 3) for k in keys}


def load_engine(preset: str, device: Any, compile: bool = False) -> ComCLIP:
    import comclip

    return comclip.load(preset, device=device, compile=compile, parser="rules")


def _recorded_engine_run(engine: ComCLIP, inputs: BenchInputs, **options: Any
                         ) -> tuple[list[MatchResult], ForwardRecording, int]:
    """The engine's warm-up run with its forward passes recorded (checked against the detector's own
    count): its results, the recording and the (image, prompt) units it detected."""
    with count_detector(engine.detector) as count, record_forwards(engine) as recording:
        results = engine_results(engine, inputs, **options)
    calls = recording.counts()
    if (calls["detector"], calls["detector_text"]) != (count.passes, count.text_parts):
        raise RuntimeError(f"bench: recorded {calls['detector']} detector passes and {calls['detector_text']} text "
                           f"parts but the model ran {count.passes} and {count.text_parts}; update "
                           "comclip/bench/record.py")
    if calls["image"] == 0 or calls["text"] == 0:
        raise RuntimeError("bench: recorded no encoder forward in the engine run; the encoder calls its model some "
                           "other way — update comclip/bench/record.py")
    return results, recording, count.units


def _engine_overhead(engine: ComCLIP, inputs: BenchInputs, recording: ForwardRecording, runs: int, floor_s: float,
                     **options: Any) -> tuple[dict[str, Any], Scores]:
    """The engine's own work: ``runs`` runs with every forward answered by its recorded output."""
    dev = torch.device(engine.encoder.device)
    bare_s: list[float] = []
    bare_stages: list[dict[str, float]] = []
    bare_scores: Scores = []
    for _ in range(max(1, runs)):
        with stub_forwards(engine, recording):
            seconds, _, (bare_scores, stage_ms) = timed(dev, lambda: run_engine(engine, inputs, **options))
        bare_s.append(seconds)
        bare_stages.append(stage_ms)
    return {"ms_per_run": round(statistics.median(bare_s) * 1000.0, 3),
            "ms_per_pair": round(statistics.median(bare_s) * 1000.0 / inputs.pairs, 3),
            "fraction_of_floor": round(statistics.median(bare_s) / floor_s, 5),
            "stages_ms": _median_dict(bare_stages)}, bare_scores


def _engine_calls(recording: ForwardRecording, units: int, results: list[MatchResult]) -> dict[str, int]:
    calls = recording.counts()
    return {"detector_forwards": calls["detector"], "detector_text_parts": calls["detector_text"],
            "detector_units": units, "image_forwards": calls["image"],
            "image_rows": sum(int(c.args[0].shape[0]) for c in recording.calls if c.kind == "image" and c.args),
            "text_forwards": calls["text"], "result_components": sum(len(c.components) for r in results
                                                                     for c in r.captions)}


def _memory(cuda_peaks: dict[str, float] | None) -> dict[str, Any]:
    """Peak memory in MB: the process's RSS, and on CUDA the most allocated, in all and per variant."""
    memory: dict[str, Any] = {"cpu_rss": round(rss_mb(), 1),
                              "cuda_max_allocated": round(max(cuda_peaks.values()), 1) if cuda_peaks else None}
    if cuda_peaks:
        memory["cuda_max_allocated_by_variant"] = {k: round(v, 1) for k, v in cuda_peaks.items()}
    return memory


def run_bench(preset: str = "arch-b32", device: str | torch.device | None = "auto", pairs: int = 8,
              captions_per_image: int = 4, repeats: int = 3, *, seed: int = 0, engine: ComCLIP | None = None,
              compile: bool = False, overhead_runs: int = OVERHEAD_RUNS,
              progress: Callable[[str], None] | None = None, **options: Any) -> BenchResult:
    """Time reference, engine, floor and engine replay on the same seeded inputs.

    ``engine`` reuses a loaded engine (its preset and device then win over ``preset`` and ``device``);
    ``compile`` is passed to the loader; ``options`` (engine options such as ``fast_subimages=False``)
    apply to the engine and, where they mean anything there, to the reference.
    """
    check_counts(pairs, captions_per_image, repeats)
    say = progress or (lambda _msg: None)
    if engine is None:
        say(f"loading preset {preset} on {device}")
        engine = load_engine(preset, device, compile)
    effective = engine.options.updated(**options) if options else engine.options  # validates them early
    dev = torch.device(engine.encoder.device)
    cuda = dev.type == "cuda"
    inputs = make_inputs(pairs, captions_per_image, seed=seed)
    det = engine.detector

    say("warm-up: engine (recording its forward passes)")
    results, recording, engine_units = _recorded_engine_run(engine, inputs, **options)
    engine_calls = recording.counts()
    say("warm-up: engine replay (checked against the engine's outputs)")
    _, replay_diff = recording.replay(dev, compare=True)
    say("preparing the floor (the necessary forwards; on CUDA a warm-up run)")
    floor = build_floor(engine, inputs, recording)
    if cuda:
        floor.run()
    say("warm-up: reference (first pair)")
    run_reference(engine, inputs.head(1), **options)

    timings = {name: VariantTiming(name, inputs.pairs) for name in VARIANTS}
    cuda_peaks = dict.fromkeys(VARIANTS, 0.0)
    stages: list[dict[str, float]] = []
    parts: dict[str, list[dict[str, float]]] = {"floor": [], "engine_replay": []}
    ref_scores: Scores = []
    eng_scores: Scores = []
    for r in range(repeats):
        for name in VARIANTS:
            say(f"repeat {r + 1}/{repeats}: {name}")
            if cuda:
                torch.cuda.reset_peak_memory_stats(dev)
            with count_detector(det) as count:
                if name == "reference":
                    seconds, cpu_s, ref_scores = timed(dev, lambda: run_reference(engine, inputs, **options))
                elif name == "engine":
                    seconds, cpu_s, (eng_scores, stage_ms) = timed(dev, lambda: run_engine(engine, inputs, **options))
                    stages.append(stage_ms)
                else:
                    run = floor.run if name == "floor" else (lambda: recording.replay(dev)[0])
                    seconds, cpu_s, by_kind = timed(dev, run)
                    parts[name].append({k: v * 1000.0 for k, v in by_kind.items()})
            timings[name].seconds.append(seconds)
            timings[name].cpu_seconds.append(cpu_s)
            timings[name].detector_passes = {"floor": floor.counts()["detector_forwards"],
                                             "engine_replay": engine_calls["detector"]}.get(name, count.passes)
            if cuda:
                cuda_peaks[name] = max(cuda_peaks[name], torch.cuda.max_memory_allocated(dev) / 2**20)

    say("engine without forward passes (recorded outputs stand in for the models)")
    overhead, bare_scores = _engine_overhead(engine, inputs, recording, overhead_runs, timings["floor"].median_s,
                                             **options)
    return BenchResult(
        preset=engine.preset_name, device=str(dev), hardware=hardware(dev), images=len(inputs.images),
        pairs=inputs.pairs, captions_per_image=captions_per_image, repeats=repeats, variants=timings,
        engine_stages_ms=_median_dict(stages), floor_parts_ms=_median_dict(parts["floor"]),
        replay_parts_ms=_median_dict(parts["engine_replay"]),
        forward_calls={"floor": {**floor.counts(), "necessary_detector_units": len(necessary_units(inputs))},
                       "engine": _engine_calls(recording, engine_units, results)},
        peak_memory_mb=_memory(cuda_peaks if cuda else None), engine_overhead=overhead,
        options=effective.with_thresholds(det).to_dict(),
        checks={"max_score_diff": max_score_diff(ref_scores, eng_scores), "replay_max_rel_diff": replay_diff,
                "stubbed_run_max_score_diff": max_score_diff(bare_scores, eng_scores)},
        reference_scores=ref_scores, engine_scores=eng_scores)
