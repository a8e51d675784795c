"""The bench's result: per-variant timings, ratios, stage profiles and checks; its table and JSON."""

from __future__ import annotations

import contextlib
import os
import platform
import resource
import statistics
import sys
from dataclasses import dataclass, field
from typing import Any

import torch

from comclip.bench.reference import Scores

#: The timed variants, in the order each repeat runs them.
VARIANTS = ("reference", "engine", "floor", "engine_replay")


def rss_mb() -> float:
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
    #: Per model (detector, image, text): median ms per run of the floor and of the engine replay.
    floor_parts_ms: dict[str, float]
    replay_parts_ms: dict[str, float]
    #: Rows and forwards: ``floor`` (the necessary ones), ``engine`` (what the engine ran).
    forward_calls: dict[str, dict[str, int]]
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

    @property
    def overhead_vs_engine_replay(self) -> float:
        return self.variants["engine"].median_s / self.variants["engine_replay"].median_s

    def cpu_time_ratios(self) -> dict[str, float]:
        """The two ratios on process CPU time instead of wall time (a cross-check on a shared CPU)."""
        cpu = {k: statistics.median(v.cpu_seconds) for k, v in self.variants.items()}
        return {"speedup_vs_reference": round(cpu["reference"] / cpu["engine"], 4),
                "overhead_vs_floor": round(cpu["engine"] / cpu["floor"], 4),
                "overhead_vs_engine_replay": round(cpu["engine"] / cpu["engine_replay"], 4)}

    def to_dict(self) -> dict[str, Any]:
        return {
            "preset": self.preset, "device": self.device, "pairs": self.pairs,
            "captions_per_image": self.captions_per_image,
            **{name: self.variants[name].to_dict() for name in VARIANTS},
            "speedup_vs_reference": round(self.speedup_vs_reference, 4),
            "overhead_vs_floor": round(self.overhead_vs_floor, 4),
            "overhead_vs_engine_replay": round(self.overhead_vs_engine_replay, 4),
            "peak_memory_mb": self.peak_memory_mb,
            "images": self.images, "repeats": self.repeats, "hardware": self.hardware,
            "engine_stages_ms": self.engine_stages_ms, "floor_parts_ms": self.floor_parts_ms,
            "replay_parts_ms": self.replay_parts_ms,
            "forward_calls": self.forward_calls, "checks": self.checks, "options": self.options,
            "cpu_time_ratios": self.cpu_time_ratios(), "engine_overhead": self.engine_overhead,
        }

    def format(self) -> str:
        lines = [f"ComCLIP bench: preset {self.preset} on {self.device} ({self.hardware})",
                 f"{self.pairs} pairs = {self.images} images x up to {self.captions_per_image} captions; "
                 f"{self.repeats} timed repeats after a warm-up; median [min-max]",
                 "",
                 f"{'variant':<14} {'pairs/s':>10} {'ms/pair':>11} {'min-max ms/pair':>21} {'CPU ms/pair':>12} "
                 f"{'detector passes':>16}"]
        for name in VARIANTS:
            d = self.variants[name].to_dict()
            spread = f"{d['ms_per_pair_min']:.1f}-{d['ms_per_pair_max']:.1f}"
            passes = "-" if d["detector_forward_passes"] is None else str(d["detector_forward_passes"])
            lines.append(f"{name:<14} {d['pairs_per_s']:>10.3f} {d['ms_per_pair']:>11.1f} {spread:>21} "
                         f"{d['cpu_ms_per_pair']:>12.1f} {passes:>16}")
        mem = self.peak_memory_mb
        cuda = mem.get("cuda_max_allocated")
        lines += ["",
                  f"speedup vs reference: {self.speedup_vs_reference:.2f}x    "
                  f"overhead vs floor: {self.overhead_vs_floor:.3f}x    (on CPU time: "
                  f"{self.cpu_time_ratios()['speedup_vs_reference']:.2f}x, "
                  f"{self.cpu_time_ratios()['overhead_vs_floor']:.3f}x)    "
                  f"engine / engine replay: {self.overhead_vs_engine_replay:.3f}x",
                  f"peak memory: CPU RSS {mem['cpu_rss']:.0f} MB; CUDA max allocated "
                  + ("n/a" if cuda is None else f"{cuda:.0f} MB"),
                  "engine stages (median ms per run): "
                  + ", ".join(f"{k} {v:.1f}" for k, v in self.engine_stages_ms.items()),
                  "floor, the necessary forwards (median ms per run): "
                  + ", ".join(f"{k} {v:.1f}" for k, v in self.floor_parts_ms.items())
                  + "  [" + ", ".join(f"{self.forward_calls['floor'][f'{k}_rows']} {k} rows in "
                                      f"{self.forward_calls['floor'][f'{k}_forwards']} forwards"
                                      for k in self.floor_parts_ms) + "]",
                  "engine replay, the engine's own forwards (median ms per run): "
                  + ", ".join(f"{k} {v:.1f}" for k, v in self.replay_parts_ms.items())
                  + "  [" + ", ".join(f"{v} {k}" for k, v in self.forward_calls["engine"].items()) + "]",
                  f"checks: max |reference - engine| score {self.checks['max_score_diff']:.2e}; "
                  f"replay vs engine outputs {self.checks['replay_max_rel_diff']:.2e}"]
        if self.engine_overhead:
            o = self.engine_overhead
            lines.append(f"engine work besides the forward passes (forwards answered by recorded outputs): "
                         f"{o['ms_per_run']:.1f} ms per run = {100 * o['fraction_of_floor']:.2f}% of the floor; "
                         + ", ".join(f"{k} {v:.1f}" for k, v in o["stages_ms"].items() if k != "total"))
        return "\n".join(lines)


