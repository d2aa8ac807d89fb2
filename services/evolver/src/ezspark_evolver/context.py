"""What the evolver's threads share: settings, broker, disk, metrics and a few registries."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ezspark_common.broker import Broker
from ezspark_common.messages import (
    COMMANDS_QUEUE,
    EVENTS_QUEUE,
    RESULTS_QUEUE,
    TASKS_QUEUE,
    EvaluationResult,
    EvaluationTask,
    GenerationReport,
    TrainingFailed,
    TrainingFinished,
    encode,
)
from ezspark_evolver.metrics import EvolverMetrics
from ezspark_evolver.settings import EvolverSettings
from ezspark_evolver.store import TrainingStore

if TYPE_CHECKING:
    from ezspark_evolver.dispatch import Round

Event = GenerationReport | TrainingFinished | TrainingFailed


class Interrupted(Exception):  # noqa: N818 - a signal, not an error
    """The service is stopping: leave the training at its last checkpoint."""


class Liveness:
    """Which evaluators answered recently (decides whether a re-check can go remote)."""

    def __init__(self, window_s: float) -> None:
        self._window = window_s
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()

    def seen(self, evaluator_id: str) -> None:
        """``evaluator_id`` just delivered a result."""
        with self._lock:
            self._seen[evaluator_id] = time.monotonic()

    def any_alive(self, excluding: Iterable[str]) -> bool:
        """Whether an evaluator outside ``excluding`` answered within the window."""
        skip = set(excluding)
        limit = time.monotonic() - self._window
        with self._lock:
            return any(t >= limit for e, t in self._seen.items() if e not in skip)


@dataclass
class Context:
    """Shared by the service, the training threads and their generation rounds."""

    settings: EvolverSettings
    broker: Broker
    store: TrainingStore
    metrics: EvolverMetrics
    liveness: Liveness
    stopping: threading.Event = field(default_factory=threading.Event)
    # evaluate_batch reuses module-level environment instances: one local evaluation at a time.
    local_lock: threading.Lock = field(default_factory=threading.Lock)
    _rounds: dict[str, Round] = field(default_factory=dict)
    _rounds_lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def commands_queue(self) -> str:
        """Gateway → evolver."""
        return self.settings.queue(COMMANDS_QUEUE)

    @property
    def events_queue(self) -> str:
        """Evolver → gateway."""
        return self.settings.queue(EVENTS_QUEUE)

    @property
    def tasks_queue(self) -> str:
        """Evolver → evaluators."""
        return self.settings.queue(TASKS_QUEUE)

    @property
    def results_queue(self) -> str:
        """Evaluators → evolver."""
        return self.settings.queue(RESULTS_QUEUE)

    def publish_tasks(self, tasks: Sequence[EvaluationTask]) -> None:
        """Publish tasks with confirms (BrokerError if RabbitMQ does not confirm)."""
        self.broker.publish_many(
            self.tasks_queue, [(encode(t), f"{t.task_id}#{t.attempt}") for t in tasks]
        )

    def publish_event(self, event: Event, message_id: str) -> None:
        """Publish one event for the gateway, confirmed."""
        self.broker.publish(self.events_queue, encode(event), message_id=message_id)

    def register(self, training_id: str, round_: Round) -> None:
        """Route the training's results to ``round_`` from now on."""
        with self._rounds_lock:
            self._rounds[training_id] = round_

    def unregister(self, training_id: str, round_: Round) -> None:
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
        round_.deliver(result)
        return None
