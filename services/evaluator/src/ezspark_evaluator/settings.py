"""Evaluator settings (``EZSPARK_*`` environment variables)."""

from __future__ import annotations

from pydantic import Field

from ezspark_common.messages import RESULTS_QUEUE, TASKS_QUEUE
from ezspark_common.settings import CommonSettings


class EvaluatorSettings(CommonSettings):
    """How one evaluator consumes tasks."""

    metrics_port: int = Field(default=9101, ge=0, le=65535)
    metrics_host: str = "0.0.0.0"  # scraped from other hosts/pods
    prefetch: int = Field(default=2, ge=1, le=1000)
    # Test-only fault switch: added to every fitness this evaluator reports (0 = honest).
    fault_fitness_offset: float = 0.0
    # Prepended to every queue name, so test runs (or tenants) sharing a vhost stay apart.
    queue_prefix: str = ""
    # Reported in every result; empty = "<hostname>-<pid>-<random>".
    evaluator_id: str = ""
    # A task that must avoid this evaluator is held about this long, then declined.
    avoid_delay_s: float = Field(default=0.05, ge=0.0, le=60.0)
    # On SIGTERM, how long the task in hand may take to finish before we disconnect anyway.
    stop_timeout_s: float = Field(default=60.0, ge=0.0)
    # An evaluation running longer is taken as hung: its genomes get the floor, the task is
    # settled, and the process exits for its supervisor to restart (see watchdog.py).
    task_hang_s: float = Field(default=600.0, ge=1.0)

    @property
    def tasks_queue(self) -> str:
        """Where tasks come from."""
        return self.queue_prefix + TASKS_QUEUE

    @property
    def results_queue(self) -> str:
        """Where results go."""
        return self.queue_prefix + RESULTS_QUEUE
