"""Shared fixtures: the seeded tiny engine (built once per session) and small images."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
ASSETS = ROOT / "assets"
EXAMPLE_IMAGE = ASSETS / "examples" / "mug_in_grass.png"

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# The pinned numbers are fp32's: the detector's `auto` precision stays fp32 on every test machine, also on a
# CPU with native bf16 (tests of that choice pass the CPU flags explicitly; see comclip/cpu.py).
os.environ.setdefault("COMCLIP_CPU_BF16", "0")


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("comclip-cache")
    os.environ["COMCLIP_CACHE"] = str(path)
    return path


@pytest.fixture(scope="session")
def tiny_engine(cache_dir: Path):
    from comclip.engine import load

    return load("tiny", device="cpu", parser="rules")


@pytest.fixture
def noise_image() -> Image.Image:
    rng = np.random.RandomState(0)
    return Image.fromarray((rng.rand(240, 320, 3) * 255).astype(np.uint8), "RGB")


@pytest.fixture(scope="session")
def wino(tiny_engine, tmp_path_factory):
    """A finished tiny-preset Winoground run of 5 examples (example "3" failed: an image is missing):
    ``(out, report, data)``. Shared by the explorer's tests (library, command line, app)."""
    from comclip.eval.runner import run

    from . import eval_synth as synth

    root = tmp_path_factory.mktemp("wino")
    data = synth.write_winoground(root / "data", n=5, missing=(3,))
    out = root / "out"
    report = run(tiny_engine, "winoground", data, out, batch_size=5, progress=False)
    return out, report, data
