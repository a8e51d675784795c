"""What a person waits for: one Score click in Chromium, from the click to the results table, with
the server's own per-stage log for the same click — and, timed in the same run, the honest yardstick:
one plain fp32 eager Grounding DINO forward at 800 px (the detector as its authors run it).

    python scripts/bench_browser.py [--preset arch-fast] [--clicks 3] [--phrase-sets 1|2] [--image PATH]
                                    [--settle S] [--read S] [--type-delay MS] [--no-prepare]
                                    [--trace] [--no-reference] [--json OUT]

It starts ``app.py`` (a subprocess, its log captured), uploads the image, and for each click types
captions no earlier click used (no cache can answer), clicks Score and waits for the table to show
the first caption. The wait is timed *in the page* (``performance.now()``: the click event, then the
first animation frame after ``#scores`` holds the caption, awaited as a promise the page resolves, so
nothing polls while the server works) — a Playwright ``expect`` polls every 500 ms after its first tries,
which had added up to half a second to each click. Each click's server line
(``comclip.studio.click``: checks, gate, model call with the engine's stages, panels) is matched to it,
so the part of the wait the server does not see — queue, transport, the page drawing the answer — is
the difference; the CPU seconds the browser and everything else used during the click are read from
/proc. Run on an idle machine: the numbers are wall times. Needs Playwright and Chromium (``CHROMIUM``
or /usr/bin/chromium).

How the captions arrive decides what the app can do before the click: it computes ahead what the click
will need (``COMCLIP_PREPARE``, on by default) from the moment the captions change. By default they are
pasted at once and Score is clicked ``--settle`` 0.5 s later (a hand going to the button), and the
next captions come ``--read`` 2 s after an answer shows (a person reads it; the inspector is drawn meanwhile);
``--settle 0`` clicks at once (nothing can be done ahead); ``--type-delay MS`` types them key by key;
``--no-prepare`` turns the app's guessing off, so each click computes everything itself. Each click's
line shows the app's guesses logged since its captions were typed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the checkout's comclip, as app.py uses it
CLICK_LINE = re.compile(r"click (\w+): (.*) total=(\d+) ms")
GUESS = re.compile(r"prepared the typed captions.*|a guess at the next click gave way.*")
ADJECTIVES = ("red", "blue", "green", "small", "large", "white", "black", "yellow", "wooden", "shiny", "old", "new")


def captions_for(k: int, phrase_sets: int = 1) -> list[str]:
    """Four fresh captions for click ``k``. ``phrase_sets=1``: one set of phrases in four relations
    (Winoground's swap and two more), so the detector reads one prompt — as ``bench --click``'s default
    request; ``2``: two bindings of the same words, twice (two prompts, two detector fusions)."""
    a, b = ADJECTIVES[k % len(ADJECTIVES)], ADJECTIVES[(k + 5) % len(ADJECTIVES)]
    if phrase_sets == 1:
        return [f"a {a} cup on a {b} saucer", f"a {b} saucer on a {a} cup", f"a {a} cup next to a {b} saucer",
                f"a {b} saucer under a {a} cup"]
    return [f"a {a} cup on a {b} saucer", f"a {b} saucer on a {a} cup", f"a {b} cup on a {a} saucer",
            f"a {a} saucer on a {b} cup"]


def cpu_seconds() -> dict[str, float]:
    """CPU seconds used so far by the browser's processes and by everything else, from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {"browser": 0.0, "other": 0.0}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        name = text[text.index("(") + 1:text.rindex(")")]
        fields = text[text.rindex(")") + 2:].split()
        used = (int(fields[11]) + int(fields[12])) / tick
        out["browser" if "chrom" in name.lower() else "other"] += used
    return out


def reference_in_subprocess(preset: str) -> float:
    """:func:`reference_forward` in a process of its own, so its model, memory and threads are gone
    before the app starts (in this process they had slowed the clicks that followed)."""
    code = (f"import sys; sys.path.insert(0, {str(ROOT / 'scripts')!r}); import bench_browser; "
            f"print(bench_browser.reference_forward({preset!r}))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def reference_forward(preset: str, repeats: int = 2) -> float:
    """Seconds of one plain fp32 eager forward of the preset's detector (transformers' own model,
    no autocast, no gather sampling) at 800 px (800 × 1066, one prompt of two phrases); median."""
    import torch

    import comclip

    engine = comclip.load(preset, device="cpu")
    det = engine.detector
    tokens = det.processor.tokenizer(["a cup . a saucer ."], return_tensors="pt")
    pixels = torch.randn(1, 3, 800, 1066)
    plain = det.using_backend("transformers") if hasattr(det, "using_backend") else _nothing()
    times = []
    with plain, torch.inference_mode():
        for _ in range(repeats + 1):
            start = time.perf_counter()
            det.model(pixel_values=pixels, pixel_mask=torch.ones(1, 800, 1066, dtype=torch.long), **tokens)
            times.append(time.perf_counter() - start)
    return statistics.median(times[1:])


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def sample_cpu(trace: list[tuple[float, dict[str, float]]], stop: threading.Event) -> None:
    """``--trace``: CPU seconds used so far, every 0.1 s until ``stop``."""
    while not stop.is_set():
        trace.append((time.perf_counter(), cpu_seconds()))
        time.sleep(0.1)


#: Timed in the page itself (no polling granularity): the Score click's time (capture phase) and the first
#: frame after ``#scores`` shows the first caption.
WATCH = """(caption) => {
  window.__clicked = null; window.__painted = null;
  window.__shown = new Promise((resolve) => { window.__resolve = resolve; });
  document.querySelector('#score').addEventListener('click', () => { window.__clicked = performance.now(); },
                                                   {capture: true, once: true});
  const scores = document.querySelector('#scores');
  const seen = new MutationObserver(() => {
    if (scores.textContent.includes(caption)) {
      seen.disconnect();
      requestAnimationFrame(() => { window.__painted = performance.now(); window.__resolve(); });
    }
  });
  seen.observe(scores, {childList: true, subtree: true, characterData: true});
}"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(preset: str, port: int, prepare: bool = True) -> tuple[subprocess.Popen, list[str]]:
    lines: list[str] = []
    proc = subprocess.Popen([sys.executable, "app.py", "--preset", preset, "--port", str(port)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1", "COMCLIP_PREPARE": "1" if prepare else "0"})

    def read() -> None:
        for line in proc.stdout:  # type: ignore[union-attr]
            lines.append(line.rstrip())

    threading.Thread(target=read, daemon=True).start()
    deadline = time.time() + 600
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2)
            return proc, lines
        except OSError:
            if proc.poll() is not None:
                raise SystemExit("the app stopped:\n" + "\n".join(lines[-20:])) from None
            time.sleep(1)
    raise SystemExit("the app did not start in 10 minutes")


def wait_warm(lines: list[str], timeout: float = 600) -> None:
    """Until the examples' warm-up has finished (it would compete with the clicks for the CPU)."""
    deadline = time.time() + timeout
    while time.time() < deadline and not any(re.search(r"examples: \d+ scored and cached", line) for line in lines):
        time.sleep(0.5)


def click_line(lines: list[str], seen: int) -> dict[str, float]:
    for line in lines[seen:]:
        m = CLICK_LINE.search(line)
        if m:
            stages = {k: float(v) for k, v in re.findall(r"(\w+)=([\d.]+)", m.group(2))}
            return {**stages, "total": float(m.group(3))}
    return {}


def preset_file(name: str, folder: Path) -> str:
    """``arch-fast``: arch-b32 (random weights) with the detector at the fast preset's 384 px, as a
    preset file; any other name is used as given."""
    if name != "arch-fast":
        return name
    from comclip.presets import get_preset

    data = json.loads((ROOT / "comclip" / "presets" / "arch-b32.json").read_text(encoding="utf-8"))
    data["name"] = "arch-fast"
    data["description"] = "arch-b32 with the detector at 384 px (the fast preset's geometry), random weights"
    data["detector"]["size"] = get_preset("fast").detector.size
    path = folder / "arch-fast.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return str(path)


def run(args: argparse.Namespace) -> dict:
    import tempfile

    from playwright.sync_api import sync_playwright

    args.preset = preset_file(args.preset, Path(tempfile.mkdtemp(prefix="bench-browser-")))

    reference = reference_in_subprocess(args.preset) if args.reference else float("nan")
    port = free_port()
    proc, lines = start_app(args.preset, port, args.prepare)
    clicks, prepared = [], []
    try:
        wait_warm(lines)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=os.environ.get("CHROMIUM", "/usr/bin/chromium"),
                                         args=["--headless", "--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(f"http://127.0.0.1:{port}/")
            page.wait_for_selector("#score")
            page.locator("#image input[type=file]").set_input_files(str(args.image))
            page.wait_for_timeout(1500)  # the upload finishes before the first click
            for k in range(args.clicks):
                caps = captions_for(k, args.phrase_sets)
                typed = len(lines)
                box = page.locator("#captions textarea")
                if args.type_delay:  # key by key, as a person types (each key changes the captions)
                    box.fill("")
                    box.press_sequentially("\n".join(caps), delay=args.type_delay)
                else:
                    box.fill("\n".join(caps))
                # A person's hand goes from the keyboard to the button: the captions' own event (the
                # true-caption menu follows them) is answered before the click, as it is for a person.
                page.wait_for_timeout(args.settle * 1e3)
                seen = len(lines)
                trace: list[tuple[float, dict[str, float]]] = []
                sampling = threading.Event()
                sampler = threading.Thread(target=sample_cpu, args=(trace, sampling)) if args.trace else None
                page.evaluate(WATCH, caps[0])
                before = cpu_seconds()
                if sampler:
                    sampler.start()
                start = time.perf_counter()
                page.locator("#score").click()
                page.evaluate("window.__shown")  # resolved by the page itself: no polling while the server works
                wall = time.perf_counter() - start
                after = cpu_seconds()
                waited = page.evaluate("window.__painted - window.__clicked") / 1e3
                if sampler:
                    sampling.set()
                    sampler.join()
                    for (_, a), (t1, b) in zip(trace, trace[1:], strict=False):
                        print(f"  {t1 - start:5.2f} s  CPU s: browser {b['browser'] - a['browser']:.2f}, other "
                              f"{b['other'] - a['other']:.2f}")
                used = {k: round(after[k] - before[k], 2) for k in after}
                time.sleep(0.5)  # the server's line is written as the answer goes out
                server = click_line(lines, seen)
                guesses = [GUESS.search(line).group(0) for line in lines[typed:] if GUESS.search(line)]
                clicks.append({"browser_ms": round(waited * 1e3), "wall_ms": round(wall * 1e3), "server": server,
                               "unseen_ms": round(waited * 1e3 - server.get("total", 0.0)), "cpu_s": used,
                               "guesses": guesses})
                print(f"click {k + 1}: {waited:.2f} s in the browser; CPU s {used}; server {server}; "
                      f"before it: {guesses}", flush=True)
                # A person reads the answer before typing again (the inspector is drawn meanwhile); what the
                # app computes ahead for the next click starts from a quiet machine, as it would for them.
                page.wait_for_timeout(args.read * 1e3)
            prepared = [line for line in lines if "prepared an uploaded image" in line]
            browser.close()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    median = statistics.median(c["browser_ms"] for c in clicks) / 1e3
    return {"preset": args.preset, "image": str(args.image), "phrase_sets": args.phrase_sets,
            "settle_s": args.settle, "read_s": args.read, "type_delay_ms": args.type_delay, "prepare": args.prepare,
            "clicks": clicks,
            "upload_prepared": prepared[0].split(" in ")[-1] if prepared else None,
            "median_click_s": round(median, 3),
            "reference_forward_s": round(reference, 3), "ratio": round(median / reference, 3),
            "cpu": cpu_summary()}


def cpu_summary() -> dict:
    """The CPU's name, its core count and the flags that decide bf16 speed."""
    model, flags = "", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and not model:
                model = line.split(":", 1)[1].strip()
            if line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    wanted = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")
    return {"model": model, "cores": os.cpu_count(), "flags": [f for f in wanted if f in flags]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="arch-fast",
                        help="a preset name or file; arch-fast (the default): the fast preset's geometry — ViT-B/32 "
                             "and Grounding DINO tiny at 384 px — with random weights, no download")
    parser.add_argument("--clicks", type=int, default=3)
    parser.add_argument("--phrase-sets", type=int, choices=(1, 2), default=1,
                        help="phrase sets among each click's four captions = detector prompts per click [default: 1]")
    parser.add_argument("--image", type=Path, default=ROOT / "assets" / "examples" / "coffee_cup_saucer.jpg")
    parser.add_argument("--settle", type=float, default=0.5, metavar="S",
                        help="seconds between typing the captions and clicking Score [default: 0.5]")
    parser.add_argument("--read", type=float, default=2.0, metavar="S",
                        help="seconds between a click's answer and typing the next captions [default: 2]")
    parser.add_argument("--type-delay", type=float, default=0, metavar="MS",
                        help="type the captions key by key, MS ms apart (0, the default: all at once, as a paste)")
    parser.add_argument("--no-prepare", dest="prepare", action="store_false",
                        help="the app computes nothing ahead of a click (COMCLIP_PREPARE=0): each click computes "
                             "everything itself")
    parser.add_argument("--trace", action="store_true", help="print CPU use every 0.1 s during each click")
    parser.add_argument("--no-reference", dest="reference", action="store_false",
                        help="skip the 800 px reference forward (quick iterations; no ratio)")
    parser.add_argument("--json", type=Path, help="write the figures here as JSON")
    args = parser.parse_args()
    out = run(args)
    print(json.dumps(out, indent=2))
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
