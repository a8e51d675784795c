"""The "Two images" view in a real headless browser (Debian's Chromium driven by Playwright).

An example pair, computed at start, is clicked and its grid and stories show in under a second, at
1400×900, 390×844 (a phone) and in the dark theme; a cell of the grid is selected and shown inside
out; the pairing is swapped and the story retold; nothing is wider than the screen and text contrast
is at least 4.5:1. Screenshots: ``test-artifacts/two-images-{wide,phone,dark}.png``.
"""

from __future__ import annotations

import time

import pytest

from .test_app_api import free_port
from .test_app_browser import ARTIFACTS, BROKEN_IMAGES, CHAR_WRAPPED, CHROMIUM, LOW_CONTRAST, _launch

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium"),
]

SCREENS = {"wide": ({"width": 1400, "height": 900}, "light"), "phone": ({"width": 390, "height": 844}, "light"),
           "dark": ({"width": 1400, "height": 900}, "dark")}


@pytest.fixture(scope="module")
def app_url(tiny_engine):
    """The app with its example pairs computed at start (as ``python app.py`` does), on loopback."""
    import app
    from comclip.studio.events import Studio

    studio = Studio.create(tiny_engine)
    demo = app.build_demo(studio)
    assert studio.warm_examples([], app.load_pairs()) == len(app.load_pairs())
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                **app.launch_options())
    try:
        yield f"http://127.0.0.1:{port}/", studio
    finally:
        demo.close()


def _click_pair(page, row: int) -> float:
    """Click example pair ``row``; the seconds until its grid and stories are shown."""
    from playwright.sync_api import expect

    example = page.locator(f"#grid-examples [data-testid=dataset-cell-{row}-2]")
    start = time.perf_counter()
    example.click()
    expect(page.locator("#grid-status")).to_contain_text("from cache", timeout=10_000)
    expect(page.locator("#grid-story .grid-story")).to_have_count(2)
    expect(page.locator("#grid-scores td.cell")).to_have_count(4)
    return time.perf_counter() - start


@pytest.mark.parametrize("screen", list(SCREENS))
def test_an_example_pair_shows_its_grid_at_once(app_url, screen):
    from playwright.sync_api import expect, sync_playwright

    url, studio = app_url
    viewport, scheme = SCREENS[screen]
    ARTIFACTS.mkdir(exist_ok=True)
    computed = studio.service.cache.computed
    with sync_playwright() as pw:
        browser = _launch(pw)
        try:
            page = browser.new_page(viewport=viewport, color_scheme=scheme, is_mobile=screen == "phone")
            page.goto(url + ("?__theme=dark" if screen == "dark" else ""))
            page.get_by_role("tab", name="Two images").click()
            expect(page.locator("#grid-examples")).to_be_visible(timeout=30_000)
            page.wait_for_timeout(300)
            waited = _click_pair(page, 0)
            print(f"{screen}: cached example pair shown in {waited:.3f} s")
            assert waited < 1.0
            story = page.locator("#grid-story")
            expect(story).to_contain_text("CLIP")
            expect(story).to_contain_text("ComCLIP")
            expect(story.locator("table.winoground td")).to_have_count(6)
            expect(page.locator("#grid-captions textarea")).to_have_value("a mug in some grass\nsome grass in a mug")
            grid = page.locator("#grid-scores")
            expect(grid.locator("td.true")).to_have_count(2)  # the true pairs, tagged
            expect(grid).to_contain_text("some grass in a mug")
            expect(page.locator("#grid-cell")).to_contain_text("Image 1 with caption 1")
            expect(page.locator("#grid-gallery figure").first).to_be_visible()

            # any cell, inside out: image 2 with caption 1
            grid.locator("button[data-i='1'][data-j='0']").click()
            expect(page.locator("#grid-cell")).to_contain_text("Image 2 with caption 1", timeout=10_000)
            expect(grid.locator("td.selected button[data-i='1'][data-j='0']")).to_have_count(1)
            expect(page.locator("#grid-cell")).to_contain_text("not its true caption")
            page.locator("#grid-scores").scroll_into_view_if_needed()
            page.screenshot(path=str(ARTIFACTS / f"two-images-{screen}.png"))
            page.screenshot(path=str(ARTIFACTS / f"two-images-{screen}-full.png"), full_page=True)
            assert page.evaluate(BROKEN_IMAGES) == []
            assert page.evaluate(CHAR_WRAPPED) == []
            assert page.evaluate(LOW_CONTRAST, "#tab-two-images") == []
            assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"] + 1
            box, wrap = (page.locator("#grid-scores table").bounding_box(),
                         page.locator("#grid-scores .table-wrap").bounding_box())
            assert box["width"] <= wrap["width"] + 1  # the grid fits its column, no sideways scrolling
            expect(page.locator("body")).not_to_contain_text("[object Object]")
        finally:
            browser.close()
    assert studio.service.cache.computed == computed  # served from the pairs' pinned results


def test_swapping_the_pairing_retells_the_story_and_a_mistake_is_one_message(app_url):
    from playwright.sync_api import expect, sync_playwright

    url, _ = app_url
    with sync_playwright() as pw:
        browser = _launch(pw)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(url)
            page.get_by_role("tab", name="Two images").click()
            expect(page.locator("#grid-examples")).to_be_visible(timeout=30_000)
            _click_pair(page, 3)  # the tree and the house: image 1's true caption is caption 2
            grid = page.locator("#grid-scores")
            expect(grid.locator("td.true button[data-i='0'][data-j='1']")).to_have_count(1)
            page.locator("#grid-swap").click()
            expect(page.locator("#grid-status")).to_contain_text("Pairing changed", timeout=10_000)
            expect(grid.locator("td.true button[data-i='0'][data-j='0']")).to_have_count(1)
            # one caption: one message by the Score button, the grid stays
            page.locator("#grid-captions textarea").fill("a house behind a tree")
            page.locator("#grid-score").click()
            expect(page.locator("#grid-status")).to_contain_text("Enter at least 2", timeout=20_000)
            expect(grid.locator("td.cell")).to_have_count(4)
            # a third image slot, then back to two
            page.locator("#grid-more").click()
            expect(page.locator("#grid-image-2")).to_be_visible()
            page.locator("#grid-fewer").click()
            expect(page.locator("#grid-image-2")).to_be_hidden()
            expect(page.get_by_text("Error", exact=True)).to_have_count(0)
        finally:
            browser.close()
