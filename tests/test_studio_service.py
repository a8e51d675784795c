"""Serving (comclip.studio.service): the single-flight result cache, engines loaded on first use, the
offered presets, notices, and the serving path's depth."""

from __future__ import annotations

import threading
import time

import pytest

from comclip.errors import InputError
from comclip.options import Options
from comclip.studio import checks, service

from .conftest import ASSETS, EXAMPLE_IMAGE

# -- serving ------------------------------------------------------------------------------------

def test_identical_requests_in_flight_are_computed_once():
    cache = service.ResultCache(size=4)
    calls, gate = [], threading.Event()

    def compute():
        calls.append(1)
        gate.wait(5)
        return "value"

    with __import__("concurrent.futures").futures.ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(cache.get_or_compute, "k", compute) for _ in range(8)]
        time.sleep(0.2)
        gate.set()
        answers = [f.result() for f in futures]
    assert len(calls) == 1 and cache.computed == 1
    assert sorted(how for _, how in answers) == ["computed"] + ["twin"] * 7  # the twins waited: not "from cache"
    assert len({id(entry) for entry, _ in answers}) == 1  # one entry, shared (with its drawn panels)
    entry, how = cache.get_or_compute("k", compute)
    assert (entry.results, how) == ("value", "cache") and len(calls) == 1


def test_a_failed_computation_is_not_cached_and_reaches_every_waiter():
    cache = service.ResultCache(size=4)

    def boom():
        raise InputError("bad")

    with pytest.raises(InputError):
        cache.get_or_compute("k", boom)
    entry, served = cache.get_or_compute("k", lambda: 3)
    assert (entry.results, served) == (3, "computed")


def test_loading_a_preset_does_not_hold_up_a_loaded_one_and_few_stay_loaded():
    release = threading.Event()

    def loader(name):
        if name == "slow":
            release.wait(10)
        return f"engine {name}"

    engines = service.Engines(loader, capacity=2, pinned="start")
    engines.add("start", "engine start")
    slow = threading.Thread(target=engines.get, args=("slow",))
    slow.start()
    time.sleep(0.1)
    started = time.perf_counter()
    assert engines.get("start") == "engine start" and engines.get("other") == "engine other"
    assert time.perf_counter() - started < 1.0  # not behind the slow load
    release.set()
    slow.join(5)
    assert engines.loaded() == ["start", "slow"]  # "other" was dropped; the start preset stays
    assert engines.get("slow") == "engine slow"


def test_offline_the_menu_lists_only_loadable_presets(monkeypatch):
    from comclip import loading

    monkeypatch.setattr(loading, "preset_available", lambda preset: preset.random_weights)
    assert service.offered_presets("tiny") == ["tiny"]
    monkeypatch.setattr(loading, "preset_available", lambda preset: preset.random_weights or preset.name == "default")
    assert service.offered_presets("tiny") == ["default", "tiny"]
    assert "arch-b32" not in service.offered_presets("default")


def test_api_accepts_only_offered_presets():
    assert checks.api_options({"preset": "tiny"}, "default", ["default", "tiny"])[0] == "tiny"
    with pytest.raises(InputError, match="unknown preset 'arch-b32' for this app; choose one of: default, tiny"):
        checks.api_options({"preset": "arch-b32"}, "default", ["default", "tiny"])


# -- serving a request -----------------------------------------------------------------------------

MUG = ["a mug in some grass", "some grass in a mug"]
#: Under the length cap, yet longer than the text encoder's 77 tokens (each "!" is one token).
LONG = "a mug in some grass" + " !" * 100


def _request(image, captions, options=None, preset="tiny"):
    from comclip.images import load_image

    return checks.Request(preset, (load_image(image),), tuple(captions), None, Options.from_mapping(options))


@pytest.fixture(scope="module")
def svc(tiny_engine):
    return service.Service.create(tiny_engine)


def test_notices_for_truncated_captions_missing_entities_and_boxes(svc):
    notes = svc.serve(_request(EXAMPLE_IMAGE, [LONG, "very quickly"], {"box_threshold": 1.0})).notices
    assert any(n.startswith("Caption 1 is longer than the text encoder reads (77 tokens)") for n in notes)
    assert any(n.startswith("Caption 2 (“very quickly”): no entity could be parsed") for n in notes)
    assert any(n.startswith("Caption 1: not found in the image") and "“mug”" in n for n in notes)


def test_notices_of_several_images_say_in_which_image(svc):
    """Two images side by side: an entity not found is reported for each image it is missing from."""
    from comclip.images import load_image

    request = checks.Request("tiny", (load_image(EXAMPLE_IMAGE), load_image(ASSETS / "examples" / "grass_in_mug.png")),
                             ("a mug in some grass", "very quickly"), None, Options(box_threshold=1.0))
    notes = svc.serve(request).notices
    assert [n for n in notes if "not found" in n] == [
        "Caption 1: not found in image 1, so the whole image stands in for “mug”, “grass”.",
        "Caption 1: not found in image 2, so the whole image stands in for “mug”, “grass”."]
    assert sum(n.startswith("Caption 2 (“very quickly”): no entity") for n in notes) == 1  # said once, not per image


def test_answers_are_served_from_the_cache_and_equal_the_engines(tiny_engine):
    svc = service.Service.create(tiny_engine)
    calls = []
    run = svc.runner.__call__
    svc.runner = lambda call, on_stage: calls.append(call) or run(call, on_stage)
    first = svc.serve(_request(EXAMPLE_IMAGE, MUG))
    again = svc.serve(_request(EXAMPLE_IMAGE, MUG))
    other = svc.serve(_request(EXAMPLE_IMAGE, MUG, {"weighting": "sum"}))
    assert len(calls) == 2 and again.from_cache and not first.from_cache and not other.from_cache
    assert again.result is first.result and again.drawn is first.drawn  # the drawn panels come with it
    want = tiny_engine.match(EXAMPLE_IMAGE, MUG, options=Options())
    assert [c.comclip_score for c in first.result.captions] == [c.comclip_score for c in want.captions]
    assert len(svc.cache) == 2


def test_a_pinned_answer_is_counted_once(svc):
    cache = service.ResultCache(size=4)
    cache.get_or_compute("k", lambda: ["result"])
    cache.get_or_compute("k", lambda: ["other"], pin=True)  # served from the LRU, then pinned
    assert len(cache) == 1 and cache.pinned() == 1


def test_the_click_path_is_short(svc):
    """From the /match handler to the engine's match_batch: at most six of the project's own frames."""
    import sys

    from comclip.studio.events import Studio

    studio = Studio(svc)
    depth = []

    def hook(frame, event, arg):
        if event == "call" and frame.f_code.co_name == "match_batch" and not depth:
            stack, f = [], frame.f_back
            while f is not None and f.f_code.co_name != "api_match":
                stack.append(f.f_code)
                f = f.f_back
            own = [c for c in stack if "/comclip/" in c.co_filename or c.co_filename.endswith("app.py")]
            depth.append([f"{c.co_filename.rsplit('/', 1)[-1]}:{c.co_name}" for c in own])

    sys.setprofile(hook)
    try:
        studio.api_match(str(EXAMPLE_IMAGE), ["a cup on a saucer", "a saucer on a cup"], {"weighting": "sum"})
    finally:
        sys.setprofile(None)
    assert depth, "match_batch was not reached"
    frames = depth[0] + ["events.py:api_match"]
    assert len(frames) <= 6, frames


def test_a_preset_file_starts_the_service(tmp_path):
    """``python app.py --preset my/preset.json``: the file's preset is loaded (its name is not registered)."""
    import json

    from comclip.presets import PRESET_DIR
    from comclip.studio.settings import Settings

    data = json.loads((PRESET_DIR / "tiny.json").read_text(encoding="utf-8"))
    data["name"] = "my-tiny"
    path = tmp_path / "my-tiny.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    svc = service.Service.create(settings=Settings(preset=str(path), device="cpu"))
    assert svc.start.name == "my-tiny" and svc.offered[0] == "my-tiny"
    assert svc.engines.get("my-tiny").preset_name == "my-tiny"
