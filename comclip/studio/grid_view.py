"""The "Two images" view: Winoground's test on the page — what a grid answer shows, by panel name.

A grid answer is an :class:`~comclip.studio.service.Answer` with several images (one request, one
model call) read with a pairing (``pairing[i]``: image i's true caption) as a
:class:`~comclip.grid.GridResult`. The view shows:

* ``grid_story``: one sentence per method (the grid's own :func:`comclip.grid.story`, images named
  "image 1", "image 2", … as the page numbers them), Winoground's text / image / group scores won or
  lost per method for two images and two captions (the ranks of the true pairs for a bigger grid),
  and what the numbers are (preset, cache, notices);
* ``grid_scores``: images × captions, each cell both methods' scores; the true pairs tagged, each
  row's pick (★, the caption the image picks) and each column's pick (▲, the image the caption picks)
  marked per method — a tie picks nothing; every cell is a button that selects it;
* ``grid_cell`` and :data:`GRID_INSPECTOR`: the selected cell inside out, with the single-image
  view's own panels (:func:`comclip.studio.panels.inspector`) for that image and caption.

Changing the pairing retells the story without a model call (:func:`retold`). What is drawn is kept
with the answer (``Answer.drawn``), so an example pair clicked again is not drawn again.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import gradio as gr

from comclip.grid import LABELS, METHODS, GridResult, story
from comclip.studio import panels, presentation
from comclip.studio.checks import shorten
from comclip.studio.page import status_html
from comclip.studio.presentation import esc

if TYPE_CHECKING:
    from comclip.studio.service import Answer

#: The selected cell inside out (the single-image view's panels, without the graph editor).
GRID_INSPECTOR = ("grid_graph", "grid_grounding", "grid_gallery", "grid_weights", "grid_loo")
#: Everything a new grid answer changes.
GRID_RESULT = ("grid_status", "grid_story", "grid_scores", "grid_cell", *GRID_INSPECTOR, "grid_state")
#: How many image slots the view has (the largest grid: :attr:`Limits.max_images`).
SLOTS = 4

Panels = dict[str, Any]

#: The score grid's cells are buttons: a click (or Enter) selects one (``gr.HTML``'s ``select`` event).
SELECT_CELL_JS = """element.addEventListener('click', (event) => {
  const cell = event.target.closest('button[data-i]');
  if (cell) trigger('select', {index: [Number(cell.dataset.i), Number(cell.dataset.j)], value: cell.dataset.j});
});"""

LEGEND = ("<span class=\"tag\">true</span> the true pair · ★ the caption each image picks (best in its row) · "
          "▲ the image each caption picks (best in its column) · a tie picks nothing · select a cell to see it "
          "inside out")
WINOGROUND = ("<b>text</b>: each image scores its own caption above the other · <b>image</b>: each caption scores "
              "its own image above the other · <b>group</b>: both (Winoground's three scores; a tie loses)")


@dataclass(frozen=True)
class Pair:
    """An example pair (``assets/pairs.json``): its images (paths), captions, pairing and what it tests."""

    images: tuple[str, ...]
    captions: tuple[str, ...]
    pairing: tuple[int, ...]
    note: str = ""

    def label(self) -> str:
        """The example's text in the examples table: its captions, quoted, one per line."""
        return "\n".join(f"“{c}”" for c in self.captions)


@dataclass(frozen=True)
class GridState:
    """What the view remembers between events: the last grid answer, its pairing and the selected cell."""

    answer: Answer | None = None
    pairing: tuple[int, ...] = ()
    cell: tuple[int, int] = (0, 0)


def names(count: int) -> list[str]:
    """The images as the page numbers them (the stories' words)."""
    return [f"image {i + 1}" for i in range(count)]


def grid_of(answer: Answer, pairing: Sequence[int]) -> GridResult:
    return GridResult(tuple(answer.results), tuple(pairing))


def api_grid_result(answer: Answer, pairing: Sequence[int]) -> dict[str, Any]:
    """``/match_grid``'s object: :meth:`GridResult.to_dict` (each image's result exactly as ``/match``
    gives it; the stories name the images ``image 0``, ``image 1``, … as the API numbers them)."""
    return grid_of(answer, pairing).to_dict()


# -- the story ----------------------------------------------------------------------------------

def _sentence(grid: GridResult, method: str) -> str:
    text = story(grid, method, names(grid.shape[0]))
    label = LABELS[method]
    quoted = re.sub(r'"([^"]*)"', r"“\1”", text.removeprefix(label))
    return f'<p class="grid-story"><b>{label}</b>{esc(quoted)}.</p>'


def _won(value: bool) -> str:
    return '<td class="won">✓ won</td>' if value else '<td class="lost">✗ lost</td>'


def _winoground_table(grid: GridResult) -> str:
    rows = "".join(f"<tr><th>{LABELS[m]}</th>" + "".join(_won(grid.winoground(m)[k]) for k in ("text", "image",
                                                                                               "group")) + "</tr>"
                   for m in METHODS)
    return ('<div class="table-wrap"><table class="winoground"><thead><tr><th>Winoground</th><th>text</th>'
            f'<th>image</th><th>group</th></tr></thead><tbody>{rows}</tbody></table></div>'
            f'<p class="legend">{WINOGROUND}</p>')


def _ranks_table(grid: GridResult) -> str:
    def first(ranks: Sequence[int | None]) -> str:
        known = [r for r in ranks if r is not None]
        return f"{sum(r == 1 for r in known)} of {len(known)}"

    rows = "".join(f"<tr><th>{LABELS[m]}</th><td>{first(grid.caption_ranks(m))}</td>"
                   f"<td>{first(grid.image_ranks(m))}</td></tr>" for m in METHODS)
    return ('<div class="table-wrap"><table class="winoground"><thead><tr><th>ranked first</th>'
            f'<th>true caption per image</th><th>true image per caption</th></tr></thead><tbody>{rows}</tbody>'
            "</table></div>")


def story_html(answer: Answer, grid: GridResult) -> str:
    """Each method's sentence, Winoground's scores (or the ranks), and what the numbers are."""
    first = answer.result
    how = "from cache" if answer.from_cache else f"in {answer.seconds:.1f} s"
    random = " · <b>random weights: these numbers mean nothing</b>" if first.models.get("random_weights") else ""
    parts = [_sentence(grid, m) for m in METHODS]
    parts.append(_winoground_table(grid) if grid.is_pair else _ranks_table(grid))
    parts.append(f'<p class="meta">preset <code>{esc(first.preset)}</code> · {grid.shape[0]} images × '
                 f"{grid.shape[1]} captions scored {how}{random}</p>")
    if answer.notices:
        parts.append('<ul class="notices">' + "".join(f"<li>{esc(n)}</li>" for n in answer.notices) + "</ul>")
    return '<div class="summary grid-summary">' + "".join(parts) + "</div>"


# -- the grid of scores ---------------------------------------------------------------------------

def _thumbnails(answer: Answer) -> list[str]:
    return panels.drawn(answer, "thumbnails", None, lambda: [presentation.image_uri(im.image, max_side=112)
                                                               for im in answer.images])


def _cell(grid: GridResult, i: int, j: int, selected: bool) -> str:
    lines = []
    for m in METHODS:
        marks = ("★" if grid.caption_picks(m)[i] == j else "") + ("▲" if grid.image_picks(m)[j] == i else "")
        lines.append(f'<span class="m"><span class="k">{LABELS[m]}</span> <span class="v">'
                     f'{grid.scores(m)[i][j]:.4f}</span><span class="marks">{marks}</span></span>')
    true = grid.pairing[i] == j
    tag = '<span class="tag">true</span>' if true else ""
    classes = "cell" + (" true" if true else "") + (" selected" if selected else "")
    what = f"image {i + 1} with caption {j + 1}" + (" (its true caption)" if true else "")
    return (f'<td class="{classes}"><button type="button" data-i="{i}" data-j="{j}" aria-pressed='
            f'"{str(selected).lower()}" title="Inspect {what}">{tag}{"".join(lines)}</button></td>')


def scores_html(answer: Answer, grid: GridResult, cell: tuple[int, int] | None = None) -> str:
    """Images (rows) × captions (columns), both methods per cell; ``cell`` is the selected one."""
    thumbs = _thumbnails(answer)
    head = "".join(f'<th scope="col" title="{esc(c)}"><span class="cap-no">caption {j + 1}</span> '
                   f'<span class="cap-text">“{esc(shorten(c, 60))}”</span></th>' for j, c in enumerate(grid.captions))
    rows = []
    for i in range(grid.shape[0]):
        cells = "".join(_cell(grid, i, j, cell == (i, j)) for j in range(grid.shape[1]))
        rows.append(f'<tr><th scope="row"><img class="thumb" src="{thumbs[i]}" alt="image {i + 1}">'
                    f"<span>image {i + 1}</span></th>{cells}</tr>")
    return ('<div class="table-wrap"><table class="grid-scores"><thead><tr><th></th>' + head + "</tr></thead><tbody>"
            + "".join(rows) + f'</tbody></table></div><p class="legend">{LEGEND}</p>')


def cell_html(grid: GridResult, i: int, j: int) -> str:
    """The heading of the selected cell's panels."""
    true = grid.pairing[i] == j
    tag = ' <span class="tag">true pair</span>' if true else (
        f" · not its true caption (that is caption {grid.pairing[i] + 1})")
    scores = " · ".join(f"{LABELS[m]} {grid.scores(m)[i][j]:.4f}" for m in METHODS)
    return (f'<p class="cell-title"><b>Image {i + 1}</b> with <b>caption {j + 1}</b> '
            f"“{esc(shorten(grid.captions[j], 80))}” — {scores}{tag}</p>")


# -- panels -----------------------------------------------------------------------------------------

def inspected(answer: Answer, grid: GridResult, i: int, j: int) -> Panels:
    """Cell (i, j) inside out: the single-image view's panels for image i and caption j."""
    shown = panels.inspector(answer, j, image=i)
    return {"grid_cell": cell_html(grid, i, j), **{f"grid_{name}": shown[name] for name in
                                                   ("graph", "grounding", "gallery", "weights", "loo")}}


def shown(answer: Answer, pairing: Sequence[int], cell: tuple[int, int] | None = None) -> Panels:
    """Every grid panel after a new answer; ``cell`` defaults to image 1 with its true caption."""
    grid = grid_of(answer, pairing)
    i, j = cell if cell is not None and cell[0] < grid.shape[0] and cell[1] < grid.shape[1] else (0, grid.pairing[0])
    how = "from cache" if answer.from_cache else f"in {answer.seconds:.1f} s"
    return {"grid_status": status_html(f"Scored {grid.shape[0]} images × {grid.shape[1]} captions {how}.", "ok"),
            "grid_story": story_html(answer, grid), "grid_scores": scores_html(answer, grid, (i, j)),
            **inspected(answer, grid, i, j), "grid_state": GridState(answer, grid.pairing, (i, j))}


def select(state: GridState | None, i: int, j: int) -> Panels:
    """Another cell inside out (no model call)."""
    if state is None or state.answer is None:
        return {}
    grid = grid_of(state.answer, state.pairing)
    if not (0 <= i < grid.shape[0] and 0 <= j < grid.shape[1]):
        return {}
    return {"grid_scores": scores_html(state.answer, grid, (i, j)), **inspected(state.answer, grid, i, j),
            "grid_state": replace(state, cell=(i, j))}


def retold(state: GridState, pairing: Sequence[int]) -> Panels:
    """The same answer read with another pairing: the story, the marks and the heading again."""
    if state.answer is None:
        return {}
    grid = grid_of(state.answer, pairing)
    i, j = state.cell
    return {"grid_status": status_html("Pairing changed: the story is told again (no re-scoring).", "ok"),
            "grid_story": story_html(state.answer, grid), "grid_scores": scores_html(state.answer, grid, (i, j)),
            "grid_cell": cell_html(grid, i, j), "grid_state": replace(state, pairing=grid.pairing)}


# -- the inputs -------------------------------------------------------------------------------------

def pairing_menus(captions: Sequence[str], values: Sequence[Any]) -> Panels:
    """Each image's true-caption menu for these captions: its value kept while it names a caption,
    else the image's own position (i ↔ i), else none."""
    choices = [(presentation.caption_label(j, c, 60), j) for j, c in enumerate(captions)]
    out: Panels = {}
    for k in range(SLOTS):
        value = values[k] if k < len(values) else None
        if not (isinstance(value, int) and 0 <= value < len(captions)):
            value = k if k < len(captions) else None
        out[f"grid_true_{k}"] = gr.update(choices=choices, value=value)
    return out


def slots(count: int) -> Panels:
    """The image slots shown (``count`` of :data:`SLOTS`) and the buttons that add or remove one."""
    return {**{f"grid_slot_{k}": gr.update(visible=k < count) for k in range(SLOTS)}, "grid_count": count,
            "grid_more": gr.update(visible=count < SLOTS), "grid_fewer": gr.update(visible=count > 2)}


# -- words and looks ----------------------------------------------------------------------------

INTRO = """**Winoground's test.** Two images, two captions with the same words ("a mug in some grass" / "some grass in
a mug"). A method wins the *text* score when each image scores its own caption higher, the *image* score when each
caption scores its own image higher, and the *group* score when it wins both. Give each image its true caption (the
menu under it), press **Score**, and select any cell of the grid to see it inside out. The preset and options are
those under *Settings* in the One image view."""

HINTS = {"story": "Pick an example pair, or add two images and their captions, then press Score.",
         "scores": "The grid of scores (images × captions, both methods) appears here after Score.",
         "cell": "The selected cell — one image with one caption — appears here inside out after Score."}

#: The view's styles (text contrast at least 4.5:1 in both themes; a `.dark` rule has one selector).
CSS = """
table.grid-scores, table.winoground {border-collapse: collapse; font-size: 0.95em;}
table.grid-scores {width: 100%;}
table.grid-scores th, table.grid-scores td, table.winoground th, table.winoground td {padding: 4px 6px;
  border-bottom: 1px solid var(--border-color-primary); text-align: left; vertical-align: middle;
  color: var(--body-text-color);}
table.grid-scores thead th {font-weight: 600; vertical-align: bottom; min-width: 7em;}
table.grid-scores .cap-no {display: block; font-size: 0.85em; font-weight: 400; color: #4b5260;}
.dark table.grid-scores .cap-no {color: #c3c9d5;}
table.grid-scores th[scope=row] {font-weight: 600; white-space: nowrap; width: 1%;}
table.grid-scores img.thumb {display: block; width: 80px; height: auto; border-radius: 4px; margin-bottom: 2px;}
table.grid-scores td.cell {padding: 3px;}
table.grid-scores td.cell button {all: unset; box-sizing: border-box; display: block; width: 100%; cursor: pointer;
  padding: 6px 8px; border-radius: 6px; border: 2px solid transparent; font-variant-numeric: tabular-nums;
  color: var(--body-text-color);}
table.grid-scores td.cell button:hover {border-color: #8a96d8;}
table.grid-scores td.cell button:focus-visible {outline: 3px solid #4a6fd1; outline-offset: 1px;}
table.grid-scores td.true button {background: #e6f6ea;}
.dark table.grid-scores td.true button {background: #163a24;}
table.grid-scores td.selected button {border-color: #3b4bc8; box-shadow: 0 0 0 1px #3b4bc8;}
.dark table.grid-scores td.selected button {border-color: #a9b8ff;}
table.grid-scores .m {display: block; white-space: nowrap;}
table.grid-scores .k {display: inline-block; min-width: 4.4em; font-size: 0.88em;}
table.grid-scores .marks {margin-left: 4px; font-weight: 700; color: #2f2a8f;}
.dark table.grid-scores .marks {color: #cfcaff;}
table.grid-scores .tag {float: right; margin-left: 4px;}
td.won {color: #0d5323; font-weight: 600;}
.dark td.won {color: #9be8b3;}
td.lost {color: #8a1c1c;}
.dark td.lost {color: #ffb4ab;}
.grid-summary .grid-story {font-size: 1.06em; margin: 4px 0;}
.cell-title {margin: 4px 0;}
#grid-examples td {white-space: pre-line;}
@media (max-width: 700px) {
  table.grid-scores, table.winoground {font-size: 0.82em;}
  table.grid-scores th, table.grid-scores td, table.winoground th, table.winoground td {padding: 3px 2px;}
  table.grid-scores img.thumb {width: 44px;}
  table.grid-scores thead th {min-width: 0;}
  table.grid-scores .k {min-width: 0; margin-right: 1px; font-size: 0.8em;}
  table.grid-scores td.cell {padding: 1px;}
  table.grid-scores td.cell button {padding: 3px 4px;}
  table.grid-scores .marks {margin-left: 2px;}
  table.grid-scores .tag {float: none; display: table; margin: 0 0 2px 0;}
}
"""
