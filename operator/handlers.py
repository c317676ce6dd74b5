"""The kopf shell: the only module that registers kopf handlers (import-linter checks it).

Every handler funnels into the one reconcile path of :class:`~.reconciler.Reconciler`:
``on.create``/``on.update``/``on.resume`` and a timer reconcile the StreamJob; a child pod that
ends or disappears pokes an immediate reconcile of its StreamJob (so a failed TaskManager is
replaced and reported without waiting for the timer); ``on.delete`` runs the deletion flow
behind the ``streamjob.io/finalizer``. kopf's own bookkeeping goes to annotations, not status
(the status schema is explicit, and an API server prunes fields it does not know).
"""

from __future__ import annotations

import logging
from typing import Any

import kopf

from streamjob.operator import config as config_
from streamjob.operator import reconciler as reconciler_
from streamjob.operator.core import model, names

RESOURCE = (model.GROUP, model.VERSION, model.PLURAL)
ANNOTATION_PREFIX = "streamjob.io"
BACKGROUND_POLL_S = 1.0


def build_registry(
    *, reconciler: reconciler_.Reconciler, config: config_.OperatorConfig
) -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()

    @kopf.on.startup(registry=registry)
    def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        settings.persistence.finalizer = names.FINALIZER
        settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(
            prefix=ANNOTATION_PREFIX
        )
        settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
            prefix=ANNOTATION_PREFIX, key="last-handled-configuration"
        )
        settings.posting.level = logging.WARNING  # our own Events say what happened
        # a timer still running when its StreamJob is deleted holds the finalizer until kopf
        # looks again (60 s by default): look again soon
        settings.background.cancellation_polling = BACKGROUND_POLL_S
        if config.watch_server_timeout_s is not None:
            settings.watching.server_timeout = config.watch_server_timeout_s
        if config.watch_client_timeout_s is not None:
            settings.watching.client_timeout = config.watch_client_timeout_s
            settings.watching.connect_timeout = config.watch_client_timeout_s

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        if config.kube_server is not None:
            return kopf.ConnectionInfo(server=config.kube_server, insecure=True)
        found: kopf.ConnectionInfo | None = kopf.login_via_client(**kwargs)
        return found

    @kopf.on.resume(*RESOURCE, registry=registry)
    @kopf.on.create(*RESOURCE, registry=registry)
    @kopf.on.update(*RESOURCE, registry=registry)
    async def changed(*, namespace: str | None, name: str, **_: Any) -> None:
        await reconciler.reconcile(namespace or "default", name)

    @kopf.timer(*RESOURCE, interval=config.reconcile_interval_s, registry=registry)
    async def periodic(*, namespace: str | None, name: str, meta: kopf.Meta, **_: Any) -> None:
        if meta.get("deletionTimestamp"):
            return  # the deletion handler owns it now
        await reconciler.reconcile(namespace or "default", name)

    @kopf.on.delete(*RESOURCE, registry=registry)
    async def deleted(*, namespace: str | None, name: str, **_: Any) -> None:
        await reconciler.finalize(namespace or "default", name)

    @kopf.on.event(
        "", "v1", "pods", labels={names.LABEL_MANAGED_BY: names.MANAGED_BY}, registry=registry
    )
    async def pod_changed(*, type: str, body: kopf.Body, namespace: str | None, **_: Any) -> None:
        job = (body.get("metadata", {}).get("labels") or {}).get(names.LABEL_JOB)
        phase = (body.get("status") or {}).get("phase")
        if job and (type == "DELETED" or phase in ("Failed", "Succeeded")):
            reconciler.poke(namespace or "default", job)

    @kopf.on.cleanup(registry=registry)
    async def stopping(**_: Any) -> None:
        await reconciler.close()

    return registry
