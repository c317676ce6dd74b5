"""A minimal Kafka wire-protocol client: just the transaction-coordinator requests librdkafka lacks.

librdkafka cannot resume a transaction another process left open (that is Kafka's KIP-939): its
``init_transactions()`` aborts it. The exactly-once sink needs three things it does not offer,
all addressed to the transaction coordinator of a transactional id:

* ``DescribeTransactions`` (KIP-664): the producer id, epoch and state registered for an id,
  which is how the sink learns the producer id and epoch of its own producer;
* ``EndTxn(commit)`` with a stored producer id and epoch: finishes a pre-committed transaction
  from a new process after a crash (the hard case of :mod:`.transactions`);
* ``InitProducerId``: probes an id (epoch 0 = never used) and, as a side effect, aborts any
  transaction open under it and fences its producer (cleanup of lingering transactions).

Plus ``ApiVersions`` (to say clearly when a broker lacks one of them) and ``FindCoordinator``
(``key_type=1``: transactions). One blocking TCP connection per broker, no TLS or SASL (this
client refuses such configurations in :mod:`.transactions`). Request layouts from Kafka's
message definitions: header v1 (v2 for flexible versions, with tagged fields), response header
v0 (v1 for flexible versions; ApiVersions always v0).
"""

from __future__ import annotations

import dataclasses
import socket
import struct
from collections.abc import Callable
from typing import Any

from streamjob import errors

API_VERSIONS = 18
FIND_COORDINATOR = 10
INIT_PRODUCER_ID = 22
END_TXN = 26
DESCRIBE_TRANSACTIONS = 65

#: (api key, version this client speaks)
USED = {FIND_COORDINATOR: 1, INIT_PRODUCER_ID: 1, END_TXN: 1, DESCRIBE_TRANSACTIONS: 0}
NAMES = {
    FIND_COORDINATOR: "FindCoordinator",
    INIT_PRODUCER_ID: "InitProducerId",
    END_TXN: "EndTxn",
    DESCRIBE_TRANSACTIONS: "DescribeTransactions",
}

# error codes this module reasons about (Kafka's org.apache.kafka.common.protocol.Errors)
NONE = 0
COORDINATOR_LOAD_IN_PROGRESS = 14
COORDINATOR_NOT_AVAILABLE = 15
NOT_COORDINATOR = 16
INVALID_PRODUCER_EPOCH = 47
INVALID_TXN_STATE = 48
INVALID_PRODUCER_ID_MAPPING = 49
CONCURRENT_TRANSACTIONS = 51
TRANSACTIONAL_ID_NOT_FOUND = 105
PRODUCER_FENCED = 90
ERROR_NAMES = {
    COORDINATOR_LOAD_IN_PROGRESS: "COORDINATOR_LOAD_IN_PROGRESS",
    COORDINATOR_NOT_AVAILABLE: "COORDINATOR_NOT_AVAILABLE",
    NOT_COORDINATOR: "NOT_COORDINATOR",
    INVALID_PRODUCER_EPOCH: "INVALID_PRODUCER_EPOCH",
    INVALID_TXN_STATE: "INVALID_TXN_STATE",
    INVALID_PRODUCER_ID_MAPPING: "INVALID_PRODUCER_ID_MAPPING",
    CONCURRENT_TRANSACTIONS: "CONCURRENT_TRANSACTIONS",
    PRODUCER_FENCED: "PRODUCER_FENCED",
    TRANSACTIONAL_ID_NOT_FOUND: "TRANSACTIONAL_ID_NOT_FOUND",
    53: "TRANSACTIONAL_ID_AUTHORIZATION_FAILED",
}
RETRIABLE = frozenset(
    {
        COORDINATOR_LOAD_IN_PROGRESS,
        COORDINATOR_NOT_AVAILABLE,
        NOT_COORDINATOR,
        CONCURRENT_TRANSACTIONS,
    }
)


class KafkaProtocolError(errors.StreamJobError):
    """A broker answered a request with an error code (``code``), or spoke nonsense."""

    def __init__(self, message: str, code: int = -1) -> None:
        super().__init__(message)
        self.code = code


def error_name(code: int) -> str:
    return ERROR_NAMES.get(code, f"error {code}")


# -- encoding -----------------------------------------------------------------------------------


def _string(value: str | None) -> bytes:
    if value is None:
        return struct.pack(">h", -1)
    raw = value.encode()
    return struct.pack(">h", len(raw)) + raw


def _uvarint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _compact_string(value: str) -> bytes:
    raw = value.encode()
    return _uvarint(len(raw) + 1) + raw


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def _unpack(self, fmt: str) -> Any:
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.data):
            raise KafkaProtocolError("truncated response from the broker")
        (value,) = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += size
        return value

    def int8(self) -> int:
        return int(self._unpack(">b"))

    def int16(self) -> int:
        return int(self._unpack(">h"))

    def int32(self) -> int:
        return int(self._unpack(">i"))

    def int64(self) -> int:
        return int(self._unpack(">q"))

    def uvarint(self) -> int:
        shift = value = 0
        while True:
            byte = self.int8() & 0xFF
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return value
            shift += 7

    def string(self) -> str | None:
        size = self.int16()
        if size < 0:
            return None
        raw = self.data[self.pos : self.pos + size]
        self.pos += size
        return raw.decode()

    def compact_string(self) -> str | None:
        size = self.uvarint() - 1
        if size < 0:
            return None
        raw = self.data[self.pos : self.pos + size]
        self.pos += size
        return raw.decode()

    def compact_array(self, item: Callable[[], Any]) -> list[Any]:
        count = self.uvarint() - 1
        return [item() for _ in range(max(0, count))]

    def skip_tags(self) -> None:
        for _ in range(self.uvarint()):
            self.uvarint()  # tag
            size = self.uvarint()
            self.pos += size


# -- responses ----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Coordinator:
    node_id: int
    host: str
    port: int


@dataclasses.dataclass(frozen=True)
class ProducerIdAndEpoch:
    producer_id: int
    epoch: int


@dataclasses.dataclass(frozen=True)
class TransactionDescription:
    """What the coordinator knows of a transactional id (``state`` as Kafka names it:
    Empty, Ongoing, PrepareCommit, PrepareAbort, CompleteCommit, CompleteAbort, Dead,
    PrepareEpochFence)."""

    transactional_id: str
    state: str
    producer_id: int
    epoch: int
    timeout_ms: int
    partitions: dict[str, list[int]]


# -- the connection -----------------------------------------------------------------------------


class Connection:
    """One blocking connection to one broker; requests one at a time."""

    def __init__(self, host: str, port: int, *, timeout_s: float = 10.0, client_id: str) -> None:
        self.address = f"{host}:{port}"
        self._client_id = client_id
        self._correlation = 0
        try:
            self._sock = socket.create_connection((host, port), timeout=timeout_s)
        except OSError as exc:
            raise KafkaProtocolError(
                f"cannot connect to Kafka broker {self.address}: {exc}; check bootstrap.servers "
                "and that the broker is up and reachable from this process"
            ) from exc
        self.versions: dict[int, tuple[int, int]] = {}

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _request(self, api_key: int, version: int, body: bytes, *, flexible: bool) -> _Reader:
        self._correlation += 1
        header = struct.pack(">hhi", api_key, version, self._correlation) + _string(self._client_id)
        if flexible:
            header += b"\x00"  # no tagged fields
        message = header + body
        try:
            self._sock.sendall(struct.pack(">i", len(message)) + message)
            size = struct.unpack(">i", self._recv(4))[0]
            reader = _Reader(self._recv(size))
        except OSError as exc:
            raise KafkaProtocolError(
                f"Kafka broker {self.address} connection failed: {exc}"
            ) from exc
        if reader.int32() != self._correlation:
            raise KafkaProtocolError(f"Kafka broker {self.address} answered out of order")
        if flexible and api_key != API_VERSIONS:
            reader.skip_tags()
        return reader

    def _recv(self, size: int) -> bytes:
        chunks = bytearray()
        while len(chunks) < size:
            chunk = self._sock.recv(size - len(chunks))
            if not chunk:
                raise OSError("the broker closed the connection")
            chunks += chunk
        return bytes(chunks)

    def api_versions(self) -> dict[int, tuple[int, int]]:
        reader = self._request(API_VERSIONS, 0, b"", flexible=False)
        code = reader.int16()
        if code != NONE:
            raise KafkaProtocolError(
                f"ApiVersions failed on {self.address}: {error_name(code)}", code
            )
        count = reader.int32()
        versions = {}
        for _ in range(count):
            key, low, high = reader.int16(), reader.int16(), reader.int16()
            versions[key] = (low, high)
        self.versions = versions
        return versions

    def require_apis(self) -> None:
        """Fail clearly if the broker lacks a request (at the version) this client sends."""
        versions = self.versions or self.api_versions()
        missing = [
            f"{NAMES[key]} v{version}"
            for key, version in USED.items()
            if key not in versions or not versions[key][0] <= version <= versions[key][1]
        ]
        if missing:
            raise KafkaProtocolError(
                f"Kafka broker {self.address} does not support {', '.join(missing)}, which the "
                "exactly-once Kafka sink needs to finish transactions after a restore (Kafka "
                ">= 3.0 has them); use DeliveryGuarantee.AT_LEAST_ONCE with this broker"
            )

    def find_transaction_coordinator(self, transactional_id: str) -> Coordinator:
        body = _string(transactional_id) + struct.pack(">b", 1)
        reader = self._request(FIND_COORDINATOR, 1, body, flexible=False)
        reader.int32()  # throttle
        code = reader.int16()
        message = reader.string()
        node_id, host, port = reader.int32(), reader.string(), reader.int32()
        if code != NONE:
            raise KafkaProtocolError(
                f"FindCoordinator({transactional_id}) failed: {error_name(code)} {message or ''}",
                code,
            )
        return Coordinator(node_id, host or "", port)

    def init_producer_id(self, transactional_id: str, timeout_ms: int) -> ProducerIdAndEpoch:
        body = _string(transactional_id) + struct.pack(">i", timeout_ms)
        reader = self._request(INIT_PRODUCER_ID, 1, body, flexible=False)
        reader.int32()
        code = reader.int16()
        producer_id, epoch = reader.int64(), reader.int16()
        if code != NONE:
            raise KafkaProtocolError(
                f"InitProducerId({transactional_id}) failed: {error_name(code)}", code
            )
        return ProducerIdAndEpoch(producer_id, epoch)

    def end_txn(self, transactional_id: str, producer_id: int, epoch: int, *, commit: bool) -> None:
        body = _string(transactional_id) + struct.pack(">qhb", producer_id, epoch, int(commit))
        reader = self._request(END_TXN, 1, body, flexible=False)
        reader.int32()
        code = reader.int16()
        if code != NONE:
            raise KafkaProtocolError(
                f"EndTxn({transactional_id}, producer {producer_id} epoch {epoch}, "
                f"{'commit' if commit else 'abort'}) failed: {error_name(code)}",
                code,
            )

    def describe_transaction(self, transactional_id: str) -> TransactionDescription:
        body = _uvarint(2) + _compact_string(transactional_id) + b"\x00"
        reader = self._request(DESCRIBE_TRANSACTIONS, 0, body, flexible=True)
        reader.int32()

        def topic() -> tuple[str, list[int]]:
            name = reader.compact_string() or ""
            partitions = reader.compact_array(reader.int32)
            reader.skip_tags()
            return name, partitions

        def state() -> tuple[int, TransactionDescription]:
            code = reader.int16()
            tid = reader.compact_string() or ""
            txn_state = reader.compact_string() or ""
            timeout_ms = reader.int32()
            reader.int64()  # start time
            producer_id, epoch = reader.int64(), reader.int16()
            topics = dict(reader.compact_array(topic))
            reader.skip_tags()
            return code, TransactionDescription(
                tid, txn_state, producer_id, epoch, timeout_ms, topics
            )

        states = reader.compact_array(state)
        if len(states) != 1:
            raise KafkaProtocolError(
                f"DescribeTransactions({transactional_id}) returned {len(states)} states"
            )
        code, description = states[0]
        assert isinstance(description, TransactionDescription)
        if code != NONE:
            raise KafkaProtocolError(
                f"DescribeTransactions({transactional_id}) failed: {error_name(code)}", code
            )
        return description
