"""Where a prepositional phrase after a verb's object goes: the subject or the object.

"A girl walks a dog in the snow": the snow is where the scene is (girl in snow); "a dog carries a
stick in its mouth": the mouth holds the object (stick in mouth). The preferences, in order
(docs/parsing.md states them as annotation conventions):

1. after a verb that reached its object through a preposition, or after the copula ("sits on a
   chair in the kitchen", "is poured from a carton into a bowl"): the subject, unless the verb is
   one of seeing ("looks at a painting on the wall": the object);
2. to / at / for a person or an animal: the subject's recipient or target, predicate
   "verb prep" ("throws a frisbee to a dog" -> throw to);
3. into / onto / off / out of: where the object goes;
4. any place after a verb that puts its object somewhere (put, hang, plant, bury, ...): the object;
5. with (using) a tool or a body part: the subject's instrument; with anything else: the object's;
6. after a verb that draws, paints or writes: the object, where the made thing is ("draws a cat
   on the sidewalk");
7. a place, ground, weather, seat or vehicle (beach, kitchen, snow, bench, boat): the subject;
8. a possessed noun ("in its mouth", "on his head"): the object, the owner's part;
9. after a verb of seeing: the object ("watches a bird on a branch");
10. a path or vicinity (at, along, under, by, next to, ...): the subject, unless the verb sends its
    object along it (throw, kick, pour, ...);
11. otherwise the object, the nearest noun.

Contract: ``attach_phrase(prep, verb=, verb_prep=, noun=, owned=) -> Attachment`` is a pure
function of words (``verb`` a lemma, "be" for the copula; ``noun`` the phrase's head name;
``owned`` for a possessive determiner). ``Attachment.certain`` is False where the choice is a
preference that can be wrong; the parser then leaves a note on the graph. Word lists:
:mod:`comclip.parse.lexicon`. Both the rules and the spaCy backends use it.
"""

from __future__ import annotations

from dataclasses import dataclass

from comclip.parse import lexicon as lx

__all__ = ["Attachment", "attach_phrase", "is_animate"]


@dataclass(frozen=True)
class Attachment:
    """The decision: which side takes the phrase, its predicate, and why (in plain words)."""

    to_subject: bool
    predicate: str
    reason: str
    certain: bool = False


def is_animate(noun: str) -> bool:
    """A person or an animal (by its head word)."""
    head = noun.split()[-1] if noun.strip() else ""
    return head in lx.PERSON_NOUNS | lx.FEMALE_NOUNS | lx.MALE_NOUNS | lx.ANIMAL_NOUNS


def _is_scene(noun: str) -> bool:
    return noun in lx.SCENE_NOUNS or (noun.split()[-1] if noun.strip() else "") in lx.SCENE_NOUNS


def attach_phrase(prep: str, *, verb: str, verb_prep: bool, noun: str, owned: bool = False) -> Attachment:
    """Decide where ``prep noun`` goes after ``verb``'s object (see the module docstring)."""
    if verb_prep:
        if verb in lx.PERCEPTION_VERBS:
            return Attachment(False, prep, f"after “{verb}”, it says where the thing seen is")
        return Attachment(True, prep, "a second phrase after the verb's own: it places the subject")
    if prep in lx.RECIPIENT_PREPS and is_animate(noun):
        return Attachment(True, f"{verb} {prep}", "a person or an animal: the recipient or target", certain=True)
    if prep in lx.GOAL_PREPS:
        return Attachment(False, prep, "where the object goes", certain=True)
    if verb in lx.PLACEMENT_VERBS:
        return Attachment(False, prep, f"“{verb}” puts its object there")
    if prep in {"with", "using"}:
        if noun.split()[-1:] and noun.split()[-1] in lx.INSTRUMENTS:
            return Attachment(True, "with", "a tool: how the subject does it")
        return Attachment(False, prep, "not a tool: something the object has")
    return _place(prep, verb=verb, noun=noun, owned=owned)


def _place(prep: str, *, verb: str, noun: str, owned: bool) -> Attachment:
    """Steps 6-11: a place phrase after a transitive verb's object."""
    if verb in lx.DEPICTION_VERBS:
        return Attachment(False, prep, f"“{verb}” makes the object there")
    if _is_scene(noun):
        return Attachment(True, prep, "a place: where the scene is, so the subject's")
    if owned:
        return Attachment(False, prep, "a possessed part: where the object is", certain=True)
    if verb in lx.PERCEPTION_VERBS:
        return Attachment(False, prep, f"after “{verb}”, it says where the thing seen is")
    if prep in lx.SUBJECT_PREPS:
        if verb in lx.PROPULSION_VERBS:
            return Attachment(False, prep, f"“{verb}” sends its object along it")
        return Attachment(True, prep, f"“{prep}” usually places the subject")
    return Attachment(False, prep, "no cue: the nearest noun")
