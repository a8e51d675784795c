"""The app's command line (python app.py): help without models, a busy port, remedies in the page's words."""

from __future__ import annotations

import socket
import subprocess
import sys

from .conftest import ROOT

# -- the command line ---------------------------------------------------------------------------

def test_help_prints_usage_without_loading_models():
    out = subprocess.run([sys.executable, str(ROOT / "app.py"), "--help"], capture_output=True, text=True,
                         timeout=120, cwd=ROOT)
    assert out.returncode == 0 and out.stdout.startswith("usage: python app.py")
    assert "COMCLIP_PRESET" in out.stdout and "loading preset" not in out.stdout + out.stderr


def test_port_in_use_is_one_clear_line(tiny_engine, monkeypatch, capsys):
    import app

    monkeypatch.setattr("comclip.studio.service._load", lambda name, device: tiny_engine)
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
