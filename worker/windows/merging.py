"""Flink's ``MergingWindowSet`` on plain dicts: the in-flight windows of one key (sessions).

The set maps each in-flight window to its *state window*: the namespace that holds its
contents. When windows merge, the merge result keeps one of the merged state windows and the
other state windows' contents are merged into it, so contents never move more than once. The
dict lives in the key's keyed state (``_merging_windows``), so it is checkpointed and
redistributed with the key group like any other state.
"""

from __future__ import annotations

from collections.abc import Callable

from streamjob.windows.window import WindowTuple

MergeFn = Callable[[WindowTuple, list[WindowTuple], WindowTuple, list[WindowTuple]], None]
"""``merge(merge_result, merged_windows, state_window_of_result, merged_state_windows)``."""

MergeWindows = Callable[[list[WindowTuple]], list[tuple[WindowTuple, list[WindowTuple]]]]


def add_window(
    mapping: dict[WindowTuple, WindowTuple],
    new_window: WindowTuple,
    merge_windows: MergeWindows,
    merge_fn: MergeFn,
) -> WindowTuple:
    """Add ``new_window`` to ``mapping`` (in place), merging as the assigner says.

    Returns the window the new one ended up in: itself, or the merge result that swallowed it.
    ``merge_fn`` is called for every merge that involves pre-existing state (the new window
    never has state of its own).
    """
    results = merge_windows([*mapping, new_window])
    result_window = new_window
    merged_new = False
    for merge_result, members in results:
        merged = [w for w in members if w != new_window]
        if len(merged) != len(members):
            merged_new = True
            result_window = merge_result
        merged_state_window = mapping[merged[0]]
        merged_state_windows = [mapping.pop(w) for w in merged if w in mapping]
        mapping[merge_result] = merged_state_window
        merged_state_windows.remove(merged_state_window)
        # merging one pre-existing window into itself, without extending it, is no merge
        if not (len(merged) == 1 and merged[0] == merge_result):
            merge_fn(merge_result, merged, merged_state_window, merged_state_windows)
    if not results or (result_window == new_window and not merged_new):
        mapping.setdefault(result_window, result_window)
    return result_window
