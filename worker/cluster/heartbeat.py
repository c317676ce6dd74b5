"""The TaskManager's heartbeat, on a thread of its own.

A long user function or a big synchronous snapshot blocks the TaskManager's event loop; the
heartbeat must not stop with it, or the JobManager would declare a live process dead. The
thread uses a blocking HTTP client and hands decisions back to the loop thread-safely.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

from streamjob.cluster.rpc_client import HeartbeatClient

if TYPE_CHECKING:
    from streamjob.cluster.taskmanager import TaskManager

log = logging.getLogger(__name__)


class HeartbeatThread:
    def __init__(self, tm: TaskManager, interval_s: float, jm_timeout_s: float) -> None:
        self.tm = tm
        self.interval_s = interval_s
        self.jm_timeout_s = jm_timeout_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)
        self.last_ok = time.monotonic()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        client = HeartbeatClient(self.tm.rpc.base_url)
        try:
            self._beat(client)
        finally:
            client.close()

    def _beat(self, client: HeartbeatClient) -> None:
        tm = self.tm
        loop = tm._loop
        assert loop is not None
        while not self._stop.wait(self.interval_s):
            epoch = tm.epoch
            if epoch is None:
                continue  # (re-)registering
            try:
                answer = client.beat(tm.tm_id, tm.nonce, epoch, tm.metrics())
            except Exception as exc:
                silent = time.monotonic() - self.last_ok
                log.info("heartbeat failed (%s); JobManager silent for %.1fs", exc, silent)
                if silent > self.jm_timeout_s and tm.executor is not None:
                    loop.call_soon_threadsafe(
                        tm.on_jobmanager_changed, f"the JobManager is silent for {silent:.0f}s"
                    )
                    self.last_ok = time.monotonic()
                continue
            self.last_ok = time.monotonic()
            if not answer.get("known", False) or answer.get("epoch") != epoch:
                loop.call_soon_threadsafe(
                    tm.on_jobmanager_changed,
                    f"the JobManager changed (epoch {answer.get('epoch')}, was {epoch})",
                )
