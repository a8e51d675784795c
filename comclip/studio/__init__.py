"""The app's logic (``app.py`` holds only the Gradio layout and wiring).

- :mod:`~comclip.studio.requests` — checking what a user or API client sends (captions, options,
  edited graphs, images, presets) before anything heavy runs;
- :mod:`~comclip.studio.session` — serving many users: offered presets, loaded engines, the result
  cache (identical requests computed once) and the gate around model calls;
- :mod:`~comclip.studio.presentation` — the story, tables, gallery and downloads of a result;
- :mod:`~comclip.studio.viz` — the charts, the entity graph and the annotated image;
- :mod:`~comclip.studio.counterfactuals` — the same words, bound differently;
- :mod:`~comclip.studio.notes` — where the parser guessed, shown with the parsed graph;
- :mod:`~comclip.studio.page` — the page's words, CSS and theme;
- :mod:`~comclip.studio.widgets` — option widgets from the option vocabulary, the API's typed parameters.
"""
