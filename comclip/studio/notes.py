"""The parser's guesses, shown with the parsed graph so that a user can check them and fix the
graph in the editor beside it ("attached “in the snow” to girl, not dog (…) — edit the graph if
that is wrong"). A plain function of a graph; an edited graph has no notes, so nothing is shown.
"""

from __future__ import annotations

import html

from comclip.graph import SceneGraph

__all__ = ["parse_notes_html"]


def parse_notes_html(graph: SceneGraph) -> str:
    """The graph's parse notes as a short theme-aware list, or "" when the parser guessed nothing."""
    if not graph.notes:
        return ""
    items = "".join(f"<li>{html.escape(n.message)}</li>" for n in graph.notes)
    return ('<div class="legend parse-notes"><b>Where the parser guessed</b> — check these, and edit the JSON '
            f'beside the graph if one is wrong:<ul class="notices">{items}</ul></div>')
