"""The app in a real headless browser: Debian's Chromium driven by Playwright.

Open the page, load an example, submit, wait for the results and check that the score table,
entity graph, annotated image and gallery are on screen; then a bad input must show a message.
A full-page screenshot is saved to ``test-artifacts/app.png``; with ``COMCLIP_UPDATE_SCREENSHOT=1``
it is also written to ``docs/screenshot.png`` (the README's picture).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from .conftest import ROOT
from .test_app_api import serve

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts"
SCREENSHOT = ROOT / "docs" / "screenshot.png"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update"]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium "
                                                     "(apt-get install chromium; CI installs it)"),
]

LOADED_IMAGES = """sel => {
    const imgs = [...document.querySelectorAll(sel)];
    const loaded = i => i.complete && i.naturalWidth > 0;
    imgs.filter(i => !loaded(i)).forEach(i => i.scrollIntoView());  // lazy images load when on screen
    return imgs.length > 0 && imgs.every(loaded);
}"""


def _load_lazy_images(page) -> None:
    """Scroll down the page so lazily loaded pictures load, then back to the top."""
    height = page.evaluate("document.body.scrollHeight")
    for y in range(0, height + 600, 600):
        page.evaluate(f"window.scrollTo(0, {y})")
        page.wait_for_timeout(60)
    for sel in ("#graph img", "#grounding img", "#gallery img", "#weights-chart img", "#score-chart img"):
        page.locator(sel).first.scroll_into_view_if_needed()
        page.wait_for_function(LOADED_IMAGES, arg=sel, timeout=15_000)
    page.evaluate("window.scrollTo(0, 0)")


EDITED_GRAPH = ('{"entities": [{"id": "e0", "name": "ball", "attributes": ["red"]}, '
                '{"id": "e1", "name": "box", "attributes": ["blue"]}], '
                '"relations": [{"subject": "e1", "predicate": "beside", "object": "e0"}]}')


def _replace_code(page, editor, text: str) -> None:
    """Replace the code editor's text (inserted as one edit, so no auto-closed brackets)."""
    editor.click()
    page.keyboard.press("Control+a")
    page.keyboard.press("Delete")
    page.keyboard.insert_text(text)


def _shrink_png(path: Path, limit: int = 1_000_000) -> None:
    """Keep the README picture small: palette PNG if the full-colour one is over the limit."""
    from PIL import Image

    if path.stat().st_size > limit:
        img = Image.open(path).convert("RGB")
        img.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(path, optimize=True)


def test_app_in_chromium(tiny_engine, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    not_image = tmp_path / "photo.png"
    not_image.write_text("these are words, not pixels")
    ARTIFACTS.mkdir(exist_ok=True)
    with serve(tiny_engine) as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(url)
            expect(page.locator("#random-banner")).to_contain_text("random weights", timeout=30_000)

            # load an example (it fills the image and the captions), then submit
            page.locator("#examples").get_by_text("a red ball next to a blue box").click()
            captions = page.locator("#captions textarea")
            expect(captions).to_have_value("a red ball next to a blue box\na blue ball next to a red box")
            page.locator("#score").click()

            # results: summary, score table with both captions, graph, grounding, gallery, charts
            expect(page.locator("#summary")).to_contain_text("ComCLIP picks", timeout=60_000)
            table = page.locator("#scores")
            expect(table).to_contain_text("a blue ball next to a red box")
            expect(table).to_contain_text("★ 1")
            expect(page.locator("#selector")).to_contain_text("1. a red ball next to a blue box")
            expect(page.locator("#graph-json textarea, #graph-json .cm-content").first).to_contain_text('"ball"')
            _load_lazy_images(page)
            for sel in ("#scores", "#graph img", "#grounding img", "#score-chart img", "#weights-chart img", "#loo"):
                expect(page.locator(sel).first).to_be_visible()
            gallery = page.locator("#gallery img")
            assert gallery.count() == 3  # two entities and one relation
            expect(gallery.first).to_be_visible()
            page.screenshot(path=str(ARTIFACTS / "app.png"), full_page=True)
            if os.environ.get("COMCLIP_UPDATE_SCREENSHOT") == "1":
                page.screenshot(path=str(SCREENSHOT), full_page=True)
                _shrink_png(SCREENSHOT)

            # edit the parse and re-score with it
            editor = page.locator("#graph-json .cm-content")
            _replace_code(page, editor, EDITED_GRAPH)
            page.locator("#rescore").click()
            expect(page.locator("#summary")).to_contain_text("Using your edited graph", timeout=60_000)
            expect(editor).to_contain_text('"predicate": "beside"')
            expect(page.locator("#loo")).to_contain_text("beside")

            # an invalid edited graph is a message, not a traceback
            _replace_code(page, editor, '{"entities": [{"id": "e0", "name": "ball"}], "relations": [{"subject": "e7"')
            page.locator("#rescore").click()
            expect(page.get_by_text("not valid JSON").first).to_be_visible(timeout=20_000)

            # counterfactuals of the first caption are written into the captions box
            captions.fill("a red ball next to a blue box")
            page.locator("#add-counterfactual").click()
            expect(captions).to_have_value("a red ball next to a blue box\na blue box next to a red ball\n"
                                           "a blue ball next to a red box", timeout=20_000)

            # too few captions: a message, and the spinner stops
            captions.fill("a red ball next to a blue box")
            page.locator("#score").click()
            expect(page.get_by_text("Enter at least 2 different captions").first).to_be_visible(timeout=20_000)
            expect(page.locator("#summary .pending, #scores .pending")).to_have_count(0)

            # a file that is not an image: a message
            page.locator("#image button[aria-label='Remove Image']").click()
            page.locator("#image input[type=file]").set_input_files(str(not_image))
            captions.fill("a red ball next to a blue box\na blue ball next to a red box")
            page.locator("#score").click()
            expect(page.get_by_text("not an image file").first).to_be_visible(timeout=20_000)
        finally:
            browser.close()
    assert (ARTIFACTS / "app.png").stat().st_size > 50_000
