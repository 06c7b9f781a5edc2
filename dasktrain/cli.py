"""The ``dasktrain`` command: one sub-command per function ``add_<name>_command``.

A sub-command registers itself on the sub-parsers with its own options and a
``run`` function that takes the parsed arguments and returns an exit code;
:data:`SUBCOMMANDS` lists the registering functions, in the order ``--help``
shows them.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings


def positive_int(text: str) -> int:
    """An argparse type: an int of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an int of at least 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an int of at least 1, got {value}")
    return value


# --- dasktrain demo -----------------------------------------------------------------------

DEMO_DESCRIPTION = """\
Train a RepeatedClassifier (a scaled MLP, one clone per seed) on a Dask cluster
and a LogisticRegression baseline on scikit-learn's breast_cancer data, then
print the comparison table of evaluate() and the timings. Without --scheduler,
the repeats run on a temporary LocalCluster on 127.0.0.1 that is closed when
training ends."""


def add_demo_command(subparsers) -> argparse.ArgumentParser:
    """Register ``dasktrain demo``."""
    parser = subparsers.add_parser(
        "demo", help="train repeated MLPs on a Dask cluster and compare them with a baseline",
        description=DEMO_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scheduler", metavar="ADDRESS",
                        help="address of a running Dask scheduler, e.g. tcp://10.0.0.5:8786 "
                             "(default: a temporary local cluster)")
    parser.add_argument("--n-workers", type=positive_int, default=2, metavar="N",
                        help="worker processes of the temporary local cluster (default: 2; "
                             "ignored with --scheduler)")
    parser.add_argument("--n-repeats", type=positive_int, default=None, metavar="N",
                        help="number of seeded MLPs (default: 8, or 4 with --quick)")
    parser.add_argument("--random-state", type=int, default=0, metavar="SEED",
                        help="seed of the split and of the repeats (default: 0)")
    parser.add_argument("--quick", action="store_true",
                        help="a smaller network and fewer repeats: a smoke test in seconds")
    parser.set_defaults(run=run_demo)
    return parser


def _connect_to_scheduler(address: str):
    """A Client to `address`. The one place the command touches distributed directly.

    The execution layer takes Client objects; it has no way yet to take an
    address, so the command makes the Client itself, lazily.
    """
    from distributed import Client

    return Client(address, set_as_default=False, timeout=30)


def run_demo(args) -> int:
    """Run ``dasktrain demo``; returns the exit code."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from .ensemble import RepeatedClassifier
    from .metrics import evaluate

    # This process is a program, not a library: keep the cluster's INFO logs (its own and its
    # workers', which inherit the environment) off the screen unless the user asked for them.
    os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")
    n_repeats = args.n_repeats or (4 if args.quick else 8)
    hidden = (16,) if args.quick else (32,)
    started = time.perf_counter()
    X, y = load_breast_cancer(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, stratify=y, random_state=args.random_state)
    print(f"dasktrain demo: breast_cancer, {len(X_train)} training and {len(X_test)} test "
          f"samples, {X.shape[1]} features")

    client = _connect_to_scheduler(args.scheduler) if args.scheduler else None
    try:
        where = (f"the cluster at {args.scheduler}" if client is not None else
                 f"a temporary local cluster of {args.n_workers} workers")
        print(f"Training {n_repeats} MLPs {hidden} with different seeds on {where} ...",
              flush=True)
        mlp = make_pipeline(StandardScaler(), MLPClassifier(
            hidden_layer_sizes=hidden, learning_rate_init=0.01, max_iter=300))
        repeated = RepeatedClassifier(mlp, n_repeats=n_repeats, random_state=args.random_state,
                                      use_dask=True, client=client,
                                      n_jobs=None if client is not None else args.n_workers,
                                      verbose=1)
        tick = time.perf_counter()
        repeated.fit(X_train, y_train)
        repeated_seconds = time.perf_counter() - tick
    finally:
        if client is not None:
            client.close()

    tick = time.perf_counter()
    baseline = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    baseline.fit(X_train, y_train)
    baseline_seconds = time.perf_counter() - tick

    tick = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=UserWarning)
        report = evaluate({f"mlp_x{n_repeats}": repeated, "logreg": baseline}, X_test, y_test,
                          metrics=["accuracy", "roc_auc", "neg_log_loss"])
    evaluate_seconds = time.perf_counter() - tick

    print()
    print(report)
    print()
    print("Timings:")
    cluster_note = "" if client is not None else ", including starting and closing the cluster"
    print(f"  {n_repeats} MLPs on Dask: {repeated_seconds:6.2f} s{cluster_note}")
    print(f"  logreg baseline:  {baseline_seconds:6.2f} s")
    print(f"  evaluate:         {evaluate_seconds:6.2f} s")
    print(f"  total:            {time.perf_counter() - started:6.2f} s")
    return 0


#: The functions that register the sub-commands, in the order ``--help`` lists them.
SUBCOMMANDS = [add_demo_command]


def build_parser() -> argparse.ArgumentParser:
    """The ``dasktrain`` argument parser with every sub-command registered.

    Examples
    --------
    >>> args = build_parser().parse_args(["demo", "--quick"])
    >>> args.command, args.quick, args.n_workers, args.scheduler
    ('demo', True, 2, None)
    """
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="dasktrain",
        description="Train many scikit-learn models at once, on this machine or a Dask cluster.")
    parser.add_argument("--version", action="version", version=f"dasktrain {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for add_command in SUBCOMMANDS:
        add_command(subparsers)
    return parser


def main(argv=None) -> int:
    """Entry point of the ``dasktrain`` command (and of ``python -m dasktrain``).

    Parameters
    ----------
    argv : list of str or None, default=None
        The arguments; None reads ``sys.argv[1:]``.

    Returns
    -------
    code : int
        The exit code.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "run", None) is None:
        parser.print_help(sys.stderr)
        return 2
    return int(args.run(args) or 0)
