"""Rule-based caption parser: no model, deterministic, the offline default.

The caption is lowercased, tokenised, multi-word prepositions are merged into one token
("in front of"), and a left-to-right chunker turns tokens into units: noun phrases, verb groups,
prepositions, copulas, predicate adjectives, conjunctions, relative pronouns and the existential
"there". A small state machine then assembles the units into entities and relations.

Conventions (shared with the spaCy backend):

- Entity ids are "e0", "e1", ... in order of first mention; every noun phrase is a new entity
  (no coreference between noun phrases). A personal pronoun reuses the nearest earlier entity it
  can refer to (he/him a male or unmarked person, she/her a female or unmarked one, it a thing or
  an animal, they/them a plural or a group); a subject pronoun opening a clause prefers the
  previous clause's subject; an object pronoun is never the current subject.
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
- A prepositional phrase after a verb's (or the copula's) object goes to the subject or the
  object by the preferences of :mod:`~comclip.parse.rules.attach` ("a man rides a horse on the
  beach" -> man on beach; "a dog carries a stick in its mouth" -> stick in mouth; "a woman slices
  bread with a knife" -> woman with knife); any other one attaches to the nearest preceding noun
  phrase (after a copula, to the clause subject; after "a cup of tea", to the cup; after "a
  drawing of a house", to the house).
- Adverbs and manner words after a verb are dropped ("floats high over" -> "float over"); a
  state adjective between a verb and a preposition is the subject's attribute ("the door stands
  open next to the window" -> door [open]); one after a verb's object is the object's ("paints
  the fence white"). A participle with a by-agent keeps its form and leaves its noun the subject
  of the main verb ("the mouse chased by the cat hides" -> mouse chased by cat, mouse hide).
- Frame phrases ("a photo of ...") and collective nouns ("a group of people" -> people) are
  dropped; a possessive ("the man's hat") gives ``man have hat``; a possessive determiner ("its
  mouth") gives nothing.
- Where an attachment or a pronoun was a preference that can be wrong, the graph carries a note
  (``SceneGraph.notes``) saying what was chosen, why, and what else it could be.

The conventions are written out, with the gold sets that measure them, in docs/parsing.md.

Layout of the package, one step per module: :mod:`~comclip.parse.rules.tokens` (text -> tokens),
:mod:`~comclip.parse.rules.chunker` (tokens -> units, :mod:`~comclip.parse.rules.units`),
:mod:`~comclip.parse.rules.assembler` (units -> graph), with :mod:`~comclip.parse.rules.attach`
(subject or object for a phrase after a verb's object) and :mod:`~comclip.parse.rules.pronouns`
(pronoun resolution), which the spaCy backend shares. Word lists: :mod:`comclip.parse.lexicon`.

Contract: ``parse_rules(caption) -> SceneGraph`` (and ``RulesParser()(caption)``, name "rules")
is pure and deterministic; a non-string or empty caption is an InputError; a caption with no
entity gives an empty graph; the graph's ``caption`` is the caption as given.
"""

from __future__ import annotations

from comclip.graph import SceneGraph
from comclip.parse import morphology as mo
from comclip.parse.base import require_caption
from comclip.parse.rules.assembler import assemble
from comclip.parse.rules.chunker import chunk
from comclip.parse.rules.tokens import tokenize

__all__ = ["RulesParser", "chunk", "parse_rules", "tokenize"]


def parse_rules(caption: str) -> SceneGraph:
    """Parse a caption into a SceneGraph with the rule-based backend (no model)."""
    require_caption(caption)
    tokens = tokenize(mo.strip_caption_frame(caption))
    return assemble(chunk(tokens)).build(caption)


class RulesParser:
    """Callable parser object for the rules backend."""

    name = "rules"

    def __call__(self, caption: str) -> SceneGraph:
        return parse_rules(caption)

    def __repr__(self) -> str:
        return "RulesParser()"
