"""The detector's CPU kernels against the model's own, through the whole engine: every example image
scored against two caption sets with the detector's ``kernels="cpu"`` (the default on the CPU) and
with ``kernels="native"`` (the model's modules as shipped), in bf16 and in fp32 — and the largest
differences in ComCLIP and CLIP scores, component weights and boxes.

    python scripts/compare_kernels.py [--preset arch-fast] [--json OUT]

In fp32 and in bf16 (autocast), with, for scale, the CPU kernels' fp32 against their bf16. On
``arch-fast`` the two kernels agree exactly in fp32; in bf16 they differ as bf16 differs from fp32
(random weights: many proposals tie at score 1.0, so rounding can pick another box). CPU only; a few
minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the checkout's comclip
sys.path.insert(0, str(ROOT / "scripts"))  # bench_browser's arch-fast preset

CAPTION_SETS = (
    ("a red cup on a blue saucer", "a blue saucer on a red cup", "a dog next to a man", "a man under a tree"),
    ("a woman holding a large umbrella", "an umbrella holding a woman", "a green car behind a bus", "a cat on a mat"),
)


def score_all(engine, detector, images) -> list:
    engine.detector = detector
    engine.clear_caches()
    return [engine.match(image, list(captions)) for image in images for captions in CAPTION_SETS]


def differences(a: list, b: list) -> dict[str, float]:
    """Largest |Δ| of scores and weights, components whose boxes moved by more than a pixel (or whose
    number of boxes differs), and the largest move."""
    score = weight = box = 0.0
    components = moved = 0
    for x, y in zip(a, b, strict=True):
        for cx, cy in zip(x.captions, y.captions, strict=True):
            score = max(score, abs(cx.comclip_score - cy.comclip_score), abs(cx.clip_score - cy.clip_score))
            for kx, ky in zip(cx.components, cy.components, strict=True):
                components += 1
                weight = max(weight, abs(kx.weight - ky.weight))
                if len(kx.boxes.xyxy) != len(ky.boxes.xyxy):
                    moved += 1
                    continue
                shift = max([max(abs(u - v) for u, v in zip(p, q, strict=True))
                             for p, q in zip(kx.boxes.xyxy, ky.boxes.xyxy, strict=True)] or [0.0])
                moved += shift > 1.0
                box = max(box, shift)
    return {"components": components, "score": score, "weight": weight, "boxes_moved": moved, "largest_move_px": box}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="arch-fast",
                        help="a preset name or file; arch-fast (the default): the fast preset's geometry with random "
                             "weights, as scripts/bench_browser.py")
    parser.add_argument("--json", type=Path, help="write the differences here as JSON")
    args = parser.parse_args()

    import tempfile

    from bench_browser import preset_file

    import comclip
    from comclip.cpu import keep_freed_memory
    from comclip.images import load_image

    keep_freed_memory()
    with tempfile.TemporaryDirectory() as folder:
        engine = comclip.load(preset_file(args.preset, Path(folder)), device="cpu")
    images = [load_image(p) for p in sorted((ROOT / "assets" / "examples").glob("*.jpg"))]
    shipped = engine.detector
    out = {}
    for precision in ("bf16", "fp32"):
        cpu_kernels = score_all(engine, shipped.replace(precision=precision, kernels="cpu"), images)
        native = score_all(engine, shipped.replace(precision=precision, kernels="native"), images)
        out[f"{precision}: cpu vs native kernels"] = differences(cpu_kernels, native)
        out.setdefault("_runs", {})[precision] = cpu_kernels
    out["cpu kernels: fp32 vs bf16"] = differences(out["_runs"]["fp32"], out["_runs"]["bf16"])
    del out["_runs"]
    engine.detector = shipped
    for label, d in out.items():
        print(f"{label}: {d['components']} components, max |Δ score| {d['score']:.2e}, |Δ weight| {d['weight']:.2e}, "
              f"boxes moved > 1 px (or added/lost) {d['boxes_moved']} (largest move {d['largest_move_px']:.1f} px)")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
