"""``ConnectedStreams``: two streams processed together by one two-input operator.

``a.connect(b)`` then ``process(CoProcessFunction)``, ``map(CoMapFunction)`` or
``flat_map(CoFlatMapFunction)``; ``a.connect(b).key_by(k1, k2)`` (or connecting two keyed
streams) gives a keyed operator with keyed state and timers
(``process(KeyedCoProcessFunction)``). Both inputs of a keyed operator must be keyed, with keys
that match (the same key value lands in the same key group on both sides).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from streamjob import errors, functions
from streamjob.runtime.operators import co

if TYPE_CHECKING:
    from streamjob.api.datastream import DataStream


class ConnectedStreams:
    def __init__(self, first: DataStream, second: DataStream) -> None:
        if first.env is not second.env:
            raise errors.JobDefinitionError("connect() needs two streams of the same environment")
        self.first = first
        self.second = second
        self.env = first.env

    def key_by(self, key_selector1: Any, key_selector2: Any) -> ConnectedStreams:
        """Partition both inputs by key, for keyed state and timers in the co-function."""
        return ConnectedStreams(self.first.key_by(key_selector1), self.second.key_by(key_selector2))

    @property
    def is_keyed(self) -> bool:
        from streamjob.api.datastream import KeyedStream

        return isinstance(self.first, KeyedStream) and isinstance(self.second, KeyedStream)

    def _is_half_keyed(self) -> bool:
        from streamjob.api.datastream import KeyedStream

        return isinstance(self.first, KeyedStream) != isinstance(self.second, KeyedStream)

    def process(self, func: Any, name: str | None = None) -> DataStream:
        for method in ("process_element1", "process_element2"):
            if not callable(getattr(func, method, None)):
                raise errors.JobDefinitionError(
                    f"connected process() needs a CoProcessFunction or KeyedCoProcessFunction "
                    f"(process_element1 and process_element2); {func!r} has no {method}()"
                )
        if self._is_half_keyed():
            raise errors.JobDefinitionError(
                "only one of the connected streams is keyed: key both, e.g. "
                "connect(other).key_by(key1, key2)"
            )
        keyed = self.is_keyed
        if isinstance(func, functions.KeyedCoProcessFunction) and not keyed:
            raise errors.JobDefinitionError(
                "a KeyedCoProcessFunction needs keyed inputs: call connect(other).key_by(key1, "
                "key2) first"
            )
        return self._two_input(func, name or ("KeyedCoProcess" if keyed else "CoProcess"))

    def map(self, func: Any, name: str | None = None) -> DataStream:
        return self._two_input(co.CoMapAdapter(func, flat=False), name or "CoMap")

    def flat_map(self, func: Any, name: str | None = None) -> DataStream:
        return self._two_input(co.CoMapAdapter(func, flat=True), name or "CoFlatMap")

    def _two_input(self, func: Any, name: str) -> DataStream:
        from streamjob.api.datastream import DataStream

        if self._is_half_keyed():
            raise errors.JobDefinitionError(
                "only one of the connected streams is keyed: key both, e.g. "
                "connect(other).key_by(key1, key2)"
            )
        env = self.env
        keyed = self.is_keyed
        operator_type = co.KeyedCoProcessOperator if keyed else co.CoProcessOperator
        t = env._add(
            name,
            "two_input",
            inputs=[self.first.transformation, self.second.transformation],
            input_indices=[0, 1],
            operator_factory=lambda: operator_type(env._copy(func)),
            keyed=keyed,
        )
        return DataStream(env, t)
