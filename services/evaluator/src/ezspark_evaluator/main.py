"""``ezspark-evaluator``: the shared service start-up (see ezspark_common.service_main)."""

from __future__ import annotations

from ezspark_common.routing import fronted_queues
from ezspark_common.service_main import run_service
from ezspark_evaluator.service import EvaluatorService
from ezspark_evaluator.settings import EvaluatorSettings


def main() -> None:
    """Run one evaluator until SIGTERM/SIGINT."""
    settings = EvaluatorSettings()
    run_service(
        settings,
        settings.metrics_host,
        lambda broker, registry: EvaluatorService(settings, broker, registry),
        "ezspark_evaluator",
        {"fronted": fronted_queues(settings.queue_prefix), "declares": settings.broker_declares},
    )


if __name__ == "__main__":
    main()
