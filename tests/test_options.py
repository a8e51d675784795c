"""Options: the one vocabulary — metadata, validation, mappings, CLI flags generated from it."""

import argparse

import pytest

from comclip.cli.common import add_model_options, engine_options
from comclip.errors import InputError
from comclip.options import Options, check_captions


def test_fields_carry_their_metadata():
    names = Options.names()
    assert names == ("weighting", "relation_text", "subimage", "relations", "parser", "box_threshold",
                     "text_threshold", "boxes_per_entity", "all_boxes", "intransitive", "fast_subimages",
                     "score_scale", "embeddings", "query_norm", "resize")
    w = Options.field("weighting")
    assert (w.default, w.choices, w.flag) == ("softmax", ("softmax", "sum"), "--weighting")
    assert Options.field("box_threshold").optional and Options.field("box_threshold").maximum == 1.0
    assert Options.field("relations").flag == "--no-relations"
    assert all(f.help for f in Options.fields())


@pytest.mark.parametrize("mapping, needle", [
    ({"colour": "red"}, "unknown option(s): colour"),
    ({"weighting": "max"}, "unknown weighting 'max'"),
    ({"subimage": "paint"}, "choose one of: blackout, crop"),
    ({"box_threshold": 1.5}, "between 0 and 1"),
    ({"text_threshold": "x"}, "must be a number"),
    ({"boxes_per_entity": 0}, "whole number >= 1"),
    ({"boxes_per_entity": 1.5}, "whole number"),
    ({"relations": "yes"}, "true or false"),
    ({"parser": "magic"}, "unknown parser"),
])
def test_from_mapping_names_the_problem(mapping, needle):
    with pytest.raises(InputError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        Options.from_mapping(mapping)


def test_from_mapping_coerces_text_numbers_and_ignores_none():
    o = Options.from_mapping({"box_threshold": "0.4", "boxes_per_entity": "2", "weighting": None})
    assert (o.box_threshold, o.boxes_per_entity, o.weighting) == (0.4, 2, "softmax")
    assert Options.from_mapping(None) == Options()
    assert o.updated() is o
    with pytest.raises(InputError):
        Options(weighting="max")  # validated at construction too


def test_with_thresholds_fills_only_missing_ones():
    o = Options(box_threshold=0.5).with_thresholds(0.3, 0.25)
    assert (o.box_threshold, o.text_threshold) == (0.5, 0.25)


def test_cli_flags_are_generated_from_the_options():
    p = argparse.ArgumentParser()
    add_model_options(p)
    flags = {a for action in p._actions for a in action.option_strings}
    assert {f.flag for f in Options.fields()} <= flags
    args = p.parse_args(["--weighting", "sum", "--no-relations", "--box-threshold", "0.2", "--exact-subimages"])
    assert engine_options(args) == {"weighting": "sum", "relations": False, "box_threshold": 0.2,
                                    "fast_subimages": False}
    assert engine_options(p.parse_args([])) == {}
    with pytest.raises(SystemExit):
        p.parse_args(["--subimage", "paint"])


def test_check_captions():
    assert check_captions("  a  dog ") == ["a dog"]
    for bad, needle in (([], "no captions"), (["a", " "], "caption 2 is empty"), ([3], "caption 1 is not text")):
        with pytest.raises(InputError, match=needle):
            check_captions(bad)


def test_public_face_is_light_and_complete():
    import subprocess
    import sys

    code = ("import sys, comclip; assert 'torch' not in sys.modules, 'torch imported'; "
            "from comclip import ComCLIP, load, Options, MatchResult, CaptionResult, Component, SceneGraph; "
            "assert load.__module__ == 'comclip.engine' and ComCLIP.from_preset")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=__import__("pathlib").Path(__file__).parent.parent)


def test_official_shortcut_and_flag():
    o = Options.official()
    assert (o.weighting, o.all_boxes, o.intransitive) == ("sum", True, "whole")
    assert o.relation_text == "predicate" and o.subimage == "blackout"  # the official code agrees with the paper
    p = argparse.ArgumentParser()
    add_model_options(p)
    assert Options.from_mapping(engine_options(p.parse_args(["--official"]))) == o
    mixed = engine_options(p.parse_args(["--official", "--weighting", "softmax"]))
    assert mixed == {"weighting": "softmax", "all_boxes": True, "intransitive": "whole"}
