"""Human-readable text for ``streamjob checkpoints list/inspect`` (pure: dicts in, text out).

The dicts are those of :mod:`.inspection` (also printed as they are with ``--json``).
"""

from __future__ import annotations

import datetime
from typing import Any


def human_bytes(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(size) < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"  # pragma: no cover - loop returns


def iso_time(timestamp_ms: int) -> str:
    moment = datetime.datetime.fromtimestamp(timestamp_ms / 1000, tz=datetime.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _checkpoint_line(entry: dict[str, Any]) -> str:
    files = f"{entry['files']} file{'s' if entry['files'] != 1 else ''}"
    text = f"    {entry['name']:<12} {human_bytes(entry['size_bytes']):>10}  {files}"
    if "error" in entry:
        return f"{text}  UNREADABLE: {entry['error']}"
    if entry["complete"]:
        return (
            f"{text}  {entry['kind']}  {iso_time(entry['timestamp_ms'])}  "
            f"took {entry['duration_ms']} ms"
        )
    return f"{text}  incomplete (no _metadata: garbage, removed when the job next starts)"


def render_listing(listing: dict[str, Any]) -> str:
    lines = [f"checkpoints under {listing['location']}:"]
    if not listing["jobs"] and not listing["savepoints"]:
        lines.append("  (none: no chk-N directories found)")
    for job in listing["jobs"]:
        done, partial = job["completed"], job["incomplete"]
        lines.append(
            f"  job {job['job_id']}: {len(done)} completed, {len(partial)} incomplete"
            + (
                f", shared {human_bytes(job['shared_size_bytes'])} in {job['shared_files']} files"
                if job["shared_files"]
                else ""
            )
        )
        lines.extend(_checkpoint_line(e) for e in [*done, *partial])
        if done:
            lines.append(f"    latest: {job['location'].rstrip('/')}/{done[-1]['name']}")
    for savepoint in listing["savepoints"]:
        lines.append(f"  savepoint of job {savepoint['job_id']}:")
        lines.append(_checkpoint_line(savepoint))
    return "\n".join(lines)


def _state_line(state: dict[str, Any]) -> str:
    serializer = state.get("value_serializer")
    detail = state.get("kind", "?")
    if isinstance(serializer, list) and serializer:
        detail += (
            f", {serializer[0]} v{serializer[1]}" if len(serializer) > 1 else f", {serializer[0]}"
        )
    if state.get("ttl"):
        detail += f", ttl {state['ttl']}"
    return f"{state.get('name', '?')} ({detail})"


def _operator_lines(op: dict[str, Any]) -> list[str]:
    lines = [
        f"  operator uid={op['uid']!r} name={op['name']!r}: parallelism {op['parallelism']}, "
        f"max parallelism {op['max_parallelism']}"
    ]
    if op["keyed_states"]:
        lines.append("    keyed states: " + ", ".join(_state_line(s) for s in op["keyed_states"]))
    for handle in op["handles"]:
        low, high = handle["key_group_range"]
        lines.append(
            f"    subtask {handle['subtask']:<3} key groups {low:>5}-{high:<5} "
            f"{handle['key_groups_with_state']:>5} stored  "
            f"{human_bytes(handle['size_bytes']):>10}  {handle['path']}"
        )
    for handle in op.get("incremental_handles", []):
        low, high = handle["key_group_range"]
        base = handle["base_checkpoint_id"]
        lines.append(
            f"    subtask {handle['subtask']:<3} key groups {low:>5}-{high:<5} "
            f"{handle['backend']} {'on chk-' + str(base) if base is not None else 'full'}: "
            f"{handle['shared_files']} shared files "
            f"{human_bytes(handle['shared_size_bytes'])}, {handle['private_files']} private "
            f"{human_bytes(handle['private_size_bytes'])}"
            + (
                f", sections {human_bytes(handle['sections_size_bytes'])}"
                if handle["sections_path"]
                else ""
            )
        )
    for position in op.get("source_positions", []):
        lines.append(
            f"    source split {position['split']} at position {position['position']} "
            f"(subtask {position['subtask']})"
        )
    if "pending_sink_transactions" in op:
        lines.append(f"    pending sink transactions: {op['pending_sink_transactions']}")
    known = {"source-splits", "sink-transactions"}
    for name, entry in op["operator_state"].items():
        if name not in known:
            lines.append(
                f"    operator state {name!r} ({entry['mode']}): {sum(entry['elements'])} elements"
            )
    return lines


def render_inspection(found: dict[str, Any]) -> str:
    files = found["files"]
    lines = [
        f"{found['kind']} {found['checkpoint_id']} of job {found['job_id']}",
        f"  location   {found['location']}",
        f"  taken      {iso_time(found['timestamp_ms'])}, took {found['duration_ms']} ms",
        f"  state      {human_bytes(found['state_size_bytes'])} in {len(files)} files "
        f"(+ _metadata {human_bytes(found['metadata_size_bytes'])}, "
        f"format version {found['format_version']})",
        f"  graph      {found['graph_fingerprint'] or '-'}",
        "",
    ]
    for op in found["operators"]:
        lines.extend(_operator_lines(op))
    lines.append("")
    if found["problems"]:
        lines.append(f"PROBLEMS ({len(found['problems'])}): this checkpoint cannot be restored")
        lines.extend(f"  {problem}" for problem in found["problems"])
    else:
        lines.append(f"files: all {len(files)} present with their recorded sizes")
    return "\n".join(lines)
