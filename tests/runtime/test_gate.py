"""The input gate: round-robin reading, blocking one channel (alignment), end of partition."""

from __future__ import annotations

from streamjob.runtime.channels import LocalChannel
from streamjob.runtime.events import Batch, CheckpointBarrier
from streamjob.runtime.gate import InputGate


def _gate(n: int) -> tuple[InputGate, list[LocalChannel], list[int]]:
    wakes: list[int] = []
    channels = [LocalChannel(8) for _ in range(n)]
    gate = InputGate(channels, [0] * n, lambda: wakes.append(1))
    return gate, channels, wakes


def test_round_robin_over_channels_with_data() -> None:
    gate, channels, wakes = _gate(2)
    for i in range(3):
        channels[0].send(Batch([("a", i)]))
        channels[1].send(Batch([("b", i)]))
    order = []
    while (polled := gate.poll()) is not None:
        order.append(polled[0])
    assert order == [0, 1, 0, 1, 0, 1]
    assert wakes


def test_a_blocked_channel_keeps_its_data_until_unblocked() -> None:
    gate, channels, _ = _gate(2)
    channels[0].send(CheckpointBarrier(1, 0))
    channels[0].send(Batch(["after-barrier"]))
    channels[1].send(Batch(["before-barrier"]))
    index, item = gate.poll() or (None, None)
    assert index == 0 and isinstance(item, CheckpointBarrier)
    gate.block(0)
    polled = gate.poll()
    assert polled is not None and polled[0] == 1
    assert gate.poll() is None  # channel 0 still holds data, but it is blocked
    channels[0].send(Batch(["more"]))
    assert gate.poll() is None
    gate.unblock_all()
    items = []
    while (p := gate.poll()) is not None:
        items.append(p[1].records)  # type: ignore[union-attr]
    assert items == [["after-barrier"], ["more"]]


def test_finished_channels_are_tracked() -> None:
    gate, _, _ = _gate(3)
    gate.mark_finished(1)
    assert gate.active_channels() == [0, 2]
    gate.mark_finished(0)
    gate.mark_finished(2)
    assert gate.all_finished()
