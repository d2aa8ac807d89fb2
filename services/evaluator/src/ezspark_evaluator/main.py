"""``ezspark-evaluator``: settings → logging → env plug-ins → metrics → broker → consume."""

from __future__ import annotations

import signal
import sys
import threading
from types import FrameType

import structlog
from prometheus_client import CollectorRegistry, start_http_server

from ezspark_common.broker import BrokerError, connect
from ezspark_common.envs import load_env_modules
from ezspark_common.logging import configure_logging
from ezspark_evaluator.service import EvaluatorService
from ezspark_evaluator.settings import EvaluatorSettings

log = structlog.get_logger("ezspark_evaluator")


def _on_signal(service: EvaluatorService) -> None:
    """SIGTERM/SIGINT: stop gracefully, from a thread (the broker's locks are not reentrant)."""
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


def main() -> None:
    """Run one evaluator until SIGTERM/SIGINT; exit 1 if RabbitMQ is unreachable."""
    settings = EvaluatorSettings()
    configure_logging(settings.log_level, json_logs=settings.log_json)
    try:
        load_env_modules(settings.env_module_list)
    except Exception as exc:
        log.error("env_modules_failed", modules=settings.env_module_list, error=str(exc))
        sys.exit(2)
    registry = CollectorRegistry()
    if settings.metrics_port:
        start_http_server(settings.metrics_port, addr=settings.metrics_host, registry=registry)
    try:
        broker = connect(settings.broker_url, registry=registry)
        service = EvaluatorService(settings, broker, registry)
    except BrokerError as exc:
        log.error("broker_unreachable", error=str(exc))
        sys.exit(1)
    _on_signal(service)
    try:
        service.run()
    except BrokerError as exc:
        log.error("broker_lost", error=str(exc))
        sys.exit(1)


if __name__ == "__main__":
    main()
