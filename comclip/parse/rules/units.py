"""Rules backend, the units the chunker emits and the assembler consumes.

Contract: frozen dataclasses, one per kind of chunk; ``Unit`` is their union. ``NP`` is a noun
phrase (``name`` = head words, ``attributes`` in caption order; a pronoun has an empty name and
``pronoun`` set; ``possessor`` marks "the man's"; ``det`` is its determiner as written, "" if
none); ``Verb`` a verb group (``predicate`` as it goes into the graph, ``form`` one of "base",
"s", "ing", "past", ``aux`` after an auxiliary/copula, ``objectless`` for a trailing position,
``lemma``, ``prep`` the preposition joined to it, ``participle`` for a non-finite passive
participle with a by-agent: "chased by"); ``Prep`` a preposition (``objectless`` for
"on the left"); ``Cop`` a copula (``negated``); ``Adjs`` predicate adjectives (``of_subject``: a
state of the preceding verb's subject, "stands open"); ``Conj`` a
conjunction or comma; ``Rel`` a relative pronoun; ``There`` existential "there is"; ``End`` the
end of a sentence.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["NP", "Adjs", "Conj", "Cop", "End", "Prep", "Rel", "There", "Unit", "Verb"]


@dataclass(frozen=True)
class NP:
    """A noun phrase (or a pronoun, which has an empty name)."""

    name: str
    attributes: tuple[str, ...] = ()
    pronoun: str | None = None
    possessor: bool = False
    det: str = ""


@dataclass(frozen=True)
class Verb:
    predicate: str
    form: str
    aux: bool = False
    objectless: bool = False
    lemma: str = ""
    prep: str = ""
    participle: bool = False


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
    of_subject: bool = False


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
