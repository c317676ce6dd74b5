"""Building a job's graph for an attempt, adopting the restored checkpoint's max parallelism."""

from __future__ import annotations

from collections.abc import Callable

from streamjob.checkpoint.metadata import CheckpointMetadata
from streamjob.runtime.graph import JobGraph

GraphBuilder = Callable[[CheckpointMetadata | None], JobGraph]
