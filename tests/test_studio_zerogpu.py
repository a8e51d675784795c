"""The app on ZeroGPU, with a stand-in that calls it as the ``spaces`` package does (tests/zerogpu.py):
arguments pickled into a forked worker, results pickled back, one GPU allocation per call.

What a Space's user relies on: ``/match`` answers with the CLI's numbers, one allocation per click
(none for a cached answer), at most one for the examples' warm-up, stage messages from the worker,
and the app's own clear messages — not "ZeroGPU worker error" — for a bad request.
"""

from __future__ import annotations

import json
import pickle

import pytest
from PIL import Image

from comclip.cli.main import main
from comclip.errors import ComCLIPError
from comclip.images import load_image
from comclip.options import Options
from comclip.studio.model_call import ModelRunner, call_for, gpu_seconds

from . import zerogpu
from .conftest import ASSETS, EXAMPLE_IMAGE
from .test_app_api import free_port

CAPTIONS = ["a mug in some grass", "some grass in a mug"]
BALL = ASSETS / "examples" / "red_ball_blue_box.png"


def _numbers(d: dict) -> dict:
    """What a result says, without timings: captions with both scores, every component's numbers."""
    def components(c: dict) -> list:
        return [(k["kind"], k["text"], round(k["weight"], 5), round(k["similarity"], 5)) for k in c["components"]]

    return {"captions": [{"caption": c["caption"], "clip": round(c["clip_score"], 5),
                          "comclip": round(c["comclip_score"], 5), "components": components(c)} for c in d["captions"]]}


def test_the_stand_in_refuses_what_zerogpu_refuses(tiny_engine):
    """The old wiring passed the engine to the GPU function: on ZeroGPU that cannot be pickled."""
    with zerogpu.installed() as allocations:
        import spaces

        @spaces.GPU(duration=5)
        def run(engine, captions):
            return engine.match(Image.open(EXAMPLE_IMAGE), captions).to_dict()

        with pytest.raises((pickle.PicklingError, AttributeError, TypeError)):
            run(tiny_engine, CAPTIONS)
        assert len(allocations) == 1 and hasattr(run, "zerogpu")


def test_a_model_call_runs_in_a_forked_worker_with_stages_streamed(tiny_engine):
    with zerogpu.installed() as allocations:
        runner = ModelRunner(lambda preset: tiny_engine)
        assert runner.zerogpu
        image = load_image(EXAMPLE_IMAGE)
        call = call_for("tiny", [image], CAPTIONS, None, Options(parser="rules"))
        stages = []
        results = runner(call, lambda stage, count: stages.append(stage))
    direct = tiny_engine.match(Image.open(EXAMPLE_IMAGE), CAPTIONS, parser="rules")
    assert [c.comclip_score for c in results[0].captions] == pytest.approx([c.comclip_score for c in direct.captions],
                                                                           abs=1e-6)
    assert allocations.calls == [(allocations.calls[0][0], float(gpu_seconds(call)))]  # one, sized by the call
    assert {"ground", "encode"} <= set(stages)  # told from the worker, as they started


def test_an_error_in_the_worker_keeps_its_own_message(tiny_engine, monkeypatch):
    """The engine's clear message (here: the LLM parser with no endpoint set) arrives as raised in
    this process, not as ZeroGPU's "worker error"."""
    for name in ("COMCLIP_LLM_BASE_URL", "COMCLIP_LLM_MODEL", "COMCLIP_LLM_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    call = call_for("tiny", [load_image(EXAMPLE_IMAGE)], CAPTIONS, None, Options(parser="llm"))
    with pytest.raises(ComCLIPError) as here:
        ModelRunner(lambda preset: tiny_engine)(call, lambda stage, count: None)
    with zerogpu.installed():
        runner = ModelRunner(lambda preset: tiny_engine)
        with pytest.raises(type(here.value)) as there:
            runner(call, lambda stage, count: None)
    assert str(there.value) == str(here.value)


def test_the_app_on_zerogpu_answers_match_with_the_clis_numbers(tiny_engine, capsys):
    from gradio_client import Client, handle_file

    import app
    from comclip.studio.events import Studio

    code = main(["score", str(EXAMPLE_IMAGE), *CAPTIONS, "--preset", "tiny", "--parser", "rules", "--json"])
    cli, err = capsys.readouterr()
    assert code == 0, err
    with zerogpu.installed() as allocations:
        studio = Studio.create(tiny_engine)
        assert studio.service.runner.zerogpu and studio.service.offered == ["tiny"]
        demo = app.build_demo(studio)
        examples = app.load_examples()
        assert studio.warm_examples(examples) == len(examples)  # every example computed ...
        assert len(allocations) == 1  # ... in one batched call: one allocation for the warm-up
        assert studio.service.cache.pinned() == len(examples) and studio.service.cache.computed == len(examples)
        assert studio.service.pace("tiny").estimate(0) is not None  # the warm-up taught the pace
        port = free_port()
        demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                    **app.launch_options())
        try:
            client = Client(f"http://127.0.0.1:{port}/", verbose=False)
            before = len(allocations)
            got = client.predict(handle_file(str(EXAMPLE_IMAGE)), CAPTIONS, {"parser": "rules"}, api_name="/match")
            assert len(allocations) == before + 1  # one allocation for one click
            again = client.predict(handle_file(str(EXAMPLE_IMAGE)), CAPTIONS, {"parser": "rules"}, api_name="/match")
            assert len(allocations) == before + 1  # the same request again: from the cache, no GPU asked for
            other = client.predict(handle_file(str(BALL)), ["a ball on a box", "a box on a ball"], {},
                                   api_name="/match")
            assert len(allocations) == before + 2
            from gradio_client.exceptions import AppError

            with pytest.raises(AppError, match="at least 2"):
                client.predict(handle_file(str(BALL)), ["a ball on a box"], {}, api_name="/match")
            assert len(allocations) == before + 2  # a bad request never asks for a GPU
        finally:
            demo.close()
    assert _numbers(got) == _numbers(json.loads(cli))
    assert _numbers(again) == _numbers(got)
    assert [c["caption"] for c in other["captions"]] == ["a ball on a box", "a box on a ball"]
