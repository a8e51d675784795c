"""Render the bundled example scenes (our own drawings, CC0) and their captions.

Run ``python assets/make_examples.py`` to regenerate ``assets/examples/*.png`` and
``assets/examples.json``. Each scene comes with captions that differ only in word order or in
which attribute binds to which entity — the cases where plain CLIP is confounded.
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


def red_ball_blue_box() -> Image.Image:
    img = Image.new("RGB", (W, H), (225, 220, 210))
    d = ImageDraw.Draw(img)
    d.rectangle((0, 330, W, H), fill=(150, 115, 80))  # table
    d.ellipse((110, 200, 250, 340), fill=(205, 30, 35), outline=(120, 10, 15), width=3)
    d.ellipse((145, 225, 175, 250), fill=(240, 120, 120))  # highlight
    d.polygon([(380, 200), (520, 200), (520, 340), (380, 340)], fill=(35, 70, 200), outline=(15, 30, 110))
    d.polygon([(380, 200), (420, 170), (560, 170), (520, 200)], fill=(70, 110, 230), outline=(15, 30, 110))
    d.polygon([(520, 200), (560, 170), (560, 310), (520, 340)], fill=(20, 45, 150), outline=(15, 30, 110))
    return img


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


EXAMPLES = {
    "mug_in_grass.png": (mug_in_grass, ["a mug in some grass", "some grass in a mug"]),
    "red_ball_blue_box.png": (red_ball_blue_box, ["a red ball next to a blue box", "a blue ball next to a red box"]),
    "cat_on_box.png": (cat_on_box, ["a cat sitting on a box", "a box sitting on a cat"]),
    "tree_behind_house.png": (tree_behind_house, ["a tree behind a house", "a house behind a tree"]),
}


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    listing = []
    for name, (draw, captions) in EXAMPLES.items():
        draw().save(OUT / name, optimize=True)
        listing.append({"image": f"examples/{name}", "captions": captions})
    (HERE / "examples.json").write_text(json.dumps(listing, indent=2) + "\n")


if __name__ == "__main__":
    main()
