"""The documentation: it builds with warnings as errors, and it names and uses the real API."""

from __future__ import annotations

import ast
import importlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"
#: The modules whose every public name (``__all__``) has a page in the API reference.
PUBLIC_MODULES = ["dasktrain", "dasktrain.space", "dasktrain.linear_model", "dasktrain.ensemble",
                  "dasktrain.metrics", "dasktrain.callbacks", "dasktrain.plotting",
                  "dasktrain.tracking"]
#: Public names whose page need not have its own example, and why.
EXAMPLE_ELSEWHERE = {
    "dasktrain.space.Dimension": "the abstract base of Integer, Continuous and Categorical",
    "dasktrain.metrics.EvaluationReport": "made by evaluate, whose example shows one",
}


def pages():
    return sorted(path for path in DOCS.rglob("*.rst")
                  if "_templates" not in path.parts and "generated" not in path.parts)


def code_blocks(path: Path, language: str) -> list[str]:
    """The bodies of the ``.. code-block:: <language>`` directives of a reST page."""
    blocks, lines = [], path.read_text().splitlines()
    for number, line in enumerate(lines):
        if line.strip() != f".. code-block:: {language}":
            continue
        indent = len(line) - len(line.lstrip()) + 3
        body = []
        for following in lines[number + 1:]:
            if following.strip() and len(following) - len(following.lstrip()) < indent:
                break
            body.append(following[indent:])
        blocks.append("\n".join(body).strip("\n"))
    return blocks


def api_entries() -> list[tuple[str, str]]:
    """(module, name) of every autosummary entry of api.rst."""
    entries, module, in_summary = [], None, False
    for line in (DOCS / "api.rst").read_text().splitlines():
        if line.startswith(".. currentmodule::"):
            module = line.split("::")[1].strip()
        elif line.startswith(".. autosummary::"):
            in_summary = True
        elif in_summary and re.fullmatch(r"   \w+", line):
            entries.append((module, line.strip()))
        elif in_summary and line and not line.startswith(" "):
            in_summary = False
    return entries


def test_sphinx_builds_without_warnings(tmp_path):
    # Build from a copy: autosummary writes its generated pages into the source folder.
    source = tmp_path / "docs"
    shutil.copytree(DOCS, source, ignore=shutil.ignore_patterns("_build", "generated"))
    out = tmp_path / "html"
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
         str(source), str(out)],
        capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stdout + result.stderr
    for module, name in api_entries():
        page = out / "api" / "generated" / f"{module}.{name}.html"
        assert page.exists(), f"no API page for {module}.{name}"
        if f"{module}.{name}" not in EXAMPLE_ELSEWHERE:
            assert "Examples" in page.read_text(), f"{module}.{name} has no Examples section"
    for guide in (DOCS / "user_guide").glob("*.rst"):
        assert (out / "user_guide" / f"{guide.stem}.html").exists()


def test_api_reference_has_every_public_name():
    documented = set()
    for module, name in api_entries():
        documented.add(id(getattr(importlib.import_module(module), name)))
    missing = [f"{module}.{name}" for module in PUBLIC_MODULES
               for name in importlib.import_module(module).__all__
               if id(getattr(importlib.import_module(module), name)) not in documented]
    assert not missing, f"api.rst lacks {missing}"


def test_every_capability_has_a_user_guide_page():
    guides = {path.stem for path in (DOCS / "user_guide").glob("*.rst")}
    assert {"repeated", "search", "ensembles", "gradient", "cluster", "cli",
            "tracking"} <= guides
    index = (DOCS / "index.rst").read_text()
    for guide in guides:
        assert f"user_guide/{guide}" in index


@pytest.mark.parametrize("page", pages(), ids=lambda path: str(path.relative_to(DOCS)))
def test_code_in_the_pages_uses_the_real_api(page):
    for block in code_blocks(page, "python"):
        tree = ast.parse(block)  # every Python example is valid Python
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module.startswith("dasktrain"):
                module = importlib.import_module(node.module)
                for alias in node.names:
                    assert hasattr(module, alias.name), f"{node.module}.{alias.name}"
    for block in code_blocks(page, "json"):
        json.loads(block)
