"""The FastAPI application: the routes of :mod:`.routes`, errors as ``{"errors": [...]}``.

``create_app(gateway)`` is all a server or a test needs (``httpx.ASGITransport(app)``). Gateway
errors map to 404 (unknown job or trigger), 409 (conflicts with the job's state or with this
runtime) and 400; malformed bodies to 422, each with messages for people. OpenAPI at ``/docs``.
"""

from __future__ import annotations

from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from streamjob.jobmanager import dto, gateway, routes

_STATUS: list[tuple[type[gateway.GatewayError], int]] = [
    (gateway.JobNotFound, status.HTTP_404_NOT_FOUND),
    (gateway.GatewayConflict, status.HTTP_409_CONFLICT),
    (gateway.GatewayBadRequest, status.HTTP_400_BAD_REQUEST),
]


def _errors(code: int, *messages: str) -> JSONResponse:
    return JSONResponse(dto.ErrorResponse(errors=list(messages)).model_dump(), status_code=code)


async def _on_gateway_error(request: Request, exc: Exception) -> JSONResponse:
    for kind, code in _STATUS:
        if isinstance(exc, kind):
            return _errors(code, str(exc))
    return _errors(status.HTTP_500_INTERNAL_SERVER_ERROR, str(exc))


async def _on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    messages = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error.get("loc", ()))
        messages.append(f"{where}: {error.get('msg', 'invalid')}")
    return _errors(status.HTTP_422_UNPROCESSABLE_CONTENT, *messages or ["invalid request"])


async def _on_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    if exc.status_code == status.HTTP_404_NOT_FOUND:
        detail = f"{detail}: no route {request.method} {request.url.path} (see /docs)"
    return _errors(exc.status_code, detail)


def create_app(job_gateway: gateway.JobGateway) -> FastAPI:
    app = FastAPI(
        title="streamjob JobManager",
        version=gateway.streamjob_version(),
        description="Jobs, checkpoints, savepoints and metrics of a streamjob JobManager "
        "(modelled on Flink's REST API).",
    )
    app.state.gateway = job_gateway
    app.include_router(routes.router)
    app.add_exception_handler(gateway.GatewayError, _on_gateway_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(HTTPException, _on_http_error)
    return app
