"""Checking what is sent (comclip.studio.checks): images before decoding, captions, options, graphs."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest
from PIL import Image

from comclip.errors import InputError
from comclip.studio import checks
from comclip.studio.settings import LIMITS


# -- images -------------------------------------------------------------------------------------

def test_huge_png_is_refused_from_its_header_before_decoding(tmp_path):
    path = tmp_path / "flat.png"
    Image.new("1", (9000, 9000)).save(path)  # a small file of 81 megapixels
    started = time.perf_counter()
    with pytest.raises(InputError, match="image is too large: “flat.png” is 9000x9000 = 81 megapixels"):
        checks.prepare_image({"path": str(path), "orig_name": "flat.png"})
    assert time.perf_counter() - started < 1.0


def test_large_jpeg_is_decoded_reduced(tmp_path):
    path = tmp_path / "big.jpg"
    Image.new("RGB", (4000, 3000), "orange").save(path, quality=70)
    loaded, notes = checks.prepare_image(str(path), pixel_cap=1_000_000)
    assert loaded.width * loaded.height <= 1_000_000 and abs(loaded.width / loaded.height - 4 / 3) < 0.01
    assert len(notes) == 1 and "4000×3000" in notes[0]


def test_caption_length_is_capped():
    with pytest.raises(InputError, match=r"Caption 2 \(“x+…”\) is 4,859 characters long; at most 300"):
        checks.split_captions(["a cup", "x" * 4859])
