"""The execution layer on every backend: local, local processes, in-process and process clusters."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid

import dask
import numpy as np
import pytest

from dasktrain._execution import AsCompleted, execution_backend


def unique_token(_=None):
    return uuid.uuid4().hex


def add(a, b):
    return a + b


def slow_identity(x, delay=0.2):
    time.sleep(delay)
    return x


def fail(message):
    raise ZeroDivisionError(message)


def where_am_i(_a=None, _b=None):
    try:
        from distributed import get_worker

        return get_worker().address
    except ValueError:
        return "client"


@pytest.fixture
def execution(backend):
    with execution_backend(**backend) as executing:
        yield executing


def test_map_gathers_in_order(execution):
    assert execution.gather(execution.map(pow, range(6), [2] * 6)) == [0, 1, 4, 9, 16, 25]


def test_future_arguments_are_resolved(execution):
    first = execution.submit(add, 1, 2)
    nested = execution.submit(sum, [first, first, 4])
    assert execution.submit(add, first, nested).result() == 13


def test_keyed_tasks_run_once(execution):
    a = execution.submit(unique_token, key="token-a")
    again = execution.submit(unique_token, key="token-a")
    other = execution.submit(unique_token, key="token-b")
    assert again is a
    assert a.result() == again.result() != other.result()


def test_scatter_sends_equal_data_once(execution):
    X = np.arange(1000.0)
    first = execution.scatter(X)
    assert execution.submit(np.sum, first).result() == X.sum()
    if execution.name == "dask":
        assert execution.scatter(X.copy()) is first
        assert execution.scatter(X + 1) is not first


def test_as_completed_accepts_more_while_iterating(execution):
    seen = []
    ac = execution.as_completed([execution.submit(add, 1, 1)])
    for future in ac:
        seen.append(future.result())
        if len(seen) < 3:
            ac.add(execution.submit(add, seen[-1], 1))
    assert seen == [2, 3, 4]


def test_as_completed_times_out():
    from concurrent.futures import Future

    ac = AsCompleted([Future()])
    with pytest.raises(TimeoutError, match="within 0.05 seconds"):
        ac.next(timeout=0.05)


def test_task_errors_reach_the_caller(execution):
    future = execution.submit(fail, "broken candidate")
    with pytest.raises(ZeroDivisionError, match="broken candidate"):
        future.result()


def test_tree_reduce_sums_on_the_workers(execution):
    parts = execution.map(np.full, [3] * 9, range(9))
    total = execution.tree_reduce(parts, add)
    np.testing.assert_array_equal(total.result(), np.full(3, 36))
    place = execution.tree_reduce(execution.map(where_am_i, range(4)), where_am_i).result()
    assert (place == "client") == (execution.name == "local")


def test_cancel_stops_pending_tasks(execution):
    serial = execution.name == "local" and execution.n_workers == 1
    delay = 0.0 if serial else 0.5
    futures = [execution.submit(slow_identity, i, delay) for i in range(8)]
    execution.cancel(futures[2:])
    if serial:  # each task ran when it was submitted: cancelling leaves results intact
        assert execution.gather(futures) == list(range(8))
    else:
        assert all(future.cancelled() for future in futures[2:])
        assert execution.gather(futures[:2]) == [0, 1]


def test_blocks_of_a_dask_array(execution):
    da = pytest.importorskip("dask.array")
    X = da.arange(20, chunks=6)
    blocks = execution.blocks(X)
    assert [len(block.result()) for block in blocks] == [6, 6, 6, 2]
    sums = execution.gather(execution.map(np.sum, blocks))
    assert sum(sums) == 190


def _worker_environment(names):
    return {name: os.environ.get(name) for name in names}


def _worker_runtime(dask_worker):
    return dask_worker._tick_interval, "profile" in dask_worker.periodic_callbacks


def _server_tick(dask_scheduler):
    return dask_scheduler._tick_interval


def test_temporary_cluster_is_on_loopback_and_closed(monkeypatch):
    # earlier clusters of this test session wrote their nannies' variables here
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
    from dasktrain._execution._dask import TEMPORARY_CLUSTER_CONFIG

    configured = {key: dask.config.get(key) for key in TEMPORARY_CLUSTER_CONFIG}
    with execution_backend(use_dask=True, n_jobs=1) as executing:
        assert executing.owns_cluster
        client = executing.client
        info = client.scheduler_info()
        addresses = [info["address"], *info["workers"]]
        assert all(address.startswith("tcp://127.0.0.1:") for address in addresses)
        link = executing.dashboard_link
        assert link is None or link.startswith("http://127.0.0.1:")
        assert executing.submit(add, 2, 2).result() == 4
        # workers keep glibc's adaptive malloc (no trim threshold) but the
        # rest of Dask's pre-spawn environment, e.g. one BLAS thread
        environments = client.run(_worker_environment,
                                  ["MALLOC_TRIM_THRESHOLD_", "OMP_NUM_THREADS"])
        assert list(environments.values()) == [
            {"MALLOC_TRIM_THRESHOLD_": None, "OMP_NUM_THREADS": "1"}]
        # and a lean runtime: no statistical profiler, the event-loop watchdog once a second
        assert client.run(_worker_runtime) == {address: (1.0, False) for address in info["workers"]}
        assert client.run_on_scheduler(_server_tick) == 1.0
        # Dask's configuration is untouched
        assert {key: dask.config.get(key) for key in configured} == configured
    assert client.status == "closed"
    assert "MALLOC_TRIM_THRESHOLD_" not in os.environ


def test_current_client_is_used(client):  # distributed.utils_test's multi-process cluster
    with execution_backend(use_dask=True) as executing:
        assert executing.client is client
        assert not executing.owns_cluster
        assert executing.gather(executing.map(add, [1, 2], [3, 4])) == [4, 6]
    assert client.status == "running"


def test_scattered_data_released_on_close(process_client):
    with execution_backend(use_dask=True, client=process_client) as executing:
        future = executing.scatter(np.arange(10_000.0))
        key = future.key
        del future
        assert key in process_client.who_has()
    deadline = time.monotonic() + 10
    while key in process_client.who_has() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert key not in process_client.who_has()


@pytest.mark.parametrize(
    "kwargs, err, match",
    [
        ({"use_dask": False, "client": object()}, ValueError, "only used with use_dask=True"),
    ],
)
def test_bad_backend_arguments(kwargs, err, match):
    with pytest.raises(err, match=match):
        execution_backend(**kwargs)


def test_closed_client_is_rejected():
    from distributed import Client, LocalCluster

    from dasktrain._execution import check_client

    with LocalCluster(n_workers=1, processes=False, dashboard_address=None) as cluster:
        dask_client = Client(cluster, set_as_default=False)
        dask_client.close()
    with pytest.raises(ValueError, match="'client' parameter .* running distributed.Client"):
        check_client(dask_client)
    with pytest.raises(TypeError, match="'client' parameter .* distributed.Client or None"):
        check_client("tcp://127.0.0.1:8786")


def test_import_does_not_load_distributed():
    code = "import sys, dasktrain; print('distributed' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_as_completed_heartbeat_stops_a_hopeless_wait(monkeypatch):
    from concurrent.futures import Future

    from dasktrain._execution import WorkersLostError, _base

    monkeypatch.setattr(_base, "HEARTBEAT_SECONDS", 0.01)
    beats = []

    def heartbeat():
        beats.append(time.monotonic())
        if len(beats) == 3:
            raise WorkersLostError("no worker left")

    ac = AsCompleted([Future()], heartbeat=heartbeat)
    with pytest.raises(WorkersLostError, match="no worker left"):
        ac.next()
    assert len(beats) == 3
    done = Future()
    done.set_result(1)
    ac.add(done)
    assert ac.next(timeout=1) is done  # a finished future is yielded without any heartbeat
    assert len(beats) == 3


def test_as_completed_timeout_with_heartbeat(monkeypatch):
    from concurrent.futures import Future

    from dasktrain._execution import _base

    monkeypatch.setattr(_base, "HEARTBEAT_SECONDS", 0.01)
    beats = []
    ac = AsCompleted([Future()], heartbeat=lambda: beats.append(1))
    with pytest.raises(TimeoutError, match="within 0.1 seconds"):
        ac.next(timeout=0.1)
    assert beats  # it checked the workers while waiting


def test_worker_identity_says_where_a_task_runs(execution):
    import os

    from dasktrain._execution import worker_identity

    place = execution.submit(worker_identity).result()
    if execution.name == "dask":
        assert isinstance(place, str) and "://" in place
    elif execution.n_workers == 1:
        assert place == os.getpid()
    else:
        assert isinstance(place, int) and place != os.getpid()
    assert not execution.recycle(os.getpid())  # never this process


def test_isolated_local_backend_runs_one_job_in_another_process():
    import os

    with execution_backend(use_dask=False, n_jobs=1, isolate=True) as executing:
        assert executing.n_workers == 1
        futures = executing.map(slow_identity, range(3), [0.0] * 3)
        assert executing.gather(futures) == [0, 1, 2]
        assert executing.submit(os.getpid).result() != os.getpid()


def test_close_is_idempotent_and_cancels_unfinished_tasks():
    executing = execution_backend(use_dask=False, n_jobs=2)
    futures = [executing.submit(slow_identity, i, 0.3) for i in range(6)]
    executing.close()
    executing.close()
    assert any(future.cancelled() for future in futures)


def test_dask_waits_check_the_workers(process_client, monkeypatch):
    from dasktrain._execution import _base

    monkeypatch.setattr(_base, "HEARTBEAT_SECONDS", 0.05)
    with execution_backend(use_dask=True, client=process_client, worker_timeout=5) as executing:
        beats = []
        original = executing.check_workers
        monkeypatch.setattr(executing, "check_workers", lambda: beats.append(original()))
        future = executing.submit(slow_identity, 7, 0.5)
        assert future.result() == 7
        assert len(beats) >= 2  # result() checked the workers while it waited
        n_beats = len(beats)
        assert executing.gather([executing.submit(slow_identity, 8, 0.5)]) == [8]
        assert len(beats) > n_beats  # and so did gather
    assert executing._no_workers_since is None


def test_local_pool_leaves_joblib_alone():
    """scikit-learn's own n_jobs still works after a local pool ran (they used to share one)."""
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score

    with execution_backend(n_jobs=2) as executing:
        assert executing.gather(executing.map(add, [1, 2], [3, 4])) == [4, 6]
    X, y = load_iris(return_X_y=True)
    scores = cross_val_score(LogisticRegression(max_iter=500), X, y, cv=3, n_jobs=2)
    assert len(scores) == 3
    with execution_backend(n_jobs=2) as executing:
        assert executing.submit(add, 5, 5).result() == 10


def test_keyed_map_reuses_known_keys_and_dedups_a_batch(execution):
    first = execution.submit(unique_token, key="batch-a")
    futures = execution.map(unique_token, [0, 1, 2, 3], keys=["batch-a", "batch-b", "batch-b",
                                                              "batch-c"])
    assert futures[0] is first
    assert futures[1] is futures[2]
    tokens = execution.gather(futures)
    assert tokens[0] == first.result() and tokens[1] == tokens[2]
    assert len({tokens[0], tokens[1], tokens[3]}) == 3


def run_and_say_where(directory, _):
    """Leave a file for every run of this task; say which worker ran it."""
    from dasktrain._execution import worker_identity

    open(os.path.join(directory, unique_token()), "w").close()
    return worker_identity()


@pytest.mark.timeout(120)
def test_results_released_just_before_a_restart_are_not_run_again(tmp_path):
    """A release reaches the scheduler by the batched stream, a restart by a call of its own:
    the restart waits until the released results are dropped, or the scheduler would run
    their tasks again on the new worker, for nobody (a stuck fit would stay stuck there)."""
    from _cluster import ProcessCluster

    rounds, tasks = 3, 6
    with ProcessCluster(n_workers=2) as cluster, \
            execution_backend(use_dask=True, client=cluster.client()) as executing:
        # a busy client sends its batched messages late: here, at most one per 0.5 s
        cluster.client().scheduler_comm.interval = 0.5
        for _ in range(rounds):
            futures = executing.map(run_and_say_where, [str(tmp_path)] * tasks, range(tasks))
            identity = executing.gather(futures)[0]  # the other worker is free to run again
            executing.release(futures)
            del futures
            assert executing.recycle(identity)
        cluster.client().wait_for_workers(2, timeout=60)
        time.sleep(1.0)  # any task run again would have run by now
    assert len(list(tmp_path.iterdir())) == rounds * tasks


# --- BLAS/OpenMP threads of a task ---------------------------------------------------------

def library_threads(_=None):
    """{user_api: threads} of the BLAS and OpenMP libraries, as this thread sees them."""
    import threadpoolctl

    seen = {}
    for info in threadpoolctl.threadpool_info():
        seen[info["user_api"]] = max(seen.get(info["user_api"], 0), info["num_threads"])
    return seen


def library_threads_in_worker(_=None):
    import sklearn.ensemble  # noqa: F401 - loads scikit-learn's OpenMP runtime

    return library_threads()


def test_local_pool_tasks_get_their_share_of_the_cores():
    from joblib import cpu_count

    share = max(1, cpu_count() // 2)
    with execution_backend(n_jobs=2, task_threads=False) as executing:
        assert executing.threads_per_task is None
        # not limited: the libraries' own default (the cores, or OMP_NUM_THREADS, which
        # Dask's nannies started earlier in this test session may have set here)
        unlimited = executing.submit(library_threads_in_worker).result()
    with execution_backend(n_jobs=2) as executing:
        assert executing.threads_per_task == share
        seen = executing.gather(executing.map(library_threads_in_worker, range(2)))
    expected = {api: min(threads, share) for api, threads in unlimited.items()}
    assert seen == [expected] * 2
    with execution_backend(n_jobs=2, task_threads=False) as executing:  # put back after
        assert executing.gather(executing.map(library_threads_in_worker, range(2))) == \
            [unlimited] * 2
    with execution_backend(n_jobs=1) as executing:  # in this process: its own settings stand
        assert executing.threads_per_task is None


@pytest.mark.timeout(120)
def test_tasks_of_a_worker_without_nanny_use_one_thread_each():
    """`dask worker --no-nanny` has no OMP_NUM_THREADS=1: the task limits itself (and BLAS
    stays limited in that worker process, as a nanny's OMP_NUM_THREADS=1 keeps it)."""
    from _cluster import ProcessCluster

    # as a user would start it: none of the thread variables that Dask's nannies started
    # earlier in this test session may have left in this process's environment
    unset = dict.fromkeys(("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"))
    with ProcessCluster(n_workers=1, nthreads=2, nanny=False, environment=unset) as cluster:
        client = cluster.client()
        unlimited = client.submit(library_threads_in_worker, pure=False).result()
        assert unlimited["blas"] > 1  # the premise: a worker without nanny is not limited
        with dask.config.set({"dasktrain.task-threads": False}), \
                execution_backend(use_dask=True, client=client) as executing:
            assert executing.threads_per_task is None
            assert executing.submit(library_threads_in_worker).result() == unlimited
        with execution_backend(use_dask=True, client=client) as executing:
            assert executing.threads_per_task == 1
            seen = executing.gather(executing.map(library_threads_in_worker, range(4)))
            assert seen == [{"blas": 1, "openmp": 1}] * 4
        assert [threads["blas"] for threads in client.run(library_threads).values()] == [1]


def test_thread_limits_nest_and_only_lower():
    import sklearn.utils._openmp_helpers  # noqa: F401 - scikit-learn's OpenMP runtime
    from threadpoolctl import threadpool_limits

    from dasktrain._execution import current_thread_limit, thread_limits

    with threadpool_limits(limits=2):  # this test process runs with one (conftest)
        before = library_threads()
        # OpenBLAS stays at 1 in a process whose in-process Dask workers ran limited tasks
        # before (documented: BLAS lowered in a Dask worker thread stays lowered); OpenMP's
        # count is per thread and always follows
        assert before["openmp"] == 2 and before["blas"] in (1, 2)
        with thread_limits(1):
            assert current_thread_limit() == 1 and library_threads() == {"blas": 1, "openmp": 1}
            with thread_limits(64):  # never raised above what is in force
                assert library_threads() == {"blas": 1, "openmp": 1}
            assert current_thread_limit() == 1
        assert current_thread_limit() is None and library_threads() == before


def test_limiting_a_task_costs_microseconds():
    """The libraries are scanned once per process (a scan costs milliseconds), not per task."""
    from dasktrain._execution._threads import ThreadLimitedTask

    limited = ThreadLimitedTask(add, 1)
    limited(1, 2)
    start = time.perf_counter()
    for _ in range(500):
        limited(1, 2)
    per_task = (time.perf_counter() - start) / 500
    assert per_task < 5e-4, f"{per_task * 1e6:.0f} us per task"


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"task_threads": 0}, "'task_threads' parameter must be 'auto', a positive int"),
        ({"task_threads": "many"}, "'task_threads' parameter must be 'auto'"),
        ({"task_threads": 1.5}, "'task_threads' parameter must be 'auto'"),
        ({"task_threads": True}, "'task_threads' parameter must be 'auto'"),
        ({"recycle": "sometimes"}, "'recycle' parameter must be one of 'own', 'always'"),
    ],
)
def test_bad_thread_and_recycle_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        execution_backend(**kwargs)


def test_bad_task_threads_configuration_is_named():
    with dask.config.set({"dasktrain.task-threads": -2}), \
            pytest.raises(ValueError, match="configuration value 'dasktrain.task-threads'"):
        execution_backend()


def test_n_slots_follows_the_workers(process_cluster):
    from dasktrain._execution import _dask

    client = process_cluster.client()
    with execution_backend(use_dask=True, client=client) as executing:
        assert executing.n_slots == executing.n_workers == 2
        process_cluster.add_worker(name="extra")
        client.wait_for_workers(3, timeout=60)
        time.sleep(_dask.SLOTS_MAX_AGE)
        assert executing.n_slots == 3
        client.retire_workers(names=["extra"], close_workers=True)
        deadline = time.monotonic() + 30
        while executing.n_slots != 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert executing.n_slots == 2
    with execution_backend(n_jobs=3) as executing:
        assert executing.n_slots == 3


def test_a_released_key_submitted_again_is_a_task_of_its_own(inprocess_client, caplog):
    """A keyed task released while a dependent still holds it on the scheduler, then
    submitted again with other arguments: Dask must not see one key with two specs."""
    import logging

    with execution_backend(use_dask=True, client=inprocess_client) as executing:
        first = executing.submit(slow_identity, "A", 0.0, key="prefix-shared")
        assert first.result() == "A"
        dependent = executing.submit(slow_identity, first, 1.0)
        executing.release([first])
        del first
        with caplog.at_level(logging.WARNING, logger="distributed"):
            again = executing.submit(slow_identity, "B", 0.0, key="prefix-shared")
            assert again.result() == "B"
            assert dependent.result() == "A"
        assert "run_spec" not in caplog.text


def test_a_thread_started_by_a_task_can_carry_its_limit():
    """OpenMP counts are per thread: a task running its fit in a thread of its own (a time
    limit) passes its limit on with carry_thread_limits."""
    import threading

    import sklearn.utils._openmp_helpers  # noqa: F401 - scikit-learn's OpenMP runtime
    from threadpoolctl import threadpool_limits

    from dasktrain._execution import carry_thread_limits
    from dasktrain._execution._threads import ThreadLimitedTask

    def in_a_thread_of_its_own(carry):
        seen = {}
        work = (carry_thread_limits if carry else (lambda f: f))(
            lambda: seen.update(library_threads()))
        thread = threading.Thread(target=work)
        thread.start()
        thread.join()
        return seen["openmp"]

    with threadpool_limits(limits=2):
        assert ThreadLimitedTask(in_a_thread_of_its_own, 1)(True) == 1
        # the premise: a new thread starts from the process's default, not its creator's
        assert ThreadLimitedTask(in_a_thread_of_its_own, 1)(False) == \
            in_a_thread_of_its_own(False)
