"""The app's logic (``app.py`` holds only the Gradio layout and wiring).

A click's path: an event (:mod:`~comclip.studio.events`) checks the page's values into a request
(:mod:`~comclip.studio.checks`), the service serves it (:mod:`~comclip.studio.service`: cache, gate,
model call — :mod:`~comclip.studio.model_call`, here or on ZeroGPU — → ``ComCLIP.match_batch``), and
the answer fills the panels (:mod:`~comclip.studio.panels`).

- :mod:`~comclip.studio.settings` — the app's settings, read once at start (:class:`Settings`, :class:`Limits`);
- :mod:`~comclip.studio.checks` — checking what a person or API client sends into a :class:`Request`
  (captions, options as one :class:`~comclip.options.Options` value, edited graphs, images, presets);
- :mod:`~comclip.studio.service` — serving requests: offered presets, loaded engines, the result cache
  (identical requests computed once, the examples' answers pinned), the gate, the pace; :class:`Answer`;
- :mod:`~comclip.studio.model_call` — the model call: a picklable :class:`ModelCall`, run here or in a
  ZeroGPU worker (``spaces.GPU``), the stages streamed back;
- :mod:`~comclip.studio.events` — every event of the page as a plain function: the page's values in
  by name, the panels it changes out by name (:class:`~comclip.studio.events.Studio`: the events of one service);
- :mod:`~comclip.studio.panels` — the panels' names, what an answer shows in them, and
  :class:`~comclip.studio.panels.PageState` (what a browser session remembers);
- :mod:`~comclip.studio.presentation` — the story, tables, gallery and downloads of a result;
- :mod:`~comclip.studio.viz` — the charts, the entity graph and the annotated image;
- :mod:`~comclip.studio.counterfactuals` — the same words, bound differently;
- :mod:`~comclip.studio.messages` — errors in the page's words (remedies as menus, not flags);
- :mod:`~comclip.studio.notes` — where the parser guessed, shown with the parsed graph;
- :mod:`~comclip.studio.page` — the page's words, CSS and theme;
- :mod:`~comclip.studio.widgets` — option widgets from the option vocabulary, the API's typed parameters.
"""
