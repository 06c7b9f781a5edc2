"""Faults on real clusters: killed workers, lost clusters, stuck tasks, leftovers, a soak.

The clusters here are ``dask scheduler`` / ``dask worker --nanny`` processes started by
:class:`ProcessCluster` for one test (tests that kill workers never share a cluster), and
joblib's loky processes for the local backend. Every test is bounded by a timeout marker.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import threading
import time

import dask
import numpy as np
import pytest
from _cluster import ProcessCluster
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.datasets import make_classification
from sklearn.exceptions import FitFailedWarning
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.tree import DecisionTreeClassifier

from dasktrain import GeneticSearchCV, RepeatedClassifier, StackingEnsemble
from dasktrain._execution import (
    SchedulerLostError,
    TaskKilledError,
    WorkersLostError,
    execution_backend,
    worker_identity,
)
from dasktrain._execution._local import LocalBackend
from dasktrain.space import Categorical, Continuous

pytestmark = pytest.mark.cluster


# --- tasks (module level: the workers import this module) -------------------------------------

def slow_square(x, delay=0.3):
    time.sleep(delay)
    return x * x


def where_and_square(x, delay=0.3):
    time.sleep(delay)
    return x * x, worker_identity()


def kill_own_process():
    os.kill(os.getpid(), signal.SIGKILL)


def leave_thread_stuck_in_native_code(seconds=60):
    """Start a thread stuck in a C call (ignores Python interrupts), return where it is."""
    libc = ctypes.CDLL(None)
    threading.Thread(target=libc.sleep, args=(seconds,), daemon=True).start()
    time.sleep(0.1)
    return worker_identity(), os.getpid()


def stuck_in_native_code_holding_the_gil(seconds=60):
    """The whole process is stuck: PyDLL keeps the GIL during the C call."""
    ctypes.PyDLL(None).sleep(seconds)
    return "woke up"


def pid_of_this_process(_=None):
    return os.getpid()


class FaultyClassifier(ClassifierMixin, BaseEstimator):
    """A seeded SGD classifier whose fit can be slow, raise, hang, get stuck or eat memory.

    A fit that hangs or gets stuck first leaves an empty file named after its process id
    in `pid_dir` (if given); with ``misbehave=False`` every behaviour fits normally (the
    same search, undisturbed).
    """

    def __init__(self, alpha=1e-4, behaviour="ok", delay=0.0, pid_dir=None, misbehave=True,
                 random_state=None):
        self.alpha = alpha
        self.behaviour = behaviour
        self.delay = delay
        self.pid_dir = pid_dir
        self.misbehave = misbehave
        self.random_state = random_state

    def fit(self, X, y):
        time.sleep(self.delay + (0.4 if self.behaviour == "slow" else 0.0))
        if self.misbehave:
            self._misbehave()
        self.model_ = SGDClassifier(loss="log_loss", alpha=self.alpha, max_iter=20, tol=None,
                                    random_state=self.random_state).fit(X, y)
        self.classes_ = self.model_.classes_
        return self

    def _misbehave(self):
        if self.behaviour in ("hang", "native") and self.pid_dir is not None:
            open(os.path.join(self.pid_dir, str(os.getpid())), "w").close()
        if self.behaviour == "raise":
            raise ArithmeticError(f"this candidate always fails (alpha={self.alpha})")
        if self.behaviour == "hang":
            time.sleep(60)
        if self.behaviour == "native":  # a C call: Python cannot interrupt it
            ctypes.CDLL(None).sleep(60)
        if self.behaviour == "memory":  # far more than the worker's memory limit
            hoard = [np.ones(2**24) for _ in range(200)]  # 128 MiB each, touched
            del hoard

    def predict(self, X):
        return self.model_.predict(X)

    def predict_proba(self, X):
        return self.model_.predict_proba(X)


def small_data():
    return make_classification(n_samples=120, n_features=6, n_informative=4, random_state=0)


class BusyWorkerKiller(threading.Thread):
    """Kills one worker process that is running a task, as soon as tasks run."""

    def __init__(self, cluster, client):
        super().__init__(daemon=True)
        self.cluster, self.client, self.killed_pid = cluster, client, None

    def run(self):
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            busy = [address for address, keys in self.client.processing().items() if keys]
            if busy:
                time.sleep(0.2)  # in the middle of the task
                self.killed_pid = self.cluster.kill_worker_process(busy[0])
                return
            time.sleep(0.02)


def same_results(first, second):
    """cv_results_ of two searches hold the same candidates, generations and scores."""
    assert list(first["params"]) == list(second["params"])
    np.testing.assert_array_equal(first["generation"], second["generation"])
    np.testing.assert_allclose(first["mean_test_score"], second["mean_test_score"])
    np.testing.assert_array_equal(first["status"], second["status"])


def scheduler_has(dask_scheduler, keys):
    return [key for key in keys if key in dask_scheduler.tasks]


def scheduler_task_count(dask_scheduler):
    return len(dask_scheduler.tasks)


def wait_until(predicate, timeout=15.0, interval=0.05):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
    return True


def process_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (dead, not yet reaped by its parent) is not alive
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


# --- workers killed -------------------------------------------------------------------------

def weighted_square(x, data, delay=0.3):
    time.sleep(delay)
    return x * x * int(data.sum())


@pytest.mark.timeout(90)
def test_tasks_survive_a_killed_worker_even_the_one_holding_scattered_data():
    with ProcessCluster(n_workers=2) as cluster:
        client = cluster.client()
        with execution_backend(use_dask=True, client=client) as backend:
            data = backend.scatter(np.ones(10))
            holder = next(iter(client.who_has([data])[data.key]))
            futures = backend.map(weighted_square, range(10), [data] * 10)
            keyed = [backend.submit(weighted_square, x, data, key=f"keyed-{x}") for x in range(4)]
            ac = backend.as_completed(futures)
            first = ac.next(timeout=30)
            killed_pid = cluster.kill_worker_process(holder)  # data lost, its dependents too
            assert backend.gather(futures) == [10 * x * x for x in range(10)]
            assert [future.result() for future in keyed] == [10 * x * x for x in range(4)]
            assert first.result() in {10 * x * x for x in range(10)}
            assert killed_pid not in cluster.worker_pids().values()
            # data lost before its tasks are even submitted: it is sent again, once
            client.wait_for_workers(2, timeout=60)
            lost = backend.scatter(np.full(10, 2.0))
            cluster.kill_worker_process(next(iter(client.who_has([lost])[lost.key])))
            assert wait_until(lambda: lost.status != "finished", 30)
            later = backend.map(weighted_square, range(3), [lost] * 3, [0.0] * 3)
            assert backend.gather(later) == [0, 20, 80]
            assert backend.scatter(np.full(10, 2.0)) is not lost


@pytest.mark.timeout(90)
def test_every_worker_gone_fails_clearly_within_the_timeout():
    with ProcessCluster(n_workers=1, nanny=False) as cluster:
        client = cluster.client()
        cluster.kill_worker_process()
        assert wait_until(lambda: not client.scheduler_info()["workers"])
        waits = {
            "result": lambda backend, f: f.result(),
            "gather": lambda backend, f: backend.gather([f]),
            "as_completed": lambda backend, f: backend.as_completed([f]).next(),
        }
        for name, wait in waits.items():
            with execution_backend(use_dask=True, client=client, worker_timeout=1.0) as backend:
                future = backend.submit(slow_square, 3)
                start = time.monotonic()
                with pytest.raises(WorkersLostError, match="no worker for .*worker_timeout=1"):
                    wait(backend, future)
                assert time.monotonic() - start < 15, name
        # the waiting raised; the user's client is left running
        assert client.status == "running"


@pytest.mark.timeout(90)
def test_a_task_that_kills_every_worker_is_named_in_a_clear_error(monkeypatch):
    # the scheduler inherits this: one retry instead of three keeps the test short
    monkeypatch.setenv("DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES", "1")
    with ProcessCluster(n_workers=2) as cluster:
        client = cluster.client()
        with execution_backend(use_dask=True, client=client) as backend:
            doomed = backend.submit(kill_own_process, key="doomed-task")
            with pytest.raises(TaskKilledError, match="doomed-task.*allowed-failures"):
                doomed.result()
            assert isinstance(doomed.exception(), TaskKilledError)
            finished = backend.submit(slow_square, 2, 0.0)
            assert finished.result() == 4
            doomed_again = backend.submit(kill_own_process)
            with pytest.raises(TaskKilledError, match="kill_own_process"):
                backend.gather([finished, doomed_again])
            # the cluster still works afterwards (the nannies restarted the workers)
            assert backend.gather(backend.map(slow_square, [1, 2], delay=0.0)) == [1, 4]


@pytest.mark.timeout(180)
def test_generational_search_survives_a_killed_worker_with_the_same_results():
    X, y = small_data()
    space = {"alpha": Continuous(1e-5, 1e-1, log=True)}
    options = dict(population_size=4, generations=2, cv=2, random_state=0)
    undisturbed = GeneticSearchCV(FaultyClassifier(), space, **options).fit(X, y)
    with ProcessCluster(n_workers=2) as cluster:
        client = cluster.client()
        killer = BusyWorkerKiller(cluster, client)
        killer.start()
        search = GeneticSearchCV(FaultyClassifier(delay=0.5), space, use_dask=True,
                                 client=client, **options)
        search.fit(X, y)
        killer.join()
        assert killer.killed_pid is not None
        assert killer.killed_pid not in cluster.worker_pids().values()
    same_results(search.cv_results_, undisturbed.cv_results_)
    assert search.best_params_ == undisturbed.best_params_


@pytest.mark.timeout(180)
def test_repeated_and_stacking_fits_survive_a_killed_worker():
    X, y = small_data()
    repeated = dict(estimator=FaultyClassifier(delay=0.4), n_repeats=4, random_state=0)
    stacking = dict(estimators=[("sgd", FaultyClassifier(delay=0.4, random_state=0)),
                                ("tree", DecisionTreeClassifier(random_state=0))],
                    final_estimator=LogisticRegression(), cv=3)
    expected = {
        "repeated": RepeatedClassifier(**repeated).fit(X, y).predict_proba(X),
        "stacking": StackingEnsemble(**stacking).fit(X, y).predict_proba(X),
    }
    with ProcessCluster(n_workers=2) as cluster:
        client = cluster.client()
        for name, model in [("repeated", RepeatedClassifier(**repeated)),
                            ("stacking", StackingEnsemble(**stacking))]:
            killer = BusyWorkerKiller(cluster, client)
            killer.start()
            model.set_params(use_dask=True, client=client).fit(X, y)
            killer.join()
            assert killer.killed_pid is not None, name
            np.testing.assert_allclose(model.predict_proba(X), expected[name], err_msg=name)
            client.wait_for_workers(2, timeout=60)


# --- candidates that fail, hang, get stuck or eat memory ---------------------------------------

FAULTS = ["ok", "slow", "raise", "hang", "native"]
INNOCENT = ("ok", "slow")
EVAL_TIMEOUT = 1.0
#: How long after its eval_timeout a search may still take: its normal fits, starting new
#: processes in place of the recycled ones (slow on a loaded 2-core machine) and rerunning
#: the tasks they ran. The stuck fits would take 60 s each.
GRACE = 30.0


def check_fault_records(search, undisturbed):
    results, expected = search.cv_results_, undisturbed.cv_results_
    by_behaviour = {params["behaviour"]: index for index, params in enumerate(results["params"])}
    assert set(by_behaviour) == set(FAULTS)
    status = {name: results["status"][index] for name, index in by_behaviour.items()}
    error = {name: results["error"][index] for name, index in by_behaviour.items()}
    assert status == {"ok": "ok", "slow": "ok", "raise": "error", "hang": "timeout",
                      "native": "timeout"}
    assert "ArithmeticError" in error["raise"] and "always fails" in error["raise"]
    assert "timed out" in error["hang"] and "timed out" in error["native"]
    scores = results["mean_test_score"]
    assert all(np.isnan(scores[by_behaviour[name]]) for name in ("raise", "hang", "native"))
    # the innocent candidates (some of them run again after a recycling) score exactly as
    # in the same search without faults
    undisturbed_index = {params["behaviour"]: index
                         for index, params in enumerate(expected["params"])}
    for name in INNOCENT:
        for split in range(2):
            column = f"split{split}_test_score"
            assert results[column][by_behaviour[name]] == \
                expected[column][undisturbed_index[name]], (name, split)
    assert search.best_params_["behaviour"] in INNOCENT


@pytest.mark.timeout(150)
@pytest.mark.parametrize("where", ["local", "local-n2", "dask-processes"])
def test_failing_hanging_and_stuck_candidates_are_recorded_and_their_processes_recycled(
        where, tmp_path):
    X, y = small_data()
    space = {"behaviour": Categorical(FAULTS)}
    options = {"population_size": 5, "generations": 0, "cv": 2, "random_state": 0}
    undisturbed = GeneticSearchCV(FaultyClassifier(misbehave=False), space, **options).fit(X, y)
    with contextlib.ExitStack() as stack:
        if where == "dask-processes":  # its workers are restarted: a cluster of its own
            cluster = stack.enter_context(ProcessCluster(n_workers=2))
            backend = {"use_dask": True, "client": cluster.client()}
            workers_before = cluster.worker_pids()
        else:  # n_jobs=None too runs the fits in a process apart, because of eval_timeout
            backend = {"n_jobs": 2 if where == "local-n2" else None}
        search = GeneticSearchCV(FaultyClassifier(pid_dir=str(tmp_path)), space,
                                 eval_timeout=EVAL_TIMEOUT, **options, **backend)
        start = time.monotonic()
        with pytest.warns(FitFailedWarning, match="fits failed out of a total of"):
            search.fit(X, y)
        elapsed = time.monotonic() - start
        if where == "dask-processes":
            backend["client"].wait_for_workers(2, timeout=60)
            workers_after = cluster.worker_pids()
    check_fault_records(search, undisturbed)
    assert elapsed < EVAL_TIMEOUT + GRACE
    # every process left with a hanging or stuck fit is gone (and it never was this one)
    stuck_pids = {int(path.name) for path in tmp_path.iterdir()}
    assert stuck_pids and os.getpid() not in stuck_pids
    assert wait_until(lambda: not any(process_alive(pid) for pid in stuck_pids), 10)
    if where == "dask-processes":  # restarted by their nannies: new processes serve now
        assert stuck_pids & set(workers_before.values())
        assert not stuck_pids & set(workers_after.values())


class RecordingBackend(LocalBackend):
    """One isolated local process; remembers what it was asked to recycle."""

    def __init__(self):
        super().__init__(n_jobs=1, isolate=True)
        self.recycled = []

    def recycle(self, identity):
        self.recycled.append(identity)
        return super().recycle(identity)


@pytest.mark.timeout(60)
def test_a_process_is_recycled_once_however_many_of_its_fits_time_out(tmp_path):
    from sklearn.metrics import get_scorer
    from sklearn.model_selection import StratifiedKFold

    from dasktrain.model_selection._evaluator import Evaluator
    from dasktrain.model_selection._tasks import Settings

    X, y = small_data()
    folds = list(StratifiedKFold(2).split(X, y))
    with RecordingBackend() as backend:
        evaluator = Evaluator(backend, FaultyClassifier(pid_dir=str(tmp_path)), X, y, {}, folds,
                              {"score": get_scorer("accuracy")}, repeat_seeds=[0],
                              settings=Settings(eval_timeout=0.5), splits_per_task=2)
        # one task fits both splits of the stuck candidate: two threads stuck in one process
        keys, _ = evaluator.evaluate([{"behaviour": "native"}, {"behaviour": "ok"}])
        evaluator.close()
    assert [evaluator.results[key].status for key in keys] == ["timeout", "ok"]
    (stuck_pid,) = {int(path.name) for path in tmp_path.iterdir()}
    assert backend.recycled == [stuck_pid] and evaluator.n_recycled == 1
    assert wait_until(lambda: not process_alive(stuck_pid), 10)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("strategy", ["generational", "steady_state"])
def test_error_score_raise_on_a_timeout_still_recycles_the_stuck_process(tmp_path, strategy):
    X, y = small_data()
    search = GeneticSearchCV(FaultyClassifier(pid_dir=str(tmp_path)),
                             {"behaviour": Categorical(["ok", "native"])}, population_size=2,
                             generations=0, cv=2, eval_timeout=0.5, error_score="raise",
                             strategy=strategy, random_state=0)
    with pytest.raises(TimeoutError, match="'native'.*timed out after 0.5 s"):
        search.fit(X, y)
    stuck_pids = {int(path.name) for path in tmp_path.iterdir()}
    assert stuck_pids and os.getpid() not in stuck_pids
    assert wait_until(lambda: not any(process_alive(pid) for pid in stuck_pids), 10)


class WhereFitted(FaultyClassifier):
    """Leaves a file named after the process id of every fit in `pid_dir`."""

    def fit(self, X, y):
        open(os.path.join(self.pid_dir, str(os.getpid())), "w").close()
        return super().fit(X, y)


def test_a_serial_search_without_eval_timeout_fits_in_this_process(tmp_path):
    X, y = small_data()
    GeneticSearchCV(WhereFitted(pid_dir=str(tmp_path)), {"alpha": Continuous(1e-4, 1e-1)},
                    population_size=3, generations=1, cv=2, refit=False,
                    random_state=0).fit(X, y)
    assert {int(path.name) for path in tmp_path.iterdir()} == {os.getpid()}


def test_error_score_raise_raises_the_original_exception():
    X, y = small_data()
    search = GeneticSearchCV(FaultyClassifier(), {"behaviour": Categorical(["ok", "raise"])},
                             population_size=2, generations=0, cv=2, error_score="raise",
                             random_state=0)
    with pytest.raises(ArithmeticError, match="always fails"):
        search.fit(X, y)


@pytest.mark.timeout(180)
def test_candidate_using_too_much_memory_is_recorded_and_the_search_goes_on(monkeypatch):
    X, y = small_data()
    # one retry instead of three keeps the test short: for the scheduler, and for the backend
    monkeypatch.setenv("DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES", "1")
    with ProcessCluster(n_workers=2, memory_limit="600MiB") as cluster, \
            dask.config.set({"distributed.scheduler.allowed-failures": 1}):
        client = cluster.client()
        search = GeneticSearchCV(FaultyClassifier(), {"behaviour": Categorical(["ok", "memory"])},
                                 population_size=2, generations=0, cv=2, random_state=0,
                                 use_dask=True, client=client)
        with pytest.warns(FitFailedWarning, match="fits failed out of a total of"):
            search.fit(X, y)
        client.wait_for_workers(2, timeout=60)
    results = search.cv_results_
    index = [params["behaviour"] for params in results["params"]].index("memory")
    assert results["status"][index] == "error"
    assert "TaskKilledError" in results["error"][index]
    assert "out of memory" in results["error"][index]
    assert np.isnan(results["mean_test_score"][index])
    assert search.best_params_ == {"behaviour": "ok"}


# --- stuck tasks: recycling a worker process ---------------------------------------------------

@pytest.mark.timeout(120)
def test_dask_worker_with_a_thread_stuck_in_native_code_is_recycled():
    with ProcessCluster(n_workers=2) as cluster:
        client = cluster.client()
        with execution_backend(use_dask=True, client=client) as backend:
            address, stuck_pid = backend.submit(leave_thread_stuck_in_native_code).result()
            assert address in cluster.worker_pids()
            # another task is running on the cluster while the worker is recycled
            others = backend.map(slow_square, range(4), delay=0.5)
            assert backend.recycle(address)
            assert wait_until(lambda: not process_alive(stuck_pid))
            assert backend.gather(others) == [0, 1, 4, 9]
            assert not backend.recycle("tcp://127.0.0.1:1")  # not a worker: nothing done
            assert not backend.recycle(os.getpid())
        assert stuck_pid not in cluster.worker_pids().values()


@pytest.mark.timeout(120)
def test_dask_task_frozen_in_native_code_is_stopped_by_force_cancel():
    with ProcessCluster(n_workers=2) as cluster:
        client = cluster.client()
        pids_before = set(cluster.worker_pids().values())
        with execution_backend(use_dask=True, client=client) as backend:
            frozen = backend.submit(stuck_in_native_code_holding_the_gil)
            assert wait_until(lambda: any(client.processing().values()), 60)
            time.sleep(0.3)
            start = time.monotonic()
            backend.cancel([frozen], force=True)
            assert frozen.cancelled()
            assert time.monotonic() - start < 40
            client.wait_for_workers(2, timeout=90)
            # both workers serve tasks again, and one of them is a new process
            assert backend.gather(backend.map(slow_square, range(4), delay=0.2)) == [0, 1, 4, 9]
        assert set(cluster.worker_pids().values()) != pids_before


@pytest.mark.timeout(60)
def test_local_pool_process_stuck_in_native_code_is_recycled():
    with LocalBackend(n_jobs=2) as backend:
        _, stuck_pid = backend.submit(leave_thread_stuck_in_native_code).result()
        others = backend.map(where_and_square, range(4), [0.5] * 4)
        time.sleep(0.2)  # they are running when the pool loses a process
        assert backend.recycle(stuck_pid)
        assert wait_until(lambda: not process_alive(stuck_pid))
        results = backend.gather(others)  # run again in the new pool
        assert [square for square, _ in results] == [0, 1, 4, 9]
        assert stuck_pid not in {pid for _, pid in results}
        assert not backend.recycle(os.getpid())  # never this process


@pytest.mark.timeout(60)
def test_isolated_single_job_stops_a_frozen_task_without_stopping_this_process():
    with LocalBackend(n_jobs=1, isolate=True) as backend:
        pid = backend.submit(pid_of_this_process).result()
        assert pid != os.getpid()
        frozen = backend.submit(stuck_in_native_code_holding_the_gil)
        time.sleep(0.5)
        start = time.monotonic()
        backend.cancel([frozen], force=True)
        assert frozen.cancelled()
        assert time.monotonic() - start < 15
        assert wait_until(lambda: not process_alive(pid))
        assert backend.submit(slow_square, 5, 0.0).result(timeout=30) == 25


@pytest.mark.timeout(60)
def test_local_task_whose_process_always_dies_gives_a_clear_error():
    with LocalBackend(n_jobs=2) as backend:
        doomed = backend.submit(kill_own_process)
        with pytest.raises(TaskKilledError, match="kill_own_process.*lost 4 times"):
            doomed.result(timeout=50)
        assert backend.submit(slow_square, 3, 0.0).result(timeout=30) == 9


# --- nothing left behind ----------------------------------------------------------------------

class FitFailed(Exception):
    pass


@pytest.mark.timeout(60)
def test_nothing_of_a_failed_fit_stays_on_the_scheduler(process_client):
    keys = []
    with pytest.raises(FitFailed) as excinfo:
        with execution_backend(use_dask=True, client=process_client) as backend:
            data = backend.scatter(np.arange(50_000.0))
            keyed = backend.submit(np.sum, data, key="sum-of-data")
            mapped = backend.map(slow_square, range(6), delay=1.0)
            keys = [data.key, keyed.key, *[future.key for future in mapped]]
            assert keyed.result() == np.arange(50_000.0).sum()
            # the fit fails while tasks run; the traceback keeps every future referenced
            raise FitFailed(data, keyed, mapped)
    assert excinfo.value.args[1].key in keys
    assert wait_until(lambda: not process_client.run_on_scheduler(scheduler_has, keys=keys))
    assert not set(keys) & set(process_client.who_has())


@pytest.mark.timeout(60)
def test_temporary_cluster_is_closed_when_the_fit_fails():
    with pytest.raises(FitFailed):
        with execution_backend(use_dask=True, n_jobs=1) as backend:
            client, cluster = backend.client, backend._cluster
            assert backend.submit(slow_square, 2, 0.0).result() == 4
            raise FitFailed
    assert client.status == "closed"
    assert cluster.status.name == "closed"
    backend.close()  # closing again does nothing


# --- soak --------------------------------------------------------------------------------------

def cheap_task(x):
    return x + 1


def resident_bytes():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.timeout(300)
def test_soak_bounded_in_flight_queue_keeps_memory_and_futures_bounded(process_client):
    n_tasks, in_flight = 2000, 32
    tasks_before = process_client.run_on_scheduler(scheduler_task_count)
    futures_before = len(process_client.futures)
    with execution_backend(use_dask=True, client=process_client) as backend:
        submitted = in_flight
        ac = backend.as_completed(backend.map(cheap_task, range(in_flight)))
        total, done, most_held = 0, 0, 0
        for future in ac:
            total += future.result()
            done += 1
            if done == 500:
                baseline = resident_bytes()
            if submitted < n_tasks:
                ac.add(backend.submit(cheap_task, submitted))
                submitted += 1
            del future
            if done % 500 == 0:
                most_held = max(most_held, len(process_client.futures) - futures_before)
        grown = resident_bytes() - baseline
    assert done == n_tasks and total == sum(range(1, n_tasks + 1))
    assert most_held <= in_flight + 1  # futures are dropped as soon as their result is read
    assert grown < 64 * 2**20  # resident memory of this process, over 1,500 tasks
    assert wait_until(lambda: len(process_client.futures) <= futures_before)
    assert wait_until(
        lambda: process_client.run_on_scheduler(scheduler_task_count) <= tasks_before)


class MemoryProbe:
    """A callback that samples this process's resident memory and its live futures
    (and the futures a Dask client holds)."""

    def __init__(self, at_generation, client=None):
        self.at_generation, self.client, self.samples = at_generation, client, []

    def on_generation(self, search, record):
        if record["generation"] in (self.at_generation, search.generations):
            import concurrent.futures
            import gc

            gc.collect()
            kinds = (concurrent.futures.Future,)
            if self.client is not None:
                import distributed

                kinds += (distributed.Future,)
            futures = sum(isinstance(obj, kinds) for obj in gc.get_objects())
            held = 0 if self.client is None else len(self.client.futures)
            self.samples.append((resident_bytes(), futures, held))


@pytest.mark.timeout(400)
@pytest.mark.parametrize("where", ["dask-processes", "local"])
def test_soak_steady_state_search_of_5000_evaluations(where, request):
    from sklearn.linear_model import RidgeClassifier

    X, y = make_classification(n_samples=40, n_features=4, random_state=0)
    client, backend, futures_before = None, {}, 0
    if where == "dask-processes":
        client = request.getfixturevalue("process_client")
        backend = {"use_dask": True, "client": client}
        tasks_before = client.run_on_scheduler(scheduler_task_count)
        futures_before = len(client.futures)
    probe = MemoryProbe(at_generation=10, client=client)
    search = GeneticSearchCV(RidgeClassifier(), {"alpha": Continuous(1e-6, 1e6, log=True)},
                             population_size=50, generations=99, cv=2,
                             strategy="steady_state", callbacks=[probe], refit=False,
                             random_state=0, **backend)
    search.fit(X, y)
    assert search.history_["evaluations"].sum() == 5000
    assert set(search.cv_results_["status"]) == {"ok"}
    (rss_early, futures_early, held_early), (rss_end, futures_end, held_end) = probe.samples
    assert rss_end - rss_early < 100 * 2**20  # bytes over 4,500 evaluations
    assert futures_end <= futures_early + 8  # no future is kept per evaluation
    if client is not None:
        # the client holds what is in flight only, and nothing of the search afterwards,
        # and the scheduler has forgotten every task of it
        assert max(held_early, held_end) - futures_before <= 64
        assert wait_until(lambda: len(client.futures) <= futures_before)
        assert wait_until(lambda: client.run_on_scheduler(scheduler_task_count) <= tasks_before)


# --- interrupted client -----------------------------------------------------------------------

CHECKPOINTED_SEARCH = """
import json, sys, time
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from dasktrain import GeneticSearchCV
from dasktrain.space import Continuous

class Slowly:  # leaves time to kill this process between generations
    def on_generation(self, search, record):
        time.sleep(float(sys.argv[3]))

X, y = make_classification(n_samples=60, n_features=4, random_state=0)
search = GeneticSearchCV(LogisticRegression(), {"C": Continuous(1e-3, 1e3, log=True)},
                         population_size=4, generations=4, cv=2, random_state=0,
                         checkpoint=sys.argv[1], callbacks=[Slowly()], refit=False)
search.fit(X, y)
with open(sys.argv[2], "w") as out:
    json.dump({"params": [p["C"] for p in search.cv_results_["params"]],
               "scores": list(search.cv_results_["mean_test_score"]),
               "best": search.best_params_["C"]}, out)
"""


@pytest.mark.timeout(240)
def test_killed_client_resumes_from_its_checkpoint_with_the_same_result(tmp_path):
    import json
    import subprocess
    import sys

    script = tmp_path / "search.py"
    script.write_text(CHECKPOINTED_SEARCH)
    checkpoint, out = tmp_path / "search.ckpt", tmp_path / "result.json"
    uninterrupted = tmp_path / "uninterrupted.json"
    subprocess.run([sys.executable, str(script), str(tmp_path / "other.ckpt"),
                    str(uninterrupted), "0"], check=True, timeout=200)

    child = subprocess.Popen([sys.executable, str(script), str(checkpoint), str(out), "3"])
    try:
        assert wait_until(checkpoint.exists, timeout=120)
        time.sleep(0.5)
        child.send_signal(signal.SIGKILL)  # mid-search, between or during generations
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert not out.exists()  # it was killed before the end
    subprocess.run([sys.executable, str(script), str(checkpoint), str(out), "0"], check=True,
                   timeout=200)
    assert json.loads(out.read_text()) == json.loads(uninterrupted.read_text())

    # a checkpoint cut short (a crash while writing) is never read as valid
    data = checkpoint.read_bytes()
    checkpoint.write_bytes(data[: len(data) // 2])
    failed = subprocess.run([sys.executable, str(script), str(checkpoint), str(out), "0"],
                            capture_output=True, text=True, timeout=200)
    assert failed.returncode != 0
    assert "'checkpoint'" in failed.stderr and "ValueError" in failed.stderr


# --- a user's cluster: never destroy what is not this fit's (issue 18) -------------------------

def publish_and_persist(client):
    """The user's own things on their cluster: scattered data on each worker, a persisted
    dask array, a published dataset."""
    import dask.array as da

    mine = [client.scatter(np.arange(1000.0) + index, workers=[address])
            for index, address in enumerate(sorted(client.scheduler_info()["workers"]))]
    array = da.arange(10_000, chunks=1000).persist()
    client.publish_dataset(users_table=client.scatter(np.ones(50)))
    return mine, array


@pytest.mark.timeout(150)
def test_a_stuck_fit_on_a_users_cluster_never_restarts_workers_holding_their_data(tmp_path):
    X, y = small_data()
    space = {"behaviour": Categorical(["ok", "native"])}
    with ProcessCluster(n_workers=2) as cluster:
        client = cluster.client()
        mine, array = publish_and_persist(client)
        pids = cluster.worker_pids()
        search = GeneticSearchCV(FaultyClassifier(pid_dir=str(tmp_path)), space,
                                 population_size=2, generations=0, cv=2, eval_timeout=1.0,
                                 random_state=0, use_dask=True, client=client)
        with pytest.warns(RuntimeWarning, match="did not restart the Dask worker.*not this "
                          "fit's.*recycle='always'") as record:
            search.fit(X, y)
        assert len([w for w in record if "did not restart" in str(w.message)]) == 1
        assert sorted(search.cv_results_["status"]) == ["ok", "timeout"]
        # nothing of the user's was lost, no worker was restarted
        assert cluster.worker_pids() == pids
        assert [part.sum() for part in client.gather(mine)] == [499500.0, 500500.0]
        assert int(array.sum().compute()) == sum(range(10_000))
        assert client.get_dataset("users_table").result().sum() == 50


@pytest.mark.timeout(120)
def test_recycle_policy_decides_what_a_users_cluster_may_lose():
    with ProcessCluster(n_workers=1) as cluster:
        client = cluster.client()
        mine = client.scatter(np.arange(10.0))
        address = next(iter(cluster.worker_pids()))
        for policy in ("own", "never"):
            with execution_backend(use_dask=True, client=client, recycle=policy) as backend:
                slots = backend.n_slots
                assert backend.submit(slow_square, 2, 0.0).result() == 4
                with pytest.warns(RuntimeWarning, match="did not restart"):
                    assert not backend.recycle(address)
                assert backend.n_slots == max(1, slots - 1)  # the stuck thread's slot is lost
        assert client.gather(mine).sum() == 45
        # with only this fit's data on it, "own" restarts it; "always" is the user's consent
        client.cancel(mine)
        del mine
        assert wait_until(lambda: not client.has_what()[address])
        with execution_backend(use_dask=True, client=client, recycle="own") as backend:
            kept = backend.scatter(np.ones(3))
            assert backend.recycle(address)
            assert backend.submit(np.sum, kept).result() == 3  # its data was sent again
        client.wait_for_workers(1, timeout=60)
        address = next(iter(cluster.worker_pids()))
        theirs = client.scatter(np.ones(4))
        with execution_backend(use_dask=True, client=client, recycle="always") as backend:
            assert backend.recycle(address)
        assert wait_until(lambda: theirs.status != "finished", 30)


# --- every worker gone, again and again; the scheduler gone ----------------------------------

def kill_every_worker(cluster, with_nannies: bool) -> None:
    """SIGKILL every worker process (and their nannies: nothing restarts them)."""
    if with_nannies:
        for process in cluster.processes[1:]:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
    else:
        for pid in cluster.worker_pids().values():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


@pytest.mark.timeout(90)
def test_lost_data_with_no_worker_left_fails_with_workers_lost_within_the_timeout():
    """Sending lost data again honours worker_timeout too (it used to wait 30 s per attempt
    and then raise 'No valid workers found')."""
    with ProcessCluster(n_workers=2) as cluster:
        client = cluster.client()
        with execution_backend(use_dask=True, client=client, worker_timeout=3.0) as backend:
            data = backend.scatter(np.ones(10))
            futures = backend.map(weighted_square, range(6), [data] * 6, [1.0] * 6)
            assert wait_until(lambda: any(client.processing().values()), 30)
            kill_every_worker(cluster, with_nannies=True)
            start = time.monotonic()
            with pytest.raises(WorkersLostError, match="no worker for .*worker_timeout=3"):
                backend.gather(futures)
            assert time.monotonic() - start < 20
        assert client.status == "running"


def kill_every_worker_repeatedly(cluster, times: int, every: float) -> threading.Thread:
    def run():
        for _ in range(times):
            time.sleep(every)
            with contextlib.suppress(Exception):
                kill_every_worker(cluster, with_nannies=False)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


@pytest.mark.timeout(240)
def test_every_worker_killed_three_times_changes_no_result():
    """The data is sent again each time (failed attempts are tried again, never a task's
    error), and the search ends with the same results as undisturbed."""
    X, y = small_data()
    space = {"alpha": Continuous(1e-5, 1e-1, log=True)}
    options = {"population_size": 6, "generations": 2, "cv": 2, "random_state": 0}
    undisturbed = GeneticSearchCV(FaultyClassifier(), space, **options).fit(X, y)
    with ProcessCluster(n_workers=2) as cluster:
        client = cluster.client()
        killer = kill_every_worker_repeatedly(cluster, times=3, every=3.0)
        search = GeneticSearchCV(FaultyClassifier(delay=0.6), space, use_dask=True,
                                 client=client, **options)
        search.fit(X, y)
        killer.join()
    assert set(search.cv_results_["status"]) == {"ok"}, search.cv_results_["error"]
    same_results(search.cv_results_, undisturbed.cv_results_)


@pytest.mark.timeout(120)
def test_the_scheduler_killed_mid_fit_is_said_to_be_gone():
    with ProcessCluster(n_workers=1) as cluster:
        client = cluster.client()
        with execution_backend(use_dask=True, client=client, worker_timeout=5.0) as backend:
            data = backend.scatter(np.ones(10))
            futures = backend.map(weighted_square, range(4), [data] * 4, [2.0] * 4)
            os.kill(cluster.processes[0].pid, signal.SIGKILL)
            start = time.monotonic()
            with pytest.raises(WorkersLostError, match="scheduler .* gone") as excinfo:
                backend.gather(futures)
            assert isinstance(excinfo.value, SchedulerLostError)
            assert time.monotonic() - start < 60
            with pytest.raises(SchedulerLostError, match=f"scheduler at {cluster.address}"):
                backend.scatter(np.zeros(5))


# --- an estimator that cannot be pickled ---------------------------------------------------

class HoldsALock(FaultyClassifier):
    def __init__(self, alpha=1e-4, guard=None):
        super().__init__(alpha=alpha)
        self.guard = guard


@pytest.mark.timeout(60)
def test_unpicklable_estimator_is_named_before_any_task_is_sent(process_client):
    X, y = small_data()
    estimator = HoldsALock(guard=threading.Lock())
    tasks_before = process_client.run_on_scheduler(scheduler_task_count)
    search = GeneticSearchCV(estimator, {"alpha": Continuous(1e-4, 1e-1)}, population_size=2,
                             generations=0, cv=2, use_dask=True, client=process_client)
    with pytest.raises(TypeError, match=r"Could not send the HoldsALock HoldsALock\(.*its part "
                       r"\.guard \(lock: .*\) cannot be pickled: TypeError: cannot pickle "
                       r"'_thread.lock' object"):
        search.fit(X, y)
    assert process_client.run_on_scheduler(scheduler_task_count) <= tasks_before
    with execution_backend(use_dask=True, client=process_client) as backend:
        with pytest.raises(TypeError, match=r"its part \[1\]\['weights'\]\.guard"):
            backend.scatter((X, {"weights": estimator}))
        with pytest.raises(TypeError, match=r"Could not send a task .*\.guard"):
            backend.submit(slow_square, estimator)


# --- a local pool, interrupted; a client killed -----------------------------------------------

INTERRUPTED_LOCAL_SEARCH = """
import os, signal, sys, threading, time
sys.path.insert(0, sys.argv[2])
from test_faults import FaultyClassifier, small_data
from dasktrain import GeneticSearchCV
from dasktrain._execution import execution_backend
from dasktrain.space import Continuous

class WhereFitting(FaultyClassifier):
    def fit(self, X, y):
        open(os.path.join(sys.argv[1], str(os.getpid())), "w").close()
        return super().fit(X, y)

X, y = small_data()
def interrupt_once_fitting():  # Ctrl-C, in the middle of the fits
    while not os.listdir(sys.argv[1]):
        time.sleep(0.05)
    time.sleep(1.0)
    os.kill(os.getpid(), signal.SIGINT)

threading.Thread(target=interrupt_once_fitting, daemon=True).start()
search = GeneticSearchCV(WhereFitting(delay=30.0), {"alpha": Continuous(1e-4, 1e-1)},
                         population_size=4, generations=1, cv=2, n_jobs=2, random_state=0)
start = time.monotonic()
try:
    search.fit(X, y)
except KeyboardInterrupt:
    print("interrupted", round(time.monotonic() - start, 1), flush=True)
start = time.monotonic()
with execution_backend(n_jobs=2) as backend:  # the next fit is not delayed by the last one
    assert backend.gather(backend.map(abs, [-1, -2])) == [1, 2]
print("next", round(time.monotonic() - start, 1), flush=True)
"""


@pytest.mark.timeout(120)
def test_interrupting_a_local_search_stops_its_pool(tmp_path):
    import subprocess
    import sys

    script = tmp_path / "search.py"
    script.write_text(INTERRUPTED_LOCAL_SEARCH)
    fitting = tmp_path / "fitting"
    fitting.mkdir()
    tests_dir = os.path.dirname(os.path.abspath(__file__))
    # SIGINT at its default in the child (as in a terminal), even when this test runner was
    # started in the background, where SIGINT is ignored and its children inherit that
    out = subprocess.run([sys.executable, str(script), str(fitting), tests_dir],
                         capture_output=True, text=True, timeout=100, check=False,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert out.returncode == 0, out.stderr[-3000:]
    lines = dict(line.split() for line in out.stdout.splitlines())
    assert "interrupted" in lines  # KeyboardInterrupt reached the caller
    # not after the 30 s fits the interrupted search left (a new pool starts in seconds)
    assert float(lines["next"]) < 20
    pids = {int(path.name) for path in fitting.iterdir()}
    assert pids and os.getpid() not in pids
    assert not any(process_alive(pid) for pid in pids)  # their abandoned fits were stopped


KILLED_LOCAL_CLIENT = """
import os, sys, time
from dasktrain._execution import _local, execution_backend

_local.POOL_IDLE_SECONDS = float(sys.argv[1])
with execution_backend(n_jobs=2) as backend:
    pids = set(backend.gather([backend.submit(os.getpid) for _ in range(4)]))
print(" ".join(map(str, sorted(pids))), flush=True)
time.sleep(600)  # killed here
"""


@pytest.mark.timeout(90)
def test_pool_processes_of_a_killed_client_exit_after_the_idle_timeout(tmp_path):
    import subprocess
    import sys

    script = tmp_path / "client.py"
    script.write_text(KILLED_LOCAL_CLIENT)
    idle = 3.0
    child = subprocess.Popen([sys.executable, str(script), str(idle)], stdout=subprocess.PIPE,
                             text=True)
    try:
        pids = [int(pid) for pid in child.stdout.readline().split()]
        assert pids
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
        assert all(process_alive(pid) for pid in pids)  # idle, not yet timed out
        # loky: an idle process exits after the timeout, then waits up to 30 s for the
        # (dead) client to acknowledge it
        assert wait_until(lambda: not any(process_alive(pid) for pid in pids), idle + 45)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
