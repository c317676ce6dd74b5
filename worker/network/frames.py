"""Wire format of the data plane (pure): length-prefixed frames over a TCP stream.

    frame := u32be length | u8 type | payload          (length counts type + payload)

Types: HELLO (JSON handshake: job, epoch, attempt, edge, source, target, credits), ACCEPT or
REJECT (JSON, the receiver's answer), BATCH and EVENT (pickled channel items, sender ->
receiver), CREDIT (u32be: more batch slots, receiver -> sender).
"""

from __future__ import annotations

import json
import pickle
import struct
from dataclasses import asdict, dataclass
from typing import Any

from streamjob.runtime.events import Batch, ChannelItem

HEADER = struct.Struct(">IB")
CREDIT_BODY = struct.Struct(">I")
MAX_FRAME = 256 * 1024 * 1024

HELLO = 1
ACCEPT = 2
REJECT = 3
BATCH = 4
EVENT = 5
CREDIT = 6


class ProtocolError(Exception):
    """The peer sent something this side does not understand (or a frame too large)."""


@dataclass(frozen=True)
class Hello:
    job_id: str
    epoch: str
    attempt: int
    edge: int
    source: int
    target: int

    def channel_key(self) -> tuple[int, int, int, int]:
        return (self.attempt, self.edge, self.source, self.target)


def frame(kind: int, payload: bytes) -> bytes:
    size = len(payload) + 1
    if size > MAX_FRAME:
        raise ProtocolError(f"frame of {size} bytes exceeds the {MAX_FRAME}-byte limit")
    return HEADER.pack(size, kind) + payload


def encode_json(kind: int, value: Any) -> bytes:
    return frame(kind, json.dumps(value).encode())


def encode_hello(hello: Hello) -> bytes:
    return encode_json(HELLO, asdict(hello))


def decode_hello(payload: bytes) -> Hello:
    try:
        data = json.loads(payload)
        return Hello(**data)
    except (ValueError, TypeError) as exc:
        raise ProtocolError(f"malformed handshake: {exc}") from exc


def encode_item(item: ChannelItem) -> bytes:
    """A batch travels as its parallel lists, serialized once per batch."""
    if item.__class__ is Batch:
        b: Batch = item
        body = pickle.dumps((b.records, b.timestamps, b.keys, b.key_groups), protocol=5)
        return frame(BATCH, body)
    return frame(EVENT, pickle.dumps(item, protocol=5))


def decode_item(kind: int, payload: bytes) -> ChannelItem:
    if kind == BATCH:
        records, timestamps, keys, key_groups = pickle.loads(payload)
        return Batch(records, timestamps, keys, key_groups)
    if kind == EVENT:
        item: ChannelItem = pickle.loads(payload)
        return item
    raise ProtocolError(f"unexpected frame type {kind} on a data channel")


def encode_credit(credits: int) -> bytes:
    return frame(CREDIT, CREDIT_BODY.pack(credits))
