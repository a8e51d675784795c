"""Benchmark loaders: a data folder in the dataset's own on-disk format → typed examples.

One module per dataset (``winoground``, ``comvg``, ``svo``, ``vl_checklist``; retrieval's
Karpathy splits are in ``karpathy``); the shared example types and helpers are in ``common``.
"""

from __future__ import annotations

from collections.abc import Callable

from comclip.eval.datasets.common import Example, ImageSource, Loaded, MissingImage, Probe
from comclip.eval.datasets.comvg import load_comvg
from comclip.eval.datasets.svo import load_svo
from comclip.eval.datasets.vl_checklist import load_vl_checklist
from comclip.eval.datasets.winoground import load_winoground

PAIR_LOADERS: dict[str, Callable[..., Loaded]] = {
    "winoground": load_winoground,
    "comvg": load_comvg,
    "svo": load_svo,
    "vl-checklist": load_vl_checklist,
}

__all__ = ["PAIR_LOADERS", "Example", "ImageSource", "Loaded", "MissingImage", "Probe", "load_comvg", "load_svo",
           "load_vl_checklist", "load_winoground"]
