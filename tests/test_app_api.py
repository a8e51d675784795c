"""The app's named API endpoint `/match`, through gradio_client, against the app on loopback.

The app runs in-process on 127.0.0.1 with the shared tiny engine; every result is compared with
the engine's own numbers, and every bad input must come back as one clear message.
"""

from __future__ import annotations

import contextlib
import copy
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from comclip.options import Options

from .conftest import ASSETS, EXAMPLE_IMAGE

MUG = ["a mug in some grass", "some grass in a mug"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve(engine, settings=None) -> Iterator[str]:
    """The app built around ``engine`` (with ``settings``), launched on loopback; yields its URL and closes it."""
    import app
    from comclip.studio.events import Studio

    demo = app.build_demo(Studio.create(engine, settings=settings))
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                **app.launch_options())
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        demo.close()


@pytest.fixture(scope="module")
def client(tiny_engine):
    from gradio_client import Client

    with serve(tiny_engine) as url:
        yield Client(url, verbose=False)


def _match(client, image, captions, options=None):
    from gradio_client import handle_file

    return client.predict(handle_file(str(image)), captions, options or {}, api_name="/match")


def _app_error(client, image, captions, options=None) -> str:
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError) as info:
        _match(client, image, captions, options)
    return str(info.value)


def _without_timings(d: dict) -> dict:
    d = copy.deepcopy(d)
    d.pop("timings_ms")
    return d


# -- results ------------------------------------------------------------------------------------

def test_match_equals_the_engine(client, tiny_engine):
    got = _match(client, EXAMPLE_IMAGE, MUG)
    assert list(got) == ["image", "preset", "models", "options", "captions", "best", "timings_ms"]
    assert [c["caption"] for c in got["captions"]] == MUG  # one result per caption, in order
    # a request's options are complete: keys left out are the defaults (as the page's widgets show them)
    want = tiny_engine.match(Image.open(EXAMPLE_IMAGE), MUG, options=Options()).to_dict()
    assert _without_timings(got) == _without_timings(want)
    assert got["image"] == {"path": None, "width": 640, "height": 480}
    assert got["preset"] == "tiny" and got["models"]["random_weights"] is True
    from gradio_client import handle_file

    plain = client.predict(handle_file(str(EXAMPLE_IMAGE)), MUG, api_name="/match")  # options are optional
    assert _without_timings(plain) == _without_timings(want)
    named = _match(client, EXAMPLE_IMAGE, MUG, {"preset": "tiny", "weighting": None})
    assert _without_timings(named) == _without_timings(want)


def test_match_with_options_and_graphs(client, tiny_engine):
    path = ASSETS / "examples" / "red_ball_blue_box.png"
    captions = ["a red ball next to a blue box", "a blue ball next to a red box", "a ball"]
    graph = {"entities": [{"id": "e0", "name": "ball", "attributes": ["red"]},
                          {"id": "e1", "name": "box", "attributes": ["blue"]}],
             "relations": [{"subject": "e1", "predicate": "beside", "object": "e0"}]}
    options = {"weighting": "sum", "relation_text": "triple", "subimage": "crop", "graphs": [graph, None, None]}
    got = _match(client, path, captions, options)
    assert len(got["captions"]) == 3
    assert got["options"]["weighting"] == "sum" and got["options"]["subimage"] == "crop"
    first = got["captions"][0]
    assert first["graph"]["relations"] == [{"subject": "e1", "predicate": "beside", "object": "e0"}]
    assert first["components"][-1]["text"] == "blue box beside red ball"  # triple relation text
    from comclip.graph import SceneGraph

    want = tiny_engine.match(Image.open(path), captions, [SceneGraph.from_dict(graph, caption=captions[0]), None, None],
                             Options(weighting="sum", relation_text="triple", subimage="crop")).to_dict()
    assert _without_timings(got) == _without_timings(want)


#: Under the length cap, yet longer than the text encoder's 77 tokens (each "!" is one token).
LONG = "a mug in some grass" + " !" * 100


def test_long_caption_is_truncated_with_a_flag(client):
    got = _match(client, EXAMPLE_IMAGE, [LONG, MUG[1]])
    assert got["captions"][0]["truncated"] is True
    assert got["captions"][1]["truncated"] is False


def test_caption_length_is_capped_with_a_clear_message(client):
    huge = ("a mug in some grass next to a small red ball " * 108)[:4859]
    message = _app_error(client, EXAMPLE_IMAGE, [MUG[0], huge])
    assert "Caption 2" in message and "4,859 characters" in message and "at most 300" in message


def test_caption_without_entities_scores_as_clip(client):
    got = _match(client, EXAMPLE_IMAGE, ["very quickly", MUG[0]])
    c = got["captions"][0]
    assert c["graph"]["entities"] == [] and c["components"] == []
    assert c["comclip_score"] == pytest.approx(c["clip_score"], abs=1e-6)


def test_no_box_found_uses_the_whole_image(client):
    got = _match(client, EXAMPLE_IMAGE, MUG, {"box_threshold": 1.0})
    comps = [k for c in got["captions"] for k in c["components"]]
    assert comps and all(not k["grounded"] and k["boxes"] == [] for k in comps)


# -- bad input: one clear message each ------------------------------------------------------------

def test_non_image_file(client, tmp_path: Path):
    bad = tmp_path / "notes.png"
    bad.write_text("this is not an image")
    message = _app_error(client, bad, MUG)
    assert "not an image file" in message and "“notes.png”" in message
    assert "gradio" not in message  # no server temp path


def test_broken_image(client, tmp_path: Path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(EXAMPLE_IMAGE.read_bytes()[:2000])
    assert "truncated or corrupt" in _app_error(client, broken, MUG)


@pytest.mark.parametrize(("captions", "message"), [
    (["a mug in some grass"], "at least 2"),
    ([], "at least 2"),
    (["a mug in some grass", "   "], "caption 2 is empty"),
    ([f"a mug number {i}" for i in range(9)], "At most 8"),
    ("a mug in some grass", "at least 2"),
])
def test_bad_captions(client, captions, message):
    assert message in _app_error(client, EXAMPLE_IMAGE, captions)


@pytest.mark.parametrize(("options", "message"), [
    ({"weighting": "max"}, "unknown weighting"),
    ({"colour": "red"}, "unknown option"),
    ({"box_threshold": 2}, "between 0 and 1"),
    ({"graphs": [{"entities": [{"id": "e0", "name": "mug"}],
                  "relations": [{"subject": "e0", "predicate": "in", "object": "e9"}]}, None]}, "not valid"),
    ({"graphs": [None]}, "1 graph(s) given for 2 caption(s)"),
    ({"preset": "huge"}, "unknown preset"),
    ({"preset": "arch-b32"}, "unknown preset 'arch-b32' for this app"),  # bench-only: never offered
    ("not json", "must be a JSON object"),
    ([1, 2], "must be an object"),
])
def test_bad_options(client, options, message):
    assert message in _app_error(client, EXAMPLE_IMAGE, MUG, options)


def test_api_page_shows_typed_parameters_and_a_working_example(client):
    info = client.view_api(return_format="dict", print_info=False)
    params = {p["parameter_name"]: p for p in info["named_endpoints"]["/match"]["parameters"]}
    assert list(params) == ["image", "captions", "options"]
    assert params["captions"]["python_type"]["type"] == "list[str]"
    assert "weighting: Literal['softmax', 'sum']" in params["options"]["python_type"]["type"]
    assert params["captions"]["example_input"] == ["a cup on a saucer", "a saucer on a cup"]
    assert params["options"]["example_input"] == {"weighting": "softmax"}
    assert "skimage/data/coffee.png" in str(params["image"]["example_input"])  # a real image, not a PDF
