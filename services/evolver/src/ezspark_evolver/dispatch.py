"""One distributed generation: publish its tasks, collect results, re-dispatch, re-check.

The generation is cut exactly as the embedded trainer cuts it (``split_tasks``), results
are merged with ``merge_outcomes``, so the outcomes equal ``LocalEvaluator``'s bit for bit.

Matching: task ids are ``<training>:<generation>:<round>:t<index>`` (re-checks
``...:c<index>.<n>``), ``<round>`` random per round, so results of an earlier round (before
a restart, or of a retried generation) are stale.  The first acceptable result for a task id
wins; any attempt is as good as another since evaluation is deterministic, so a late original
after a re-dispatch is a duplicate.  A task still unanswered after ``task_timeout_s ·
2^min(attempt, 3)`` is published again with ``attempt + 1`` (the back-off keeps a period
without evaluators from flooding the queue).

Safeness: once a task's result arrives, its genomes in ``safeness_sample`` are re-checked
by a task that avoids that evaluator (and quarantined ones): an avoided evaluator declines
it and it is published again.  If no other live evaluator is known, the re-check already
missed ``check_attempts`` times (declined, or answered by an evaluator that had to avoid
it), or it is overdue, the evolver evaluates it itself.  Two results are
compared exactly (returns, steps, error); on a mismatch the evolver evaluates the genomes a
third time (unless it did the re-check), its result (the majority) is kept, and each
evaluator that disagreed is quarantined: its later results are ignored for the training
and its tasks of this round are re-dispatched.
"""

from __future__ import annotations

import math
import queue
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog

from ezspark_common import rng as rngs
from ezspark_common.evaluation import Outcome, evaluate_batch
from ezspark_common.local import GenerationOutcome
from ezspark_common.messages import EvaluationResult, EvaluationTask, WireGenome
from ezspark_common.tasks import TaskSpec, merge_outcomes, safeness_sample, split_tasks
from ezspark_common.training import TrainingState
from ezspark_evolver.context import Context, Interrupted

log = structlog.get_logger("ezspark_evolver")

LOCAL = "evolver"  # the evaluator id recorded for work the evolver did itself
_MAX_BACKOFF = 3
_POLL_S = 0.5  # longest wait between looks at the stop flag
_BATCH = 1000  # results handled between two deadline checks
# Reasons a result is unusable although the evaluator consumed the current copy of the task.
_RETRY = frozenset({"declined", "quarantined", "same_evaluator", "invalid"})
_QUIET = frozenset({"duplicate", "stale", "declined"})  # routine: logged at debug level


class TaskAbandonedError(RuntimeError):
    """A task passed its deadline ``max_task_attempts + 1`` times: the training fails."""


@dataclass(eq=False)
class Slot:
    """One task (or re-check) of the round and what came back for it."""

    task_id: str
    spec: TaskSpec
    check_of: Slot | None = None  # the task this one re-checks
    attempt: int = 0
    deadline: float = math.inf
    in_flight: bool = False
    outcomes: dict[int, Outcome] | None = None
    evaluator: str | None = None
    misses: int = 0  # re-check results that came from an evaluator that may not answer
    expiries: int = 0  # deadlines this task passed without any answer
    check: Slot | None = None  # a task's current re-check
    done: bool = False  # a task: answered and, if sampled, compared


def agree(a: Outcome, b: Outcome) -> bool:
    """Two evaluations of one genome are identical (as they must be: it is deterministic)."""
    return a.returns == b.returns and a.steps == b.steps and a.error == b.error


@dataclass(eq=False)
class Round:
    """Evaluates one generation of one training over the evaluators; ``run()`` blocks."""

    ctx: Context
    training_id: str
    state: TrainingState
    quarantine: set[str]
    on_quarantine: Callable[[str], None]
    checks: int = 0
    mismatches: int = 0
    _todo: list[Slot] = field(default_factory=list)
    _inbox: queue.Queue[EvaluationResult] = field(default_factory=queue.Queue)
    _wire: dict[int, WireGenome] = field(default_factory=dict)

    def __post_init__(self) -> None:
        pop, config = self.state.population, self.state.config
        self.generation = pop.generation
        keys = list(pop.genomes)
        specs = split_tasks(keys, config.max_number_of_games, config.sub_games,
                            self.ctx.settings.task_batch_size)
        self._sample = frozenset(safeness_sample(config, self.generation, keys))
        self._seeds = rngs.game_seeds(config.seed, self.generation, config.max_number_of_games)
        self._prefix = f"{self.training_id}:{self.generation}:{uuid.uuid4().hex[:8]}"
        self._primaries = [Slot(f"{self._prefix}:t{s.index}", s) for s in specs]
        self._slots = {s.task_id: s for s in self._primaries}
        self._serial = 0
        self._log = log.bind(training_id=self.training_id, generation=self.generation)

    def deliver(self, result: EvaluationResult) -> None:
        """Hand over a result (any thread); ``run()`` processes it."""
        self._inbox.put(result)

    def run(self) -> GenerationOutcome:
        """Publish, collect and check until every genome has its outcome."""
        self._todo.extend(self._primaries)
        try:
            self._flush()
            while not all(p.done for p in self._primaries):
                if self.ctx.stopping.is_set():
                    raise Interrupted
                for result in self._next_results():
                    self._on_result(result)
                self._expire()
                self._flush()
        finally:
            for slot in self._slots.values():
                self._land(slot)
        config = self.state.config
        parts = [(p.spec, [p.outcomes[k] for k in p.spec.genome_keys])
                 for p in self._primaries if p.outcomes is not None]
        merged = merge_outcomes(parts, config.max_number_of_games, config.reward_floor)
        return GenerationOutcome(merged, self.checks, self.mismatches)

    # ----- results ------------------------------------------------------------------------

    def _next_results(self) -> list[EvaluationResult]:
        """Whatever arrived, waiting until the next deadline at most (batched, so deadline
        checks cost once per batch rather than once per result)."""
        try:
            batch = [self._inbox.get(timeout=self._wait_s())]
        except queue.Empty:
            return []
        while len(batch) < _BATCH:
            try:
                batch.append(self._inbox.get_nowait())
            except queue.Empty:
                break
        return batch

    def _on_result(self, result: EvaluationResult) -> None:
        slot = self._slots.get(result.task_id)
        reason = self._why_not(slot, result)
        if reason is not None:
            self.ctx.metrics.ignored.labels(reason=reason).inc()
            emit = self._log.debug if reason in _QUIET else self._log.warning
            emit("result_ignored", reason=reason, task_id=result.task_id,
                 evaluator_id=result.evaluator_id, attempt=result.attempt)
            if (slot is not None and reason in _RETRY and slot.outcomes is None
                    and result.attempt == slot.attempt):
                self._answer_consumed(slot)
            return
        assert slot is not None
        self._land(slot)
        slot.outcomes = {o.key: Outcome(o.key, tuple(o.returns), o.steps, o.error)
                         for o in result.outcomes}
        slot.evaluator = result.evaluator_id
        if slot.check_of is None:
            self._after_task(slot)
        else:
            self._after_check(slot)

    def _why_not(self, slot: Slot | None, result: EvaluationResult) -> str | None:
        """Why a result cannot be used, or None if it fills its slot."""
        if slot is None:
            return "stale"
        if slot.outcomes is not None:
            return "duplicate"
        if result.declined:
            return "declined"
        if result.evaluator_id in self.quarantine:
            return "quarantined"
        if slot.check_of is not None and result.evaluator_id == slot.check_of.evaluator:
            return "same_evaluator"
        n_games = len(slot.spec.game_indices)
        if ([o.key for o in result.outcomes] != list(slot.spec.genome_keys)
                or any(len(o.returns) != n_games for o in result.outcomes)):
            return "invalid"
        return None

    def _after_task(self, task: Slot) -> None:
        """A task answered: re-check its sampled genomes, if any."""
        keys = tuple(k for k in task.spec.genome_keys if k in self._sample)
        if not keys:
            task.done = True
            return
        self._serial += 1
        spec = TaskSpec(task.spec.index, keys, task.spec.game_indices)
        check = Slot(f"{self._prefix}:c{spec.index}.{self._serial}", spec, check_of=task)
        task.check = check
        self._slots[check.task_id] = check
        self._todo.append(check)

    def _after_check(self, check: Slot) -> None:
        """Compare a re-check with its task; settle mismatches by a third evaluation."""
        task = check.check_of
        assert task is not None
        assert task.outcomes is not None
        assert check.outcomes is not None
        keys = check.spec.genome_keys
        bad = [k for k in keys if not agree(task.outcomes[k], check.outcomes[k])]
        self.checks += len(keys)
        self.ctx.metrics.checks.inc(len(keys))
        task.done = True
        if bad:
            self.mismatches += len(bad)
            self.ctx.metrics.mismatches.inc(len(bad))
            self._log.warning("safeness_mismatch", task_id=task.task_id, genomes=bad[:10],
                              count=len(bad), first=task.evaluator, second=check.evaluator)
            self._tie_break(task, check, bad)

    def _tie_break(self, task: Slot, check: Slot, keys: list[int]) -> None:
        """Keep the majority's outcome; quarantine whoever disagreed with it."""
        assert task.outcomes is not None
        assert check.outcomes is not None
        if check.evaluator == LOCAL:
            truth = check.outcomes  # the evolver's own evaluation is the reference
        else:
            truth = self._evaluate_here(TaskSpec(task.spec.index, tuple(keys),
                                                 task.spec.game_indices))
            self.ctx.metrics.local_checks.inc()
        losers: set[str] = set()
        for k in keys:
            for outcomes, evaluator in ((task.outcomes, task.evaluator),
                                        (check.outcomes, check.evaluator)):
                if not agree(outcomes[k], truth[k]) and evaluator is not None:
                    losers.add(evaluator)
            task.outcomes[k] = truth[k]
        for evaluator in sorted(losers - {LOCAL}):
            self._quarantine(evaluator)

    def _quarantine(self, evaluator: str) -> None:
        """Ignore ``evaluator`` from now on and redo whatever it answered in this round."""
        if evaluator in self.quarantine:
            return
        self.quarantine.add(evaluator)
        self.on_quarantine(evaluator)
        for task in self._primaries:
            if task.evaluator == evaluator:
                self._reset(task)

    def _reset(self, task: Slot) -> None:
        """Forget a task's result (and its re-check) and publish it again."""
        if task.check is not None:
            self._slots.pop(task.check.task_id, None)
            self._land(task.check)
        task.check, task.outcomes, task.evaluator, task.done = None, None, None, False
        self._retry(task)

    # ----- dispatch -----------------------------------------------------------------------

    def _answer_consumed(self, slot: Slot) -> None:
        """The current copy of ``slot`` was used up without a usable answer: try again now,
        unless nobody could take a task right now (then its deadline re-dispatches it, with
        back-off, so a cluster of avoided evaluators is not kept spinning)."""
        if slot.check_of is not None or self.ctx.liveness.any_alive(self._avoid(slot)):
            self._retry(slot)

    def _retry(self, slot: Slot) -> None:
        slot.attempt += 1
        slot.deadline = math.inf
        if slot.check_of is not None:
            slot.misses += 1
        self.ctx.metrics.redispatched.inc()
        self._todo.append(slot)

    def _expire(self) -> None:
        """Re-dispatch overdue tasks; overdue re-checks are done here."""
        now = time.monotonic()
        for slot in list(self._slots.values()):
            if slot.outcomes is None and slot.in_flight and slot.deadline <= now:
                self._log.info("task_overdue", task_id=slot.task_id, attempt=slot.attempt)
                if slot.check_of is not None:
                    slot.misses = self.ctx.settings.check_attempts
                    slot.deadline = math.inf
                    self._todo.append(slot)
                else:
                    slot.expiries += 1
                    if slot.expiries > self.ctx.settings.max_task_attempts:
                        # Every evaluator that took it died or hung: stop, don't loop forever.
                        raise TaskAbandonedError(
                            f"task {slot.task_id} got no result in "
                            f"{slot.expiries} attempts; its genomes crash or hang every "
                            "evaluator that takes them, or no evaluator is running"
                        )
                    self._retry(slot)

    def _flush(self) -> None:
        """Publish (or, for re-checks that cannot go out, evaluate) everything scheduled."""
        tasks: list[EvaluationTask] = []
        timeout = self.ctx.settings.task_timeout_s
        while self._todo:
            slot = self._todo.pop(0)
            if slot.outcomes is not None or self._slots.get(slot.task_id) is not slot:
                continue  # answered or cancelled meanwhile
            if slot.check_of is not None and self._check_here(slot):
                self._check_locally(slot)
                continue
            slot.deadline = time.monotonic() + timeout * 2 ** min(slot.attempt, _MAX_BACKOFF)
            if not slot.in_flight:
                slot.in_flight = True
                self.ctx.metrics.in_flight.inc()
            tasks.append(self._task(slot))
        if tasks:
            self.ctx.publish_tasks(tasks)

    def _avoid(self, slot: Slot) -> set[str]:
        avoid = set(self.quarantine)
        if slot.check_of is not None and slot.check_of.evaluator is not None:
            avoid.add(slot.check_of.evaluator)
        return avoid

    def _check_here(self, check: Slot) -> bool:
        """Whether the evolver must run this re-check itself."""
        if check.misses >= self.ctx.settings.check_attempts:
            return True
        return not self.ctx.liveness.any_alive(self._avoid(check) | {LOCAL})

    def _check_locally(self, check: Slot) -> None:
        self._land(check)
        check.outcomes = self._evaluate_here(check.spec)
        check.evaluator = LOCAL
        self.ctx.metrics.local_checks.inc()
        self._after_check(check)

    def _land(self, slot: Slot) -> None:
        if slot.in_flight:
            slot.in_flight = False
            self.ctx.metrics.in_flight.dec()

    def _wait_s(self) -> float:
        pending = [s.deadline for s in self._slots.values() if s.in_flight and s.outcomes is None]
        if not pending:
            return _POLL_S
        return min(_POLL_S, max(0.005, min(pending) - time.monotonic()))

    def _evaluate_here(self, spec: TaskSpec) -> dict[int, Outcome]:
        """Evaluate ``spec`` in this process (same function the evaluators run)."""
        config = self.state.config
        genomes = [self.state.population.genomes[k] for k in spec.genome_keys]
        with self.ctx.local_lock:
            outcomes = evaluate_batch(
                genomes, config.gym_game_name, [self._seeds[g] for g in spec.game_indices],
                config.max_number_of_steps, config.reward_floor, config.input_size,
                config.output_size,
            )
        return {o.key: o for o in outcomes}

    def _task(self, slot: Slot) -> EvaluationTask:
        config = self.state.config
        for k in slot.spec.genome_keys:
            if k not in self._wire:
                self._wire[k] = WireGenome(**self.state.population.genomes[k].to_wire())
        return EvaluationTask(
            task_id=slot.task_id, training_id=self.training_id, generation=self.generation,
            attempt=slot.attempt, env_id=config.gym_game_name,
            game_indices=list(slot.spec.game_indices),
            game_seeds=[self._seeds[g] for g in slot.spec.game_indices],
            max_steps=config.max_number_of_steps, reward_floor=config.reward_floor,
            input_size=config.input_size, output_size=config.output_size,
            genomes=[self._wire[k] for k in slot.spec.genome_keys],
            avoid_evaluators=sorted(self._avoid(slot)),
        )
