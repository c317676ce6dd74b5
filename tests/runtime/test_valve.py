"""The watermark valve: minimum over active channels, idleness, finished channels."""

from __future__ import annotations

from streamjob.runtime.valve import WatermarkValve


def test_the_watermark_is_the_minimum_over_active_channels() -> None:
    valve = WatermarkValve(2)
    assert valve.on_watermark(0, 100) is None  # channel 1 is still at the minimum
    assert valve.on_watermark(1, 50) == 50
    assert valve.on_watermark(1, 150) == 100
    assert valve.on_watermark(0, 90) is None  # never backwards


def test_an_idle_channel_leaves_the_minimum() -> None:
    valve = WatermarkValve(2)
    valve.on_watermark(0, 100)
    valve.on_watermark(1, 50)
    assert valve.on_idle(1, True) == 100
    assert not valve.all_idle()


def test_when_every_channel_is_idle_the_valve_advances_to_the_maximum() -> None:
    valve = WatermarkValve(3)
    valve.on_watermark(0, 100)
    valve.on_watermark(1, 300)
    valve.on_watermark(2, 200)
    valve.on_idle(0, True)
    valve.on_idle(2, True)
    assert valve.current == 300  # only channel 1 is active
    assert valve.on_idle(1, True) is None
    assert valve.all_idle()
    assert valve.on_watermark(0, 250) is None  # active again, but behind the idle maximum
    assert not valve.all_idle()
    assert valve.on_watermark(0, 400) == 400


def test_finished_channels_leave_the_minimum_and_are_not_idle() -> None:
    valve = WatermarkValve(2)
    valve.on_watermark(0, 100)
    assert valve.on_finished(1) == 100
    valve.on_idle(0, True)
    assert valve.all_idle()
    valve.on_finished(0)
    assert not valve.all_idle()  # nothing open: finished, not idle
