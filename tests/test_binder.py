"""binder/: every import of the notebooks is satisfied by the environment Binder builds."""

from __future__ import annotations

import ast
import importlib.metadata
import os
import re
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
BINDER = ROOT / "binder"
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
#: dasktrain modules that need an optional dependency (an extra of setup.cfg).
OPTIONAL = {"dasktrain.plotting": "matplotlib", "dasktrain.tracking": "mlflow"}


def canonical(name: str) -> str:
    """A distribution name as pip compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirements() -> set[str]:
    names = set()
    for line in (BINDER / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            names.add(canonical(re.match(r"[A-Za-z0-9_.-]+", line).group(0)))
    return names


def imported_modules(notebook: Path) -> set[str]:
    """Every module a notebook's code cells import (``import a.b``, ``from a.b import c``)."""
    modules = set()
    for cell in nbformat.read(notebook, as_version=4).cells:
        if cell.cell_type != "code":
            continue
        for node in ast.walk(ast.parse(cell.source)):
            if isinstance(node, ast.Import):
                modules.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                modules.add(node.module)
    return modules


def distributions_needed(modules: set[str]) -> set[str]:
    """The distributions that provide `modules` (dasktrain itself comes from postBuild)."""
    providers = importlib.metadata.packages_distributions()
    needed = set()
    for module in modules:
        top = module.split(".")[0]
        if top in sys.stdlib_module_names:
            continue
        if top == "dasktrain":
            extra = next((dist for prefix, dist in OPTIONAL.items()
                          if module == prefix or module.startswith(prefix + ".")), None)
            if extra:
                needed.add(canonical(extra))
            continue
        assert top in providers, f"no installed distribution provides {module!r}"
        needed.update(canonical(dist) for dist in providers[top])
    return needed


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 4


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda path: path.name)
def test_every_import_is_in_binder_requirements(notebook):
    modules = imported_modules(notebook)
    assert any(module.startswith("dasktrain") for module in modules)
    missing = distributions_needed(modules) - requirements()
    assert not missing, f"{notebook.name} imports from {sorted(missing)}, not in binder/"


def test_the_import_check_catches_a_missing_package():
    needed = distributions_needed({"sklearn.svm", "dasktrain.plotting", "os.path", "yaml"})
    assert needed == {"scikit-learn", "matplotlib", "pyyaml"}
    assert "pyyaml" not in requirements()


def test_postbuild_installs_dasktrain_from_the_checkout():
    post_build = BINDER / "postBuild"
    assert os.access(post_build, os.X_OK)
    lines = [line.strip() for line in post_build.read_text().splitlines()]
    assert lines[0] == "#!/usr/bin/env bash"
    assert "python -m pip install --no-cache-dir -e ." in lines
    assert (BINDER / "runtime.txt").read_text().strip() == "python-3.11"
