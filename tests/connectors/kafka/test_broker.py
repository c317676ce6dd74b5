"""The test broker (noida-db) does what the exactly-once tests rely on, checked, not assumed.

* a committed transaction is visible to ``read_committed``, an aborted one never is, an open
  one is not yet (and holds back the last stable offset);
* a second producer with the same transactional id fences the first: the zombie's commit fails
  and its open transaction is aborted;
* the wire-protocol client (:mod:`streamjob.connectors.kafka.protocol`): ``DescribeTransactions``
  names the producer id and epoch; a transaction left open by a process that died is committed
  from another process with ``EndTxn`` and the stored id and epoch, and committing again is
  harmless; ``InitProducerId`` answers epoch 0 for an unused id, aborts an open transaction
  and fences its producer (then ``EndTxn`` with the old epoch is refused);
* the broker's start and stop: the fixture's data directory is removed at stop.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable

import pytest
from confluent_kafka import KafkaException, Producer

from streamjob.connectors.kafka import protocol, transactions
from streamjob.connectors.kafka.testing_broker import NoidaKafkaBroker, read_topic
from tests.connectors.kafka.conftest import unique


def _values(bootstrap: str, topic: str, isolation: str = "read_committed") -> list[bytes]:
    return [v or b"" for _, _, _, v in read_topic(bootstrap, topic, isolation_level=isolation)]


def _producer(bootstrap: str, tid: str) -> Producer:
    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": tid})
    producer.init_transactions(10)
    return producer


def _produce_and_commit(producer: Producer, topic: str, value: bytes) -> None:
    producer.produce(topic, value)
    producer.commit_transaction(10)


def test_read_committed_sees_only_committed_transactions(
    bootstrap: str, topic: Callable[..., str]
) -> None:
    name = topic()
    producer = _producer(bootstrap, unique("tx"))
    producer.begin_transaction()
    producer.produce(name, b"committed")
    producer.commit_transaction(10)
    producer.begin_transaction()
    producer.produce(name, b"aborted")
    producer.flush(10)
    producer.abort_transaction(10)
    producer.begin_transaction()
    producer.produce(name, b"open")
    producer.flush(10)
    assert _values(bootstrap, name) == [b"committed"]
    assert _values(bootstrap, name, "read_uncommitted") == [b"committed", b"aborted", b"open"]
    producer.commit_transaction(10)
    assert _values(bootstrap, name) == [b"committed", b"open"]


def test_a_new_producer_with_the_same_id_fences_the_old_one(
    bootstrap: str, topic: Callable[..., str]
) -> None:
    name, tid = topic(), unique("tx")
    zombie = _producer(bootstrap, tid)
    zombie.begin_transaction()
    zombie.produce(name, b"zombie")
    zombie.flush(10)
    successor = _producer(bootstrap, tid)
    with pytest.raises(KafkaException):
        _produce_and_commit(zombie, name, b"more")
    successor.begin_transaction()
    successor.produce(name, b"successor")
    successor.commit_transaction(10)
    assert _values(bootstrap, name) == [b"successor"]


_CHILD = """
import os, sys
from confluent_kafka import Producer
p = Producer({"bootstrap.servers": sys.argv[1], "transactional.id": sys.argv[2]})
p.init_transactions(10)
p.begin_transaction()
for i in range(5):
    p.produce(sys.argv[3], b"v%d" % i)
p.flush(10)
os._exit(0)  # die with the transaction open, as a SIGKILLed TaskManager would
"""


def test_a_dead_processs_open_transaction_is_committed_with_end_txn(
    bootstrap: str, topic: Callable[..., str]
) -> None:
    name, tid = topic(), unique("tx")
    subprocess.run([sys.executable, "-c", _CHILD, bootstrap, tid, name], check=True, timeout=60)
    coordinators = transactions.Coordinators(bootstrap, timeout_s=10, client_id="test")
    described = coordinators.describe(tid)
    assert described is not None and described.state == "Ongoing"
    assert described.partitions == {name: [0]}
    assert _values(bootstrap, name) == []
    assert coordinators.commit(tid, described.producer_id, described.epoch)
    assert _values(bootstrap, name) == [b"v%d" % i for i in range(5)]
    # again, as a second restore from the same checkpoint would: harmless
    assert coordinators.commit(tid, described.producer_id, described.epoch)
    assert _values(bootstrap, name) == [b"v%d" % i for i in range(5)]
    assert coordinators.lost == 0
    coordinators.close()


def test_init_producer_id_probes_and_aborts(bootstrap: str, topic: Callable[..., str]) -> None:
    name, tid = topic(), unique("tx")
    coordinators = transactions.Coordinators(bootstrap, timeout_s=10, client_id="test")
    assert coordinators.abort_lingering(unique("never-used"), 60_000) == 0
    subprocess.run([sys.executable, "-c", _CHILD, bootstrap, tid, name], check=True, timeout=60)
    described = coordinators.describe(tid)
    assert described is not None
    assert coordinators.abort_lingering(tid, 60_000) > described.epoch
    assert _values(bootstrap, name) == []  # aborted, and the last stable offset moved on
    assert not coordinators.commit(tid, described.producer_id, described.epoch)
    assert coordinators.lost == 1
    coordinators.close()


def test_the_client_names_a_missing_broker() -> None:
    with pytest.raises(protocol.KafkaProtocolError, match=r"cannot connect to Kafka broker"):
        protocol.Connection("127.0.0.1", 1, client_id="test", timeout_s=1)


def test_the_broker_stops_and_cleans_up() -> None:
    broker = NoidaKafkaBroker().start()
    assert os.path.isdir(broker.data_dir)
    broker.create_topic("x", 1)
    broker.stop()
    assert not os.path.exists(broker.data_dir)
    with pytest.raises(protocol.KafkaProtocolError):
        protocol.Connection("127.0.0.1", broker.port, client_id="test", timeout_s=1)
