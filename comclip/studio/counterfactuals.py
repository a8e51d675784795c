"""Counterfactual captions: the same words, bound differently.

From a caption's scene graph we write captions that keep every word but change *who does what*
or *which attribute belongs to which entity* — exactly the cases where CLIP's bag-of-concepts
embedding is confounded:

- **subject ↔ object**: for each relation with two entities, the two mentions trade places
  ("a mug in some grass" → "some grass in a mug");
- **attributes exchanged**: for each pair of entities with different attributes, the attributes
  trade owners ("a red ball next to a blue box" → "a blue ball next to a red box").

Where the entities can be found in the caption's words (the usual case) the caption itself is
rewritten, keeping its determiners and wording; otherwise the counterfactual is written from the
graph alone ("a grass in a mug"). Pure functions, no models.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from itertools import combinations

from comclip.graph import Relation, SceneGraph

__all__ = ["Mention", "counterfactuals", "find_mentions", "graph_to_text", "swap_attributes",
           "swap_subject_object"]

DETERMINERS = frozenset(
    "a an the some this that these those one two three four five six seven eight nine ten many several "
    "his her its their my your our another each every no".split())
_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9'\-]*")
_VOWEL_SOUND = re.compile(r"^(?:[aeio]|u(?!ni|se|su|te|ro|ku|ra)|hour|honest|honou?r|heir)", re.IGNORECASE)


@dataclass(frozen=True)
class _Token:
    text: str
    start: int
    end: int

    @property
    def norm(self) -> str:
        return _norm(self.text)


@dataclass(frozen=True)
class Mention:
    """Where an entity is written in its caption (character offsets, end-exclusive).

    ``start`` is the start of the whole mention (determiner included, if any), ``attr_start`` the
    start of its attribute words (== ``name_start`` when it has none in front of the noun), and
    ``name_start``/``end`` the head noun phrase.
    """

    entity: str
    start: int
    attr_start: int
    name_start: int
    end: int
    attributes_found: bool  # every attribute of the entity is written right before its noun


def _norm(word: str) -> str:
    """Lower-case, singular-ish form used to compare caption words with graph names."""
    w = word.lower().strip("'-")
    if len(w) > 4 and w.endswith("ies"):
        return w[:-3] + "y"
    if len(w) > 3 and w.endswith(("ches", "shes", "sses", "xes")):
        return w[:-2]
    if len(w) > 3 and w.endswith("s") and not w.endswith("ss"):
        return w[:-1]
    return w


def _tokens(text: str) -> list[_Token]:
    return [_Token(m.group(0), m.start(), m.end()) for m in _WORD.finditer(text)]


def find_mentions(graph: SceneGraph, caption: str | None = None) -> dict[str, Mention] | None:
    """Locate every entity of ``graph`` in ``caption`` (default: the graph's caption).

    Returns None when some entity's name cannot be found as words of the caption (e.g. a parser
    that lemmatised "sits on" into "sit on" is fine, but a name that is not written at all is not).
    Entities with the same name take successive occurrences.
    """
    text = graph.caption if caption is None else caption
    toks = _tokens(text)
    used: set[int] = set()
    out: dict[str, Mention] = {}
    for ent in graph.entities:
        name = [_norm(w) for w in _WORD.findall(ent.name)]
        if not name:
            return None
        hit = None
        for i in range(len(toks) - len(name) + 1):
            span = range(i, i + len(name))
            if any(j in used for j in span):
                continue
            if [toks[j].norm for j in span] == name:
                hit = i
                break
        if hit is None:
            return None
        used.update(range(hit, hit + len(name)))
        attrs = {_norm(w) for a in ent.attributes for w in _WORD.findall(a)}
        k = hit
        while k > 0 and (k - 1) not in used and toks[k - 1].norm in attrs:
            k -= 1
        q = k  # quantity words a parser may list as attributes ("two") stay with the determiner
        while q < hit and toks[q].norm in DETERMINERS:
            q += 1
        found = {toks[j].norm for j in range(q, hit)}
        used.update(range(k, hit))
        start = toks[k].start
        if k > 0 and (k - 1) not in used and toks[k - 1].text.lower() in DETERMINERS:
            start = toks[k - 1].start
            used.add(k - 1)
        out[ent.id] = Mention(ent.id, start, toks[q].start, toks[hit].start, toks[hit + len(name) - 1].end,
                              attributes_found=found == attrs - DETERMINERS)
    spans = sorted((m.start, m.end) for m in out.values())
    if any(b[0] < a[1] for a, b in zip(spans, spans[1:], strict=False)):
        return None
    return out


def _rewrite(text: str, edits: Iterable[tuple[int, int, str]]) -> str:
    """Apply non-overlapping (start, end, replacement) edits, then fix a/an before changed words."""
    ordered = sorted(edits)
    out: list[str] = []
    changed: list[int] = []  # positions (in the output) where a replacement starts
    pos = 0
    for start, end, new in ordered:
        out.append(text[pos:start])
        changed.append(sum(len(s) for s in out))
        out.append(new)
        pos = end
    out.append(text[pos:])
    result = _fix_articles("".join(out), changed)
    return _fix_case(text, result)


def _fix_case(before: str, after: str) -> str:
    """Keep sentence case: a capitalised determiner moved away from the start is lower-cased and
    the new first word is capitalised."""
    if not before or not after or not before[0].isupper():
        return after
    toks = _tokens(after)
    for t in toks[1:]:
        if t.text[0].isupper() and t.text[1:].islower() and t.text.lower() in DETERMINERS:
            after = after[:t.start] + t.text.lower() + after[t.end:]
    return after[0].upper() + after[1:]


def _fix_articles(text: str, changed: Sequence[int]) -> str:
    """``a``/``an`` right before a replaced stretch agree with the word that now follows them."""
    toks = _tokens(text)
    edits = []
    for i, t in enumerate(toks[:-1]):
        nxt = toks[i + 1]
        if t.text.lower() not in ("a", "an"):
            continue
        if not any(t.start <= c <= nxt.start for c in changed) and not any(
                t.start <= c < t.end for c in changed):
            continue
        want = "an" if _VOWEL_SOUND.match(nxt.text) else "a"
        if t.text.lower() != want:
            edits.append((t.start, t.end, want.capitalize() if t.text[0].isupper() else want))
    for start, end, new in reversed(edits):
        text = text[:start] + new + text[end:]
    return text


def _article(phrase: str) -> str:
    return "an" if _VOWEL_SOUND.match(phrase) else "a"


def graph_to_text(graph: SceneGraph) -> str:
    """Write a graph as a plain caption: its relations as "a X predicate a Y", then lone entities."""
    phrases = {e.id: e.phrase for e in graph.entities}
    np_ = {k: f"{_article(v)} {v}" for k, v in phrases.items()}
    parts: list[str] = []
    mentioned: set[str] = set()
    for r in graph.relations:
        words = [np_[r.subject], r.predicate] + ([np_[r.object]] if r.object is not None else [])
        parts.append(" ".join(words))
        mentioned.update(x for x in (r.subject, r.object) if x is not None)
    parts.extend(np_[e.id] for e in graph.entities if e.id not in mentioned)
    return " and ".join(parts)


def _split_quantity(attributes: Sequence[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(quantity words such as "two", the other attributes)."""
    quantity = tuple(a for a in attributes if a.lower() in DETERMINERS)
    return quantity, tuple(a for a in attributes if a.lower() not in DETERMINERS)


def _swapped_graph(graph: SceneGraph, a: str, b: str, *, names: bool) -> SceneGraph:
    """The graph with entities ``a`` and ``b`` exchanging names (names=True) or attributes."""
    ea, eb = graph.entity(a), graph.entity(b)
    if names:
        new = {a: replace(ea, name=eb.name, attributes=eb.attributes), b: replace(eb, name=ea.name,
                                                                                 attributes=ea.attributes)}
    else:  # qualities trade owners; quantity words ("two") stay where they are
        qa, qb = _split_quantity(ea.attributes), _split_quantity(eb.attributes)
        new = {a: replace(ea, attributes=qa[0] + qb[1]), b: replace(eb, attributes=qb[0] + qa[1])}
    entities = tuple(new.get(e.id, e) for e in graph.entities)
    return SceneGraph(graph.caption, entities, graph.relations)


def swap_subject_object(graph: SceneGraph, relation: Relation) -> str | None:
    """The caption with the relation's subject and object mentions exchanged; None if it has no
    object or both sides are the same entity."""
    if relation.object is None or relation.object == relation.subject:
        return None
    mentions = find_mentions(graph)
    if mentions is not None:
        ms, mo = mentions[relation.subject], mentions[relation.object]
        text = graph.caption
        return _rewrite(text, [(ms.start, ms.end, text[mo.start:mo.end]), (mo.start, mo.end, text[ms.start:ms.end])])
    return graph_to_text(_swapped_graph(graph, relation.subject, relation.object, names=True))


def swap_attributes(graph: SceneGraph, a: str, b: str) -> str | None:
    """The caption with the attributes of entities ``a`` and ``b`` exchanged; None if they have the
    same attributes."""
    ea, eb = graph.entity(a), graph.entity(b)
    if _split_quantity(ea.attributes)[1] == _split_quantity(eb.attributes)[1] or a == b:
        return None
    mentions = find_mentions(graph)
    if mentions is not None and mentions[a].attributes_found and mentions[b].attributes_found:
        ma, mb = mentions[a], mentions[b]
        text = graph.caption
        attrs_a = text[ma.attr_start:ma.name_start].strip()
        attrs_b = text[mb.attr_start:mb.name_start].strip()
        name_a = text[ma.name_start:ma.end]
        name_b = text[mb.name_start:mb.end]
        return _rewrite(text, [(ma.attr_start, ma.end, " ".join(x for x in (attrs_b, name_a) if x)),
                               (mb.attr_start, mb.end, " ".join(x for x in (attrs_a, name_b) if x))])
    return graph_to_text(_swapped_graph(graph, a, b, names=False))


def _same(x: str, y: str) -> bool:
    return " ".join(x.lower().split()) == " ".join(y.lower().split())


def counterfactuals(graph: SceneGraph) -> list[str]:
    """Every subject↔object swap, then every attribute exchange, de-duplicated, without the
    original caption. Empty when the graph has no relation between two entities and no two
    entities with different attributes."""
    out: list[str] = []
    for r in graph.relations:
        s = swap_subject_object(graph, r)
        if s is not None:
            out.append(s)
    related = [(r.subject, r.object) for r in graph.relations if r.object is not None and r.object != r.subject]
    pairs = list(dict.fromkeys(related + list(combinations([e.id for e in graph.entities], 2))))
    seen_pairs: set[frozenset[str]] = set()
    for a, b in pairs:
        if frozenset((a, b)) in seen_pairs:
            continue
        seen_pairs.add(frozenset((a, b)))
        s = swap_attributes(graph, a, b)
        if s is not None:
            out.append(s)
    result: list[str] = []
    for s in out:
        if not _same(s, graph.caption) and not any(_same(s, t) for t in result):
            result.append(s)
    return result

