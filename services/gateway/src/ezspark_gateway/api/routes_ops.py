"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from collections.abc import Callable

import structlog
from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ezspark_gateway.api.deps import Ctx
from ezspark_gateway.api.schemas import Status

router = APIRouter(tags=["ops"])
log = structlog.get_logger(__name__)


@router.get("/healthz", response_model=Status)
async def healthz() -> Status:
    """The process is up and serving requests."""
    return Status(status="ok")


def _check(name: str, probe: Callable[[], None]) -> str:
    """ "ok" or "error"; the exception goes to the log, never to the (public) answer,
    where it could show hosts, users or versions."""
    try:
        probe()
    except Exception as exc:
        log.warning("probe_failed", check=name, error=f"{type(exc).__name__}: {exc}"[:500])
        return "error"
    return "ok"


@router.get("/readyz", response_model=Status, responses={503: {"model": Status}})
async def readyz(ctx: Ctx) -> JSONResponse:
    """200 when the database and the broker both answer, else 503 naming the broken one."""
    checks = {
        "database": await run_in_threadpool(_check, "database", ctx.db.ping),
        "broker": await run_in_threadpool(_check, "broker", ctx.broker_ping),
    }
    ready = all(v == "ok" for v in checks.values())
    if not ready:
        log.warning("not_ready", **checks)
    body = Status(status="ok" if ready else "unavailable", checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)


@router.get("/metrics", include_in_schema=False)
def metrics(ctx: Ctx) -> Response:
    """Prometheus text exposition of this app's registry."""
    return Response(generate_latest(ctx.metrics.exposed), media_type=CONTENT_TYPE_LATEST)
