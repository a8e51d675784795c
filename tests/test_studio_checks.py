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
    loaded, notes = checks.prepare_image(str(path), replace(LIMITS, pixel_cap=1_000_000))
    assert loaded.width * loaded.height <= 1_000_000 and abs(loaded.width / loaded.height - 4 / 3) < 0.01
    assert len(notes) == 1 and "4000×3000" in notes[0]


def test_caption_length_is_capped():
    with pytest.raises(InputError, match=r"Caption 2 \(“x+…”\) is 4,859 characters long; at most 300"):
        checks.split_captions(["a cup", "x" * 4859])


# -- captions, graphs, images ---------------------------------------------------------------------

MUG = ["a mug in some grass", "some grass in a mug"]


def test_split_captions_skips_blank_lines_and_repeats():
    caps, notes = checks.split_captions("a mug in some grass\n\n  \nsome grass in a mug\na mug in some grass\n")
    assert caps == MUG
    assert notes == ["Skipped 2 empty lines.", "Dropped 1 repeated caption."]


def test_large_image_is_downscaled_with_a_notice():
    big = Image.new("RGB", (3000, 2000), "white")
    loaded, notes = checks.prepare_image(big, replace(LIMITS, pixel_cap=1_000_000))
    assert loaded.width * loaded.height <= 1_000_000
    assert abs(loaded.width / loaded.height - 1.5) < 0.01
    assert len(notes) == 1 and "downscaled" in notes[0] and "3000×2000" in notes[0]
    same, none = checks.prepare_image(Image.new("RGB", (100, 80)), replace(LIMITS, pixel_cap=1_000_000))
    assert (same.width, same.height, none) == (100, 80, [])


def test_edited_graph_errors_are_plain():
    from comclip.errors import GraphError

    with pytest.raises(GraphError, match="not valid JSON"):
        checks.edited_graph("{'entities': }", "a mug")
    with pytest.raises(GraphError, match="is empty"):
        checks.edited_graph("  ", "a mug")
    g = checks.edited_graph('{"caption": "ignored", "entities": [{"id": "e0", "name": "mug"}], "relations": []}',
                             "a mug")
    assert g.caption == "a mug" and [e.name for e in g.entities] == ["mug"]
