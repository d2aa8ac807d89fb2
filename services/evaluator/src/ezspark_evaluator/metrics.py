"""The evaluator's Prometheus metrics (names the dashboards expect)."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# Tasks range from milliseconds (tiny CartPole batches) to minutes (big custom envs).
TASK_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)


@dataclass(frozen=True)
class EvaluatorMetrics:
    """Counters and gauges of one evaluator process."""

    genomes: Counter
    env_steps: Counter
    task_seconds: Histogram
    errors: Counter
    in_flight: Gauge
    declined: Counter

    @staticmethod
    def create(registry: CollectorRegistry) -> EvaluatorMetrics:
        """Register the metrics in ``registry``."""
        return EvaluatorMetrics(
            genomes=Counter(
                "ezspark_evaluator_genomes_total",
                "Genomes evaluated (one genome on all games of a task).",
                registry=registry,
            ),
            env_steps=Counter(
                "ezspark_evaluator_env_steps_total", "Environment steps taken.", registry=registry
            ),
            task_seconds=Histogram(
                "ezspark_evaluator_task_seconds",
                "Wall time to evaluate one task.",
                buckets=TASK_BUCKETS,
                registry=registry,
            ),
            errors=Counter(
                "ezspark_evaluator_errors_total",
                "Problems by kind: poison, env_not_allowed, genome_error, "
                "evaluation, publish, hung, env_crashed (child processes an environment "
                "ended).",
                ["kind"],
                registry=registry,
            ),
            in_flight=Gauge(
                "ezspark_evaluator_tasks_in_flight",
                "Tasks being handled right now.",
                registry=registry,
            ),
            declined=Counter(
                "ezspark_evaluator_tasks_declined_total",
                "Tasks declined because they had to avoid this evaluator.",
                registry=registry,
            ),
        )
