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

Layout of the package, one step per module: :mod:`~comclip.parse.rules.tokens` (text -> tokens),
:mod:`~comclip.parse.rules.chunker` (tokens -> units, :mod:`~comclip.parse.rules.units`),
:mod:`~comclip.parse.rules.assembler` (units -> graph). Word lists: :mod:`comclip.parse.lexicon`.

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
