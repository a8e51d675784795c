"""The "Explore a run" tab in a real headless browser (Debian's Chromium, Playwright), the app built
as ``python app.py --run OUT`` builds it: the run's numbers and list at start, an example opened by
a click in the list and by its link (``?run=OUT&example=ID``), at 1400×900, 390×844 and in the dark
theme; readable (contrast, no broken images, no text wrapped character by character), nothing wider
than the screen. Screenshots: ``test-artifacts/explore-{wide,phone,dark}.png``."""

from __future__ import annotations

import contextlib
import urllib.parse

import pytest

from .test_app_browser import ARTIFACTS, CHROMIUM, _check_readable, _launch

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium"),
    pytest.mark.filterwarnings("ignore::UserWarning"),
]


@contextlib.contextmanager
def serve_run(engine, out):
    """The app as ``python app.py --run OUT`` builds it, launched on loopback; yields its URL."""
    from comclip.studio.settings import Settings

    from .test_app_api import serve

    with serve(engine, Settings(run=str(out))) as url:
        yield url


def _opened(page, ex_id: str) -> None:
    from playwright.sync_api import expect

    expect(page.locator("#explore-example")).to_contain_text(f"Example {ex_id}", timeout=60_000)
    expect(page.locator("#explore-example")).to_contain_text("✓ Scored again: every score equals the stored one",
                                                             timeout=60_000)
    expect(page.locator("#explore-summary")).to_contain_text("True caption", timeout=30_000)
    expect(page.locator("#explore-grounding img")).to_be_visible(timeout=30_000)
    page.wait_for_timeout(300)
    expect(page.locator("body")).not_to_contain_text("[object Object]")


@pytest.mark.parametrize("screen", ["wide", "phone", "dark"])
def test_explore_a_run(tiny_engine, wino, screen):
    from playwright.sync_api import expect, sync_playwright

    out = wino[0]
    ARTIFACTS.mkdir(exist_ok=True)
    viewport = {"width": 390, "height": 844} if screen == "phone" else {"width": 1400, "height": 900}
    with serve_run(tiny_engine, out) as url, sync_playwright() as pw:
        browser = _launch(pw)
        try:
            page = browser.new_page(viewport=viewport, color_scheme="dark" if screen == "dark" else "light",
                                    is_mobile=screen == "phone")
            if screen == "wide":  # the run at start; an example opened from the list
                page.goto(url)
                rows = page.locator("#explore-list a.xrow")
                expect(rows).to_have_count(5, timeout=30_000)
                expect(page.locator("#explore-head")).to_contain_text("text_score")
                _check_readable(page, "explore before an example")
                rows.nth(1).click()
                _opened(page, "1")
                link = page.locator("#explore-link textarea, #explore-link input").first.input_value()
                assert link == f"{url}?{urllib.parse.urlencode({'run': str(out.resolve()), 'example': '1'})}"
                page.locator("#explore-list").scroll_into_view_if_needed()
            else:  # an example's link opens it directly
                query = urllib.parse.urlencode({"run": str(out), "example": "2"})
                page.goto(f"{url}?{query}" + ("&__theme=dark" if screen == "dark" else ""))
                _opened(page, "2")
                assert page.evaluate("document.body.classList.contains('dark')") == (screen == "dark")
            page.screenshot(path=str(ARTIFACTS / f"explore-{screen}.png"))
            page.screenshot(path=str(ARTIFACTS / f"explore-{screen}-full.png"), full_page=True)
            _check_readable(page, f"explore {screen}")
            assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"] + 1
        finally:
            browser.close()


def test_a_link_outside_the_run_is_refused(tiny_engine, wino):
    from playwright.sync_api import expect, sync_playwright

    with serve_run(tiny_engine, wino[0]) as url, sync_playwright() as pw:
        browser = _launch(pw)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(url + "?" + urllib.parse.urlencode({"run": str(wino[2]), "example": "0"}))
            expect(page.locator("#explore-status")).to_contain_text("is not a folder this app may open",
                                                                    timeout=30_000)
            expect(page.locator("#explore-example")).not_to_contain_text("Example 0")
        finally:
            browser.close()
