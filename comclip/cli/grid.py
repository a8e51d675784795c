"""``score IMAGE IMAGE … --caption TEXT …``'s words: the ``--pairing`` value read, and a
:class:`~comclip.grid.GridResult` as a readable table (images × captions under each method, the
true pairs and each row's and column's pick marked, then Winoground's three scores for a 2×2 grid
or the ranks of the true pairs for a bigger one, and each method's story)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from comclip.errors import InputError
from comclip.grid import LABELS, METHODS, GridResult, story

LEGEND = ("[ ] true pair   * the caption each image picks (its row's best)\n"
          "^ the image each caption picks (its column's best); a tie picks nothing")


def parse_pairing(text: str) -> list[int]:
    """``"0,1"`` → ``[0, 1]``: each image's true caption index (0-based), in the images' order."""
    try:
        return [int(part) for part in text.replace(" ", "").split(",")]
    except ValueError:
        raise InputError(f"--pairing takes caption indices separated by commas (e.g. 0,1), not {text!r}") from None


def image_names(paths: Sequence[str]) -> list[str]:
    """What the story calls each image: its file name, or the path as given when two names clash."""
    names = [Path(p).name for p in paths]
    return names if len(set(names)) == len(names) else [str(p) for p in paths]


def _cell(grid: GridResult, method: str, i: int, j: int) -> str:
    value = f"{grid.scores(method)[i][j]:.4f}"
    token = f"[{value}]" if grid.pairing[i] == j else f" {value} "
    row = "*" if grid.caption_picks(method)[i] == j else " "
    column = "^" if grid.image_picks(method)[j] == i else " "
    return f"{token:>11}{row}{column}"


def _matrix(grid: GridResult, method: str) -> list[str]:
    lines = [f"{LABELS[method]:<8}" + "".join(f"{f'c{j}':>10}   " for j in range(grid.shape[1]))]
    for i in range(grid.shape[0]):
        lines.append(f"  i{i:<5}" + "".join(_cell(grid, method, i, j) for j in range(grid.shape[1])))
    return lines


def _winoground(grid: GridResult) -> list[str]:
    lines = [f"{'Winoground':<12}{'text':>7}{'image':>7}{'group':>7}"]
    for m in METHODS:
        won = grid.winoground(m)
        lines.append(f"  {LABELS[m]:<10}" + "".join(f"{'won' if won[k] else 'lost':>7}" for k in ("text", "image",
                                                                                                "group")))
    return lines


def _ranks(grid: GridResult) -> list[str]:
    lines = [f"{'rank of the true pair (1 = first; a tie ranks low)':<52}" +
             "".join(f"{LABELS[m]:>9}" for m in METHODS)]
    to_caption = {m: grid.caption_ranks(m) for m in METHODS}
    to_image = {m: grid.image_ranks(m) for m in METHODS}
    for i, j in enumerate(grid.pairing):
        lines.append(f"  {f'i{i} -> its caption c{j}, among the captions':<50}" +
                     "".join(f"{to_caption[m][i]:>9}" for m in METHODS))
    for j in range(grid.shape[1]):
        if (i := grid.true_image(j)) is not None:
            lines.append(f"  {f'c{j} -> its image i{i}, among the images':<50}" +
                         "".join(f"{to_image[m][j]:>9}" for m in METHODS))
    return lines


def format_grid(grid: GridResult, paths: Sequence[str]) -> str:
    """The grid as ``score`` prints it; ``paths``: the images as given (they name them in the story)."""
    first = grid.images[0]
    width = max(len(f"{p} ({r.width}x{r.height})") for p, r in zip(paths, grid.images, strict=True))
    lines = ["images:"]
    lines += [f"  i{i}  {f'{p} ({r.width}x{r.height})':<{width}}   true caption: c{grid.pairing[i]}"
              for i, (p, r) in enumerate(zip(paths, grid.images, strict=True))]
    lines += ["captions:", *(f"  c{j}  {c}" for j, c in enumerate(grid.captions))]
    lines.append(f"preset: {first.preset}")
    if first.models.get("random_weights"):
        lines.append("note: this preset has random weights - the scores are meaningless")
    for m in METHODS:
        lines += ["", *_matrix(grid, m)]
    lines += [LEGEND, ""]
    lines += _winoground(grid) if grid.is_pair else _ranks(grid)
    names = image_names(paths)
    lines += [f"{story(grid, m, names)}." for m in METHODS]
    return "\n".join(line.rstrip() for line in lines)
