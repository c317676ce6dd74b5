"""Preparing every TCP channel of a deployment before its tasks are built.

``build_task`` asks its channel factory synchronously; TCP ends need a connection first. So a
deployment first registers its input channels with the local data server, then connects its
output channels to the data servers of the receiving subtasks, and only then builds the tasks
from the prepared ends. A channel whose two ends run in this process is in memory (records are
never serialized within a process).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable

from streamjob.network import frames
from streamjob.network.channels import RemoteInputChannel, RemoteOutputChannel
from streamjob.network.server import DataServer, Fence, connect_output
from streamjob.runtime.channels import LocalChannel
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
        *,
        in_memory_local: bool = True,
    ) -> None:
        self.in_memory_local = in_memory_local
        self.graph = graph
        self.server = server
        self.fence = fence
        self.local = set(local)
        self.address_of = address_of
        self.credits = credits
        self.inputs: dict[ChannelKey, RemoteInputChannel] = {}
        self.outputs: dict[ChannelKey, RemoteOutputChannel] = {}
        #: both ends in this process: in memory, never serialized
        self.local_pairs: dict[ChannelKey, LocalChannel] = {}

    async def prepare(self) -> None:
        await self.server.set_fence(self.fence)
        for edge in self.graph.edges:
            for i, j in channel_pairs(self.graph, edge):
                both_local = (edge.source_vertex, i) in self.local and (
                    edge.target_vertex,
                    j,
                ) in self.local
                if both_local and self.in_memory_local:
                    self.local_pairs[(edge.id, i, j)] = LocalChannel(
                        self.credits, f"e{edge.id}:{i}->{j}"
                    )
                elif (edge.target_vertex, j) in self.local:
                    channel = RemoteInputChannel(f"e{edge.id}:{i}->{j}", self.credits)
                    self.inputs[(edge.id, i, j)] = channel
                    await self.server.expect((self.fence.attempt, edge.id, i, j), channel)
        connects = []
        for edge in self.graph.edges:
            for i, j in channel_pairs(self.graph, edge):
                key = (edge.id, i, j)
                if (edge.source_vertex, i) in self.local and key not in self.local_pairs:
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
    ) -> RemoteOutputChannel | LocalChannel:
        key = (edge.id, source_index, target_index)
        local = self.local_pairs.get(key)
        return local if local is not None else self.outputs[key]

    def input_channel(
        self, edge: JobEdge, source_index: int, target_index: int
    ) -> RemoteInputChannel | LocalChannel:
        key = (edge.id, source_index, target_index)
        local = self.local_pairs.get(key)
        return local if local is not None else self.inputs[key]

    async def close(self) -> None:
        for out in self.outputs.values():
            await out.close()
        for inp in self.inputs.values():
            await inp.close()
