"""Brute-force references for the window tests, in plain Python, written from Flink's documented
semantics rather than from the operators (no shared code):

- a stream is a list of ``("rec", key, value, ts)`` and ``("wm", ts)`` in arrival order;
- a window fires once when the watermark reaches ``end - 1``; with allowed lateness it is kept
  until ``end - 1 + lateness`` and each late-but-allowed record fires it again at once;
- a record whose windows are all late goes to the late side output;
- sessions merge windows ``[ts, ts + gap)`` that overlap or touch;
- global windows fire every ``n`` records per key (and keep or purge their contents).

Results are ``(timestamp, key, sum)`` triples, compared as sorted lists.
"""

from __future__ import annotations

from typing import Any

MIN = -(1 << 63)
MAX = (1 << 63) - 1

Event = tuple[Any, ...]


def per_record_watermarks(records: list[tuple[str, int, int]], bound: int) -> list[Event]:
    """The stream a per-record bounded-out-of-orderness generator makes, ending with MAX."""
    stream: list[Event] = []
    max_ts = MIN + bound + 1
    last = MIN
    for key, value, ts in records:
        stream.append(("rec", key, value, ts))
        if ts > max_ts:
            max_ts = ts
            if ts - bound - 1 > last:
                last = ts - bound - 1
                stream.append(("wm", last))
    stream.append(("wm", MAX))
    return stream


def periodic_watermarks(
    records: list[tuple[str, int, int]], *, batch: int, tick: int, interval: int, bound: int
) -> list[Event]:
    """The stream a periodic generator makes when the clock moves ``tick`` per polled batch."""
    stream: list[Event] = []
    now, next_emit, last, max_ts = 0, interval, MIN, MIN + bound + 1
    for start in range(0, len(records), batch):
        now += tick
        chunk = records[start : start + batch]
        stream.extend(("rec", key, value, ts) for key, value, ts in chunk)
        max_ts = max(max_ts, *(ts for _, _, ts in chunk))
        if now >= next_emit:
            next_emit = now + interval
            if max_ts - bound - 1 > last:
                last = max_ts - bound - 1
                stream.append(("wm", last))
    stream.append(("wm", MAX))
    return stream


def aligned_windows(
    stream: list[Event], *, size: int, slide: int, lateness: int
) -> tuple[list[tuple[int, str, int]], list[tuple[str, int, int]]]:
    """Tumbling (``slide == size``) and sliding event-time windows with EventTimeTrigger."""
    wm = MIN
    windows: dict[tuple[str, int, int], list[Any]] = {}  # -> [sum, timer pending]
    out: list[tuple[int, str, int]] = []
    late: list[tuple[str, int, int]] = []
    for event in stream:
        if event[0] == "rec":
            _, key, value, ts = event
            accepted = False
            for start in range(ts - size + 1, ts + 1):
                if start % slide:
                    continue
                end = start + size
                if end - 1 + lateness <= wm:
                    continue
                accepted = True
                entry = windows.setdefault((key, start, end), [0, end - 1 > wm])
                entry[0] += value
                if end - 1 <= wm:
                    out.append((end - 1, key, entry[0]))
            if not accepted:
                late.append((key, value, ts))
        else:
            wm = event[1]
            for (key, _, end), entry in windows.items():
                if entry[1] and end - 1 <= wm:
                    out.append((end - 1, key, entry[0]))
                    entry[1] = False
            for w in [w for w in windows if w[2] - 1 + lateness <= wm]:
                del windows[w]
    return sorted(out), sorted(late)


def sessions(
    stream: list[Event], *, gap: int, lateness: int
) -> tuple[list[tuple[int, str, int]], list[tuple[str, int, int]]]:
    """Event-time session windows with EventTimeTrigger."""
    wm = MIN
    by_key: dict[str, list[list[Any]]] = {}  # key -> [[start, end, sum, timer pending]]
    out: list[tuple[int, str, int]] = []
    late: list[tuple[str, int, int]] = []
    for event in stream:
        if event[0] == "rec":
            _, key, value, ts = event
            current = by_key.setdefault(key, [])
            start, end = ts, ts + gap
            overlapping = [s for s in current if s[0] <= end and s[1] >= start]
            if overlapping:
                start = min([start, *(s[0] for s in overlapping)])
                end = max([end, *(s[1] for s in overlapping)])
                total = sum(s[2] for s in overlapping)
                for s in overlapping:
                    current.remove(s)
                session = [start, end, total, end - 1 > wm]
            elif end - 1 + lateness <= wm:
                late.append((key, value, ts))
                continue
            else:
                session = [start, end, 0, end - 1 > wm]
            current.append(session)
            session[2] += value
            if end - 1 <= wm:
                out.append((end - 1, key, session[2]))
        else:
            wm = event[1]
            for key, current in by_key.items():
                for s in current:
                    if s[3] and s[1] - 1 <= wm:
                        out.append((s[1] - 1, key, s[2]))
                        s[3] = False
                current[:] = [s for s in current if s[1] - 1 + lateness > wm]
    return sorted(out), sorted(late)


def global_count(
    stream: list[Event], *, count: int, purge: bool
) -> tuple[list[tuple[int, str, int]], list[tuple[str, int, int]]]:
    """GlobalWindows with CountTrigger (optionally purging): no lateness, nothing late."""
    totals: dict[str, list[int]] = {}  # key -> [sum, count since last firing]
    out: list[tuple[int, str, int]] = []
    for event in stream:
        if event[0] != "rec":
            continue
        _, key, value, _ = event
        entry = totals.setdefault(key, [0, 0])
        entry[0] += value
        entry[1] += 1
        if entry[1] >= count:
            entry[1] = 0
            out.append((MAX, key, entry[0]))
            if purge:
                entry[0] = 0
    return sorted(out), []


def processing_time_windows(
    steps: list[tuple[str, Any]], *, size: int, slide: int
) -> list[tuple[int, str, int]]:
    """Tumbling/sliding processing-time windows: ``("rec", (key, value))`` at the current time,
    ``("advance", ms)`` moves the clock; a window fires when the clock reaches ``end - 1``."""
    now = 0
    windows: dict[tuple[str, int, int], int] = {}
    out: list[tuple[int, str, int]] = []
    for kind, payload in steps:
        if kind == "rec":
            key, value = payload
            for start in range(now - size + 1, now + 1):
                if start % slide == 0:
                    w = (key, start, start + size)
                    windows[w] = windows.get(w, 0) + value
        else:
            now += payload
            for w in [w for w in windows if w[2] - 1 <= now]:
                out.append((w[2] - 1, w[0], windows.pop(w)))
    return sorted(out)
