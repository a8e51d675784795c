"""The parse package's layout promises: no import loops, word lists in one module, small modules,
no model import on the rules path, and rules output independent of the process's hash seed."""

from __future__ import annotations

import ast
import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import comclip.parse as parse_pkg
from comclip.parse import lexicon

ROOT = Path(__file__).resolve().parent.parent
PARSE_DIR = ROOT / "comclip" / "parse"


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(PARSE_DIR.rglob("*.py"))}


def _imports(name: str, path: Path) -> set[str]:
    """comclip.parse modules that ``name`` imports anywhere (top level or inside functions)."""
    out: set[str] = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else [])
                )
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                out.add(sub if sub in MODULES else base)
    return {m for m in out if m in MODULES and m != name}


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def test_import_graph_is_acyclic() -> None:
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(GRAPH[node]):
            assert state.get(nxt) != 1, f"import loop: {' -> '.join([*trail, node, nxt])}"
            if nxt not in state:
                visit(nxt, [*trail, node])
        state[node] = 2

    for name in sorted(GRAPH):
        if name not in state:
            visit(name, [])
    assert "comclip.parse.registry" in GRAPH["comclip.parse.evaluate"]


def test_only_the_package_face_imports_it_or_evaluate() -> None:
    for name, deps in GRAPH.items():
        assert "comclip.parse" not in deps, f"{name} imports the package face"
        if name != "comclip.parse":
            assert "comclip.parse.evaluate" not in deps, f"{name} imports evaluate"


def test_no_dynamic_imports() -> None:
    for name, path in MODULES.items():
        text = path.read_text()
        assert "import_module" not in text and "__import__" not in text, name


def test_modules_stay_small_except_the_word_lists() -> None:
    sizes = {name: len(path.read_text().splitlines()) for name, path in MODULES.items()}
    assert len(MODULES) >= 12 and "comclip.parse.rules.chunker" in sizes
    too_big = {n: s for n, s in sizes.items() if s > 450 and n != "comclip.parse.lexicon"}
    assert not too_big


def _word_sets(module: object) -> dict[str, set[str]]:
    sets: dict[str, set[str]] = {}
    for attr, value in vars(module).items():
        if isinstance(value, dict):
            value = set(value) | {v for v in value.values() if isinstance(v, str)}
        if isinstance(value, frozenset | set | tuple) and value and all(isinstance(v, str) for v in value):
            sets[attr] = set(value)
    return sets


def _assigned(path: Path) -> set[str]:
    """Names a module assigns at its top level (not those it imports)."""
    names: set[str] = set()
    for node in ast.parse(path.read_text()).body:
        targets = (
            node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        )
        names.update(t.id for t in targets if isinstance(t, ast.Name))
    return names


def test_word_lists_live_only_in_the_lexicon() -> None:
    vocabulary = set().union(*_word_sets(lexicon).values())
    assert {"on", "wooden", "sit", "who", "front", "left", "next to"} <= vocabulary
    for name in MODULES:
        if name in {"comclip.parse.lexicon", "comclip.parse", "comclip.parse.registry"}:
            continue
        module = importlib.import_module(name)
        for attr, words in _word_sets(module).items():
            if attr.startswith("__") or attr not in _assigned(MODULES[name]):
                continue
            shared = words & vocabulary
            assert not shared, f"{name}.{attr} repeats lexicon words {sorted(shared)[:5]}"


def test_public_face_is_unchanged() -> None:
    assert parse_pkg.PARSERS == ("auto", "rules", "spacy", "llm")
    for attr in ("parse", "get_parser", "clear_cache", "evaluate", "ParseScores", "Parser"):
        assert attr in parse_pkg.__all__ and callable(getattr(parse_pkg, attr))


_SCRIPT = """
import json, sys
import comclip.parse as p
from tests.test_parse_rules import ALL_CAPTIONS
out = [p.parse(c, "rules").to_dict(notes=True) for c in ALL_CAPTIONS]
print(json.dumps({"graphs": out, "spacy_loaded": "spacy" in sys.modules}))
"""


def test_rules_path_is_hash_seed_independent_and_imports_no_spacy() -> None:
    """Word lists are sets: iterating one must never decide a graph. Nor may the rules path load spaCy."""
    runs = []
    for seed in ("0", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        done = subprocess.run(
            [sys.executable, "-c", _SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True, check=True
        )
        runs.append(json.loads(done.stdout))
    assert runs[0]["graphs"] == runs[1]["graphs"]
    assert len(runs[0]["graphs"]) >= 300
    assert runs[0]["spacy_loaded"] is False
