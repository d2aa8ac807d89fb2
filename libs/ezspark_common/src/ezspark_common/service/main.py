"""The start-up and shutdown every broker-driven service shares.

settings → logging → environment plug-ins → metrics server → broker → service → run until
SIGTERM/SIGINT.  Exit codes: 0 after a clean stop, 1 when RabbitMQ is unreachable or lost,
2 when an environment plug-in module fails to import, 75 (``cli.supervise.HUNG_EXIT_CODE``)
when an evaluator ended a hung evaluation and wants a fresh process.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable, Mapping
from types import FrameType
from typing import Any, Protocol

import structlog
from prometheus_client import CollectorRegistry, start_http_server

from ezspark_common.broker import Broker, BrokerError, connect
from ezspark_common.evaluation.envs import load_env_modules
from ezspark_common.logging import configure_logging, report_native_crashes
from ezspark_common.settings import CommonSettings


class Service(Protocol):
    """What a service exposes to its entry point."""

    def run(self) -> None:
        """Serve until ``stop()``; raise BrokerError if the broker is lost for good."""

    def stop(self) -> None:
        """Begin a graceful stop (called from another thread)."""


def _stop_on_signals(service: Service, log: structlog.typing.FilteringBoundLogger) -> None:
    """SIGTERM/SIGINT stop the service from a thread (the broker's locks are not reentrant)."""
    fired = threading.Event()

    def handler(signum: int, _frame: FrameType | None) -> None:
        if fired.is_set():
            log.info("already_stopping", signal=signum)
            return
        fired.set()
        log.info("stopping", signal=signal.Signals(signum).name)
        threading.Thread(target=service.stop, name="stopper", daemon=True).start()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def run_service(
    settings: CommonSettings,
    metrics_host: str,
    build: Callable[[Broker, CollectorRegistry], Service],
    logger_name: str,
    broker_options: Mapping[str, Any] | None = None,
) -> None:
    """Run one service process to completion; exits the process on fatal errors.

    ``broker_options`` go to ``connect`` (e.g. ``fronted`` queues, ``declares``)."""
    configure_logging(settings.log_level, json_logs=settings.log_json)
    report_native_crashes()
    log = structlog.get_logger(logger_name)
    try:
        load_env_modules(settings.env_module_list)
    except Exception as exc:
        log.error("env_modules_failed", modules=settings.env_module_list, error=str(exc))
        sys.exit(2)
    registry = CollectorRegistry()
    if settings.metrics_port:
        start_http_server(settings.metrics_port, addr=metrics_host, registry=registry)
    try:
        broker = connect(settings.broker_url, registry=registry, **(broker_options or {}))
        service = build(broker, registry)
    except BrokerError as exc:
        log.error("broker_unreachable", error=str(exc))
        sys.exit(1)
    _stop_on_signals(service, log)
    try:
        service.run()
    except BrokerError as exc:
        log.error("broker_lost", error=str(exc))
        sys.exit(1)
