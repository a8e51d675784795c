import numpy as np
import pytest
from PIL import Image

from comclip.boxes import WHOLE_IMAGE, Boxes, pixel_box, union
from comclip.subimage import blackout, crop, region_mask, render


def _ramp(w: int = 10, h: int = 8) -> Image.Image:
    arr = np.arange(w * h * 3, dtype=np.uint32).reshape(h, w, 3) % 251 + 1  # no zero pixel
    return Image.fromarray(arr.astype(np.uint8), "RGB")


def test_pixel_box_floor_ceil_and_clip():
    assert pixel_box((1.2, 2.7, 4.1, 5.0), 10, 8) == (1, 2, 5, 5)
    assert pixel_box((-3, -1, 20, 30), 10, 8) == (0, 0, 10, 8)
    assert pixel_box((5, 5, 4, 4), 10, 8) == (5, 5, 5, 5)  # inverted -> empty


def test_blackout_is_pixel_exact():
    img = _ramp()
    out = np.asarray(blackout(img, Boxes.drawn((1.2, 2.7, 4.1, 5.0))))
    src = np.asarray(img)
    expected = np.zeros_like(src)
    expected[2:5, 1:5] = src[2:5, 1:5]
    assert out.shape == src.shape
    np.testing.assert_array_equal(out, expected)


def test_blackout_two_boxes_keeps_both_and_nothing_else():
    img = _ramp()
    out = np.asarray(blackout(img, Boxes.drawn((0, 0, 2, 2), (7, 5, 10, 8))))
    mask = np.zeros((8, 10), bool)
    mask[0:2, 0:2] = True
    mask[5:8, 7:10] = True
    src = np.asarray(img)
    np.testing.assert_array_equal(out[mask], src[mask])
    assert (out[~mask] == 0).all()


def test_union_mask_is_or_of_masks():
    a, b = Boxes.drawn((0, 0, 3, 3)), Boxes.drawn((2, 2, 6, 5))
    np.testing.assert_array_equal(region_mask(union([a, b]), 10, 8), region_mask(a, 10, 8) | region_mask(b, 10, 8))


def test_union_with_whole_is_whole():
    assert union([Boxes.drawn((0, 0, 3, 3)), WHOLE_IMAGE]) == WHOLE_IMAGE
    # no boxes (an entity not found) is not the whole image: the union keeps the other's boxes
    assert union([Boxes.drawn((0, 0, 3, 3)), Boxes()]) == Boxes.drawn((0, 0, 3, 3))
    assert not Boxes().whole and WHOLE_IMAGE.whole


def test_whole_region_returns_image_itself():
    img = _ramp()
    assert blackout(img, WHOLE_IMAGE) is img
    assert crop(img, WHOLE_IMAGE) is img
    assert Boxes.drawn((0, 0, 10, 8)).key(10, 8) is None  # a box covering everything is the whole image


def test_crop_is_bounding_rectangle_of_boxes():
    img = _ramp()
    out = crop(img, Boxes.drawn((1, 1, 3, 2), (5.5, 4, 7, 6.2)))
    np.testing.assert_array_equal(np.asarray(out), np.asarray(img)[1:7, 1:7])


def test_render_rejects_unknown_mode():
    with pytest.raises(ValueError, match="blackout, crop"):
        render(_ramp(), Boxes.drawn((0, 0, 1, 1)), "blur")


def test_key_dedupes_equivalent_boxes():
    a = Boxes.drawn((1.2, 2.7, 4.1, 5.0), (1.0, 2.0, 4.5, 4.9))
    b = Boxes.drawn((1.0, 2.0, 5.0, 5.0))
    assert a.key(10, 8) == b.key(10, 8)


def test_model_space_mask_geometry():
    import torch

    from comclip.subimage import PixelGeometry, model_space_mask

    g = PixelGeometry(4, (4, 4), (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    # 16x8 image: resized to 8x4 (scale 0.5), centre crop 4x4 starts at x=2 (source x=4)
    assert g.resized_size(16, 8) == (8, 4)
    whole = model_space_mask(WHOLE_IMAGE, 16, 8, g)
    assert torch.equal(whole, torch.ones(4, 4))
    m = model_space_mask(Boxes.drawn((4, 0, 8, 4)), 16, 8, g)  # covers model pixels x 0-1, y 0-1 exactly
    expected = torch.zeros(4, 4)
    expected[0:2, 0:2] = 1
    assert torch.equal(m, expected)
    half = model_space_mask(Boxes.drawn((5, 0, 8, 4)), 16, 8, g)  # first model column half covered
    assert half[0, 0] == 0.5 and half[0, 1] == 1.0 and half[2, 0] == 0.0


def test_blackout_pixels_is_black_outside_and_unchanged_inside():
    import torch

    from comclip.subimage import PixelGeometry, blackout_pixels

    g = PixelGeometry(2, (2, 2), (0.25, 0.5, 0.75), (0.5, 0.5, 0.5))
    x = torch.randn(3, 2, 2)
    mask = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])
    out = blackout_pixels(x, mask, g)[0]
    black = torch.tensor([-0.5, -1.0, -1.5])
    assert torch.allclose(out[:, 0, 0], x[:, 0, 0]) and torch.allclose(out[:, 1, 1], x[:, 1, 1])
    assert torch.allclose(out[:, 0, 1], black) and torch.allclose(out[:, 1, 0], black)


def test_boxes_keep_one_score_per_box_through_a_union():
    with pytest.raises(ValueError, match="2 boxes but 1 scores"):
        Boxes(((0, 0, 1, 1), (1, 1, 2, 2)), (0.5,))
    u = union([Boxes(((0, 0, 1, 1),), (0.9,)), Boxes(((2, 2, 3, 3),), (0.4,))])
    assert u.xyxy == ((0.0, 0.0, 1.0, 1.0), (2.0, 2.0, 3.0, 3.0)) and u.scores == (0.9, 0.4)
    assert u.to_lists() == ([[0.0, 0.0, 1.0, 1.0], [2.0, 2.0, 3.0, 3.0]], [0.9, 0.4])
    assert list(u) == list(u.xyxy) and len(u) == 2 and Boxes.drawn((0, 0, 1, 1)).scores == (1.0,)
