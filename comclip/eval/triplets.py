"""Scene graphs built from benchmark triplets (``man,sit,table``) instead of parsing.

ComVG and SVO-Probes ship each sentence's (subject, predicate, object) triplet; the paper built
ComCLIP's graph from it. ComVG writes multi-word predicates with their spaces removed
(``nextto``, ``layingin``, ``leaningagainst``): :func:`restore_predicate` puts them back.

SVO-Probes' CSV holds some triplet cells as Python list literals (``"['dog,catch,frisbee']"``,
as pandas writes a list): :func:`triplet_text` reads those; a cell that still cannot be read
raises :class:`GraphError` with the reason, so the example fails instead of getting a wrong graph.
"""

from __future__ import annotations

import ast
from functools import lru_cache

from comclip.errors import GraphError
from comclip.graph import Entity, Relation, SceneGraph

#: Words a glued predicate is built from after its head (prepositions and their companions).
PARTICLES = frozenset("""
about above across after against along alongside amid among around as at atop away back before behind below
beneath beside besides between beyond by close down during for from front in inside into left near next of
off on onto opposite out outside over part past right round side through throughout to top toward towards
under underneath up upon via with within without
""".split())
#: Heads that are neither -ing/-ed/-s forms nor particles (base verbs and a few others seen in
#: Visual Genome predicates).
HEADS = frozenset("""
are attach be belong carry cast catch cover cross cut drink eat face fill fly full grow hang has have hit hold
is jump kick lay lead lean lie look made make mount paint park perch play print pull push read reflect rest
ride run say see sit sleep stand stick swim throw use walk watch wear
""".split())
_SUFFIXES = ("ing", "ed")


def _head_ok(word: str) -> bool:
    """May ``word`` start a glued predicate (``sitting`` in ``sittingon``)?"""
    if word in HEADS or word in PARTICLES:
        return True
    if len(word) >= 5 and word.endswith(_SUFFIXES):
        return True
    return len(word) >= 4 and word.endswith("s") and not word.endswith("ss")


@lru_cache(maxsize=4096)
def _segment(word: str) -> tuple[str, ...] | None:
    """Split ``word`` into a head plus particles, fewest pieces first; None if it cannot be."""
    best: tuple[str, ...] | None = None
    for cut in range(len(word) - 1, 0, -1):
        tail = word[cut:]
        if tail not in PARTICLES:
            continue
        head = word[:cut]
        head_parts = (head,) if _head_ok(head) else _segment(head)
        if head_parts is None:
            continue
        cand = (*head_parts, tail)
        if best is None or len(cand) < len(best):
            best = cand
    return best


def restore_predicate(predicate: str) -> str:
    """``nextto`` → ``next to``, ``layingin`` → ``laying in``, ``leaningagainst`` → ``leaning against``.

    Predicates that already have spaces (or underscores) keep them; single words that are words
    in their own right (``on``, ``within``, ``wearing``, ``eat``) are left alone.
    """
    text = " ".join(predicate.replace("_", " ").split())
    if " " in text or not text:
        return text
    low = text.lower()
    parts = None if low in PARTICLES or low in HEADS else _segment(low)
    if parts is None:
        return text
    return " ".join(parts)


def triplet_text(cell: str) -> str:
    """A triplet cell as ``subject,predicate[,object]`` text.

    ``"dog,catch,frisbee"`` is returned as is; the list literals ``"['dog,catch,frisbee']"`` and
    ``"['dog', 'catch', 'frisbee']"`` become ``"dog,catch,frisbee"``. Anything else that looks
    like a list (unbalanced, several triplets, not text) raises :class:`GraphError`.
    """
    if not isinstance(cell, str):
        raise GraphError(f"triplet must be text, got {type(cell).__name__}")
    text = cell.strip()
    if not (text.startswith("[") or text.startswith("(")):
        return text
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        raise GraphError(f"triplet cell {cell!r} is not readable (a list literal that does not parse)") from None
    if not isinstance(value, (list, tuple)) or not value or not all(isinstance(v, str) for v in value):
        raise GraphError(f"triplet cell {cell!r} is not a list of text")
    if len(value) == 1:
        return value[0]
    if len(value) in (2, 3) and not any("," in v for v in value):
        return ",".join(value)
    raise GraphError(f"triplet cell {cell!r} holds {len(value)} triplets; expected one")


def split_triplet(triplet: str) -> tuple[str, str, str | None]:
    """``"man,sit,table"`` (or a list literal of it, see :func:`triplet_text`) →
    ``("man", "sit", "table")``; two parts give no object."""
    triplet = triplet_text(triplet)
    parts = [" ".join(p.replace("_", " ").split()) for p in triplet.split(",")]
    if len(parts) not in (2, 3) or not all(parts):
        raise GraphError(f"triplet {triplet!r} is not 'subject,predicate,object'")
    return parts[0], parts[1], parts[2] if len(parts) == 3 else None


def triplet_graph(caption: str, triplet: str) -> SceneGraph:
    """The scene graph of ``caption`` given its (subject, predicate[, object]) triplet."""
    subject, predicate, obj = split_triplet(triplet)
    entities = [Entity("e0", subject)]
    if obj is not None:
        entities.append(Entity("e1", obj))
    relation = Relation("e0", restore_predicate(predicate), "e1" if obj is not None else None)
    return SceneGraph(caption, tuple(entities), (relation,))
