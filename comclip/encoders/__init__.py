"""Frozen image–text models behind one protocol (:class:`Encoder`), and the backend table.

- :mod:`.base`: the protocol, shared batching, ``half_dtype``, the :class:`Backend` row type;
- :mod:`.open_clip`: any open_clip model; :mod:`.hf_clip`: transformers CLIP;
- :mod:`.slip`: SLIP release checkpoints (facebookresearch/SLIP), built as an open_clip model with
  a timm image tower;
- :mod:`.blip2`: BLIP-2 image–text retrieval (transformers), a *multi-query* encoder.

Each backend module holds its encoder, its loader and its row (``BACKEND``: how a spec loads, what
it downloads, whether it is random, what a user-named model means). :data:`BACKENDS` is the one
table: :mod:`comclip.loading` looks a spec's backend up there and never names one. A new backend
is one module and one row below (or :func:`register_backend` from your own code).
"""

from comclip.encoders import blip2, hf_clip, open_clip, slip
from comclip.encoders.base import (
    BACKENDS,
    Backend,
    BatchedEncoder,
    Encoder,
    get_backend,
    half_dtype,
    is_multi_query,
    register_backend,
    similarity,
)
from comclip.encoders.hf_clip import HFCLIPEncoder
from comclip.encoders.open_clip import OpenCLIPEncoder

for _row in (open_clip.BACKEND, hf_clip.BACKEND, slip.BACKEND, blip2.BACKEND):
    register_backend(_row)

__all__ = ["BACKENDS", "Backend", "BatchedEncoder", "Encoder", "HFCLIPEncoder", "OpenCLIPEncoder", "get_backend",
           "half_dtype", "is_multi_query", "register_backend", "similarity"]
