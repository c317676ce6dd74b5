"""Sending a watermark status (idle / active) down an operator's outputs.

:class:`~streamjob.runtime.operators.base.Output` carries records and watermarks but has no
method for a :class:`~streamjob.runtime.events.WatermarkStatus` yet, so this walks the output
tree: a writer broadcasts the event in-band (the downstream valve then leaves the channel out
of its minimum), a chained operator either handles it (``process_watermark_status``) or passes
it on to its own output. An output that grows ``emit_watermark_status`` is used directly.
"""

from __future__ import annotations

from typing import Any

from streamjob.runtime.events import WatermarkStatus
from streamjob.runtime.operators.base import ChainedOutput, Output, RoutingOutput, WriterOutput


def emit_watermark_status(output: Output, idle: bool) -> None:
    """Tell everything behind ``output`` that this input is idle (or active again)."""
    direct: Any = getattr(output, "emit_watermark_status", None)
    if callable(direct):
        direct(idle)
    elif isinstance(output, RoutingOutput):
        for out in output.main:
            emit_watermark_status(out, idle)
        for outs in output.side.values():
            for out in outs:
                emit_watermark_status(out, idle)
    elif isinstance(output, WriterOutput):
        output.writer.broadcast_event(WatermarkStatus(idle))
    elif isinstance(output, ChainedOutput):
        target: Any = output.target
        handler = getattr(target, "process_watermark_status", None)
        if callable(handler):
            handler(idle)
        else:
            emit_watermark_status(target.output, idle)
