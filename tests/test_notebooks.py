"""notebooks/: committed without outputs, and each runs top to bottom (nbclient, python3 kernel)."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
#: What each notebook must show once run: text in its outputs, and how many plots.
EXPECTED = {
    "01_quickstart.ipynb": (["Dask dashboard: http", "mlp_x6", "score = mean - std",
                             "roc_auc"], 1),
    "02_genetic_search.ipynb": (["Dask dashboard: http", "cache_hits", "test accuracy:",
                                 "mean_test_score", "pareto_rank"], 3),
    "03_ensembles.ipynb": (["Dask dashboard: http", "same predictions as scikit-learn: True",
                            "partition models", "stacking", "partitioned"], 0),
    "04_gradient_training.ipynb": (["Dask dashboard: http", "largest coefficient difference",
                                    "param_averaging_sgd", "neg_log_loss"], 0),
}


def notebook_paths():
    return sorted(NOTEBOOKS.glob("*.ipynb"))


def test_every_notebook_is_expected_and_present():
    assert sorted(path.name for path in notebook_paths()) == sorted(EXPECTED)


@pytest.mark.parametrize("path", notebook_paths(), ids=lambda path: path.name)
def test_committed_without_outputs(path):
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    assert notebook.metadata["kernelspec"]["name"] == "python3"
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, cell.source[:60]


def output_text(notebook) -> tuple[str, int]:
    """All the text a run notebook shows, and its number of PNG images."""
    texts, images = [], 0
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if output.output_type == "stream":
                texts.append(output.text)
            elif "data" in output:
                texts.extend(str(output.data.get(kind, ""))
                             for kind in ("text/plain", "text/html"))
                images += "image/png" in output.data
    return "\n".join(texts), images


@pytest.mark.cluster
@pytest.mark.parametrize("path", notebook_paths(), ids=lambda path: path.name)
def test_notebook_runs_top_to_bottom(path, tmp_path):
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(notebook, timeout=240, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # raises CellExecutionError, with the cell and traceback, on any error
    text, images = output_text(notebook)
    expected_text, expected_images = EXPECTED[path.name]
    for expected in expected_text:
        assert expected in text, f"{path.name} does not show {expected!r}"
    assert images >= expected_images
