"""Evolver settings (``EZSPARK_*`` environment variables)."""

from __future__ import annotations

from pydantic import Field

from ezspark_common.messages import COMMANDS_QUEUE, EVENTS_QUEUE, RESULTS_QUEUE, TASKS_QUEUE
from ezspark_common.settings import CommonSettings


class EvolverSettings(CommonSettings):
    """Where the evolver keeps checkpoints and how it cuts work into tasks."""

    metrics_port: int = Field(default=9102, ge=0, le=65535)
    metrics_host: str = "0.0.0.0"  # scraped from other hosts/pods
    data_dir: str = "./ezspark-data"
    task_batch_size: int = Field(default=100, ge=1, le=100_000)
    task_timeout_s: float = Field(default=60.0, gt=0)
    # Overdue re-dispatches of one task before its training fails (a task that crashes or
    # hangs every evaluator must not circulate forever).
    max_task_attempts: int = Field(default=8, ge=1, le=1000)
    max_concurrent_trainings: int = Field(default=4, ge=1, le=1000)
    # Prepended to every queue name, so test runs (or tenants) sharing a vhost stay apart.
    queue_prefix: str = ""
    # Results handled at once (decoding is the only work; the training threads do the rest).
    results_prefetch: int = Field(default=16, ge=1, le=1000)
    # An evaluator counts as alive this long after its last result (safeness routing).
    evaluator_liveness_s: float = Field(default=120.0, gt=0)
    # Re-check dispatches that may end at the wrong evaluator before the evolver re-checks
    # the genomes itself.
    check_attempts: int = Field(default=4, ge=1, le=100)

    def queue(self, name: str) -> str:
        """The prefixed name of one of the four EzSpark queues."""
        return self.queue_prefix + name

    @property
    def queues(self) -> tuple[str, str, str, str]:
        """Commands, events, tasks and results queues, prefixed."""
        return (self.queue(COMMANDS_QUEUE), self.queue(EVENTS_QUEUE), self.queue(TASKS_QUEUE),
                self.queue(RESULTS_QUEUE))
