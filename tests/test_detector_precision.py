"""The models' ``auto`` precision: the detector's bf16 autocast on CUDA and on a CPU with native bf16, else
fp32; the image–text model's fp16 on CUDA, bf16 (weights) on a CPU with native bf16, else fp32.

The choice is a pure function of (setting, device type, CPU flags) (:func:`comclip.cpu.detector_precision`,
:func:`comclip.cpu.encoder_precision`).
The test session pins ``COMCLIP_CPU_BF16=0`` (tests/conftest.py) so that every pinned number is fp32's on
every machine; the tests here pass flags, or set that variable, explicitly.
"""

import copy
import dataclasses
import json

import pytest
import torch
from PIL import Image

import comclip
from comclip.cli.main import main
from comclip.cpu import CPU_BF16_ENV, cpu_flags, detector_precision, encoder_precision, native_bf16
from comclip.engine import ComCLIP
from comclip.errors import InputError
from comclip.ground import GroundingDINO
from comclip.presets import EncoderSpec, get_preset

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


# -- the image–text model ----------------------------------------------------------------------------

@pytest.mark.parametrize("precision, device, flags, chosen", [
    ("auto", "cuda", EPYC_AVX2, "fp16"),  # CUDA: the CLIP papers' half precision, as before
    ("auto", "cpu", EPYC_BF16, "bf16"),
    ("auto", "cpu", SAPPHIRE_RAPIDS, "bf16"),
    ("auto", "cpu", EPYC_AVX2, "fp32"),  # emulated bf16 would be slower than fp32
    ("auto", "mps", SAPPHIRE_RAPIDS, "fp32"),
    ("fp32", "cpu", EPYC_BF16, "fp32"),  # --clip-precision fp32: the exact numbers where auto would not give them
    ("fp32", "cuda", EPYC_BF16, "fp32"),
    ("bf16", "cuda", EPYC_AVX2, "bf16"), ("fp16", "cpu", EPYC_BF16, "fp16")])
def test_encoder_precision_choice(precision, device, flags, chosen):
    assert encoder_precision(precision, device, flags) == chosen


def test_the_environment_reaches_the_encoders_choice(monkeypatch):
    monkeypatch.setenv(CPU_BF16_ENV, "1")
    assert encoder_precision("auto", "cpu") == "bf16"
    monkeypatch.setenv(CPU_BF16_ENV, "0")  # as the test session: fp32, so pinned numbers hold on every machine
    assert encoder_precision("auto", "cpu") == "fp32"


def _scores(engine: ComCLIP) -> list[tuple[float, float, list[float]]]:
    out = []
    for image, captions in ITEMS:
        for c in engine.match(ASSETS / "examples" / image, captions).captions:
            out.append((c.clip_score, c.comclip_score, [k.weight for k in c.components]))
    return out


def test_a_bf16_image_text_model_loads_in_bf16_and_agrees_with_fp32(tiny_engine):
    """What the encoder's ``auto`` changes on a CPU with native bf16 (twice the fp32 speed there,
    docs/benchmarks.md), on the tiny preset (random weights): CLIP and ComCLIP scores within 0.01 and
    weights within 0.03 of fp32's (measured 0.0026, 0.0023 and 0.0135; on arch-b32, the real ViT-B/32
    geometry: 0.0019, 0.0015, 0.0037). The detector is the same fp32 one, so boxes are the same."""
    spec = dataclasses.replace(get_preset("tiny"), encoder=dataclasses.replace(get_preset("tiny").encoder,
                                                                              precision="bf16"))
    loaded = comclip.load(spec, device="cpu", parser="rules")
    assert loaded.encoder.dtype == torch.bfloat16
    assert {p.dtype for p in loaded.encoder.model.parameters()} == {torch.bfloat16}
    assert tiny_engine.encoder.dtype == torch.float32  # auto, with the session's COMCLIP_CPU_BF16=0
    bf16 = ComCLIP(loaded.encoder, tiny_engine.detector, tiny_engine.options, preset=tiny_engine.preset)
    for (clip_a, comclip_a, w_a), (clip_b, comclip_b, w_b) in zip(_scores(bf16), _scores(tiny_engine), strict=True):
        assert clip_a == pytest.approx(clip_b, abs=0.01)
        assert comclip_a == pytest.approx(comclip_b, abs=0.01)
        assert w_a == pytest.approx(w_b, abs=0.03)
    assert _scores(bf16) != _scores(tiny_engine)  # it did run in another precision


def test_blip2_changes_only_its_vision_transformer():
    engine = comclip.load("tiny-blip2", device="cpu", parser="rules")
    encoder = copy.deepcopy(engine.encoder)
    encoder.use_dtype(torch.bfloat16)
    assert {p.dtype for p in encoder.model.vision_model.parameters()} == {torch.bfloat16}
    rest = [p for name, p in encoder.model.named_parameters() if not name.startswith("vision_model.")]
    assert rest and {p.dtype for p in rest} == {torch.float32}  # the Q-Former and projections stay fp32
    assert encoder.encode_images([Image.open(ASSETS / "examples" / "cat_on_box.png")]).dtype == torch.float32


def test_clip_precision_is_a_flag_and_a_preset_key(tmp_path, capsys):
    code = main(["score", str(ASSETS / "examples" / "cat_on_box.png"), "a cat on a box", "--preset", "tiny",
                 "--parser", "rules", "--clip-precision", "bf16", "--json"])
    assert code == 0
    flagged = json.loads(capsys.readouterr().out)["captions"][0]["clip_score"]
    code = main(["score", str(ASSETS / "examples" / "cat_on_box.png"), "a cat on a box", "--preset", "tiny",
                 "--parser", "rules", "--json"])
    assert code == 0
    assert flagged != pytest.approx(json.loads(capsys.readouterr().out)["captions"][0]["clip_score"], abs=1e-6)
    preset = json.loads((ASSETS.parent / "comclip" / "presets" / "tiny.json").read_text())
    preset["encoder"]["precision"] = "fp8"
    path = tmp_path / "odd.json"
    path.write_text(json.dumps(preset))
    code = main(["score", str(ASSETS / "examples" / "cat_on_box.png"), "a cat", "--preset", str(path)])
    assert code != 0
    assert "unknown image-text model precision 'fp8'; choose one of: auto, fp32, fp16, bf16" in capsys.readouterr().err
    with pytest.raises(InputError, match="unknown image-text model precision"):
        EncoderSpec("open_clip", "ViT-B-32", precision="half")
