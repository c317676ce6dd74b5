"""The operator's settings: what ``streamjob operator`` takes on its command line.

Plain data shared by :mod:`.main` (which builds the kopf operator from it) and
:mod:`.handlers` (which configures kopf's own settings from it).
"""

from __future__ import annotations

import dataclasses

from streamjob.operator.core import plan


@dataclasses.dataclass(frozen=True, kw_only=True)
class OperatorConfig:
    #: namespaces to watch; empty: the whole cluster
    namespaces: tuple[str, ...] = ()
    #: seconds between periodic reconciles of each StreamJob (pod failures also trigger one)
    reconcile_interval_s: float = 10.0
    plan: plan.PlanSettings = dataclasses.field(default_factory=plan.PlanSettings)
    #: reach JobManagers through their Service (in the cluster) or their pod IP
    jobmanager_address: str = "service"
    jobmanager_timeout_s: float = 5.0
    #: an API server URL (tests, local runs); None: in-cluster config, else the kubeconfig
    kube_server: str | None = None
    #: run without kopf peering (a second replica then relies on the status preconditions)
    standalone: bool = False
    liveness_endpoint: str | None = None
    #: kopf's watch timeouts (short in tests, so the operator stops quickly)
    watch_server_timeout_s: float | None = None
    watch_client_timeout_s: float | None = None
