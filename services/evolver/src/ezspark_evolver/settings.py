"""Evolver settings (``EZSPARK_*`` environment variables)."""

from __future__ import annotations

from pydantic import Field

from ezspark_common.settings import CommonSettings
from ezspark_common.wire.messages import (
    ANNOUNCE_EXCHANGE,
    ANNOUNCE_REQUESTS_EXCHANGE,
    COMMANDS_QUEUE,
    EVENTS_QUEUE,
    RESULTS_QUEUE,
)


class EvolverSettings(CommonSettings):
    """Where the evolver keeps checkpoints and how it cuts work into tasks."""

    metrics_port: int = Field(default=9102, ge=0, le=65535)
    # Loopback unless the deployment says otherwise: compose and Kubernetes set
    # EZSPARK_METRICS_HOST=0.0.0.0 for Prometheus, behind their network isolation.
    metrics_host: str = "127.0.0.1"
    data_dir: str = "./ezspark-data"
    # Only one evolver is active per data directory: it holds this file's lock (default
    # ``<data_dir>/.leader.lock``); another one waits as a hot standby.
    leader_lock: str = ""
    # Tasks are cut for the live evaluators (guided self-scheduling, ``tasks.plan_chunks``):
    # each chunk takes 1/(tasks_per_slot · p) of the genomes left, so the first tasks are
    # big and the last small; each at least ``min_task_s`` of measured work, at most
    # ``task_batch_size`` genomes.
    task_batch_size: int = Field(default=2000, ge=1, le=100_000)
    tasks_per_slot: float = Field(default=2.0, ge=0.5, le=100)
    min_task_s: float = Field(default=0.05, ge=0.0)
    # Tasks in flight per environment: this many per live evaluation slot (fair-shared).
    # Just above 1: a task waiting in the queue delays every other user's next task.
    window_per_slot: float = Field(default=1.5, ge=1.0, le=100)
    # No task is cut bigger than this much measured work: it bounds how long another
    # user's task may wait behind it.
    max_task_s: float = Field(default=0.25, gt=0.0)
    # After start, how long to wait for announcements before calling a training "waiting".
    announce_grace_s: float = Field(default=15.0, ge=0.0)
    task_timeout_s: float = Field(default=60.0, gt=0)
    # Overdue re-dispatches of one task before its training fails (a task that crashes or
    # hangs every evaluator must not circulate forever).
    max_task_attempts: int = Field(default=8, ge=1, le=1000)
    max_concurrent_trainings: int = Field(default=16, ge=1, le=1000)
    # Trainings of one user run at once at most; the rest wait while others' run.
    user_max_running: int = Field(default=4, ge=1, le=1000)
    # Prepended to every queue name, so test runs (or tenants) sharing a vhost stay apart.
    queue_prefix: str = ""
    # Results handled at once (decoding is the only work; the training threads do the rest).
    results_prefetch: int = Field(default=16, ge=1, le=1000)
    # An evaluator that never announced counts as alive this long after its last result.
    evaluator_liveness_s: float = Field(default=120.0, gt=0)

    def queue(self, name: str) -> str:
        """The prefixed name of one of the four EzSpark queues."""
        return self.queue_prefix + name

    @property
    def queues(self) -> tuple[str, str, str]:
        """Commands, events and results queues, prefixed (task queues are per environment)."""
        return (self.queue(COMMANDS_QUEUE), self.queue(EVENTS_QUEUE), self.queue(RESULTS_QUEUE))

    @property
    def announce_exchange(self) -> str:
        """Where evaluators announce themselves, prefixed."""
        return self.queue(ANNOUNCE_EXCHANGE)

    @property
    def requests_exchange(self) -> str:
        """Where it asks evaluators to announce themselves now, prefixed."""
        return self.queue(ANNOUNCE_REQUESTS_EXCHANGE)

    @property
    def leader_lock_path(self) -> str:
        """The lock file that makes one evolver the active one."""
        return self.leader_lock or f"{self.data_dir.rstrip('/')}/.leader.lock"
