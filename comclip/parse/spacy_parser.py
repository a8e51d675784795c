"""spaCy backend: scene-graph extraction from a dependency parse.

``graph_from_doc(doc)`` is a pure function of a parsed ``Doc`` (ClearNLP-style labels as produced
by spaCy's English pipelines: nsubj, dobj, prep, pobj, amod, compound, nummod, acl, relcl, conj,
attr, acomp, expl, neg, prt, poss, ...). It follows the conventions documented in
:mod:`comclip.parse.rules` (word lists: :mod:`comclip.parse.lexicon`):

- every noun (NOUN/PROPN) that is not part of a compound, a multi-word preposition ("front" in
  "in front of") or a collective "group of" is an entity; ``name`` = compounds + head, lowercased,
  surface form (no lemmatisation); material compounds ("stone wall") are attributes;
- attributes: amod / nummod children (and their conjuncts) in order, then predicate adjectives
  (acomp of a copula) and predicate nominals ("the animal is a dog");
- a verb gives ``subject lemma object`` for each direct object; its first preposition joins the
  predicate when it has no direct object ("sit on"); a preposition the parse hangs on the verb
  after its object goes to the subject or the object by the preferences of
  :mod:`comclip.parse.rules.attach` (like the rules backend, with a note on the graph where that
  is a guess); one the parse hangs on a noun stays on that noun; pronouns resolve to the nearest
  compatible entity (:mod:`comclip.parse.rules.pronouns`);
  passives keep the participle ("covered with"); copula + preposition is just the preposition;
  existential "there is X on Y" makes X the subject; relative clauses and participles (relcl/acl)
  take the modified noun as subject; conjuncts share subjects/objects.

The pipeline itself is loaded lazily, only when the backend is selected.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from comclip.errors import InputError
from comclip.graph import SceneGraph
from comclip.parse import lexicon as lx
from comclip.parse import morphology as mo
from comclip.parse.base import require_caption
from comclip.parse.builder import GraphBuilder
from comclip.parse.rules.attach import attach_phrase
from comclip.parse.rules.pronouns import is_plural, resolve

if TYPE_CHECKING:
    from spacy.tokens import Doc, Token

__all__ = ["SPACY_MODELS", "SpacyParser", "graph_from_doc", "load_pipeline"]

SPACY_MODELS: tuple[str, ...] = ("en_core_web_sm", "en_core_web_md", "en_core_web_lg", "en_core_web_trf")
_REMEDY = "install one with: python -m spacy download en_core_web_sm"

# spaCy tag and dependency label sets (not words; the word lists are in the lexicon).
NOUN_POS = frozenset({"NOUN", "PROPN"})
SUBJ_DEPS = frozenset({"nsubj", "nsubjpass", "csubj"})
PREP_DEPS = frozenset({"prep", "agent"})


@dataclass(frozen=True)
class _PrepPhrase:
    text: str
    obj: Token | None
    consumed: tuple[Token, ...] = ()


def _low(tok: Token) -> str:
    return tok.text.lower()


def _is_copula(tok: Token) -> bool:
    return tok.lemma_.lower() == "be" or _low(tok) in lx.COPULAS - {"'s"}


def _lemma(tok: Token) -> str:
    """Verb lemma from spaCy, falling back to the small lemmatizer when the doc has none."""
    return tok.lemma_.lower() or mo.lemmatize_verb(_low(tok)) or _low(tok)


def _children(tok: Token, deps: frozenset[str] | set[str]) -> list[Token]:
    return [c for c in tok.children if c.dep_ in deps]


def _conjuncts(tok: Token) -> list[Token]:
    """``tok`` and its conjuncts (recursively), in order."""
    out = [tok]
    for c in _children(tok, {"conj"}):
        out.extend(_conjuncts(c))
    return sorted(out, key=lambda t: t.i)


def prep_phrase(prep: Token) -> _PrepPhrase:
    """Text and object of a (possibly multi-word) preposition."""
    pobj = next(iter(_children(prep, {"pobj", "pcomp"})), None)
    inner = next(iter(_children(prep, PREP_DEPS)), None)
    if pobj is None and inner is not None:  # "out of", "in between", "next to", "close to"
        sub = prep_phrase(inner)
        return _PrepPhrase(f"{_low(prep)} {sub.text}", sub.obj, (inner, *sub.consumed))
    if pobj is not None and _low(pobj) in lx.RELATIONAL_NOUNS | lx.POSITION_NOUNS:
        of = next((c for c in _children(pobj, PREP_DEPS) if _low(c) == "of"), None)
        mods = [c for c in pobj.children if c.dep_ in {"det", "amod", "compound"} and c.i < pobj.i]
        words = [_low(prep), *(_low(m) for m in sorted(mods, key=lambda t: t.i)), _low(pobj)]
        if of is not None and _low(pobj) in lx.RELATIONAL_NOUNS:
            sub = prep_phrase(of)
            return _PrepPhrase(" ".join([*words, "of"]), sub.obj, (pobj, of, *mods, *sub.consumed))
        if of is None and _low(pobj) in lx.POSITION_NOUNS and not _children(pobj, PREP_DEPS):
            return _PrepPhrase(" ".join(words), None, (pobj, *mods))
    return _PrepPhrase(_low(prep), pobj)


def _prep_children(tok: Token) -> list[Token]:
    """Prepositions hanging off ``tok``, including "next"/"close" heading a "to" phrase."""
    out = []
    for c in tok.children:
        if c.dep_ in PREP_DEPS or (
            _low(c) in lx.PREP_HEADS
            and c.dep_ in {"advmod", "amod", "npadvmod", "prep"}
            and _children(c, PREP_DEPS)
        ):
            out.append(c)
    return sorted(out, key=lambda t: t.i)


@dataclass
class _Extractor:
    doc: Doc
    b: GraphBuilder = field(default_factory=GraphBuilder)
    ids: dict[int, str] = field(default_factory=dict)
    redirect: dict[int, int] = field(default_factory=dict)
    consumed: set[int] = field(default_factory=set)
    last_subjects: list[str] = field(default_factory=list)

    # -- entities -------------------------------------------------------------------------
    def run(self, caption: str) -> SceneGraph:
        self.mark_structure()
        for tok in self.doc:
            if self.is_entity_head(tok):
                self.ids[tok.i] = self.b.add_entity(self.name(tok), self.attributes(tok))
        for tok in self.doc:
            if tok.i in self.ids:
                self.noun_relations(tok)
            elif tok.pos_ in {"VERB", "AUX"} and tok.dep_ not in {"aux", "auxpass"}:
                self.predicate(tok)
        return self.b.build(caption)

    def mark_structure(self) -> None:
        """Tokens inside multi-word prepositions, and "group of X" redirects."""
        for tok in self.doc:
            if tok.dep_ in PREP_DEPS or _low(tok) in lx.PREP_HEADS:
                self.consumed.update(t.i for t in prep_phrase(tok).consumed)
            if _low(tok) in lx.QUANTITY_NOUNS and tok.pos_ in NOUN_POS:
                of = next((c for c in _children(tok, PREP_DEPS) if _low(c) == "of"), None)
                target = prep_phrase(of).obj if of is not None else None
                if target is not None:
                    self.redirect[tok.i] = target.i
                    self.consumed.update({tok.i, of.i})  # type: ignore[union-attr]

    def is_entity_head(self, tok: Token) -> bool:
        if tok.pos_ not in NOUN_POS or tok.i in self.consumed or tok.dep_ == "compound":
            return False
        return not (tok.dep_ == "attr" and self.predicate_nominal_of(tok) is not None)

    def predicate_nominal_of(self, tok: Token) -> Token | None:
        """The copula whose predicate nominal ``tok`` is (not presentational), else None."""
        head = tok.head
        if _is_copula(head) and not _presentational(head) and _children(head, SUBJ_DEPS):
            return head
        return None

    def name(self, tok: Token) -> str:
        parts = [c for c in self.compounds(tok) if _low(c) not in lx.MATERIALS and c.pos_ != "ADJ"]
        words = sorted([*parts, tok], key=lambda t: t.i)
        text = "".join(t.text_with_ws for t in words[:-1]) + words[-1].text
        return " ".join(text.lower().split())

    def compounds(self, tok: Token) -> list[Token]:
        out: list[Token] = []
        for c in _children(tok, {"compound"}):
            out.extend([*self.compounds(c), c])
        return out

    def attributes(self, tok: Token) -> list[str]:
        mods: list[Token] = [c for c in self.compounds(tok) if _low(c) in lx.MATERIALS or c.pos_ == "ADJ"]
        for c in _children(tok, {"amod", "nummod"}):
            mods.extend(_conjuncts(c))
        mods = [m for m in mods if m.i not in self.consumed and _low(m) not in lx.DETERMINERS]
        return [_low(m) for m in sorted(mods, key=lambda t: t.i)]

    # -- references -------------------------------------------------------------------------
    def entity_ids(self, tok: Token | None, *, exclude: list[str] | None = None) -> list[str]:
        """Entity ids for ``tok`` and its conjuncts (pronouns resolved; others skipped)."""
        if tok is None:
            return []
        out: list[str] = []
        for conj in _conjuncts(tok):
            t = self.doc[self.redirect.get(conj.i, conj.i)]
            if t.i in self.ids:
                out.append(self.ids[t.i])
            elif t.pos_ == "PRON":
                out.extend(self.pronoun(t, exclude or []))
        return out

    def pronoun(self, tok: Token, exclude: list[str]) -> list[str]:
        """The nearest compatible earlier entity (a subject pronoun prefers the last subject)."""
        word = _low(tok)
        ids = [self.ids[i] for i in sorted(self.ids) if i < tok.i]
        entities = [(e, self.b.name(e), is_plural(self.b.name(e), self.b.attributes(e))) for e in ids]
        if word in lx.SUBJECT_PRONOUNS and tok.dep_ in SUBJ_DEPS:
            chosen, others = resolve(word, entities, prefer=self.last_subjects)
        elif word in lx.OBJECT_PRONOUNS:
            chosen, others = resolve(word, entities, exclude=exclude)
        else:
            return []
        if others:
            self.b.add_note("pronoun", word, chosen, others, "the nearest that fits")
        return chosen

    def subjects(self, verb: Token) -> list[str]:
        """Subjects of a verb or copula, following relative clauses, participles and conjuncts."""
        if _presentational(verb):
            return self.entity_ids(next(iter(_children(verb, {"attr"})), None))
        for s in _children(verb, SUBJ_DEPS):
            if _low(s) in lx.RELATIVE_WORDS and verb.dep_ == "relcl":
                return self.entity_ids(verb.head)
            found = self.entity_ids(s)
            if found or s.pos_ != "PRON":
                return found
        if verb.dep_ in {"acl", "relcl"}:
            return self.entity_ids(verb.head)
        if verb.dep_ in {"conj", "xcomp", "advcl"} and verb.head.i != verb.i:
            return self.subjects(verb.head)
        return []

    # -- relations --------------------------------------------------------------------------
    def noun_relations(self, tok: Token) -> None:
        """Prepositional phrases on a noun, and possessives ("the man's hat")."""
        me = self.ids[tok.i]
        for p in _prep_children(tok):
            if p.i in self.consumed:
                continue
            self.prep_relation([me], p)
        for owner in _children(tok, {"poss"}):
            for o in self.entity_ids(owner) if owner.pos_ in NOUN_POS else []:
                self.b.add_relation(o, "have", me)

    def prep_relation(self, subjects: list[str], prep: Token, prefix: str = "") -> list[str]:
        """Relate ``subjects`` through a prepositional phrase; return the phrase's objects.

        A phrase without an object ("on the left", "sleeps inside") relates to null.
        """
        pp = prep_phrase(prep)
        pred = f"{prefix}{pp.text}"
        if pp.obj is None:
            for s in subjects:
                self.b.add_relation(s, pred, None)
            return []
        objects = self.entity_ids(pp.obj, exclude=subjects)
        for s in subjects:
            for o in objects:
                self.b.add_relation(s, pred, o)
        return objects

    def prep_chain(self, subjects: list[str], preps: list[Token], prefix: str) -> bool:
        """First phrase on ``subjects`` (with ``prefix``), each later one on the nearest noun."""
        anchor: list[str] = []
        for n, p in enumerate(x for x in preps if x.i not in self.consumed):
            if n == 0:
                anchor = self.prep_relation(subjects, p, prefix=prefix) or subjects
            else:
                anchor = self.prep_relation(anchor[-1:], p) or anchor
        return bool(anchor)

    def attach_chain(self, subjects: list[str], objects: list[str], verb: str, preps: list[Token],
                     verb_prep: bool) -> None:
        """Phrases hung on a verb after its object: subject or object (rules/attach.py)."""
        for p in (x for x in preps if x.i not in self.consumed):
            pp = prep_phrase(p)
            if pp.obj is None or pp.text == "of":
                self.prep_relation(objects[-1:], p)
                continue
            owned = any(c.dep_ == "poss" for c in pp.obj.children)
            noun = self.name(pp.obj) if pp.obj.i in self.ids else _low(pp.obj)
            a = attach_phrase(pp.text, verb=verb, verb_prep=verb_prep, noun=noun, owned=owned)
            chosen, other = (subjects, objects[-1:]) if a.to_subject else (objects[-1:], subjects)
            prefix = a.predicate[: -len(pp.text)] if a.predicate.endswith(pp.text) else ""
            found = self.prep_relation(chosen, p, prefix=prefix)
            if found and not a.certain:
                mods = [c for c in pp.obj.children if c.dep_ in {"det", "poss", "amod", "nummod"} and c.i < pp.obj.i]
                phrase = " ".join([pp.text, *(_low(m) for m in sorted(mods, key=lambda t: t.i)), noun])
                self.b.add_note("attachment", phrase, chosen, other, a.reason)

    def predicate(self, verb: Token) -> None:
        if verb.dep_ == "xcomp" and verb.i == self.verb_text(verb.head)[1].i:
            return  # "tries to catch": handled as part of its head verb
        subjects = self.subjects(verb)
        if not subjects:
            return
        if verb.dep_ not in {"acl", "relcl", "conj", "advcl", "xcomp"} or _children(verb, SUBJ_DEPS):
            self.last_subjects = subjects
        neg = "not " if _children(verb, {"neg"}) else ""
        if _is_copula(verb):
            self.copula(verb, subjects, neg)
            return
        if _lemma(verb) in lx.LINKING_VERBS and _children(verb, {"acomp", "oprd"}):
            for s in subjects:
                for a in _children(verb, {"acomp", "oprd"}):
                    for adj in _conjuncts(a):
                        self.b.add_attribute(s, neg + _low(adj))
            return
        self.verb_relations(verb, subjects, neg)

    def verb_text(self, verb: Token) -> tuple[str, Token]:
        """Predicate text ("pick up", "try to catch", "covered") and the token carrying objects."""
        passive = bool(_children(verb, {"auxpass"}))
        words = [_low(verb) if passive else _lemma(verb)]
        words += [_low(p) for p in _children(verb, {"prt"})]
        carrier = verb
        xcomp = next((x for x in _children(verb, {"xcomp"}) if _children(x, {"aux"})), None)
        if xcomp is not None and not _children(verb, {"dobj"}):
            words += ["to", _lemma(xcomp)]
            carrier = xcomp
        return " ".join(words), carrier

    def objects(self, verb: Token, carrier: Token, subjects: list[str]) -> list[str]:
        """Direct objects; a relative pronoun object is the modified noun ("the horse that ...");
        an object pronoun is never one of the verb's ``subjects``."""
        out: list[str] = []
        for d in _children(carrier, {"dobj"}):
            if _low(d) in lx.RELATIVE_WORDS and verb.dep_ == "relcl":
                out.extend(self.entity_ids(verb.head))
            else:
                out.extend(self.entity_ids(d, exclude=subjects))
        return out

    def verb_relations(self, verb: Token, subjects: list[str], neg: str) -> None:
        text, carrier = self.verb_text(verb)
        pred = neg + text
        objects = self.objects(verb, carrier, subjects)
        for s in subjects:
            for o in objects:
                self.b.add_relation(s, pred, o)
        preps = [p for p in _prep_children(carrier) if p.i not in self.consumed]
        if objects:
            self.attach_chain(subjects, objects, _lemma(carrier), preps, verb_prep=False)
        elif preps:
            first = self.prep_relation(subjects, preps[0], prefix=f"{pred} ")
            self.attach_chain(subjects, first or subjects, _lemma(carrier), preps[1:], verb_prep=bool(first))
        else:
            for s in subjects:
                self.b.add_relation(s, pred, None)

    def copula(self, verb: Token, subjects: list[str], neg: str) -> None:
        """Predicate adjectives and nominals become attributes; prepositions become relations."""
        for a in _children(verb, {"acomp"}):
            for adj in _conjuncts(a):
                preps = _prep_children(adj)
                than = [p for p in preps if _low(p) == "than"]
                for p in than:  # "is bigger than X" -> predicate "bigger than"
                    self.prep_relation(subjects, p, prefix=f"{neg}{_low(adj)} ")
                if not than:
                    for s in subjects:
                        self.b.add_attribute(s, neg + _low(adj))
                    self.prep_chain(subjects, preps, prefix=neg)
        if not _presentational(verb):
            for n in _children(verb, {"attr"}):
                for noun in _conjuncts(n):
                    for s in subjects:
                        for w in (*self.attributes(noun), self.name(noun)):
                            self.b.add_attribute(s, neg + w)
        self.prep_chain(subjects, _prep_children(verb), prefix=neg)


def _presentational(verb: Token) -> bool:
    """ "there is X", "this is X", "it is X": X is what the caption is about, not a description."""
    if not _is_copula(verb) or not _children(verb, {"attr"}):
        return False
    subjects = _children(verb, SUBJ_DEPS)
    return bool(_children(verb, {"expl"})) or (
        bool(subjects) and all(_low(s) in lx.PRESENTATIONAL_SUBJECTS for s in subjects)
    )


def graph_from_doc(doc: Doc, caption: str | None = None) -> SceneGraph:
    """Extract a SceneGraph from a dependency-parsed spaCy ``Doc`` (pure; no model needed)."""
    return _Extractor(doc).run(doc.text if caption is None else caption)


def _installed(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def load_pipeline(name: str | None = None) -> Any:
    """Load an English spaCy pipeline with a dependency parser, or raise one clear InputError.

    ``name`` (or env ``COMCLIP_SPACY_MODEL``) may be a package name or a path; otherwise the
    first installed of ``SPACY_MODELS`` is used.
    """
    wanted = name or os.environ.get("COMCLIP_SPACY_MODEL") or None
    candidates = [wanted] if wanted else [m for m in SPACY_MODELS if _installed(m)]
    if not candidates:
        raise InputError(f"the spacy parser needs an English spaCy pipeline and none is installed; {_REMEDY}")
    try:
        import spacy
    except ImportError:
        raise InputError("the spacy parser needs the 'spacy' package: pip install spacy") from None
    model = candidates[0]
    try:
        nlp = spacy.load(model, exclude=["ner"])
    except OSError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"cannot load spaCy pipeline {model!r} ({first}); {_REMEDY}") from None
    if nlp.lang != "en" or "parser" not in nlp.pipe_names:
        raise InputError(f"spaCy pipeline {model!r} is not an English pipeline with a parser; {_REMEDY}")
    return nlp


class SpacyParser:
    """Callable parser backed by a loaded spaCy pipeline."""

    name = "spacy"

    def __init__(self, nlp: Any) -> None:
        self.nlp = nlp

    @classmethod
    def load(cls, model: str | None = None) -> SpacyParser:
        return cls(load_pipeline(model))

    def __call__(self, caption: str) -> SceneGraph:
        require_caption(caption)
        doc = self.nlp(mo.strip_caption_frame(caption).strip())
        return graph_from_doc(doc, caption)

    def __repr__(self) -> str:
        return f"SpacyParser({self.nlp.meta.get('name', '?')!r})"
