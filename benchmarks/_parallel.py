"""Shared by bench_repeated and bench_stacking: one estimator, serial vs 2 processes vs 2 workers."""

from __future__ import annotations

import warnings

from sklearn.base import clone

from _common import Timer, log, median, ratio, task_stream


def _time_fit(estimator, X, y, client=None) -> dict:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MLP convergence warnings
        if client is None:
            with Timer() as timer:
                estimator.fit(X, y)
            return {"seconds": timer.seconds}
        with task_stream(client) as stream, Timer() as timer:
            estimator.fit(X, y)
    return {"seconds": timer.seconds, "busy_seconds_tasks": stream["busy_seconds"],
            "tasks": stream["tasks"]}


def _fit_mode(make, params, X, y, client):
    return _time_fit(clone(make()).set_params(**params), X, y, client)


def _free_loky_executor():
    """Shut loky's shared reusable executor down before scikit-learn uses joblib.

    dasktrain's LocalBackend takes loky's process-wide reusable executor
    directly, and joblib (scikit-learn's n_jobs) then fails on it with
    "'_ReusablePoolExecutor' object has no attribute '_temp_folder_manager'";
    once shut down, joblib makes a fresh one of its own.
    """
    from joblib.externals.loky import get_reusable_executor

    get_reusable_executor().shutdown(wait=True)


def compare_modes(make, X, y, client, repeats: int, peers: dict | None = None):
    """Fit ``make()`` serially, with n_jobs=2 and on `client`; plus `peers` (name -> make).

    Returns a table dict and the medians by mode.
    """
    modes = {
        "serial": ("dasktrain, use_dask=False (serial)", {}),
        "local2": ("dasktrain, use_dask=False, n_jobs=2", {"n_jobs": 2}),
        "dask": ("dasktrain, use_dask=True, 2 workers", {"use_dask": True, "client": client}),
    }
    runs = {name: [] for name in [*modes, *(peers or {})]}
    # warm up: worker processes import the estimator's modules once, untimed
    for name, (_, params) in modes.items():
        try:
            _fit_mode(make, params, X[:300], y[:300], client if name == "dask" else None)
        except Exception:  # reported by the timed runs below
            pass
    for repetition in range(repeats):
        for name, (_, params) in modes.items():
            log(f"  {name} #{repetition}")
            try:
                runs[name].append(_fit_mode(make, params, X, y,
                                            client if name == "dask" else None))
            except Exception as exc:  # an unfinished estimator: record and go on
                log(f"  {name} failed: {type(exc).__name__}: {exc}")
                runs[name].append({"error": f"{type(exc).__name__}: {exc}"[:200]})
        for name, make_peer in (peers or {}).items():
            log(f"  {name} #{repetition}")
            try:
                _free_loky_executor()
                _time_fit(make_peer(), X[:300], y[:300])  # warm up its worker processes
                runs[name].append(_time_fit(make_peer(), X, y))
            except Exception as exc:  # a peer failing on this stack: record and go on
                runs[name].append({"error": f"{type(exc).__name__}: {exc}"[:200]})
    measured = {}
    for name, items in runs.items():
        good = [item for item in items if "error" not in item]
        measured[name] = {"runs": items,
                          "seconds": median([item["seconds"] for item in good]),
                          "error": None if good else items[0]["error"]}
    serial = measured["serial"]["seconds"]
    for name, entry in measured.items():
        entry["ratio_to_serial"] = ratio(entry["seconds"], serial)
        # each repetition fits every way back to back: its own ratio to that serial fit
        # cancels the machine's slower and faster spells
        entry["paired_ratio_to_serial"] = median([
            ratio(item["seconds"], base["seconds"])
            for item, base in zip(runs[name], runs["serial"])
            if "error" not in item and "error" not in base])
    dask_runs = [item for item in runs["dask"] if "busy_seconds_tasks" in item]
    busy = median([item["busy_seconds_tasks"] for item in dask_runs])
    measured["dask"]["utilisation_tasks"] = ratio(busy, measured["dask"]["seconds"] * 2)
    labels = {name: label for name, (label, _) in modes.items()}
    rows = []
    for name, entry in measured.items():
        rows.append([labels.get(name, name), entry["seconds"], entry["ratio_to_serial"],
                     entry["paired_ratio_to_serial"], entry.get("utilisation_tasks"),
                     (entry["error"] or "")[:80]])
    table = {"columns": ["how", "fit s (median)", "/ serial", "/ serial (paired)",
                         "utilisation (tasks)", "error"],
             "rows": rows,
             "notes": f"Median of {repeats} fit(s) each. '/ serial' is the ratio of the medians "
                      "(the figure the targets use); '/ serial (paired)' the median of each "
                      "repetition's ratio to the serial fit just before it. Utilisation: "
                      "task-stream compute time / (wall x 2 workers)."}
    return table, measured
