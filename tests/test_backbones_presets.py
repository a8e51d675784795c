"""The SLIP and BLIP-2 presets as data: what each downloads, what loading would still fetch, custom specs."""

import shutil

import pytest

from comclip.encoders import get_backend
from comclip.errors import InputError
from comclip.loading import custom_preset, encoder_label, missing, missing_downloads
from comclip.presets import get_preset, list_presets

from .test_backbones_slip import write_tiny_checkpoint


def random(spec) -> bool:
    return get_backend(spec.backend).random(spec)


def test_backbone_presets_are_registered_with_their_downloads():
    for name in ("slip-base", "slip-large", "blip2", "tiny-blip2", "arch-blip2"):
        assert name in list_presets()
    assert "slip_base_100ep.pt" in get_preset("slip-base").downloads
    assert "slip_large_100ep.pt" in get_preset("slip-large").downloads
    assert "Salesforce/blip2-itm-vit-g" in get_preset("blip2").downloads
    for name in ("tiny-blip2", "arch-blip2"):
        p = get_preset(name)
        assert p.random_weights and random(p.encoder) and "(random)" in encoder_label(p.encoder)
        assert missing(p.encoder) is None  # built offline: nothing to fetch
    for name in ("slip-base", "blip2"):
        assert not get_preset(name).random_weights and not random(get_preset(name).encoder)


def test_what_loading_would_fetch(cache_dir, tmp_path):
    blip = missing(get_preset("blip2").encoder)
    if blip is not None:  # (a machine with the real model cached has nothing missing)
        assert blip.repo == "Salesforce/blip2-itm-vit-g" and "config.json" in blip.files and blip.size == "about 4.7 GB"
    slip = get_preset("slip-base").encoder
    target = cache_dir / "slip" / "slip_base_100ep.pt"
    assert not target.exists()
    need = missing(slip)
    assert need is not None and need.repo == slip.model and need.files == ("slip_base_100ep.pt",)
    assert any("slip_base_100ep.pt" in d for d in missing_downloads("slip-base"))
    target.parent.mkdir(parents=True, exist_ok=True)
    write_tiny_checkpoint(tmp_path / "x.pt")
    shutil.copy(tmp_path / "x.pt", target)
    try:
        assert missing(slip) is None  # fetched once: read from the cache from now on
        assert not any("slip_base" in d for d in missing_downloads("slip-base"))
    finally:
        target.unlink()


def test_custom_slip_and_blip2_specs(tmp_path):
    tiny = get_preset("tiny")
    p = custom_preset(tiny, clip_backend="slip", clip_model=str(tmp_path / "m.pt"))
    assert p.encoder.backend == "slip" and encoder_label(p.encoder) == f"slip:{tmp_path / 'm.pt'}"
    assert not random(p.encoder)
    assert p.detector == tiny.detector and missing(p.encoder) is None  # a local path: nothing to fetch
    with pytest.raises(InputError, match="takes no pretrained tag"):
        custom_preset(tiny, clip_backend="slip", clip_model="m.pt", clip_pretrained="openai")
    b = custom_preset(tiny, clip_backend="blip2", clip_model="Salesforce/blip2-itm-vit-g")
    assert encoder_label(b.encoder) == "blip2:Salesforce/blip2-itm-vit-g" and not random(b.encoder)
    assert b.random_weights  # the tiny detector still is random
