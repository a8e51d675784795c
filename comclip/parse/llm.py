"""LLM backend: ask any OpenAI-compatible chat endpoint for the scene graph as JSON.

Configuration (environment):

- ``COMCLIP_LLM_BASE_URL``: e.g. ``http://localhost:8000/v1`` (``/chat/completions`` is appended);
- ``COMCLIP_LLM_MODEL``: the model name the server expects;
- ``COMCLIP_LLM_API_KEY``: optional; sent as ``Authorization: Bearer ...``, never logged and never
  part of an error message;
- ``COMCLIP_LLM_TIMEOUT``: seconds, default 30.

Only the standard library is used. Every failure (network, HTTP status, a reply that is not JSON,
a graph that does not validate) is one InputError line starting with ``llm parser:``.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from comclip.errors import GraphError, InputError
from comclip.graph import GRAPH_JSON_SCHEMA, SceneGraph
from comclip.parse.base import require_caption

__all__ = ["SYSTEM_PROMPT", "LLMConfig", "LLMParser", "graph_from_reply"]

ENV_BASE_URL = "COMCLIP_LLM_BASE_URL"
ENV_MODEL = "COMCLIP_LLM_MODEL"
ENV_API_KEY = "COMCLIP_LLM_API_KEY"
ENV_TIMEOUT = "COMCLIP_LLM_TIMEOUT"
DEFAULT_TIMEOUT_S = 30.0

_EXAMPLE = {
    "caption": "a young person sits on a wooden bench next to two dogs",
    "entities": [
        {"id": "e0", "name": "person", "attributes": ["young"]},
        {"id": "e1", "name": "bench", "attributes": ["wooden"]},
        {"id": "e2", "name": "dogs", "attributes": ["two"]},
    ],
    "relations": [
        {"subject": "e0", "predicate": "sit on", "object": "e1"},
        {"subject": "e1", "predicate": "next to", "object": "e2"},
    ],
}

SYSTEM_PROMPT = (
    "You turn an image caption into a scene graph for compositional image-text matching. "
    "Reply with one JSON object only, no prose, that validates against this JSON schema:\n"
    f"{json.dumps(GRAPH_JSON_SCHEMA)}\n"
    "Conventions: entity ids are e0, e1, ... in order of first mention; 'name' is the head noun "
    "phrase without determiners or attributes, compounds kept ('fire truck'), plural kept as "
    "written ('dogs'); 'attributes' are adjectives, colours, numbers ('two') and materials "
    "('wooden') in caption order; a predicate is the verb in base form with its preposition "
    "('sits on' -> 'sit on', 'holding' -> 'hold'), or the preposition alone after 'is' ('the cup "
    "is on the plate' -> 'on'); multi-word prepositions stay whole ('next to', 'on top of', 'in "
    "front of', 'on the left of'); 'object' is null for an intransitive verb; 'the car is red' "
    "makes 'red' an attribute of car. Set 'caption' to the caption. Example:\n"
    f"{json.dumps(_EXAMPLE)}"
)

_FENCE_RE = re.compile(r"^\s*```[a-zA-Z]*\s*(.*?)\s*```\s*$", re.DOTALL)


def _one_line(text: str, limit: int = 160) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _safe_url(url: str) -> str:
    """The URL without any user:password part, for messages."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))


@dataclass(frozen=True)
class LLMConfig:
    """Endpoint settings; the API key is kept out of ``repr``."""

    base_url: str
    model: str
    api_key: str | None = field(default=None, repr=False)
    timeout: float = DEFAULT_TIMEOUT_S

    @property
    def endpoint(self) -> str:
        return self.base_url.rstrip("/") + "/chat/completions"

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> LLMConfig:
        """Read the configuration; missing or malformed variables are one InputError."""
        env = dict(os.environ if env is None else env)
        base = env.get(ENV_BASE_URL, "").strip()
        model = env.get(ENV_MODEL, "").strip()
        missing = [name for name, value in ((ENV_BASE_URL, base), (ENV_MODEL, model)) if not value]
        if missing:
            raise InputError(
                f"the llm parser needs {' and '.join(missing)} set (e.g. "
                f"{ENV_BASE_URL}=http://localhost:8000/v1 and {ENV_MODEL}=<model name>; "
                f"{ENV_API_KEY} is optional)"
            )
        if urllib.parse.urlsplit(base).scheme not in {"http", "https"}:
            raise InputError(f"{ENV_BASE_URL} must be an http:// or https:// URL, got {_safe_url(base)!r}")
        raw_timeout = env.get(ENV_TIMEOUT, "").strip()
        try:
            timeout = float(raw_timeout) if raw_timeout else DEFAULT_TIMEOUT_S
        except ValueError:
            timeout = -1.0
        if not timeout > 0:
            raise InputError(f"{ENV_TIMEOUT} must be a positive number of seconds, got {raw_timeout!r}")
        key = env.get(ENV_API_KEY, "").strip() or None
        return cls(base, model, key, timeout)


def _strip_fences(content: str) -> str:
    match = _FENCE_RE.match(content)
    return match.group(1) if match else content.strip()


def graph_from_reply(content: str, caption: str) -> SceneGraph:
    """Parse the model's reply text (optionally in ```json fences) into a validated graph."""
    text = _strip_fences(content)
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        start, end = text.find("{"), text.rfind("}")
        try:
            data = json.loads(text[start : end + 1]) if 0 <= start < end else None
        except json.JSONDecodeError:
            data = None
        if data is None:
            raise InputError(
                f"llm parser: the model's reply is not JSON: {_one_line(content, 80)!r}"
            ) from None
    if isinstance(data, dict):
        data = {**data, "caption": caption}
    try:
        return SceneGraph.from_dict(data)
    except GraphError as exc:
        raise InputError(f"llm parser: the model's reply is not a valid scene graph: {exc}") from None


class LLMParser:
    """Callable parser that queries an OpenAI-compatible ``/chat/completions`` endpoint."""

    name = "llm"

    def __init__(self, config: LLMConfig) -> None:
        self.config = config

    @classmethod
    def from_env(cls) -> LLMParser:
        return cls(LLMConfig.from_env())

    def __repr__(self) -> str:
        return f"LLMParser(model={self.config.model!r}, endpoint={_safe_url(self.config.endpoint)!r})"

    def request_body(self, caption: str) -> dict[str, Any]:
        return {
            "model": self.config.model,
            "temperature": 0,
            "messages": [
                {"role": "system", "content": SYSTEM_PROMPT},
                {"role": "user", "content": f"Caption: {caption}"},
            ],
        }

    def _scrub(self, text: str) -> str:
        key = self.config.api_key
        return text.replace(key, "***") if key else text

    def _post(self, body: dict[str, Any]) -> bytes:
        cfg = self.config
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if cfg.api_key:
            headers["Authorization"] = f"Bearer {cfg.api_key}"
        req = urllib.request.Request(
            cfg.endpoint, data=json.dumps(body).encode(), headers=headers, method="POST"
        )
        where = _safe_url(cfg.endpoint)
        try:
            with urllib.request.urlopen(req, timeout=cfg.timeout) as resp:
                return resp.read()
        except urllib.error.HTTPError as exc:
            detail = _one_line(exc.read().decode("utf-8", "replace"), 120)
            msg = f"llm parser: {where} answered HTTP {exc.code} {exc.reason}" + (
                f": {detail}" if detail else ""
            )
            raise InputError(self._scrub(msg)) from None
        except (OSError, http.client.HTTPException) as exc:  # URLError, timeouts, resets, bad status
            reason = getattr(exc, "reason", exc)
            raise InputError(
                self._scrub(f"llm parser: cannot reach {where}: {_one_line(str(reason))}")
            ) from None

    @staticmethod
    def _content(raw: bytes) -> str:
        """``choices[0].message.content`` of a chat-completions answer."""
        try:
            reply = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            snippet = _one_line(raw.decode("utf-8", "replace"), 80)
            raise InputError(f"llm parser: the server's answer is not JSON: {snippet!r}") from None
        try:
            content = reply["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            content = None
        if not isinstance(content, str):
            raise InputError("llm parser: the server's answer has no choices[0].message.content")
        return content

    def __call__(self, caption: str) -> SceneGraph:
        require_caption(caption)
        try:
            raw = self._post(self.request_body(caption))
            return graph_from_reply(self._content(raw), caption)
        except InputError as exc:  # every message passes the key scrubber once more
            raise InputError(self._scrub(str(exc))) from None
