"""Loading, checked against a local Hugging Face cache laid out exactly like the real repos.

The tests build ``models--ORG--NAME/{blobs,snapshots/<commit>,refs/main}`` with the real file
names (``config.json``, ``model.safetensors``, ``preprocessor_config.json``, tokenizer files for
``IDEA-Research/grounding-dino-tiny``; ``open_clip_config.json`` + ``open_clip_model.safetensors``
for an open_clip ``hf-hub:`` model) holding small seeded random weights.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import logging
import os
import socket
import threading
from pathlib import Path

import numpy as np
import pytest

from comclip import hub, loading
from comclip.encoders import open_clip as open_clip_backend
from comclip.engine import load
from comclip.errors import RUN_OFFLINE, ModelUnavailableError
from comclip.presets import MODEL_CONFIG_DIR, DetectorSpec, EncoderSpec, Preset, get_preset, random_vocab

from .conftest import EXAMPLE_IMAGE

DETECTOR_REPO = "IDEA-Research/grounding-dino-tiny"
CLIP_REPO = "comclip-test/tiny-clip"


def put_repo(cache: Path, repo: str, files: dict[str, bytes]) -> Path:
    """Write ``files`` into the hub cache as huggingface_hub does: blobs + snapshot links + refs."""
    root = cache / f"models--{repo.replace('/', '--')}"
    commit = hashlib.sha1(repo.encode()).hexdigest()
    snapshot = root / "snapshots" / commit
    (root / "blobs").mkdir(parents=True, exist_ok=True)
    snapshot.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        blob = root / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        link = snapshot / name
        if not link.exists():
            link.symlink_to(os.path.relpath(blob, snapshot))
    (root / "refs").mkdir(exist_ok=True)
    (root / "refs" / "main").write_text(commit)
    return snapshot


@pytest.fixture(scope="module")
def hub_cache(tmp_path_factory, cache_dir) -> Path:
    import open_clip
    import safetensors.torch

    cache = tmp_path_factory.mktemp("hf-hub-cache")
    saved = tmp_path_factory.mktemp("saved-detector")
    model, processor = loading.build_random_detector(get_preset("tiny").detector)
    model.save_pretrained(saved)
    processor.image_processor.save_pretrained(saved)  # preprocessor_config.json, as in the real repo
    processor.tokenizer.save_pretrained(saved)
    (saved / "vocab.txt").write_text("\n".join(random_vocab()) + "\n")
    special = {"cls_token": "[CLS]", "mask_token": "[MASK]", "pad_token": "[PAD]", "sep_token": "[SEP]",
               "unk_token": "[UNK]"}
    (saved / "special_tokens_map.json").write_text(json.dumps(special))
    names = ["config.json", "model.safetensors", "preprocessor_config.json", "special_tokens_map.json",
             "tokenizer.json", "tokenizer_config.json", "vocab.txt"]  # the real repo's files
    put_repo(cache, DETECTOR_REPO, {n: (saved / n).read_bytes() for n in names})

    open_clip_backend.register_configs()
    with hub.seeded(hub.TINY_SEED):
        clip = open_clip.create_model("comclip-tiny", pretrained=None)
    state = {k: v.contiguous().clone() for k, v in clip.state_dict().items()}
    config = {"model_cfg": json.loads((MODEL_CONFIG_DIR / "open_clip" / "comclip-tiny.json").read_text()),
              "preprocess_cfg": {}}
    put_repo(cache, CLIP_REPO, {"open_clip_config.json": json.dumps(config).encode(),
                                "open_clip_model.safetensors": safetensors.torch.save(state)})
    return cache


@pytest.fixture
def online_env(monkeypatch, hub_cache):
    """No offline variable set: only the loader's own logic may keep it off the network."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setenv("HF_HUB_CACHE", str(hub_cache))
    return hub_cache


def _no_network(monkeypatch):
    def refuse(*_args, **_kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(hub, "hub_reachable", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)


CACHED = Preset("cached", "tiny weights under real hub names",
                EncoderSpec("open_clip", f"hf-hub:{CLIP_REPO}"),
                DetectorSpec(DETECTOR_REPO, box_threshold=0.3, text_threshold=0.25,
                             processor_size={"shortest_edge": 128, "longest_edge": 256}), downloads="nothing")


def test_fully_cached_models_load_with_no_network_probe_and_score_like_the_offline_build(
        online_env, monkeypatch, tiny_engine):
    _no_network(monkeypatch)
    assert loading.missing_downloads(CACHED) == []
    assert loading.preset_available(CACHED)
    logging.disable(logging.WARNING)
    try:
        engine = load(CACHED, device="cpu", parser="rules")
        assert logging.root.manager.disable == logging.WARNING  # restored exactly, not to NOTSET
    finally:
        logging.disable(logging.NOTSET)
    assert engine.models() == {"encoder": f"open_clip:hf-hub:{CLIP_REPO}", "detector": DETECTOR_REPO,
                               "random_weights": False}
    captions = ["a mug in some grass", "some grass in a mug"]
    tiny_engine.clear_caches()
    a = engine.match(EXAMPLE_IMAGE, captions)
    b = tiny_engine.match(EXAMPLE_IMAGE, captions)
    for x, y in zip(a.captions, b.captions, strict=True):
        assert x.clip_score == pytest.approx(y.clip_score, abs=1e-6)
        assert x.comclip_score == pytest.approx(y.comclip_score, abs=1e-6)
        assert [c.boxes for c in x.components] == [c.boxes for c in y.components]


def test_the_error_names_only_what_is_missing(online_env, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    default = get_preset("default")
    missing = loading.missing_downloads(default)  # the detector is cached, the CLIP weights are not
    assert len(missing) == 1 and "ViT-B-32-quickgelu" in missing[0] and "605 MB" in missing[0]
    assert not loading.preset_available(default)
    with pytest.raises(ModelUnavailableError) as err:
        load(default, device="cpu")
    msg = str(err.value)
    assert "ViT-B-32-quickgelu" in msg and "605 MB" in msg and "grounding-dino" not in msg
    assert "open_clip_model.safetensors" in msg and err.value.hint == RUN_OFFLINE
    assert "--" not in msg  # no front end's flag: each front end words the remedy (test_cli, test_app_studio)


def test_a_cached_encoder_is_not_reported_missing(online_env, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    put_repo(online_env, "timm/vit_base_patch32_clip_224.openai", {"open_clip_model.safetensors": b"stub"})
    assert loading.missing_downloads("default") == []
    large = loading.missing_downloads("large")
    assert [m.split(" ")[0] for m in large] == ["open_clip", "IDEA-Research/grounding-dino-base"]
    assert loading.missing_downloads("tiny") == [] and loading.preset_available("tiny")


def test_hf_hub_models_may_download_when_the_hub_answers(online_env, monkeypatch):
    import huggingface_hub.constants as hub_constants
    import open_clip

    seen = {}

    def fake_create(*_args, **_kwargs):
        seen["offline"] = hub_constants.HF_HUB_OFFLINE
        raise OSError("stop here")

    monkeypatch.setattr(hub, "hub_reachable", lambda *a, **k: True)
    monkeypatch.setattr(open_clip, "create_model_and_transforms", fake_create)
    spec = EncoderSpec("open_clip", "hf-hub:nobody/not-cached")
    with pytest.raises(ModelUnavailableError, match="stop here"):
        loading.load_encoder(spec, loading.resolve_device("cpu"))
    assert seen["offline"] is False


def test_labels_say_random_only_for_random_weights():
    label = loading.encoder_label
    assert label(EncoderSpec("open_clip", "ViT-B-32-quickgelu")) == "open_clip:ViT-B-32-quickgelu (random)"
    assert "random" not in label(EncoderSpec("open_clip", "hf-hub:org/name"))
    assert "random" not in label(EncoderSpec("hf_clip", "openai/clip-vit-base-patch32"))
    assert label(EncoderSpec("open_clip", "ViT-B-32-quickgelu", "openai")) == "open_clip:ViT-B-32-quickgelu/openai"
    assert label(EncoderSpec("blip2", "tiny-blip2", config="tiny")).endswith("(random)")


class _Answer(http.server.BaseHTTPRequestHandler):
    def do_HEAD(self):  # noqa: N802 — http.server's naming
        self.send_response(404)
        self.end_headers()

    def log_message(self, *_args):
        pass


@pytest.fixture
def local_server():
    server = http.server.HTTPServer(("127.0.0.1", 0), _Answer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_hub_probe_is_a_real_request_honouring_offline_variables_and_proxies(monkeypatch, local_server):
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "http_proxy", "HTTP_PROXY", "no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_ENDPOINT", local_server)
    assert hub.hub_reachable(timeout=2)  # any HTTP answer (here 404) means reachable
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    assert not hub.hub_reachable(timeout=2)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE")
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{closed}")
    assert not hub.hub_reachable(timeout=2)
    # reachable only through the proxy the environment names
    monkeypatch.setenv("HF_ENDPOINT", "http://hub.invalid")
    assert not hub.hub_reachable(timeout=2)
    monkeypatch.setenv("http_proxy", local_server)
    assert hub.hub_reachable(timeout=2)


def test_loading_scores_match_between_fresh_loads_of_the_tiny_preset(tiny_engine):
    other = load("tiny", device="cpu", parser="rules")
    a = other.match(EXAMPLE_IMAGE, ["a mug in some grass"])
    tiny_engine.clear_caches()
    b = tiny_engine.match(EXAMPLE_IMAGE, ["a mug in some grass"])
    np.testing.assert_array_equal(a.global_image_embedding, b.global_image_embedding)
