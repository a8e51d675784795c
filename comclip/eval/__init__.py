"""Benchmark harness: loaders for each dataset's own on-disk format (``datasets/``), metrics, a
resumable runner that also shards over ``torchrun`` processes (``distributed``) and reports
(CLIP vs ComCLIP, with counts and every failure's reason).

``python -m comclip eval DATASET --data PATH``; from Python::

    from comclip.eval.runner import run
    report = run(engine, "winoground", "path/to/winoground", "runs/eval/winoground")
"""
