"""Rules backend, step 1: caption text -> lowercase tokens, and the word tests on one token.

Contract:
- ``tokenize(text) -> list[str]``: lowercased; curly apostrophes straightened; "n't" and clitics
  split off ("isn't" -> "is", "n't"; "they're" -> "they", "are"); quotes, brackets and lone
  hyphens dropped; every phrase of ``lexicon.MERGED_PHRASES`` ("in front of", "on the left")
  merged into one token, longest match first. Deterministic, never raises for a string.
- ``is_adverb``, ``is_content`` and ``guess_form`` classify one token (see each docstring); they
  read only :mod:`comclip.parse.lexicon` and :mod:`comclip.parse.morphology`.
"""

from __future__ import annotations

import re

from comclip.parse import lexicon as lx
from comclip.parse import morphology as mo

__all__ = ["guess_form", "is_adverb", "is_content", "tokenize"]

_TOKEN_RE = re.compile(r"n't|'s|'re|'m|'ll|'ve|'d|[^\W_]+(?:[-.][^\W_]+)*|[^\s\w]|_")


def tokenize(caption: str) -> list[str]:
    """Lowercase word tokens, with multi-word prepositions merged into single tokens."""
    text = caption.lower().replace("\u2019", "'")
    text = re.sub(r"\b(ca|wo)n't\b", lambda m: {"ca": "can", "wo": "will"}[m.group(1)] + " n't", text)
    text = re.sub(r"(\w)n't\b", r"\1 n't", text)
    raw = [lx.CONTRACTIONS.get(t, t) for t in _TOKEN_RE.findall(text)]
    raw = [t for t in raw if t not in {"'", '"', "(", ")", "-", "`"}]
    out: list[str] = []
    i = 0
    while i < len(raw):
        for phrase in lx.MERGED_PHRASES:
            if tuple(raw[i : i + len(phrase)]) == phrase:
                out.append(" ".join(phrase))
                i += len(phrase)
                break
        else:
            out.append(raw[i])
            i += 1
    return out


def is_adverb(tok: str) -> bool:
    """A listed adverb, or an unlisted word in -ly that is not a known -ly noun/adjective."""
    return tok in lx.ADVERBS or (len(tok) > 4 and tok.endswith("ly") and tok not in lx.LY_NOT_ADVERBS)


def is_content(tok: str | None) -> bool:
    """A word that can belong to a noun phrase or be a verb (not a function word)."""
    return tok is not None and tok not in lx.FUNCTION_WORDS and not is_adverb(tok) and tok[0].isalnum()


def guess_form(tok: str) -> str | None:
    """Verb form of a token ("base", "s", "ing", "past"), guessing -ing/-ed for unknown words."""
    form = mo.verb_form(tok)
    if form is not None:
        return form
    if tok in lx.ING_NOUNS or tok in lx.ADJECTIVES:
        return None
    if len(tok) > 4 and tok.endswith("ing"):
        return "ing"
    if len(tok) > 4 and tok.endswith("ed"):
        return "past"
    return None
