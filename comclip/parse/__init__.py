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

Layout: ``registry`` (names -> parsers, the cache), ``base`` (protocol, caption check),
``builder`` (graph accumulator), ``lexicon`` (every word list), ``morphology`` (rules on one
word), ``rules/`` (tokens -> chunker -> assembler), ``spacy_parser``, ``llm``, ``evaluate``
(scores a parser against reference graphs; it imports the registry, never the reverse).
"""

from __future__ import annotations

from comclip.parse.base import Parser
from comclip.parse.evaluate import ParseScores, evaluate
from comclip.parse.registry import PARSERS, clear_cache, get_parser, parse

__all__ = ["PARSERS", "ParseScores", "Parser", "clear_cache", "evaluate", "get_parser", "parse"]
