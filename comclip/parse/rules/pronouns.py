"""Which earlier entity a personal pronoun stands for.

A pronoun is the nearest earlier entity it can refer to: *he / him* a male or unmarked person,
*she / her* a female or unmarked person, *it* a thing or an animal (or a baby), *they / them* a
plural or a group. A subject pronoun that opens a clause takes the previous clause's subject when
that fits well ("a chef tastes the soup before he serves it" -> chef).

Contract: ``fit(pronoun, name, plural) -> int`` rates an entity for a pronoun: 0 it cannot be,
1 nothing speaks against it (a word the lists do not know), 2 it can be, 3 it fits well.
``is_plural(name, attributes)``: a plural head noun or a number above one among the attributes.
``resolve(pronoun, entities, exclude=, prefer=) -> (chosen ids, other ids that fit as well)``:
``entities`` are ``(id, name, plural)`` in order of mention; ``exclude`` (the clause's current
subject) is never chosen for an object pronoun; ``prefer`` is the previous clause's subject,
taken when every one of its entities fits well (or, for they, when it is a group); the other
ids returned are those that would fit as well. With no entity that fits at all, the nearest one
not excluded is taken. Pure; word lists in
:mod:`comclip.parse.lexicon`.
"""

from __future__ import annotations

from collections.abc import Sequence

from comclip.parse import lexicon as lx
from comclip.parse import morphology as mo

__all__ = ["fit", "is_plural", "resolve"]

Candidate = tuple[str, str, bool]


def _kind(name: str) -> str:
    head = name.split()[-1] if name.strip() else ""
    if head in lx.FEMALE_NOUNS:
        return "female"
    if head in lx.MALE_NOUNS:
        return "male"
    if head in lx.PERSON_NOUNS:
        return "person"
    if head in lx.ANIMAL_NOUNS:
        return "animal"
    return "unknown"


def is_plural(name: str, attributes: Sequence[str] = ()) -> bool:
    """ "dogs", "people", "two cat": more than one."""
    head = name.split()[-1] if name.strip() else ""
    return mo.is_plural_noun(head) or any(mo.is_number(a) and a not in {"one", "1"} for a in attributes)


def fit(pronoun: str, name: str, plural: bool) -> int:
    """0: cannot be; 1: nothing against it; 2: can be; 3: fits well."""
    kind = _kind(name)
    if pronoun in {"they", "them"}:
        return 3 if plural else 1
    if plural:
        return 0
    if pronoun == "it":
        if kind in {"female", "male", "person"}:
            return 2 if (name.split() or [""])[-1] in lx.NEUTER_PEOPLE else 0
        return 3
    wrong = "female" if pronoun in {"he", "him"} else "male"
    return {wrong: 0, "animal": 2, "unknown": 1}.get(kind, 3)


def resolve(
    pronoun: str,
    entities: Sequence[Candidate],
    *,
    exclude: Sequence[str] = (),
    prefer: Sequence[str] = (),
) -> tuple[list[str], list[str]]:
    """The entity (or group) ``pronoun`` stands for, and the other entities that fit as well."""
    by_id = {e[0]: e for e in entities}
    group = [by_id[i] for i in prefer if i in by_id]
    nearest_first = [e for e in reversed(entities) if e[0] not in exclude]
    if group:
        good = (len(group) > 1 and pronoun in {"they", "them"}) or all(fit(pronoun, n, p) == 3 for _, n, p in group)
        if good:
            chosen = [i for i, _, _ in group]
            rivals = [i for i, n, p in nearest_first if i not in chosen and fit(pronoun, n, p) == 3]
            return chosen, rivals
    if not nearest_first:
        return [], []
    scores = [fit(pronoun, name, plural) for _, name, plural in nearest_first]
    best = max(scores)
    if best == 0:
        return [nearest_first[0][0]], []
    ranked = [e[0] for e, s in zip(nearest_first, scores, strict=True) if s == best]
    return ranked[:1], ranked[1:]
