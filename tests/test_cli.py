"""The dasktrain command: help, argument errors, and the demo on a local and a running cluster."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from dasktrain.cli import main

CONSOLE_SCRIPT = Path(sys.executable).parent / "dasktrain"


def run(args, timeout=60) -> subprocess.CompletedProcess:
    """Run a command in its own process group; on time-out, stop the group (its cluster too)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("DASK_LOGGING__DISTRIBUTED", None)
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=env, start_new_session=True)
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        out, err = process.communicate()
        pytest.fail(f"{args} did not finish within {timeout} s:\n{out}\n{err[-3000:]}")
    return subprocess.CompletedProcess(args, process.returncode, out, err)


def test_console_script_is_declared_and_installed():
    (script,) = [ep for ep in entry_points(group="console_scripts") if ep.name == "dasktrain"]
    assert script.value == "dasktrain.cli:main"
    result = run([str(CONSOLE_SCRIPT), "--help"])
    assert result.returncode == 0, result.stderr
    assert "usage: dasktrain" in result.stdout
    assert "demo" in result.stdout


def test_python_m_dasktrain_demo_help():
    result = run([sys.executable, "-m", "dasktrain", "demo", "--help"])
    assert result.returncode == 0, result.stderr
    for option in ["--scheduler ADDRESS", "--n-workers N", "--n-repeats N", "--quick"]:
        assert option in result.stdout
    assert "breast_cancer" in result.stdout


@pytest.mark.parametrize(
    "argv, code, match",
    [
        (["demo", "--n-repeats", "0"], 2, "argument --n-repeats: expected an int of at least 1"),
        (["demo", "--n-workers", "two"], 2, "argument --n-workers: expected an int of at least 1"),
        (["no-such-command"], 2, "invalid choice: 'no-such-command'"),
        (["demo", "--bogus"], 2, "unrecognized arguments: --bogus"),
        (["search", "--max-time", "-1"], 2,
         "argument --max-time: expected a number of seconds above 0, got -1"),
        (["search", "--max-time", "inf"], 2, "argument --max-time: expected a number"),
        (["search", "--generations", "-1"], 2,
         "argument --generations: expected an int of at least 0, got -1"),
        (["repeat", "--scheduler", "tcp://host"], 2,
         "argument --scheduler: expected a Dask scheduler address"),
    ],
)
def test_bad_arguments_exit_with_a_message(capsys, argv, code, match):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == code
    assert match in capsys.readouterr().err


def test_no_command_prints_help_and_fails(capsys):
    assert main([]) == 2
    assert "usage: dasktrain" in capsys.readouterr().err


def check_demo_output(out: str, n_repeats: int) -> None:
    lines = out.splitlines()
    header = next(line for line in lines if line.startswith("estimator"))
    assert header.split()[:5] == ["estimator", "members", "mean", "std", "score"]
    names = (f"mlp_x{n_repeats}", "mlp_stacked", "logreg", "logreg_searched")
    rows = {line.split()[0]: line for line in lines if line[:1].strip() and
            line.split()[0] in names}
    assert set(rows) == set(names)  # members, their stacking, baseline and searched baseline
    assert rows[f"mlp_x{n_repeats}"].split()[1] == str(n_repeats)
    assert all(rows[name].split()[1] == "1" for name in names[1:])
    assert "best C = " in out
    assert any("accuracy" in line and "roc_auc" in line and "neg_log_loss" in line
               for line in lines)
    # each of the three metrics marks exactly one best score (ties would mark more)
    assert sum(row.count("*") for row in rows.values()) >= 3
    assert "Timings:" in out and "total:" in out


def test_demo_quick_on_a_temporary_cluster():
    result = run([sys.executable, "-m", "dasktrain", "demo", "--quick"], timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    check_demo_output(result.stdout, n_repeats=4)
    assert "temporary local cluster of 2 workers" in result.stdout
    assert "4/4" in result.stderr  # the progress bar went to stderr
    assert " - INFO - " not in result.stderr  # the cluster's INFO logs are kept quiet


def test_demo_on_a_running_scheduler(process_cluster, capsys, monkeypatch):
    monkeypatch.setenv("DASK_LOGGING__DISTRIBUTED", "warning")
    code = main(["demo", "--quick", "--n-repeats", "2", "--scheduler", process_cluster.address])
    assert code == 0
    captured = capsys.readouterr()
    check_demo_output(captured.out, n_repeats=2)
    assert f"the cluster at {process_cluster.address}" in captured.out
    assert "2/2" in captured.err
    # the user's cluster is left running
    assert len(process_cluster.client().nthreads()) == process_cluster.n_workers
