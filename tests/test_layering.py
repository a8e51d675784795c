"""The whole package's layout promises, read from the source with ``ast``:

- no import cycles anywhere in ``comclip/`` (every import counts: top level, inside functions,
  under ``TYPE_CHECKING``);
- the engine (everything but the front ends ``cli``, ``studio``, ``eval``, ``bench``) never
  imports a front end; the encoders never import ``loading`` (they register into its table);
- low-level errors name no command-line flag (each front end adds its own hint);
- no module beside a package of the same name; small functions (app.py ≤ 60 lines, comclip/ ≤ 80).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "comclip"
FRONT_ENDS = ("comclip.__main__", "comclip.cli", "comclip.studio", "comclip.eval", "comclip.bench")
MAX_LINES = {"app.py": 60, "comclip": 80}


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _imports(name: str, path: Path) -> set[str]:
    """The comclip modules ``name`` imports anywhere (``from pkg import mod`` counts as ``pkg.mod``)."""
    out: set[str] = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([base] if base else []))
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                out.add(sub if sub in MODULES else base)
    return {m for m in out if m in MODULES and m != name}


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _reachable(start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        for nxt in GRAPH[todo.pop()] - seen:
            seen.add(nxt)
            todo.append(nxt)
    return seen


def _in(module: str, packages: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


def test_the_import_graph_has_no_cycle():
    assert len(MODULES) > 60 and "comclip.hub" in GRAPH["comclip.loading"]
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(GRAPH[node]):
            assert state.get(nxt) != 1, f"import cycle: {' -> '.join([*trail, node, nxt])}"
            if nxt not in state:
                visit(nxt, [*trail, node])
        state[node] = 2

    for name in sorted(GRAPH):
        if name not in state:
            visit(name, [])


def test_the_engine_never_imports_a_front_end():
    engine = [m for m in MODULES if m != "comclip" and not _in(m, FRONT_ENDS)]
    assert {"comclip.engine", "comclip.loading", "comclip.ground", "comclip.encoders.slip"} <= set(engine)
    for name in engine:
        reached = {m for m in _reachable(name) if _in(m, FRONT_ENDS)}
        assert not reached, f"{name} imports the front end(s) {sorted(reached)}"


def test_encoders_never_import_loading_they_register_into_its_table():
    for name in MODULES:
        if _in(name, ("comclip.encoders",)):
            assert "comclip.loading" not in _reachable(name), name
    assert not any(_in(m, ("comclip.encoders",)) for m in GRAPH["comclip.hub"] | GRAPH["comclip.presets"])


FLAG = re.compile(r"(?<![\w-])--[a-z][a-z-]+")


def _raised_text(node: ast.Raise) -> str:
    return " ".join(c.value for c in ast.walk(node) if isinstance(c, ast.Constant) and isinstance(c.value, str))


def test_low_level_errors_name_no_command_line_flag():
    for name, path in MODULES.items():
        if _in(name, FRONT_ENDS):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Raise) and node.exc is not None:
                found = FLAG.findall(_raised_text(node))
                assert not found, f"{name}:{node.lineno} raises an error naming {found}: give it a hint instead"


def test_no_module_beside_a_package_of_the_same_name():
    clashes = [p for p in PACKAGE.rglob("*.py") if p.with_suffix("").is_dir()]
    assert not clashes


def _functions(path: Path):
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node.name, node.lineno, node.end_lineno - node.lineno + 1


@pytest.mark.parametrize("where", list(MAX_LINES))
def test_functions_stay_small(where):
    paths = [ROOT / where] if where.endswith(".py") else sorted((ROOT / where).rglob("*.py"))
    long = [f"{p.relative_to(ROOT)}:{line} {name} ({n} lines)" for p in paths for name, line, n in _functions(p)
            if n > MAX_LINES[where]]
    assert not long, f"functions over {MAX_LINES[where]} lines: {long}"


def _readme_layout() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = text.split("## Layout", 1)[1].split("```", 2)[1]
    return [line.split()[0] for line in block.splitlines() if line and not line[0].isspace()]


def test_the_readme_layout_matches_the_tree():
    listed = _readme_layout()
    assert not [p for p in listed if not (ROOT / p.rstrip("/")).exists()], "listed but absent"
    entries = {f"comclip/{p.name}" + ("/" if p.is_dir() else "") for p in PACKAGE.iterdir()
               if p.name not in ("__pycache__", "__main__.py", "py.typed")}
    assert not entries - set(listed), f"in comclip/ but not in the README's Layout: {sorted(entries - set(listed))}"
