"""The app in a real headless browser: Debian's Chromium driven by Playwright.

What a user sees, at 1400×900 (light), 390×844 (a phone) and 1400×900 in the dark theme: an
example scored, the story naming the true caption, every panel filled; a mistake after a good
result leaves the result and shows one message by the Score button; no text wraps character by
character; text contrast at least 4.5:1. Screenshots go to ``test-artifacts/``; with
``COMCLIP_UPDATE_SCREENSHOT=1`` the wide one is also written to ``docs/screenshot.png`` (the
README's picture).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from .conftest import ROOT
from .test_app_api import serve

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts"
SCREENSHOT = ROOT / "docs" / "screenshot.png"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium "
                                                     "(apt-get install chromium; CI installs it)"),
]

RESULTS = "#summary, #scores, #margin-chart, #score-chart, #graph, #grounding, #gallery, #weights-chart, #loo"

#: Images on the page that did not load (a broken-image icon to the user).
BROKEN_IMAGES = """() => [...document.querySelectorAll('img')]
    .filter(i => i.getBoundingClientRect().width > 0 && i.complete && i.naturalWidth === 0)
    .map(i => i.outerHTML.slice(0, 80))"""

#: Text laid out with fewer than 4 characters per line (the "0/./0/4" wrap of a squeezed column).
CHAR_WRAPPED = """() => {
  const bad = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const text = n.textContent.trim();
    if (text.length < 8 || !n.parentElement || n.parentElement.closest('script, style, .cm-editor')) continue;
    const range = document.createRange();
    range.selectNodeContents(n);
    const rects = [...range.getClientRects()].filter(r => r.width > 0);
    if (rects.length === 0) continue;
    const lines = new Set(rects.map(r => Math.round(r.top))).size;
    if (lines > 2 && text.length / lines < 4) bad.push(text.slice(0, 40) + ` (${lines} lines)`);
  }
  return bad;
}"""

#: Visible text whose contrast with its background is below 4.5:1 (WCAG AA), in the given areas.
LOW_CONTRAST = """(selector) => {
  const parse = c => { const m = c.match(/[\\d.]+/g).map(Number); return m.length === 3 ? [...m, 1] : m; };
  const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
  const lum = ([r, g, b]) => 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  const background = el => {
    for (let e = el; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c[3] > 0.5) return c;
    }
    return document.body.classList.contains('dark') ? [11, 15, 25, 1] : [255, 255, 255, 1];
  };
  const bad = [];
  for (const root of document.querySelectorAll(selector)) {
    for (const el of root.querySelectorAll('*')) {
      const own = [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim().length > 0);
      const box = el.getBoundingClientRect();
      if (!own || box.width === 0 || getComputedStyle(el).visibility === 'hidden') continue;
      const fg = parse(getComputedStyle(el).color), bg = background(el);
      const [a, b] = [lum(fg), lum(bg)].sort((x, y) => y - x);
      const ratio = (a + 0.05) / (b + 0.05);
      if (ratio < 4.5) bad.push(`${el.textContent.trim().slice(0, 30)}: ${ratio.toFixed(2)}`);
    }
  }
  return bad;
}"""

READABLE = ".gradio-container"  # every text on the page: inputs, settings, results, footer


def _launch(pw):
    return pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)


def _score_example(page, caption: str) -> None:
    """Click an example: it is loaded and scored (no Score click needed)."""
    from playwright.sync_api import expect

    page.locator("#examples").get_by_text(caption).first.click()
    expect(page.locator("#captions textarea")).not_to_have_value("", timeout=10_000)
    expect(page.locator("#summary")).to_contain_text(f"True caption: “{caption}”", timeout=60_000)
    expect(page.locator("#summary .story")).to_be_visible(timeout=60_000)
    page.wait_for_timeout(300)
    expect(page.locator("body")).not_to_contain_text("[object Object]")  # no event sets a panel to a raw value


def _check_readable(page, name: str) -> None:
    assert page.evaluate(BROKEN_IMAGES) == [], name
    assert page.evaluate(CHAR_WRAPPED) == [], name
    low = page.evaluate(LOW_CONTRAST, READABLE)
    assert low == [], (name, low)


def _shrink_png(path: Path, limit: int = 600_000) -> None:
    """Keep the README picture small: palette PNG if the full-colour one is over the limit."""
    from PIL import Image

    if path.stat().st_size > limit:
        img = Image.open(path).convert("RGB")
        img.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(path, optimize=True)


EDITED_GRAPH = ('{"entities": [{"id": "e0", "name": "cup"}, {"id": "e1", "name": "saucer"}], '
                '"relations": [{"subject": "e1", "predicate": "under", "object": "e0"}]}')


def _replace_code(page, editor, text: str) -> None:
    """Replace the code editor's text (inserted as one edit, so no auto-closed brackets)."""
    editor.click()
    page.keyboard.press("Control+a")
    page.keyboard.press("Delete")
    page.keyboard.insert_text(text)


def test_wide_screen_story_and_mistakes(tiny_engine, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    not_image = tmp_path / "photo.png"
    not_image.write_text("these are words, not pixels")
    ARTIFACTS.mkdir(exist_ok=True)
    with serve(tiny_engine) as url, sync_playwright() as pw:
        browser = _launch(pw)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900}, color_scheme="light",
                                    accept_downloads=True)
            page.goto(url)
            expect(page.locator("#random-banner")).to_contain_text("random weights", timeout=30_000)
            # before the first Score: one-line hints, no empty or broken pictures
            expect(page.locator("#summary .hint")).to_contain_text("Results appear here")
            for sel in ("#graph", "#grounding", "#gallery", "#weights-chart"):
                expect(page.locator(f"{sel} .hint")).to_be_visible()
            assert page.evaluate(BROKEN_IMAGES) == []
            page.screenshot(path=str(ARTIFACTS / "wide-start.png"))

            _score_example(page, "a cup on a saucer")
            summary = page.locator("#summary")
            expect(summary).to_contain_text("True caption: “a cup on a saucer”")
            expect(summary.locator(".story")).to_contain_text("the true")
            table = page.locator("#scores")
            expect(table).to_contain_text("a saucer on a cup")
            expect(table.locator("td .tag")).to_have_text("true")
            expect(table.locator(".pick")).to_have_count(2)
            # the story and the scores are in view at 1400×900 without scrolling by hand
            assert page.locator("#summary .story").bounding_box()["y"] < 900
            assert page.locator("#scores table").bounding_box()["y"] < 900
            assert page.locator("#gallery figure").count() == 3  # two entities and one relation
            expect(page.locator("#gallery figcaption").first).to_contain_text("weight")
            page.screenshot(path=str(ARTIFACTS / "wide-result.png"))
            page.screenshot(path=str(ARTIFACTS / "wide-full.png"), full_page=True)
            if os.environ.get("COMCLIP_UPDATE_SCREENSHOT") == "1":
                page.evaluate("window.scrollTo(0, 0)")
                page.screenshot(path=str(SCREENSHOT), full_page=True)
                _shrink_png(SCREENSHOT)
            _check_readable(page, "wide")
            story = summary.inner_text()

            # downloads: the result as JSON, with the true caption and the margins
            with page.expect_download() as info:
                page.locator("#download-json").click()
            record = json.loads(Path(info.value.path()).read_text(encoding="utf-8"))
            assert record["true_caption"] == "a cup on a saucer" and set(record["margins"]) >= {"clip", "comclip"}

            # marking the other caption as true retells the story without re-scoring
            page.locator("#true-caption input").click()
            page.get_by_role("option", name="2. a saucer on a cup").click()
            expect(summary).to_contain_text("True caption: “a saucer on a cup”")
            expect(table.locator("tr.is-true")).to_contain_text("a saucer on a cup")

            # a mistake after a good result: one message by the Score button, the result stays
            captions = page.locator("#captions textarea")
            captions.fill("a cup on a saucer")
            page.locator("#score").click()
            status = page.locator("#status")
            expect(status).to_contain_text("Enter at least 2 different captions", timeout=20_000)
            expect(table).to_contain_text("a saucer on a cup")
            expect(summary.locator(".story")).to_be_visible()
            expect(page.get_by_text("Error", exact=True)).to_have_count(0)
            page.screenshot(path=str(ARTIFACTS / "wide-mistake.png"))
            # the person's next edit clears the stale message (typed as a person types: Gradio's input
            # event, unlike its change event, is not sent for the first value set after an output)
            captions.fill("a cup on a saucer\na saucer on a")
            captions.press_sequentially(" cup")
            expect(status).not_to_contain_text("Enter at least 2", timeout=10_000)

            # a caption far too long: a clear message, nothing breaks
            captions.fill("a cup on a saucer\n" + "a saucer on a cup " * 270)
            page.locator("#score").click()
            expect(status).to_contain_text("characters long; at most 300", timeout=20_000)
            expect(table).to_contain_text("a saucer on a cup")

            # the only counterfactual is already there: that is what the message says
            captions.fill("a cup on a saucer\na saucer on a cup")
            page.locator("#add-counterfactual").click()
            expect(status).to_contain_text("Already in the list", timeout=20_000)
            expect(captions).to_have_value("a cup on a saucer\na saucer on a cup")

            # edit the parse and re-score with it; broken JSON is a message beside the editor
            editor = page.locator("#graph-json .cm-content")
            _replace_code(page, editor, EDITED_GRAPH)
            page.locator("#rescore").click()
            expect(summary).to_contain_text("Using your edited graph", timeout=60_000)
            expect(page.locator("#loo")).to_contain_text("under")
            _replace_code(page, editor, '{"entities": [{"id": "e0", "name": "cup"}], "relations": [{"subject": "e7"')
            page.locator("#rescore").click()
            expect(page.locator("#graph-status")).to_contain_text("not valid JSON", timeout=20_000)
            expect(page.locator("#loo")).to_contain_text("under")
            expect(summary).not_to_have_text(story)  # (still the edited-graph result, not blanked)

            # a file that is not an image: a message, the result stays
            page.locator("#image button[aria-label='Remove Image']").click()
            page.locator("#image input[type=file]").set_input_files(str(not_image))
            page.locator("#score").click()
            expect(status).to_contain_text("not an image file", timeout=20_000)
            expect(table).to_contain_text("a saucer on a cup")
            expect(page.get_by_text("Error", exact=True)).to_have_count(0)
        finally:
            browser.close()


@pytest.mark.parametrize("screen", ["phone", "dark"])
def test_phone_and_dark_theme_are_readable(tiny_engine, screen):
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    viewport = {"width": 390, "height": 844} if screen == "phone" else {"width": 1400, "height": 900}
    scheme = "dark" if screen == "dark" else "light"
    with serve(tiny_engine) as url, sync_playwright() as pw:
        browser = _launch(pw)
        try:
            page = browser.new_page(viewport=viewport, color_scheme=scheme, is_mobile=screen == "phone")
            page.goto(url + ("?__theme=dark" if screen == "dark" else ""))
            page.wait_for_selector("#score")
            assert page.evaluate("document.body.classList.contains('dark')") == (screen == "dark")
            _check_readable(page, f"{screen} before Score")
            expect(page.locator("footer .show-api")).to_be_visible()  # "Use via API" on every screen
            _score_example(page, "a flag behind a woman in an orange suit")
            page.screenshot(path=str(ARTIFACTS / f"{screen}-result.png"))
            page.screenshot(path=str(ARTIFACTS / f"{screen}-full.png"), full_page=True)
            _check_readable(page, screen)
            # nothing wider than the screen; tables and gallery captions fit and are not cut
            assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"] + 1
            for table in ("#scores table", "#loo table"):
                box, wrap = (page.locator(table).bounding_box(),
                             page.locator(table).locator("xpath=..").bounding_box())
                assert box["width"] <= wrap["width"] + 1, table
            clipped = page.evaluate("""() => [...document.querySelectorAll('#gallery figcaption')]
                .filter(f => f.scrollHeight > f.clientHeight + 1 || f.scrollWidth > f.clientWidth + 1).length""")
            assert clipped == 0
        finally:
            browser.close()


def test_a_cached_example_shows_its_result_in_under_a_second(tiny_engine):
    """The examples' results are computed at start; clicking one shows it at once, from the cache."""
    import time

    from playwright.sync_api import expect, sync_playwright

    import app
    from comclip.studio.events import Studio

    from .test_app_api import free_port

    studio = Studio.create(tiny_engine)
    demo = app.build_demo(studio)
    studio.warm_examples(app.load_examples())
    computed = studio.service.cache.computed
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                **app.launch_options())
    try:
        with sync_playwright() as pw:
            browser = _launch(pw)
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 900})
                page.goto(f"http://127.0.0.1:{port}/")
                page.wait_for_selector("#examples")
                page.wait_for_timeout(500)
                for caption in ("a man behind a camera", "a white rocket under a dark blue sky"):
                    example = page.locator("#examples").get_by_text(caption).first
                    start = time.perf_counter()
                    example.click()
                    expect(page.locator("#summary")).to_contain_text(f"True caption: “{caption}”", timeout=10_000)
                    expect(page.locator("#status")).to_contain_text("from cache")
                    waited = time.perf_counter() - start
                    print(f"cached example {caption!r}: {waited:.3f} s")
                    assert waited < 1.0, caption
                    expect(page.locator("#gallery img").first).to_be_visible()
                    expect(page.locator("body")).not_to_contain_text("[object Object]")
            finally:
                browser.close()
    finally:
        demo.close()
    assert studio.service.cache.computed == computed  # both served from the examples' pinned results


def test_an_upload_prepares_its_image_before_the_click(tiny_engine):
    """Issue 26: uploading an image runs the page's upload event (``Studio.prepare``), which computes the
    detector's image part while captions are typed — the Score click then finds it kept."""
    import time

    from playwright.sync_api import sync_playwright

    from comclip.images import image_digest, load_image

    upload = ROOT / "assets" / "examples" / "red_ball_blue_box.png"
    digest = image_digest(load_image(upload).image)
    det = tiny_engine.detector

    def kept() -> bool:
        return any(key[0] == digest for key in det._images.keys())

    with serve(tiny_engine) as url, sync_playwright() as pw:
        det.clear_caches()
        browser = _launch(pw)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(url)
            page.wait_for_selector("#score")
            assert not kept()
            page.locator("#image input[type=file]").set_input_files(str(upload))
            deadline = time.time() + 30
            while not kept() and time.time() < deadline:
                time.sleep(0.1)
            assert kept()  # before any click
        finally:
            browser.close()


#: Counts the frame callbacks that reach the browser (installed before any page script, so beneath the
#: page's own first script, comclip.studio.frames).
COUNT_FRAMES = """(() => {
  const frame = window.requestAnimationFrame.bind(window);
  window.__frames = 0;
  window.requestAnimationFrame = (callback) => { window.__frames++; return frame(callback); };
})()"""


def test_an_idle_page_asks_for_ten_timer_frames_a_second_not_sixty(tiny_engine):
    """Gradio's status timer renews itself every frame, and the loading screen's never stops: an idle
    page asked for 60 frames a second. The page's first script (comclip.studio.frames) hands the timer
    a frame every 0.1 s; a Score still shows its progress and its answer."""
    from playwright.sync_api import expect, sync_playwright

    with serve(tiny_engine) as url, sync_playwright() as pw:
        browser = _launch(pw)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.add_init_script(COUNT_FRAMES)
            page.goto(url)
            page.wait_for_selector("#score")
            page.wait_for_timeout(5000)  # the page's own opening transitions run for a few seconds
            assert page.evaluate("window.__comclipTimerFrames") > 0  # it ran before Gradio and knew its timer
            before = page.evaluate("[window.__frames, performance.now()]")
            page.wait_for_timeout(2000)
            after = page.evaluate("[window.__frames, performance.now()]")
            per_second = (after[0] - before[0]) / ((after[1] - before[1]) / 1e3)
            print(f"idle page: {per_second:.1f} frame callbacks a second")
            assert per_second < 30  # 60 and more without the script
            _score_example(page, "a cup on a saucer")
            expect(page.locator("#scores")).to_contain_text("a saucer on a cup")
        finally:
            browser.close()
