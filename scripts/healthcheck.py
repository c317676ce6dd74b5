"""The image's HEALTHCHECK: GET the health endpoint of whatever role this container runs.

``STREAMJOB_HEALTH_URL`` names it; unset, the first of the known endpoints that answers wins:
the JobManager (8081 ``/healthz``), a TaskManager (8082 ``/healthz``), the operator's kopf
liveness endpoint (8080 ``/healthz``). Exit 0 when healthy, 1 otherwise (Docker's contract).
"""

from __future__ import annotations

import os
import sys
import urllib.request

KNOWN = (
    "http://127.0.0.1:8081/healthz",
    "http://127.0.0.1:8082/healthz",
    "http://127.0.0.1:8080/healthz",
)


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (fixed http URLs)
            return bool(200 <= response.status < 300)
    except OSError:
        return False


def main() -> int:
    configured = os.environ.get("STREAMJOB_HEALTH_URL")
    urls = (configured,) if configured else KNOWN
    return 0 if any(healthy(url) for url in urls) else 1


if __name__ == "__main__":
    sys.exit(main())
