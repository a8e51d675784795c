"""comclip.studio.frames: the page's first script, which hands Gradio's status timer a frame ten times
a second instead of sixty, and the middleware that puts it first in the page (the browser's side:
tests/test_app_browser.py counts the frames an idle page asks for)."""

from __future__ import annotations

import gzip
import re

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from comclip.studio import frames

PAGE = ("<!doctype html><html><HEAD lang='en'><title>t</title><script type=module src=x.js></script></head>"
        "<body></body></html>")


def _client() -> TestClient:
    async def page(request):
        return HTMLResponse(PAGE)

    async def data(request):
        return JSONResponse({"html": "<head>"})

    async def zipped(request):
        return Response(gzip.compress(PAGE.encode()), media_type="text/html", headers={"content-encoding": "gzip"})

    async def post(request):
        return HTMLResponse(PAGE)

    app = Starlette(routes=[Route("/", page), Route("/data", data), Route("/zipped", zipped),
                            Route("/post", post, methods=["POST"])],
                    middleware=[Middleware(frames.TimerFrames)])
    return TestClient(app)


def test_the_script_comes_first_in_the_page_head_with_the_right_length():
    answer = _client().get("/")
    assert answer.status_code == 200
    text = answer.text
    assert text.index("data-comclip-frames") < text.index("<title>") < text.index("x.js")
    assert text.startswith("<!doctype html><html><HEAD lang='en'><script data-comclip-frames>")
    assert int(answer.headers["content-length"]) == len(answer.content) == len(PAGE) + len(frames.SCRIPT.encode())


def test_other_answers_pass_untouched():
    client = _client()
    assert client.get("/data").json() == {"html": "<head>"}
    assert "data-comclip-frames" not in client.post("/post").text  # only a GET is the page
    assert "data-comclip-frames" not in client.get("/zipped", headers={"accept-encoding": "identity"}).text
    assert frames.with_script(b"<p>no head</p>") == b"<p>no head</p>"
    assert frames.with_script(b"<header>x</header>", "S") == b"<header>x</header>"  # a <header> is not the head
    assert frames.with_script(b"<html><head>", "S") == b"<html><head>S"


def test_the_timer_pattern_knows_gradios_timer_and_nothing_else():
    timer = re.compile(frames.TIMER)
    # Gradio 6's status tracker, minified as it ships, and as written
    assert timer.search("()=>{F(Pe,(performance.now()-w(de))/1e3),W&&ze()}")
    assert timer.search("() => { timer_diff = (performance.now() - timer_start) / 1000; if (_timer) run(); }")
    for other in ("()=>{this.measure()}", "()=>{e.scrollTo(0,(performance.now()-s)*2)}",
                  "()=>{const t=performance.now();for(const e of q)e(t)}", "function(){return 1}",
                  "()=>{a();{b((performance.now()-c)/1e3)}}"):
        assert not timer.search(other), other
