"""The llm backend against a tiny OpenAI-compatible server run by the test on 127.0.0.1."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from comclip.errors import InputError
from comclip.graph import SceneGraph
from comclip.parse import clear_cache, get_parser, parse
from comclip.parse.evaluate import load_gold
from comclip.parse.llm import CONVENTIONS, SYSTEM_PROMPT, LLMConfig, LLMParser, graph_from_reply

from .conftest import ROOT

SECRET = "sk-test-9f8e7d6c5b4a"
GOOD = {
    "caption": "ignored: the parser sets the caption",
    "entities": [
        {"id": "e0", "name": "dog", "attributes": ["brown"]},
        {"id": "e1", "name": "cat", "attributes": []},
    ],
    "relations": [{"subject": "e0", "predicate": "chase", "object": "e1"}],
}


@dataclass
class ServerState:
    """What the fake server answers next, and what it last received."""

    mode: str = "valid"
    requests: list[dict[str, Any]] = field(default_factory=list)
    canned: dict[str, str] = field(default_factory=dict)  # caption -> the model's reply text


def _completion(content: str) -> bytes:
    return json.dumps(
        {"choices": [{"index": 0, "message": {"role": "assistant", "content": content}}]}
    ).encode()


def _make_handler(state: ServerState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            """Keep the test output quiet."""

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            state.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
            replies = {
                "valid": (200, _completion(json.dumps(GOOD))),
                "fenced": (200, _completion("```json\n" + json.dumps(GOOD, indent=2) + "\n```")),
                "prose": (200, _completion("Here is the graph: " + json.dumps(GOOD) + " Hope it helps.")),
                "invalid": (200, _completion("I cannot do that, " + SECRET)),
                "schema": (
                    200,
                    _completion(json.dumps({**GOOD, "relations": [{"subject": "e7", "predicate": "x"}]})),
                ),
                "envelope": (200, b"<html>proxy error</html>"),
                "no_choices": (200, b'{"error": "overloaded"}'),
                "500": (500, b'{"error": "internal error"}'),
            }
            if state.mode == "slow":  # the client gives up first; nothing is written back
                time.sleep(1.0)
                return
            if state.mode == "canned":
                caption = body["messages"][-1]["content"].removeprefix("Caption: ")
                replies["canned"] = (200, _completion(state.canned[caption]))
            status, payload = replies.get(state.mode, replies["valid"])
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    return Handler


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, ServerState]]:
    state = ServerState()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(state))
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/v1", state
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def llm(server: tuple[str, ServerState], monkeypatch: pytest.MonkeyPatch) -> Iterator[ServerState]:
    base, state = server
    state.mode, state.requests[:] = "valid", []
    monkeypatch.setenv("COMCLIP_LLM_BASE_URL", base)
    monkeypatch.setenv("COMCLIP_LLM_MODEL", "tiny-graph-model")
    monkeypatch.setenv("COMCLIP_LLM_API_KEY", SECRET)
    monkeypatch.setenv("COMCLIP_LLM_TIMEOUT", "5")
    clear_cache()
    yield state
    clear_cache()


def _expected(caption: str) -> SceneGraph:
    return SceneGraph.from_dict({**GOOD, "caption": caption})


def test_valid_reply(llm: ServerState) -> None:
    caption = "a brown dog chases a cat"
    graph = parse(caption, "llm")
    assert graph == _expected(caption)
    assert graph.caption == caption
    (req,) = llm.requests
    assert req["path"] == "/v1/chat/completions"
    assert req["body"]["model"] == "tiny-graph-model"
    system, user = req["body"]["messages"]
    assert system["role"] == "system" and '"additionalProperties": false' in system["content"]
    assert user["role"] == "user" and caption in user["content"]


def test_authorization_header_is_sent(llm: ServerState) -> None:
    parse("a dog", "llm")
    assert llm.requests[-1]["headers"]["Authorization"] == f"Bearer {SECRET}"


def test_no_authorization_header_without_key(llm: ServerState, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COMCLIP_LLM_API_KEY")
    parse("a dog", "llm")
    assert "Authorization" not in llm.requests[-1]["headers"]


@pytest.mark.parametrize("mode", ["fenced", "prose"])
def test_reply_wrapped_in_fences_or_prose(llm: ServerState, mode: str) -> None:
    llm.mode = mode
    assert parse("a brown dog chases a cat", "llm") == _expected("a brown dog chases a cat")


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("invalid", r"^llm parser: the model's reply is not JSON"),
        (
            "schema",
            r"^llm parser: the model's reply is not a valid scene graph: relations\[0\] names subject 'e7'",
        ),
        ("envelope", r"^llm parser: the server's answer is not JSON"),
        ("no_choices", r"^llm parser: the server's answer has no choices\[0\]\.message\.content$"),
        ("500", r"^llm parser: http://127\.0\.0\.1:\d+/v1/chat/completions answered HTTP 500"),
    ],
)
def test_bad_replies_are_one_clear_input_error(llm: ServerState, mode: str, message: str) -> None:
    llm.mode = mode
    with pytest.raises(InputError, match=message) as info:
        parse("a dog chases a cat", "llm")
    text = str(info.value)
    assert "\n" not in text
    assert SECRET not in text and SECRET not in repr(info.value)


def test_timeout_is_input_error(llm: ServerState, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COMCLIP_LLM_TIMEOUT", "0.2")
    llm.mode = "slow"
    with pytest.raises(InputError, match=r"^llm parser: cannot reach .*timed out") as info:
        parse("a dog", "llm")
    assert SECRET not in str(info.value)


def test_unreachable_server_is_input_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = LLMConfig(f"http://user:{SECRET}@127.0.0.1:{port}/v1", "m", api_key=SECRET, timeout=2)
    with pytest.raises(
        InputError, match=r"^llm parser: cannot reach http://127\.0\.0\.1:\d+/v1/chat/completions"
    ) as info:
        LLMParser(cfg)("a dog")
    assert SECRET not in str(info.value)


def test_missing_environment_names_the_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("COMCLIP_LLM_BASE_URL", "COMCLIP_LLM_MODEL", "COMCLIP_LLM_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    clear_cache()
    with pytest.raises(InputError, match="COMCLIP_LLM_BASE_URL and COMCLIP_LLM_MODEL"):
        get_parser("llm")
    monkeypatch.setenv("COMCLIP_LLM_BASE_URL", "http://localhost:8000/v1")
    with pytest.raises(InputError, match=r"needs COMCLIP_LLM_MODEL set"):
        get_parser("llm")


@pytest.mark.parametrize(
    ("var", "value", "message"),
    [
        ("COMCLIP_LLM_TIMEOUT", "soon", "COMCLIP_LLM_TIMEOUT must be a positive number"),
        ("COMCLIP_LLM_TIMEOUT", "0", "COMCLIP_LLM_TIMEOUT must be a positive number"),
        ("COMCLIP_LLM_BASE_URL", "localhost:8000", "must be an http:// or https:// URL"),
    ],
)
def test_bad_configuration(var: str, value: str, message: str) -> None:
    env = {"COMCLIP_LLM_BASE_URL": "http://localhost:8000/v1", "COMCLIP_LLM_MODEL": "m", var: value}
    with pytest.raises(InputError, match=message):
        LLMConfig.from_env(env)


def test_key_never_in_repr(llm: ServerState) -> None:
    parser = get_parser("llm")
    assert parser.name == "llm" and get_parser("llm") is parser
    assert SECRET not in repr(parser) and SECRET not in repr(parser.config)


def test_graph_from_reply_sets_caption_and_validates() -> None:
    graph = graph_from_reply(
        json.dumps({"entities": [{"id": "e0", "name": "dog"}], "relations": []}), "a dog"
    )
    assert graph.caption == "a dog" and graph.entities[0].attributes == ()
    with pytest.raises(InputError, match="not a valid scene graph: a graph must be a JSON object"):
        graph_from_reply("[1, 2]", "a dog")


def test_system_prompt_carries_schema_and_conventions() -> None:
    assert '"required": ["caption", "entities", "relations"]' in SYSTEM_PROMPT
    assert "sit on" in SYSTEM_PROMPT and "e0" in SYSTEM_PROMPT


# -- one reply per hard caption family (tests/data/llm_replies.jsonl) ------------------------------
# No model can be reached from this build, so these replies were written by hand in the shapes
# chat models send (fenced or bare JSON, with ``notes`` where the choice could go another way),
# graph for graph the gold of tests/data/parse_hard.jsonl. They test that the prompt states each
# family's convention and that a conforming reply, notes included, comes back as that graph.

REPLIES = [json.loads(line) for line in (ROOT / "tests" / "data" / "llm_replies.jsonl").read_text().splitlines()]
GOLD = {c.caption: c.graph for c in load_gold(ROOT / "tests" / "data" / "parse_hard.jsonl")}
#: Words of each family's convention line in the prompt (its example).
PROMPT_EXAMPLES = {
    "pp": "a girl walks a dog in the snow' -> girl in snow",
    "adverb": "the balloon floats high over the houses' -> balloon 'float over' houses",
    "passive": "the mouse chased by the cat hides under a chair' -> mouse 'chased by' cat",
    "pronoun": "baby sleeps in a crib while the mother watches her' -> mother watch baby",
    "partitive": "'a stack of books' -> books",
    "participle": "'the camera films a man riding a bike' -> camera film man, man ride bike",
    "swap-relation": "support or container holding only the object",
}


def test_prompt_states_every_family_with_an_example() -> None:
    assert {r["family"] for r in REPLIES} == set(PROMPT_EXAMPLES)
    for family, words in PROMPT_EXAMPLES.items():
        assert words in CONVENTIONS, family
    assert CONVENTIONS in SYSTEM_PROMPT and '"notes"' in SYSTEM_PROMPT  # the schema allows notes


@pytest.mark.parametrize("reply", REPLIES, ids=[r["family"] for r in REPLIES])
def test_family_reply_gives_the_gold_graph(llm: ServerState, reply: dict[str, str]) -> None:
    llm.mode, llm.canned = "canned", {reply["caption"]: reply["content"]}
    graph = parse(reply["caption"], "llm")
    assert graph == GOLD[reply["caption"]]
    (req,) = llm.requests
    assert req["body"]["messages"][0]["content"] == SYSTEM_PROMPT
    sent_notes = json.loads(reply["content"].strip("`").removeprefix("json")).get("notes", [])
    assert [n.to_dict() for n in graph.notes] == sent_notes
    if reply["family"] in {"pp", "pronoun"}:
        assert graph.notes and graph.notes[0].chosen and graph.notes[0].alternatives
