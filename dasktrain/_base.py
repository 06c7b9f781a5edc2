"""What every dasktrain estimator shares: where it runs, parameter checks, dask inputs."""

from __future__ import annotations

import numbers

from sklearn.base import clone

from ._execution import check_client, execution_backend, is_dask_collection
from .utils._dask_data import blockwise
from .utils._validation import Predicate, validate_params

#: Docstring text written once and substituted with ``%(name)s`` in the estimators.
SHARED_DOCS = {
    "use_dask": """use_dask : bool, default=False
        False runs the work in this process (with `n_jobs` local processes);
        True runs the same work on a Dask cluster and gives the same result.""",
    "client": """client : distributed.Client or None, default=None
        The Dask client to use when ``use_dask=True``. None means the current
        client if there is one, else a temporary LocalCluster on 127.0.0.1 that
        ``fit`` starts and closes.""",
    "n_jobs": """n_jobs : int or None, default=None
        Local parallelism when ``use_dask=False`` (None means 1, -1 all cores),
        and the number of workers of a temporary LocalCluster otherwise.""",
    "random_state": """random_state : int, RandomState instance or None, default=None
        Seeds every random choice of the fit through a
        :class:`numpy.random.SeedSequence`; an int gives the same result on
        every backend.""",
}


def fill_doc(obj):
    """Substitute :data:`SHARED_DOCS` into ``obj.__doc__`` (``%(use_dask)s`` ...)."""
    if obj.__doc__:
        obj.__doc__ = obj.__doc__ % SHARED_DOCS
    return obj


def estimator_instance(*methods: str) -> Predicate:
    """The constraint "an estimator instance with these methods", which refuses a class.

    A class such as ``LogisticRegression`` has the methods too (unbound), so
    checking for methods alone lets it through to fail later, on the workers.

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> check = estimator_instance("fit")
    >>> check.is_satisfied_by(LogisticRegression()), check.is_satisfied_by(LogisticRegression)
    (True, False)
    """
    names = " and ".join(f"'{method}'" for method in methods)
    return Predicate(
        lambda value: not isinstance(value, type)
        and all(callable(getattr(value, method, None)) for method in methods),
        f"an estimator instance implementing {names} (an instance such as "
        "LogisticRegression(), not the class LogisticRegression)",
    )


def check_task_of(owner: str, estimator, task: str, alternative: str) -> None:
    """Refuse a classifier given where a regressor is needed, and the converse.

    `alternative` names the estimator to use instead. An estimator that
    declares neither (no scikit-learn estimator type) is accepted as it is.

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> check_task_of("RepeatedRegressor", LogisticRegression(), "regression",
    ...               "RepeatedClassifier")
    Traceback (most recent call last):
    ...
    ValueError: The 'estimator' parameter of RepeatedRegressor must be a regressor. Got LogisticRegression(), a classifier; use RepeatedClassifier for it.
    """
    from sklearn.base import is_classifier, is_regressor

    wrong = ("classifier" if task == "regression" and is_classifier(estimator) else
             "regressor" if task == "classification" and is_regressor(estimator) else None)
    if wrong is not None:
        wanted = "regressor" if task == "regression" else "classifier"
        raise ValueError(
            f"The 'estimator' parameter of {owner} must be a {wanted}. Got {estimator!r}, "
            f"a {wrong}; use {alternative} for it."
        )


def _is_n_jobs(value) -> bool:
    return value is None or (
        isinstance(value, numbers.Integral) and not isinstance(value, bool) and value != 0
    )


class ParallelEstimatorMixin:
    """Mixin for estimators that take ``use_dask``, ``client`` and ``n_jobs``.

    Subclasses declare ``_parameter_constraints`` for their own parameters and
    call :meth:`_validate_params` first thing in ``fit``, then run their work
    inside ``with self._execution_backend() as backend:``.
    """

    _parameter_constraints: dict = {}
    _shared_constraints: dict = {
        "use_dask": ["boolean"],
        "client": ["client"],
        "n_jobs": [Predicate(_is_n_jobs, "an int other than 0, or None")],
    }

    def _validate_params(self) -> None:
        name = type(self).__name__
        constraints = {**self._shared_constraints, **self._parameter_constraints}
        validate_params(name, self.get_params(deep=False), constraints)
        client = getattr(self, "client", None)
        check_client(client, name)
        if client is not None and not getattr(self, "use_dask", False):
            raise ValueError(
                f"The 'client' parameter of {name} is only used with use_dask=True. "
                "Got a client with use_dask=False; pass use_dask=True to run on that cluster."
            )

    def _execution_backend(self, **options):
        """The backend of one fit; `options` (e.g. ``isolate``, ``worker_timeout``)
        are passed on to :func:`~dasktrain._execution.execution_backend`."""
        return execution_backend(
            use_dask=getattr(self, "use_dask", False),
            client=getattr(self, "client", None),
            n_jobs=getattr(self, "n_jobs", None),
            **options,
        )

    def _progress(self, backend):
        """A context manager giving a callable called as each output task ends, or None."""
        import contextlib

        return contextlib.nullcontext(None)

    def _fit_by_graph(self, X, y, **fit_params):
        """Fit as :func:`~dasktrain.delayed_fit` describes it: the one path of both.

        ``self._fit_graph`` checks everything and describes the work (before
        any work is sent; the backend is opened only when the description
        needs its number of workers, or to run it), :func:`~dasktrain._delayed.run_graph`
        runs it on this estimator's backend, and ``self._assemble`` sets the
        fitted attributes from the results.
        """
        import contextlib

        from ._delayed import run_graph

        with contextlib.ExitStack() as stack:
            opened = []

            def backend():
                if not opened:
                    opened.append(stack.enter_context(self._execution_backend()))
                return opened[0]

            graph, outputs = self._fit_graph(X, y, n_workers=lambda: backend().n_workers,
                                             **fit_params)
            with self._progress(backend()) as on_done:
                results = run_graph(backend(), graph, outputs, on_done=on_done)
        return self._assemble(results)

    def _blockwise(self, method: str, X):
        """Apply the fitted ``method`` to each block of a dask collection `X`.

        Returns a dask collection; nothing is computed or gathered here.
        """
        return blockwise(self, method, X)

    def __sklearn_clone__(self):
        """Clone as scikit-learn does, but share the ``client`` rather than copy it.

        A :class:`distributed.Client` holds sockets and an event loop and
        cannot be deep-copied; a clone uses the same cluster as its original.
        """
        params = self.get_params(deep=False)
        client = params.pop("client", None)
        params = {name: clone(value, safe=False) for name, value in params.items()}
        if "client" in self.get_params(deep=False):
            params["client"] = client
        return type(self)(**params)

    def __getstate__(self):
        """Pickle without the ``client``: a Client cannot travel or be saved.

        An unpickled estimator has ``client=None``; with ``use_dask=True`` it
        then runs on the current client, or a temporary LocalCluster.
        """
        state = super().__getstate__()
        if state.get("client") is not None:
            state = {**state, "client": None}
        return state


def blockwise_if_dask(method):
    """Decorate a predict-like method so a dask input is handled block by block."""
    import functools

    @functools.wraps(method)
    def wrapper(self, X, *args, **kwargs):
        if is_dask_collection(X):
            if args or kwargs:
                raise TypeError(
                    f"{type(self).__name__}.{method.__name__} takes no other argument with a "
                    f"dask X (it runs block by block). Got {len(args) + len(kwargs)}; compute "
                    "X first to pass them."
                )
            return self._blockwise(method.__name__, X)
        return method(self, X, *args, **kwargs)

    return wrapper
