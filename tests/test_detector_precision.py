"""The detector's ``auto`` precision: bf16 autocast on CUDA and on a CPU with native bf16, else fp32.

The choice is a pure function of (setting, device type, CPU flags) (:func:`comclip.cpu.detector_precision`).
The test session pins ``COMCLIP_CPU_BF16=0`` (tests/conftest.py) so that every pinned number is fp32's on
every machine; the tests here pass flags, or set that variable, explicitly.
"""

import pytest
import torch

from comclip.cpu import CPU_BF16_ENV, cpu_flags, detector_precision, native_bf16
from comclip.engine import ComCLIP
from comclip.ground import GroundingDINO

from .conftest import ASSETS

#: /proc/cpuinfo flags of this project's machines: an AMD EPYC (Zen 4) with AVX-512 BF16; the older
#: EPYC without it (AVX2 only, where bf16 is emulated); an Intel Sapphire Rapids (AMX and AVX-512 BF16).
EPYC_BF16 = frozenset("avx2 avx512f avx512bw avx512vl avx512_bf16 avx512_vnni".split())
EPYC_AVX2 = frozenset("sse4_2 avx avx2 fma f16c".split())
SAPPHIRE_RAPIDS = frozenset("avx2 avx512f avx512_bf16 avx512_fp16 amx_bf16 amx_tile amx_int8".split())


@pytest.mark.parametrize("flags, native", [
    (EPYC_BF16, True), (EPYC_AVX2, False), (SAPPHIRE_RAPIDS, True),
    ({"amx_bf16", "amx_tile"}, True),  # AMX alone
    ({"amx_tile", "amx_int8"}, False),  # tiles without their bf16 instructions
    ({"avx512f", "avx512bw"}, False), (frozenset(), False)])
def test_native_bf16_is_read_from_the_flags(flags, native):
    assert native_bf16(flags) is native


@pytest.mark.parametrize("precision, device, flags, chosen", [
    ("auto", "cuda", EPYC_AVX2, "bf16"),  # CUDA: bf16 whatever the CPU
    ("auto", "cpu", EPYC_BF16, "bf16"),
    ("auto", "cpu", SAPPHIRE_RAPIDS, "bf16"),
    ("auto", "cpu", EPYC_AVX2, "fp32"),  # emulated bf16: several times slower
    ("auto", "mps", SAPPHIRE_RAPIDS, "fp32"),
    ("fp32", "cpu", EPYC_BF16, "fp32"),  # --detector-precision fp32 keeps fp32 where auto would not
    ("fp32", "cuda", EPYC_BF16, "fp32"),
    ("bf16", "cpu", EPYC_AVX2, "bf16")])  # and bf16 can be asked for anywhere
def test_detector_precision_choice(precision, device, flags, chosen):
    assert detector_precision(precision, device, flags) == chosen


def test_cpu_flags_come_from_the_first_flags_line(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\nflags\t\t: fpu avx2 avx512_bf16\n\n"
                       "processor\t: 1\nflags\t\t: fpu avx2\n")
    assert cpu_flags(str(cpuinfo)) == {"fpu", "avx2", "avx512_bf16"}
    assert cpu_flags(str(tmp_path / "missing")) == frozenset()  # macOS, Windows: auto keeps fp32


def test_the_environment_overrides_the_flags_and_reaches_the_detector(tiny_engine, monkeypatch):
    det = tiny_engine.detector
    assert det.precision == "auto" and det.device.type == "cpu"
    monkeypatch.setenv(CPU_BF16_ENV, "1")
    assert detector_precision("auto", "cpu") == "bf16" and det.autocast_dtype == torch.bfloat16
    assert detector_precision("auto", "cpu", EPYC_AVX2) == "fp32"  # given flags win: the function stays pure
    monkeypatch.setenv(CPU_BF16_ENV, "0")
    assert detector_precision("auto", "cpu") == "fp32" and det.autocast_dtype is None
    monkeypatch.delenv(CPU_BF16_ENV)
    assert detector_precision("auto", "cpu") == ("bf16" if native_bf16(cpu_flags()) else "fp32")


ITEMS = [("mug_in_grass.png", ["a mug in some grass", "some grass in a mug"]),
         ("red_ball_blue_box.png", ["a red ball next to a blue box", "a blue ball next to a red box"]),
         ("cat_on_box.png", ["a cat sitting on a box"]), ("coffee_cup_saucer.jpg", ["a cup on a saucer"])]


def _with_precision(engine: ComCLIP, precision: str) -> ComCLIP:
    d = engine.detector
    detector = GroundingDINO(d.model, d.processor, device=d.device, name=d.name, box_threshold=d.box_threshold,
                             text_threshold=d.text_threshold, precision=precision)
    return ComCLIP(engine.encoder, detector, engine.options, preset=engine.preset)


def test_bf16_and_fp32_agree_on_the_tiny_preset(tiny_engine):
    """What ``auto`` changes on a CPU with native bf16, on the tiny preset (random weights): ComCLIP
    scores within 0.01 and component weights within 0.03 of fp32's (measured on an AVX-512 BF16 EPYC:
    0.0021 and 0.0061); CLIP scores do not involve the detector and are equal up to float rounding.
    Boxes are not compared: the random detector's query scores are near-ties (many close to 1), so
    rounding of any kind picks other boxes — there 17 of 18 components' boxes moved (their best
    scores stay within 0.01; measured 0.0017)."""
    bf16, fp32 = _with_precision(tiny_engine, "bf16"), _with_precision(tiny_engine, "fp32")
    assert bf16.detector.autocast_dtype == torch.bfloat16 and fp32.detector.autocast_dtype is None
    for image, captions in ITEMS:
        a = bf16.match(ASSETS / "examples" / image, captions)
        b = fp32.match(ASSETS / "examples" / image, captions)
        for x, y in zip(a.captions, b.captions, strict=True):
            assert x.clip_score == pytest.approx(y.clip_score, abs=1e-6)  # (batched with other sub-images)
            assert x.comclip_score == pytest.approx(y.comclip_score, abs=0.01)
            assert [c.text for c in x.components] == [c.text for c in y.components]
            assert [c.grounded for c in x.components] == [c.grounded for c in y.components]
            assert [c.weight for c in x.components] == pytest.approx([c.weight for c in y.components], abs=0.03)
            for cx, cy in zip(x.components, y.components, strict=True):
                if cx.grounded:
                    assert max(cx.boxes.scores) == pytest.approx(max(cy.boxes.scores), abs=0.01)
