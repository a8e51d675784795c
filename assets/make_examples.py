"""Render the bundled example scenes (our own drawings, CC0) and the image pairs' list.

Run ``python assets/make_examples.py`` to regenerate ``assets/examples/*.png`` and
``assets/pairs.json``. Each scene comes with captions that differ only in word order or in
which attribute binds to which entity — the cases where plain CLIP is confounded. A pair is two
drawings, one for each caption (Winoground's test: match each image to its caption and each
caption to its image); ``examples.json`` lists the single-image examples (kept by hand: it names the
photographs too).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

HERE = Path(__file__).resolve().parent
OUT = HERE / "examples"
W, H = 640, 480


def _grass(draw: ImageDraw.ImageDraw, rng: random.Random, top: int) -> None:
    draw.rectangle((0, top, W, H), fill=(70, 140, 55))
    for _ in range(2500):
        x, y = rng.randrange(W), rng.randrange(top, H)
        g = rng.randrange(110, 200)
        draw.line((x, y, x + rng.randrange(-3, 4), y - rng.randrange(6, 16)), fill=(40, g, 40), width=1)


def _sky(draw: ImageDraw.ImageDraw, bottom: int) -> None:
    for y in range(bottom):
        t = y / max(bottom, 1)
        draw.line((0, y, W, y), fill=(int(120 + 80 * t), int(170 + 60 * t), 235))


def mug_in_grass() -> Image.Image:
    rng = random.Random(1)
    img = Image.new("RGB", (W, H))
    d = ImageDraw.Draw(img)
    _sky(d, 180)
    _grass(d, rng, 180)
    d.rounded_rectangle((250, 220, 370, 370), radius=12, fill=(235, 235, 240), outline=(90, 90, 100), width=3)
    d.arc((345, 250, 415, 330), start=-90, end=90, fill=(235, 235, 240), width=14)
    d.ellipse((250, 205, 370, 235), fill=(60, 40, 30), outline=(90, 90, 100), width=3)
    for _ in range(60):  # grass blades in front of the mug
        x = rng.randrange(240, 380)
        d.line((x, 372, x + rng.randrange(-4, 5), 372 - rng.randrange(10, 30)), fill=(40, 160, 40), width=2)
    return img.filter(ImageFilter.SMOOTH)


#: A ball's colours (fill, outline, highlight) and a box's (front, top, side, outline).
Ball = tuple[tuple[int, int, int], tuple[int, int, int], tuple[int, int, int]]
Box = tuple[tuple[int, int, int], tuple[int, int, int], tuple[int, int, int], tuple[int, int, int]]
RED_BALL: Ball = ((205, 30, 35), (120, 10, 15), (240, 120, 120))
BLUE_BALL: Ball = ((35, 70, 200), (15, 30, 110), (130, 160, 245))
BLUE_BOX: Box = ((35, 70, 200), (70, 110, 230), (20, 45, 150), (15, 30, 110))
RED_BOX: Box = ((205, 30, 35), (235, 80, 80), (150, 20, 25), (110, 10, 15))


def _ball_and_box(ball: Ball, box: Box) -> Image.Image:
    """A ball on the left next to a box on the right, on a table."""
    img = Image.new("RGB", (W, H), (225, 220, 210))
    d = ImageDraw.Draw(img)
    d.rectangle((0, 330, W, H), fill=(150, 115, 80))  # table
    d.ellipse((110, 200, 250, 340), fill=ball[0], outline=ball[1], width=3)
    d.ellipse((145, 225, 175, 250), fill=ball[2])  # highlight
    d.polygon([(380, 200), (520, 200), (520, 340), (380, 340)], fill=box[0], outline=box[3])
    d.polygon([(380, 200), (420, 170), (560, 170), (520, 200)], fill=box[1], outline=box[3])
    d.polygon([(520, 200), (560, 170), (560, 310), (520, 340)], fill=box[2], outline=box[3])
    return img


def red_ball_blue_box() -> Image.Image:
    return _ball_and_box(RED_BALL, BLUE_BOX)


def blue_ball_red_box() -> Image.Image:
    return _ball_and_box(BLUE_BALL, RED_BOX)


def cat_on_box() -> Image.Image:
    img = Image.new("RGB", (W, H), (235, 230, 220))
    d = ImageDraw.Draw(img)
    d.rectangle((0, 380, W, H), fill=(170, 160, 150))  # floor
    d.rectangle((220, 250, 440, 385), fill=(190, 140, 80), outline=(110, 75, 35), width=4)  # box
    d.line((220, 290, 440, 290), fill=(150, 105, 55), width=3)
    d.ellipse((255, 170, 395, 255), fill=(90, 90, 95))  # cat body
    d.ellipse((350, 120, 420, 185), fill=(90, 90, 95))  # head
    d.polygon([(356, 135), (365, 100), (380, 128)], fill=(90, 90, 95))  # ears
    d.polygon([(392, 126), (410, 98), (417, 138)], fill=(90, 90, 95))
    d.ellipse((370, 145, 380, 155), fill=(230, 220, 60))
    d.ellipse((395, 145, 405, 155), fill=(230, 220, 60))
    d.arc((200, 150, 290, 250), start=100, end=250, fill=(90, 90, 95), width=10)  # tail
    return img


def tree_behind_house() -> Image.Image:
    rng = random.Random(4)
    img = Image.new("RGB", (W, H))
    d = ImageDraw.Draw(img)
    _sky(d, 360)
    _grass(d, rng, 360)
    d.rectangle((400, 170, 430, 330), fill=(100, 70, 40))  # trunk (partly hidden)
    d.ellipse((320, 60, 510, 230), fill=(40, 120, 45))  # crown
    d.rectangle((180, 230, 420, 390), fill=(215, 200, 170), outline=(90, 70, 50), width=3)  # house
    d.polygon([(160, 235), (300, 140), (440, 235)], fill=(160, 50, 40), outline=(90, 30, 20))  # roof
    d.rectangle((280, 310, 320, 390), fill=(110, 70, 40))  # door
    d.rectangle((205, 265, 250, 305), fill=(160, 200, 230), outline=(90, 70, 50), width=2)
    d.rectangle((350, 265, 395, 305), fill=(160, 200, 230), outline=(90, 70, 50), width=2)
    return img


def _mug(d: ImageDraw.ImageDraw, top: int = 220, bottom: int = 370) -> None:
    """The white mug of mug_in_grass (its rim at ``top``), handle on the right."""
    d.rounded_rectangle((250, top, 370, bottom), radius=12, fill=(235, 235, 240), outline=(90, 90, 100), width=3)
    d.arc((345, top + 30, 415, top + 110), start=-90, end=90, fill=(235, 235, 240), width=14)
    d.ellipse((250, top - 15, 370, top + 15), fill=(60, 40, 30), outline=(90, 90, 100), width=3)


def grass_in_mug() -> Image.Image:
    """The same mug on a kitchen table indoors, a tuft of grass growing out of it."""
    rng = random.Random(2)
    img = Image.new("RGB", (W, H), (232, 222, 200))  # wall
    d = ImageDraw.Draw(img)
    d.rectangle((0, 360, W, H), fill=(150, 110, 75))  # table
    d.line((0, 360, W, 360), fill=(110, 80, 50), width=3)
    _mug(d)
    for _ in range(140):  # blades rising from the soil in the mug
        x = rng.randrange(258, 362)
        g = rng.randrange(120, 200)
        d.line((x, 222, x + rng.randrange(-25, 26), 222 - rng.randrange(30, 110)), fill=(40, g, 40), width=2)
    return img.filter(ImageFilter.SMOOTH)


def box_on_cat() -> Image.Image:
    """The grey cat of cat_on_box lying on the floor, a cardboard box sitting on its back."""
    img = Image.new("RGB", (W, H), (235, 230, 220))
    d = ImageDraw.Draw(img)
    d.rectangle((0, 380, W, H), fill=(170, 160, 150))  # floor
    d.arc((90, 280, 200, 380), start=100, end=250, fill=(90, 90, 95), width=10)  # tail
    d.ellipse((150, 290, 430, 390), fill=(90, 90, 95))  # cat body, lying down
    d.ellipse((400, 265, 480, 340), fill=(90, 90, 95))  # head
    d.polygon([(406, 282), (414, 240), (432, 274)], fill=(90, 90, 95))  # ears
    d.polygon([(448, 272), (468, 236), (476, 284)], fill=(90, 90, 95))
    d.ellipse((422, 292, 433, 303), fill=(230, 220, 60))
    d.ellipse((450, 292, 461, 303), fill=(230, 220, 60))
    d.rectangle((200, 190, 380, 315), fill=(190, 140, 80), outline=(110, 75, 35), width=4)  # box on its back
    d.line((200, 228, 380, 228), fill=(150, 105, 55), width=3)
    return img


def house_behind_tree() -> Image.Image:
    """A small house further back, a big tree in front of it hiding part of it."""
    rng = random.Random(5)
    img = Image.new("RGB", (W, H))
    d = ImageDraw.Draw(img)
    _sky(d, 330)
    _grass(d, rng, 330)
    d.rectangle((250, 230, 430, 345), fill=(215, 200, 170), outline=(90, 70, 50), width=3)  # house
    d.polygon([(235, 235), (340, 160), (445, 235)], fill=(160, 50, 40), outline=(90, 30, 20))  # roof
    d.rectangle((320, 290, 350, 345), fill=(110, 70, 40))  # door
    d.rectangle((270, 255, 305, 285), fill=(160, 200, 230), outline=(90, 70, 50), width=2)
    d.rectangle((380, 255, 415, 285), fill=(160, 200, 230), outline=(90, 70, 50), width=2)
    d.rectangle((200, 230, 245, 440), fill=(100, 70, 40))  # trunk, in front
    d.ellipse((90, 40, 360, 280), fill=(40, 120, 45), outline=(25, 90, 30), width=3)  # crown, over the roof
    return img


EXAMPLES = {
    "mug_in_grass.png": (mug_in_grass, ["a mug in some grass", "some grass in a mug"]),
    "red_ball_blue_box.png": (red_ball_blue_box, ["a red ball next to a blue box", "a blue ball next to a red box"]),
    "cat_on_box.png": (cat_on_box, ["a cat sitting on a box", "a box sitting on a cat"]),
    "tree_behind_house.png": (tree_behind_house, ["a tree behind a house", "a house behind a tree"]),
}


#: The drawings made only as the other half of a pair (``pairs.json``).
PAIR_DRAWINGS = {
    "grass_in_mug.png": grass_in_mug,
    "blue_ball_red_box.png": blue_ball_red_box,
    "box_on_cat.png": box_on_cat,
    "house_behind_tree.png": house_behind_tree,
}

#: Winoground-style pairs: two drawings, two captions with the same words, ``pairing[i]`` = image i's
#: true caption (the tree pair lists its captions the other way round on purpose).
PAIRS = [
    {"images": ["examples/mug_in_grass.png", "examples/grass_in_mug.png"],
     "captions": ["a mug in some grass", "some grass in a mug"], "pairing": [0, 1],
     "note": "the same words in another order: which one holds the other?"},
    {"images": ["examples/red_ball_blue_box.png", "examples/blue_ball_red_box.png"],
     "captions": ["a red ball next to a blue box", "a blue ball next to a red box"], "pairing": [0, 1],
     "note": "the same colours bound to the other object"},
    {"images": ["examples/cat_on_box.png", "examples/box_on_cat.png"],
     "captions": ["a cat sitting on a box", "a box sitting on a cat"], "pairing": [0, 1],
     "note": "subject and object swapped: who sits on whom?"},
    {"images": ["examples/tree_behind_house.png", "examples/house_behind_tree.png"],
     "captions": ["a house behind a tree", "a tree behind a house"], "pairing": [1, 0],
     "note": "which one is in front; the captions are listed the other way round, so image 0's is caption 1"},
]


def main() -> None:
    """Render every drawing and write ``pairs.json``. ``examples.json`` (the single-image examples,
    the photographs among them) is kept by hand; its drawings' captions are those in ``EXAMPLES``."""
    OUT.mkdir(parents=True, exist_ok=True)
    for name, (draw, _) in EXAMPLES.items():
        draw().save(OUT / name, optimize=True)
    for name, draw in PAIR_DRAWINGS.items():
        draw().save(OUT / name, optimize=True)
    lines = [json.dumps(pair) for pair in PAIRS]
    (HERE / "pairs.json").write_text("[\n  " + ",\n  ".join(lines) + "\n]\n")


if __name__ == "__main__":
    main()
