"""The app's logic without a browser: the story, tables and downloads; serving (engines, the
single-flight cache, offered presets); image checks before decoding; the command line."""

from __future__ import annotations

import csv
import io
import socket
import subprocess
import sys
import threading
import time

import pytest
from PIL import Image

from comclip.errors import InputError
from comclip.graph import SceneGraph
from comclip.options import Options
from comclip.result import CaptionResult, MatchResult
from comclip.studio import presentation, requests, session

from .conftest import ROOT


def result(scores: list[tuple[float, float]], captions: list[str] | None = None) -> MatchResult:
    captions = captions or [f"caption {i}" for i in range(len(scores))]
    caps = [CaptionResult(caption=t, clip_score=a, comclip_score=b, graph=SceneGraph(t), components=[])
            for t, (a, b) in zip(captions, scores, strict=True)]
    return MatchResult(image_path=None, width=10, height=10, captions=caps, preset="tiny",
                       models={"random_weights": True}, options=Options(), logit_scale=100.0, timings_ms={})


# -- the story ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("scores", "true", "lead"), [
    ([(0.20, 0.30), (0.231, 0.288)], 0,
     "CLIP prefers the wrong caption “caption 1” by 0.031 — ComCLIP picks the true one by 0.012."),
    ([(0.25, 0.30), (0.20, 0.31)], 0,
     "CLIP picks the true caption by 0.050 — ComCLIP prefers the wrong caption “caption 1” by 0.010."),
    ([(0.25, 0.30), (0.20, 0.20)], 0, "Both pick the true caption: CLIP by 0.050, ComCLIP by 0.100 (ComCLIP widens"),
    ([(0.25, 0.30), (0.20, 0.20), (0.31, 0.40)], 0,
     "Both prefer a wrong caption: CLIP “caption 2” by 0.060, ComCLIP “caption 2” by 0.100."),
    ([(0.25, 0.30), (0.20, 0.20)], 1,
     "Both prefer a wrong caption: CLIP “caption 0” by 0.050, ComCLIP “caption 0” by 0.100."),
])
def test_story_names_the_true_caption_and_who_got_it_right(scores, true, lead):
    text = presentation.story(result(scores), true)
    plain = text.replace("<b>", "").replace("</b>", "")
    plain = plain.replace('<i title="caption 1">', "").replace('<i title="caption 0">', "")
    plain = plain.replace('<i title="caption 2">', "").replace("</i>", "")
    assert plain.startswith(lead)


def test_margins_and_tiny_numbers_are_printed_precisely():
    clip, com = presentation.verdicts(result([(0.2000, 0.3), (0.20002, 0.2999)]), 0)
    assert clip.margin == pytest.approx(-0.00002) and not clip.right and clip.best_wrong == 1
    assert com.margin == pytest.approx(0.0001) and com.right
    assert presentation.fmt_num(0.00002) == "2e-05" and presentation.fmt_num(0.0312) == "0.031"
    assert presentation.fmt_num(0.00312) == "0.0031"
    assert presentation.fmt_signed(-0.0000751, 4) == "−7.5e-05"


def test_score_table_marks_picks_and_the_true_caption_and_shortens_long_captions():
    long = "a cup on a saucer " * 20
    r = result([(0.20, 0.30), (0.25, 0.28)], ["a cup on a saucer", long.strip()])
    table = presentation.score_table(r, 0)
    assert table.count('class="num pick"') == 2 and "★ 0.2500" in table and "★ 0.3000" in table
    assert '<tr class=is-true><td class="idx">1</td>' in table and 'class="tag">true' in table
    assert f'title="{long.strip()}"' in table and "…" in table  # full text on hover


def test_downloads_hold_the_result_the_true_caption_and_margins(tmp_path, monkeypatch):
    monkeypatch.setattr(presentation, "DOWNLOADS", tmp_path)
    r = result([(0.20, 0.30), (0.25, 0.28)], ["a cup on a saucer", "a saucer on a cup"])
    json_path, csv_path = presentation.write_downloads(r, 0, "k" * 40)
    record = __import__("json").loads(open(json_path, encoding="utf-8").read())
    assert record["true_caption"] == "a cup on a saucer"
    assert record["margins"]["clip"] == pytest.approx(-0.05) and record["margins"]["comclip"] == pytest.approx(0.02)
    assert record["captions"][1]["clip_score"] == 0.25
    rows = list(csv.DictReader(io.StringIO(open(csv_path, encoding="utf-8").read())))
    assert [r["caption"] for r in rows] == ["a cup on a saucer", "a saucer on a cup"]
    assert rows[0]["true"] == "True" and rows[1]["clip_rank"] == "1" and float(rows[0]["comclip_score"]) == 0.3


# -- serving ------------------------------------------------------------------------------------

def test_identical_requests_in_flight_are_computed_once():
    cache = session.ResultCache(size=4)
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
    cache = session.ResultCache(size=4)

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

    engines = session.Engines(loader, capacity=2, pinned="start")
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
    assert session.offered_presets("tiny") == ["tiny"]
    monkeypatch.setattr(loading, "preset_available", lambda preset: preset.random_weights or preset.name == "default")
    assert session.offered_presets("tiny") == ["default", "tiny"]
    assert "arch-b32" not in session.offered_presets("default")


def test_api_accepts_only_offered_presets():
    assert requests.api_options({"preset": "tiny"}, "default", ["default", "tiny"])[0] == "tiny"
    with pytest.raises(InputError, match="unknown preset 'arch-b32' for this app; choose one of: default, tiny"):
        requests.api_options({"preset": "arch-b32"}, "default", ["default", "tiny"])


# -- images -------------------------------------------------------------------------------------

def test_huge_png_is_refused_from_its_header_before_decoding(tmp_path):
    path = tmp_path / "flat.png"
    Image.new("1", (9000, 9000)).save(path)  # a small file of 81 megapixels
    started = time.perf_counter()
    with pytest.raises(InputError, match="image is too large: “flat.png” is 9000x9000 = 81 megapixels"):
        requests.prepare_image({"path": str(path), "orig_name": "flat.png"})
    assert time.perf_counter() - started < 1.0


def test_large_jpeg_is_decoded_reduced(tmp_path):
    path = tmp_path / "big.jpg"
    Image.new("RGB", (4000, 3000), "orange").save(path, quality=70)
    loaded, notes = requests.prepare_image(str(path), pixel_cap=1_000_000)
    assert loaded.width * loaded.height <= 1_000_000 and abs(loaded.width / loaded.height - 4 / 3) < 0.01
    assert len(notes) == 1 and "4000×3000" in notes[0]


def test_caption_length_is_capped():
    with pytest.raises(InputError, match=r"Caption 2 \(“x+…”\) is 4,859 characters long; at most 300"):
        requests.split_captions(["a cup", "x" * 4859])


# -- the command line ---------------------------------------------------------------------------

def test_help_prints_usage_without_loading_models():
    out = subprocess.run([sys.executable, str(ROOT / "app.py"), "--help"], capture_output=True, text=True,
                         timeout=120, cwd=ROOT)
    assert out.returncode == 0 and out.stdout.startswith("usage: python app.py")
    assert "COMCLIP_PRESET" in out.stdout and "loading preset" not in out.stdout + out.stderr


def test_port_in_use_is_one_clear_line(tiny_engine, monkeypatch, capsys):
    import app

    engines = session.Engines
    monkeypatch.setattr(app.session, "Engines", lambda **kw: engines(lambda name: tiny_engine, **kw))
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code = app.main(app.parse_args(["--preset", "tiny", "--host", "127.0.0.1", "--port", str(port)]))
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err == [f"error: cannot listen on 127.0.0.1:{port} — the port is in use (or not allowed); choose "
                   "another with --port N (or GRADIO_SERVER_PORT=N)"]


def test_each_front_end_words_the_remedy_as_its_own_control():
    from comclip.cli.main import HINTS as CLI
    from comclip.errors import RUN_OFFLINE, USE_CPU, InputError, ModelUnavailableError, option_hint, with_hint
    from comclip.studio.messages import user_message

    exc = ModelUnavailableError("could not load x: not in the local Hugging Face cache (...) and the hub cannot be "
                                "reached (offline). Connect once so it can be downloaded, or point HF_HOME at a "
                                "cache that has it", hint=RUN_OFFLINE)
    message = user_message(exc)
    assert "--preset" not in message and message.endswith("that has it; choose “tiny” in the Preset menu to run "
                                                          "offline with random weights")
    assert with_hint(exc, CLI).endswith("that has it; `--preset tiny` runs offline with random weights")
    assert user_message(InputError("no GPU", hint=USE_CPU)) == "no GPU; start the app with COMCLIP_DEVICE=cpu"
    squash = InputError("resize 'squash' cannot be done here", hint=option_hint("resize", "model"))
    assert user_message(squash).endswith("; choose “model” for Resize in the settings")
    assert user_message(InputError("plain")) == "plain"
