"""Serving (comclip.studio.service): the single-flight result cache, engines loaded on first use, the
offered presets, notices, and the serving path's depth."""

from __future__ import annotations

import threading
import time

import pytest

from comclip.errors import InputError
from comclip.studio import checks, service

from .conftest import EXAMPLE_IMAGE


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
    assert sorted(served for _, served in answers) == [False] + [True] * 7
    assert cache.get_or_compute("k", compute) == ("value", True) and len(calls) == 1


def test_a_failed_computation_is_not_cached_and_reaches_every_waiter():
    cache = service.ResultCache(size=4)

    def boom():
        raise InputError("bad")

    with pytest.raises(InputError):
        cache.get_or_compute("k", boom)
    assert cache.get_or_compute("k", lambda: 3) == (3, False)


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
