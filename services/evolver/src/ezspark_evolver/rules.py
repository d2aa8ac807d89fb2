"""The rules of one distributed generation, as a state machine: no I/O, no clock of its own.

The driver (``dispatch.Round``) calls ``start()`` once, then ``receive()`` for every answer
and ``tick()`` whenever answers arrived or ``wait_s()`` passed, and publishes the task
batches those return; the rules read time only through ``ctx.clock``.  So every rule
below can be exercised by a test that moves the clock by hand.

The generation is cut with ``split_tasks`` (a batch size planned for the live evaluators)
and put back with ``merge_outcomes``, so the outcomes equal the embedded trainer's bit for
bit whoever evaluated what.

* Task ids are ``<training>:<generation>:<round>:<kind><index>``, ``<round>`` random per
  round, so answers to an earlier round are stale.  The first usable answer for a task id
  wins; a later one is a duplicate.
* Publishing is windowed: the ``Scheduler`` grants credit, so a round never has more
  tasks in flight than its fair share of the environment's evaluators.
* A task unanswered after ``task_timeout_s · 2^min(attempt, 3)`` goes out again; one
  that passes its deadline more than ``max_task_attempts`` times fails the training —
  unless nobody serves the environment, in which case the round waits.
* A copy given back unevaluated (declined, or answered by an evaluator it had to avoid)
  goes out again after a short jittered back-off.
* Speculation: when every task is out, some are still unanswered and evaluators of the
  environment are idle, the oldest open tasks are published once more (evaluation is
  deterministic; the first answer wins).
* Pools (``pools.py``): each copy goes to the task queue of the operator's evaluators,
  the owner's machines or volunteers, as the training allows; an answer from an evaluator
  that could not read any queue the task went to is ignored (``unauthorized``).
* Safeness (``safeness.py``): a task's sampled genomes are re-checked by a different
  evaluator; on a mismatch a third one breaks the tie and whoever disagreed with the
  majority is quarantined.  With one evaluator serving the environment a re-check is
  impossible and is skipped (counted).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import structlog

from ezspark_common import rng as rngs
from ezspark_common.config import TrainingConfig
from ezspark_common.neat.packed import PackedGenomes
from ezspark_common.neat.population import Population
from ezspark_common.trainer.generations import GenerationOutcome
from ezspark_common.trainer.tasks import merge_outcomes, safeness_sample, split_tasks
from ezspark_common.wire.messages import EvaluationResult, EvaluationTask, routing_id
from ezspark_evolver.fairshare import Scheduler
from ezspark_evolver.metrics import EvolverMetrics
from ezspark_evolver.pools import Pools
from ezspark_evolver.registry import EvaluatorRegistry
from ezspark_evolver.safeness import Verification
from ezspark_evolver.settings import EvolverSettings
from ezspark_evolver.slots import Kind, Slot, why_unusable

log = structlog.get_logger("ezspark_evolver")

_MAX_BACKOFF = 3
_POLL_S = 0.5  # longest wait between looks at the stop flag and the evaluators
_MIN_SPECULATE_S = 0.1  # a task is never duplicated sooner than this after it went out
# A declined copy goes out again after 50 ms · 2^declines (at most 0.25 s), ±50 % jitter: with
# two evaluators each holding the check the other must run, re-publishing at once lets
# RabbitMQ hand each its own check back, in lock-step, for ever.
_DECLINE_BACKOFF_S = (0.05, 0.25)
# Reasons a result is unusable although the evaluator consumed the current copy of the task.
_RETRY = frozenset({"declined", "quarantined", "same_evaluator", "invalid"})
_QUIET = frozenset({"duplicate", "stale", "declined"})  # routine: logged at debug level

Publish = dict[str, list[EvaluationTask]]  # task queue → tasks to publish there


class TaskAbandonedError(RuntimeError):
    """A task passed its deadline ``max_task_attempts + 1`` times: the training fails."""


class RoundContext(Protocol):
    """What the rules read besides their own state (the evolver's ``Context`` has it)."""

    @property
    def settings(self) -> EvolverSettings: ...
    @property
    def registry(self) -> EvaluatorRegistry: ...
    @property
    def scheduler(self) -> Scheduler: ...
    @property
    def metrics(self) -> EvolverMetrics: ...
    @property
    def clock(self) -> Callable[[], float]:
        """Monotonic seconds: the only time the rules read."""
        ...


@dataclass(eq=False)
class RoundRules(Verification):
    """One generation of one training over the evaluators, as decisions to publish."""

    ctx: RoundContext
    training_id: str
    owner: str
    population: Population
    config: TrainingConfig
    chunks: list[int]  # genome chunk sizes (``tasks.plan_chunks``)
    quarantine: set[str]
    on_quarantine: Callable[[str], None]
    round_id: str  # random per round: answers to an earlier round are stale
    genome_s: float | None = None  # evaluator seconds per genome per task, measured before
    # Genomes re-checked and found to differ, each once however many of its game groups
    # were compared: the report counts genomes, as the embedded trainer does.
    checked: set[int] = field(default_factory=set)
    mismatched: set[int] = field(default_factory=set)
    skipped: int = 0
    _todo: list[Slot] = field(default_factory=list)
    _costs: list[float] = field(default_factory=list)  # seconds per genome, per answer

    def __post_init__(self) -> None:
        pop, config = self.population, self.config
        self.generation = pop.generation
        self.env_id = routing_id(config.gym_game_name)  # queues and registry use this
        self.pools = Pools(
            self.env_id, self.owner, config.trusted_evaluators_only, self.ctx.settings.queue_prefix
        )
        keys = list(pop.genomes)
        plans = split_tasks(keys, config.max_number_of_games, config.sub_games, self.chunks)
        self._sample = frozenset(safeness_sample(config, self.generation, keys))
        self._seeds = rngs.game_seeds(config.seed, self.generation, config.max_number_of_games)
        self._prefix = f"{self.training_id}:{self.generation}:{self.round_id}"
        self._primaries = [Slot(f"{self._prefix}:t{p.index}", p) for p in plans]
        self._slots = {s.task_id: s for s in self._primaries}
        self._biggest = max((len(p.genome_keys) for p in plans), default=1)  # genomes
        self._serial = 0
        self._started = self.ctx.clock()
        self._jitter = rngs.generator(config.seed, rngs.DISPATCH, self.generation)
        self._log = log.bind(training_id=self.training_id, generation=self.generation)

    # ----- the driver's interface ---------------------------------------------------------

    def start(self) -> Publish:
        """Schedule every task of the generation; what to publish first."""
        self._todo.extend(self._primaries)
        return self._flush()

    def tick(self) -> Publish:
        """Re-dispatch overdue tasks, speculate, and say what to publish now."""
        self._expire()
        self._speculate()
        return self._flush()

    @property
    def done(self) -> bool:
        """Every task answered and, where sampled, verified."""
        return all(p.done for p in self._primaries)

    def release(self) -> None:
        """Give back every publishing credit still held (the round is over)."""
        for slot in self._slots.values():
            self._land(slot)

    def outcome(self) -> GenerationOutcome:
        """The merged outcomes (once ``done``), safeness counts and the measured cost."""
        config = self.config
        parts = [
            (p.plan, [p.outcomes[k] for k in p.plan.genome_keys])
            for p in self._primaries
            if p.outcomes is not None
        ]
        merged = merge_outcomes(parts, config.max_number_of_games, config.reward_floor)
        cost = statistics.median(self._costs) if self._costs else None
        checks, mismatches = len(self.checked), len(self.mismatched)
        return GenerationOutcome(merged, checks, mismatches, self.skipped, cost)

    # ----- results ------------------------------------------------------------------------

    def receive(self, result: EvaluationResult) -> None:
        """Use an evaluator's answer, or count (and log) why it was ignored."""
        slot = self._slots.get(result.task_id)
        reason = why_unusable(slot, result, self.pools, self.quarantine, self.config.input_size)
        if reason is not None:
            self.ctx.metrics.ignored.labels(reason=reason).inc()
            emit = self._log.debug if reason in _QUIET else self._log.warning
            emit(
                "result_ignored",
                reason=reason,
                task_id=result.task_id,
                evaluator_id=result.evaluator_id,
                attempt=result.attempt,
            )
            if (
                slot is not None
                and reason in _RETRY
                and slot.outcomes is None
                and result.attempt == slot.attempt
            ):
                self._answer_consumed(slot)
            return
        assert slot is not None
        self._land(slot)
        slot.outcomes = {o.key: o for o in result.outcomes}
        slot.evaluator = result.evaluator_id
        self.ctx.scheduler.charge(self.training_id, result.duration_s)
        if result.outcomes and slot.kind is Kind.TASK:
            self._costs.append(result.duration_s / len(result.outcomes))
        if slot.kind is Kind.TASK:
            self._after_task(slot)
        elif slot.kind is Kind.CHECK:
            self._after_check(slot)
        else:
            self._after_tie(slot)

    # ----- dispatch -----------------------------------------------------------------------

    def _avoid(self, slot: Slot) -> set[str]:
        return self.quarantine | slot.avoid

    def _live(self, avoid: set[str] | frozenset[str] = frozenset()) -> dict[str, dict[str, int]]:
        """Live evaluators this training may use, outside ``avoid``, by pool."""
        return self.pools.live(self.ctx.registry.serving(self.env_id), avoid)

    def _anyone_for(self, slot: Slot) -> bool:
        return bool(self._live(self._avoid(slot)))

    def _answer_consumed(self, slot: Slot) -> None:
        """The current copy of ``slot`` was used up without a usable answer: try again now
        if someone may take it; otherwise a check is skipped and anything else waits for
        its deadline (with back-off), so a set of avoided evaluators is not kept spinning."""
        if not self._anyone_for(slot):
            if slot.kind is Kind.CHECK:
                self._skip_check(slot)
            return
        slot.declines += 1
        base, cap = _DECLINE_BACKOFF_S
        delay = min(cap, base * 2 ** (slot.declines - 1)) * self._jitter.uniform(0.5, 1.5)
        slot.not_before = self.ctx.clock() + delay
        self._retry(slot)

    def _retry(self, slot: Slot) -> None:
        slot.attempt += 1
        slot.deadline = math.inf
        self.ctx.metrics.redispatched.inc()
        self._todo.append(slot)

    def _expire(self) -> None:
        """Re-dispatch overdue slots.  A slot nobody may take (no evaluator serves the
        environment, or every one is quarantined or avoided) is waiting, not failing."""
        now = self.ctx.clock()
        served = bool(self._live())
        for slot in list(self._slots.values()):
            if not (slot.open and slot.deadline <= now):
                continue
            if not self._anyone_for(slot):
                if slot.kind is Kind.CHECK and served:
                    self._skip_check(slot)
                else:
                    slot.deadline = now + self._timeout(slot)
                continue
            self._log.info("task_overdue", task_id=slot.task_id, attempt=slot.attempt)
            slot.expiries += 1
            if slot.kind is Kind.TASK and slot.expiries > self.ctx.settings.max_task_attempts:
                raise TaskAbandonedError(
                    f"task {slot.task_id} got no result in {slot.expiries} attempts; its "
                    "genomes crash or hang every evaluator that takes them"
                )
            self._retry(slot)

    def _speculate(self) -> None:
        """Evaluators idle while the last tasks run: send the oldest ones out once more."""
        if self._todo:
            return
        now = self.ctx.clock()
        min_age = max(
            _MIN_SPECULATE_S,
            statistics.median(self._costs) * self._biggest if self._costs else _MIN_SPECULATE_S,
        )
        candidates = sorted(
            (
                s
                for s in self._slots.values()
                if s.open and not s.speculated and now - s.sent_at >= min_age
            ),
            key=lambda s: s.sent_at,
        )
        if not candidates:
            return
        for slot in candidates[: self.ctx.scheduler.speculate(self.training_id, len(candidates))]:
            slot.speculated = True
            slot.attempt += 1
            self.ctx.metrics.speculative.inc()
            self._todo.append(slot)

    def _flush(self) -> Publish:
        """What to publish now, as far as the fair-share credit allows, by task queue."""
        now = self.ctx.clock()
        live = [s for s in self._todo if s.outcomes is None and self._slots.get(s.task_id) is s]
        ready = [s for s in live if s.not_before <= now]
        self._todo = [s for s in live if s.not_before > now]  # declined copies backing off
        fresh = [s for s in ready if not s.in_flight]
        credit = (
            self.ctx.scheduler.grant(self.training_id, len(fresh), self._task_s(fresh))
            if fresh
            else 0
        )
        tasks: dict[str, list[EvaluationTask]] = {}
        serving = self.ctx.registry.serving(self.env_id)
        for slot in ready:
            if not slot.in_flight:
                if credit == 0:
                    self._todo.append(slot)
                    continue
                credit -= 1
                slot.in_flight = True
                self.ctx.metrics.in_flight.inc()
            slot.deadline = now + self._timeout(slot)
            slot.sent_at = now
            self._serial += 1
            allowed = self.pools.live(serving, self._avoid(slot))
            queue = self.pools.pick(allowed, self._serial, slot.kind is not Kind.TASK)
            slot.queues.add(queue)
            tasks.setdefault(queue, []).append(self._task(slot))
        return tasks

    def _task_s(self, slots: list[Slot]) -> float | None:
        """Expected evaluator time of the next of ``slots`` (None until a cost is known)."""
        per_genome = statistics.median(self._costs) if self._costs else self.genome_s
        if per_genome is None or not slots:
            return None
        return per_genome * len(slots[0].plan.genome_keys)

    def _timeout(self, slot: Slot) -> float:
        return float(self.ctx.settings.task_timeout_s * 2 ** min(slot.attempt, _MAX_BACKOFF))

    def _land(self, slot: Slot) -> None:
        if slot.in_flight:
            slot.in_flight = False
            self.ctx.metrics.in_flight.dec()
            self.ctx.scheduler.release(self.training_id, speculated=slot.speculated)
            slot.speculated = False

    def wait_s(self) -> float:
        """How long the driver may wait for answers before the next ``tick``."""
        pending = [s.deadline for s in self._slots.values() if s.open]
        pending += [s.not_before for s in self._todo if s.not_before > 0]
        if not pending:
            return _POLL_S
        return min(_POLL_S, max(0.005, min(pending) - self.ctx.clock()))

    def waiting_reason(self) -> str | None:
        """Why the round cannot progress, for the user (None: it can)."""
        if self.ctx.clock() - self._started < self.ctx.settings.announce_grace_s:
            return None
        if not self._live():
            return f"no evaluator serves {self.env_id}"
        if not self._live(self.quarantine):
            return (
                f"every evaluator of {self.env_id} that may serve this training is "
                "quarantined for it: safeness re-checks found each one's answers contradicted "
                "on the same genome and games (an environment that is not deterministic does "
                "this; `ezspark validate` checks yours); the training goes on when an "
                "evaluator that is not quarantined joins"
            )
        ties = [s for s in self._slots.values() if s.kind is Kind.TIE and s.outcomes is None]
        if ties and not any(self._anyone_for(t) for t in ties):
            return (
                f"a safeness tie-break needs a third evaluator of {self.env_id}: two gave "
                "different answers for the same genome and games (an environment that is not "
                "deterministic does this; `ezspark validate` checks yours)"
            )
        return None

    def progress(self) -> tuple[int, int, int]:
        """Tasks done (answered and verified), tasks in all, evaluators that answered."""
        done = [p for p in self._primaries if p.done]
        return len(done), len(self._primaries), len({p.evaluator for p in done})

    def _task(self, slot: Slot) -> EvaluationTask:
        config, genomes = self.config, self.population.genomes
        return EvaluationTask(
            task_id=slot.task_id,
            training_id=self.training_id,
            generation=self.generation,
            attempt=slot.attempt,
            env_id=config.gym_game_name,
            game_indices=list(slot.plan.game_indices),
            game_seeds=[self._seeds[g] for g in slot.plan.game_indices],
            max_steps=config.max_number_of_steps,
            reward_floor=config.reward_floor,
            input_size=config.input_size,
            output_size=config.output_size,
            recurrent=config.recurrent,
            behaviour=config.novelty_weight > 0,
            input_scaling_seed=config.input_scaling_seed,
            genomes=PackedGenomes.pack([genomes[k] for k in slot.plan.genome_keys]),
            avoid_evaluators=sorted(self._avoid(slot)),
        )
