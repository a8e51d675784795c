"""``python -m comclip`` (and the ``comclip`` console script): :func:`comclip.cli.main.main`.

- :mod:`comclip.cli.main`: the parser (subcommands imported statically) and the error policy;
- :mod:`comclip.cli.common`: flags shared by commands that run the models (generated from
  :class:`comclip.options.Options`) and loading an engine from them;
- :mod:`comclip.cli.parse`, :mod:`comclip.cli.score`: the ``parse`` and ``score`` commands
  (:mod:`comclip.cli.grid`: ``score``'s table for several images);
  ``eval`` and ``bench`` live with their code (:mod:`comclip.eval.cli`, :mod:`comclip.bench`).
"""

from comclip.cli.common import add_model_options, load_engine, read_json_file

__all__ = ["add_model_options", "load_engine", "read_json_file"]
