"""Preparing every TCP channel of a deployment before its tasks are built.

``build_task`` asks its channel factory synchronously; TCP ends need a connection first. So a
deployment first registers its input channels with the local data server, then connects its
output channels to the data servers of the receiving subtasks (which may be this process),
and only then builds the tasks from the prepared ends.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable

from streamjob.network import frames
from streamjob.network.channels import RemoteInputChannel, RemoteOutputChannel
from streamjob.network.server import DataServer, Fence, connect_output
from streamjob.runtime.deploy import channel_pairs
from streamjob.runtime.graph import JobEdge, JobGraph

ChannelKey = tuple[int, int, int]  # (edge id, source subtask, target subtask)


class TcpChannels:
    """Channel factory for the subtasks of one process; ``address_of(vertex, subtask)``."""

    def __init__(
        self,
        graph: JobGraph,
        server: DataServer,
        fence: Fence,
        local: Iterable[tuple[int, int]],
        address_of: Callable[[int, int], tuple[str, int]],
        credits: int,
    ) -> None:
        self.graph = graph
        self.server = server
        self.fence = fence
        self.local = set(local)
        self.address_of = address_of
        self.credits = credits
        self.inputs: dict[ChannelKey, RemoteInputChannel] = {}
        self.outputs: dict[ChannelKey, RemoteOutputChannel] = {}

    async def prepare(self) -> None:
        await self.server.set_fence(self.fence)
        for edge in self.graph.edges:
            for i, j in channel_pairs(self.graph, edge):
                if (edge.target_vertex, j) in self.local:
                    channel = RemoteInputChannel(f"e{edge.id}:{i}->{j}", self.credits)
                    self.inputs[(edge.id, i, j)] = channel
                    await self.server.expect((self.fence.attempt, edge.id, i, j), channel)
        connects = []
        for edge in self.graph.edges:
            for i, j in channel_pairs(self.graph, edge):
                if (edge.source_vertex, i) in self.local:
                    connects.append(self._connect(edge, i, j))
        await asyncio.gather(*connects)

    async def _connect(self, edge: JobEdge, i: int, j: int) -> None:
        hello = frames.Hello(
            job_id=self.fence.job_id,
            epoch=self.fence.epoch,
            attempt=self.fence.attempt,
            edge=edge.id,
            source=i,
            target=j,
        )
        address = self.address_of(edge.target_vertex, j)
        self.outputs[(edge.id, i, j)] = await connect_output(address, hello, f"e{edge.id}:{i}->{j}")

    def output_channel(
        self, edge: JobEdge, source_index: int, target_index: int
    ) -> RemoteOutputChannel:
        return self.outputs[(edge.id, source_index, target_index)]

    def input_channel(
        self, edge: JobEdge, source_index: int, target_index: int
    ) -> RemoteInputChannel:
        return self.inputs[(edge.id, source_index, target_index)]

    async def close(self) -> None:
        for out in self.outputs.values():
            await out.close()
        for inp in self.inputs.values():
            await inp.close()
