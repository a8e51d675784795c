"""Unusual but valid images just work; broken ones give one clear InputError."""

import io

import numpy as np
import pytest
from PIL import Image

from comclip.errors import InputError
from comclip.images import load_image


def _save(img: Image.Image, path, **kw):
    img.save(path, **kw)
    return path


@pytest.fixture
def rgb():
    return Image.fromarray(np.random.RandomState(1).randint(0, 255, (60, 80, 3), dtype=np.uint8), "RGB")


def test_cmyk_jpeg(tmp_path, rgb):
    out = load_image(_save(rgb.convert("CMYK"), tmp_path / "c.jpg"))
    assert out.image.mode == "RGB" and out.image.size == (80, 60)


def test_sixteen_bit_grayscale_is_scaled_not_clipped(tmp_path):
    arr = np.full((20, 30), 65535, dtype=np.uint16)
    arr[:, :15] = 32896  # mid grey in 16 bit
    img = Image.fromarray(arr, "I;16")
    out = np.asarray(load_image(_save(img, tmp_path / "g16.png")).image)
    assert out[0, 20].tolist() == [255, 255, 255]
    assert out[0, 0].tolist() == [128, 128, 128]


def test_palette_with_transparency(tmp_path, rgb):
    p = rgb.convert("P")
    p.info["transparency"] = 0
    out = load_image(_save(p, tmp_path / "p.png", transparency=0)).image
    assert out.mode == "RGB"


def test_rgba_composited_on_white(tmp_path):
    img = Image.new("RGBA", (10, 10), (255, 0, 0, 0))
    out = load_image(_save(img, tmp_path / "t.png")).image
    assert out.getpixel((5, 5)) == (255, 255, 255)


def test_exif_rotation_applied(tmp_path):
    img = Image.new("RGB", (40, 20), (0, 0, 255))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    img.save(tmp_path / "r.jpg", exif=exif)
    assert load_image(tmp_path / "r.jpg").image.size == (20, 40)


def test_animated_gif_first_frame(tmp_path):
    frames = [Image.new("RGB", (16, 16), c) for c in [(255, 0, 0), (0, 255, 0)]]
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    out = load_image(tmp_path / "a.gif").image
    r, g, b = out.getpixel((8, 8))
    assert r > 200 and g < 50


def test_grayscale_and_bytes(tmp_path):
    buf = io.BytesIO()
    Image.new("L", (12, 9), 77).save(buf, format="PNG")
    out = load_image(buf.getvalue()).image
    assert out.mode == "RGB" and out.getpixel((0, 0)) == (77, 77, 77)


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_image(tmp_path / "nope.png")


def test_not_an_image(tmp_path):
    (tmp_path / "x.png").write_text("hello")
    with pytest.raises(InputError, match="not an image"):
        load_image(tmp_path / "x.png")


def test_truncated_image(tmp_path, rgb):
    buf = io.BytesIO()
    rgb.save(buf, format="PNG")
    (tmp_path / "t.png").write_bytes(buf.getvalue()[:200])
    with pytest.raises(InputError, match="cannot decode|cannot read"):
        load_image(tmp_path / "t.png")


def test_absurdly_large_image_refused_before_decoding(tmp_path):
    Image.new("L", (200, 200)).save(tmp_path / "big.png")
    with pytest.raises(InputError, match="too large"):
        load_image(tmp_path / "big.png", max_pixels=10_000)


def test_empty_file_and_folder(tmp_path):
    (tmp_path / "e.png").write_bytes(b"")
    with pytest.raises(InputError, match="empty"):
        load_image(tmp_path / "e.png")
    with pytest.raises(InputError, match="folder"):
        load_image(tmp_path)


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width x height`` but that holds no pixel data at all."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)) \
        + chunk(b"IEND", b"")


@pytest.mark.parametrize("size", [(12_000, 12_000), (50_000, 50_000)])  # under / over PIL's own bomb limit
def test_sizes_are_checked_from_the_header_before_any_decoding(tmp_path, size):
    (tmp_path / "h.png").write_bytes(_png_header_only(*size))
    with pytest.raises(InputError, match="too large"):  # a decode would say "cannot decode"
        load_image(tmp_path / "h.png")


def test_pil_decompression_guard_is_left_in_place():
    import comclip.images  # noqa: F401 — importing it must not switch PIL's guard off

    assert Image.MAX_IMAGE_PIXELS is not None and Image.MAX_IMAGE_PIXELS > 0


def test_jpeg_far_over_the_limit_is_decoded_reduced(tmp_path):
    big = Image.fromarray(np.random.RandomState(2).randint(0, 255, (800, 800, 3), dtype=np.uint8), "RGB")
    big.save(tmp_path / "big.jpg", quality=90)
    loaded = load_image(tmp_path / "big.jpg", max_pixels=10_000)  # 64x over: decoded at 1/8 scale
    assert (loaded.width, loaded.height) == (100, 100)
    big.save(tmp_path / "big.png")
    with pytest.raises(InputError, match="too large"):  # no reduced decoding for PNG
        load_image(tmp_path / "big.png", max_pixels=10_000)
    with pytest.raises(InputError, match="too large"):  # only 2x over: refused, not reduced
        load_image(tmp_path / "big.jpg", max_pixels=320_000)
