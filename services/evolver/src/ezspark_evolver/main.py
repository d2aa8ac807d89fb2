"""``ezspark-evolver``: the shared service start-up (see ezspark_common.service.main)."""

from __future__ import annotations

from ezspark_common.service.main import run_service
from ezspark_common.wire.routing import fronted_queues
from ezspark_evolver.service import EvolverService
from ezspark_evolver.settings import EvolverSettings


def main() -> None:
    """Run the evolver until SIGTERM/SIGINT; it resumes unfinished trainings on start."""
    settings = EvolverSettings()
    run_service(
        settings,
        settings.metrics_host,
        lambda broker, registry: EvolverService(settings, broker, registry),
        "ezspark_evolver",
        {"fronted": fronted_queues(settings.queue_prefix)},  # it owns the topology
    )


if __name__ == "__main__":
    main()
