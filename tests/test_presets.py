"""Presets as data: the built-in ones, the user's own (a file path, COMCLIP_PRESETS_DIR), clear errors."""

from __future__ import annotations

import json

import pytest

import comclip
from comclip import presets
from comclip.cli.main import main
from comclip.errors import InputError

from .conftest import EXAMPLE_IMAGE


@pytest.fixture(autouse=True)
def forget_added(monkeypatch):
    monkeypatch.setattr(presets, "_ADDED", {})
    monkeypatch.delenv(presets.PRESETS_DIR_ENV, raising=False)


def my_tiny(folder, name="my-tiny", **detector) -> str:
    data = json.loads((presets.PRESET_DIR / "tiny.json").read_text())
    data["detector"].update(detector)
    if name is None:
        data.pop("name")
    else:
        data["name"] = name
    path = folder / f"{name or 'unnamed'}.json"
    path.write_text(json.dumps(data))
    return str(path)


def test_the_built_in_presets_are_listed_first_the_usual_ones():
    names = comclip.list_presets()
    assert names[:4] == ["default", "fast", "large", "tiny"]
    assert {"slip-base", "slip-large", "blip2", "tiny-blip2", "arch-b32", "arch-l14", "arch-blip2"} <= set(names)
    assert presets.names_help().startswith("default, fast, large, ")
    assert "random weights, offline: tiny" in presets.names_help()


def test_thresholds_default_to_the_one_pair_of_constants():
    default = presets.get_preset("default").detector
    assert (default.box_threshold, default.text_threshold) == (presets.DEFAULT_BOX_THRESHOLD,
                                                               presets.DEFAULT_TEXT_THRESHOLD) == (0.35, 0.25)
    assert presets.get_preset("tiny").detector.box_threshold == 0.3  # a preset's own value stays data


def test_a_preset_file_by_path_is_read_not_registered_and_add_presets_registers(tmp_path, monkeypatch):
    monkeypatch.setattr(presets, "_ADDED", {})  # the registry as it starts, restored after the test
    path = my_tiny(tmp_path, box_threshold=0.5)
    preset = presets.get_preset(path)
    assert preset.name == "my-tiny" and preset.detector.box_threshold == 0.5
    assert "my-tiny" not in comclip.list_presets()  # reading a file registers nothing
    assert presets.add_presets(path) == ["my-tiny"] and presets.get_preset("my-tiny") == preset
    assert presets.get_preset(my_tiny(tmp_path, name=None)).name == "unnamed"  # the file's stem


def test_lookups_return_copies():
    a = presets.get_preset("tiny")
    a.detector.processor_size["shortest_edge"] = 1  # a caller changing what it got …
    assert presets.get_preset("tiny").detector.processor_size != a.detector.processor_size  # … changes nothing else
    cfg = presets.model_config("grounding_dino", "tiny")
    cfg.clear()
    assert presets.model_config("grounding_dino", "tiny")


def test_a_presets_folder_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setattr(presets, "_ADDED", {})
    my_tiny(tmp_path, name="tiny", box_threshold=0.6)  # a user preset replaces a built-in of its name
    my_tiny(tmp_path, name="other")
    monkeypatch.setenv(presets.PRESETS_DIR_ENV, str(tmp_path))
    assert {"other", "tiny"} <= set(comclip.list_presets())
    assert presets.get_preset("tiny").detector.box_threshold == 0.6
    monkeypatch.delenv(presets.PRESETS_DIR_ENV)
    assert "other" not in comclip.list_presets() and presets.get_preset("tiny").detector.box_threshold == 0.3
    assert presets.add_presets(tmp_path) == ["other", "tiny"] and "other" in comclip.list_presets()


@pytest.mark.parametrize(("content", "needle"), [
    ("{nope", "cannot read preset file"),
    ('{"name": "x", "encoder": {"backend": "open_clip", "model": "m"}}', "needs 'encoder' and 'detector' objects"),
    ('{"name": "x", "encoder": {"backend": "open_clip", "model": "m"}, "detector": {"model": "d", "colour": 1}}',
     "detector: unknown key(s) colour"),
    ('{"name": "x", "encoder": {"model": "m"}, "detector": {"model": "d"}}', "encoder: "),
    ('{"name": "x", "encoder": {"backend": "open_clip", "model": "m"}, "detector": {"model": "d", "precision": "fp8"}}',
     "unknown detector precision 'fp8'; choose one of: auto, fp32, bf16"),
])
def test_a_broken_preset_file_is_one_clear_error_naming_it(tmp_path, content, needle):
    (tmp_path / "bad.json").write_text(content)
    with pytest.raises(InputError, match="bad.json") as err:
        presets.get_preset(str(tmp_path / "bad.json"))
    assert needle in str(err.value)


def test_unknown_names_and_missing_files_are_clear(tmp_path, monkeypatch):
    with pytest.raises(InputError, match="unknown preset 'huge'; choose one of: default, fast, large, tiny"):
        presets.get_preset("huge")
    with pytest.raises(InputError, match="preset file not found"):
        presets.get_preset(str(tmp_path / "nope.json"))
    with pytest.raises(InputError, match="no preset file or folder"):
        presets.add_presets(tmp_path / "no-folder")
    monkeypatch.setenv(presets.PRESETS_DIR_ENV, str(tmp_path / "gone"))
    with pytest.raises(InputError, match="preset folder not found"):
        presets.get_preset("tiny")


def test_the_cli_takes_a_preset_file(capsys, tmp_path, cache_dir):
    path = my_tiny(tmp_path, box_threshold=0.5)
    code = main(["score", str(EXAMPLE_IMAGE), "a mug in some grass", "--preset", path, "--parser", "rules", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    got = json.loads(out)
    assert got["preset"] == "my-tiny" and got["options"]["box_threshold"] == 0.5


def test_the_fast_preset_is_the_default_models_reading_smaller_images():
    fast, default = presets.get_preset("fast"), presets.get_preset("default")
    assert fast.encoder == default.encoder and fast.detector.model == default.detector.model
    assert default.detector.size is None  # the model's own 800
    assert fast.detector.size_rule() == {"shortest_edge": 384, "longest_edge": 640}
    assert "384 px" in fast.description and "small objects may be missed" in fast.description


def test_the_app_starts_fast_on_a_cpu_unless_a_preset_is_named():
    from comclip.studio.settings import Settings

    assert Settings.from_env({"COMCLIP_DEVICE": "cpu"}).start_preset() == "fast"
    assert Settings.from_env({"COMCLIP_DEVICE": "cpu", "COMCLIP_PRESET": "default"}).start_preset() == "default"
    assert Settings.from_env({"COMCLIP_DEVICE": "cpu"}, preset="tiny").start_preset() == "tiny"  # the command line wins
