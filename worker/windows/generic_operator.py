"""The generic window operator: any assigner and trigger, merging windows (sessions) included.

A port of Flink's ``WindowOperator`` on this runtime's pieces: window contents are namespaced
keyed state (namespace = the ``(start, end)`` tuple), triggers get a
:class:`~streamjob.windows.trigger_context.WindowTriggerContext`, timers live in the operator's
:class:`~streamjob.runtime.timers.InternalTimerService` (timestamp-bucketed, namespace = the
window), and a key's in-flight merging windows are a dict in keyed state
(:mod:`streamjob.windows.merging`). Per record and window:

1. skip the window if it is late (event time: ``end - 1 + allowed_lateness <= watermark``);
2. add the record to the contents, ask the trigger; FIRE emits the contents through the window
   function, PURGE clears them; register the cleanup timer (``end - 1 + lateness``);
3. a record skipped by every window and behind the watermark goes to the late side output.

A timer asks the trigger the same question; at the cleanup time everything of the window goes
(contents, trigger state, ``ProcessWindowFunction.clear``, the merging-set entry).
"""

from __future__ import annotations

from typing import Any

from streamjob import errors
from streamjob.runtime import timers
from streamjob.runtime.events import MAX_WATERMARK, Batch
from streamjob.runtime.failures import user_error
from streamjob.runtime.operators.base import OperatorContext, Output
from streamjob.runtime.operators.keyed import TimerSectionsMixin
from streamjob.state import ValueStateDescriptor
from streamjob.windows.assigners import MergingWindowAssigner
from streamjob.windows.merging import add_window
from streamjob.windows.operator_base import WindowOperatorBase, WindowSpec, missing_timestamps
from streamjob.windows.trigger_context import WindowTriggerContext
from streamjob.windows.triggers import TriggerResult
from streamjob.windows.window import WindowTuple

_CONTINUE = TriggerResult.CONTINUE
CONTENTS_STATE = "_window_contents"
MERGING_STATE = "_merging_windows"


class WindowOperator(TimerSectionsMixin, WindowOperatorBase):
    def __init__(self, spec: WindowSpec) -> None:
        super().__init__(spec)
        self.trigger = spec.trigger or spec.assigner.get_default_trigger()
        self.merging = isinstance(spec.assigner, MergingWindowAssigner)
        self._single = spec.contents.kind != "list"

    def setup(self, ctx: OperatorContext, output: Output) -> None:
        super().setup(ctx, output)
        assert ctx.key_group_range is not None
        self.scheduler = timers.ProcessingTimeScheduler(
            ctx.clock, ctx.mailbox, self._on_processing_time
        )
        self.timers = timers.InternalTimerService(
            max_parallelism=ctx.max_parallelism,
            key_group_range=ctx.key_group_range,
            scheduler=self.scheduler,
        )

    def open(self) -> None:
        super().open()
        backend = self.backend
        self.contents = backend.get_state(self.spec.contents.state_descriptor(CONTENTS_STATE))
        self.merging_state = (
            backend.get_state(ValueStateDescriptor(MERGING_STATE)) if self.merging else None
        )
        self.tctx = WindowTriggerContext(backend, self.timers, self.ctx.clock)
        self.timers.schedule_next()

    def close(self) -> None:
        self.scheduler.close()
        super().close()

    # -- records ----------------------------------------------------------------------------
    def process_batch(self, batch: Batch, input_index: int) -> None:
        keys, kgs, timestamps = batch.keys, batch.key_groups, batch.timestamps
        if keys is None or kgs is None:
            raise RuntimeError(f"operator '{self.name}' is keyed but got a batch without keys")
        if self.event_time and timestamps is None:
            raise missing_timestamps(self.name)
        backend = self.backend
        assign = self.assigner.assign
        now = self.ctx.clock.now_ms()
        out: list[Any] = []
        out_ts: list[int] = []
        late: list[Any] = []
        late_ts: list[int] = []
        stamps: list[Any] = timestamps if timestamps is not None else [None] * len(keys)
        record: Any = None
        try:
            for record, key, kg, ts in zip(batch.records, keys, kgs, stamps, strict=True):
                if ts is None and self.event_time:
                    raise missing_timestamps(self.name, record)
                backend.current_key = key
                backend.current_key_group = kg
                windows = assign(record, ts, now)
                if self.merging:
                    skipped = self._add_merging(record, ts, windows, out, out_ts)
                else:
                    skipped = self._add(record, ts, windows, out, out_ts)
                if skipped and self.event_time and ts + self.lateness <= self.watermark:
                    late.append(record)
                    late_ts.append(ts)
        except errors.StreamJobError:
            raise
        except Exception as exc:
            raise user_error(exc, self.name, record) from exc
        self.emit_late(late, late_ts)
        self.emit_results(out, out_ts)

    def _add(self, record: Any, ts: Any, windows: Any, out: list[Any], out_ts: list[int]) -> bool:
        skipped = True
        contents, tctx = self.contents, self.tctx
        for window in windows:
            if self._is_late(window):
                continue
            skipped = False
            contents.set_current_namespace(window)
            contents.add(record)
            tctx.window = window
            result = self.trigger.on_element(record, ts, tctx.window_object(window), tctx)
            self._apply(result, window, out, out_ts)
            self._register_cleanup(window)
        return skipped

    def _add_merging(
        self, record: Any, ts: Any, windows: Any, out: list[Any], out_ts: list[int]
    ) -> bool:
        assert self.merging_state is not None
        assigner = self.assigner
        assert isinstance(assigner, MergingWindowAssigner)
        mapping: dict[WindowTuple, WindowTuple] = self.merging_state.value() or {}
        skipped = True
        contents, tctx = self.contents, self.tctx
        for window in windows:
            actual = add_window(mapping, window, assigner.merge, self._merge)
            if self._is_late(actual):
                del mapping[actual]
                continue
            skipped = False
            contents.set_current_namespace(mapping[actual])
            contents.add(record)
            tctx.window = actual
            result = self.trigger.on_element(record, ts, tctx.window_object(actual), tctx)
            self._apply(result, actual, out, out_ts)
            self._register_cleanup(actual)
        self.merging_state.update(mapping or None)
        return skipped

    def _merge(
        self,
        result: WindowTuple,
        merged: list[WindowTuple],
        state_window: WindowTuple,
        merged_state_windows: list[WindowTuple],
    ) -> None:
        if self.event_time and result[1] - 1 + self.lateness <= self.watermark:
            raise errors.StateError(
                f"operator '{self.name}': merging made the event-time window {result} end "
                f"before the current watermark {self.watermark}; the assigner's merge is wrong"
            )
        tctx = self.tctx
        tctx.window, tctx.merged = result, merged
        self.trigger.on_merge(tctx.window_object(result), tctx)
        tctx.merged = []
        for window in merged:
            tctx.window = window
            self.trigger.clear(tctx.window_object(window), tctx)
            self._delete_cleanup(window)
        if merged_state_windows:
            self.contents.merge_namespaces(state_window, merged_state_windows)

    # -- timers -----------------------------------------------------------------------------
    def process_watermark(self, timestamp: int) -> None:
        self.watermark = timestamp
        out: list[Any] = []
        out_ts: list[int] = []

        def fire(ts: int, key: Any, kg: int, window: Any) -> None:
            self._on_timer(ts, key, kg, window, True, out, out_ts)

        self.timers.advance_watermark(timestamp, fire)
        self.emit_results(out, out_ts)
        self.output.emit_watermark(timestamp)

    def _on_processing_time(self, now: int) -> None:
        out: list[Any] = []
        out_ts: list[int] = []

        def fire(ts: int, key: Any, kg: int, window: Any) -> None:
            self._on_timer(ts, key, kg, window, False, out, out_ts)

        self.timers.advance_processing_time(now, fire)
        self.emit_results(out, out_ts)

    def _on_timer(
        self,
        ts: int,
        key: Any,
        kg: int,
        window: WindowTuple,
        event_time: bool,
        out: list[Any],
        out_ts: list[int],
    ) -> None:
        backend, tctx, contents = self.backend, self.tctx, self.contents
        backend.current_key = key
        backend.current_key_group = kg
        tctx.window = window
        mapping: dict[WindowTuple, WindowTuple] | None = None
        if self.merging_state is not None:
            mapping = self.merging_state.value() or {}
            state_window = mapping.get(window)
            if state_window is None:
                return  # the window was merged away
            contents.set_current_namespace(state_window)
        else:
            contents.set_current_namespace(window)
        trigger, obj = self.trigger, tctx.window_object(window)
        try:
            if event_time:
                result = trigger.on_event_time(ts, obj, tctx)
            else:
                result = trigger.on_processing_time(ts, obj, tctx)
            self._apply(result, window, out, out_ts)
            if event_time == self.event_time and ts == self._cleanup_time(window):
                contents.clear()
                trigger.clear(obj, tctx)
                if self.results.has_clear:
                    self.results.clear(window)
                if mapping is not None:
                    mapping.pop(window, None)
        except errors.StreamJobError:
            raise
        except Exception as exc:
            raise user_error(exc, f"{self.name} (window {window}, key {key!r})", None) from exc
        if mapping is not None and self.merging_state is not None:
            self.merging_state.update(mapping or None)

    # -- helpers ----------------------------------------------------------------------------
    def _apply(
        self, result: TriggerResult, window: WindowTuple, out: list[Any], out_ts: list[int]
    ) -> None:
        if result is _CONTINUE:
            return
        if result.fire:
            value = self.contents.get()
            if value is not None and (self._single or value):
                key = self.backend.current_key
                emitted = self.results.emit(key, window, value)
                if emitted is not None:
                    before = len(out)
                    out.extend(emitted)
                    out_ts.extend([window[1] - 1] * (len(out) - before))
        if result.purge:
            self.contents.clear()

    def _cleanup_time(self, window: WindowTuple) -> int:
        end = window[1] - 1 + self.lateness
        return MAX_WATERMARK if end >= MAX_WATERMARK else end

    def _is_late(self, window: WindowTuple) -> bool:
        return self.event_time and self._cleanup_time(window) <= self.watermark

    def _register_cleanup(self, window: WindowTuple) -> None:
        time = self._cleanup_time(window)
        if time == MAX_WATERMARK:
            return
        b = self.backend
        if self.event_time:
            self.timers.register_event_time(b.current_key, b.current_key_group, window, time)
        else:
            self.timers.register_processing_time(b.current_key, b.current_key_group, window, time)

    def _delete_cleanup(self, window: WindowTuple) -> None:
        time = self._cleanup_time(window)
        if time == MAX_WATERMARK:
            return
        if self.event_time:
            self.timers.delete_event_time(self.backend.current_key, window, time)
        else:
            self.timers.delete_processing_time(self.backend.current_key, window, time)
