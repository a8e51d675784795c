"""Caption -> SceneGraph, with backends chosen by name.

- ``rules``: word lists and heuristics, no model; deterministic; the offline default.
- ``spacy``: extraction from a spaCy dependency parse (needs an English pipeline such as
  ``en_core_web_sm``; ``COMCLIP_SPACY_MODEL`` picks another name or path).
- ``llm``: any OpenAI-compatible chat endpoint (``COMCLIP_LLM_BASE_URL``, ``COMCLIP_LLM_MODEL``,
  optional ``COMCLIP_LLM_API_KEY`` and ``COMCLIP_LLM_TIMEOUT``).
- ``auto``: ``spacy`` when an English pipeline loads, else ``rules``; the returned parser's
  ``name`` says which backend was resolved.

The conventions for names, attributes and predicates are documented in
:mod:`comclip.parse.rules` and followed by every backend.
"""

from __future__ import annotations

import os

from comclip.errors import InputError
from comclip.graph import SceneGraph
from comclip.parse.base import Parser, require_caption
from comclip.parse.evaluate import ParseScores, evaluate
from comclip.parse.rules import RulesParser

__all__ = ["PARSERS", "ParseScores", "Parser", "clear_cache", "evaluate", "get_parser", "parse"]

PARSERS: tuple[str, ...] = ("auto", "rules", "spacy", "llm")

_CACHE: dict[tuple[str, ...], Parser] = {}


def _cache_key(name: str) -> tuple[str, ...]:
    """Parsers are cached per name and per the environment that configures them."""
    if name in {"auto", "spacy"}:
        return (name, os.environ.get("COMCLIP_SPACY_MODEL", ""))
    if name == "llm":
        from comclip.parse.llm import LLMConfig

        cfg = LLMConfig.from_env()
        return (name, cfg.base_url, cfg.model, str(cfg.timeout), str(hash(cfg.api_key)))
    return (name,)


def _build(name: str) -> Parser:
    if name == "rules":
        return RulesParser()
    if name == "llm":
        from comclip.parse.llm import LLMParser

        return LLMParser.from_env()
    from comclip.parse.spacy_parser import SpacyParser

    if name == "spacy":
        return SpacyParser.load()
    try:
        return SpacyParser.load()
    except InputError:
        return RulesParser()


def get_parser(name: str = "auto") -> Parser:
    """The parser called ``name`` (one of ``PARSERS``), built once and cached.

    Raises InputError for an unknown name, for ``spacy`` without an English pipeline, and for
    ``llm`` without its environment variables.
    """
    key = name.strip().lower() if isinstance(name, str) else ""
    if key not in PARSERS:
        raise InputError(f"unknown parser {name!r}; choose one of: {', '.join(PARSERS)}")
    cache_key = _cache_key(key)
    parser = _CACHE.get(cache_key)
    if parser is None:
        parser = _build(key)
        _CACHE[cache_key] = parser
    return parser


def clear_cache() -> None:
    """Forget every built parser (e.g. after installing a spaCy pipeline)."""
    _CACHE.clear()


def parse(caption: str, parser: str = "auto") -> SceneGraph:
    """Parse ``caption`` into a SceneGraph with the named backend.

    An empty caption is an InputError; a caption in which no entity is found gives a graph with
    zero entities (the engine then scores it with plain CLIP).
    """
    require_caption(caption)
    return get_parser(parser)(caption)
