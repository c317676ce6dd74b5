"""The JobManager's REST API (DESIGN.md section 7): FastAPI routes over a gateway object.

:mod:`.dto` holds the frozen REST shapes (pydantic only, so the operator and the HTTP client can
import them without FastAPI); :mod:`.gateway` the :class:`~.gateway.JobGateway` protocol the
routes call and its local implementation over a ``LocalJobRunner``; :mod:`.routes` and
:mod:`.app` the thin HTTP layer; :mod:`.metrics` the Prometheus text; :mod:`.server` runs uvicorn
in the job's own asyncio loop. Nothing is re-exported here, so importing a DTO never imports
FastAPI.
"""
