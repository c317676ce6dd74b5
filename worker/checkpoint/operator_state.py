"""What each kind of operator puts into a checkpoint, and how it gets it back.

* keyed operators: one canonical blob per key group — the backend's state sections, plus any
  sections the operator adds itself (timers, window buffers) through
  ``snapshot_operator_sections(kg) -> dict[str, bytes]`` (or ``snapshot_keyed_sections``, which
  also gives the backend's blob) / ``restore_keyed_sections(kg, sections)``. A blob is built as
  its parts (:func:`keyed_blob_parts`): the upload joins a whole file once, in its thread;
  a restore hands views of the bytes it read to the decoders (:func:`restore_keyed_blob`);
* sources: their splits with positions (``split``: redistributed round-robin on restore);
* sinks: their pending transactions (``union``: every restored writer sees all of them, and
  commits the ones assigned to it, so a rescale loses none);
* any operator: ``snapshot_operator_state(checkpoint_id) -> {name: (mode, elements)}`` and
  ``restore_operator_state({name: elements})``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from streamjob.connectors.source import SourceSplit
from streamjob.runtime.operators.base import StreamOperator
from streamjob.runtime.operators.io import SinkOperator, SourceOperator
from streamjob.state import canonical
from streamjob.state.canonical_columns import Part

SPLITS = "source-splits"
SINK = "sink-transactions"
_BACKEND_SECTION = "backend"


def keyed_blob_parts(op: StreamOperator, key_group: int) -> list[Part]:
    """The canonical blob of ``key_group`` as parts: the backend's sections, then the
    operator's own ones (``op/<name>``, sorted by name). Their concatenation is the blob."""
    own = getattr(op, "snapshot_operator_sections", None)
    if own is not None:
        parts = _backend_parts(op, key_group)
        sections: dict[str, bytes] = own(key_group)
    else:
        extra = getattr(op, "snapshot_keyed_sections", None)
        if extra is None:
            return _backend_parts(op, key_group)
        sections = extra(key_group)
        blob = sections.pop(_BACKEND_SECTION, None)
        parts = _backend_parts(op, key_group) if blob is None else [blob]
    canonical.append_sections(
        parts, [(f"op/{name}", body) for name, body in sorted(sections.items())]
    )
    return parts


def capture_keyed_blob(op: StreamOperator, key_group: int) -> Callable[[], list[Part]]:
    """What ``key_group``'s blob needs before its state changes, taken now; the function
    returned builds the blob (:func:`keyed_blob_parts` as it would have been now) later.
    The operator's own sections are serialized now; a backend that can capture
    (``capture_key_group``: the hashmap's copies of immutable values) defers its part."""
    capture = getattr(op.backend, "capture_key_group", None)  # type: ignore[attr-defined]
    own = getattr(op, "snapshot_operator_sections", None)
    if capture is None or (own is None and hasattr(op, "snapshot_keyed_sections")):
        parts = keyed_blob_parts(op, key_group)
        return lambda: parts
    captured = capture(key_group)
    sections: dict[str, bytes] = {} if own is None else own(key_group)

    def build() -> list[Part]:
        parts: list[Part] = captured.parts()
        canonical.append_sections(
            parts, [(f"op/{name}", body) for name, body in sorted(sections.items())]
        )
        return parts

    return build


def keyed_blob(op: StreamOperator, key_group: int) -> bytes:
    return b"".join(keyed_blob_parts(op, key_group))


def _backend_parts(op: StreamOperator, key_group: int) -> list[Part]:
    backend = op.backend  # type: ignore[attr-defined]
    parts = getattr(backend, "snapshot_key_group_parts", None)
    if parts is not None:
        return parts(key_group)  # type: ignore[no-any-return]
    return [backend.snapshot_key_group(key_group)]


def restore_keyed_blob(op: StreamOperator, key_group: int, blob: bytes | memoryview) -> None:
    """Load one key group's blob (a view into a larger read is not copied whole)."""
    op.backend.restore_key_group(key_group, blob)  # type: ignore[attr-defined]
    restore_extra = getattr(op, "restore_keyed_sections", None)
    if restore_extra is not None:
        _, sections = canonical.split_key_group(blob)
        own = {name[3:]: bytes(body) for name, body in sections if name.startswith("op/")}
        if own:
            restore_extra(key_group, own)


def snapshot_operator_state(
    op: StreamOperator, checkpoint_id: int
) -> dict[str, tuple[str, list[Any]]]:
    if isinstance(op, SourceOperator):
        splits = op.snapshot_splits(checkpoint_id)
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
