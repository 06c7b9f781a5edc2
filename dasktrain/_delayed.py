"""A fit described once, as a graph of content-keyed tasks, that ``fit`` runs or ``delayed_fit`` returns.

An ensemble's fit has two halves. Its estimator method ``_fit_graph`` checks
the inputs and parameters on the client and describes every member fit (every
repeat, every (estimator, fold) pair, every partition) as a task of a
:class:`FitGraph`, whose inputs are the data, sent once. Its method
``_assemble`` turns the results of the graph's output tasks into the fitted
estimator. ``fit`` runs the graph on its backend (:func:`run_graph`: local
processes or a Dask cluster, each output fetched as its task ends);
:func:`delayed_fit` turns the same graph into :mod:`dask.delayed` objects, to
compute on any Dask scheduler, alone or with other delayed fits. Nothing here
imports :mod:`distributed`.

Every task is keyed by its content (its function and its arguments, the data
by their token), so that equal tasks are one task: within one fit, and across
delayed fits computed together.
"""

from __future__ import annotations

import copy
import numbers
import uuid
from dataclasses import dataclass, field

from sklearn.base import clone
from sklearn.utils.validation import has_fit_parameter

from .utils._data import take_rows
from .utils._dask_data import one_column_per_block, without_client
from .utils._random import random_state_params, set_random_states

__all__ = ["FitGraph", "delayed_fit", "fit_clone", "run_graph", "seeded_clone", "to_delayed"]


# --------------------------------------------------------------------------------------
# The task that every ensemble uses for its member fits.
# --------------------------------------------------------------------------------------


def is_seeded(estimator) -> bool:
    """Whether every (nested) ``random_state`` of `estimator` is an int (or it has none).

    Only then are two fits of equal estimators on equal data the same fit,
    which may be run once.

    Examples
    --------
    >>> from sklearn.tree import DecisionTreeClassifier
    >>> is_seeded(DecisionTreeClassifier(random_state=0)), is_seeded(DecisionTreeClassifier())
    (True, False)
    """
    params = estimator.get_params(deep=True) if hasattr(estimator, "get_params") else {}
    return all(isinstance(params[name], numbers.Integral)
               for name in random_state_params(estimator)) if params else True


def fit_with_weights(estimator, X, y, sample_weight=None):
    """``estimator.fit(X, y[, sample_weight])``, returning `estimator` itself.

    What ``fit`` returns is ignored: an estimator whose ``fit`` returns None
    (against scikit-learn's convention) is still the fitted object.
    """
    if sample_weight is None:
        estimator.fit(X, y)
    else:
        estimator.fit(X, y, sample_weight=sample_weight)
    return estimator


def seeded_clone(estimator, seed: int):
    """A clone of `estimator` whose every (nested) ``random_state`` is set from `seed`.

    The one way dasktrain seeds a member: each parameter gets its own seed
    derived from `seed` (:func:`~dasktrain.utils.set_random_states`).
    """
    return set_random_states(clone(estimator), seed)


def fit_clone(estimator, X, y, seed=None, rows=None, sample_weight=None):
    """Fit a clone of `estimator` and return it: the task of every member fit.

    Parameters
    ----------
    estimator : estimator object
        Cloned, never changed.
    X, y : data
        All the data (sent once); `rows` selects the training rows.
    seed : int or None, default=None
        When given, every (nested) ``random_state`` of the clone is set from
        it (:func:`~dasktrain.utils.set_random_states`).
    rows : array-like of int or None, default=None
        The training rows of `X`, `y` and `sample_weight`; None means all.
    sample_weight : array-like or None, default=None
        Passed to ``fit`` when not None.

    Examples
    --------
    >>> from sklearn.tree import DecisionTreeClassifier
    >>> model = fit_clone(DecisionTreeClassifier(), [[0], [1], [2]], [0, 1, 1], seed=7,
    ...                   rows=[0, 1])
    >>> model.random_state != 7, model.predict([[1]])[0]
    (True, np.int64(1))
    """
    model = clone(estimator) if seed is None else seeded_clone(estimator, seed)
    if rows is not None:
        X, y, sample_weight = take_rows(X, rows), take_rows(y, rows), take_rows(sample_weight,
                                                                                rows)
    return fit_with_weights(model, X, y, sample_weight)


def check_sample_weight_support(estimators, owner: str) -> None:
    """Raise TypeError, before any work, naming the first estimator without sample_weight.

    `estimators` is a list of ``(description, estimator)`` pairs.
    """
    for description, estimator in estimators:
        if not has_fit_parameter(estimator, "sample_weight"):
            raise TypeError(
                f"The {description} of {owner} ({type(estimator).__name__}) does not support "
                "sample weights: its fit has no 'sample_weight' parameter. Fit without "
                "sample_weight, or use an estimator that accepts it."
            )


# --------------------------------------------------------------------------------------
# The graph.
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Data:
    """An input of the graph: in-memory data sent once (scattered, or one dask key)."""

    name: str


@dataclass(frozen=True)
class Block:
    """Block `index` of the dask collection input `name` (it stays where it is computed)."""

    name: str
    index: int


@dataclass(frozen=True)
class Result:
    """The result of the task `key`, as an argument of a later task or an output."""

    key: str


@dataclass
class Task:
    fn: object
    args: tuple
    kwargs: dict
    gate: bool = False


def _tokenize(*args) -> str:
    """Dask's content token (for the keys of delayed objects)."""
    from dask.base import tokenize

    return tokenize(*args)


def _content_hash(content) -> str:
    """A hash of a task's content, without importing dask (a local fit never needs it).

    Content that cannot be hashed (an unpicklable estimator) gets a key of its own.
    """
    import joblib

    try:
        return joblib.hash(content)
    except Exception:  # merging equal tasks is an optimisation; a unique key is always right
        return uuid.uuid4().hex


@dataclass
class FitGraph:
    """The tasks of one fit, in an order where every task comes after those it uses.

    A task's key is its content with the data named by their place in the
    graph (``"X"``, ``"y"``): enough to merge equal tasks of one fit, and
    nothing to hash. The data's own content tokens enter the keys only when
    the graph becomes :func:`to_delayed` objects, which other graphs may share.

    Examples
    --------
    >>> import numpy as np
    >>> graph = FitGraph()
    >>> X = graph.data("X", np.arange(4.0))
    >>> a = graph.task(np.sum, X)
    >>> graph.task(np.sum, X) == a, len(graph.tasks)
    (True, 1)
    """

    data_values: dict = field(default_factory=dict)
    collections: dict = field(default_factory=dict)
    tasks: dict = field(default_factory=dict)

    def data(self, name: str, value):
        """The input `value`, sent once; None stays None (an absent optional argument)."""
        if value is None:
            return None
        self.data_values[name] = value
        return Data(name)

    def blocks(self, name: str, collection) -> list[Block]:
        """The row blocks of the dask array or dataframe `collection`, one input each."""
        collection = one_column_per_block(collection)
        self.collections[name] = collection
        n_blocks = (collection.numblocks[0] if hasattr(collection, "numblocks")
                    else collection.npartitions)
        return [Block(name, index) for index in range(n_blocks)]

    def task(self, fn, *args, gate: bool = False, pure: bool = True, **kwargs) -> Result:
        """Add ``fn(*args, **kwargs)``, keyed by its content; an equal task is not added twice.

        With ``gate=True``, :func:`run_graph` waits for this task (and raises
        its error) before it submits any later task: for checks that must pass
        before any fit starts. With ``pure=False`` (a fit whose result varies
        from run to run, e.g. with ``random_state=None``) the task gets a key
        of its own, so that it is never merged with an equal one.
        """
        content = (fn.__module__, fn.__qualname__, self._content(args), self._content(kwargs),
                   None if pure else uuid.uuid4().hex)
        key = f"{fn.__name__}-{_content_hash(content)}"
        if key not in self.tasks:
            self.tasks[key] = Task(fn, args, kwargs, gate)
        return Result(key)

    def _content(self, value):
        if isinstance(value, (Data, Block, Result)):
            return value
        if isinstance(value, (list, tuple)):
            return (type(value).__name__, [self._content(item) for item in value])
        if isinstance(value, dict):
            return ("dict", sorted((key, self._content(item)) for key, item in value.items()))
        return value


def _placeholders(value):
    """The Data, Block and Result placeholders in `value` (lists, tuples, dicts), in order."""
    if isinstance(value, (Data, Block, Result)):
        yield value
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _placeholders(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _placeholders(item)


def _substitute(value, lookup):
    """`value` with every Data, Block and Result replaced by ``lookup(placeholder)``."""
    if isinstance(value, (Data, Block, Result)):
        return lookup(value)
    if isinstance(value, list):
        return [_substitute(item, lookup) for item in value]
    if isinstance(value, tuple):
        return tuple(_substitute(item, lookup) for item in value)
    if isinstance(value, dict):
        return {key: _substitute(item, lookup) for key, item in value.items()}
    return value


def _lookup(data: dict, blocks: dict, results: dict):
    """What replaces each placeholder: the sent data, the blocks, the tasks made so far."""

    def lookup(placeholder):
        if isinstance(placeholder, Data):
            return data[placeholder.name]
        if isinstance(placeholder, Block):
            return blocks[placeholder.name][placeholder.index]
        return results[placeholder.key]

    return lookup


def distinct_results(results: list) -> list:
    """`results` where an object that appears again is replaced by a copy of it.

    Two equal member fits are one task; the fitted estimator gets two
    objects all the same, as if they had been fitted apart.
    """
    seen: set[int] = set()
    distinct = []
    for result in results:
        distinct.append(copy.deepcopy(result) if id(result) in seen else result)
        seen.add(id(result))
    return distinct


def run_graph(backend, graph: FitGraph, outputs: list, on_done=None) -> list:
    """Run `graph` on `backend`; return the results of `outputs`, in order.

    The data are scattered once, every task is submitted (with its content
    key) before any result is waited for, except after a gate; each output's
    result is fetched as soon as its task ends (a fitted forest is moved
    while the other fits still run). On any error, or an interrupt, the
    submitted tasks are cancelled. `on_done`, if given, is called with no
    argument as each output task ends.
    """
    futures: dict = {}
    handles: list = []
    try:
        sent = {name: backend.scatter(value) for name, value in graph.data_values.items()}
        blocks = {name: backend.blocks(collection)
                  for name, collection in graph.collections.items()}
        handles = [*sent.values(), *(future for futures_ in blocks.values() for future in futures_)]
        lookup = _lookup(sent, blocks, futures)
        for key, task in graph.tasks.items():
            future = backend.submit(task.fn, *_substitute(task.args, lookup), key=key,
                                    **_substitute(task.kwargs, lookup))
            futures[key] = future
            if task.gate:
                backend.gather([future])
        wanted = list(dict.fromkeys(output.key for output in outputs))
        if on_done is not None:
            for key in wanted:
                futures[key].add_done_callback(lambda _: on_done())
        results = {}
        index_of = {id(futures[key]): key for key in wanted}
        for future in backend.as_completed([futures[key] for key in wanted]):
            results[index_of[id(future)]] = future.result()
    except BaseException:
        backend.cancel(list(futures.values()))
        raise
    finally:
        backend.release([*futures.values(), *handles])
    return distinct_results([results[output.key] for output in outputs])


def to_delayed(graph: FitGraph, outputs: list) -> list:
    """The :class:`dask.delayed.Delayed` of each output of `graph`.

    Each in-memory input is one key named by its content token, each block
    of a dask input is that collection's own key, and each task's key is its
    key in the graph made global by the keys of what it uses, so that graphs
    of several fits merged by :func:`dask.compute` share their data and their
    equal tasks.
    """
    import numpy as np
    from dask import delayed

    sent = {name: delayed(value, name=f"data-{_tokenize(value)}", traverse=False)
            for name, value in graph.data_values.items()}
    blocks = {name: list(np.asarray(collection.to_delayed(), dtype=object).ravel())
              for name, collection in graph.collections.items()}
    made: dict = {}
    lookup = _lookup(sent, blocks, made)
    for key, task in graph.tasks.items():
        used = [lookup(placeholder).key for placeholder in
                _placeholders((task.args, task.kwargs))]
        made[key] = delayed(task.fn, pure=True)(
            *_substitute(task.args, lookup),
            dask_key_name=f"{task.fn.__name__}-{_tokenize(key, used)}",
            **_substitute(task.kwargs, lookup))
    return [made[output.key] for output in outputs]


def assemble(estimator, results: list):
    """A copy of the planned `estimator`, fitted from the `results` of its graph's outputs.

    The results are copied: a task shared with another delayed fit computed in
    the same graph gives each fitted estimator its own members.
    """
    fitted = copy.copy(estimator)
    return fitted._assemble(distinct_results(copy.deepcopy(results)))


def delayed_fit(estimator, X, y=None, **fit_params):
    """The fit of `estimator` on `X`, `y` as a lazy :mod:`dask.delayed` graph.

    ``delayed_fit(est, X, y).compute()`` returns a fitted copy of `est`, equal
    to ``clone(est).fit(X, y)`` for the same ``random_state``; `est` itself is
    not changed. RepeatedClassifier/RepeatedRegressor, StackingEnsemble and
    PartitionedEnsemble give one task per member or (estimator, fold) fit,
    the same tasks that their ``fit`` runs; any other scikit-learn estimator
    is one task. The parameters and the data are checked now, on this
    process, before anything is computed.

    Every task is keyed by its content and `X` and `y` are one key each, so
    several delayed fits computed together (``dask.compute(a, b)``) send the
    data once and fit an equal (estimator, fold) once. The graph computes on
    any Dask scheduler: synchronous, threads, processes or distributed; the
    estimator's own ``use_dask``, ``client`` and ``n_jobs`` are not used (the
    fitted copy has ``client=None``; a dasktrain estimator fitted as one task,
    such as GeneticSearchCV, runs in that task with ``use_dask=False``).

    Parameters
    ----------
    estimator : estimator object
        The estimator to fit; it is cloned.
    X : array-like, sparse matrix, DataFrame, dask array or dataframe
        Training data (dask collections for PartitionedEnsemble only, whose
        blocks never leave the workers).
    y : array-like or None, default=None
        Targets.
    **fit_params : dict
        Passed to the estimator's fit (e.g. ``sample_weight``).

    Returns
    -------
    fit : dask.delayed.Delayed
        Its ``compute()`` is the fitted estimator; ``.visualize()`` draws one
        node per member or fold fit.

    See Also
    --------
    dask.delayed : The lazy objects returned.

    Examples
    --------
    >>> import dask
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.tree import DecisionTreeClassifier
    >>> from dasktrain import RepeatedClassifier, StackingEnsemble, delayed_fit
    >>> X, y = load_iris(return_X_y=True)
    >>> rep = RepeatedClassifier(DecisionTreeClassifier(max_depth=2), n_repeats=3,
    ...                          random_state=0)
    >>> stack = StackingEnsemble([("tree", DecisionTreeClassifier(max_depth=2,
    ...                                                           random_state=0))], cv=3)
    >>> fitted_rep, fitted_stack = dask.compute(delayed_fit(rep, X, y),
    ...                                         delayed_fit(stack, X, y),
    ...                                         scheduler="synchronous")
    >>> len(fitted_rep.estimators_), fitted_stack.stack_method_
    (3, ['predict_proba'])
    """
    from dask import delayed

    planned = without_client(clone(estimator))
    if hasattr(planned, "_fit_graph"):
        graph, outputs = planned._fit_graph(X, y, n_workers=None, **fit_params)
        results = to_delayed(graph, outputs)
        name = f"{type(planned).__name__.lower()}-{_tokenize(planned, [r.key for r in results])}"
        return delayed(assemble, pure=True)(planned, results, dask_key_name=name)
    if {"use_dask", "n_jobs"} <= set(planned.get_params(deep=False)):
        # a dasktrain estimator fitted inside one task runs its own work there, in process
        planned.set_params(use_dask=False, n_jobs=None)
    graph = FitGraph()
    extra = {key: graph.data(key, value) for key, value in fit_params.items()}
    output = graph.task(_fit_plain, planned, graph.data("X", X), graph.data("y", y), extra)
    return to_delayed(graph, [output])[0]


def _fit_plain(estimator, X, y, fit_params):
    """Fit a clone of a plain estimator with its fit parameters; return the clone."""
    model = clone(estimator)
    model.fit(X, y, **fit_params)
    return model
