"""``create_app``: the FastAPI application, built from settings and injected collaborators."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import anyio.to_thread
from argon2 import PasswordHasher
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from prometheus_client import CollectorRegistry

from ezspark_gateway.api import (
    hot_read,
    routes_auth,
    routes_environments,
    routes_evaluators,
    routes_exports,
    routes_handoff,
    routes_ops,
    routes_replay,
    routes_trainings,
)
from ezspark_gateway.api.context import AppContext
from ezspark_gateway.api.docs import install_docs
from ezspark_gateway.api.errors import install_error_handlers
from ezspark_gateway.api.metrics import GatewayMetrics
from ezspark_gateway.api.middleware import EdgeMiddleware
from ezspark_gateway.core.admission import Admission
from ezspark_gateway.core.env_check import EnvironmentCheck
from ezspark_gateway.core.environments import EnvironmentRegistry
from ezspark_gateway.core.evaluators import EvaluatorIssuer
from ezspark_gateway.core.ports import Clock, CommandPublisher
from ezspark_gateway.core.security import DEFAULT_TIME_COST, AuthThrottle, Passwords
from ezspark_gateway.settings import GatewaySettings
from ezspark_gateway.storage import Database
from ezspark_gateway.storage.attempts import DbAttempts
from ezspark_gateway.web import pages_auth, pages_compare, pages_trainings
from ezspark_gateway.web.render import STATIC_DIR

DESCRIPTION = """Create and follow NEAT trainings.

Authenticate with `Authorization: Bearer <token>`: get a session token from
`POST /api/auth/login` (or sign up), or a long-lived one from `POST /api/auth/tokens`.
Browsers use the HttpOnly session cookie set at log-in instead.
"""


def limit_threads(threads: int) -> None:
    """Cap the thread pool that runs sync handlers (call it on the event loop)."""
    anyio.to_thread.current_default_thread_limiter().total_tokens = threads


def settings_passwords(settings: GatewaySettings) -> Passwords:
    """Argon2id with the configured memory per hash and number of concurrent hashes."""
    hasher = PasswordHasher(
        time_cost=DEFAULT_TIME_COST, memory_cost=settings.argon2_memory_kib, parallelism=1
    )
    return Passwords(hasher, concurrency=settings.hash_concurrency)


def create_app(
    settings: GatewaySettings,
    *,
    publisher: CommandPublisher,
    broker_ping: Callable[[], None],
    registry: CollectorRegistry | None = None,
    database: Database | None = None,
    passwords: Passwords | None = None,
    clock: Clock = time.time,
    environments: EnvironmentRegistry | None = None,
    evaluators: EvaluatorIssuer | None = None,
) -> FastAPI:
    """Build the gateway app.

    ``broker_ping`` raises when the broker is unreachable (readiness).  Without
    ``database`` one is opened from ``settings.database_url`` and its tables created.
    ``environments`` is fed by the evaluators' announcements (an empty one if not given).
    ``evaluators`` issues users' own evaluators broker users (None: refused with 503).
    """
    if database is None:
        database = Database(settings.database_url)
        database.create_schema()
    environments = environments if environments is not None else EnvironmentRegistry(clock)
    ctx = AppContext(
        settings=settings,
        db=database,
        publisher=publisher,
        broker_ping=broker_ping,
        passwords=passwords or settings_passwords(settings),
        metrics=GatewayMetrics(registry if registry is not None else CollectorRegistry()),
        clock=clock,
        throttle=AuthThrottle(
            settings.auth_rate_limit, settings.auth_rate_window_s, DbAttempts(database), clock
        ),
        environments=environments,
        admission=Admission(settings.quotas, EnvironmentCheck(environments)),
        evaluators=evaluators,
    )
    app = _app(settings)
    app.state.ctx = ctx
    install_error_handlers(app)
    _install_routes(app)
    install_docs(app)
    _install_edge(app, ctx)
    return app


def _app(settings: GatewaySettings) -> FastAPI:
    """The bare FastAPI app: metadata, lifespan, and no hooks it does not need."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        limit_threads(settings.threads)
        yield

    app = FastAPI(
        lifespan=lifespan,
        title="EzSpark gateway",
        version="0.1.0",
        description=DESCRIPTION,
        # /docs and /redoc are served by install_docs, from local files (no CDN).
        docs_url=None,
        redoc_url=None,
        # The gateway exports Prometheus metrics and JSON logs of its own and sets up no
        # OpenTelemetry; with FastAPI's hooks on, every request still asked OpenTelemetry
        # for its three providers (environment lookups included) to find none.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    return app


def _install_routes(app: FastAPI) -> None:
    """The API's routes, the pages and the static files, in matching order."""
    # Routes are matched one by one in this order, each costing a few microseconds of
    # Python: the probes and the trainings' reads come first.  No two routers' paths
    # overlap (handoff's literal /api/trainings/handoff stays before {training_id}).
    for api in (
        routes_ops.router,
        routes_handoff.router,
        routes_trainings.router,
        routes_replay.router,
        routes_exports.router,
        routes_auth.router,
        routes_environments.router,
        routes_evaluators.router,
    ):
        # The API's routes go on the app itself.  include_router keeps a router as one
        # nested route that FastAPI matches route by route in Python, and again to
        # dispatch: that cost a read more than the bare app's whole request
        # (docs/production.md, "Speed").  Each route already carries its prefix and tags.
        app.router.routes.extend(api.routes)
    for pages in (
        pages_auth.router,
        pages_compare.router,  # before pages_trainings: /trainings/{id} would take "compare"
        pages_trainings.router,
    ):
        app.include_router(pages)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")


def _install_edge(app: FastAPI, ctx: AppContext) -> None:
    """The middleware every request passes."""
    settings = ctx.settings
    # One layer for what every request needs (request id and access log, metrics,
    # security headers, body limit), with the hot read's short path: see EdgeMiddleware.
    checkpoint_limit = (
        settings.max_checkpoint_bytes,
        f"checkpoint too large: the request body exceeds {settings.max_checkpoint_bytes} "
        "bytes (EZSPARK_MAX_CHECKPOINT_BYTES)",
    )
    app.add_middleware(
        EdgeMiddleware,
        metrics=ctx.metrics,
        max_bytes=settings.max_body_bytes,
        per_path={routes_handoff.HANDOFF_PATH: checkpoint_limit},
        hsts=settings.cookie_secure,
        hot={hot_read.PATH: hot_read.HotList(ctx)},
    )
