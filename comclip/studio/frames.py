"""The page's animation frames: Gradio's status timers at ten frames a second, not sixty.

Gradio's status tracker (``@gradio/statustracker``) counts a pending event's seconds with a
``requestAnimationFrame`` loop that renews itself until the event is no longer pending — and a tracker
removed while pending (the loading screen's, on every page) never stops it. So every Gradio 6 page
asks for 60 frames a second for as long as it is open, and a Score click runs that loop as well as
its own: measured in headless Chromium on a 2-core CPU, an idle page used 6–7 % of a core, and the
browser's frames took CPU from the engine during each click (scripts/bench_browser.py).

The timer shows tenths of a second, so ten frames a second show exactly what sixty do.
:data:`SCRIPT` runs before Gradio's own modules (the status tracker keeps the
``requestAnimationFrame`` it finds when it loads) and hands a frame callback that is Gradio's timer —
a short arrow function that computes ``(performance.now() - start) / 1e3`` — to the browser 0.1 s
later instead of at the next frame. Every other callback gets its frame as before.
:class:`TimerFrames` is the ASGI middleware that puts the script first in the page's ``<head>``
(Gradio's own ``head`` setting is added by its scripts, after they have loaded)."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

#: Gradio's status timer callback, minified as it ships (``()=>{F(Pe,(performance.now()-w(de))/1e3),W&&ze()}``)
#: or not: one short arrow function that divides the time since a start by 1e3 (or 1000) and renews itself.
TIMER = r"^\(\)\s*=>\s*\{[^{}]{0,120}performance\.now\(\)\s*-[^{}]{0,60}\)\s*/\s*(1e3|1000)[^{}]{0,80}\}$"
#: How long a timer callback waits for its frame (the timer shows tenths of a second).
TIMER_FRAME_MS = 100

SCRIPT = f"""<script data-comclip-frames>
(() => {{
  const frame = window.requestAnimationFrame.bind(window);
  const timer = new RegExp({TIMER!r});
  window.__comclipTimerFrames = 0;
  window.requestAnimationFrame = (callback) => {{
    if (typeof callback === "function" && callback.length === 0 && timer.test(String(callback))) {{
      window.__comclipTimerFrames++;
      setTimeout(() => frame(callback), {TIMER_FRAME_MS});
      return 0;  // never cancelled: Gradio's timer stops by not renewing itself
    }}
    return frame(callback);
  }};
}})();
</script>"""

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
_HEAD = re.compile(rb"<head(\s[^>]*)?>", re.IGNORECASE)  # not <header>


def with_script(html: bytes, script: str = SCRIPT) -> bytes:
    """``html`` with ``script`` first in its ``<head>`` (unchanged where it has no ``<head>``)."""
    found = _HEAD.search(html)
    if found is None:
        return html
    return html[:found.end()] + script.encode() + html[found.end():]


class TimerFrames:
    """ASGI middleware: the page (an HTML answer to a ``GET``) gets :data:`SCRIPT` first in its ``<head>``;
    every other answer passes through untouched."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") != "GET":
            await self.app(scope, receive, send)
            return
        start: Message | None = None
        body: list[bytes] = []

        async def rewrite(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                headers = {k.lower(): v for k, v in message.get("headers", [])}
                if headers.get(b"content-type", b"").startswith(b"text/html") and b"content-encoding" not in headers:
                    start = message  # held until the whole page is here
                    return
                await send(message)
                return
            if start is None or message["type"] != "http.response.body":
                await send(message)
                return
            body.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            page = with_script(b"".join(body))
            headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
            await send({**start, "headers": [*headers, (b"content-length", str(len(page)).encode())]})
            await send({"type": "http.response.body", "body": page})

        await self.app(scope, receive, rewrite)
