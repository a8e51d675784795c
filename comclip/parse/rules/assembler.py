"""Rules backend, step 3: units -> SceneGraph entities and relations.

Contract: ``assemble(units) -> GraphBuilder`` runs a small state machine over the units once,
left to right, and returns the filled builder (call ``.build(caption)`` on it). It creates one
entity per noun phrase (ids in order of mention), resolves pronouns to the nearest compatible
earlier entity (:mod:`~comclip.parse.rules.pronouns`; a subject pronoun opening a clause prefers
the previous clause's subject), attaches a prepositional phrase after a verb's (or the copula's)
object to the subject or the object (:mod:`~comclip.parse.rules.attach`) and any other one to
the nearest preceding noun phrase (after a copula to the clause subject; after "a drawing of X"
to X), keeps a noun with a reduced relative ("the mouse chased by the cat", "the car parked
behind the bus") the subject of the clause's main verb, gives a verb/preposition without an
object a relation with object None, turns predicate adjectives and nominals into attributes
("not ..." when negated) and a possessive into ``owner have owned``. Where an attachment or a
pronoun was a guess, it adds a note to the builder. Pure and deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from comclip.parse import lexicon as lx
from comclip.parse import morphology as mo
from comclip.parse.builder import GraphBuilder
from comclip.parse.rules.attach import attach_phrase
from comclip.parse.rules.pronouns import is_plural, resolve
from comclip.parse.rules.units import NP, Adjs, Conj, Cop, End, Prep, Rel, There, Unit, Verb

__all__ = ["assemble"]


@dataclass
class _Pending:
    subjects: list[str]
    predicate: str
    is_verb: bool
    objectless: bool = False
    lemma: str = ""  # the verb's lemma, "be" for a copula + preposition
    verb_prep: bool = False  # the verb (or copula) reaches its object through a preposition
    in_frame: bool = False  # a phrase attached through the current frame


@dataclass
class _Frame:
    """A verb (or copula + preposition) and its object: later phrases may describe either side."""

    subjects: list[str]
    objects: list[str]
    lemma: str
    verb_prep: bool
    tail: list[str]  # the noun phrase a further phrase follows


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
    frame: _Frame | None = None
    past_main: bool = False  # the main verb so far is a bare past form: maybe a reduced relative

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
            self.on_prep(k, u)
        elif isinstance(u, Cop):
            self.on_cop(u)
        elif isinstance(u, Adjs):
            self.on_adjs(u)
        elif isinstance(u, Conj):
            self.on_conj(k, u)
        elif isinstance(u, Rel):
            self.flush()
            self.rel_subj, self.rel_done, self.rel_object = list(self.last_np), False, None
            self.frame = None
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
        self.rel_object, self.frame, self.past_main = None, None, False
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
        """The nearest compatible earlier entity; a subject pronoun opening a clause prefers the
        previous clause's subject, an object pronoun is never the current subject."""
        opens_clause = self.clause_subj is None or pron != "it"
        ids = [f"e{n}" for n in range(self.b.entity_count)]
        entities = [(i, self.b.name(i), is_plural(self.b.name(i), self.b.attributes(i))) for i in ids]
        if self.pending is None and pron in lx.SUBJECT_PRONOUNS and opens_clause:
            prefer = list(self.prev_clause_subj or self.clause_subj or [])
            chosen, others = resolve(pron, entities, prefer=prefer)
        else:
            current = self.pending.subjects if self.pending else self.clause_subj or []
            chosen, others = resolve(pron, entities, exclude=current)
        if others:
            self.b.add_note("pronoun", pron, chosen, others, "the nearest that fits")
        return chosen

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
            if p.is_verb or p.lemma == "be":
                self.frame = _Frame(list(p.subjects), list(ids), p.lemma, p.verb_prep, list(ids))
            elif p.in_frame and self.frame is not None:
                self.frame.tail = list(ids)
            return
        if coord and self.last_role == "obj" and self.last_pred is not None:
            if self.last_pred.is_verb or not (self._has_own_modifier(k) or self._separate_item(k)):
                self.relate(self.last_pred, ids)
                self.last_np = self.last_np + ids
                if self.frame is not None and self.last_pred.is_verb:
                    self.frame.objects, self.frame.tail = self.frame.objects + ids, list(ids)
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

    def _separate_item(self, k: int) -> bool:
        """ "a bottle of wine and two glasses": a determined item after "X of Y" is not in X."""
        u = self.units[k]
        p = self.last_pred
        return p is not None and p.predicate == "of" and isinstance(u, NP) and (
            bool(u.det) or any(mo.is_number(a) for a in u.attributes)
        )

    def _has_own_modifier(self, k: int) -> bool:
        nxt = self.units[k + 1] if k + 1 < len(self.units) else None
        return isinstance(nxt, Prep) or (isinstance(nxt, Verb) and not nxt.aux and nxt.form == "ing")

    def subjects_for_predicate(self, finite: bool, bare_past: bool = False) -> list[str]:
        if self.coordinate and self.pred_subjects:
            return self.pred_subjects
        if self.rel_subj is not None and not self.rel_done:
            self.rel_done = True
            return self.rel_subj
        if self.after_comma and self.clause_subj:
            return self.clause_subj
        if finite and self.clause_subj and (not self.main_verb or (self.past_main and not bare_past)):
            # "a wall covered in ivy stands ...": the first past form was a reduced relative
            self.main_verb, self.past_main = True, bare_past
            self.rel_subj = None
            return self.clause_subj
        if not finite and self.last_role == "obj" and self.last_pred and not self.last_pred.is_verb:
            return self.last_pred.subjects  # "a woman in a dress standing ..." -> woman
        return list(self.last_np or self.clause_subj or [])

    def on_verb(self, u: Verb) -> None:
        self.flush()
        self.cop_subj, self.frame = None, None
        bare_past = (
            u.form == "past" and not u.aux and not u.participle
            and self.clause_subj is not None and self.last_np == self.clause_subj
        )
        finite = u.aux or (u.form in {"s", "base"} and not u.participle) or bare_past
        subjects = self.subjects_for_predicate(finite, bare_past)
        self.coordinate = self.after_comma = False
        self.pred_subjects = subjects
        self.pending = _Pending(subjects, u.predicate, True, u.objectless, u.lemma, bool(u.prep))
        self.linking = self.pending if u.lemma in lx.LINKING_VERBS and u.predicate == u.lemma else None

    def on_prep(self, k: int, u: Prep) -> None:
        self.flush()
        frame = self._frame_for(u)
        lemma, in_frame = "", False
        if self.cop_subj is not None:
            subjects, lemma = self.cop_subj, "be"
            pred = ("not " if self.cop_negated else "") + u.predicate
            self.cop_subj = None
        elif self.coordinate and self.last_pred is not None and not self.last_pred.is_verb:
            subjects, pred = self.last_pred.subjects, u.predicate
        elif frame is not None:
            subjects, pred = self.attach(k, u, frame)
            in_frame = True
        elif self._after_of() and not self._depiction():
            subjects, pred = self.last_pred.subjects, u.predicate  # type: ignore[union-attr]
        else:
            subjects, pred = list(self.last_np), u.predicate
        self.coordinate = False
        if not subjects:
            return
        self.pending = _Pending(subjects, pred, False, u.objectless, lemma, bool(lemma), in_frame)
        if u.objectless:
            self.flush()

    def _frame_for(self, u: Prep) -> _Frame | None:
        """The verb frame a phrase after its object belongs to (directly, or after "X of Y")."""
        f = self.frame
        if f is None or u.objectless or u.predicate == "of" or self.cop_subj is not None or self.coordinate:
            return None
        after_of = self._after_of() and self.last_pred is not None and self.last_pred.subjects == f.tail
        return f if self.last_np == f.tail or after_of else None

    def attach(self, k: int, u: Prep, f: _Frame) -> tuple[list[str], str]:
        """Subject or object for a phrase after a verb's object (:func:`attach_phrase`), noted when guessed."""
        nxt = self.units[k + 1] if k + 1 < len(self.units) else None
        noun = nxt.name if isinstance(nxt, NP) else ""
        owned = isinstance(nxt, NP) and nxt.det in lx.POSSESSIVE_DETERMINERS
        a = attach_phrase(u.predicate, verb=f.lemma, verb_prep=f.verb_prep, noun=noun, owned=owned)
        chosen, other = (f.subjects, f.objects) if a.to_subject else (f.objects, f.subjects)
        if not a.certain and isinstance(nxt, NP) and noun:
            phrase = " ".join(w for w in (u.predicate, nxt.det, *nxt.attributes, noun) if w)
            self.b.add_note("attachment", phrase, list(chosen), list(other), a.reason)
        return list(chosen), a.predicate

    def _after_of(self) -> bool:
        """Right after "X of Y": a new prepositional phrase describes X ("a cup of tea on a table")."""
        p = self.last_pred
        return self.last_role == "obj" and p is not None and not p.is_verb and p.predicate == "of"

    def _depiction(self) -> bool:
        """ "a drawing of a house with a red door": after a picture of Y, a phrase describes Y."""
        p = self.last_pred
        return p is not None and any(self.b.name(s).split()[-1] in lx.DEPICTION_NOUNS for s in p.subjects)

    def on_cop(self, u: Cop) -> None:
        self.flush()
        if self.clause_subj is None and not self.last_np:
            self.existential = True
            return
        if self.rel_subj is not None and not self.rel_done:
            self.rel_done, subjects = True, self.rel_subj
        elif self.clause_subj is not None and (not self.main_verb or self.past_main):
            self.main_verb, self.past_main, subjects = True, False, self.clause_subj
        else:
            subjects = list(self.last_np)
        self.cop_subj, self.cop_negated = subjects, u.negated
        self.coordinate, self.frame = False, None

    def on_adjs(self, u: Adjs) -> None:
        if u.of_subject and self.pending is not None:
            targets = self.pending.subjects  # "the door stands open next to ...": the verb goes on
        elif self.linking is not None and self.pending is self.linking:
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


def assemble(units: list[Unit]) -> GraphBuilder:
    """Assemble chunked units into a graph builder (entities and relations)."""
    return _Assembler(units).run()
