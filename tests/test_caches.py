"""The thread-safe LRU cache, and one engine serving several threads at once."""

import threading

import numpy as np
import pytest

from comclip.caches import LRUCache

from .conftest import EXAMPLE_IMAGE


def test_lru_order_and_bound():
    c: LRUCache[str, int] = LRUCache(2)
    c.put("a", 1)
    c.put("b", 2)
    assert c.get("a") == 1  # "a" is now the most recently used
    c.put("c", 3)
    assert "b" not in c and "a" in c and "c" in c and len(c) == 2
    assert c.put("a", 99) == 1  # the first stored value wins
    assert c.get_or_compute("d", lambda: 4) == 4 and "c" not in c
    c.clear()
    assert not c and c.get("a") is None
    with pytest.raises(ValueError):
        LRUCache(0)


def test_lru_hammered_from_threads():
    cache: LRUCache[int, int] = LRUCache(64)
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def work(seed: int) -> None:
        rng = np.random.default_rng(seed)
        barrier.wait()
        try:
            for k in rng.integers(0, 200, size=3000):
                k = int(k)
                v = cache.get_or_compute(k, lambda k=k: k * k)
                assert v == k * k
                if k % 7 == 0:
                    cache.put(k, k * k)
                assert len(cache) <= 64
        except BaseException as exc:  # noqa: BLE001 — reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(cache) == 64


def test_engine_serves_threads_with_the_same_numbers(tiny_engine):
    captions = ["a mug in some grass", "some grass in a mug"]
    tiny_engine.clear_caches()
    want = [c.comclip_score for c in tiny_engine.match(EXAMPLE_IMAGE, captions).captions]
    tiny_engine.clear_caches()
    got: list[list[float]] = []
    lock = threading.Lock()

    def work() -> None:
        r = tiny_engine.match(EXAMPLE_IMAGE, captions)
        with lock:
            got.append([c.comclip_score for c in r.captions])

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 4
    for g in got:
        np.testing.assert_allclose(g, want, atol=1e-6)
