"""The distributed evaluator: a generation's rules (``rules.RoundRules``) driven over the broker.

``Round`` is the I/O half of one generation: it publishes what the rules decide, hands
them the answers the evolver's result consumer delivers (``deliver``, any thread), and
between the two waits at most ``wait_s``.  ``DistributedEvaluator`` is the
``generations.Evaluator`` of the evolver: one ``Round`` per generation, with the task cost
it measured carried over to size the next one, and the generation retried if RabbitMQ
refuses its tasks.  The evolver evaluates nothing itself: it never builds an environment.
"""

from __future__ import annotations

import itertools
import queue
import uuid
from collections.abc import Callable

import structlog

from ezspark_common.broker import BrokerError
from ezspark_common.config import TrainingConfig
from ezspark_common.neat.population import Population
from ezspark_common.trainer.generations import GenerationOutcome
from ezspark_common.trainer.tasks import game_groups, plan_chunks
from ezspark_common.wire.messages import EvaluationResult, routing_id
from ezspark_evolver.context import Context, Interrupted
from ezspark_evolver.rules import Publish, RoundRules

log = structlog.get_logger("ezspark_evolver")

_BATCH = 1000  # results handled between two deadline checks
_MAX_RETRY_S = 30.0

Waiting = Callable[[str | None], None]  # why the round cannot progress (None: it can)
# Run health: (tasks done, tasks in the generation, evaluators that answered them), told
# after every pass of the loop; the callee throttles.
Progress = Callable[[int, int, int], None]


class Round:
    """Evaluates one generation of one training over the evaluators; ``run()`` blocks.

    ``begin``, ``pump`` and ``finish`` are ``run()`` in steps, for a driver that delivers
    the broker's messages itself (``InMemoryBroker.drain``) instead of waiting for them.
    """

    def __init__(
        self,
        ctx: Context,
        rules: RoundRules,
        on_waiting: Waiting = lambda _reason: None,
        on_progress: Progress = lambda _done, _total, _evaluators: None,
    ) -> None:
        self.ctx = ctx
        self.rules = rules
        self.generation = rules.generation
        self.env_id = rules.env_id
        self.on_waiting = on_waiting
        self.on_progress = on_progress
        self._inbox: queue.Queue[EvaluationResult | None] = queue.Queue()

    def deliver(self, result: EvaluationResult) -> None:
        """Hand over a result (any thread); the round's thread processes it."""
        self._inbox.put(result)

    def wake(self) -> None:
        """Publishing credit may have freed up (any thread)."""
        self._inbox.put(None)

    def run(self) -> GenerationOutcome:
        """Publish, collect and check until every genome has its outcome."""
        self.begin()
        try:
            while not self.rules.done:
                self.pump(wait=True)
        finally:
            self.finish()
        return self.rules.outcome()

    def begin(self) -> None:
        """Take part in the fair share and publish the first tasks."""
        self.ctx.scheduler.join(self.rules.training_id, self.rules.owner, self.env_id, self.wake)
        try:
            self._publish(self.rules.start())
        except BaseException:
            self.finish()
            raise

    def pump(self, *, wait: bool = False) -> None:
        """Hand the rules what arrived (waiting up to ``wait_s`` for it if ``wait``), then
        publish what they decide and tell the callbacks."""
        if self.ctx.stopping.is_set():
            raise Interrupted
        for result in self._arrived(self.rules.wait_s() if wait else None):
            self.rules.receive(result)
        self._publish(self.rules.tick())
        self.on_waiting(self.rules.waiting_reason())
        self.on_progress(*self.rules.progress())

    def finish(self) -> None:
        """Give back the publishing credit and leave the fair share."""
        self.rules.release()
        self.ctx.scheduler.leave(self.rules.training_id)

    def _arrived(self, timeout: float | None) -> list[EvaluationResult]:
        """Whatever arrived, waiting up to ``timeout`` for the first (None: no wait)."""
        try:
            first = self._inbox.get_nowait() if timeout is None else self._inbox.get(True, timeout)
        except queue.Empty:
            return []
        batch = [first]
        while len(batch) < _BATCH:
            try:
                batch.append(self._inbox.get_nowait())
            except queue.Empty:
                break
        return [r for r in batch if r is not None]

    def _publish(self, tasks: Publish) -> None:
        for queue_name, batch in tasks.items():
            self.ctx.publish_to(queue_name, batch)


class DistributedEvaluator:
    """The evolver's ``generations.Evaluator``: each generation a ``Round``, its tasks sized
    for the evaluators alive when it starts, using the cost measured the generation before.
    """

    def __init__(
        self,
        ctx: Context,
        training_id: str,
        owner: str,
        quarantine: set[str],
        on_quarantine: Callable[[str], None],
        on_waiting: Waiting,
        on_progress: Callable[[Population, TrainingConfig], Progress],
    ) -> None:
        self.ctx = ctx
        self.training_id = training_id
        self.owner = owner
        self.quarantine = quarantine  # the training's: quarantines outlive a generation
        self._on_quarantine = on_quarantine
        self._on_waiting = on_waiting
        self._on_progress = on_progress
        self.cost: float | None = None  # seconds per genome per task, last generation

    def evaluate(self, population: Population, config: TrainingConfig) -> GenerationOutcome:
        """Over the evaluators, retrying the generation if RabbitMQ refuses its tasks."""
        if self.ctx.stopping.is_set():
            raise Interrupted
        progress = self._on_progress(population, config)
        for attempt in itertools.count():
            round_ = Round(self.ctx, self.rules(population, config), self._on_waiting, progress)
            self.ctx.register(self.training_id, round_)
            try:
                result = round_.run()
                self.cost = result.seconds_per_genome or self.cost
                return result
            except BrokerError as exc:
                if self.ctx.stopping.is_set():
                    raise Interrupted from exc
                delay = min(2.0**attempt, _MAX_RETRY_S)
                log.warning("generation_retry", error=str(exc), retry_in_s=delay)
                self.ctx.stopping.wait(delay)
            finally:
                self.ctx.unregister(self.training_id, round_)
        raise AssertionError("unreachable")

    def rules(self, population: Population, config: TrainingConfig) -> RoundRules:
        """The rules of a new round of ``population``'s generation."""
        return RoundRules(
            self.ctx,
            self.training_id,
            self.owner,
            population,
            config,
            self._chunks(population, config),
            self.quarantine,
            self._on_quarantine,
            round_id=uuid.uuid4().hex[:8],
            genome_s=self.cost,
        )

    def _chunks(self, population: Population, config: TrainingConfig) -> list[int]:
        """Genome chunk sizes for the evaluators alive now (see ``tasks.plan_chunks``)."""
        settings = self.ctx.settings
        return plan_chunks(
            len(population.genomes),
            len(game_groups(config.max_number_of_games, config.sub_games)),
            self.ctx.registry.slots(routing_id(config.gym_game_name)),
            factor=settings.tasks_per_slot,
            max_batch=settings.task_batch_size,
            seconds_per_genome=self.cost,
            min_task_s=settings.min_task_s,
            max_task_s=settings.max_task_s,
        )
