"""Parser evaluation on gold files: loading, attribute F1, grouping, and the ``parse --evaluate`` command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from comclip.cli.main import main
from comclip.errors import InputError
from comclip.graph import SceneGraph
from comclip.parse.evaluate import evaluate, evaluate_files, format_report, load_gold

DATA = Path(__file__).resolve().parent / "data"


def _line(caption: str, entities: list[tuple[str, list[str]]], relations: list[tuple[int, str, int | None]],
          **extra: str) -> str:
    return json.dumps({
        "caption": caption, **extra,
        "entities": [{"id": f"e{i}", "name": n, "attributes": a} for i, (n, a) in enumerate(entities)],
        "relations": [{"subject": f"e{s}", "predicate": p, "object": None if o is None else f"e{o}"}
                      for s, p, o in relations],
    })


@pytest.fixture
def gold(tmp_path: Path) -> Path:
    path = tmp_path / "gold.jsonl"
    path.write_text("\n".join([
        _line("a red car on a road", [("car", ["red"]), ("road", [])], [(0, "on", 1)], split="dev", family="pp"),
        _line("a dog chases a cat", [("dog", []), ("cat", [])], [(0, "chase", 1)], split="dev", family="swap"),
        "",
        _line("a cat chases a dog", [("cat", []), ("dog", [])], [(0, "chase", 1)], split="test"),
    ]) + "\n")
    return path


def test_load_gold_reads_graphs_split_and_family(gold: Path) -> None:
    cases = load_gold(gold)
    assert [(c.caption, c.split, c.family) for c in cases] == [
        ("a red car on a road", "dev", "pp"), ("a dog chases a cat", "dev", "swap"), ("a cat chases a dog", "test", "")]
    assert cases[0].graph.entities[0].attributes == ("red",) and cases[0].graph.relations[0].predicate == "on"


@pytest.mark.parametrize(("text", "message"), [
    ("{not json\n", r"gold\.jsonl, line 1: "),
    ('{"caption": "x", "entities": [], "relations": []}\n[1]\n', r"line 2: a graph must be a JSON object"),
    ('{"caption": "x", "split": 3, "entities": []}\n', r"line 1: 'split' and 'family' must be strings"),
    ('{"caption": "x", "entities": [], "relations": [{"subject": "e0", "predicate": "on"}]}\n', r"line 1: .*'e0'"),
    ("\n\n", r"has no graphs"),
])
def test_bad_gold_files_are_one_input_error(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "gold.jsonl"
    path.write_text(text)
    with pytest.raises(InputError, match=message):
        load_gold(path)
    with pytest.raises(InputError, match="cannot read gold file"):
        load_gold(tmp_path / "missing.jsonl")


def test_attribute_f1_counts_name_attribute_pairs() -> None:
    want = SceneGraph.from_dict(json.loads(_line("x", [("car", ["red", "old"]), ("road", ["wet"])], [])))
    got = SceneGraph.from_dict(json.loads(_line("x", [("car", ["red"]), ("road", ["dry"])], [])))
    s = evaluate([("x", want)], lambda caption: got)
    assert (s.attributes.matched, s.attributes.predicted, s.attributes.expected) == (1, 2, 3)
    assert s.entities.matched == 0 and s.relations.expected == 0


def test_evaluate_files_groups_by_split_and_family_and_parses_once(gold: Path) -> None:
    calls: list[str] = []
    graphs = {c.caption: c.graph for c in load_gold(gold)}

    def oracle(caption: str) -> SceneGraph:
        calls.append(caption)
        return graphs[caption]

    results = evaluate_files([gold], oracle, by_family=True)
    assert [label for label, _ in results] == ["gold.jsonl [dev]", "  pp", "  swap", "gold.jsonl [test]"]
    assert sorted(calls) == sorted(graphs)  # each caption parsed once although it is in two groups
    assert all(s.exact == s.captions and s.relations.f1 == 1.0 for _, s in results)
    table = format_report(results)
    assert "gold.jsonl [dev]" in table and "1.000 (1.00/1.00)" in table
    assert table.splitlines()[-1].split()[-3] == "-"  # no attributes anywhere: no attribute score


def test_parse_evaluate_command(gold: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["parse", "--parser", "rules", "--evaluate", str(gold), "--mismatches"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("parser: rules · ") and "gold.jsonl [dev]" in out and "gold.jsonl [test]" in out
    assert main(["parse", "--parser", "rules", "a dog", "--evaluate", str(gold)]) == 2
    assert "not both" in capsys.readouterr().err
    assert main(["parse", "--parser", "rules"]) == 2
    assert "at least one caption" in capsys.readouterr().err


def test_shipped_gold_sets_are_well_formed() -> None:
    """The gold sets the README's numbers come from: sizes, splits, families, unique captions."""
    easy, hard = load_gold(DATA / "parse_easy.jsonl"), load_gold(DATA / "parse_hard.jsonl")
    assert {s: sum(c.split == s for c in easy) for s in ("reference", "heldout", "tricky")} == {
        "reference": 82, "heldout": 40, "tricky": 8}
    splits = [c.split for c in hard]
    assert splits.count("dev") >= 150 and splits.count("heldout") == 40 and splits.count("probe") == 32
    assert splits == sorted(splits, key=["dev", "heldout", "probe"].index)  # in the order they were written
    families = {c.family for c in hard}
    assert {"pp", "adverb", "passive", "pronoun", "partitive", "participle"} <= families
    assert {"swap-object", "swap-relation", "swap-both", "two-predicates", "symbolic", "pragmatic"} <= families
    captions = [c.caption for c in easy + hard]
    assert len(set(captions)) == len(captions)


def test_parse_shows_notes_and_its_json_reads_back(capsys: pytest.CaptureFixture[str]) -> None:
    """Readable output lists the parser's guesses; --json carries them and reads back as a graph."""
    caption = "a girl walks a dog in the snow"
    assert main(["parse", "--parser", "rules", caption]) == 0
    out = capsys.readouterr().out
    assert "  note: attached “in the snow” to girl, not dog (" in out
    assert main(["parse", "--parser", "rules", "--json", caption, "a dog chases a cat"]) == 0
    first, second = (json.loads(line) for line in capsys.readouterr().out.splitlines())
    assert first["notes"][0]["phrase"] == "in the snow" and second["notes"] == []
    graph = SceneGraph.from_dict(first)  # what `score --graph FILE` does with these lines
    assert graph.notes[0].chosen == ("e0",) and graph.relations[1].subject == "e0"
