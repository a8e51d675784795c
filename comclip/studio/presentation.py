"""Turning a :class:`MatchResult` into what the page shows and what a user takes away.

The story (which caption is true, which method picks it, by how much), the score and
leave-one-out tables and the sub-image gallery as small theme-aware HTML, the graph editor's
JSON, and the downloads (JSON and CSV). Plain functions of a result; no Gradio here.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image

from comclip.graph import SceneGraph
from comclip.result import CaptionResult, MatchResult
from comclip.studio.checks import shorten

if TYPE_CHECKING:
    from comclip.studio.service import Answer

#: Captions longer than this are shortened (with an ellipsis; full text on hover) in tables and menus.
LABEL_CHARS = 90


def esc(text: Any) -> str:
    return html.escape(str(text), quote=True)


def hint(text: str) -> str:
    """The one-line placeholder a results panel shows before the first Score."""
    return f'<p class="hint">{esc(text)}</p>'


def fmt_num(value: float, places: int = 3) -> str:
    """``value`` with ``places`` decimals, or with two significant digits when it is so small that
    ``places`` decimals would show one digit or none (0.0031, 7.5e-05 — never a bare 0.000)."""
    if value != 0 and abs(value) < 10 ** -(places - 1):
        return f"{value:.2g}"
    return f"{value:.{places}f}"


def fmt_signed(value: float, places: int = 3) -> str:
    text = fmt_num(abs(value), places)
    return ("−" if value < 0 else "+") + text


def caption_label(index: int, caption: str, limit: int = LABEL_CHARS) -> str:
    return f"{index + 1}. {shorten(caption, limit)}"


def _quoted(caption: str, limit: int = LABEL_CHARS) -> str:
    return f'<i title="{esc(caption)}">“{esc(shorten(caption, limit))}”</i>'


# -- the story ----------------------------------------------------------------------------------

def ranks(values: Sequence[float]) -> list[int]:
    """1 = highest; ties share the better rank."""
    return [1 + sum(1 for w in values if w > v) for v in values]


@dataclass(frozen=True)
class Verdict:
    """How one method did on the true caption: its margin (true − best wrong) and the best wrong."""

    method: str
    margin: float
    best_wrong: int

    @property
    def right(self) -> bool:
        return self.margin > 0


def true_index(result: MatchResult, true_caption: str | None) -> int:
    """The index of the caption marked true (the first one if none is marked or it is gone)."""
    captions = [c.caption for c in result.captions]
    return captions.index(true_caption) if true_caption in captions else 0


def verdicts(result: MatchResult, true: int) -> tuple[Verdict, Verdict]:
    out = []
    for method, attr in (("CLIP", "clip_score"), ("ComCLIP", "comclip_score")):
        scores = [getattr(c, attr) for c in result.captions]
        wrong = max((j for j in range(len(scores)) if j != true), key=lambda j: scores[j])
        out.append(Verdict(method, scores[true] - scores[wrong], wrong))
    return out[0], out[1]


def story(result: MatchResult, true: int) -> str:
    """One sentence: which method picks the true caption and by how much."""
    clip, com = verdicts(result, true)
    caps = result.captions

    def wrong(v: Verdict) -> str:
        return f"the wrong caption {_quoted(caps[v.best_wrong].caption, 60)} by {fmt_num(-v.margin)}"

    if not clip.right and com.right:
        return (f"<b>CLIP prefers {wrong(clip)}</b> — <b>ComCLIP picks the true one</b> by "
                f"{fmt_num(com.margin)}.")
    if clip.right and not com.right:
        return (f"<b>CLIP picks the true caption</b> by {fmt_num(clip.margin)} — <b>ComCLIP prefers "
                f"{wrong(com)}</b>.")
    if clip.right and com.right:
        change = "widens" if com.margin > clip.margin else "narrows"
        return (f"<b>Both pick the true caption</b>: CLIP by {fmt_num(clip.margin)}, ComCLIP by "
                f"{fmt_num(com.margin)} (ComCLIP {change} the margin).")
    tie = " (a tie counts as wrong)" if 0 in (clip.margin, com.margin) else ""
    return (f"<b>Both prefer a wrong caption</b>: CLIP {wrong(clip).removeprefix('the wrong caption ')}, "
            f"ComCLIP {wrong(com).removeprefix('the wrong caption ')}{tie}.")


def summary_html(answer: Answer, true_caption: str | None) -> str:
    r = answer.result
    t = true_index(r, true_caption)
    how = "from cache" if answer.from_cache else f"in {answer.seconds:.1f} s"
    parts = [f'<p class="true-line">True caption: {_quoted(r.captions[t].caption)}</p>',
             f'<p class="story">{story(r, t)}</p>']
    random = " · <b>random weights: these numbers mean nothing</b>" if r.models.get("random_weights") else ""
    parts.append(f'<p class="meta">preset <code>{esc(r.preset)}</code> · image {r.width}×{r.height} · '
                 f"scored {how}{random}</p>")
    if answer.notices:
        parts.append('<ul class="notices">' + "".join(f"<li>{esc(n)}</li>" for n in answer.notices) + "</ul>")
    return '<div class="summary">' + "".join(parts) + "</div>"


# -- tables -------------------------------------------------------------------------------------

SCORE_LEGEND = ("★ each method's pick (its highest score) · <span class=\"tag\">true</span> the caption you "
                "marked as what the image shows · Δ = ComCLIP − CLIP · scores are cosine similarities "
                "(−1…1) between the caption and the image")


def score_table(result: MatchResult, true: int) -> str:
    """The captions with both scores; each method's pick starred, the true caption tagged."""
    rows = []
    for i, c in enumerate(result.captions):
        tag = ' <span class="tag">true</span>' if i == true else ""
        clip_pick = i == result.best_clip
        com_pick = i == result.best_comclip
        rows.append(
            f'<tr{" class=is-true" if i == true else ""}><td class="idx">{i + 1}</td>'
            f'<td class="cap" title="{esc(c.caption)}">{esc(shorten(c.caption, LABEL_CHARS))}{tag}</td>'
            f'<td class="num{" pick" if clip_pick else ""}">{"★ " if clip_pick else ""}{c.clip_score:.4f}</td>'
            f'<td class="num{" pick" if com_pick else ""}">{"★ " if com_pick else ""}{c.comclip_score:.4f}</td>'
            f'<td class="num">{fmt_signed(c.delta, 4)}</td></tr>')
    return ('<div class="table-wrap"><table class="scores"><thead><tr><th>#</th><th>caption</th>'
            '<th title="cos(caption, whole image)">CLIP</th><th title="cos(caption, composed image)">ComCLIP</th>'
            '<th title="ComCLIP − CLIP">Δ</th></tr></thead><tbody>' + "".join(rows) + "</tbody></table></div>"
            f'<p class="legend">{SCORE_LEGEND}</p>')


def component_table(caption: CaptionResult, logit_scale: float | None = None) -> str:
    """The leave-one-out table of one caption: what each component does to its ComCLIP score."""
    if not caption.components:
        return hint("No components: nothing was parsed from this caption, so ComCLIP = CLIP.")
    rows = []
    for k in caption.components:
        effect = k.effect
        found = "" if k.grounded else ' <span class="warn">(not found: whole image)</span>'
        rows.append(f'<tr><td class="cap" title="{esc(k.text)}">{esc(k.kind)} “{esc(shorten(k.text, 50))}”{found}</td>'
                    f'<td class="num">{fmt_signed(k.similarity)}</td>'
                    f'<td class="num">{k.weight:.3f}</td><td class="num">{k.loo_score:.4f}</td>'
                    f'<td class="num">{fmt_signed(effect, 4)}</td></tr>')
    tau = f" (τ = {logit_scale:.1f} here)" if logit_scale else ""
    explain = ("<b>similarity</b> = cos(tᵢ, vᵢ) between the component's text and its sub-image · "
               f"<b>weight</b> wᵢ = softmax over the caption's components of τ·similarity, where τ is the "
               f"model's logit scale{tau} · <b>without</b>: this caption's ComCLIP score when the component is "
               "left out (leave-one-out) · <b>effect</b> = ComCLIP − without: positive means the component pulls "
               "the image toward this caption.")
    return ('<div class="table-wrap"><table class="components"><thead><tr><th>component</th>'
            '<th>similarity</th><th>weight</th><th>without</th><th>effect</th></tr></thead><tbody>'
            + "".join(rows) + f'</tbody></table></div><p class="legend">{explain}</p>')


def ungrounded_html(caption: CaptionResult) -> str:
    missing = [k.text for k in caption.ungrounded]
    if not caption.graph.entities:
        return hint("No entities were parsed from this caption, so there is nothing to ground (ComCLIP = CLIP).")
    if not missing:
        return '<p class="legend">Every entity was found in the image.</p>'
    return ('<p class="legend"><b>Not found in the image</b> (the whole image stands in for them): '
            + ", ".join(f"“{esc(m)}”" for m in missing) + "</p>")


# -- pictures -----------------------------------------------------------------------------------

def image_uri(image: Image.Image, max_side: int = 720, quality: int = 85) -> str:
    """A small JPEG of ``image`` as a data URI (for the page's own HTML)."""
    img = image.convert("RGB")
    if max(img.size) > max_side:
        img = img.copy()
        img.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def picture_html(image: Image.Image, alt: str) -> str:
    return f'<img class="photo" src="{image_uri(image)}" alt="{esc(alt)}">'


def gallery_html(image: Image.Image, caption: CaptionResult, mode: str = "blackout") -> str:
    """Each component's sub-image with its caption written under it in full."""
    from comclip import subimage

    if not caption.components:
        return hint("No components: nothing was parsed from this caption, so there are no sub-images.")
    figures = []
    for k in caption.components:
        picture = subimage.render(image, k.boxes, mode)
        where = "" if k.grounded else '<br><span class="warn">not found: whole image</span>'
        figures.append(f'<figure><img src="{image_uri(picture, 320, 80)}" alt="sub-image for {esc(k.text)}">'
                       f"<figcaption>{esc(k.kind)} <b>“{esc(k.text)}”</b><br>weight {k.weight:.2f} · "
                       f"similarity {fmt_signed(k.similarity)}{where}</figcaption></figure>")
    return '<div class="gallery">' + "".join(figures) + "</div>"


def graph_json(graph: SceneGraph) -> str:
    """The graph as JSON for the editor: one entity or relation per line (its caption is implied)."""
    def rows(items: list[dict[str, Any]]) -> str:
        if not items:
            return "[]"
        return "[\n" + ",\n".join("    " + json.dumps(x, ensure_ascii=False) for x in items) + "\n  ]"

    d = graph.to_dict()
    return f'{{\n  "entities": {rows(d["entities"])},\n  "relations": {rows(d["relations"])}\n}}\n'


# -- take away ----------------------------------------------------------------------------------

def api_result(result: MatchResult) -> dict[str, Any]:
    """Exactly the ``python -m comclip score --json`` object."""
    return result.to_dict()


def result_record(result: MatchResult, true: int) -> dict[str, Any]:
    """The download: the ``score --json`` object plus the caption marked true and both margins."""
    clip, com = verdicts(result, true)
    return {"true_caption": result.captions[true].caption,
            "margins": {"clip": clip.margin, "comclip": com.margin,
                        "definition": "score of the true caption − best score of a wrong caption"},
            **result.to_dict()}


CSV_HEADERS = ["index", "caption", "true", "clip_score", "comclip_score", "delta", "clip_rank", "comclip_rank"]


def result_csv(result: MatchResult, true: int) -> str:
    clip = [c.clip_score for c in result.captions]
    com = [c.comclip_score for c in result.captions]
    rc, rm = ranks(clip), ranks(com)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_HEADERS)
    for i, c in enumerate(result.captions):
        writer.writerow([i + 1, c.caption, i == true, repr(c.clip_score), repr(c.comclip_score), repr(c.delta),
                         rc[i], rm[i]])
    return buf.getvalue()


DOWNLOADS = Path(tempfile.gettempdir()) / "comclip-studio-downloads"
KEEP_DOWNLOADS = 200


def write_downloads(result: MatchResult, true: int, key: str) -> tuple[str, str]:
    """The result as ``comclip-result.json`` and ``.csv`` in a folder of their own (the oldest
    folders beyond :data:`KEEP_DOWNLOADS` are removed); returns both paths."""
    folder = DOWNLOADS / f"{key[:16]}-{true}"
    folder.mkdir(parents=True, exist_ok=True)
    json_path, csv_path = folder / "comclip-result.json", folder / "comclip-result.csv"
    json_path.write_text(json.dumps(result_record(result, true), indent=2, ensure_ascii=False), encoding="utf-8")
    csv_path.write_text(result_csv(result, true), encoding="utf-8")
    _prune(DOWNLOADS, KEEP_DOWNLOADS)
    return str(json_path), str(csv_path)


def _prune(root: Path, keep: int) -> None:
    folders = sorted((p for p in root.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime)
    for old in folders[: max(0, len(folders) - keep)]:
        if time.time() - old.stat().st_mtime < 60:  # someone may be downloading it right now
            continue
        for f in old.iterdir():
            f.unlink(missing_ok=True)
        old.rmdir()
