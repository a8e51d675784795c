"""The app's `/match_grid` endpoint (Winoground's two-image test), through gradio_client, against the
app on loopback with the tiny engine: every cell equals `/match` on its image, the Winoground
booleans equal comclip.ranking's on the returned tables, and every bad request is one clear message."""

from __future__ import annotations

import pytest

from comclip.ranking import winoground_group, winoground_image, winoground_text

from .conftest import ASSETS
from .test_app_api import serve

MUG = ASSETS / "examples" / "mug_in_grass.png"
GRASS = ASSETS / "examples" / "grass_in_mug.png"
CAPTIONS = ["a mug in some grass", "some grass in a mug"]


@pytest.fixture(scope="module")
def client(tiny_engine):
    from gradio_client import Client

    with serve(tiny_engine) as url:
        yield Client(url, verbose=False)


def _grid(client, images, captions, pairing=None, options=None):
    from gradio_client import handle_file

    return client.predict([handle_file(str(p)) for p in images], captions, pairing, options or {},
                          api_name="/match_grid")


def _app_error(client, *args) -> str:
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError) as info:
        _grid(client, *args)
    return str(info.value)


def _table(matrix, pairing) -> dict[str, float]:
    """Winoground's {cX_iY}: caption X is image X's true caption (the pairing decides)."""
    return {f"c{x}_i{y}": matrix[y][pairing[x]] for x in (0, 1) for y in (0, 1)}


def test_match_grid_equals_match_on_each_image(client):
    from gradio_client import handle_file

    got = _grid(client, [MUG, GRASS], CAPTIONS)
    assert got["captions"] == CAPTIONS and got["pairing"] == [0, 1]
    assert {"clip", "comclip", "winoground", "picks", "ranks", "story", "images"} <= set(got)
    assert len(got["images"]) == 2
    for i, path in enumerate((MUG, GRASS)):
        alone = client.predict(handle_file(str(path)), CAPTIONS, {}, api_name="/match")
        assert got["images"][i]["captions"] == alone["captions"]  # each image's result as /match gives it
        for j, c in enumerate(alone["captions"]):
            assert got["clip"][i][j] == pytest.approx(c["clip_score"], abs=1e-6)
            assert got["comclip"][i][j] == pytest.approx(c["comclip_score"], abs=1e-6)
    for method in ("clip", "comclip"):
        t = _table(got[method], got["pairing"])
        assert got["winoground"][method] == {"text": winoground_text(t), "image": winoground_image(t),
                                             "group": winoground_group(t)}
        assert got["story"][method].startswith({"clip": "CLIP ", "comclip": "ComCLIP "}[method])


def test_the_pairing_decides_which_cell_is_true(client):
    straight = _grid(client, [MUG, GRASS], CAPTIONS)
    crossed = _grid(client, [MUG, GRASS], CAPTIONS, [1, 0])
    assert crossed["clip"] == straight["clip"] and crossed["pairing"] == [1, 0]  # same scores, read another way
    for method in ("clip", "comclip"):
        t = _table(crossed[method], [1, 0])
        assert crossed["winoground"][method]["text"] == winoground_text(t)
        assert crossed["winoground"][method]["image"] == winoground_image(t)
        assert crossed["winoground"][method]["group"] == winoground_group(t)
    three = _grid(client, [MUG, GRASS], [*CAPTIONS, "a red ball"], [1, 0])
    assert "winoground" not in three and len(three["clip"][0]) == 3  # 2 × 3: ranks, no Winoground
    assert three["ranks"]["clip"]["caption_per_image"][0] >= 1


def test_options_apply_to_every_image(client, tiny_engine):
    from PIL import Image

    got = _grid(client, [MUG, GRASS], CAPTIONS, None, {"weighting": "sum", "subimage": "crop"})
    want = tiny_engine.match(Image.open(GRASS), CAPTIONS, weighting="sum", subimage="crop")
    assert got["images"][1]["options"]["weighting"] == "sum"
    assert got["comclip"][1] == pytest.approx([c.comclip_score for c in want.captions], abs=1e-6)


@pytest.mark.parametrize(("images", "captions", "pairing", "words"), [
    ([MUG, GRASS], ["a mug in some grass"], None, "at least 2"),
    ([MUG, GRASS, MUG, GRASS, MUG], CAPTIONS, None, "2 to 4 images (5 given)"),
    ([MUG], CAPTIONS, None, "2 to 4 images (1 given)"),
    ([MUG, GRASS], CAPTIONS, [0], "the pairing has 1 entry for 2 images"),
    ([MUG, GRASS], CAPTIONS, [0, 2], "the pairing names caption 2, but the captions are numbered 0 to 1"),
    ([MUG, GRASS], CAPTIONS, [1, 1], "gives caption 1 to two images"),
    ([MUG, GRASS], [*CAPTIONS, "a red ball"], None, "give the pairing"),
    ([MUG, GRASS], [CAPTIONS[0], CAPTIONS[0]], None, "Caption 2 repeats caption 1"),
])
def test_bad_requests_are_one_clear_message(client, images, captions, pairing, words):
    assert words in _app_error(client, images, captions, pairing)


def test_a_bad_second_image_is_named(client, tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_text("this is not an image")
    message = _app_error(client, [MUG, bad], CAPTIONS)
    assert message.startswith("Image 2: ") and "not an image file" in message and "“notes.png”" in message
    assert "gradio" not in message  # no server temp path
    assert _grid(client, [MUG, GRASS], CAPTIONS)["captions"] == CAPTIONS  # nothing else changed
