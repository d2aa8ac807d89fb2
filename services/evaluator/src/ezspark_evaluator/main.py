"""``ezspark-evaluator``: the shared service start-up (see ezspark_common.service.main)."""

from __future__ import annotations

import sys
from collections.abc import Callable

import structlog

from ezspark_common.cli.client import ClientError
from ezspark_common.logging import configure_logging
from ezspark_common.service.main import run_service
from ezspark_common.wire.routing import fronted_queues
from ezspark_evaluator import byo
from ezspark_evaluator.service import EvaluatorService
from ezspark_evaluator.settings import EvaluatorSettings


def main() -> None:
    """Run one evaluator until SIGTERM/SIGINT."""
    settings = EvaluatorSettings()
    if settings.gateway:  # a user's own machine: a broker user of its own, from the gateway
        configure_logging(settings.log_level, json_logs=settings.log_json)
        try:
            settings = byo.join(settings)
        except ClientError as exc:
            structlog.get_logger("ezspark_evaluator").error("join_failed", error=str(exc))
            sys.exit(1)
    try:
        run_service(
            settings,
            settings.metrics_host,
            lambda broker, registry: EvaluatorService(
                settings, broker, registry, before_hung_exit=_leave_hook(settings)
            ),
            "ezspark_evaluator",
            {
                "fronted": fronted_queues(settings.queue_prefix),
                "declares": settings.broker_declares,
            },
        )
    finally:
        if settings.gateway:
            byo.leave(settings)


def _leave_hook(settings: EvaluatorSettings) -> Callable[[], None] | None:
    """A user's machine deletes its broker user before a hung evaluation ends the process
    (``finally`` below does not run then)."""
    return (lambda: byo.leave(settings)) if settings.gateway else None


if __name__ == "__main__":
    main()
