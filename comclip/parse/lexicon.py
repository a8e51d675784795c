"""Small English word lists and a tiny verb lemmatizer shared by the parse backends.

Nothing here needs a model: the lists are deliberately short and aimed at image captions
(people, animals, objects, colours, materials, spatial prepositions, visible actions).
"""

from __future__ import annotations

import re

__all__ = [
    "ADJECTIVES",
    "ADVERBS",
    "AUXILIARIES",
    "COLOURS",
    "COMPARATIVES",
    "COPULAS",
    "DETERMINERS",
    "FIXED_COMPOUNDS",
    "ING_NOUNS",
    "IRREGULAR_PLURALS",
    "MATERIALS",
    "MULTIWORD_PREPOSITIONS",
    "NUMBERS",
    "PARTICLES",
    "PREPOSITIONS",
    "QUANTITY_NOUNS",
    "VERBS",
    "adjective_like",
    "is_number",
    "is_plural_noun",
    "lemmatize_verb",
    "strip_caption_frame",
    "verb_form",
]

DETERMINERS: frozenset[str] = frozenset(
    """a an the some this that these those his her its their my your our each every any another
    no all both several many few much either neither whose""".split()
)

NUMBERS: frozenset[str] = frozenset(
    """one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen
    sixteen seventeen eighteen nineteen twenty thirty forty fifty hundred dozen""".split()
)

COLOURS: frozenset[str] = frozenset(
    """red orange yellow green blue purple pink brown black white gray grey silver gold golden
    beige tan maroon navy teal turquoise violet cyan magenta crimson blond blonde dark light
    pale bright colorful colourful multicolored""".split()
)

MATERIALS: frozenset[str] = frozenset(
    """wooden wood metal metallic plastic glass stone brick leather steel iron cotton wool woolen
    woollen paper cardboard ceramic concrete marble rubber denim silk straw wicker tin copper
    bronze porcelain velvet fur furry""".split()
)

_OTHER_ADJECTIVES = """
big small large little tiny huge giant tall short long wide narrow thick thin fat skinny heavy
light-weight high low deep shallow round square rectangular circular triangular flat curved
straight pointed young old new elderly adult baby ancient modern fresh ripe rotten raw cooked
hot cold warm cool wet dry clean dirty empty full open closed broken whole half
happy sad angry smiling calm scared tired sleepy hungry busy quiet loud cute pretty beautiful
ugly handsome nice fancy plain simple messy neat tidy shiny dull bright sunny cloudy rainy snowy
foggy windy grassy sandy rocky muddy dusty leafy icy frozen striped spotted dotted checkered
plaid patterned fluffy hairy curly wavy bald soft hard smooth rough sharp blunt sweet sour
spicy delicious healthy strong weak fast slow male female left right front back upper lower
middle top bottom inner outer single double many other same different several various
wild domestic stuffed toy electric wireless digital busy crowded empty lone lonely asleep awake
alive dead real fake giant miniature tall-standing framed potted sliced chopped grilled fried
roasted baked boiled dried folded wrinkled torn cracked rusty shaded shady outdoor indoor
overweight muscular slim naked bare barefoot colored coloured dark-haired blonde-haired
""".split()

_GRADABLE = """big small large tall short long wide thick thin fat high low deep young old new hot cold
warm cool wet dry clean dirty full light dark bright soft hard smooth rough sharp strong weak fast
slow heavy happy tiny pretty ugly busy early close near sweet fresh""".split()


def _graded(adj: str) -> tuple[str, str]:
    """Comparative and superlative of a short adjective: big -> bigger, biggest."""
    if adj.endswith("e"):
        return adj + "r", adj + "st"
    if adj.endswith("y"):
        return adj[:-1] + "ier", adj[:-1] + "iest"
    if len(adj) <= 4 and adj[-1] not in "aeiouwy" and adj[-2] in "aeiou" and adj[-3] not in "aeiou":
        return adj + adj[-1] + "er", adj + adj[-1] + "est"
    return adj + "er", adj + "est"


COMPARATIVES: frozenset[str] = frozenset(w for a in _GRADABLE for w in _graded(a)) | {
    "better",
    "best",
    "worse",
    "worst",
    "farther",
    "further",
}

ADJECTIVES: frozenset[str] = frozenset(_OTHER_ADJECTIVES) | COLOURS | MATERIALS | COMPARATIVES

ADVERBS: frozenset[str] = frozenset(
    """very really quite too also just still almost slightly extremely rather so partially partly
    completely fully mostly together alone nearby here then now already even only happily quickly
    slowly carefully gently closely tightly loosely brightly""".split()
)

COPULAS: frozenset[str] = frozenset("is are was were be been being am 's".split())
AUXILIARIES: frozenset[str] = frozenset(
    "do does did can could will would may might shall should must has have had".split()
)

PREPOSITIONS: frozenset[str] = frozenset(
    """on in at under behind near inside outside above below beside besides beneath over across along
    through into onto with without by between among against around toward towards from of off
    underneath atop within beyond upon past like throughout alongside amid amidst up down
    about before after during for to than out away""".split()
)

# Particles that join a verb ("pick up", "lie down") when no object-taking preposition reading
# is intended; they are also prepositions, so the verb group keeps them either way.
PARTICLES: frozenset[str] = frozenset("up down out off away back over around".split())

# Longest first; matched on lowercased tokens and merged into one preposition token.
MULTIWORD_PREPOSITIONS: tuple[tuple[str, ...], ...] = tuple(
    sorted(
        (
            tuple(p.split())
            for p in [
                "next to",
                "close to",
                "closer to",
                "adjacent to",
                "far from",
                "away from",
                "out of",
                "inside of",
                "outside of",
                "on top of",
                "in front of",
                "in back of",
                "on the left of",
                "on the right of",
                "to the left of",
                "to the right of",
                "on the left side of",
                "on the right side of",
                "in the middle of",
                "at the top of",
                "at the bottom of",
                "on the side of",
                "at the end of",
                "on the edge of",
                "in the center of",
                "in the centre of",
                "in between",
                "on the back of",
                "at the back of",
                "on the front of",
                "in the back of",
                "on the other side of",
                "on either side of",
                "on both sides of",
                "because of",
                "instead of",
                "in the corner of",
                "on the bottom of",
                "underneath of",
            ]
        ),
        key=len,
        reverse=True,
    )
)

# Nouns that only measure or collect what follows "of": "a group of people" -> "people".
QUANTITY_NOUNS: frozenset[str] = frozenset(
    """group groups herd herds flock flocks bunch bunches pair pairs couple lot lots number crowd
    crowds pile piles stack stacks row rows set sets variety team teams fleet school pack bundle
    collection assortment line lines""".split()
)

# Frame phrases that describe the picture, not its content: "a photo of a dog" -> "a dog".
_FRAME_RE = re.compile(
    r"^\s*(?:(?:this|it)\s+is\s+)?(?:(?:a|an|the|this)\s+)?"
    r"(?:(?:close[- ]?up|black and white|color|colour|blurry|aerial|old)\s+)?"
    r"(?:photo|photograph|picture|image|pic|snapshot|shot|view|close[- ]?up)\s+(?:of|showing)\s+",
    re.IGNORECASE,
)


def strip_caption_frame(caption: str) -> str:
    """Drop a leading "a photo of" / "an image of" / "a close-up of" frame phrase."""
    stripped = _FRAME_RE.sub("", caption, count=1)
    return stripped if stripped.strip() else caption


# Base forms of verbs that describe something visible. Irregular forms are listed below.
VERBS: frozenset[str] = frozenset(
    """sit stand lie lay ride hold carry eat drink chase kick throw catch hit wear hang lean sleep
    drive fly swim run walk jump climb cross read write watch look stare play push pull pet hug kiss
    touch cover fill surround face follow lead feed bite sniff lick smell wash cut cook bake pour
    paint build use sing dance talk wave smile laugh cry wait rest float grab bend kneel crouch
    reach point put place set see take give have make grow fall lift open close sell buy help
    hide fight attack park ski skate surf board slide swing graze perch sail row paddle fish
    hunt cuddle nuzzle brush comb type draw film photograph shoot roll bounce toss block serve
    pass dribble pitch bat tackle steer hover land approach enter exit leave cross pose wrap tie
    lay display contain support balance rest squat crawl hop dive splash spray water mow dig plant
    pick shake hold carry bring sweep clean dry fix repair stack load unload tow pull hang sit
    stand sleep lick chew hold blow stir slice chop peel serve fry grill eat ride skateboard snowboard
    wade relax sunbathe lounge nap yawn bark growl meow chirp watch listen shop order cheer clap
    gather huddle line stretch yell shout call text hand offer share show teach examine inspect
    check protect guard herd milk saddle groom mount dismount greet meet kiss marry walk jog hike
    race compete win lose score swing hit kick go come get keep turn move drag spread try want begin
    start need love crash drop arrive fetch pat scratch sip taste smoke work study prepare arrange
    decorate juggle wrestle rub flip kneel wander explore observe admire chat argue""".split()
)

_IRREGULAR: dict[str, str] = {
    "sat": "sit",
    "sitting": "sit",
    "ran": "run",
    "running": "run",
    "rode": "ride",
    "ridden": "ride",
    "held": "hold",
    "ate": "eat",
    "eaten": "eat",
    "stood": "stand",
    "lay": "lie",
    "lying": "lie",
    "lies": "lie",
    "lain": "lie",
    "laid": "lay",
    "laying": "lay",
    "flew": "fly",
    "flown": "fly",
    "swam": "swim",
    "swum": "swim",
    "wore": "wear",
    "worn": "wear",
    "drank": "drink",
    "drunk": "drink",
    "threw": "throw",
    "thrown": "throw",
    "caught": "catch",
    "hung": "hang",
    "slept": "sleep",
    "drove": "drive",
    "driven": "drive",
    "wrote": "write",
    "written": "write",
    "fed": "feed",
    "bit": "bite",
    "bitten": "bite",
    "saw": "see",
    "seen": "see",
    "took": "take",
    "taken": "take",
    "gave": "give",
    "given": "give",
    "had": "have",
    "has": "have",
    "made": "make",
    "grew": "grow",
    "grown": "grow",
    "fell": "fall",
    "fallen": "fall",
    "built": "build",
    "brought": "bring",
    "bought": "buy",
    "sang": "sing",
    "sung": "sing",
    "led": "lead",
    "kept": "keep",
    "found": "find",
    "got": "get",
    "gotten": "get",
    "went": "go",
    "gone": "go",
    "came": "come",
    "broke": "break",
    "broken": "break",
    "shook": "shake",
    "shaken": "shake",
    "swung": "swing",
    "dug": "dig",
    "spun": "spin",
    "hid": "hide",
    "hidden": "hide",
    "knelt": "kneel",
    "leant": "lean",
    "lit": "light",
    "shot": "shoot",
    "stuck": "stick",
    "won": "win",
    "lost": "lose",
    "met": "meet",
    "sold": "sell",
    "taught": "teach",
    "blew": "blow",
    "blown": "blow",
    "dove": "dive",
    "slid": "slide",
    "does": "do",
    "did": "do",
    "done": "do",
    "goes": "go",
    "dying": "die",
    "tying": "tie",
    "is": "be",
    "are": "be",
    "was": "be",
    "were": "be",
    "been": "be",
    "being": "be",
    "am": "be",
}
# Irregular forms that are simple past / past participle (never plain nouns in captions).
_IRREGULAR_PAST: frozenset[str] = frozenset(
    w for w, b in _IRREGULAR.items() if not w.endswith(("ing", "s")) and w not in COPULAS
)

_VOWELS = set("aeiou")


def _candidates(word: str) -> list[str]:
    """Possible base forms of an inflected verb, most likely first."""
    cands: list[str] = []
    if word.endswith("ies") and len(word) > 4:
        cands.append(word[:-3] + "y")
    if word.endswith("es") and len(word) > 3:
        cands.append(word[:-2])
    if word.endswith("s") and not word.endswith("ss") and len(word) > 2:
        cands.append(word[:-1])
    for suffix in ("ing", "ed"):
        if word.endswith(suffix) and len(word) > len(suffix) + 1:
            stem = word[: -len(suffix)]
            if suffix == "ed" and stem.endswith("i"):
                cands.append(stem[:-1] + "y")
            if len(stem) > 2 and stem[-1] == stem[-2] and stem[-1] not in "lsz":
                cands.append(stem[:-1])
            cands.extend([stem, stem + "e"])
            if suffix == "ed" and word.endswith("eed"):
                cands.append(word[:-1])
    return cands


def lemmatize_verb(word: str, *, known_only: bool = False) -> str | None:
    """Base form of a verb form: "sits" -> "sit", "riding" -> "ride", "held" -> "hold".

    Irregular forms come from a table, regular ones from stripping -s/-es/-ies/-ing/-ed and
    checking the result against ``VERBS``. Unknown words get a suffix-based guess unless
    ``known_only`` is set, in which case ``None`` is returned for them.
    """
    w = word.lower()
    if w in _IRREGULAR:
        return _IRREGULAR[w]
    if w in VERBS:
        return w
    cands = _candidates(w)
    for cand in cands:
        if cand in VERBS:
            return cand
    if known_only or not cands:
        return None
    return _guess_stem(w)


def _guess_stem(w: str) -> str:
    """Suffix-stripping guess for a verb form not in the word list."""
    for suffix in ("ing", "ed"):
        if w.endswith(suffix) and len(w) > len(suffix) + 2:
            stem = w[: -len(suffix)]
            if stem[-1] == stem[-2] and stem[-1] not in "lsz":
                return stem[:-1]
            cvc = stem[-1] not in _VOWELS and stem[-2] in _VOWELS and stem[-3] not in _VOWELS
            return stem + "e" if cvc and stem[-1] not in "wxyr" and len(stem) <= 4 else stem
    if w.endswith("ies"):
        return w[:-3] + "y"
    if w.endswith(("ches", "shes", "sses", "xes", "zes")):
        return w[:-2]
    if w.endswith("s") and not w.endswith("ss"):
        return w[:-1]
    return w


def verb_form(word: str) -> str | None:
    """Classify a known verb form: "base", "s", "ing", "past" (past/participle) or None."""
    w = word.lower()
    if w in COPULAS or lemmatize_verb(w, known_only=True) is None:
        return None
    if w in _IRREGULAR_PAST:
        return "past"
    if w in VERBS:
        return "base"
    if w.endswith("ing"):
        return "ing"
    if w.endswith("ed"):
        return "past"
    if w.endswith("s"):
        return "s"
    return "base"


# -ing words that are nouns in captions ("a tall building"), checked before the verb reading.
ING_NOUNS: frozenset[str] = frozenset(
    """building ceiling clothing thing string ring king wing morning evening swing spring sibling
    pudding railing icing frosting topping bedding awning painting drawing stuffing wedding
    sapling duckling dumpling earring offspring lightning pudding ping""".split()
)

# Compound nouns whose first word would otherwise read as an attribute.
FIXED_COMPOUNDS: frozenset[tuple[str, ...]] = frozenset(
    tuple(c.split())
    for c in [
        "swimming pool",
        "parking lot",
        "dining table",
        "cutting board",
        "living room",
        "washing machine",
        "frying pan",
        "sleeping bag",
        "fishing rod",
        "fishing pole",
        "shopping cart",
        "ironing board",
        "waiting room",
        "dining room",
        "baking sheet",
        "parking meter",
        "hot dog",
        "teddy bear",
        "traffic light",
        "stop sign",
        "street light",
        "street sign",
        "high chair",
        "ice cream",
    ]
)

# Plural nouns that do not end in "s".
IRREGULAR_PLURALS: frozenset[str] = frozenset(
    "people men women children feet teeth mice geese sheep deer fish cattle police".split()
)

_ADJ_SUFFIXES = ("ous", "ful", "ive", "less", "ish", "able", "ible", "ical", "ese")


def adjective_like(word: str) -> bool:
    """True for a known adjective, a number, or an unknown word with an adjective suffix."""
    w = word.lower()
    return w in ADJECTIVES or is_number(w) or (len(w) > 5 and w.endswith(_ADJ_SUFFIXES))


def is_number(word: str) -> bool:
    """Cardinal numbers as words ("two") or digits ("3")."""
    w = word.lower()
    return w in NUMBERS or w.replace(".", "", 1).isdigit()


def is_plural_noun(word: str) -> bool:
    """Rough plural test used for subject-verb agreement heuristics."""
    w = word.lower()
    if w in IRREGULAR_PLURALS:
        return True
    return w.endswith("s") and not w.endswith(("ss", "us", "is", "ics"))
