"""LLM backend: ask any OpenAI-compatible chat endpoint for the scene graph as JSON.

Configuration (environment):

- ``COMCLIP_LLM_BASE_URL``: e.g. ``http://localhost:8000/v1`` (``/chat/completions`` is appended);
- ``COMCLIP_LLM_MODEL``: the model name the server expects;
- ``COMCLIP_LLM_API_KEY``: optional; sent as ``Authorization: Bearer ...``, never logged and never
  part of an error message;
- ``COMCLIP_LLM_TIMEOUT``: seconds, default 30.

The system prompt carries the graph schema and the annotation conventions of docs/parsing.md
(one line per hard caption family, each with an example) and asks the model to add ``notes``
where a choice could go another way; the notes come back on ``SceneGraph.notes``. Only the
standard library is used. Every failure (network, HTTP status, a reply that is not JSON, a graph
that does not validate) is one InputError line starting with ``llm parser:``.
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

__all__ = ["CONVENTIONS", "SYSTEM_PROMPT", "LLMConfig", "LLMParser", "graph_from_reply"]

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
        {"subject": "e0", "predicate": "next to", "object": "e2"},
    ],
}

_EXAMPLE_WITH_NOTE = {
    "caption": "a girl walks a dog in the snow",
    "entities": [
        {"id": "e0", "name": "girl", "attributes": []},
        {"id": "e1", "name": "dog", "attributes": []},
        {"id": "e2", "name": "snow", "attributes": []},
    ],
    "relations": [
        {"subject": "e0", "predicate": "walk", "object": "e1"},
        {"subject": "e0", "predicate": "in", "object": "e2"},
    ],
    "notes": [
        {"kind": "attachment", "phrase": "in the snow", "chosen": ["e0"], "alternatives": ["e1"],
         "message": "attached 'in the snow' to girl, not dog (a place: where the scene is)"}
    ],
}

#: The annotation conventions of docs/parsing.md, one line per caption family, each with an example.
CONVENTIONS = (
    "Conventions: entity ids are e0, e1, ... in order of first mention; 'name' is the head noun "
    "phrase without determiners or attributes, compounds kept ('fire truck'), plural kept as "
    "written ('dogs'); 'attributes' are adjectives, colours, numbers ('two') and materials "
    "('wooden') in caption order; a predicate is the verb in base form with its preposition "
    "('sits on' -> 'sit on', 'holding' -> 'hold'), or the preposition alone after 'is' ('the cup "
    "is on the plate' -> 'on'); multi-word prepositions stay whole ('next to', 'on top of', 'in "
    "front of', 'on the left of'); 'object' is null for an intransitive verb; 'the car is red' "
    "makes 'red' an attribute of car. Set 'caption' to the caption.\n"
    "Phrases after a verb's object: a place, ground, weather, seat or vehicle (beach, kitchen, "
    "snow, bench, boat) or a path or vicinity (at, along, under, by, next to) belongs to the "
    "subject ('a girl walks a dog in the snow' -> girl in snow, not dog in snow); 'with' a tool or "
    "body part is the subject's ('a woman slices bread with a knife' -> woman with knife), 'with' "
    "something the object has is the object's ('walks a dog with a red collar' -> dog with "
    "collar); a body part, a support or container holding only the object, or the sky, and any "
    "phrase after a verb of seeing or drawing, belongs to the object ('a dog carries a stick in "
    "its mouth' -> stick in mouth; 'watches a bird on a branch' -> bird on branch; 'chops onions "
    "on a cutting board' -> onions on cutting board); into/onto/off, and any place after put, "
    "hang, place, plant or a verb that throws, kicks or pours, belongs to the object ('kicks a ball "
    "into the net' -> ball into net); to/at/for a person or animal is the subject's with the verb "
    "('throws a frisbee to a dog' -> throw to). A second phrase after 'sits on a chair' or 'is on "
    "the desk' belongs to the subject ('a cat sits on a chair in the kitchen' -> cat in kitchen).\n"
    "Adverbs and manner words (high, low, fast, far, still, alone, side by side) are never "
    "entities: 'the balloon floats high over the houses' -> balloon 'float over' houses; a state "
    "adjective after a verb is an attribute ('the door stands open next to the window' -> door "
    "[open], door 'stand next to' window; 'paints the fence white' -> fence [white]).\n"
    "Passives and reduced relatives: a participle with 'by' keeps its form and its noun stays "
    "the subject of the main verb ('the mouse chased by the cat hides under a chair' -> mouse "
    "'chased by' cat, mouse 'hide under' chair); 'is covered with' -> 'covered with'; without "
    "'by' a participle after a noun is lemmatised ('a car parked on the street' -> 'park on').\n"
    "Pronouns: a pronoun is the nearest earlier entity it can refer to (he/him a male or unmarked "
    "person, she/her a female or unmarked person, it a thing or animal, they/them a group): 'a "
    "baby sleeps in a crib while the mother watches her' -> mother watch baby. A possessive (his, "
    "its, her + noun) adds no relation; 'the man's hat' -> man 'have' hat.\n"
    "Partitives: collective heads are dropped ('a stack of books' -> books; also group, herd, "
    "flock, pile, pair, bunch, row, crowd); containers and portions stay, with 'of' ('a cup of "
    "tea' -> cup 'of' tea) and what follows belongs to the container; in 'milk is poured from a "
    "carton into a bowl' the milk is 'poured from' the carton and 'into' the bowl.\n"
    "Complements: 'the camera films a man riding a bike' -> camera film man, man ride bike; 'a "
    "boy watches the plane take off' -> boy watch plane, plane 'take off' (object null).\n"
    "Notes: where a choice could reasonably go another way (where a phrase attaches, whom a "
    "pronoun means), add one object to 'notes' with kind ('attachment' or 'pronoun'), phrase, "
    "chosen and alternatives (entity ids) and a short message; otherwise leave 'notes' out."
)

SYSTEM_PROMPT = (
    "You turn an image caption into a scene graph for compositional image-text matching. "
    "Reply with one JSON object only, no prose, that validates against this JSON schema:\n"
    f"{json.dumps(GRAPH_JSON_SCHEMA)}\n"
    f"{CONVENTIONS}\nExamples:\n{json.dumps(_EXAMPLE)}\n{json.dumps(_EXAMPLE_WITH_NOTE)}"
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
