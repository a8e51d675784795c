"""Serving under load: many gradio_client clients at once, at model concurrency 1 and 4.

Every number must equal the engine's own (computed directly, one request at a time), every bad
request must get its one clear message, and identical requests in flight together must be
computed once. A memory check scores a few hundred distinct requests and bounds the growth.
"""

from __future__ import annotations

import copy
import gc
import resource
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from PIL import Image

from comclip.options import Options
from comclip.studio import checks, service
from comclip.studio.events import Studio
from comclip.studio.settings import Settings

from .conftest import ASSETS, EXAMPLE_IMAGE
from .test_app_api import free_port

BALL = ASSETS / "examples" / "red_ball_blue_box.png"
GOOD = [
    (EXAMPLE_IMAGE, ["a mug in some grass", "some grass in a mug"], {}),
    (EXAMPLE_IMAGE, ["a mug in some grass", "some grass in a mug"], {"weighting": "sum"}),
    (EXAMPLE_IMAGE, ["a mug next to a ball", "a ball next to a mug", "a mug"], {}),
    (BALL, ["a red ball next to a blue box", "a blue ball next to a red box"], {}),
    (BALL, ["a red ball next to a blue box", "a blue ball next to a red box"], {"relation_text": "triple"}),
    (BALL, ["a ball on a box", "a box on a ball"], {"subimage": "crop"}),
]
BAD = [
    (EXAMPLE_IMAGE, ["a mug in some grass"], {}, "at least 2"),
    (EXAMPLE_IMAGE, ["a mug in some grass", "x" * 5000], {}, "at most 300"),
    (EXAMPLE_IMAGE, ["a mug in some grass", "some grass in a mug"], {"preset": "arch-b32"}, "unknown preset"),
    (BALL, ["a ball on a box", "a box on a ball"], {"weighting": "max"}, "unknown weighting"),
]
CLIENTS, CALLS = 20, 5


def _plain(d: dict) -> dict:
    d = copy.deepcopy(d)
    d.pop("timings_ms")
    return d


@pytest.fixture(scope="module")
def expected(tiny_engine) -> list[dict]:
    return [_plain(tiny_engine.match(Image.open(img), caps, options=Options.from_mapping(opts)).to_dict())
            for img, caps, opts in GOOD]


@pytest.mark.parametrize("concurrency", [1, 4])
def test_twenty_clients_get_exact_numbers_and_clear_errors(tiny_engine, expected, concurrency):
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    import app

    studio = Studio.create(tiny_engine, settings=Settings(concurrency=concurrency))
    demo = app.build_demo(studio)
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                **app.launch_options())
    url = f"http://127.0.0.1:{port}/"
    plan = [[(c * CALLS + k) % (len(GOOD) + len(BAD)) for k in range(CALLS)] for c in range(CLIENTS)]
    barrier = threading.Barrier(CLIENTS)

    def client(calls: list[int]) -> list[tuple[int, object]]:
        api = Client(url, verbose=False)
        barrier.wait()  # all clients start together
        out = []
        for i in calls:
            if i < len(GOOD):
                img, caps, opts = GOOD[i]
                out.append((i, api.predict(handle_file(str(img)), caps, opts, api_name="/match")))
            else:
                img, caps, opts, _ = BAD[i - len(GOOD)]
                try:
                    api.predict(handle_file(str(img)), caps, opts, api_name="/match")
                    out.append((i, "no error"))
                except AppError as exc:
                    out.append((i, str(exc)))
        return out

    try:
        started = time.perf_counter()
        with ThreadPoolExecutor(CLIENTS) as pool:
            answers = [a for chunk in pool.map(client, plan) for a in chunk]
        wall = time.perf_counter() - started
    finally:
        demo.close()
    assert len(answers) == CLIENTS * CALLS
    for i, got in answers:
        if i < len(GOOD):
            assert _plain(got) == expected[i], GOOD[i]
        else:
            assert BAD[i - len(GOOD)][3] in got, (BAD[i - len(GOOD)], got)
    # each distinct request was computed exactly once, however many clients sent it at the same time
    assert studio.service.cache.computed == len(GOOD)
    print(f"\nload: {CLIENTS} clients x {CALLS} calls, concurrency {concurrency}: {wall:.1f} s")


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


PREDICATES = ("in", "on", "near", "under", "above", "beside", "behind", "by", "inside", "over", "below", "with",
              "against", "beyond", "around", "across", "along", "among", "past", "upon")


def test_memory_stays_bounded_over_distinct_requests(tiny_engine):
    """200 distinct requests (same entities, so grounding is cached and the check stays fast)
    through the app's checks, result cache and gate: memory levels off."""
    serving = service.Service.create(tiny_engine)
    serving.cache = cache = service.ResultCache(size=16)
    image, _ = checks.prepare_image(str(BALL))
    pairs = [(p, q) for p in PREDICATES for q in PREDICATES][:200]

    def run(i: int) -> None:
        p, q = pairs[i]
        caps, _ = checks.split_captions([f"a ball {p} a box", f"a box {q} a ball"])
        serving.serve(checks.Request("tiny", (image,), tuple(caps), None, Options()))

    for i in range(50):  # warm up: caches fill, the allocator settles
        run(i)
    gc.collect()
    before = _rss_mb()
    for i in range(50, len(pairs)):
        run(i)
    gc.collect()
    grown = _rss_mb() - before
    assert len(cache) == 16 and cache.computed == len(pairs)
    print(f"\nmemory: +{grown:.1f} MB over {len(pairs) - 50} distinct requests after warm-up")
    assert grown < 60, f"memory grew {grown:.0f} MB over {len(pairs) - 50} distinct requests"
