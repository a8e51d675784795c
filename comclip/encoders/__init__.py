"""Frozen image–text models behind one protocol (:class:`Encoder`).

- :mod:`.base`: the protocol, shared batching, ``half_dtype``;
- :mod:`.open_clip`: any open_clip model; :mod:`.hf_clip`: transformers CLIP;
- :mod:`.slip`: SLIP release checkpoints (facebookresearch/SLIP), built as an open_clip model with
  a timm image tower;
- :mod:`.blip2`: BLIP-2 image–text retrieval (transformers), a *multi-query* encoder.

Each backend module also holds its loader; :mod:`comclip.loading` only dispatches on the backend name.
"""

from comclip.encoders.base import BatchedEncoder, Encoder, half_dtype, is_multi_query, similarity
from comclip.encoders.hf_clip import HFCLIPEncoder
from comclip.encoders.open_clip import OpenCLIPEncoder

__all__ = ["BatchedEncoder", "Encoder", "HFCLIPEncoder", "OpenCLIPEncoder", "half_dtype", "is_multi_query",
           "similarity"]
