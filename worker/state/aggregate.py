"""``AggregateFunction`` and ``ReduceFunction``: the user functions behind merging state.

:class:`AggregateFunction` is Flink's (``create_accumulator``, ``add``, ``get_result``,
``merge``); ``AggregatingStateDescriptor`` takes one, window ``aggregate`` takes one too, and
``streamjob.functions`` re-exports both. ``ReducingStateDescriptor`` takes a
:class:`ReduceFunction` or a plain callable ``(a, b) -> c``; :func:`as_reduce_callable` turns
either into the callable the state classes use.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import Any, Generic, TypeVar

IN = TypeVar("IN")
ACC = TypeVar("ACC")
OUT = TypeVar("OUT")
T = TypeVar("T")


class AggregateFunction(abc.ABC, Generic[IN, ACC, OUT]):
    """Incremental aggregation through an accumulator (Flink's ``AggregateFunction``).

    ``add`` and ``merge`` may mutate and return their accumulator argument.
    """

    @abc.abstractmethod
    def create_accumulator(self) -> ACC:
        """A new, empty accumulator."""

    @abc.abstractmethod
    def add(self, value: IN, accumulator: ACC) -> ACC:
        """Fold ``value`` into ``accumulator`` and return the result."""

    @abc.abstractmethod
    def get_result(self, accumulator: ACC) -> OUT:
        """The output for ``accumulator``."""

    @abc.abstractmethod
    def merge(self, a: ACC, b: ACC) -> ACC:
        """Combine two accumulators (merging windows, merged namespaces)."""


class ReduceFunction(abc.ABC, Generic[T]):
    """Combines two values of one type into one (Flink's ``ReduceFunction``)."""

    @abc.abstractmethod
    def reduce(self, value1: T, value2: T) -> T:
        """Combine ``value1`` (the accumulated value) with ``value2`` (the new one)."""


def as_reduce_callable(function: Any, *, what: str) -> Callable[[Any, Any], Any]:
    """``function.reduce`` if it has one, else ``function`` itself if callable.

    ``what`` names the caller in the error (e.g. ``"ReducingStateDescriptor 'sum'"``).
    """
    reduce = getattr(function, "reduce", None)
    if callable(reduce):
        return reduce  # type: ignore[no-any-return]
    if callable(function):
        return function  # type: ignore[no-any-return]
    raise TypeError(
        f"{what} needs a reduce function: a callable (a, b) -> c or an object with "
        f"reduce(a, b); got {function!r} of type {type(function).__name__}"
    )


def check_aggregate_function(function: Any, *, what: str) -> None:
    """Refuse objects that lack any of the four ``AggregateFunction`` methods, naming them."""
    missing = [
        method
        for method in ("create_accumulator", "add", "get_result", "merge")
        if not callable(getattr(function, method, None))
    ]
    if missing:
        raise TypeError(
            f"{what} needs an AggregateFunction (create_accumulator, add, get_result, merge); "
            f"{function!r} of type {type(function).__name__} lacks {', '.join(missing)}"
        )
