"""Recording the engine's model forwards: the ``engine_replay`` variant and the stubbed runs.

While :func:`record_forwards` is active, every detector forward and image/text encoder forward is
recorded with its exact input tensors and autocast state. :meth:`ForwardRecording.replay` runs them
again (``engine_replay``: the engine's own forwards at the engine's settings, nothing else), and
:func:`stub_forwards` answers them instantly with their recorded outputs, so an engine run then
costs only the engine's own work besides the forwards.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from comclip.engine import ComCLIP


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


#: Model methods that are one forward pass, by kind: open_clip first, then Hugging Face CLIP.
ENCODER_FORWARDS = {"image": ("encode_image", "get_image_features"), "text": ("encode_text", "get_text_features")}
FORWARD_KINDS = ("detector", "image", "text")
#: The detector's forward methods with the ``torch`` backend: image part, text part, fusion.
DETECTOR_PARTS = ("image_forward", "text_forward", "fuse")
DETECTOR_TEXT_PART = "text_forward"


@dataclass
class ForwardCall:
    kind: str  # detector | image | text
    module: Any  # the model (or, for ``bench_forwards``, the encoder) whose method was called
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
        """Forwards per kind; ``detector`` counts the detector's passes (model forwards, image parts and
        fusions: :mod:`comclip.bench.count`'s), ``detector_text`` its text parts run apart."""
        text_parts = sum(c.kind == "detector" and c.method == DETECTOR_TEXT_PART for c in self.calls)
        out = {k: sum(c.kind == k for c in self.calls) for k in FORWARD_KINDS}
        return {**out, "detector": out["detector"] - text_parts, "detector_text": text_parts}

    def replay(self, device: torch.device, *, compare: bool = False) -> tuple[dict[str, float], float]:
        """Run every recorded call again, grouped by kind; seconds per kind, and (with ``compare``) the
        largest difference from the recorded outputs, relative to their magnitude (0.0 otherwise)."""
        seconds: dict[str, float] = {}
        worst = 0.0
        with torch.inference_mode():
            for kind in FORWARD_KINDS:
                calls = [c for c in self.calls if c.kind == kind]
                sync(device)
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
                sync(device)
                seconds[kind] = time.perf_counter() - start
        return seconds, worst


def _encoder_targets(engine: ComCLIP) -> list[tuple[Any, str, str]]:
    """(object, method, kind) of every forward to record: the detector's (with the ``torch`` backend its
    image part, text part and fusion, each a forward of kind ``detector``), then the encoder's. An
    encoder whose model has no single image or text forward method (BLIP-2) names its own tensor-in
    methods in ``bench_forwards``."""
    det = engine.detector
    targets: list[tuple[Any, str, str]] = (
        [(det, method, "detector") for method in DETECTOR_PARTS]
        if getattr(det, "backend", None) == "torch" else [(det.model, "forward", "detector")])
    own = getattr(engine.encoder, "bench_forwards", None)
    if own:
        return targets + [(engine.encoder, own[kind], kind) for kind in ("image", "text")]
    model = getattr(engine.encoder, "model", None)
    for kind, names in ENCODER_FORWARDS.items():
        name = next((n for n in names if model is not None and callable(getattr(model, n, None))), None)
        if name is None:
            raise RuntimeError(f"bench: the encoder {type(engine.encoder).__name__} has no {kind} forward method "
                               f"({' / '.join(names)}) to record for the floor; teach comclip/bench/record.py about it")
        targets.append((model, name, kind))
    return targets


@contextlib.contextmanager
def _patched_forwards(engine: ComCLIP, replace: Callable[[Any, str, str], Callable[..., Any]]
                      ) -> Iterator[None]:
    """Shadow the detector's forward and the encoder's image/text forward methods by instance attributes."""
    patched: list[tuple[Any, str]] = []
    try:
        for module, method, kind in _encoder_targets(engine):
            module.__dict__[method] = replace(module, method, kind)
            patched.append((module, method))
        yield
    finally:
        for module, method in patched:
            module.__dict__.pop(method, None)


@contextlib.contextmanager
def record_forwards(engine: ComCLIP) -> Iterator[ForwardRecording]:
    """While active, every detector forward and image/text encoder forward is recorded with its inputs."""
    recording = ForwardRecording()

    def wrap(module: Any, method: str, kind: str) -> Callable[..., Any]:
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


def _shapes(args: tuple, kwargs: dict[str, Any]) -> list[Any]:
    """The shapes of a call's tensor arguments (what must match for a recorded output to stand in)."""
    values = [*args, *(kwargs[k] for k in sorted(kwargs))]
    return [tuple(v.shape) if isinstance(v, torch.Tensor) else None for v in values]


@contextlib.contextmanager
def stub_forwards(engine: ComCLIP, recording: ForwardRecording) -> Iterator[None]:
    """While active, the recorded forward passes return their recorded outputs instantly, in order: an
    engine run then costs only what the engine does besides the model forwards."""
    queues: dict[tuple[int, str], list[ForwardCall]] = {}
    for call in recording.calls:
        queues.setdefault((id(call.module), call.method), []).append(call)
    pending = {k: list(v) for k, v in queues.items()}

    def stub(module: Any, method: str, kind: str) -> Callable[..., Any]:
        def recorded_output(*args: Any, **kwargs: Any) -> Any:
            left = pending.get((id(module), method))
            if not left or _shapes(args, kwargs) != _shapes(left[0].args, left[0].kwargs):
                raise RuntimeError(f"bench: the engine made a {kind} forward pass its recorded run did not make")
            return left.pop(0).result

        return recorded_output

    with _patched_forwards(engine, stub):
        yield
    if any(pending.values()):
        raise RuntimeError("bench: the engine made fewer forward passes than in its recorded run")
