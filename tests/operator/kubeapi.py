"""A kmock Kubernetes API that behaves closer to a real API server, for the kopf tests.

kmock (pinned 0.8) stores objects and streams watch events, but assigns no uid, resourceVersion
or generation, knows no schemas and treats subresources as the object itself. This emulator adds,
before kmock applies a request:

- metadata: ``uid``, ``creationTimestamp`` and ``generation`` 1 on create, a new
  ``resourceVersion`` on every write, ``generation`` bumped only when ``spec`` changes;
- optimistic concurrency: a patch carrying ``metadata.resourceVersion`` that is not the current
  one answers 409 Conflict;
- the status subresource: ``.../status`` patches change only ``status``, main-resource patches
  never change it; the scale subresource maps ``spec.replicas`` to ``spec.job.parallelism``;
- StreamJobs are defaulted, pruned and validated against ``crds/streamjob.yaml`` (with the CEL
  stand-ins): an invalid write answers 422, unknown fields vanish as on a real cluster;
- new pods start in phase ``Pending``.

Not emulated: label selectors (the operator filters client-side), garbage collection of owned
objects, field managers, strategic merge of lists.
"""

from __future__ import annotations

import asyncio
import copy
import datetime
import itertools
import uuid
from collections.abc import Mapping
from typing import Any

import aiohttp.web
import attrs
import jsonpatch
import kmock
from kmock._internal import dicts
from typing_extensions import override

from tests.operator import schema

STREAMJOBS = kmock.resource("streamjob.io", "v1alpha1", "streamjobs")
STREAMJOB_KEY = "streamjob.io/v1alpha1/streamjobs"


def merge_diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """The merge patch turning ``old`` into ``new`` (None removes a key)."""
    patch: dict[str, Any] = {key: None for key in old if key not in new}
    for key, value in new.items():
        before = old.get(key)
        if isinstance(value, Mapping) and isinstance(before, Mapping):
            inner = merge_diff(before, value)
            if inner:
                patch[key] = inner
        elif key not in old or value != before:
            patch[key] = copy.deepcopy(value)
    return patch


@attrs.define(kw_only=True)
class ApiServer(kmock.KubernetesEmulator):
    _versions: itertools.count[int] = attrs.field(factory=lambda: itertools.count(1), init=False)
    _writes: asyncio.Lock = attrs.field(factory=asyncio.Lock, init=False)
    #: every rejected write, for assertions: (action, name, message)
    rejected: list[tuple[str, str, str]] = attrs.field(factory=list, init=False)
    #: every write, for assertions: (action, resource plural, name)
    writes: list[tuple[str, str, str | None]] = attrs.field(factory=list, init=False)

    def install(self) -> None:
        self.resources.load_bundled()
        self.resources[STREAMJOB_KEY] = kmock.ResourceInfo(
            kind="StreamJob",
            singular="streamjob",
            namespaced=True,
            shortnames={"sj"},
            verbs={"get", "list", "watch", "create", "patch", "update", "delete"},
            subresources={"status", "scale"},
        )

    @override
    async def _handle(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        writes = (kmock.action.CREATE, kmock.action.UPDATE, kmock.action.DELETE)
        if request.resource is None or request.action not in writes:
            return await super()._handle(request)
        async with self._writes:
            plural = request.resource.plural if request.resource else None
            self.writes.append((str(request.action.value), str(plural), request.name))
            try:
                self._prepare(request)
            except kmock.KubernetesError as exc:
                self.rejected.append((str(request.action), str(request.name), str(exc.message)))
                return await self._render_error(exc)
            return await super()._handle(request)

    # -- the request, rewritten before kmock applies it -----------------------------------------
    def _prepare(self, request: kmock.Request) -> None:
        data = request.data
        if request.action == kmock.action.CREATE and isinstance(data, dict):
            self._prepare_create(request, data)
        elif request.action == kmock.action.UPDATE and isinstance(data, dict | list):
            self._prepare_update(request, data)

    def _now(self) -> str:
        return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    def _prepare_create(self, request: kmock.Request, data: dict[str, Any]) -> None:
        meta = data.setdefault("metadata", {})
        if request.namespace and not meta.get("namespace"):
            meta["namespace"] = request.namespace
        key = (request.resource, meta.get("namespace"), meta.get("name"))
        if key in self.objects and not self.objects[key].deleted:
            return  # kmock answers 409
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = self._now()
        meta["generation"] = 1
        meta["resourceVersion"] = str(next(self._versions))
        if request.resource == STREAMJOBS:
            data.pop("status", None)
            stored, errors = schema.admit(data)
            self._reject_if(errors, meta.get("name"))
            data.clear()
            data.update(stored)
        if request.resource == kmock.resource("", "v1", "pods"):
            data.setdefault("status", {}).setdefault("phase", "Pending")

    def _prepare_update(self, request: kmock.Request, data: dict[str, Any] | list[Any]) -> None:
        key = (request.resource, request.namespace, request.name)
        if key not in self.objects or self.objects[key].deleted:
            return  # kmock answers 404
        current = self.objects[key].raw
        if isinstance(data, list):
            self._prepare_json_patch(request, data, current)
            return
        meta = data.get("metadata") or {}
        expected = meta.pop("resourceVersion", None)
        actual = current.get("metadata", {}).get("resourceVersion")
        if expected is not None and expected != actual:
            raise kmock.KubernetesError(
                status=409,
                reason="Conflict",
                message=f"the object has been modified (resourceVersion {expected} != {actual})",
            )
        streamjob = request.resource == STREAMJOBS
        if request.subresource == "scale" and streamjob:
            replicas = (data.get("spec") or {}).get("replicas")
            changes: dict[str, Any] = {"spec": {"job": {"parallelism": replicas}}}
        elif request.subresource == "status":
            changes = {"status": data.get("status")} if "status" in data else {}
        else:
            changes = {k: v for k, v in data.items() if k != "status" or not streamjob}
        target = dicts.patch_dict(copy.deepcopy(current), changes)
        if streamjob:
            stored, errors = schema.admit(target, old=current)
            self._reject_if(errors, request.name)
            target = stored
        self._stamp(current, target)
        data.clear()
        data.update(merge_diff(current, target))

    def _stamp(self, current: Mapping[str, Any], target: dict[str, Any]) -> None:
        target_meta = target.setdefault("metadata", {})
        if target.get("spec") != current.get("spec"):
            target_meta["generation"] = int(current["metadata"].get("generation") or 1) + 1
        target_meta["resourceVersion"] = str(next(self._versions))

    def _prepare_json_patch(
        self, request: kmock.Request, ops: list[Any], current: dict[str, Any]
    ) -> None:
        """RFC 6902 (kopf's finalizer patches): a failed ``test`` op answers 422, as a real API
        server does; the rest is rewritten as top-level replacements kmock applies."""
        try:
            target = jsonpatch.apply_patch(copy.deepcopy(current), ops)
        except jsonpatch.JsonPatchTestFailed as exc:
            raise kmock.KubernetesError(status=422, reason="Invalid", message=str(exc)) from exc
        if request.subresource == "status":
            target = {**current, "status": target.get("status")}
        elif request.resource == STREAMJOBS:
            target = {**target, "status": current.get("status")}
            target = {k: v for k, v in target.items() if v is not None}
        self._stamp(current, target)
        ops.clear()
        for key in current:
            if key not in target:
                ops.append({"op": "remove", "path": f"/{key}"})
        for key, value in target.items():
            if current.get(key) != value:
                op = "replace" if key in current else "add"
                ops.append({"op": op, "path": f"/{key}", "value": value})

    def _reject_if(self, errors: list[str], name: str | None) -> None:
        if errors:
            raise kmock.KubernetesError(
                status=422,
                reason="Invalid",
                message=f"StreamJob {name!r} is invalid: " + "; ".join(errors),
            )

    # -- helpers for tests ----------------------------------------------------------------------
    def live(self, resource: str, namespace: str) -> dict[str, dict[str, Any]]:
        """Objects of a resource in a namespace, by name, as plain dicts."""
        found = {}
        for (res, ns, name), obj in self.objects.items():
            if res == kmock.resource(resource) and ns == namespace and not obj.deleted:
                found[name] = obj.raw
        return found
