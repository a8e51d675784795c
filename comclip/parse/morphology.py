"""Rules on single words, over the word lists of :mod:`comclip.parse.lexicon` (no model).

Contract: pure functions of one string, deterministic, case-insensitive (input is lowercased).
``lemmatize_verb`` gives a base form or None, ``verb_form`` one of "base", "s", "ing", "past" or
None, ``adjective_like`` / ``is_number`` / ``is_plural_noun`` a bool, ``strip_caption_frame``
the caption without a leading "a photo of"-style frame (or unchanged when that would empty it).
"""

from __future__ import annotations

from comclip.parse.lexicon import (
    ADJECTIVE_SUFFIXES,
    ADJECTIVES,
    CAPTION_FRAME_RE,
    COPULAS,
    IRREGULAR_PAST,
    IRREGULAR_PLURALS,
    IRREGULAR_VERBS,
    NUMBERS,
    VERBS,
)

__all__ = [
    "adjective_like",
    "is_number",
    "is_plural_noun",
    "lemmatize_verb",
    "strip_caption_frame",
    "verb_form",
]


def strip_caption_frame(caption: str) -> str:
    """Drop a leading "a photo of" / "an image of" / "a close-up of" frame phrase."""
    stripped = CAPTION_FRAME_RE.sub("", caption, count=1)
    return stripped if stripped.strip() else caption


_VOWELS = "aeiou"


def _candidates(word: str) -> list[str]:
    """Possible base forms of an inflected verb, most likely first."""
    cands: list[str] = []
    if word.endswith("ies") and len(word) > 4:
        cands.append(word[:-3] + "y")
    if word.endswith("es") and len(word) > 3:
        cands.append(word[:-2])
    if word.endswith("s") and not word.endswith("ss") and len(word) > 2:
        cands.append(word[:-1])
    for suffix in ("ing", "ed"):
        if word.endswith(suffix) and len(word) > len(suffix) + 1:
            stem = word[: -len(suffix)]
            if suffix == "ed" and stem.endswith("i"):
                cands.append(stem[:-1] + "y")
            if len(stem) > 2 and stem[-1] == stem[-2] and stem[-1] not in "lsz":
                cands.append(stem[:-1])
            cands.extend([stem, stem + "e"])
            if suffix == "ed" and word.endswith("eed"):
                cands.append(word[:-1])
    return cands


def lemmatize_verb(word: str, *, known_only: bool = False) -> str | None:
    """Base form of a verb form: "sits" -> "sit", "riding" -> "ride", "held" -> "hold".

    Irregular forms come from a table, regular ones from stripping -s/-es/-ies/-ing/-ed and
    checking the result against ``VERBS``. Unknown words get a suffix-based guess unless
    ``known_only`` is set, in which case ``None`` is returned for them.
    """
    w = word.lower()
    if w in IRREGULAR_VERBS:
        return IRREGULAR_VERBS[w]
    if w in VERBS:
        return w
    cands = _candidates(w)
    for cand in cands:
        if cand in VERBS:
            return cand
    if known_only or not cands:
        return None
    return _guess_stem(w)


def _guess_stem(w: str) -> str:
    """Suffix-stripping guess for a verb form not in the word list."""
    for suffix in ("ing", "ed"):
        if w.endswith(suffix) and len(w) > len(suffix) + 2:
            stem = w[: -len(suffix)]
            if stem[-1] == stem[-2] and stem[-1] not in "lsz":
                return stem[:-1]
            cvc = stem[-1] not in _VOWELS and stem[-2] in _VOWELS and stem[-3] not in _VOWELS
            return stem + "e" if cvc and stem[-1] not in "wxyr" and len(stem) <= 4 else stem
    if w.endswith("ies"):
        return w[:-3] + "y"
    if w.endswith(("ches", "shes", "sses", "xes", "zes")):
        return w[:-2]
    if w.endswith("s") and not w.endswith("ss"):
        return w[:-1]
    return w


def verb_form(word: str) -> str | None:
    """Classify a known verb form: "base", "s", "ing", "past" (past/participle) or None."""
    w = word.lower()
    if w in COPULAS or lemmatize_verb(w, known_only=True) is None:
        return None
    if w in IRREGULAR_PAST:
        return "past"
    if w in VERBS:
        return "base"
    if w.endswith("ing"):
        return "ing"
    if w.endswith("ed"):
        return "past"
    if w.endswith("s"):
        return "s"
    return "base"


def adjective_like(word: str) -> bool:
    """True for a known adjective, a number, or an unknown word with an adjective suffix."""
    w = word.lower()
    return w in ADJECTIVES or is_number(w) or (len(w) > 5 and w.endswith(ADJECTIVE_SUFFIXES))


def is_number(word: str) -> bool:
    """Cardinal numbers as words ("two") or digits ("3")."""
    w = word.lower()
    return w in NUMBERS or w.replace(".", "", 1).isdigit()


def is_plural_noun(word: str) -> bool:
    """Rough plural test used for subject-verb agreement heuristics."""
    w = word.lower()
    if w in IRREGULAR_PLURALS:
        return True
    return w.endswith("s") and not w.endswith(("ss", "us", "is", "ics"))
