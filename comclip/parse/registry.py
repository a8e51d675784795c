"""The parser registry: backend names -> parser objects, built once per configuration.

Contract:
- ``PARSERS`` = ("auto", "rules", "spacy", "llm"), the only accepted names (matched after
  ``strip().lower()``).
- ``get_parser(name) -> Parser`` builds the backend on first use and caches it per name and per
  the environment that configures it (``COMCLIP_SPACY_MODEL`` for auto/spacy, the
  ``COMCLIP_LLM_*`` variables for llm). ``auto`` is spaCy when an English pipeline loads, else
  rules; the parser's ``name`` says which. An unknown name, ``spacy`` without a pipeline and
  ``llm`` without its variables are InputErrors.
- ``parse(caption, name) -> SceneGraph``; an empty or non-string caption is an InputError.
- ``clear_cache()`` forgets every built parser.

The table of builders is static (plain imports, no plugin lookup); this module imports the
backends and nothing imports it back except the package face and :mod:`comclip.parse.evaluate`.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from comclip.errors import InputError
from comclip.graph import SceneGraph
from comclip.parse.base import Parser, require_caption
from comclip.parse.llm import LLMConfig, LLMParser
from comclip.parse.rules import RulesParser
from comclip.parse.spacy_parser import SpacyParser

__all__ = ["PARSERS", "clear_cache", "get_parser", "parse"]


def _auto() -> Parser:
    try:
        return SpacyParser.load()
    except InputError:
        return RulesParser()


_BUILDERS: dict[str, Callable[[], Parser]] = {
    "auto": _auto,
    "rules": RulesParser,
    "spacy": SpacyParser.load,
    "llm": LLMParser.from_env,
}

PARSERS: tuple[str, ...] = tuple(_BUILDERS)

_CACHE: dict[tuple[str, ...], Parser] = {}


def _cache_key(name: str) -> tuple[str, ...]:
    """Parsers are cached per name and per the environment that configures them."""
    if name in {"auto", "spacy"}:
        return (name, os.environ.get("COMCLIP_SPACY_MODEL", ""))
    if name == "llm":
        cfg = LLMConfig.from_env()
        return (name, cfg.base_url, cfg.model, str(cfg.timeout), str(hash(cfg.api_key)))
    return (name,)


def get_parser(name: str = "auto") -> Parser:
    """The parser called ``name`` (one of ``PARSERS``), built once and cached.

    Raises InputError for an unknown name, for ``spacy`` without an English pipeline, and for
    ``llm`` without its environment variables.
    """
    key = name.strip().lower() if isinstance(name, str) else ""
    if key not in _BUILDERS:
        raise InputError(f"unknown parser {name!r}; choose one of: {', '.join(PARSERS)}")
    cache_key = _cache_key(key)
    parser = _CACHE.get(cache_key)
    if parser is None:
        parser = _BUILDERS[key]()
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
