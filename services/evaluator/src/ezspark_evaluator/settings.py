"""Evaluator settings (``EZSPARK_*`` environment variables)."""

from __future__ import annotations

from pydantic import Field

from ezspark_common.settings import CommonSettings
from ezspark_common.wire.messages import (
    ANNOUNCE_EXCHANGE,
    ANNOUNCE_REQUESTS_EXCHANGE,
    RESULTS_QUEUE,
    tasks_queue,
)


class EvaluatorSettings(CommonSettings):
    """How one evaluator consumes tasks."""

    metrics_port: int = Field(default=9101, ge=0, le=65535)
    # Loopback unless the deployment says otherwise: compose and Kubernetes set
    # EZSPARK_METRICS_HOST=0.0.0.0 for Prometheus, behind their network isolation.
    metrics_host: str = "127.0.0.1"
    # Tasks held at once per environment.  1: a busy evaluator holds no task that an idle
    # one could run (the evolver's speculative copies then reach the idle ones).
    prefetch: int = Field(default=1, ge=1, le=1000)
    # Comma-separated environment ids this evaluator serves; empty = every installed one
    # it can run (Gymnasium's, and the allow-listed plug-in modules' as ``module:Id``).
    envs: str = ""
    # How often it announces itself (the evolver and gateways count it gone after 3 misses).
    announce_interval_s: float = Field(default=10.0, gt=0.0, le=3600.0)
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
    # settled, and the child playing it is killed (not isolated: the process exits for its
    # supervisor to restart; see watchdog.py).
    task_hang_s: float = Field(default=600.0, ge=1.0)
    # A user's own machine: the gateway to get its broker user from (with the token of
    # ``ezspark login`` or $EZSPARK_TOKEN; see byo.py), and whether it also serves other
    # users' trainings.  Empty: an operator's evaluator on ``broker_url``.
    gateway: str = ""
    volunteer: bool = False

    @property
    def env_list(self) -> list[str]:
        """The environments asked for (empty: all it can run)."""
        return [e.strip() for e in self.envs.split(",") if e.strip()]

    def tasks_queue(self, env_id: str) -> str:
        """Where tasks of ``env_id`` come from."""
        return tasks_queue(env_id, self.queue_prefix)

    @property
    def announce_exchange(self) -> str:
        """Where this evaluator announces itself."""
        return self.queue_prefix + ANNOUNCE_EXCHANGE

    @property
    def requests_exchange(self) -> str:
        """Where services ask for announcements now."""
        return self.queue_prefix + ANNOUNCE_REQUESTS_EXCHANGE

    @property
    def results_queue(self) -> str:
        """Where results go."""
        return self.queue_prefix + RESULTS_QUEUE
