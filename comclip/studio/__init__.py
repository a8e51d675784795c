"""The app's logic (``app.py`` holds only the Gradio layout and wiring).

- :mod:`~comclip.studio.events` — every event of the page as a plain function: the page's values in
  by name, the panels it changes out by name; :class:`~comclip.studio.events.Studio` holds what
  they share (offered presets, engines, result cache, gate);
- :mod:`~comclip.studio.panels` — the panels' names, what a result shows in them, and
  :class:`~comclip.studio.panels.PageState` (what a session remembers);
- :mod:`~comclip.studio.requests` — checking what a user or API client sends (captions, options as
  one :class:`~comclip.options.Options` value, edited graphs, images, presets) before anything heavy runs;
- :mod:`~comclip.studio.session` — serving many users: offered presets, loaded engines, the result
  cache (identical requests computed once) and the gate around model calls;
- :mod:`~comclip.studio.presentation` — the story, tables, gallery and downloads of a result;
- :mod:`~comclip.studio.viz` — the charts, the entity graph and the annotated image;
- :mod:`~comclip.studio.counterfactuals` — the same words, bound differently;
- :mod:`~comclip.studio.messages` — errors in the page's words (remedies as menus, not flags);
- :mod:`~comclip.studio.notes` — where the parser guessed, shown with the parsed graph;
- :mod:`~comclip.studio.page` — the page's words, CSS and theme;
- :mod:`~comclip.studio.widgets` — option widgets from the option vocabulary, the API's typed parameters.
"""
