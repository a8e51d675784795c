"""The floor: the model forwards a ComCLIP run cannot avoid, at their best settings.

For the bench's inputs the necessary work is

- one detector pass per unique (image, phrase set) — each caption's unique normalised entity phrases,
  sorted, as the engine grounds them; captions with the same phrase set share it — derived here from
  the inputs' graphs, not from what the engine did;
- one image-encoder pass over the unique (sub-)images: the global images plus one row per distinct
  sub-image the groundings make (the rows the engine encoded, recorded during an untimed run);
- one text-encoder pass over the unique texts (captions and component texts, recorded likewise).

Each runs at its best settings, independently of the engine's: inputs already on the device
(detector pixels preprocessed, prompts tokenised, encoder pixels and tokens as recorded), all rows of
a kind in one forward on CUDA (halved until it fits in memory; the detector's equal-size images
only, as it cannot pad images), the detector in its own precision (bf16 autocast on CUDA), the
encoders in their CUDA half precision. On the CPU the detector batches up to :data:`CPU_DETECTOR_ROWS`
rows (batching does not speed up a CPU forward, so any size is as good) at its own precision (fp32, or
bf16 autocast on a CPU with native bf16). No
tokenising, preprocessing, box selection, sub-images or formula is timed.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from comclip.bench.inputs import BenchInputs
from comclip.bench.record import FORWARD_KINDS, ForwardCall, ForwardRecording, sync
from comclip.ground import canonical_phrases

if TYPE_CHECKING:
    from comclip.engine import ComCLIP

#: Most encoder rows in one forward on the CPU.
CPU_ENCODER_ROWS = 256
#: Most detector rows (images, or (image, prompt) units) in one forward on the CPU.
CPU_DETECTOR_ROWS = 4


@dataclass
class FloorCall:
    kind: str  # detector | image | text
    rows: int
    fn: Callable[[], Any] = field(repr=False)
    #: ``image``: a detector image part (rows are images, not (image, prompt) units).
    part: str = ""


@dataclass
class Floor:
    """The necessary forwards, ready to run."""

    device: torch.device
    calls: list[FloorCall] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """Rows (detector: (image, prompt) units) and forwards per kind."""
        out: dict[str, int] = {}
        for kind in FORWARD_KINDS:
            mine = [c for c in self.calls if c.kind == kind]
            out[f"{kind}_rows"] = sum(c.rows for c in mine if c.part != "image")
            out[f"{kind}_forwards"] = len(mine)
        out["detector_image_rows"] = sum(c.rows for c in self.calls if c.part == "image")
        return out

    def run(self) -> dict[str, float]:
        """Run every forward once; seconds per kind."""
        seconds: dict[str, float] = {}
        with torch.inference_mode():
            for kind in FORWARD_KINDS:
                sync(self.device)
                start = time.perf_counter()
                for call in self.calls:
                    if call.kind == kind:
                        call.fn()
                sync(self.device)
                seconds[kind] = time.perf_counter() - start
        return seconds


def necessary_units(inputs: BenchInputs) -> list[tuple[int, tuple[str, ...]]]:
    """Unique (image index, phrase set) pairs: one detector pass each."""
    units = {(i, tuple(canonical_phrases([e.phrase for e in g.entities])))
             for i, graphs in enumerate(inputs.graphs) for g in graphs}
    return sorted(u for u in units if u[1])


def _largest_batch(make: Callable[[int], list[FloorCall]], rows: int, cuda: bool) -> list[FloorCall]:
    """The calls for the largest batch (from ``rows`` down, halving) whose first forward fits on the GPU."""
    batch = max(1, rows)
    while True:
        calls = make(batch)
        if not cuda or not calls:
            return calls
        try:
            with torch.inference_mode():
                calls[0].fn()
            return calls
        except torch.cuda.OutOfMemoryError:
            if batch == 1:
                raise
            torch.cuda.empty_cache()
            batch = (batch + 1) // 2


def detector_calls(detector: Any, inputs: BenchInputs) -> list[FloorCall]:
    """The necessary detector forwards, inputs prepared on the device: with the ``torch`` backend one
    image part per unique image (equal-size images batched) and one text + fusion part per batch of
    equal-size (image, prompt) units; with ``transformers`` one model forward per batch of units."""
    device = detector.device
    cuda = device.type == "cuda"
    units = [(i, tuple(chunk)) for i, phrases in necessary_units(inputs) for chunk in detector.prompts(phrases)]
    pixels = detector.preprocess([im.image for im in inputs.images])
    groups: dict[tuple[int, ...], list[tuple[int, tuple[str, ...]]]] = {}
    for unit in units:
        groups.setdefault(tuple(pixels[unit[0]].shape), []).append(unit)
    split = getattr(detector, "backend", None) == "torch"
    calls: list[FloorCall] = []
    for members in groups.values():
        features: dict[int, Any] = {}
        if split:
            images = sorted({i for i, _ in members})
            with torch.inference_mode():  # the fusion calls' inputs (untimed here; timed as image calls)
                features = {i: detector.image_forward(pixels[i][None]) for i in images}

            def make_images(batch: int, images: list = images) -> list[FloorCall]:
                return [_image_call(detector, [pixels[i] for i in images[k:k + batch]])
                        for k in range(0, len(images), batch)]

            calls += _largest_batch(make_images, len(images) if cuda else CPU_DETECTOR_ROWS, cuda)

        def make(batch: int, members: list = members, features: dict = features) -> list[FloorCall]:
            return [(_fusion_call(detector, [features[i] for i, _ in chunk], [p for _, p in chunk]) if split
                     else _model_call(detector, [pixels[i] for i, _ in chunk], [p for _, p in chunk]))
                    for chunk in (members[k:k + batch] for k in range(0, len(members), batch))]

        calls += _largest_batch(make, len(members) if cuda else CPU_DETECTOR_ROWS, cuda)
    return calls


def _tokens(detector: Any, prompts: Sequence[tuple[str, ...]]) -> dict[str, torch.Tensor]:
    from comclip.ground import build_prompt

    enc = detector.processor.tokenizer([build_prompt(list(p))[0] for p in prompts], padding="longest",
                                       truncation=True, max_length=detector.max_text_len, return_tensors="pt")
    return {k: v.to(detector.device) for k, v in enc.items()}


def _image_call(detector: Any, pixels: list[torch.Tensor]) -> FloorCall:
    values = torch.stack(pixels)
    return FloorCall("detector", len(pixels), lambda: detector.image_forward(values), part="image")


def _fusion_call(detector: Any, vision: list[Any], prompts: Sequence[tuple[str, ...]]) -> FloorCall:
    from comclip.dino import VisionFeatures

    rows, enc = VisionFeatures.cat(vision), _tokens(detector, prompts)
    return FloorCall("detector", len(prompts), lambda: detector.fusion_forward(rows, **enc))


def _model_call(detector: Any, pixels: list[torch.Tensor], prompts: Sequence[tuple[str, ...]]) -> FloorCall:
    values = torch.stack(pixels)
    kwargs = {"pixel_values": values, "pixel_mask": torch.ones(values.shape[0], *values.shape[2:],
                                                               dtype=torch.long, device=values.device),
              **_tokens(detector, prompts)}

    def run() -> Any:
        with detector.autocast():
            return detector.model(**kwargs)

    return FloorCall("detector", len(prompts), run)


def _mergeable(calls: Sequence[ForwardCall]) -> bool:
    """Same method, same argument structure, tensors that differ only in their first dimension."""
    first = calls[0]
    for c in calls[1:]:
        if (c.module is not first.module or c.method != first.method or len(c.args) != len(first.args)
                or set(c.kwargs) != set(first.kwargs)):
            return False
        pairs = list(zip(c.args, first.args, strict=True)) + [(c.kwargs[k], first.kwargs[k]) for k in first.kwargs]
        for a, b in pairs:
            if isinstance(a, torch.Tensor) != isinstance(b, torch.Tensor):
                return False
            if isinstance(a, torch.Tensor) and (a.dtype != b.dtype or (a.shape[1:] != b.shape[1:]
                                                                       and not (_ids(a) and _ids(b)))):
                return False
            if not isinstance(a, torch.Tensor) and a != b:
                return False
    return True


def _ids(t: torch.Tensor) -> bool:
    """Token ids (or their mask): 2-D integers, which merge by padding with 0 on the right — a text
    tower that stops at its batch's longest caption (open_clip) is given ids of varying width. The
    merged forward runs at the widest call's width: for text the floor is then one forward, not a
    strict lower bound on the width (the text tower is a small share of a request)."""
    return t.dim() == 2 and not t.dtype.is_floating_point


def _cat(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    width = max(t.shape[-1] for t in tensors)
    if all(_ids(t) for t in tensors) and any(t.shape[-1] != width for t in tensors):
        tensors = [torch.nn.functional.pad(t, (0, width - t.shape[-1])) for t in tensors]
    return torch.cat(list(tensors))


@contextlib.contextmanager
def _autocast(state: tuple[tuple[str, torch.dtype], ...]) -> Iterator[None]:
    with contextlib.ExitStack() as stack:
        for device_type, dtype in state:
            stack.enter_context(torch.autocast(device_type, dtype=dtype))
        yield


def encoder_calls(kind: str, recorded: Sequence[ForwardCall], cuda: bool) -> list[FloorCall]:
    """The recorded encoder forwards of one kind merged into as few forwards as fit."""
    if not recorded:
        return []
    if not _mergeable(recorded):
        return [FloorCall(kind, int(c.args[0].shape[0]) if c.args and isinstance(c.args[0], torch.Tensor) else 1, c)
                for c in recorded]
    first = recorded[0]
    args = [_cat([c.args[k] for c in recorded]) if isinstance(a, torch.Tensor) else a
            for k, a in enumerate(first.args)]
    kwargs = {name: _cat([c.kwargs[name] for c in recorded]) if isinstance(v, torch.Tensor) else v
              for name, v in first.kwargs.items()}
    tensors = [a for a in [*args, *kwargs.values()] if isinstance(a, torch.Tensor)]
    rows = int(tensors[0].shape[0]) if tensors else len(recorded)
    fn = getattr(first.module, first.method) if first.method != "forward" else first.module

    def make(batch: int) -> list[FloorCall]:
        def one(lo: int) -> FloorCall:
            a = [x[lo:lo + batch] if isinstance(x, torch.Tensor) else x for x in args]
            kw = {k: v[lo:lo + batch] if isinstance(v, torch.Tensor) else v for k, v in kwargs.items()}

            def run() -> Any:
                with _autocast(first.autocast):
                    return fn(*a, **kw)

            return FloorCall(kind, min(batch, rows - lo), run)

        return [one(lo) for lo in range(0, rows, batch)]

    return _largest_batch(make, rows if cuda else min(rows, CPU_ENCODER_ROWS), cuda)


def build_floor(engine: ComCLIP, inputs: BenchInputs, recording: ForwardRecording) -> Floor:
    """The floor of one engine run on ``inputs``; ``recording`` holds that run's encoder forwards."""
    device = torch.device(engine.encoder.device)
    cuda = device.type == "cuda"
    floor = Floor(device, detector_calls(engine.detector, inputs))
    for kind in ("image", "text"):
        floor.calls += encoder_calls(kind, [c for c in recording.calls if c.kind == kind], cuda)
    return floor
