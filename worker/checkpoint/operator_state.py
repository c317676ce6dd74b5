"""What each kind of operator puts into a checkpoint, and how it gets it back.

* keyed operators: one canonical blob per key group — the backend's state sections, plus any
  sections the operator adds itself (timers, window buffers) through
  ``snapshot_keyed_sections(kg) -> dict[str, bytes]`` / ``restore_keyed_sections(kg, sections)``;
* sources: their splits with positions (``split``: redistributed round-robin on restore);
* sinks: their pending transactions (``union``: every restored writer sees all of them, and
  commits the ones assigned to it, so a rescale loses none);
* any operator: ``snapshot_operator_state(checkpoint_id) -> {name: (mode, elements)}`` and
  ``restore_operator_state({name: elements})``.
"""

from __future__ import annotations

from typing import Any

from streamjob.connectors.source import SourceSplit
from streamjob.runtime.operators.base import StreamOperator
from streamjob.runtime.operators.io import SinkOperator, SourceOperator
from streamjob.state import canonical

SPLITS = "source-splits"
SINK = "sink-transactions"
_BACKEND_SECTION = "backend"


def keyed_blob(op: StreamOperator, key_group: int) -> bytes:
    backend = op.backend  # type: ignore[attr-defined]
    extra = getattr(op, "snapshot_keyed_sections", None)
    if extra is None:
        return backend.snapshot_key_group(key_group)  # type: ignore[no-any-return]
    sections: dict[str, bytes] = extra(key_group)
    blob = sections.pop(_BACKEND_SECTION, None)
    if blob is None:
        blob = backend.snapshot_key_group(key_group)
    for name, body in sorted(sections.items()):
        blob = canonical.append_section(blob, f"op/{name}", body)
    return blob


def restore_keyed_blob(op: StreamOperator, key_group: int, blob: bytes) -> None:
    op.backend.restore_key_group(key_group, blob)  # type: ignore[attr-defined]
    restore_extra = getattr(op, "restore_keyed_sections", None)
    if restore_extra is not None:
        _, sections = canonical.read_key_group(blob)
        own = {name[3:]: body for name, body in sections if name.startswith("op/")}
        if own:
            restore_extra(key_group, own)


def snapshot_operator_state(
    op: StreamOperator, checkpoint_id: int
) -> dict[str, tuple[str, list[Any]]]:
    if isinstance(op, SourceOperator):
        splits = op.reader.snapshot_splits()
        return {SPLITS: ("split", [[s.split_id, s.position] for s in splits])}
    if isinstance(op, SinkOperator):
        pending = op.writer.snapshot_state(checkpoint_id)
        return {SINK: ("union", list(pending or []))}
    custom = getattr(op, "snapshot_operator_state", None)
    return dict(custom(checkpoint_id)) if custom is not None else {}


def restore_operator_state(op: StreamOperator, state: dict[str, list[Any]]) -> None:
    if isinstance(op, SourceOperator):
        op.restored_splits = [SourceSplit(str(i), p) for i, p in state.get(SPLITS, [])]
        return
    if isinstance(op, SinkOperator):
        op.restored_state = list(state.get(SINK, []))
        return
    custom = getattr(op, "restore_operator_state", None)
    if custom is not None:
        custom(state)
