"""CPU facts and settings for the models' CPU forwards.

**Native bf16** (:func:`detector_precision`, :func:`encoder_precision`). The detector's ``auto``
precision is bf16 autocast on CUDA and, on the CPU, bf16 where the CPU computes it natively — its
``/proc/cpuinfo`` flags list ``avx512_bf16`` (AVX-512 BF16 dot products) or ``amx_bf16`` with ``amx_tile`` (AMX tiles) —
and fp32 elsewhere, where bf16 is emulated and several times slower (docs/benchmarks.md measures
both). torch reports the CPU's vector width (``torch.backends.cpu.get_cpu_capability()``) but not
BF16, hence the flags. Where ``/proc/cpuinfo`` does not exist (macOS, Windows) ``auto`` keeps fp32.
The image–text model's ``auto`` follows the same rule on the CPU (its weights in bf16) and is fp16
on CUDA.
``COMCLIP_CPU_BF16=0`` (or ``1``) overrides what the flags say (the tests pin fp32 numbers with it).

**glibc keeps freed memory** (:func:`keep_freed_memory`). A Grounding DINO forward at 800 px
allocates activations of tens to hundreds of MB (e.g. the encoder's feed-forward, 20k tokens × 2048
× 4 bytes = 163 MB). glibc serves blocks over 32 MB with ``mmap`` and returns them on ``free``, so
every forward faults those pages in again — measured on a 2-core EPYC: the detector's fusion part
takes 22% less CPU time when the memory is kept (and transformers' own forward 39% less).
:func:`keep_freed_memory` asks glibc (``mallopt``) to serve large blocks from the heap and not to
trim it, so the process keeps its peak memory instead of returning it between forwards. That changes
the whole process, so nothing in the engine calls it: it is a start-up decision of a program that
runs big CPU forwards — the command line (``python -m comclip``) calls it once at start; the app's
``main`` and a library user may. ``COMCLIP_KEEP_FREED_MEMORY=0`` turns it off. Elsewhere than glibc it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import platform
import threading
from collections.abc import Collection
from pathlib import Path

_M_TRIM_THRESHOLD = -1  # glibc's mallopt parameter numbers (malloc.h)
_M_MMAP_MAX = -4
_lock = threading.Lock()
_done: bool | None = None
#: ``0``: ``auto`` never picks bf16 on the CPU; ``1``: it does, whatever the flags say; unset: the flags decide.
CPU_BF16_ENV = "COMCLIP_CPU_BF16"


def native_bf16(flags: Collection[str]) -> bool:
    """Whether CPU flags (as ``/proc/cpuinfo`` spells them) mean native bf16 arithmetic."""
    return "avx512_bf16" in flags or ("amx_bf16" in flags and "amx_tile" in flags)


@functools.cache
def cpu_flags(cpuinfo: str = "/proc/cpuinfo") -> frozenset[str]:
    """This machine's CPU flags: the first ``flags`` line of ``/proc/cpuinfo`` (empty where there is none)."""
    try:
        text = Path(cpuinfo).read_text(errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() == "flags":
            return frozenset(value.split())
    return frozenset()


def _native(flags: Collection[str] | None) -> bool:
    """Native bf16 on this CPU (``flags=None``: this machine's, unless ``COMCLIP_CPU_BF16`` is ``0``/``1``)."""
    if flags is None:
        forced = os.environ.get(CPU_BF16_ENV, "").strip()
        return forced == "1" if forced in ("0", "1") else native_bf16(cpu_flags())
    return native_bf16(flags)


def detector_precision(precision: str, device_type: str, flags: Collection[str] | None = None) -> str:
    """What the detector runs in, ``fp32`` or ``bf16`` (autocast), for a precision setting on a device type.

    ``auto``: bf16 on CUDA, and on the CPU when ``flags`` (the CPU's, as :func:`cpu_flags` reads
    them) mean native bf16; fp32 otherwise (the CPU without it, MPS). ``fp32`` and ``bf16`` are kept
    as they are. ``flags=None`` reads this machine's, unless ``COMCLIP_CPU_BF16`` is ``0`` or ``1``.
    """
    if precision != "auto":
        return precision
    if device_type == "cuda":
        return "bf16"
    return "bf16" if device_type == "cpu" and _native(flags) else "fp32"


def encoder_precision(precision: str, device_type: str, flags: Collection[str] | None = None) -> str:
    """What the image–text model runs in, ``fp32``, ``fp16`` or ``bf16`` (its weights), for a precision
    setting on a device type. ``auto``: fp16 on CUDA (the CLIP papers' inference precision), bf16 on a
    CPU with native bf16 (as :func:`detector_precision`: twice the fp32 speed there, measured in
    docs/benchmarks.md), fp32 elsewhere; the others are kept as they are."""
    if precision != "auto":
        return precision
    if device_type == "cuda":
        return "fp16"
    return "bf16" if device_type == "cpu" and _native(flags) else "fp32"


def keep_freed_memory() -> bool:
    """Make glibc keep freed memory for reuse (once per process); True when it is in effect."""
    global _done
    with _lock:
        if _done is None:
            _done = False
            if os.environ.get("COMCLIP_KEEP_FREED_MEMORY", "1") != "0" and platform.libc_ver()[0] == "glibc":
                libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
                # 2**31 − 1: the largest value mallopt takes (glibc caps the trim threshold there)
                _done = bool(libc.mallopt(_M_MMAP_MAX, 0)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, 2**31 - 1))
        return _done


def freed_memory_kept() -> bool | None:
    """Whether :func:`keep_freed_memory` is in effect: None when it has not been called in this process."""
    with _lock:
        return _done
