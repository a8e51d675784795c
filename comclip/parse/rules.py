"""Rule-based caption parser: no model, deterministic, the offline default.

The caption is lowercased, tokenised, multi-word prepositions are merged into one token
("in front of"), and a left-to-right chunker turns tokens into units: noun phrases, verb groups,
prepositions, copulas, predicate adjectives, conjunctions, relative pronouns and the existential
"there". A small state machine then assembles the units into entities and relations.

Conventions (shared with the spaCy backend):

- Entity ids are "e0", "e1", ... in order of first mention; every noun phrase is a new entity
  (no coreference between noun phrases). Personal pronouns reuse an earlier entity: a subject
  pronoun ("he", "they") the previous clause's subject, an object pronoun ("it", "them") the most
  recent entity that is not the current subject.
- ``name`` is the lowercased head noun phrase without determiners and attributes; compounds are
  kept ("fire truck", "coffee mug"); plurals keep their surface form ("dogs").
- Attributes, in caption order: adjectives, colours, numbers ("two"), materials ("wooden",
  "stone" before a noun), participles before a noun ("running"), then predicate adjectives
  ("the car is red" -> red). Intensifiers ("very") are dropped.
- Predicates: verbs lemmatised ("sits on" -> "sit on", "holding" -> "hold") with a directly
  following preposition or particle ("look at", "pick up"); after a copula a past participle is
  passive and keeps its form ("is covered with" -> "covered with"); copula + preposition is just
  the preposition ("is on" -> "on"); multi-word prepositions stay whole ("next to", "on top of",
  "in front of", "on the left of"); negation is kept as "not ...". An intransitive verb, or a
  position without an object ("on the left"), gives a relation with object null.
- A prepositional phrase attaches to the nearest preceding noun phrase ("a man rides a horse on
  the beach" -> horse on beach); after a copula, to the clause subject.
- Frame phrases ("a photo of ...") and collective nouns ("a group of people" -> people) are
  dropped; a possessive ("the man's hat") gives ``man have hat``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from comclip.graph import SceneGraph
from comclip.parse import lexicon as lx
from comclip.parse.base import require_caption
from comclip.parse.builder import GraphBuilder

__all__ = ["RulesParser", "chunk", "parse_rules", "tokenize"]

# -- tokens -----------------------------------------------------------------------------------

END_PUNCT = frozenset(".;!?")
CONJUNCTIONS = frozenset({"and", "or", "but", "&", "while", "whereas", "where", "then", ",", ":"})
REL_PRONOUNS = frozenset({"who", "which", "whom"})
SUBJECT_PRONOUNS = frozenset({"he", "she", "it", "they"})
OBJECT_PRONOUNS = frozenset({"him", "her", "it", "them"})
IGNORED_PRONOUNS = frozenset({"i", "you", "we", "me", "us", "himself", "herself", "itself", "themselves"})
NEGATIONS = frozenset({"not", "n't", "never"})
LINKING_VERBS = frozenset({"look", "seem", "appear", "become", "turn", "stay", "remain", "feel", "get"})
POSITIONAL = frozenset(
    {
        "on the left",
        "on the right",
        "to the left",
        "to the right",
        "in the background",
        "in the foreground",
        "in the distance",
        "in the middle",
        "at the top",
        "at the bottom",
        "in the center",
        "in the centre",
        "in front",
        "on top",
        "in the back",
        "at the back",
    }
)
_MULTI: tuple[tuple[str, ...], ...] = tuple(
    sorted({*lx.MULTIWORD_PREPOSITIONS, *(tuple(p.split()) for p in POSITIONAL)}, key=len, reverse=True)
)
PREP_TOKENS = frozenset(lx.PREPOSITIONS | {" ".join(p) for p in _MULTI})
# Adjectives that are also common nouns: only modifiers when a clear noun follows them.
NOUNY_ADJECTIVES = frozenset(
    """wood metal plastic glass stone brick leather steel iron cotton wool paper cardboard ceramic
    concrete marble rubber denim silk straw tin copper bronze porcelain velvet fur gold silver
    orange light cream lime olive chocolate baby toy top bottom front back side left right
    middle dark""".split()
)
_LY_NOT_ADVERBS = frozenset(
    """fly belly lily jelly family bully holly ally rally apply reply supply ugly curly early
    friendly lonely lovely elderly chilly hilly woolly silly jolly smelly oily wrinkly bubbly
    sparkly frilly""".split()
)
_FUNCTION_WORDS = frozenset(
    lx.DETERMINERS
    | lx.COPULAS
    | lx.AUXILIARIES
    | CONJUNCTIONS
    | REL_PRONOUNS
    | SUBJECT_PRONOUNS
    | OBJECT_PRONOUNS
    | IGNORED_PRONOUNS
    | NEGATIONS
    | PREP_TOKENS
    | END_PUNCT
    | {"there", "'", '"', "(", ")"}
)
_CONTRACTIONS = {
    "'re": "are",
    "'m": "am",
    "'ll": "will",
    "'ve": "have",
    "'d": "would",
}
_TOKEN_RE = re.compile(r"n't|'s|'re|'m|'ll|'ve|'d|[^\W_]+(?:[-.][^\W_]+)*|[^\s\w]|_")


def tokenize(caption: str) -> list[str]:
    """Lowercase word tokens, with multi-word prepositions merged into single tokens."""
    text = caption.lower().replace("\u2019", "'")
    text = re.sub(r"\b(ca|wo)n't\b", lambda m: {"ca": "can", "wo": "will"}[m.group(1)] + " n't", text)
    text = re.sub(r"(\w)n't\b", r"\1 n't", text)
    raw = [_CONTRACTIONS.get(t, t) for t in _TOKEN_RE.findall(text)]
    raw = [t for t in raw if t not in {"'", '"', "(", ")", "-", "`"}]
    out: list[str] = []
    i = 0
    while i < len(raw):
        for phrase in _MULTI:
            if tuple(raw[i : i + len(phrase)]) == phrase:
                out.append(" ".join(phrase))
                i += len(phrase)
                break
        else:
            out.append(raw[i])
            i += 1
    return out


def _is_adverb(tok: str) -> bool:
    return tok in lx.ADVERBS or (len(tok) > 4 and tok.endswith("ly") and tok not in _LY_NOT_ADVERBS)


def _is_content(tok: str | None) -> bool:
    """A word that can belong to a noun phrase or be a verb (not a function word)."""
    return tok is not None and tok not in _FUNCTION_WORDS and not _is_adverb(tok) and tok[0].isalnum()


def _form(tok: str) -> str | None:
    """Verb form of a token ("base", "s", "ing", "past"), guessing -ing/-ed for unknown words."""
    form = lx.verb_form(tok)
    if form is not None:
        return form
    if tok in lx.ING_NOUNS or tok in lx.ADJECTIVES:
        return None
    if len(tok) > 4 and tok.endswith("ing"):
        return "ing"
    if len(tok) > 4 and tok.endswith("ed"):
        return "past"
    return None


# -- units ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NP:
    """A noun phrase (or a pronoun, which has an empty name)."""

    name: str
    attributes: tuple[str, ...] = ()
    pronoun: str | None = None
    possessor: bool = False


@dataclass(frozen=True)
class Verb:
    predicate: str
    form: str
    aux: bool = False
    objectless: bool = False
    lemma: str = ""


@dataclass(frozen=True)
class Prep:
    predicate: str
    objectless: bool = False


@dataclass(frozen=True)
class Cop:
    negated: bool = False


@dataclass(frozen=True)
class Adjs:
    words: tuple[str, ...]


@dataclass(frozen=True)
class Conj:
    word: str


@dataclass(frozen=True)
class Rel:
    pass


@dataclass(frozen=True)
class There:
    pass


@dataclass(frozen=True)
class End:
    pass


Unit = NP | Verb | Prep | Cop | Adjs | Conj | Rel | There | End

# -- chunker ----------------------------------------------------------------------------------


@dataclass
class _Chunker:
    toks: list[str]
    units: list[Unit] = field(default_factory=list)

    def at(self, j: int) -> str | None:
        return self.toks[j] if 0 <= j < len(self.toks) else None

    def run(self) -> list[Unit]:
        i = 0
        while i < len(self.toks):
            j = self.step(i)
            i = max(j, i + 1)
        return self.units

    # one step: consume at least one token starting at i, return the next index
    def step(self, i: int) -> int:
        t = self.toks[i]
        prev = self.units[-1] if self.units else None
        nxt = self.at(i + 1)
        if t in END_PUNCT:
            self.units.append(End())
            return i + 1
        if t in CONJUNCTIONS:
            self.units.append(Conj(t))
            return i + 1
        if t == "there" and nxt in lx.COPULAS:
            self.units.append(There())
            return self._skip(i + 2, lambda w: w in lx.COPULAS or _is_adverb(w))
        if (t, nxt) in {("each", "other"), ("one", "another")}:
            return i + 2
        if t in PREP_TOKENS:
            self.units.append(Prep(t, objectless=t in POSITIONAL))
            return i + 1
        if t in REL_PRONOUNS or (
            t == "that" and isinstance(prev, NP) and (self._verbish(i + 1) or nxt in lx.DETERMINERS)
        ):
            self.units.append(Rel())
            return i + 1
        if t in lx.COPULAS or t in lx.AUXILIARIES:
            return self._copula_chain(i)
        if t == "her" and _is_content(nxt):
            return self._noun_phrase_step(i)
        if t in SUBJECT_PRONOUNS or t in OBJECT_PRONOUNS:
            self.units.append(NP("", pronoun=t))
            return i + 1
        if not _is_content(t):
            return i + 1
        if self._wants_adjectives(prev):
            j, words = self._adjectives(i)
            if words and self.at(j) == "than":  # "is bigger than" -> predicate "bigger than"
                self.units.append(Prep(f"{words[-1]} than"))
                return j + 1
            if words:
                self.units.append(Adjs(words))
                return j
        if self._verb_starts(t, prev, i):
            return self._verb_group(i, aux=False, negated=False, passive=False)
        return self._noun_phrase_step(i)

    def _skip(self, j: int, pred: Callable[[str], bool]) -> int:
        """Index of the first token from j on that ``pred`` rejects."""
        while j < len(self.toks) and pred(self.toks[j]):
            j += 1
        return j

    def _verbish(self, j: int) -> bool:
        """Does a verb group (or copula/auxiliary) start at token j?"""
        j = self._skip(j, _is_adverb)
        t = self.at(j)
        return t is not None and (t in lx.COPULAS or t in lx.AUXILIARIES or _form(t) is not None)

    def _wants_adjectives(self, prev: Unit | None) -> bool:
        if isinstance(prev, Cop):
            return True
        if isinstance(prev, Verb) and prev.predicate in LINKING_VERBS:
            return True
        return isinstance(prev, Conj) and len(self.units) > 1 and isinstance(self.units[-2], Adjs)

    def _adjectives(self, i: int) -> tuple[int, tuple[str, ...]]:
        """Predicate adjectives at i ("red", "big and brown" is split by the Conj unit)."""
        words: list[str] = []
        j = i
        while j < len(self.toks):
            t = self.toks[j]
            if _is_adverb(t):
                j += 1
                continue
            if t in {"more", "less"} and lx.adjective_like(self.at(j + 1) or ""):
                words.append(f"{t} {self.toks[j + 1]}")
                j += 2
                continue
            if not (lx.adjective_like(t) or t in lx.ADJECTIVES or _form(t) == "past"):
                break
            words.append(t)
            j += 1
        if words and self._nouny(j):
            return i, ()  # an adjective followed by a noun: it is a noun phrase
        return j, tuple(words)

    def _sentence_units(self) -> list[Unit]:
        out: list[Unit] = []
        for u in reversed(self.units):
            if isinstance(u, End):
                break
            out.append(u)
        return out

    def _verb_starts(self, t: str, prev: Unit | None, i: int) -> bool:
        form = _form(t)
        if form is None:
            return False
        if isinstance(prev, NP | Rel | Adjs):
            return True
        if isinstance(prev, Conj):
            if form != "base":
                return form != "s" or not self._noun_after_conj(i)
            return any(isinstance(u, Verb) and u.form == "base" for u in self._sentence_units())
        return False

    def _noun_after_conj(self, i: int) -> bool:
        """After a conjunction an -s word is a plural noun if a noun phrase came just before."""
        prev2 = self.units[-2] if len(self.units) > 1 else None
        return isinstance(prev2, NP) and self.at(i + 1) in END_PUNCT | {None} | PREP_TOKENS

    def _plural_context(self) -> bool:
        """Coordinated subject just before ("a cat and a dog ...")."""
        u = self.units
        return len(u) >= 2 and isinstance(u[-1], Conj) and u[-1].word == "and" and isinstance(u[-2], NP)

    def _verb_group(self, i: int, *, aux: bool, negated: bool, passive: bool) -> int:
        t = self.toks[i]
        lemma = lx.lemmatize_verb(t) or t
        parts = [t if passive else lemma]
        j = self._skip(i + 1, _is_adverb)
        if self.at(j) == "to" and lx.verb_form(self.at(j + 1) or "") == "base":
            parts += ["to", self.toks[j + 1]]
            j = self._skip(j + 2, _is_adverb)
        objectless = False
        nxt = self.at(j)
        if nxt in PREP_TOKENS and not (nxt == "to" and lx.verb_form(self.at(j + 1) or "") == "base"):
            parts.append(nxt)
            objectless = nxt in POSITIONAL
            j += 1
            after = self.at(j)
            if nxt in lx.PARTICLES and after in PREP_TOKENS:
                parts.append(after)
                objectless = after in POSITIONAL
                j += 1
        pred = " ".join((["not"] if negated else []) + parts)
        form = _form(t) or "base"
        self.units.append(Verb(pred, form, aux=aux, objectless=objectless, lemma=lemma))
        return j

    def _copula_chain(self, i: int) -> int:
        j, negated, cop, aux_words = i, False, False, []
        while j < len(self.toks):
            t = self.toks[j]
            if t in lx.COPULAS:
                cop = True
            elif t in lx.AUXILIARIES:
                aux_words.append(t)
            elif t in NEGATIONS:
                negated = True
            elif not _is_adverb(t):
                break
            j += 1
        nxt = self.at(j)
        form = _form(nxt) if _is_content(nxt) else None
        if form == "ing" or (aux_words and not cop and form is not None):
            return self._verb_group(j, aux=True, negated=negated, passive=False)
        if cop and form == "past" and self.at(self._skip(j + 1, _is_adverb)) in PREP_TOKENS:
            return self._verb_group(j, aux=True, negated=negated, passive=True)
        if cop:
            self.units.append(Cop(negated))
            return j
        if aux_words:  # "has a beard", "does not have a hat": the last auxiliary is the verb
            lemma = lx.lemmatize_verb(aux_words[-1]) or aux_words[-1]
            self.units.append(Verb(("not " if negated else "") + lemma, "s", aux=False, lemma=lemma))
        return j

    def _noun_phrase_step(self, i: int) -> int:
        j, np_ = self._noun_phrase(i, self._plural_context())
        if np_ is None:
            return j
        if self.at(j) == "'s":
            _, owned = self._noun_phrase(j + 1, False)
            if (
                owned is not None
                and owned.pronoun is None
                and _is_content(self.at(j + 1))
                and (_form(self.at(j + 1) or "") not in {"ing", "past"})
            ):
                self.units.append(NP(np_.name, np_.attributes, possessor=True))
                return j + 1
        self.units.append(np_)
        return j

    def _noun_phrase(self, i: int, plural_ctx: bool) -> tuple[int, NP | None]:
        attrs: list[str] = []
        nouns: list[str] = []
        j = i
        while j < len(self.toks):
            t, nxt = self.toks[j], self.at(j + 1)
            if not nouns and not attrs and (t in lx.DETERMINERS or t == "her"):
                j += 1
                continue
            if not nouns and (t in lx.ADVERBS or _is_adverb(t)):
                j += 1
                continue
            if not nouns and attrs and t in {"and", "or", ","} and self._modifier(nxt or "", j + 1):
                j += 1  # "a black and white cat"
                continue
            if not _is_content(t):
                break
            if not nouns:
                if lx.is_number(t) or (self._modifier(t, j) and (t, nxt) not in lx.FIXED_COMPOUNDS):
                    attrs.append(t)
                else:
                    nouns.append(t)
                j += 1
                continue
            if self._verb_here(t, nouns[-1], nxt, plural_ctx or self._numbered(attrs)):
                break
            if t in lx.ADJECTIVES and t not in NOUNY_ADJECTIVES:
                break
            nouns.append(t)
            j += 1
        if not nouns:
            if not attrs:
                return j, None
            nouns = [attrs.pop()]
        if len(nouns) == 1 and nouns[0] in lx.QUANTITY_NOUNS and self.at(j) == "of":
            return self._noun_phrase(j + 1, True)
        return j, NP(" ".join(nouns), tuple(attrs))

    @staticmethod
    def _numbered(attrs: list[str]) -> bool:
        return any(lx.is_number(a) and a not in {"one", "1"} for a in attrs)

    def _nouny(self, j: int) -> bool:
        """Is token j clearly part of a noun phrase (not a verb form)?"""
        t = self.at(j)
        if not _is_content(t):
            return False
        assert t is not None
        form = _form(t)
        if form in {"s", "past"} and t not in lx.ADJECTIVES:
            return lx.is_plural_noun(t) and not self._verbish_tail(j + 1)
        if form == "ing" and t not in lx.ING_NOUNS:
            return self._nouny(j + 1)
        return True

    def _verbish_tail(self, j: int) -> bool:
        t = self.at(j)
        return t is not None and (t in lx.DETERMINERS or t in PREP_TOKENS or lx.is_number(t))

    def _modifier(self, t: str, j: int) -> bool:
        """Is ``t`` (before any noun) an attribute of a following noun?"""
        if self.at(j + 1) in {"and", "or", ","} and lx.adjective_like(t):
            return self._modifier(self.at(j + 2) or "", j + 2)  # "black and white cat"
        if not _is_content(self.at(j + 1)):
            return False
        if t in NOUNY_ADJECTIVES:
            return self._nouny(j + 1)
        if lx.adjective_like(t):
            return True
        if "-" in t and any(lx.adjective_like(p) for p in t.split("-")):
            return True
        form = _form(t)
        if form in {"ing", "past"} and t not in lx.ING_NOUNS:
            return self._nouny(j + 1)
        return False

    def _verb_here(self, t: str, prev_noun: str, nxt: str | None, plural_ctx: bool) -> bool:
        """After a noun inside a noun phrase, does ``t`` start a verb group instead?"""
        if (prev_noun, t) in lx.FIXED_COMPOUNDS:
            return False
        form = _form(t)
        if t in lx.ING_NOUNS:
            return lx.lemmatize_verb(t, known_only=True) is not None and (
                nxt in lx.DETERMINERS or lx.is_number(nxt or "")
            )
        if form in {"ing", "past"}:
            return True
        plural = plural_ctx or lx.is_plural_noun(prev_noun)
        if form == "s":
            return not plural or not _is_content(nxt)
        if form == "base":
            return plural or nxt in lx.DETERMINERS or lx.is_number(nxt or "") or nxt in OBJECT_PRONOUNS
        return False


def chunk(tokens: list[str]) -> list[Unit]:
    """Turn tokens into units (noun phrases, verb groups, prepositions, ...)."""
    return _Chunker(tokens).run()


# -- assembly ---------------------------------------------------------------------------------


@dataclass
class _Pending:
    subjects: list[str]
    predicate: str
    is_verb: bool
    objectless: bool = False


@dataclass
class _Assembler:
    units: list[Unit]
    b: GraphBuilder = field(default_factory=GraphBuilder)
    clause_subj: list[str] | None = None
    prev_clause_subj: list[str] | None = None
    main_verb: bool = False
    existential: bool = False
    last_np: list[str] = field(default_factory=list)
    last_role: str = "none"  # "subj", "obj", "free", "none"
    pending: _Pending | None = None
    last_pred: _Pending | None = None
    pred_subjects: list[str] | None = None
    rel_subj: list[str] | None = None
    rel_done: bool = False
    rel_object: list[str] | None = None  # "the horse that the woman rides": horse
    cop_subj: list[str] | None = None
    cop_negated: bool = False
    linking: _Pending | None = None
    coordinate: bool = False
    after_comma: bool = False
    possessor: str | None = None

    def run(self) -> GraphBuilder:
        for k, unit in enumerate(self.units):
            self.handle(k, unit)
        self.flush()
        return self.b

    def handle(self, k: int, u: Unit) -> None:
        if isinstance(u, NP):
            self.on_np(k, u)
        elif isinstance(u, Verb):
            self.on_verb(u)
        elif isinstance(u, Prep):
            self.on_prep(u)
        elif isinstance(u, Cop):
            self.on_cop(u)
        elif isinstance(u, Adjs):
            self.on_adjs(u)
        elif isinstance(u, Conj):
            self.on_conj(k, u)
        elif isinstance(u, Rel):
            self.flush()
            self.rel_subj, self.rel_done, self.rel_object = list(self.last_np), False, None
        elif isinstance(u, There):
            self.flush()
            self.new_clause()
            self.existential = True
        elif isinstance(u, End):
            self.flush()
            self.new_clause()
            self.last_np, self.last_role = [], "none"

    # -- helpers
    def new_clause(self) -> None:
        if self.clause_subj:
            self.prev_clause_subj = self.clause_subj
        self.clause_subj, self.main_verb, self.existential = None, False, False
        self.rel_subj, self.cop_subj, self.pred_subjects, self.linking = None, None, None, None
        self.rel_object = None
        self.coordinate = False

    def flush(self) -> None:
        """Close a verb/preposition that never got an object: relation with object null."""
        p = self.pending
        if p is not None and p.is_verb and self.rel_object and not p.objectless:
            self.relate(p, self.rel_object)  # object relative clause: the modified noun
            self.rel_object = None
        elif p is not None and (p.is_verb or p.objectless):
            for s in p.subjects:
                self.b.add_relation(s, p.predicate, None)
        self.pending = None

    def relate(self, p: _Pending, objects: list[str]) -> None:
        for s in p.subjects:
            for o in objects:
                self.b.add_relation(s, p.predicate, o)

    def resolve_pronoun(self, pron: str) -> list[str]:
        """Subject pronoun: the previous clause's subject; object pronoun: the latest other entity."""
        opens_clause = self.clause_subj is None or pron != "it"
        if self.pending is None and pron in SUBJECT_PRONOUNS and opens_clause:
            return list(self.prev_clause_subj or self.clause_subj or [])
        current = set(self.pending.subjects if self.pending else self.clause_subj or [])
        for n in range(self.b.entity_count - 1, -1, -1):
            if f"e{n}" not in current:
                return [f"e{n}"]
        return []

    # -- units
    def on_np(self, k: int, u: NP) -> None:
        if self.cop_subj is not None and self.pending is None and not u.pronoun and not u.possessor:
            self.predicate_nominal(u)
            return
        ids = self.resolve_pronoun(u.pronoun) if u.pronoun else [self.b.add_entity(u.name, u.attributes)]
        if not ids:
            return
        if self.rel_subj is not None and not self.rel_done and self.pending is None and not self.coordinate:
            # "the horse that the woman rides": the woman is the clause's subject, horse its object
            self.rel_object, self.rel_subj, self.last_np = self.rel_subj, ids, ids
            return
        if u.possessor:
            self.possessor = ids[0]
            return
        owner, self.possessor = self.possessor, None
        self.place(k, ids)
        if owner is not None:
            self.b.add_relation(owner, "have", ids[0])

    def predicate_nominal(self, u: NP) -> None:
        """ "the animal is a brown dog": the noun phrase describes the subject (attributes)."""
        neg = "not " if self.cop_negated else ""
        for s in self.cop_subj or []:
            for a in (*u.attributes, u.name):
                self.b.add_attribute(s, neg + a)
        self.cop_subj = None

    def place(self, k: int, ids: list[str]) -> None:
        """Give a noun phrase its role: object, coordinated item, subject or predicate nominal."""
        coord, self.coordinate = self.coordinate, False
        if self.pending is not None:
            p, self.pending = self.pending, None
            self.relate(p, ids)
            self.last_pred, self.last_np, self.last_role = p, ids, "obj"
            return
        if coord and self.last_role == "obj" and self.last_pred is not None:
            if self.last_pred.is_verb or not self._has_own_modifier(k):
                self.relate(self.last_pred, ids)
                self.last_np = self.last_np + ids
                return
            if self.clause_subj is not None and not self.main_verb:
                self.clause_subj = self.clause_subj + ids
            self.last_np, self.last_role = ids, "free"
            return
        if coord and self.last_role in {"subj", "free"}:
            if self.clause_subj is not None and self.last_role == "subj":
                self.clause_subj = self.clause_subj + ids
            # "a cat and a dog on a mat": a group; "a man on the left and a woman ...": separate
            grouped = k >= 2 and isinstance(self.units[k - 2], NP)
            self.last_np = self.last_np + ids if grouped else ids
            return
        if self.clause_subj is None:
            self.clause_subj = ids
            self.last_role = "subj"
        else:
            self.last_role = "free"
        self.last_np = ids

    def _has_own_modifier(self, k: int) -> bool:
        nxt = self.units[k + 1] if k + 1 < len(self.units) else None
        return isinstance(nxt, Prep) or (isinstance(nxt, Verb) and not nxt.aux and nxt.form == "ing")

    def subjects_for_predicate(self, finite: bool) -> list[str]:
        if self.coordinate and self.pred_subjects:
            return self.pred_subjects
        if self.rel_subj is not None and not self.rel_done:
            self.rel_done = True
            return self.rel_subj
        if self.after_comma and self.clause_subj:
            return self.clause_subj
        if finite and self.clause_subj and not self.main_verb:
            self.main_verb = True
            self.rel_subj = None
            return self.clause_subj
        if not finite and self.last_role == "obj" and self.last_pred and not self.last_pred.is_verb:
            return self.last_pred.subjects  # "a woman in a dress standing ..." -> woman
        return list(self.last_np or self.clause_subj or [])

    def on_verb(self, u: Verb) -> None:
        self.flush()
        self.cop_subj = None
        finite = (
            u.aux
            or u.form in {"s", "base"}
            or (u.form == "past" and self.clause_subj is not None and self.last_np == self.clause_subj)
        )
        subjects = self.subjects_for_predicate(finite)
        self.coordinate = self.after_comma = False
        self.pred_subjects = subjects
        self.pending = _Pending(subjects, u.predicate, True, u.objectless)
        self.linking = self.pending if u.lemma in LINKING_VERBS and u.predicate == u.lemma else None

    def on_prep(self, u: Prep) -> None:
        self.flush()
        if self.cop_subj is not None:
            subjects = self.cop_subj
            pred = ("not " if self.cop_negated else "") + u.predicate
            self.cop_subj = None
        elif self.coordinate and self.last_pred is not None and not self.last_pred.is_verb:
            subjects, pred = self.last_pred.subjects, u.predicate
        elif self._after_of():
            subjects, pred = self.last_pred.subjects, u.predicate  # type: ignore[union-attr]
        else:
            subjects, pred = list(self.last_np), u.predicate
        self.coordinate = False
        if not subjects:
            return
        self.pending = _Pending(subjects, pred, False, u.objectless)
        if u.objectless:
            self.flush()

    def _after_of(self) -> bool:
        """Right after "X of Y": a new prepositional phrase describes X ("a cup of tea on a table")."""
        p = self.last_pred
        return self.last_role == "obj" and p is not None and not p.is_verb and p.predicate == "of"

    def on_cop(self, u: Cop) -> None:
        self.flush()
        if self.clause_subj is None and not self.last_np:
            self.existential = True
            return
        if self.rel_subj is not None and not self.rel_done:
            self.rel_done, subjects = True, self.rel_subj
        elif self.clause_subj is not None and not self.main_verb:
            self.main_verb, subjects = True, self.clause_subj
        else:
            subjects = list(self.last_np)
        self.cop_subj, self.cop_negated = subjects, u.negated
        self.coordinate = False

    def on_adjs(self, u: Adjs) -> None:
        if self.linking is not None and self.pending is self.linking:
            targets, self.pending, self.cop_negated = self.linking.subjects, None, False
        else:
            targets = self.cop_subj if self.cop_subj is not None else list(self.last_np)
        neg = "not " if self.cop_negated else ""
        for s in targets:
            for w in u.words:
                self.b.add_attribute(s, neg + w)
        self.coordinate = False

    def on_conj(self, k: int, u: Conj) -> None:
        self.flush()
        if self._starts_clause(k):
            self.new_clause()
            self.last_role = "none"
            return
        nxt = self.units[k + 1] if k + 1 < len(self.units) else None
        self.coordinate = True
        self.after_comma = u.word == "," and isinstance(nxt, Verb) and nxt.form == "ing"
        if isinstance(nxt, Verb):
            self.after_comma = self.after_comma and not self.pred_subjects
        if not isinstance(nxt, Adjs):
            self.cop_subj = self.cop_subj if isinstance(nxt, Prep) else None

    def _starts_clause(self, k: int) -> bool:
        """Conjunction followed by a subject and a finite verb/copula, or by "there"."""
        rest = self.units[k + 1 : k + 3]
        if rest and isinstance(rest[0], There):
            return True
        if len(rest) < 2 or not isinstance(rest[0], NP):
            return False
        if self.clause_subj is not None and not self.main_verb:
            return False  # "a man and a woman sit": still building the subject
        v = rest[1]
        return isinstance(v, Cop) or (isinstance(v, Verb) and (v.aux or v.form in {"s", "base", "past"}))


def parse_rules(caption: str) -> SceneGraph:
    """Parse a caption into a SceneGraph with the rule-based backend (no model)."""
    require_caption(caption)
    tokens = tokenize(lx.strip_caption_frame(caption))
    return _Assembler(chunk(tokens)).run().build(caption)


class RulesParser:
    """Callable parser object for the rules backend."""

    name = "rules"

    def __call__(self, caption: str) -> SceneGraph:
        return parse_rules(caption)

    def __repr__(self) -> str:
        return "RulesParser()"
