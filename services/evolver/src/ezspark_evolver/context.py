"""What the evolver's threads share: settings, broker, disk, metrics and a few registries."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import structlog

from ezspark_common.broker import Broker, BrokerError
from ezspark_common.wire.messages import (
    COMMANDS_QUEUE,
    EVENTS_QUEUE,
    RESULTS_QUEUE,
    EvaluationResult,
    EvaluationTask,
    EvaluatorAnnounced,
    GenerationFinished,
    GenerationProgressed,
    TrainingFailed,
    TrainingFinished,
    TrainingWaiting,
    encode,
    tasks_queue,
)
from ezspark_common.wire.routing import identify, queues_of
from ezspark_evolver.fairshare import Scheduler
from ezspark_evolver.metrics import EvolverMetrics
from ezspark_evolver.registry import EvaluatorRegistry
from ezspark_evolver.settings import EvolverSettings
from ezspark_evolver.store import TrainingStore

log = structlog.get_logger("ezspark_evolver")

Event = (
    GenerationFinished | GenerationProgressed | TrainingFinished | TrainingFailed | TrainingWaiting
)


class Collector(Protocol):
    """Collects one generation's results for a training (``dispatch.Round``)."""

    generation: int
    env_id: str

    def deliver(self, result: EvaluationResult) -> None:
        """Hand over a result (called from the broker's handler threads)."""
        ...


class Interrupted(Exception):  # noqa: N818 - a signal, not an error
    """The service is stopping: leave the training at its last checkpoint."""


@dataclass
class Context:
    """Shared by the service, the training threads and their generation rounds."""

    settings: EvolverSettings
    broker: Broker
    store: TrainingStore
    metrics: EvolverMetrics
    registry: EvaluatorRegistry
    scheduler: Scheduler
    stopping: threading.Event = field(default_factory=threading.Event)
    # Rounds read time only through this, so their deadline rules can be driven by hand.
    clock: Callable[[], float] = time.monotonic
    _declared: set[str] = field(default_factory=set)
    _rounds: dict[str, Collector] = field(default_factory=dict)
    _rounds_lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def commands_queue(self) -> str:
        """Gateway → evolver."""
        return self.settings.queue(COMMANDS_QUEUE)

    @property
    def events_queue(self) -> str:
        """Evolver → gateway."""
        return self.settings.queue(EVENTS_QUEUE)

    def tasks_queue(self, env_id: str) -> str:
        """Evolver → the evaluators that serve ``env_id``."""
        return tasks_queue(env_id, self.settings.queue_prefix)

    @property
    def results_queue(self) -> str:
        """Evaluators → evolver."""
        return self.settings.queue(RESULTS_QUEUE)

    def publish_tasks(self, env_id: str, tasks: Sequence[EvaluationTask]) -> None:
        """Publish tasks to the operator's queue of the environment, confirmed."""
        self.publish_to(self.tasks_queue(env_id), tasks)

    def publish_to(self, queue: str, tasks: Sequence[EvaluationTask]) -> None:
        """Publish tasks to one task queue, confirmed (BrokerError otherwise)."""
        self.declare(queue)
        self.broker.publish_many(queue, [(encode(t), f"{t.task_id}#{t.attempt}") for t in tasks])

    def declare(self, queue: str) -> None:
        """Declare a task queue once per process (the evolver owns the topology: evaluators
        with least privilege may not declare, and wait for it to exist)."""
        if queue not in self._declared:
            self.broker.declare(queue)
            self._declared.add(queue)

    def declare_for(self, evaluator: EvaluatorAnnounced) -> None:
        """Declare the task queues an announced evaluator reads, so it can start at once."""
        who = identify(evaluator.evaluator_id)
        try:
            for env in evaluator.envs:
                for queue in queues_of(who, env.env_id, self.settings.queue_prefix):
                    self.declare(queue)
        except BrokerError as exc:  # its next announcement tries again
            log.warning("declare_failed", evaluator_id=evaluator.evaluator_id, error=str(exc))

    def publish_event(self, event: Event, message_id: str) -> None:
        """Publish one event for the gateway, confirmed."""
        self.broker.publish(self.events_queue, encode(event), message_id=message_id)

    def register(self, training_id: str, round_: Collector) -> None:
        """Route the training's results to ``round_`` from now on."""
        with self._rounds_lock:
            self._rounds[training_id] = round_

    def unregister(self, training_id: str, round_: Collector) -> None:
        """Stop routing results to ``round_`` (if it is still the current one)."""
        with self._rounds_lock:
            if self._rounds.get(training_id) is round_:
                del self._rounds[training_id]

    def route(self, result: EvaluationResult) -> str | None:
        """Hand a result to its round; the reason it was not used otherwise."""
        with self._rounds_lock:
            round_ = self._rounds.get(result.training_id)
        if round_ is None:
            return "stale"  # not collecting: finished, paused or between generations
        if round_.generation != result.generation:
            return "stale"
        if not result.declined:
            self.registry.seen(result.evaluator_id, round_.env_id)
        round_.deliver(result)
        return None
