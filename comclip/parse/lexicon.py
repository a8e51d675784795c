"""Every English word list the parse backends use, in one place (data only).

Contract: public names are constants only (frozensets, tuples, two dicts, one compiled
pattern), built from literals here (``_graded`` derives the comparatives) and never mutated; no
model, file or environment variable is read. The
lists are deliberately short and aimed at image captions (people, animals, objects, colours,
materials, spatial prepositions, visible actions). The rules that apply them to single words
(lemmatising, verb forms, "adjective-like") live in :mod:`comclip.parse.morphology`; the sections
at the end hold the lists only the rules chunker or only the spaCy backend reads.
"""

from __future__ import annotations

import re

__all__ = [
    "ADJECTIVES",
    "ADJECTIVE_SUFFIXES",
    "ADVERBS",
    "ANIMAL_NOUNS",
    "AUXILIARIES",
    "CAPTION_FRAME_RE",
    "CLAUSE_OPENERS",
    "COLOURS",
    "COLOUR_SHADES",
    "COMPARATIVES",
    "COMPLEMENT_VERBS",
    "CONJUNCTIONS",
    "CONTRACTIONS",
    "COPULAS",
    "DEPICTION_NOUNS",
    "DEPICTION_VERBS",
    "DETERMINERS",
    "END_PUNCT",
    "FEMALE_NOUNS",
    "FIXED_COMPOUNDS",
    "FUNCTION_WORDS",
    "GOAL_PREPS",
    "IGNORED_PRONOUNS",
    "ING_NOUNS",
    "INSTRUMENTS",
    "INTENSIFIED_ADJECTIVES",
    "IRREGULAR_PAST",
    "IRREGULAR_PLURALS",
    "IRREGULAR_VERBS",
    "LINKING_VERBS",
    "LY_NOT_ADVERBS",
    "MALE_NOUNS",
    "MANNER_WORDS",
    "MATERIALS",
    "MERGED_PHRASES",
    "MULTIWORD_ADVERBS",
    "NEUTER_PEOPLE",
    "MULTIWORD_PREPOSITIONS",
    "NEGATIONS",
    "NOUNY_ADJECTIVES",
    "NUMBERS",
    "OBJECT_PRONOUNS",
    "PARTICLES",
    "PERCEPTION_VERBS",
    "PERSON_NOUNS",
    "PLACEMENT_VERBS",
    "POSITIONAL",
    "POSITION_NOUNS",
    "POSSESSIVE_DETERMINERS",
    "PREPOSITIONS",
    "PREP_HEADS",
    "PREP_TOKENS",
    "PRESENTATIONAL_SUBJECTS",
    "PROPULSION_VERBS",
    "QUANTITY_NOUNS",
    "RECIPIENT_PREPS",
    "RELATIONAL_NOUNS",
    "RELATIVE_WORDS",
    "REL_PRONOUNS",
    "SAME_FORM_PAST",
    "SCENE_NOUNS",
    "SUBJECT_PREPS",
    "SUBJECT_PRONOUNS",
    "VERBS",
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

# Words that shade a following colour into one attribute ("light blue").
COLOUR_SHADES: frozenset[str] = frozenset({"light", "dark", "pale", "bright", "deep"})

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
) | frozenset(
    {"side by side", "back to back", "face to face", "hand in hand", "arm in arm", "upside down", "head first"}
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
CAPTION_FRAME_RE: re.Pattern[str] = re.compile(
    r"^\s*(?:(?:this|it)\s+is\s+)?(?:(?:a|an|the|this)\s+)?"
    r"(?:(?:close[- ]?up|black and white|color|colour|blurry|aerial|old)\s+)?"
    r"(?:photo|photograph|picture|image|pic|snapshot|shot|view|close[- ]?up)\s+(?:of|showing)\s+",
    re.IGNORECASE,
)

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
    decorate juggle wrestle rub flip kneel wander explore observe admire chat argue find hear bury
    knock pay scold fix slice chop stir splash deliver tow salute rise share sweep sew bend fling
    cling steal choose wake send hug sketch notice aim glance gaze peer""".split()
)

# Irregular verb forms -> base form.
IRREGULAR_VERBS: dict[str, str] = {
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
    "drew": "draw",
    "drawn": "draw",
    "rose": "rise",
    "risen": "rise",
    "swept": "sweep",
    "fought": "fight",
    "sewn": "sew",
    "shown": "show",
    "bent": "bend",
    "sent": "send",
    "flung": "fling",
    "clung": "cling",
    "stole": "steal",
    "stolen": "steal",
    "chose": "choose",
    "chosen": "choose",
    "woke": "wake",
    "woken": "wake",
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
IRREGULAR_PAST: frozenset[str] = frozenset(
    w for w, b in IRREGULAR_VERBS.items() if not w.endswith(("ing", "s")) and w not in COPULAS
)

# -ing words that are nouns in captions ("a tall building"), checked before the verb reading.
ING_NOUNS: frozenset[str] = frozenset(
    """building ceiling clothing thing string ring king wing morning evening swing spring sibling
    pudding railing icing frosting topping bedding awning painting drawing stuffing wedding
    sapling duckling dumpling earring offspring lightning ping""".split()
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
        "magnifying glass",
        "double decker",
    ]
)

# Plural nouns that do not end in "s".
IRREGULAR_PLURALS: frozenset[str] = frozenset(
    "people men women children feet teeth mice geese sheep deer fish cattle police".split()
)

# Endings that make an unknown word read as an adjective ("colourful", "plastic-ish").
ADJECTIVE_SUFFIXES: tuple[str, ...] = ("ous", "ful", "ive", "less", "ish", "able", "ible", "ical", "ese")

# -- pronouns, conjunctions, negation (both backends) ----------------------------------------

CONJUNCTIONS: frozenset[str] = frozenset(
    {"and", "or", "but", "&", "while", "whereas", "where", "then", ",", ":", "as", "when", "until", "because", "once"}
)
# Prepositions that open a clause when a subject pronoun follows ("before he serves it").
CLAUSE_OPENERS: frozenset[str] = frozenset({"before", "after", "since", "till"})
# Possessive determiners: "in its mouth" is the owner's part; no relation to the owner is made.
POSSESSIVE_DETERMINERS: frozenset[str] = frozenset({"his", "her", "its", "their", "my", "your", "our"})
# Relative pronouns; "that" is one too but, being also a determiner, is decided in context.
REL_PRONOUNS: frozenset[str] = frozenset({"who", "which", "whom"})
RELATIVE_WORDS: frozenset[str] = REL_PRONOUNS | {"that"}
SUBJECT_PRONOUNS: frozenset[str] = frozenset({"he", "she", "it", "they"})
OBJECT_PRONOUNS: frozenset[str] = frozenset({"him", "her", "it", "them"})
IGNORED_PRONOUNS: frozenset[str] = frozenset(
    {"i", "you", "we", "me", "us", "himself", "herself", "itself", "themselves"}
)
NEGATIONS: frozenset[str] = frozenset({"not", "n't", "never"})
# Verbs that take a predicate adjective like a copula ("the dog looks happy").
LINKING_VERBS: frozenset[str] = frozenset({"look", "seem", "appear", "become", "turn", "stay", "remain", "feel", "get"})

# -- the rules tokeniser and chunker ---------------------------------------------------------

END_PUNCT: frozenset[str] = frozenset(".;!?")
# Positions without an object ("on the left"); merged into one token like a preposition.
POSITIONAL: frozenset[str] = frozenset(
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
# Adverbs of several words, merged into one token and dropped like "quickly".
MULTIWORD_ADVERBS: frozenset[str] = frozenset(
    {"side by side", "back to back", "face to face", "hand in hand", "arm in arm", "upside down", "head first"}
)
# Every multi-word phrase the tokeniser merges into one token, longest first.
MERGED_PHRASES: tuple[tuple[str, ...], ...] = tuple(
    sorted(
        {*MULTIWORD_PREPOSITIONS, *(tuple(p.split()) for p in POSITIONAL | MULTIWORD_ADVERBS)},
        key=len,
        reverse=True,
    )
)
# Every token the chunker reads as a preposition (single words and merged phrases).
PREP_TOKENS: frozenset[str] = frozenset(
    PREPOSITIONS | {" ".join(p) for p in MULTIWORD_PREPOSITIONS} | POSITIONAL
)
# Adjectives that are also common nouns: only modifiers when a clear noun follows them.
NOUNY_ADJECTIVES: frozenset[str] = frozenset(
    """wood metal plastic glass stone brick leather steel iron cotton wool paper cardboard ceramic
    concrete marble rubber denim silk straw tin copper bronze porcelain velvet fur gold silver
    orange light cream lime olive chocolate baby toy top bottom front back side left right
    middle dark adult""".split()
)
# Words ending in -ly that are not adverbs.
LY_NOT_ADVERBS: frozenset[str] = frozenset(
    """fly belly lily jelly family bully holly ally rally apply reply supply ugly curly early
    friendly lonely lovely elderly chilly hilly woolly silly jolly smelly oily wrinkly bubbly
    sparkly frilly""".split()
)
# Tokens that never belong to a noun phrase or a verb group.
FUNCTION_WORDS: frozenset[str] = frozenset(
    DETERMINERS
    | COPULAS
    | AUXILIARIES
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
# Clitics written out by the tokeniser ("they're" -> "they are").
CONTRACTIONS: dict[str, str] = {
    "'re": "are",
    "'m": "am",
    "'ll": "will",
    "'ve": "have",
    "'d": "would",
}

# -- the spaCy backend ------------------------------------------------------------------------

# Nouns that, with "of", make a multi-word preposition ("in front of", "on top of").
RELATIONAL_NOUNS: frozenset[str] = frozenset(
    "front top left right side middle center centre back bottom edge end corner".split()
)
# Nouns that make an object-less position ("in the background").
POSITION_NOUNS: frozenset[str] = frozenset(
    "left right background foreground distance middle center centre front top back bottom".split()
)
# Adverbs/adjectives that head a multi-word preposition ("next to", "close to").
PREP_HEADS: frozenset[str] = frozenset("next close closer adjacent far away out because instead inside outside".split())
# Subjects of a presentational copula ("this is a dog"): not entities.
PRESENTATIONAL_SUBJECTS: frozenset[str] = frozenset({"this", "that", "these", "those", "it", "here"})

# -- words after a verb (rules chunker) --------------------------------------------------------

# Manner and degree words that, right after a verb, say how it happens: dropped, never entities
# ("floats high over the houses" -> "float over").
MANNER_WORDS: frozenset[str] = frozenset(
    """high low fast far deep hard straight forward forwards backward backwards sideways upward
    upwards downward downwards loud quick slow""".split()
)
# Degree word + adjective that mean the adjective alone ("wide open" -> open).
INTENSIFIED_ADJECTIVES: frozenset[tuple[str, str]] = frozenset(
    {("wide", "open"), ("wide", "awake"), ("fast", "asleep"), ("sound", "asleep")}
)
# Past participles spelled like the base form: "was hit by" is passive.
SAME_FORM_PAST: frozenset[str] = frozenset(
    "hit cut put set shut hurt let spread read cast burst split upset beat".split()
)
# Verbs that take an object and a bare verb ("watches the plane take off").
COMPLEMENT_VERBS: frozenset[str] = frozenset("watch see hear feel notice let make help film photograph".split())

# -- attachment of a phrase after a verb's object (rules/attach.py, both backends) -------------

# Verbs of seeing or depicting: a phrase after their object locates the object ("watches a bird on
# a branch", "looks at a painting on the wall").
PERCEPTION_VERBS: frozenset[str] = frozenset(
    """look watch see stare gaze glance peer point aim photograph film draw paint sketch admire
    observe examine inspect notice study""".split()
)
# Verbs that make a picture or writing: a place phrase is where the made thing is ("draws a cat
# on the sidewalk" -> cat on sidewalk), even a place that would otherwise be the scene's.
DEPICTION_VERBS: frozenset[str] = frozenset("draw paint sketch write carve print engrave scribble".split())
# Verbs that put their object somewhere: any place phrase is where the object ends up.
PLACEMENT_VERBS: frozenset[str] = frozenset(
    """put place set hang lay stack plant bury hide store pile arrange tuck insert mount pin stick
    park load leave""".split()
)
# Verbs that send their object moving: a path phrase is the object's path.
PROPULSION_VERBS: frozenset[str] = frozenset(
    """throw toss kick pour drop push pull knock roll hit shoot spray splash slide drag fling spill
    dump bounce dribble pass launch send fire""".split()
)
# Goals of a caused motion: after a verb's object they are always the object's.
GOAL_PREPS: frozenset[str] = frozenset({"into", "onto", "off", "out of"})
# To / at / for a person or an animal after a verb's object: the subject's recipient or target.
RECIPIENT_PREPS: frozenset[str] = frozenset({"to", "at", "for"})
# Paths and vicinities: after a verb's object they place the subject (unless the verb sends the
# object along them).
SUBJECT_PREPS: frozenset[str] = frozenset(
    """at along across through around near by beside under beneath underneath up down toward
    towards past among""".split()
) | frozenset({"next to", "in front of", "close to", "in the middle of"})
# Tools and body parts: "with" one of these is how the subject does it.
INSTRUMENTS: frozenset[str] = frozenset(
    """knife knives fork forks spoon spoons chopsticks scissors hammer saw axe drill screwdriver
    wrench shovel spade rake hoe broom mop brush brushes paintbrush toothbrush comb pen pencil
    crayon crayons chalk marker bat racket racquet club stick cane pole rod net hose sponge towel
    cloth rag needle camera phone remote whip lasso rope ladle spatula whisk tongs sword cutter
    trimmer mower iron hairdryer razor tool tools stick sticks hand hands foot feet teeth mouth
    paw paws trunk beak fingers finger""".split()
)
# Places, grounds, weather, seats and vehicles: a phrase naming one describes where the scene is,
# so after a verb's object it goes to the subject ("walks a dog in the snow" -> girl in snow).
SCENE_NOUNS: frozenset[str] = frozenset(
    """beach park field fields meadow farm barn stable garden yard backyard lawn street road
    sidewalk path trail alley square plaza market city town village forest woods jungle desert
    mountain mountains hill hills valley lake river sea ocean shore coast harbor harbour pier dock
    bridge stage court pitch track arena stadium gym playground zoo station airport platform
    kitchen bathroom bedroom room hallway hall corridor office classroom library restaurant cafe
    shop store bar church garage basement attic studio workshop factory hospital school house home
    snow rain sun sunshine shade fog mud sand grass water pool bench chair sofa couch bed stool
    seat boat bus train car truck bike bicycle motorcycle skateboard surfboard tent balcony porch
    deck countryside wilderness campsite""".split()
) | frozenset({"living room", "dining room", "park bench", "parking lot", "swimming pool"})
# Pictures and models: "a drawing of a house with a red door" -> the house has the door.
DEPICTION_NOUNS: frozenset[str] = frozenset(
    """drawing painting picture photo photograph poster map sketch statue model sculpture portrait
    image illustration cartoon""".split()
)

# -- people and animals (pronouns and recipients) ------------------------------------------------

FEMALE_NOUNS: frozenset[str] = frozenset(
    """woman women girl girls lady ladies mother mothers mom mum daughter daughters sister sisters
    grandmother grandma bride queen wife aunt niece actress waitress policewoman businesswoman
    girlfriend princess nun ballerina""".split()
)
MALE_NOUNS: frozenset[str] = frozenset(
    """man men boy boys gentleman gentlemen guy guys father fathers dad son sons brother brothers
    grandfather grandpa groom king husband uncle nephew actor waiter policeman businessman
    boyfriend prince monk fisherman fishermen snowman""".split()
)
# People without a marked gender (he, she and they all fit).
PERSON_NOUNS: frozenset[str] = frozenset(
    """person people child children kid kids baby babies toddler adult adults teenager student
    students teacher teachers chef cook doctor nurse worker workers farmer builder owner rider
    skier surfer skater player players photographer artist painter musician singer dancer driver
    pilot soldier officer jockey baker waiter customer tourist tourists couple family crowd team
    friend friends parent parents grandparent athlete runner swimmer climber hiker cyclist fan
    fans audience spectators passenger passengers vendor clerk nurse patient kid""".split()
)
# People often called "it" in captions ("holds a baby and kisses it").
NEUTER_PEOPLE: frozenset[str] = frozenset({"baby", "babies", "infant", "toddler"})
ANIMAL_NOUNS: frozenset[str] = frozenset(
    """dog dogs puppy puppies cat cats kitten kittens horse horses pony cow cows calf bull sheep
    lamb goat goats pig pigs chicken chickens hen rooster duck ducks goose geese bird birds parrot
    owl eagle pigeon seagull mouse mice rat rabbit bunny squirrel fox wolf wolves bear bears deer
    elephant elephants giraffe giraffes zebra zebras lion lions tiger monkey monkeys fish frog
    turtle snake lizard bee butterfly spider camel donkey""".split()
)
