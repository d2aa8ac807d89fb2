"""``ezspark-gateway``: settings → logging → database → broker → event consumer → uvicorn."""

from __future__ import annotations

import signal
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from types import FrameType

import structlog
import uvicorn
from fastapi import FastAPI
from prometheus_client import CollectorRegistry, start_http_server

from ezspark_common.broker import Broker, BrokerError, connect
from ezspark_common.logging import configure_logging
from ezspark_common.service.announce import ask_evaluators
from ezspark_common.wire.messages import (
    ANNOUNCE_EXCHANGE,
    ANNOUNCE_REQUESTS_EXCHANGE,
    COMMANDS_QUEUE,
    EVENTS_QUEUE,
)
from ezspark_common.wire.routing import fronted_queues
from ezspark_gateway.app import create_app
from ezspark_gateway.broker_admin import BrokerAdmin
from ezspark_gateway.bus import AnnouncementConsumer, BrokerPublisher, EventConsumer, broker_ping
from ezspark_gateway.core.environments import EnvironmentRegistry
from ezspark_gateway.core.evaluators import EvaluatorIssuer
from ezspark_gateway.core.events import EventApplier
from ezspark_gateway.server import server_config
from ezspark_gateway.settings import GatewaySettings
from ezspark_gateway.storage import Database, Repository
from ezspark_gateway.workers import serve_workers

log = structlog.get_logger("ezspark_gateway")


@dataclass
class Runtime:
    """Everything ``main`` starts, wired together but not yet serving."""

    app: FastAPI
    broker: Broker
    db: Database
    stopping: threading.Event = field(default_factory=threading.Event)


def build_runtime(settings: GatewaySettings, registry: CollectorRegistry) -> Runtime:
    """Open the database and the broker, build the app, register the event consumer and
    subscribe to the evaluators' announcements."""
    db = Database(settings.database_url)
    db.create_schema()  # also adds columns newer than an existing database
    broker = connect(
        settings.broker_url,
        registry=registry,
        fronted=fronted_queues(),
        declares=settings.broker_declares,
    )
    for queue in (COMMANDS_QUEUE, EVENTS_QUEUE):
        broker.declare(queue)
    environments = EnvironmentRegistry(time.time)
    app = create_app(
        settings,
        publisher=BrokerPublisher(broker),
        broker_ping=lambda: broker_ping(broker),
        registry=registry,
        database=db,
        environments=environments,
        evaluators=evaluator_issuer(settings),
    )
    runtime = Runtime(app=app, broker=broker, db=db)
    metrics = app.state.ctx.metrics
    applier = EventApplier(db.sessions, history_recent=settings.history_recent)
    consumer = EventConsumer(applier, metrics, runtime.stopping)
    # prefetch=1: events of one training are applied in the order they were sent.
    broker.consume(EVENTS_QUEUE, consumer, prefetch=1)
    broker.subscribe(ANNOUNCE_EXCHANGE, AnnouncementConsumer(environments, metrics))
    return runtime


def evaluator_issuer(settings: GatewaySettings) -> EvaluatorIssuer | None:
    """The issuer of users' evaluator credentials, if the management API is configured."""
    if not settings.broker_admin_url:
        return None
    vhost = urllib.parse.unquote(urllib.parse.urlsplit(settings.evaluator_broker_url).path[1:])
    admin = BrokerAdmin(
        settings.broker_admin_url,
        settings.broker_admin_user,
        settings.broker_admin_password.get_secret_value(),
        vhost or "/",
    )
    return EvaluatorIssuer(admin, settings.evaluator_broker_url, settings.max_user_evaluators)


def sweep_once(issuer: EvaluatorIssuer, db: Database, now: float) -> int:
    """Delete the broker users of tokens not live at ``now``; how many."""
    with db.session() as session:
        repo = Repository(session)
        return issuer.sweep(lambda ids: repo.live_token_ids(ids, now))


def sweep_evaluators(
    issuer: EvaluatorIssuer, db: Database, stopping: threading.Event, every_s: float
) -> None:
    """Every ``every_s``, delete the broker users of tokens that expired (or died any other
    way), until ``stopping``; a failed sweep is logged and tried again next time."""
    while not stopping.wait(every_s):
        try:
            gone = sweep_once(issuer, db, time.time())
            if gone:
                log.info("evaluator_credentials_swept", deleted=gone)
        except Exception as exc:  # the management API or the database away for a while
            log.warning("evaluator_sweep_failed", error=str(exc))


def start_sweeper(rt: Runtime, settings: GatewaySettings) -> None:
    """Sweep expired tokens' broker users in the background, if this gateway issues any."""
    issuer = rt.app.state.ctx.evaluators
    if issuer is not None:
        threading.Thread(
            target=sweep_evaluators,
            args=(issuer, rt.db, rt.stopping, settings.evaluator_sweep_s),
            name="evaluator-sweep",
            daemon=True,
        ).start()


def _consume(broker: Broker, server: uvicorn.Server, died: threading.Event) -> None:
    """Run the broker's delivery loop; if the broker is lost for good, stop the server."""
    try:
        broker.run()
    except Exception as exc:
        log.error("event_consumer_died", error=str(exc))
        # Exit so the supervisor restarts us, rather than serve ever staler state.
        died.set()
        server.should_exit = True


def _exit_on_sigterm(_sig: int, _frame: FrameType | None) -> None:
    raise SystemExit(0)


def main() -> None:
    """Start the gateway (one process, or ``workers`` of them) until SIGINT/SIGTERM."""
    settings = GatewaySettings()
    configure_logging(settings.log_level, json_logs=settings.log_json)
    if settings.workers > 1:
        # Migrate once, before any worker starts (they then find the newest revision).
        db = Database(settings.database_url)
        db.create_schema()
        db.dispose()
        serve_workers(settings)
        return
    serve_one(settings)


def serve_one(settings: GatewaySettings) -> None:
    """The gateway in this process: HTTP server, event consumer and announcements."""
    registry = CollectorRegistry()
    if settings.metrics_port:
        start_http_server(settings.metrics_port, addr=settings.host, registry=registry)
    try:
        rt = build_runtime(settings, registry)
    except BrokerError as exc:
        log.error("broker_unreachable", error=str(exc))
        raise SystemExit(1) from None

    server = uvicorn.Server(server_config(settings, rt.app))
    died = threading.Event()
    thread = threading.Thread(
        target=_consume, args=(rt.broker, server, died), name="event-consumer", daemon=True
    )
    thread.start()
    start_sweeper(rt, settings)
    # Validation needs the evaluators' spaces: ask for them now, not at their next interval.
    ask_evaluators(rt.broker, ANNOUNCE_REQUESTS_EXCHANGE, "gateway", rt.stopping)
    log.info(
        "gateway_starting",
        host=settings.host,
        port=settings.port,
        database=rt.db.engine.url.render_as_string(hide_password=True),
    )
    # uvicorn re-raises SIGTERM once it has drained; turn that into SystemExit so the
    # clean-up below runs instead of the process dying mid-way.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        server.run()
    finally:
        rt.stopping.set()
        rt.broker.stop()
        thread.join(timeout=15)
        rt.db.dispose()
        log.info("gateway_stopped")
    if died.is_set():
        raise SystemExit(1)


if __name__ == "__main__":
    main()
