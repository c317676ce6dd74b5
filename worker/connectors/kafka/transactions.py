"""Transaction-coordinator operations the exactly-once sink needs beyond librdkafka.

* :meth:`Coordinators.describe` - the producer id and epoch of a transactional id: the sink
  stores them with each pre-committed transaction (librdkafka does not expose them).
* :meth:`Coordinators.commit` - **resume**: finish a pre-committed transaction from another
  process, after a crash between ``_metadata`` and the commit. librdkafka's
  ``init_transactions()`` would abort it (resuming is Kafka's KIP-939), so this sends
  ``EndTxn(commit)`` with the stored producer id and epoch, as the crashed producer would
  have. Steps:

  1. describe the id; ``CompleteCommit`` under the stored producer id and epoch means it was
     committed already (the commit is idempotent): done;
  2. otherwise ``EndTxn(commit)``; retriable answers (coordinator moving,
     ``CONCURRENT_TRANSACTIONS`` while a marker is written) are retried until the timeout;
  3. a fenced or aborted transaction (epoch moved on: the broker's transaction timeout
     expired, or someone re-initialized the id) cannot be committed: its records are lost.
     That is logged as an error naming the timeout to raise, and the job goes on (as Flink's
     committer does); :attr:`Coordinators.lost` counts such transactions.

* :meth:`Coordinators.abort_lingering` - ``InitProducerId`` on an id: aborts a transaction
  left open under it, fences its producer, and tells by the epoch whether the id was ever used
  (epoch 0: never). The sink probes ids with it on restore (:mod:`.sink`).

Only plaintext listeners: the wire client (:mod:`.protocol`) speaks neither TLS nor SASL.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from streamjob.connectors.kafka import protocol

log = logging.getLogger(__name__)

T = TypeVar("T")


def parse_servers(bootstrap_servers: str) -> list[tuple[str, int]]:
    servers = []
    for entry in bootstrap_servers.split(","):
        entry = entry.strip()
        if "://" in entry:
            entry = entry.split("://", 1)[1]
        host, _, port = entry.rpartition(":")
        servers.append((host.strip("[]") or entry, int(port or 9092)))
    return servers


class Coordinators:
    """Connections to transaction coordinators, opened lazily and cached per broker."""

    def __init__(self, bootstrap_servers: str, *, timeout_s: float, client_id: str) -> None:
        self._servers = parse_servers(bootstrap_servers)
        self._bootstrap_servers = bootstrap_servers
        self._timeout_s = timeout_s
        self._client_id = client_id
        self._connections: dict[tuple[str, int], protocol.Connection] = {}
        self._checked = False
        self.lost = 0

    def close(self) -> None:
        for connection in self._connections.values():
            connection.close()
        self._connections.clear()

    def _connection(self, host: str, port: int) -> protocol.Connection:
        connection = self._connections.get((host, port))
        if connection is None:
            connection = protocol.Connection(
                host, port, timeout_s=self._timeout_s, client_id=self._client_id
            )
            self._connections[(host, port)] = connection
        return connection

    def _bootstrap(self) -> protocol.Connection:
        failure: Exception | None = None
        for host, port in self._servers:
            try:
                connection = self._connection(host, port)
            except protocol.KafkaProtocolError as exc:
                failure = exc
                continue
            if not self._checked:
                connection.require_apis()
                self._checked = True
            return connection
        raise protocol.KafkaProtocolError(
            f"cannot reach any Kafka broker of {self._bootstrap_servers!r}: {failure}"
        )

    def _coordinator(self, transactional_id: str) -> protocol.Connection:
        found = self._bootstrap().find_transaction_coordinator(transactional_id)
        return self._connection(found.host, found.port)

    def _retrying(self, what: str, call: Callable[[protocol.Connection], T]) -> T:
        deadline = time.monotonic() + self._timeout_s
        delay = 0.02
        while True:
            try:
                return call(self._coordinator(what))
            except protocol.KafkaProtocolError as exc:
                if exc.code not in protocol.RETRIABLE or time.monotonic() > deadline:
                    raise
            except OSError:
                if time.monotonic() > deadline:
                    raise
                self.close()
            time.sleep(delay)
            delay = min(0.5, delay * 2)

    def describe(self, transactional_id: str) -> protocol.TransactionDescription | None:
        """What the coordinator knows of the id, or None if it never heard of it."""
        try:
            return self._retrying(
                transactional_id, lambda c: c.describe_transaction(transactional_id)
            )
        except protocol.KafkaProtocolError as exc:
            if exc.code == protocol.TRANSACTIONAL_ID_NOT_FOUND:
                return None
            raise

    def commit(self, transactional_id: str, producer_id: int, epoch: int) -> bool:
        """Steps 1-3 of the module docstring; False if the transaction was lost."""
        described = self.describe(transactional_id)
        if (
            described is not None
            and described.state == "CompleteCommit"
            and (described.producer_id, described.epoch) == (producer_id, epoch)
        ):
            return True
        try:
            self._retrying(
                transactional_id,
                lambda c: c.end_txn(transactional_id, producer_id, epoch, commit=True),
            )
            return True
        except protocol.KafkaProtocolError as exc:
            if exc.code not in (
                protocol.INVALID_PRODUCER_EPOCH,
                protocol.PRODUCER_FENCED,
                protocol.INVALID_TXN_STATE,
                protocol.INVALID_PRODUCER_ID_MAPPING,
            ):
                raise
            self.lost += 1
            state = self.describe(transactional_id)
            log.error(
                "Kafka transaction %s (producer %d, epoch %d) of a completed checkpoint could "
                "not be committed (%s; the coordinator now says %s): its records are LOST. "
                "Its transaction timeout most likely expired before the job recovered: raise "
                "the sink's transaction_timeout_ms (and the broker's "
                "transaction.max.timeout.ms) above the longest recovery you expect",
                transactional_id,
                producer_id,
                epoch,
                protocol.error_name(exc.code),
                "nothing" if state is None else f"{state.state} at epoch {state.epoch}",
            )
            return False

    def abort_lingering(self, transactional_id: str, timeout_ms: int) -> int:
        """Abort whatever is open under the id and fence its producer; the new epoch
        (0 if the id was never used)."""
        result = self._retrying(
            transactional_id, lambda c: c.init_producer_id(transactional_id, timeout_ms)
        )
        return result.epoch
