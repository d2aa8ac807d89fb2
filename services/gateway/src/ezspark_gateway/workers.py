"""Several HTTP worker processes (``EZSPARK_WORKERS`` > 1).

Each worker is a whole gateway: its own database pool, broker connection, event consumer
and announcement subscription.  Nothing is shared in memory: accounts, sessions and the
brute-force buckets are in the database, commands and events in RabbitMQ, so any worker
answers any request.  Events are idempotent and monotonic (``core.events``), so several
consumers of the events queue are safe, as with several replicas.  Metrics are written
to a multiprocess directory that every worker's ``/metrics`` sums.
"""

from __future__ import annotations

import os
import signal
import tempfile
import threading
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import structlog
import uvicorn
from prometheus_client import CollectorRegistry
from uvicorn.supervisors import Multiprocess

from ezspark_common.logging import configure_logging
from ezspark_common.service.announce import ask_evaluators
from ezspark_common.wire.messages import ANNOUNCE_REQUESTS_EXCHANGE
from ezspark_gateway.app import limit_threads
from ezspark_gateway.server import server_options
from ezspark_gateway.settings import GatewaySettings

log = structlog.get_logger("ezspark_gateway")
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def serve_workers(settings: GatewaySettings) -> None:
    """Run ``settings.workers`` worker processes on one socket until SIGINT/SIGTERM."""
    # prometheus_client reads this in each (spawned) worker at import: its counters then
    # live in files there, which /metrics sums over every worker.
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="ezspark-gateway-metrics-")
    options = server_options(settings)
    config = uvicorn.Config(
        "ezspark_gateway.workers:worker_app", factory=True, workers=settings.workers, **options
    )
    log.info("gateway_workers_starting", workers=settings.workers, port=settings.port)
    Multiprocess(config, sockets=[config.bind_socket()]).run()


def worker_app() -> ASGIApp:
    """One worker's gateway (uvicorn calls this in the worker process)."""
    from ezspark_gateway.main import build_runtime, start_sweeper  # main imports this module

    settings = GatewaySettings()
    configure_logging(settings.log_level, json_logs=settings.log_json)
    server_options(settings)  # the header timeout, in this process too
    runtime = build_runtime(settings, CollectorRegistry())

    def consume() -> None:
        try:
            runtime.broker.run()
        except Exception as exc:
            log.error("event_consumer_died", error=str(exc))
        if not runtime.stopping.is_set():  # lost for good: let the supervisor restart us
            os.kill(os.getpid(), signal.SIGTERM)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send, start=_start, stop=_stop)
            return
        await runtime.app(scope, receive, send)

    thread = threading.Thread(target=consume, name="event-consumer", daemon=True)

    def _start() -> None:
        limit_threads(settings.threads)
        thread.start()
        start_sweeper(runtime, settings)
        ask_evaluators(runtime.broker, ANNOUNCE_REQUESTS_EXCHANGE, "gateway", runtime.stopping)

    def _stop() -> None:
        runtime.stopping.set()
        runtime.broker.stop()
        thread.join(timeout=15)
        runtime.db.dispose()

    return app


async def _lifespan(
    receive: Receive, send: Send, *, start: Callable[[], None], stop: Callable[[], None]
) -> None:
    """The ASGI lifespan protocol: ``start`` at start-up, ``stop`` at shutdown."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            start()
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            stop()
            await send({"type": "lifespan.shutdown.complete"})
            return
