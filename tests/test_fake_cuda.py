"""The CUDA path, checked without a GPU: every device stage runs on fake ``cuda`` tensors.

Under torch's ``FakeTensorMode`` a tensor reports its device (``cuda:0``), shape and dtype but holds
no data, so the engine's own code — loading for CUDA (fp16 encoders, the detector on the device),
``ComCLIP.match`` end to end (the detector's preprocessing, image / text / fusion parts and heads
under bf16 autocast, or transformers' own forward; every encoder backend's towers; blackout
sub-images; the composition) — runs on a machine without a GPU. :class:`DeviceTrace` sets the rules:

- **CPU work runs for real.** A call with no fake tensor among its inputs runs outside the fake
  mode: tokenizers, PIL → uint8, the detector's box selection and NMS, the result's numpy arrays.
- **Moving to the device gives a fake tensor.** ``Tensor.to(cuda)`` / ``.cuda()`` of a real tensor
  and a factory given ``device=cuda`` (``torch.tensor``, ``zeros``, ``arange``, …) yield a fake
  ``cuda`` tensor of the same shape and dtype; ``nn.Module.to`` therefore fakes a model's weights.
- **Mixing devices fails as on a GPU.** A real CPU tensor (not 0-dim) in an op with a cuda tensor
  raises ``FakeTensorDeviceMismatchError`` (a convolution: torch's own "Expected all tensors to be
  on the same device", as on a GPU).
- **Host syncs are listed.** Reading a cuda tensor on the host (``item``, ``tolist``, ``numpy``,
  ``cpu``, ``to("cpu")``, ``bool``/``int``/``float``, ``nonzero``, ``unique``, …) and a *blocking*
  copy to the device (``torch.tensor(data, device=cuda)``, ``.to(cuda)`` without ``non_blocking``:
  PyTorch ends it with a stream synchronisation, so the host waits for all queued device work) are
  syncs. Each is allowed only at the call sites in :data:`SYNCS` (by function) — a read returns
  stand-in data there (seeded random, the right shape and dtype) so the CPU side goes on — and
  anywhere else raises :class:`HostSyncError`. The match tests also compare every sync's count with
  the expected one. A data-dependent op that slips past (a fake tensor asked for its values) raises
  torch's own ``DataDependentOutputException``.
- **autocast as on CUDA.** torch turns ``autocast("cuda")`` off when no GPU exists; the trace
  patches its two availability checks so that autocast casts fake tensors' dtypes as on a GPU.

The syncs the engine means to have are :data:`INTENDED` (the detector's outputs, read once per
forward for thresholds, box selection and NMS on the host; the composed numbers in one transfer)
and :data:`LOADING`; :data:`UPSTREAM` are transformers' own, inside Grounding DINO's forward, counted
per forward (a new transformers version that moves them fails here, naming the new call site).
The ``test_meta_*`` tests plant device bugs — a tensor made on the CPU, an unlisted read, a blocking
copy — and show each is caught. The whole file runs in about 20 s on a 2-core CPU.

What this cannot check: numbers (fake tensors have none — tests/test_cuda.py compares GPU numbers
with the CPU's where a GPU exists), kernels that exist for the CPU only, and speed.
"""

from __future__ import annotations

import contextlib
import sys
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import pytest
import torch
from torch._subclasses.fake_tensor import FakeTensor, FakeTensorDeviceMismatchError, FakeTensorMode
from torch._subclasses.fake_tensor import unset_fake_temporarily as real_mode
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_leaves

from comclip.bench.count import DetectorCount, count_detector

from .conftest import EXAMPLE_IMAGE, ROOT

CUDA = torch.device("cuda", 0)
_SWAP_TENSORS = torch.utils.swap_tensors
_TORCH = str(Path(torch.__file__).parent)
_SITE_PACKAGES = Path(torch.__file__).parent.parent
T = torch.Tensor
#: Host reads of a device tensor, by the name they are recorded under.
_READS = {T.item: "item", T.tolist: "tolist", T.numpy: "numpy", T.cpu: "cpu", T.__bool__: "bool", T.__int__: "int",
          T.__float__: "float", T.__index__: "index", T.__array__: "array", T.nonzero: "nonzero",
          torch.nonzero: "nonzero", T.unique: "unique", torch.unique: "unique", T.masked_select: "masked_select",
          torch.masked_select: "masked_select", torch.equal: "equal", torch.is_nonzero: "bool"}
_FACTORIES = {torch.tensor, torch.as_tensor, torch.zeros, torch.ones, torch.full, torch.empty, torch.arange,
              torch.eye, torch.rand, torch.randn, torch.randint, torch.linspace, torch.empty_strided,
              torch.scalar_tensor}
#: Factories that copy host data to the device, blocking (the others fill on the device).
_COPIES = {torch.tensor, torch.as_tensor}

#: The syncs the engine means to have on the CUDA path, by call site (``file:function``).
INTENDED = {
    "comclip/ground.py:GroundingDINO._per_row":
        "the detector's token probabilities and boxes, read once per forward (either backend): thresholds, box "
        "selection and NMS run on the host",
    "comclip/engine.py:compose_captions": "every caption's composed numbers, in one transfer",
    "comclip/engine.py:ComCLIP.match_batch":
        "the image and text embeddings a result carries (after the numbers' transfer: nothing left to wait for)",
}
#: Syncs once per model load: the weights' copy to the device, and reading the temperature.
LOADING = {
    "comclip/ground.py:GroundingDINO.__init__": "the detector's weights to the device",
    "comclip/encoders/base.py:BatchedEncoder._adopt": "an encoder's weights to the device",
    "comclip/encoders/blip2.py:BLIP2Encoder.__init__": "BLIP-2's weights to the device",
    "transformers/modeling_utils.py:PreTrainedModel.to": "a transformers model's weights to the device",
    "comclip/encoders/open_clip.py:OpenCLIPEncoder.__init__": "logit_scale, read once",
    "comclip/encoders/hf_clip.py:HFCLIPEncoder.__init__": "logit_scale, read once",
}
#: Syncs inside transformers' Grounding DINO, which the engine calls as it is (counted per forward).
CHECK = "transformers/utils/import_utils.py:torch_compilable_check"
TEXT_MASKS = ("transformers/models/grounding_dino/modeling_grounding_dino.py:"
              "generate_masks_with_special_tokens_and_transfer_map")
MODEL_FORWARD = "transformers/models/grounding_dino/modeling_grounding_dino.py:GroundingDinoModel.forward"
UPSTREAM = {
    CHECK: "a shape check in every deformable attention layer (an item() per layer and forward; "
           "TRANSFORMERS_DISABLE_TORCH_CHECK=1 turns it off)",
    TEXT_MASKS: "torch.tensor(seq_len, device=...) in the text masks: one blocking copy per text part (a model "
                "forward has one)",
    MODEL_FORWARD: "torch.as_tensor(spatial_shapes_list, device=...): one blocking copy per forward (transformers "
                   "backend only)",
}
#: Every call site where a sync is allowed; any other raises :class:`HostSyncError`.
SYNCS = {**INTENDED, **LOADING, **UPSTREAM}


class HostSyncError(AssertionError):
    """A read of a device tensor, or a blocking copy to it, at a call site not in :data:`SYNCS`."""


@dataclass(frozen=True)
class Sync:
    site: str
    kind: str  # a read ("cpu", "item", ...) or "upload" (a blocking copy to the device)


def _site() -> str:
    """``file:function`` of the innermost caller outside torch and the trace itself (comprehensions
    and nested functions count as the function they are in)."""
    frame = sys._getframe(1)
    while frame is not None and (frame.f_code.co_filename.startswith(_TORCH) or frame.f_code in _TRACE_CODE):
        frame = frame.f_back
    assert frame is not None
    path = Path(frame.f_code.co_filename)
    for base in (_SITE_PACKAGES, ROOT):  # site-packages first: a venv may live inside the checkout
        if path.is_relative_to(base):
            path = path.relative_to(base)
            break
    return f"{path.as_posix()}:{frame.f_code.co_qualname.split('.<locals>.')[0]}"


def _on_cuda(x: object) -> bool:
    return isinstance(x, FakeTensor) and x.device.type == "cuda"


class DeviceTrace(TorchFunctionMode):
    """Run code as if on a CUDA GPU (see the module docstring); ``syncs`` lists every host sync."""

    def __init__(self, allowed: Mapping[str, str] = SYNCS) -> None:
        super().__init__()
        self.fake = FakeTensorMode(allow_non_fake_inputs=True)
        self.allowed = allowed
        self.syncs: list[Sync] = []
        self._rng = torch.Generator().manual_seed(0)
        self._patches = contextlib.ExitStack()

    def __enter__(self) -> DeviceTrace:
        self._patches.enter_context(mock.patch("torch.cuda.amp.common.amp_definitely_not_available",
                                               return_value=False))
        self._patches.enter_context(mock.patch("torch.cuda.is_bf16_supported", return_value=True))
        self._patches.enter_context(mock.patch("torch.utils.swap_tensors", self._swap_tensors))
        self._patches.enter_context(self.fake)
        return super().__enter__()

    def __exit__(self, *exc: object) -> None:
        super().__exit__(*exc)
        self._patches.__exit__(*exc)

    def _swap_tensors(self, t1: torch.Tensor, t2: torch.Tensor) -> None:
        """``nn.Module.to`` swaps a fake parameter for its converted copy, which fails while anything
        holds a weak reference to either — the fake mode's memo does: drop them from the memo first
        (BLIP-2 converts its vision tower a second time, to fp16 on the device)."""
        memo = self.fake.fake_tensor_converter.tensor_memo
        for key in [k for k, v in memo.items() if v is t1 or v is t2]:
            del memo[key]
        _SWAP_TENSORS(t1, t2)

    def counts(self) -> Counter[tuple[str, str]]:
        return Counter((s.site, s.kind) for s in self.syncs)

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        kwargs = kwargs or {}
        fake = any(isinstance(a, FakeTensor) for a in tree_leaves((args, kwargs)))
        kind = _READS.get(func)
        if func is T.to or func is T.cuda:
            device, dtype, non_blocking = _destination(func, args, kwargs)
            if device is not None and device.type == "cuda" and not isinstance(args[0], FakeTensor):
                return self._upload(args[0], dtype, non_blocking)
            if device is not None and device.type == "cpu":
                kind = "cpu"
        if kind is not None and args and _on_cuda(args[0]):
            return self._read(kind, func, args, kwargs)
        if fake:
            return func(*args, **kwargs)
        device = kwargs.get("device")
        if func in _FACTORIES and device is not None and torch.device(device).type == "cuda":
            with real_mode():
                made = func(*args, **{**kwargs, "device": "cpu"})
            return self._upload(made, None, func not in _COPIES)
        with real_mode():
            return func(*args, **kwargs)

    def _sync(self, kind: str) -> None:
        site = _site()
        self.syncs.append(Sync(site, kind))
        if site not in self.allowed:
            what = "a blocking copy to" if kind == "upload" else f"{kind} of"
            raise HostSyncError(f"an unlisted host sync: {what} a cuda tensor in {site}")

    def _upload(self, real: torch.Tensor, dtype: torch.dtype | None, non_blocking: bool) -> torch.Tensor:
        if not non_blocking:
            self._sync("upload")
        return self.fake.from_tensor(real).to(CUDA, dtype or real.dtype)

    def _read(self, kind: str, func, args, kwargs):  # noqa: ANN001
        self._sync(kind)
        with real_mode():
            return func(self._stand_in(args[0]), *args[1:], **kwargs)

    def _stand_in(self, t: torch.Tensor) -> torch.Tensor:
        """Data for a fake tensor read on the host: seeded random floats, true booleans, zero integers."""
        with real_mode():
            if t.dtype.is_floating_point:
                return torch.rand(t.shape, generator=self._rng).to(t.dtype)
            if t.dtype == torch.bool:
                return torch.ones(t.shape, dtype=torch.bool)
            return torch.zeros(t.shape, dtype=t.dtype)


def _destination(func, args, kwargs) -> tuple[torch.device | None, torch.dtype | None, bool]:  # noqa: ANN001
    """Where ``Tensor.to`` / ``Tensor.cuda`` sends a tensor: (device or None, dtype or None, non_blocking)."""
    if func is T.cuda:
        return CUDA, None, bool(kwargs.get("non_blocking", False))
    with real_mode():
        device, dtype, non_blocking, _ = torch._C._nn._parse_to(*args[1:], **kwargs)
    if len(args) > 1 and isinstance(args[1], torch.Tensor):
        dtype = args[1].dtype
    return (torch.device(device) if device is not None else None), dtype, bool(non_blocking)


#: The trace's own frames, skipped when naming a sync's call site.
_TRACE_CODE = {f.__code__ for f in (DeviceTrace.__torch_function__, DeviceTrace._sync, DeviceTrace._upload,
                                    DeviceTrace._read, _site)}


# -- building the engine for cuda, and what a match must sync ------------------------------------------

CAPTIONS = ["a mug in some grass", "some grass in a mug"]


def cuda_engine(encoder: object | None = None, backend: str = "torch", precision: str = "auto"):
    """The tiny preset's models loaded for ``cuda`` by the engine's own loaders (inside a trace), the
    detector with ``backend`` and ``precision``."""
    from comclip.engine import ComCLIP
    from comclip.loading import load_detector, load_encoder
    from comclip.options import Options
    from comclip.presets import get_preset

    spec = get_preset("tiny")
    enc = encoder if encoder is not None else load_encoder(spec.encoder, CUDA)
    detector = load_detector(spec.detector, CUDA).replace(backend=backend, precision=precision)
    return ComCLIP(enc, detector, Options.from_mapping({"parser": "rules"}), preset=spec)


def expected_syncs(detector: object, counted: DetectorCount) -> Counter[tuple[str, str]]:
    """Every sync of one ``match`` call (one image) whose detector ran the forwards ``counted``."""
    cfg = detector.model.config  # type: ignore[attr-defined]
    transformers = detector.backend == "transformers"  # type: ignore[attr-defined]
    forwards = counted.fusions + counted.model_forwards  # each gives token probabilities and boxes
    expected = Counter({("comclip/ground.py:GroundingDINO._per_row", "cpu"): 2 * forwards,
                        (CHECK, "item"): (cfg.encoder_layers + cfg.decoder_layers) * forwards,
                        (TEXT_MASKS, "upload"): counted.text_parts + counted.model_forwards,
                        ("comclip/engine.py:compose_captions", "cpu"): 1,
                        ("comclip/engine.py:ComCLIP.match_batch", "cpu"): 2})  # image and text embeddings
    if transformers:
        expected[(MODEL_FORWARD, "upload")] = forwards
    return expected


class Outputs:
    """Records what wrapped callables return (a spy on the stages of a match)."""

    def __init__(self) -> None:
        self.seen: dict[str, list[object]] = {}

    def wrap(self, name: str, func: Callable[..., object]) -> Callable[..., object]:
        def spy(*args: object, **kwargs: object) -> object:
            out = func(*args, **kwargs)
            self.seen.setdefault(name, []).append((args, out))
            return out
        return spy

    def tensors(self, name: str, part: int = 1) -> list[torch.Tensor]:
        """Every tensor among the recorded calls' arguments (``part=0``) or results (``part=1``)."""
        assert self.seen.get(name), f"{name} was not called"
        leaves = tree_leaves([call[part] for call in self.seen[name]])
        leaves += [getattr(x, f) for x in leaves if hasattr(x, "__dataclass_fields__") for f in x.__dataclass_fields__]
        return [t for t in leaves if isinstance(t, torch.Tensor)]


def run_match(trace: DeviceTrace, engine) -> tuple[object, DetectorCount]:
    """``engine.match`` of the example image, caches emptied, with the syncs counted from a clean
    slate; returns (result, the detector's forwards counted)."""
    engine.clear_caches()
    trace.syncs.clear()
    with count_detector(engine.detector) as counted:
        result = engine.match(EXAMPLE_IMAGE, CAPTIONS, box_threshold=0.0, text_threshold=0.0)
    return result, counted


@pytest.fixture
def trace(tiny_engine) -> Iterator[DeviceTrace]:
    """A trace to run in; the tiny detector is built and saved (for real) before it starts."""
    with DeviceTrace() as t:
        yield t


# -- the engine on cuda ----------------------------------------------------------------------------------

@pytest.mark.parametrize("backend, precision", [("torch", "auto"), ("transformers", "auto"), ("torch", "fp32")])
def test_match_runs_on_cuda_with_only_the_listed_host_syncs(trace, monkeypatch, backend, precision):
    from comclip import dino, subimage
    from comclip import engine as engine_module

    engine = cuda_engine(backend=backend, precision=precision)
    assert {p.device for p in engine.encoder.model.parameters()} == {CUDA}
    assert {p.dtype for p in engine.encoder.model.parameters()} == {torch.float16}
    assert {p.device for p in engine.detector.model.parameters()} == {CUDA}
    autocast = torch.bfloat16 if precision == "auto" else None  # `auto` is bf16 autocast on CUDA
    assert engine.detector.autocast_dtype == autocast
    spy = Outputs()
    for name in ("preprocess", "image_forward", "fuse"):
        monkeypatch.setattr(engine.detector, name, spy.wrap(name, getattr(engine.detector, name)))
    monkeypatch.setattr(engine.detector.model, "forward", spy.wrap("model", engine.detector.model.forward))
    monkeypatch.setattr(engine.encoder, "encode_pixels", spy.wrap("encode_pixels", engine.encoder.encode_pixels))
    for module, name in ((engine_module, "compose_batch"), (dino, "text_part"), (subimage, "blackout_pixels")):
        monkeypatch.setattr(module, name, spy.wrap(name, getattr(module, name)))
    linear_dtypes = set()
    for m in engine.detector.model.modules():
        if isinstance(m, torch.nn.Linear):
            m.register_forward_hook(lambda module, args, out: linear_dtypes.add(out.dtype))

    result, counted = run_match(trace, engine)

    assert counted.fusions + counted.model_forwards >= 1
    assert trace.counts() == expected_syncs(engine.detector, counted)
    assert any(c.grounded for cap in result.captions for c in cap.components)  # blackout sub-images were made
    # Every stage ran on the device: detector pixels (fp32), its parts or forward under bf16 autocast (every
    # Linear layer's output is bf16; fp32 asked for, fp32), the blacked-out sub-images and the encoder's
    # pixels (fp16) and embeddings (fp32), the composition's inputs.
    assert {(t.device, t.dtype) for t in spy.tensors("preprocess")} == {(CUDA, torch.float32)}
    assert linear_dtypes == {autocast or torch.float32}
    assert {(t.device, t.dtype) for t in spy.tensors("blackout_pixels")} == {(CUDA, torch.float16)}
    if backend == "torch":
        assert {t.device for name in ("image_forward", "text_part", "fuse")
                for t in spy.tensors(name)} == {CUDA}
        assert "model" not in spy.seen
    else:
        assert {t.device for t in spy.tensors("model")} == {CUDA}
        assert "image_forward" not in spy.seen
    assert {(t.device, t.dtype) for t in spy.tensors("encode_pixels", part=0)} == {(CUDA, torch.float16)}
    assert {(t.device, t.dtype) for t in spy.tensors("encode_pixels")} == {(CUDA, torch.float32)}
    assert {t.device for t in spy.tensors("compose_batch", part=0)} == {CUDA}
    assert len(result.captions) == 2


def _hf_clip(device: torch.device):
    """A tiny random transformers CLIP (the one tests/test_encoders.py checks) on ``device``."""
    from .test_encoders import tiny_hf_clip

    return tiny_hf_clip(device)


def _slip(device: torch.device, folder: Path):
    """A tiny random SLIP release file (tests/test_backbones_slip.py's) as ``load_slip_encoder`` makes
    it, for ``device``. The model is read before the trace starts: building it on the meta device
    makes parameters in a way the fake mode refuses."""
    from comclip.encoders.open_clip import OpenCLIPEncoder
    from comclip.encoders.slip import SLIPTokenizer, build_from_checkpoint, slip_transform

    from .test_backbones_slip import write_tiny_checkpoint

    write_tiny_checkpoint(folder / "slip_tiny.pt")
    model, geom = build_from_checkpoint(folder / "slip_tiny.pt")
    return lambda: OpenCLIPEncoder(model, slip_transform(geom.image_size), SLIPTokenizer(geom.context_length),
                                   name="slip:slip_tiny.pt", device=device)


def _blip2(device: torch.device):
    from comclip.loading import load_encoder
    from comclip.presets import get_preset

    return load_encoder(get_preset("tiny-blip2").encoder, device)


@pytest.mark.parametrize("backbone", ["hf_clip", "slip", "blip2"])
def test_every_encoder_backend_runs_on_cuda(tiny_engine, monkeypatch, tmp_path, backbone):
    """Each backend's towers (and BLIP-2's query projection in the composition) on the device, in
    half precision where the backend uses it, with no sync but the listed ones."""
    if backbone == "slip":
        make = _slip(CUDA, tmp_path)  # the checkpoint is read before the trace starts
    else:
        make = {"hf_clip": lambda: _hf_clip(CUDA), "blip2": lambda: _blip2(CUDA)}[backbone]
    with DeviceTrace() as trace:
        _check_encoder_on_cuda(trace, monkeypatch, make(), backbone)


def _check_encoder_on_cuda(trace: DeviceTrace, monkeypatch: pytest.MonkeyPatch, encoder, backbone: str) -> None:
    engine = cuda_engine(encoder=encoder)
    spy = Outputs()
    for name in ("_image_features", "_text_features"):
        monkeypatch.setattr(encoder, name, spy.wrap(name, getattr(encoder, name)))
    result, counted = run_match(trace, engine)
    assert trace.counts() == expected_syncs(engine.detector, counted)
    assert {(t.device, t.dtype) for t in spy.tensors("_image_features", part=0)} == {(CUDA, torch.float16)}
    assert {t.device for name in ("_image_features", "_text_features") for t in spy.tensors(name)} == {CUDA}
    if backbone == "blip2":  # the vision tower in fp16; the Q-Former and the projections stay fp32
        assert {p.dtype for p in encoder.model.vision_model.parameters()} == {torch.float16}
        assert {p.dtype for p in encoder.model.qformer.parameters()} == {torch.float32}
        assert spy.tensors("_image_features")[0].shape[1:] == (encoder.num_queries, encoder.query_dim)
    else:
        assert {p.dtype for p in encoder.model.parameters()} == {torch.float16}
    assert any(c.grounded for cap in result.captions for c in cap.components)


# -- the checks can fail ----------------------------------------------------------------------------------

def test_meta_a_cpu_tensor_beside_a_cuda_one_fails_and_autocast_casts(trace):
    x = torch.ones(2, 3, device="cuda")
    with pytest.raises(FakeTensorDeviceMismatchError):
        x + torch.ones(2, 3)  # noqa: B018
    assert (x * torch.tensor(2.0)).device == CUDA  # a 0-dim CPU tensor is a scalar, as on a GPU
    with torch.autocast("cuda", dtype=torch.bfloat16):
        assert (x @ x.T).dtype == torch.bfloat16
    assert (x @ x.T).dtype == torch.float32


def test_meta_tensors_left_on_the_cpu_are_caught(trace, monkeypatch):
    """Device bugs planted in the engine: the blackout's constants made on the CPU; the detector's
    pixels made on the CPU beside its cuda weights."""
    from comclip import subimage
    from comclip.ground import GroundingDINO, preprocess_images

    def constants_on_the_cpu(global_pixels, masks, geometry):
        mean, std = torch.tensor(geometry.mean), torch.tensor(geometry.std)
        black = (-mean / std)[:, None, None]
        return (black + masks[:, None] * (global_pixels.float() - black)).to(global_pixels.dtype)

    def pixels_on_the_cpu(self, images):
        return preprocess_images(images, self.processor.image_processor, torch.device("cpu"))

    engine = cuda_engine()
    with monkeypatch.context() as m:
        m.setattr(subimage, "blackout_pixels", constants_on_the_cpu)
        with pytest.raises(FakeTensorDeviceMismatchError):
            run_match(trace, engine)
    # The Swin backbone's first conv finds it (torch's own check, worded as on a GPU); under bf16
    # autocast it would first complain of the dtype, as on a GPU too.
    engine.detector = engine.detector.replace(precision="fp32")
    monkeypatch.setattr(GroundingDINO, "preprocess", pixels_on_the_cpu)
    with pytest.raises(RuntimeError, match="Expected all tensors to be on the same device"):
        run_match(trace, engine)


def test_meta_an_unlisted_read_is_caught(tiny_engine):
    """The composition's one transfer, struck from the list, fails the match that makes it; a read
    here (this test's own call site) fails too."""
    allowed = {site: why for site, why in SYNCS.items() if site != "comclip/engine.py:compose_captions"}
    with DeviceTrace(allowed) as trace:
        engine = cuda_engine()
        with pytest.raises(HostSyncError, match="cpu of a cuda tensor in comclip/engine.py:compose_captions"):
            run_match(trace, engine)
        with pytest.raises(HostSyncError, match="item of a cuda tensor in tests/test_fake_cuda.py:test_meta_an_"):
            torch.zeros((), device="cuda").item()


def test_meta_a_blocking_copy_to_the_device_is_caught(trace, monkeypatch):
    """A blocking upload planted before the composition (as ``torch.tensor(..., device=dev)`` was
    there before) fails; the same copy with ``non_blocking=True`` is no sync."""
    from comclip import engine as engine_module

    compose = engine_module.compose_captions

    def blocking(plans, text_row, image_emb, *args, **kwargs):
        torch.tensor([p.item for p in plans], dtype=torch.long, device=image_emb.device)
        return compose(plans, text_row, image_emb, *args, **kwargs)

    def non_blocking(plans, text_row, image_emb, *args, **kwargs):
        torch.tensor([p.item for p in plans], dtype=torch.long).to(image_emb.device, non_blocking=True)
        return compose(plans, text_row, image_emb, *args, **kwargs)

    engine = cuda_engine()
    monkeypatch.setattr(engine_module, "compose_captions", non_blocking)
    result, counted = run_match(trace, engine)
    assert trace.counts() == expected_syncs(engine.detector, counted)
    monkeypatch.setattr(engine_module, "compose_captions", blocking)
    with pytest.raises(HostSyncError, match="blocking copy to a cuda tensor in tests/test_fake_cuda.py:test_meta_a_"):
        run_match(trace, engine)
