"""``StreamEnvironment``: where a job's sources are declared and its settings live.

A job is a function ``build(env)``; every process that runs the job imports it and calls it on
a fresh environment, so building must be deterministic. ``execute()`` runs the job in this
process (the local executor); ``streamjob run`` does the same from the command line.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
from collections.abc import Callable, Iterable
from typing import Any

from streamjob import errors
from streamjob.api.datastream import DataStream
from streamjob.checkpoint.config import CheckpointConfig, CheckpointingMode
from streamjob.checkpoint.faults import FaultInjector
from streamjob.checkpoint.metadata import CheckpointMetadata
from streamjob.checkpoint.restart import RestartStrategy
from streamjob.checkpoint.restoring import max_parallelism_of
from streamjob.connectors.collection import CollectionSource
from streamjob.connectors.files import TextFileSource
from streamjob.connectors.source import Source
from streamjob.eventtime.strategy import WatermarkStrategy
from streamjob.execution.local_job import LocalJobRunner
from streamjob.execution.results import JobRunResult
from streamjob.runtime.config import ExecutionConfig
from streamjob.runtime.graph import JobGraph, build_job_graph
from streamjob.runtime.local_executor import Progress
from streamjob.runtime.operators.io import SourceOperator
from streamjob.runtime.transformations import Transformation


class StreamEnvironment:
    def __init__(self, parallelism: int = 1, max_parallelism: int | None = None) -> None:
        self._parallelism = parallelism
        self._max_parallelism = max_parallelism
        self._transformations: list[Transformation] = []
        self.auto_watermark_interval_ms = 200
        self.chaining = True
        self.checkpoint_config: CheckpointConfig | None = None
        self.restart_strategy: RestartStrategy | None = None
        self.config = ExecutionConfig()
        self.job_parameters: dict[str, Any] = {}

    @staticmethod
    def get_execution_environment() -> StreamEnvironment:
        return StreamEnvironment()

    # -- settings -------------------------------------------------------------------------
    def set_parallelism(self, parallelism: int) -> StreamEnvironment:
        if parallelism < 1:
            raise errors.JobDefinitionError(f"parallelism must be >= 1, got {parallelism}")
        self._parallelism = parallelism
        return self

    def get_parallelism(self) -> int:
        return self._parallelism

    def set_max_parallelism(self, max_parallelism: int) -> StreamEnvironment:
        self._max_parallelism = max_parallelism
        return self

    def get_max_parallelism(self) -> int | None:
        return self._max_parallelism

    def set_auto_watermark_interval(self, interval_ms: int) -> StreamEnvironment:
        if interval_ms < 1:
            raise errors.JobDefinitionError("the auto-watermark interval must be >= 1 ms")
        self.auto_watermark_interval_ms = interval_ms
        self.config.auto_watermark_interval_ms = interval_ms
        return self

    def disable_operator_chaining(self) -> StreamEnvironment:
        self.chaining = False
        return self

    def enable_checkpointing(
        self,
        interval_ms: int,
        mode: CheckpointingMode = CheckpointingMode.EXACTLY_ONCE,
        *,
        directory: str | None = None,
    ) -> StreamEnvironment:
        """Checkpoint every ``interval_ms`` into ``directory`` (a path, file:// or s3:// URL)."""
        current = self.checkpoint_config
        directory = directory or (current.directory if current else None)
        if directory is None:
            raise errors.JobDefinitionError(
                "checkpointing needs a directory: enable_checkpointing(interval, "
                "directory='s3://bucket/checkpoints') or --checkpoint-dir"
            )
        self.configure_checkpoints(directory=directory, interval_ms=interval_ms, mode=mode)
        return self

    def configure_checkpoints(self, **settings: Any) -> StreamEnvironment:
        """Set any :class:`CheckpointConfig` field (``directory``, ``interval_ms``,
        ``retained``, ``tolerable_failures``, ``from_savepoint``, ...)."""
        current = self.checkpoint_config
        if current is None:
            if "directory" not in settings:
                raise errors.JobDefinitionError("configure_checkpoints needs a directory first")
            self.checkpoint_config = CheckpointConfig(**settings)
        else:
            self.checkpoint_config = dataclasses.replace(current, **settings)
        return self

    def set_restart_strategy(self, strategy: RestartStrategy) -> StreamEnvironment:
        self.restart_strategy = strategy
        return self

    def set_buffer_size(self, records_per_batch: int) -> StreamEnvironment:
        self.config.batch_size = records_per_batch
        return self

    # -- sources --------------------------------------------------------------------------
    def from_source(
        self,
        source: Source,
        watermark_strategy: WatermarkStrategy | None = None,
        source_name: str | None = None,
    ) -> DataStream:
        if not isinstance(source, Source):
            raise errors.JobDefinitionError(f"from_source needs a Source, got {source!r}")
        interval = self.auto_watermark_interval_ms
        t = self._add(
            source_name or f"Source: {source.name}",
            "source",
            operator_factory=lambda: SourceOperator(source, watermark_strategy, interval),
        )
        if source.max_parallelism is not None:
            t.parallelism = min(source.max_parallelism, self._parallelism)
            t.source_max_parallelism = source.max_parallelism  # type: ignore[attr-defined]
        return DataStream(self, t)

    def from_collection(self, collection: Iterable[Any], name: str | None = None) -> DataStream:
        return self.from_source(CollectionSource(collection), None, name or "Source: collection")

    def read_text_file(self, *paths: str) -> DataStream:
        return self.from_source(TextFileSource(*paths), None, "Source: text files")

    # -- building and running -------------------------------------------------------------
    def _add(self, name: str, kind: str, **fields: Any) -> Transformation:
        t = Transformation(id=len(self._transformations), name=name, kind=kind, **fields)
        self._transformations.append(t)
        return t

    def _copy(self, function: Any) -> Any:
        """A private copy of a user function per subtask (functions keep per-subtask fields)."""
        try:
            return copy.deepcopy(function)
        except Exception:
            return function

    def get_job_graph(self, restored: CheckpointMetadata | None = None) -> JobGraph:
        if not any(t.kind == "sink" for t in self._transformations):
            raise errors.JobDefinitionError(
                "the job has no sink: end each stream with sink_to(...), print() or "
                "execute_and_collect()"
            )
        if self.checkpoint_config is not None:
            anonymous = [t.name for t in self._transformations if t.keyed and not t.uid]
            if anonymous:
                raise errors.JobDefinitionError(
                    "with checkpointing, stateful operators need an explicit uid (it names "
                    "their state in checkpoints; graph positions change when a job is edited): "
                    f"add .uid('...') after {', '.join(repr(n) for n in anonymous)}"
                )
        return build_job_graph(
            self._transformations,
            default_parallelism=self._parallelism,
            default_max_parallelism=self._max_parallelism,
            chaining=self.chaining,
            adopted_max_parallelism=None if restored is None else max_parallelism_of(restored),
        )

    def check_connectors(self, checkpoint: CheckpointConfig | None) -> None:
        """Let every sink check its settings against the checkpoint interval the job runs
        with (known only once the command line or the JobManager configured it)."""
        interval = None if checkpoint is None else checkpoint.interval_ms
        for t in self._transformations:
            if t.kind == "sink" and t.connector is not None:
                t.connector.check_checkpointing(interval)

    def build_graph(self, *, adopted_max_parallelism: dict[str, int] | None = None) -> JobGraph:
        """The graph at this environment's parallelism, adopting restored max parallelism."""
        self.get_job_graph()  # validation (sinks, uids)
        return build_job_graph(
            self._transformations,
            default_parallelism=self._parallelism,
            default_max_parallelism=self._max_parallelism,
            chaining=self.chaining,
            adopted_max_parallelism=adopted_max_parallelism,
        )

    def create_runner(
        self,
        faults: FaultInjector | None = None,
        storage: Any = None,
        wrap_storage: Callable[[Any], Any] | None = None,
    ) -> LocalJobRunner:
        self.check_connectors(self.checkpoint_config)
        return LocalJobRunner(
            self.get_job_graph,
            self.config,
            checkpoint=self.checkpoint_config,
            restart=self.restart_strategy,
            faults=faults,
            storage=storage,
            wrap_storage=wrap_storage,
        )

    def execute(
        self,
        job_name: str = "streamjob",
        *,
        on_progress: Callable[[Progress], None] | None = None,
    ) -> JobRunResult:
        """Run the job in this process until its bounded input ends (or it fails)."""
        self.get_job_graph()  # fail fast on a bad graph
        return asyncio.run(self.create_runner().run(on_progress=on_progress))
