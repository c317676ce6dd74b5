"""RBAC: the chart grants exactly what the operator calls, no more and no less.

The calls are derived from the code, not listed by hand:

- the operator's own calls: every ``self.core.<method>`` / ``self.custom.<method>`` that
  ``operator/clients/kube.py`` (the only module importing ``kubernetes``) refers to, mapped from
  the client's method names (``read_namespaced_secret`` -> get secrets, ``patch_namespaced_custom
  _object_status`` -> patch streamjobs/status, ...);
- kopf's calls, from the registry ``operator/handlers.py`` builds: change handlers and timers
  (list, watch, and patch for finalizers and annotations) and event handlers (list, watch) on their
  resources; events (create) for kopf's posting; CRDs (list, watch) for its resource observation;
  namespaces (list, watch) only when it serves named namespaces (kopf's ``namespace_observer``).

Both modes are compared both ways: cluster-wide (one ClusterRole) and namespaced (a Role per
watched namespace plus a ClusterRole for what kopf observes cluster-wide).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from typing import Any

from streamjob.operator import config as config_
from streamjob.operator import handlers
from streamjob.operator.core import model
from tests.deploy.conftest import ROOT

Render = Callable[..., list[dict[str, Any]]]
Grant = tuple[str, str, str]  # (api group, resource[/subresource], verb)

VERBS = {"read": "get", "get": "get", "list": "list", "create": "create", "patch": "patch"}
VERBS |= {"delete": "delete", "replace": "update"}
CORE_METHOD = re.compile(r"^(?P<verb>[a-z]+)_namespaced_(?P<kind>[a-z_]+?)(?P<status>_status)?$")
CUSTOM_METHOD = re.compile(r"^(?P<verb>[a-z]+)_namespaced_custom_object(?P<status>_status)?$")
STREAMJOBS = (model.GROUP, model.PLURAL)
KOPF_CHANGE_VERBS = ("list", "watch", "patch")
KOPF_WATCH_VERBS = ("list", "watch")


def client_methods() -> set[tuple[str, str]]:
    """(api object, method) for every ``self.core.X`` / ``self.custom.X`` in kube.py."""
    tree = ast.parse((ROOT / "operator" / "clients" / "kube.py").read_text())
    found = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Attribute)
            and isinstance(node.value.value, ast.Name)
            and node.value.value.id == "self"
            and node.value.attr in ("core", "custom")
        ):
            found.add((node.value.attr, node.attr))
    return found


def grant_of(api: str, method: str) -> Grant:
    if api == "custom":
        match = CUSTOM_METHOD.match(method)
        assert match, f"unmapped custom-object call {method}"
        group, plural = STREAMJOBS
    else:
        match = CORE_METHOD.match(method)
        assert match, f"unmapped core call {method}"
        group, plural = "", match["kind"].replace("_", "") + "s"
    resource = plural + ("/status" if match["status"] else "")
    return group, resource, VERBS[match["verb"]]


def operator_grants() -> set[Grant]:
    return {grant_of(api, method) for api, method in client_methods()}


def kopf_grants(*, clusterwide: bool) -> tuple[set[Grant], set[Grant]]:
    """(grants in the served namespaces, cluster-scoped grants) of kopf itself."""
    registry = handlers.build_registry(
        reconciler=object(),  # type: ignore[arg-type]  # only closed over, never called here
        config=config_.OperatorConfig(),
    )
    namespaced: set[Grant] = {("", "events", "create")}
    for registered, verbs in (
        (registry._changing.get_all_handlers(), KOPF_CHANGE_VERBS),
        (registry._spawning.get_all_handlers(), KOPF_CHANGE_VERBS),
        (registry._watching.get_all_handlers(), KOPF_WATCH_VERBS),
    ):
        for handler in registered:
            selector = handler.selector
            group, plural = selector.group or "", selector.plural or selector.any_name
            namespaced |= {(group, plural, verb) for verb in verbs}
    cluster: set[Grant] = {
        ("apiextensions.k8s.io", "customresourcedefinitions", verb) for verb in KOPF_WATCH_VERBS
    }
    if not clusterwide:
        cluster |= {("", "namespaces", verb) for verb in KOPF_WATCH_VERBS}
    return namespaced, cluster


def granted(role: dict[str, Any]) -> set[Grant]:
    return {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def test_derivation_sees_the_calls_it_should() -> None:
    """Guards the derivation itself (a parser that finds nothing would make the tests vacuous)."""
    grants = operator_grants()
    assert ("", "secrets", "get") in grants
    assert ("streamjob.io", "streamjobs/status", "patch") in grants
    assert ("", "pods", "delete") in grants
    namespaced, _ = kopf_grants(clusterwide=True)
    assert ("", "pods", "watch") in namespaced and ("streamjob.io", "streamjobs", "patch") in (
        namespaced
    )


def test_no_secret_is_listed_or_written() -> None:
    secrets = {grant for grant in operator_grants() if grant[1] == "secrets"}
    assert secrets == {("", "secrets", "get")}


def test_clusterwide_rbac_is_exactly_what_the_operator_calls(render: Render) -> None:
    docs = render()
    assert [d for d in docs if d["kind"] in ("Role", "RoleBinding")] == []
    (role,) = [d for d in docs if d["kind"] == "ClusterRole"]
    namespaced, cluster = kopf_grants(clusterwide=True)
    needed = operator_grants() | namespaced | cluster
    have = granted(role)
    assert have - needed == set(), "granted but never called"
    assert needed - have == set(), "called but not granted"


def test_namespaced_rbac_is_exactly_what_the_operator_calls(render: Render) -> None:
    docs = render(watchNamespaces=["team-a", "team-b"])
    roles = {d["metadata"]["namespace"]: d for d in docs if d["kind"] == "Role"}
    bindings = {d["metadata"]["namespace"] for d in docs if d["kind"] == "RoleBinding"}
    assert set(roles) == bindings == {"team-a", "team-b"}
    namespaced, cluster = kopf_grants(clusterwide=False)
    for role in roles.values():
        have = granted(role)
        needed = operator_grants() | namespaced
        assert (have - needed, needed - have) == (set(), set())
    (observer,) = [d for d in docs if d["kind"] == "ClusterRole"]
    assert granted(observer) == cluster
