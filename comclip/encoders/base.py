"""The encoder protocol and the batching every backend shares.

Every backend returns float32 ``torch.Tensor`` rows on its device, runs under
``torch.inference_mode`` in batches, and uses half precision on CUDA. Text rows are always
L2-normalised ``(N, D)``. Image rows are L2-normalised ``(N, D)`` too, except for *multi-query*
encoders (BLIP-2, ``multi_query = True``): their image rows are the ``(N, Q, D_q)`` per-query
features before the model's projection, which is what ComCLIP composes; ``project_queries`` maps
them to the ``(…, Q, D)`` space of the text rows (see :mod:`comclip.formula`).

Two switches serve the official code's variants (``comclip.options``, docs/fidelity.md):
``normalise=False`` gives the raw outputs (before the L2 normalisation) of ``encode_pixels`` /
``encode_images`` / ``encode_texts``, and ``resize="squash"`` makes ``preprocess`` resize every
image to the model's square input (bicubic, aspect not kept) instead of its own resize + crop.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch
from PIL import Image

from comclip.errors import InputError, option_hint
from comclip.hub import Download
from comclip.options import RESIZES
from comclip.presets import EncoderSpec
from comclip.subimage import PixelGeometry


@runtime_checkable
class Encoder(Protocol):
    """What the engine needs from an image–text model."""

    name: str
    device: torch.device
    #: Temperature of the model's contrastive head (``exp`` of the learned log-scale).
    logit_scale: float
    #: Longest text, in tokens, the model reads (longer texts are truncated).
    context_length: int

    def preprocess(self, images: Sequence[Image.Image], resize: str = "model") -> torch.Tensor:
        """PIL images → model-ready pixel batch (on the encoder's device); ``resize``: :data:`RESIZES`."""
        ...

    def encode_pixels(self, pixels: torch.Tensor, normalise: bool = True) -> torch.Tensor:
        """Preprocessed pixel batch → normalised float32 embeddings ``(N, D)`` (multi-query
        encoders: per-query features ``(N, Q, D_q)`` before projection; ``normalise=False``: the
        raw outputs)."""
        ...

    def encode_images(self, images: Sequence[Image.Image], resize: str = "model", normalise: bool = True
                      ) -> torch.Tensor:
        """PIL images → image rows, as :meth:`encode_pixels`."""
        ...

    def encode_texts(self, texts: Sequence[str], normalise: bool = True) -> torch.Tensor:
        """Texts → normalised float32 embeddings ``(N, D)`` (``normalise=False``: the raw outputs)."""
        ...

    def count_tokens(self, text: str) -> int:
        """Tokens the text takes, start/end tokens included (compare with context_length)."""
        ...

    def compile(self) -> None:
        """Optionally ``torch.compile`` the hot path."""
        ...


def is_multi_query(encoder: object) -> bool:
    """Whether ``encoder`` yields ``(N, Q, D_q)`` per-query image rows (BLIP-2) instead of ``(N, D)``.

    Such an encoder also has ``project_queries(h: (…, Q, D_q)) -> (…, Q, D)``, the model's own
    (affine, unnormalised) image projection into the text space.
    """
    return bool(getattr(encoder, "multi_query", False))


def similarity(encoder: object, texts: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
    """The model's own image–text similarity ``(T, N)`` of text rows ``(T, D)`` and image rows: a
    dot product of normalised embeddings, or for multi-query encoders the max over queries of the
    cosine of the projected, normalised query vectors (BLIP-2's contrastive score)."""
    texts = texts.float()
    if not is_multi_query(encoder):
        return texts @ images.float().T
    projected = _normalise(encoder.project_queries(images))  # type: ignore[attr-defined]
    return torch.einsum("td,nqd->tnq", texts.to(projected.device), projected).amax(dim=-1)


def _normalise(x: torch.Tensor) -> torch.Tensor:
    x = x.float()
    return x / x.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def half_dtype(device: torch.device) -> torch.dtype:
    """fp16 on CUDA (the CLIP papers' inference precision), fp32 elsewhere: what an encoder is built in
    (``load_encoder`` then applies the spec's precision, :meth:`BatchedEncoder.use_dtype`)."""
    return torch.float16 if device.type == "cuda" else torch.float32


#: The torch dtype of each precision name (:func:`comclip.cpu.encoder_precision`).
DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


class BatchedEncoder(ABC):
    """Shared batching for the backends: subclasses implement the single-batch calls."""

    name: str
    device: torch.device
    dtype: torch.dtype
    batch_size: int = 64
    multi_query: bool = False
    model: torch.nn.Module
    #: Preprocessing geometry, when known: lets the engine build blackout sub-images on the device.
    pixel_geometry: PixelGeometry | None = None
    #: The model's own preprocessing already squashes to a square (BLIP-2): ``resize="squash"`` is it.
    squashes: bool = False

    @abstractmethod
    def _images_to_pixels(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """One batch, on the encoder's device."""

    @abstractmethod
    def _image_features(self, pixels: torch.Tensor) -> torch.Tensor:
        """One batch, on the encoder's device."""

    @abstractmethod
    def _text_features(self, texts: Sequence[str]) -> torch.Tensor:
        """One batch, on the encoder's device."""

    def preprocess(self, images: Sequence[Image.Image], resize: str = "model") -> torch.Tensor:
        if self._own_preprocessing(resize):
            return self._images_to_pixels(images).to(self.device, self.dtype, non_blocking=True)
        return self._squashed_pixels(images).to(self.device, self.dtype, non_blocking=True)

    def geometry(self, resize: str = "model") -> PixelGeometry | None:
        """The preprocessing geometry ``preprocess(…, resize)`` follows (None: not known)."""
        if self._own_preprocessing(resize):
            return self.pixel_geometry
        return dataclasses.replace(self.pixel_geometry, squash=True)  # type: ignore[arg-type]

    def _own_preprocessing(self, resize: str) -> bool:
        """Whether ``resize`` is the model's own preprocessing; refuses one this encoder cannot do."""
        if resize not in RESIZES:
            raise InputError(f"unknown resize {resize!r}; choose one of: {', '.join(RESIZES)}")
        if resize == "model" or self.squashes:
            return True
        if self.pixel_geometry is None:
            raise InputError(f"resize 'squash' needs a resize + centre-crop preprocessing to replace, and "
                             f"{self.name}'s is not one", hint=option_hint("resize", "model"))
        return False

    def _squashed_pixels(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """Each image resized to the model's square input (bicubic, aspect not kept), then the model's
        own normalisation, as the official ``comslip.py`` transform."""
        from torchvision import transforms as T

        g = self.pixel_geometry
        assert g is not None
        squash = T.Compose([T.Resize(g.crop, interpolation=T.InterpolationMode.BICUBIC), T.ToTensor(),
                            T.Normalize(g.mean, g.std)])
        return torch.stack([squash(im.convert("RGB")) for im in images])

    def _adopt(self, model: torch.nn.Module, *, name: str, device: torch.device, batch_size: int) -> None:
        """Common set-up: name, device, batch size; the model on the device in eval mode, in half
        precision on CUDA."""
        self.name, self.device, self.batch_size = name, device, batch_size
        self.dtype = half_dtype(device)
        self.model = model.to(device=device, dtype=self.dtype).eval()

    def use_dtype(self, dtype: torch.dtype) -> None:
        """Run in ``dtype`` from now on (the model's weights converted; pixels are cast to it)."""
        self.dtype = dtype
        self.model.to(dtype)

    #: Shape of one image row: ``(D,)``, or ``(Q, D_q)`` for a multi-query encoder.
    @property
    def image_row_shape(self) -> tuple[int, ...]:
        return (self.embed_dim,)

    def _image_rows(self, pixels: torch.Tensor, normalise: bool = True) -> torch.Tensor:
        """One batch of image rows: normalised embeddings, or the raw ones (multi-query encoders override)."""
        features = self._image_features(pixels)
        return _normalise(features) if normalise else features.float()

    @torch.inference_mode()
    def encode_pixels(self, pixels: torch.Tensor, normalise: bool = True) -> torch.Tensor:
        pixels = pixels.to(self.device, self.dtype)
        outs = [self._image_rows(pixels[i:i + self.batch_size], normalise)
                for i in range(0, pixels.shape[0], self.batch_size)]
        return torch.cat(outs) if outs else torch.empty(0, *self.image_row_shape, device=self.device)

    def encode_images(self, images: Sequence[Image.Image], resize: str = "model", normalise: bool = True
                      ) -> torch.Tensor:
        outs = [self.encode_pixels(self.preprocess(images[i:i + self.batch_size], resize), normalise)
                for i in range(0, len(images), self.batch_size)]
        return torch.cat(outs) if outs else torch.empty(0, *self.image_row_shape, device=self.device)

    @torch.inference_mode()
    def encode_texts(self, texts: Sequence[str], normalise: bool = True) -> torch.Tensor:
        outs = [_normalise(f) if normalise else f.float()
                for f in (self._text_features(texts[i:i + self.batch_size])
                          for i in range(0, len(texts), self.batch_size))]
        return torch.cat(outs) if outs else torch.empty(0, self.embed_dim, device=self.device)

    embed_dim: int


# -- the backend table -----------------------------------------------------------------------------

def _from_config(spec: EncoderSpec) -> bool:
    return spec.config is not None


@dataclass(frozen=True)
class Backend:
    """One family of image–text models, a row of :data:`BACKENDS`: each backend module defines its
    row (``BACKEND``) next to its encoder, so a new backend is one module and one row."""

    name: str
    #: ``(spec, device, label)`` → the encoder, named ``label``.
    load: Callable[[EncoderSpec, torch.device, str], Encoder]
    #: What loading a spec would download first (None: nothing — cached, a local file, or random).
    missing: Callable[[EncoderSpec], Download | None]
    #: What a model name means for this backend (the help of a "replace the model" option).
    takes: str
    #: Whether a spec has random weights (default: it is built from a model config).
    random: Callable[[EncoderSpec], bool] = _from_config
    #: The spec of a model a user names, with an optional pretrained tag (an InputError when the
    #: two do not fit); None: ``EncoderSpec(name, model)``, the tag unused.
    named: Callable[[str, str | None], EncoderSpec] | None = None
    #: The official code's model family (:data:`comclip.options.OFFICIAL_FAMILIES`): which official
    #: choices ``--official`` applies.
    family: str = "clip"

    def label(self, spec: EncoderSpec) -> str:
        """``backend:model[/pretrained]``, with `` (random)`` for random weights (results record it)."""
        return f"{spec.backend}:{spec.model}" + (f"/{spec.pretrained}" if spec.pretrained else "") \
            + (" (random)" if self.random(spec) else "")

    def spec(self, model: str, pretrained: str | None = None) -> EncoderSpec:
        return self.named(model, pretrained) if self.named else EncoderSpec(self.name, model)


#: The encoder backends by name (:mod:`comclip.encoders` registers the built-in ones).
BACKENDS: dict[str, Backend] = {}


def register_backend(backend: Backend) -> Backend:
    """Add (or replace) a backend in :data:`BACKENDS`."""
    BACKENDS[backend.name] = backend
    return backend


def get_backend(name: str) -> Backend:
    try:
        return BACKENDS[name]
    except KeyError:
        raise InputError(f"unknown encoder backend {name!r}; choose one of: {', '.join(BACKENDS)}") from None
