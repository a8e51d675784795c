"""The package as a user installs it: the wheel carries its data and declares its dependencies;
installed into a fresh virtual environment with no project checkout on the path, it loads the tiny
preset and scores exactly as the checkout does.

The wheel is built offline (``pip wheel --no-build-isolation`` with the setuptools already
installed: requirements-dev.txt) from a copy of the package in a temporary folder, and installed
with ``--no-deps``; the fresh environment sees the already installed dependencies (torch, …)
through a ``.pth`` line naming this environment's site-packages — never the checkout.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

from .conftest import EXAMPLE_IMAGE, ROOT

PACKAGE = ROOT / "comclip"
CAPTIONS = ["a mug in some grass", "some grass in a mug"]
#: Imports that are optional by design (each is guarded and named in its error message).
OPTIONAL_IMPORTS = {"datasets", "spaces"}


def _data_files() -> set[str]:
    """The package's non-Python files, as wheel paths."""
    return {str(p.relative_to(ROOT)) for p in PACKAGE.rglob("*")
            if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    src, out = tmp_path_factory.mktemp("src"), tmp_path_factory.mktemp("wheel")
    shutil.copytree(PACKAGE, src / "comclip", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                           "--quiet", "--wheel-dir", str(out), str(src)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"building the wheel failed (is setuptools>=77 installed?):\n{done.stderr}"
    (path,) = out.glob("comclip_studio-*.whl")
    return path


def test_the_wheel_carries_the_presets_model_configs_and_type_marker(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    data = _data_files()
    assert {"comclip/py.typed", "comclip/presets/default.json", "comclip/presets/tiny.json",
            "comclip/model_configs/open_clip/comclip-tiny.json",
            "comclip/model_configs/grounding_dino/random-vocab.txt"} <= data
    assert data <= names, f"missing from the wheel: {sorted(data - names)}"
    assert not any(n.startswith(("tests/", "assets/", "docs/")) for n in names)


@pytest.fixture(scope="module")
def venv(wheel, tmp_path_factory) -> Path:
    """A fresh environment holding only the wheel (plus this environment's dependencies, by a .pth line)."""
    env = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env)], check=True, timeout=120)
    python = env / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    deps = dict.fromkeys(sysconfig.get_paths()[k] for k in ("purelib", "platlib"))
    assert not any(Path(d).resolve() == ROOT.resolve() for d in deps)
    (site / "outer-dependencies.pth").write_text("".join(f"{d}\n" for d in deps))
    done = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index",
                           "--quiet", str(wheel)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return env


def _clean_env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "COMCLIP_PRESETS_DIR")}
    return {**env, "COMCLIP_CACHE": str(tmp / "cache"), "HF_HUB_OFFLINE": "1", "PYTHONDONTWRITEBYTECODE": "1"}


_SCRIPT = """
import json, sys
import comclip
from comclip import load
engine = load("tiny", device="cpu", parser="rules")
result = engine.match(sys.argv[1], json.loads(sys.argv[2]))
print(json.dumps({"file": comclip.__file__, "presets": comclip.list_presets(),
                  "scores": [s for c in result.captions for s in (c.clip_score, c.comclip_score)]}))
"""


def _want(tiny_engine) -> list[float]:
    """(CLIP, ComCLIP) of each caption, flat, from the checkout's engine."""
    tiny_engine.clear_caches()
    return [s for c in tiny_engine.match(EXAMPLE_IMAGE, CAPTIONS).captions for s in (c.clip_score, c.comclip_score)]


def test_the_installed_wheel_loads_and_scores_from_its_own_site_packages(venv, tmp_path, tiny_engine):
    image = shutil.copy(EXAMPLE_IMAGE, tmp_path / "mug.png")
    done = subprocess.run([str(venv / "bin" / "python"), "-c", _SCRIPT, str(image), json.dumps(CAPTIONS)],
                          cwd=tmp_path, env=_clean_env(tmp_path), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout)
    assert Path(got["file"]).resolve().is_relative_to(venv.resolve()), got["file"]  # not the checkout
    assert {"default", "large", "tiny", "tiny-blip2", "blip2", "slip-base"} <= set(got["presets"])
    assert got["scores"] == pytest.approx(_want(tiny_engine), abs=1e-6)


def test_the_installed_console_script_scores_with_the_tiny_preset(venv, tmp_path, tiny_engine):
    image = shutil.copy(EXAMPLE_IMAGE, tmp_path / "mug.png")
    done = subprocess.run([str(venv / "bin" / "comclip"), "score", str(image), *CAPTIONS, "--preset", "tiny",
                           "--parser", "rules", "--device", "cpu", "--json"],
                          cwd=tmp_path, env=_clean_env(tmp_path), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout)
    assert got["preset"] == "tiny" and got["models"]["random_weights"] is True
    scores = [s for c in got["captions"] for s in (c["clip_score"], c["comclip_score"])]
    assert scores == pytest.approx(_want(tiny_engine), abs=1e-6)


# -- declared dependencies ----------------------------------------------------------------------------

def _distribution_name(requirement: str) -> str:
    return re.split(r"[\s<>=!~;\[(]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _imported_modules() -> set[str]:
    """Top-level modules imported anywhere in the package and the app (at module level or inside functions)."""
    found: set[str] = set()
    for path in [*PACKAGE.rglob("*.py"), ROOT / "app.py"]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return found - set(sys.stdlib_module_names) - {"comclip", "__future__"}


def test_every_runtime_import_is_a_declared_dependency():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    declared = {_distribution_name(r) for r in project["dependencies"]}
    owners = packages_distributions()
    undeclared = {}
    for module in sorted(_imported_modules() - OPTIONAL_IMPORTS):
        dists = {d.lower().replace("_", "-") for d in owners.get(module, [module])}
        if not dists & declared:
            undeclared[module] = sorted(dists)
    assert not undeclared, f"imported but not in pyproject's dependencies: {undeclared}"
    pinned = {_distribution_name(line) for line in (ROOT / "requirements.txt").read_text().splitlines()
              if line.strip() and not line.startswith("#")}
    assert declared <= pinned, f"in pyproject but not in requirements.txt: {sorted(declared - pinned)}"
