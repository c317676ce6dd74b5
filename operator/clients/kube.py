"""The operator's calls to the Kubernetes API (the only module importing ``kubernetes``).

Plain dicts in and out (answers are read raw, not as the client's models), each blocking call
run in a thread. Conventions: a missing object reads as None and deleting it is a no-op; creating
an object that exists raises :class:`AlreadyExists` ("already there" for deterministic names);
a status patch carries the resourceVersion the cycle observed, and :class:`Conflict` means
someone (a user, kopf, a second operator replica) changed the object since: the cycle is dropped
and run again. Label selection is also done client-side (the kmock test server ignores it).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import uuid
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import kubernetes.client
import kubernetes.config
from kubernetes.client.exceptions import ApiException

from streamjob.operator.core import model

T = TypeVar("T")


class KubeError(Exception):
    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class Conflict(KubeError):
    pass


class AlreadyExists(Conflict):
    pass


def configuration(*, server: str | None = None) -> kubernetes.client.Configuration:
    """The API server given (tests, local runs), else in-cluster, else the kubeconfig."""
    if server is not None:
        return kubernetes.client.Configuration(host=server)
    config = kubernetes.client.Configuration()
    try:
        kubernetes.config.load_incluster_config(client_configuration=config)
    except kubernetes.config.ConfigException:
        kubernetes.config.load_kube_config(client_configuration=config)
    return config


class KubeClient:
    def __init__(self, config: kubernetes.client.Configuration) -> None:
        self._api = kubernetes.client.ApiClient(config)
        self.core = kubernetes.client.CoreV1Api(self._api)
        self.custom = kubernetes.client.CustomObjectsApi(self._api)

    def close(self) -> None:
        self._api.close()

    async def _run(self, call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        def blocking() -> Any:
            response = call(*args, _preload_content=False, **kwargs)
            data = response.data
            return json.loads(data) if data else None

        try:
            return await asyncio.to_thread(blocking)
        except ApiException as exc:
            message = f"{getattr(call, '__name__', 'call')}: {exc.status} {exc.reason}"
            with contextlib.suppress(ValueError, TypeError, AttributeError):
                message += f": {json.loads(exc.body)['message']}"
            if exc.status == 409:
                raise Conflict(message, status=409) from exc
            raise KubeError(message, status=exc.status) from exc

    async def _maybe(self, call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return await self._run(call, *args, **kwargs)
        except KubeError as exc:
            if exc.status == 404:
                return None
            raise

    # -- StreamJobs ---------------------------------------------------------------------------
    async def get_streamjob(self, namespace: str, name: str) -> dict[str, Any] | None:
        found: dict[str, Any] | None = await self._maybe(
            self.custom.get_namespaced_custom_object,
            model.GROUP,
            model.VERSION,
            namespace,
            model.PLURAL,
            name,
        )
        return found

    async def patch_streamjob_status(
        self, namespace: str, name: str, status: Mapping[str, Any], *, resource_version: str | None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"status": dict(status)}
        if resource_version is not None:
            body["metadata"] = {"resourceVersion": resource_version}
        patched: dict[str, Any] = await self._run(
            self.custom.patch_namespaced_custom_object_status,
            model.GROUP,
            model.VERSION,
            namespace,
            model.PLURAL,
            name,
            body,
        )
        return patched

    # -- children -----------------------------------------------------------------------------
    async def list_pods(self, namespace: str, labels: Mapping[str, str]) -> list[dict[str, Any]]:
        selector = ",".join(f"{k}={v}" for k, v in labels.items())
        found = await self._run(self.core.list_namespaced_pod, namespace, label_selector=selector)
        items: list[dict[str, Any]] = (found or {}).get("items") or []
        return [
            pod
            for pod in items
            if all(
                (pod.get("metadata", {}).get("labels") or {}).get(k) == v for k, v in labels.items()
            )
        ]

    async def create(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        kind, namespace = manifest["kind"], manifest["metadata"]["namespace"]
        create = {
            "Pod": self.core.create_namespaced_pod,
            "Service": self.core.create_namespaced_service,
            "ConfigMap": self.core.create_namespaced_config_map,
        }[kind]
        try:
            created: dict[str, Any] = await self._run(create, namespace, dict(manifest))
        except Conflict as exc:  # a create conflicts only with an object of the same name
            raise AlreadyExists(str(exc), status=409) from exc
        return created

    async def delete_pod(self, namespace: str, name: str, *, uid: str | None = None) -> None:
        """Delete a pod; with ``uid`` only that incarnation (never its replacement)."""
        body = {"preconditions": {"uid": uid}} if uid else None
        await self._maybe(self.core.delete_namespaced_pod, name, namespace, body=body)

    async def get_service(self, namespace: str, name: str) -> dict[str, Any] | None:
        found: dict[str, Any] | None = await self._maybe(
            self.core.read_namespaced_service, name, namespace
        )
        return found

    async def delete_service(self, namespace: str, name: str) -> None:
        await self._maybe(self.core.delete_namespaced_service, name, namespace)

    async def get_config_map(self, namespace: str, name: str) -> dict[str, Any] | None:
        found: dict[str, Any] | None = await self._maybe(
            self.core.read_namespaced_config_map, name, namespace
        )
        return found

    async def apply_config_map(self, manifest: Mapping[str, Any]) -> None:
        try:
            await self.create(manifest)
        except AlreadyExists:
            meta = manifest["metadata"]
            await self._run(
                self.core.patch_namespaced_config_map,
                meta["name"],
                meta["namespace"],
                {"data": dict(manifest["data"])},
            )

    async def delete_config_map(self, namespace: str, name: str) -> None:
        await self._maybe(self.core.delete_namespaced_config_map, name, namespace)

    async def get_secret_keys(self, namespace: str, name: str) -> frozenset[str] | None:
        """The keys of a Secret (never its values), or None when it does not exist."""
        found = await self._maybe(self.core.read_namespaced_secret, name, namespace)
        if found is None:
            return None
        return frozenset({**(found.get("data") or {}), **(found.get("stringData") or {})})

    # -- events -------------------------------------------------------------------------------
    async def post_event(
        self, involved: Mapping[str, Any], *, type: str, reason: str, message: str
    ) -> None:
        meta = involved.get("metadata") or {}
        now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        namespace = meta.get("namespace") or "default"
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "name": f"{meta.get('name')}.{uuid.uuid4().hex[:16]}",
                "namespace": namespace,
            },
            "involvedObject": {
                "apiVersion": involved.get("apiVersion", model.API_VERSION),
                "kind": involved.get("kind", model.KIND),
                "name": meta.get("name"),
                "namespace": namespace,
                "uid": meta.get("uid"),
                "resourceVersion": meta.get("resourceVersion"),
            },
            "type": type,
            "reason": reason,
            "message": message[:1024],
            "source": {"component": "streamjob-operator"},
            "reportingComponent": "streamjob-operator",
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        await self._run(self.core.create_namespaced_event, namespace, event)
