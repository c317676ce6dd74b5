"""The *observe* step of a reconcile cycle: read a StreamJob's world into an :class:`Observation`.

Reads the child pods (by label), the Service, the ConfigMap and, when the spec names one, the
credentials Secret (its keys only) through :mod:`.clients.kube`; asks the JobManager (through a
:data:`~.clients.jobmanager.Connector`) about the job, its checkpoints and a savepoint in flight.
A JobManager that cannot be reached is an observation, not an error.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
from collections.abc import Mapping
from typing import Any

from streamjob.jobmanager import dto
from streamjob.operator.clients import jobmanager, kube
from streamjob.operator.core import model, names, observation

log = logging.getLogger(__name__)


async def observe(
    *,
    client: kube.KubeClient,
    connector: jobmanager.Connector,
    body: Mapping[str, Any],
    spec: model.StreamJobSpec | None,
    recorded: observation.Recorded,
    known: Mapping[str, str],
    now: datetime.datetime,
) -> observation.Observation:
    meta = body["metadata"]
    name, namespace = meta["name"], meta["namespace"]
    pods = tuple(
        observation.pod_info(p) for p in await client.list_pods(namespace, names.labels(name))
    )
    service = await client.get_service(namespace, names.jobmanager_service(name))
    config_map = await client.get_config_map(namespace, names.config_map(name))
    uids = {p.uid for p in pods}
    vanished = tuple((n, uid) for n, uid in known.items() if uid not in uids)
    obs = observation.Observation(
        name=name,
        namespace=namespace,
        uid=meta.get("uid", ""),
        generation=int(meta.get("generation") or 0),
        now=now,
        pods=pods,
        service_exists=service is not None,
        config_map_data=None if config_map is None else dict(config_map.get("data") or {}),
        secret=await _secret(client, namespace, spec),
        vanished=vanished,
    )
    job_id = names.job_id(obs.uid, recorded.restore_generation)
    view = await observe_jobmanager(connector, obs, job_id=job_id, recorded=recorded)
    return dataclasses.replace(obs, jobmanager=view)


async def _secret(
    client: kube.KubeClient, namespace: str, spec: model.StreamJobSpec | None
) -> observation.SecretView | None:
    s3 = spec.checkpoints.s3 if spec is not None else None
    if s3 is None or s3.credentials_secret is None:
        return None
    keys = await client.get_secret_keys(namespace, s3.credentials_secret)
    return observation.SecretView(
        name=s3.credentials_secret, exists=keys is not None, keys=keys or frozenset()
    )


def target(obs: observation.Observation) -> jobmanager.JobManagerTarget:
    pod = obs.jobmanager_pod
    return jobmanager.JobManagerTarget(
        name=obs.name, namespace=obs.namespace, pod_ip=pod.ip if pod is not None else None
    )


async def observe_jobmanager(
    connector: jobmanager.Connector,
    obs: observation.Observation,
    *,
    job_id: str,
    recorded: observation.Recorded,
) -> observation.JobManagerView | None:
    pod = obs.jobmanager_pod
    if pod is None or not pod.healthy or pod.phase is not observation.PodPhase.RUNNING:
        return None
    try:
        client = connector(target(obs))
    except jobmanager.JobManagerError as exc:
        return observation.JobManagerView(reachable=False, error=str(exc))
    try:
        try:
            job = await client.job(job_id)
        except jobmanager.JobManagerError as exc:
            if not exc.not_found:
                raise
            return observation.JobManagerView(reachable=True)
        stats = await client.checkpoints(job_id)
        sp = recorded.savepoint
        savepoint = None
        if sp is not None and sp.state.in_flight and sp.trigger_id is not None:
            savepoint = await client.savepoint_status(job_id, sp.trigger_id)
        return observation.JobManagerView(
            reachable=True,
            job=job,
            last_checkpoint=_checkpoint(stats.latest.completed),
            last_savepoint=_checkpoint(stats.latest.savepoint),
            savepoint=savepoint,
        )
    except jobmanager.JobManagerError as exc:
        log.info("JobManager of %s/%s: %s", obs.namespace, obs.name, exc)
        return observation.JobManagerView(reachable=False, error=str(exc))
    finally:
        await client.aclose()


def _checkpoint(info: dto.CheckpointInfo | None) -> observation.CheckpointView | None:
    if info is None:
        return None
    return observation.CheckpointView(
        id=info.id,
        path=info.path,
        time_ms=info.trigger_timestamp_ms,
        size_bytes=info.size_bytes,
        duration_ms=info.duration_ms,
    )
