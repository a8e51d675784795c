"""Rules backend, step 2: tokens -> units (noun phrases, verb groups, prepositions, ...).

Contract: ``chunk(tokens) -> list[Unit]`` reads the tokens left to right once and emits units in
order (see :mod:`comclip.parse.rules.units`); every token is consumed, each step consumes at
least one, unknown tokens are skipped; pure and deterministic. Decisions made here: noun phrase
vs verb (agreement, determiners, known verb forms), attributes vs head nouns (word lists,
fixed compounds, -ing/-ed modifiers), copula chains (passive "is covered with", auxiliary "has",
negation), predicate adjectives and comparatives ("bigger than"), possessives ("the man's"),
collective "a group of" (dropped), "each other" (dropped), relative "that"; after a verb, manner
words are dropped ("floats high over" -> "float over") and state adjectives before a preposition
describe the subject ("stands open next to"); a participle with "by" keeps its form ("chased
by"); a bare verb after a seeing verb's object is a verb ("watches the plane take off"); an -s
verb after "and" in a sentence with an -s verb is a verb ("holds a cup and drinks from it");
an adjective after a verb's object is the object's state ("paints the fence white").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from comclip.parse import lexicon as lx
from comclip.parse import morphology as mo
from comclip.parse.rules.tokens import guess_form, is_adverb, is_content
from comclip.parse.rules.units import NP, Adjs, Conj, Cop, End, Prep, Rel, There, Unit, Verb

__all__ = ["chunk"]


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
        if t in lx.END_PUNCT:
            self.units.append(End())
            return i + 1
        if t in lx.CONJUNCTIONS:
            self.units.append(Conj(t))
            return i + 1
        if t == "there" and nxt in lx.COPULAS:
            self.units.append(There())
            return self._skip(i + 2, lambda w: w in lx.COPULAS or is_adverb(w))
        if (t, nxt) in {("each", "other"), ("one", "another")}:
            return i + 2
        if t in lx.CLAUSE_OPENERS and nxt in lx.SUBJECT_PRONOUNS:  # "before he serves it"
            self.units.append(Conj(t))
            return i + 1
        if t in lx.PREP_TOKENS:
            self.units.append(Prep(t, objectless=t in lx.POSITIONAL))
            return i + 1
        if t in lx.REL_PRONOUNS or (
            t == "that" and isinstance(prev, NP) and (self._verbish(i + 1) or nxt in lx.DETERMINERS)
        ):
            self.units.append(Rel())
            return i + 1
        if t in lx.COPULAS or t in lx.AUXILIARIES:
            return self._copula_chain(i)
        if t == "her" and is_content(nxt):
            return self._noun_phrase_step(i)
        if t in lx.SUBJECT_PRONOUNS or t in lx.OBJECT_PRONOUNS:
            self.units.append(NP("", pronoun=t))
            return i + 1
        if not is_content(t):
            return i + 1
        if self._after_object(prev):
            j, words = self._state_adjectives(i)
            if words:  # "paints the fence white": the object's state
                self.units.append(Adjs(words))
                return j
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
        j = self._skip(j, is_adverb)
        t = self.at(j)
        return t is not None and (t in lx.COPULAS or t in lx.AUXILIARIES or guess_form(t) is not None)

    def _wants_adjectives(self, prev: Unit | None) -> bool:
        if isinstance(prev, Cop):
            return True
        if isinstance(prev, Verb) and prev.predicate in lx.LINKING_VERBS:
            return True
        return isinstance(prev, Conj) and len(self.units) > 1 and isinstance(self.units[-2], Adjs)

    def _after_object(self, prev: Unit | None) -> bool:
        """Is ``prev`` a noun phrase that a verb just took as its object?"""
        before = self.units[-2] if len(self.units) > 1 else None
        return isinstance(prev, NP) and not prev.pronoun and isinstance(before, Verb) and not before.prep

    def _state_adjectives(self, i: int) -> tuple[int, tuple[str, ...]]:
        """Known adjectives at i not followed by a noun, before a preposition or the end."""
        j = i
        while self.at(j) in lx.ADJECTIVES and self.at(j) not in lx.MANNER_WORDS | lx.NOUNY_ADJECTIVES:
            j += 1
        nxt = self.at(j)
        if j == i or not (nxt is None or nxt in lx.PREP_TOKENS or nxt in lx.END_PUNCT or nxt in lx.CONJUNCTIONS):
            return i, ()
        return j, tuple(self.toks[i:j])

    def _adjectives(self, i: int) -> tuple[int, tuple[str, ...]]:
        """Predicate adjectives at i ("red", "big and brown" is split by the Conj unit)."""
        words: list[str] = []
        j = i
        while j < len(self.toks):
            t = self.toks[j]
            if is_adverb(t) or (t, self.at(j + 1)) in lx.INTENSIFIED_ADJECTIVES:
                j += 1
                continue
            if t in {"more", "less"} and mo.adjective_like(self.at(j + 1) or ""):
                words.append(f"{t} {self.toks[j + 1]}")
                j += 2
                continue
            if not (mo.adjective_like(t) or t in lx.ADJECTIVES or guess_form(t) == "past"):
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
        form = guess_form(t)
        if form is None:
            return False
        if isinstance(prev, NP | Rel | Adjs):
            return True
        if isinstance(prev, Conj):
            if form == "s" and self._parallel_verb(i):
                return True
            if form != "base":
                return form != "s" or not self._noun_after_conj(i)
            return any(isinstance(u, Verb) and u.form == "base" for u in self._sentence_units())
        return False

    def _parallel_verb(self, i: int) -> bool:
        """ "holds a cup and drinks from it": an -s verb after "and" when the sentence has one."""
        if self.at(i + 1) in lx.END_PUNCT | {None}:
            return False
        return any(isinstance(u, Verb) and u.form == "s" and not u.aux for u in self._sentence_units())

    def _noun_after_conj(self, i: int) -> bool:
        """After a conjunction an -s word is a plural noun if a noun phrase came just before."""
        prev2 = self.units[-2] if len(self.units) > 1 else None
        return isinstance(prev2, NP) and self.at(i + 1) in lx.END_PUNCT | {None} | lx.PREP_TOKENS

    def _plural_context(self) -> bool:
        """Coordinated subject just before ("a cat and a dog ...")."""
        u = self.units
        return len(u) >= 2 and isinstance(u[-1], Conj) and u[-1].word == "and" and isinstance(u[-2], NP)

    def _after_verb(self, j: int, lemma: str) -> tuple[int, tuple[str, ...]]:
        """Skip adverbs and manner words after a verb; collect state adjectives that a preposition
        follows ("stands open next to"), except after a linking verb ("looks happy")."""
        states: list[str] = []
        while True:
            k = self._skip_manner(j)
            t = self.at(k)
            if t is None or lemma in lx.LINKING_VERBS or t not in lx.ADJECTIVES or t in lx.NOUNY_ADJECTIVES:
                break
            if self._nouny(k + 1):
                break
            after = self._skip(k + 1, lambda w: is_adverb(w) or w in lx.MANNER_WORDS or w in lx.ADJECTIVES)
            if self.at(after) not in lx.PREP_TOKENS:
                break
            states.append(t)
            j = k + 1
        return self._skip_manner(j), tuple(states)

    def _skip_manner(self, j: int) -> int:
        """Index of the first token from j on that is not an adverb or a manner word (one before a
        noun is an attribute: "wears low boots")."""
        while (t := self.at(j)) is not None and (is_adverb(t) or (t in lx.MANNER_WORDS and not self._nouny(j + 1))):
            j += 1
        return j

    def _verb_group(self, i: int, *, aux: bool, negated: bool, passive: bool) -> int:
        t = self.toks[i]
        lemma = mo.lemmatize_verb(t) or t
        j = self._skip(i + 1, is_adverb)
        form = guess_form(t) or "base"
        participle = not aux and (form == "past" or t in lx.SAME_FORM_PAST) and self.at(j) == "by"
        parts = [t if passive or participle else lemma]
        if self.at(j) == "to" and mo.verb_form(self.at(j + 1) or "") == "base":
            parts += ["to", self.toks[j + 1]]
            j = self._skip(j + 2, is_adverb)
        j, states = self._after_verb(j, lemma)
        objectless = False
        nxt = self.at(j)
        if nxt in lx.PREP_TOKENS and not (nxt == "to" and mo.verb_form(self.at(j + 1) or "") == "base"):
            parts.append(nxt)
            objectless = nxt in lx.POSITIONAL
            j += 1
            after = self.at(j)
            if nxt in lx.PARTICLES and after in lx.PREP_TOKENS:
                parts.append(after)
                objectless = after in lx.POSITIONAL
                j += 1
        pred = " ".join((["not"] if negated else []) + parts)
        prep = parts[-1] if parts[-1] in lx.PREP_TOKENS and len(parts) > 1 else ""
        self.units.append(Verb(pred, form, aux, objectless, lemma, prep, participle))
        if states:
            self.units.append(Adjs(states, of_subject=True))
        return j

    def _copula_chain(self, i: int) -> int:
        j, negated, cop, aux_words = i, False, False, []
        while j < len(self.toks):
            t = self.toks[j]
            if t in lx.COPULAS:
                cop = True
            elif t in lx.AUXILIARIES:
                aux_words.append(t)
            elif t in lx.NEGATIONS:
                negated = True
            elif not is_adverb(t):
                break
            j += 1
        nxt = self.at(j)
        form = guess_form(nxt) if is_content(nxt) else None
        if form == "ing" or (aux_words and not cop and form is not None):
            return self._verb_group(j, aux=True, negated=negated, passive=False)
        after = self.at(self._skip(j + 1, is_adverb))
        if cop and form == "past" and after in lx.PREP_TOKENS or cop and nxt in lx.SAME_FORM_PAST and after == "by":
            return self._verb_group(j, aux=True, negated=negated, passive=True)
        if cop:
            self.units.append(Cop(negated))
            return j
        if aux_words:  # "has a beard", "does not have a hat": the last auxiliary is the verb
            lemma = mo.lemmatize_verb(aux_words[-1]) or aux_words[-1]
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
                and is_content(self.at(j + 1))
                and (guess_form(self.at(j + 1) or "") not in {"ing", "past"})
            ):
                self.units.append(NP(np_.name, np_.attributes, possessor=True))
                return j + 1
        self.units.append(np_)
        return j

    def _noun_phrase(self, i: int, plural_ctx: bool) -> tuple[int, NP | None]:
        attrs: list[str] = []
        nouns: list[str] = []
        before = self.at(i - 1)  # the step loop skips a determiner before calling this
        det = before if before is not None and (before in lx.DETERMINERS or before == "her") else ""
        j = i
        while j < len(self.toks):
            t, nxt = self.toks[j], self.at(j + 1)
            if not nouns and not attrs and (t in lx.DETERMINERS or t == "her"):
                det = t
                j += 1
                continue
            if not nouns and (t in lx.ADVERBS or is_adverb(t)):
                j += 1
                continue
            if not nouns and attrs and t in {"and", "or", ","} and self._modifier(nxt or "", j + 1):
                j += 1  # "a black and white cat"
                continue
            if not is_content(t):
                break
            if not nouns:
                if attrs and attrs[-1] in lx.COLOUR_SHADES and t in lx.COLOURS and self.at(j - 1) == attrs[-1]:
                    attrs[-1] = f"{attrs[-1]} {t}"  # "light blue"
                elif mo.is_number(t) or (self._modifier(t, j) and (t, nxt) not in lx.FIXED_COMPOUNDS):
                    attrs.append(t)
                else:
                    nouns.append(t)
                j += 1
                continue
            if self._verb_here(t, nouns[-1], nxt, plural_ctx or self._numbered(attrs)) or self._complement(t):
                break
            if t in lx.ADJECTIVES and t not in lx.NOUNY_ADJECTIVES:
                break
            nouns.append(t)
            j += 1
        if not nouns:
            if not attrs:
                return j, None
            nouns = [attrs.pop()]
        if len(nouns) == 1 and nouns[0] in lx.QUANTITY_NOUNS and self.at(j) == "of":
            return self._noun_phrase(j + 1, True)
        return j, NP(" ".join(nouns), tuple(attrs), det=det)

    def _complement(self, t: str) -> bool:
        """ "watches the plane take off": a bare verb after the object of a seeing verb."""
        prev = self.units[-1] if self.units else None
        return isinstance(prev, Verb) and prev.lemma in lx.COMPLEMENT_VERBS and guess_form(t) == "base"

    @staticmethod
    def _numbered(attrs: list[str]) -> bool:
        return any(mo.is_number(a) and a not in {"one", "1"} for a in attrs)

    def _nouny(self, j: int) -> bool:
        """Is token j clearly part of a noun phrase (not a verb form)?"""
        t = self.at(j)
        if not is_content(t):
            return False
        assert t is not None
        form = guess_form(t)
        if form in {"s", "past"} and t not in lx.ADJECTIVES:
            return mo.is_plural_noun(t) and not self._verbish_tail(j + 1)
        if form == "ing" and t not in lx.ING_NOUNS:
            return self._nouny(j + 1)
        return True

    def _verbish_tail(self, j: int) -> bool:
        t = self.at(j)
        if t is not None and (t in lx.ADJECTIVES or t in lx.MANNER_WORDS) and self.at(j + 1) in lx.PREP_TOKENS:
            return True  # "the glass sits empty on ..."
        return t is not None and (t in lx.DETERMINERS or t in lx.PREP_TOKENS or mo.is_number(t) or is_adverb(t))

    def _modifier(self, t: str, j: int) -> bool:
        """Is ``t`` (before any noun) an attribute of a following noun?"""
        if self.at(j + 1) in {"and", "or", ","} and mo.adjective_like(t):
            return self._modifier(self.at(j + 2) or "", j + 2)  # "black and white cat"
        if not is_content(self.at(j + 1)):
            return False
        if t in lx.NOUNY_ADJECTIVES:
            return self._nouny(j + 1)
        if mo.adjective_like(t):
            return True
        if "-" in t and any(mo.adjective_like(p) for p in t.split("-")):
            return True
        form = guess_form(t)
        if form in {"ing", "past"} and t not in lx.ING_NOUNS:
            return self._nouny(j + 1)
        return False

    def _verb_here(self, t: str, prev_noun: str, nxt: str | None, plural_ctx: bool) -> bool:
        """After a noun inside a noun phrase, does ``t`` start a verb group instead?"""
        if (prev_noun, t) in lx.FIXED_COMPOUNDS:
            return False
        form = guess_form(t)
        if t in lx.ING_NOUNS:
            return mo.lemmatize_verb(t, known_only=True) is not None and (
                nxt in lx.DETERMINERS or mo.is_number(nxt or "")
            )
        if form in {"ing", "past"}:
            return True
        plural = plural_ctx or mo.is_plural_noun(prev_noun)
        if form == "s":
            return not plural or not is_content(nxt)
        if form == "base":
            return plural or nxt in lx.DETERMINERS or mo.is_number(nxt or "") or nxt in lx.OBJECT_PRONOUNS
        return False


def chunk(tokens: list[str]) -> list[Unit]:
    """Turn tokens into units (noun phrases, verb groups, prepositions, ...)."""
    return _Chunker(tokens).run()
