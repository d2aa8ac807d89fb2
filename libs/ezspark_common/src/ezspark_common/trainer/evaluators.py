"""The embedded trainer's evaluators: in this process, or over a pool of processes.

Both implement ``generations.Evaluator``.  Tasks are assigned to workers by index (task
``i`` → worker ``i mod N``), and a safeness re-check of a task always goes to the next
worker, so the two results come from different processes.  Results are bit-identical
whatever the assignment (see ``evaluation``), which is what the re-check verifies.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from types import FrameType

import structlog

from ezspark_common import rng as rngs
from ezspark_common.config import TrainingConfig
from ezspark_common.evaluation.batch import GameSetup, Outcome, agree
from ezspark_common.evaluation.envs import buildable_elsewhere
from ezspark_common.evaluation.failures import frame_site
from ezspark_common.evaluation.games import EnvPool, stood_in
from ezspark_common.evaluation.hangs import HangGuard
from ezspark_common.neat.population import Population
from ezspark_common.trainer.generations import Evaluator, GenerationOutcome
from ezspark_common.trainer.tasks import TaskPlan, merge_outcomes, safeness_sample, split_tasks
from ezspark_common.trainer.workers import Assigned, Batch, WorkerPool

log = structlog.get_logger(__name__)

MAX_BATCH = 2000  # genomes per task: bigger batches amortise Python overhead, up to memory


def evaluate_generation(
    population: Population,
    config: TrainingConfig,
    workers: int,
    run: Callable[[Assigned], list[list[Outcome]]],
) -> GenerationOutcome:
    """Cut the generation into tasks for ``workers`` workers, run them with ``run`` (results
    in the order given), and merge; a re-check of a task goes to the next worker."""
    gen = population.generation
    keys = list(population.genomes)
    size = min(MAX_BATCH, math.ceil(len(keys) / workers))
    plans = split_tasks(keys, config.max_number_of_games, config.sub_games, size)
    checks = _recheck_plans(plans, set(safeness_sample(config, gen, keys)))
    seeds = rngs.game_seeds(config.seed, gen, config.max_number_of_games)
    setup = GameSetup.of(config)
    batches = [_batch(p, population, setup, seeds) for p in plans + checks]
    assigned = [(i % workers, b) for i, b in enumerate(batches[: len(plans)])]
    assigned += [
        ((i + 1) % workers, batches[len(plans) + j]) for j, i in enumerate(c.index for c in checks)
    ]
    results = run(assigned)
    n_games, floor = config.max_number_of_games, config.reward_floor
    merged = merge_outcomes(zip(plans, results[: len(plans)], strict=True), n_games, floor)
    rechecked = (
        merge_outcomes(zip(checks, results[len(plans) :], strict=True), n_games, floor)
        if checks
        else {}
    )
    mismatches = [k for k, o in rechecked.items() if not agree(o, merged[k])]
    if mismatches:
        log.warning(
            "safeness_mismatch", generation=gen, genomes=mismatches[:10], count=len(mismatches)
        )
    return GenerationOutcome(merged, len(rechecked), len(mismatches))


class InProcessEvaluator:
    """Evaluates generations in this process, reusing its own environments.

    ``hang_limit_s`` bounds each ``reset``/``step`` of a user's environment when evaluating
    on the main thread (see ``hangs``): a stuck call fails its game instead of the run.
    """

    def __init__(self, hang_limit_s: float | None = None) -> None:
        self._envs = EnvPool(HangGuard(hang_limit_s, _stuck_here))

    def evaluate(self, population: Population, config: TrainingConfig) -> GenerationOutcome:
        """Every genome of the population on the generation's games."""
        return evaluate_generation(population, config, 1, self._run)

    def _run(self, assigned: Assigned) -> list[list[Outcome]]:
        with self._envs.guard:
            return [batch.run(self._envs) for _, batch in assigned]

    def close(self) -> None:
        """Nothing to stop."""


def _stuck_here(what: str, frame: FrameType | None) -> None:
    """A call stuck in native code in this process: nothing can free it; say where."""
    log.error(
        "environment_stuck_in_native_code",
        call=what,
        where=frame_site(frame).strip(" ()") or None,
        hint="it cannot be interrupted in this process: stop the run (kill it if Ctrl-C "
        "does not) and resume it with games in worker processes (EZSPARK_ISOLATE_ENVS "
        "true, the default, or --workers 2), where such a game fails instead",
    )


class ProcessPoolEvaluator:
    """Evaluates generations over ``workers`` processes, started on first use."""

    def __init__(
        self, workers: int, env_modules: Sequence[str] = (), hang_limit_s: float | None = None
    ) -> None:
        self.workers = workers
        self._env_modules = list(env_modules)
        self._hang_limit_s = hang_limit_s
        self._pool: WorkerPool | None = None

    @property
    def started(self) -> bool:
        """True once the worker processes run."""
        return self._pool is not None

    def evaluate(
        self, population: Population, config: TrainingConfig, *, alone: bool = False
    ) -> GenerationOutcome:
        """Every genome of the population on the generation's games, over the workers; or,
        ``alone``, all on the first worker (one process plays it, as one machine would)."""
        if self._pool is None:
            self._pool = WorkerPool(self.workers, self._env_modules, self._hang_limit_s)
        workers = 1 if alone else self._pool.size
        return evaluate_generation(population, config, workers, self._pool.run)

    def close(self) -> None:
        """Stop the worker processes, if any were started."""
        if self._pool is not None:
            self._pool.close()
            self._pool = None


class SoloEvaluator:
    """The alone phase of ``ezspark train --workers N``: one process plays each generation,
    but a worker process, not this one, so a native crash of the environment costs only
    the genomes it crashes on (``workers``), not the run."""

    def __init__(self, pool: ProcessPoolEvaluator) -> None:
        self._pool = pool

    def evaluate(self, population: Population, config: TrainingConfig) -> GenerationOutcome:
        """Every genome of the population on the generation's games, on the first worker."""
        return self._pool.evaluate(population, config, alone=True)

    def close(self) -> None:
        """Nothing of its own to stop: the pool is closed by its owner."""


class EmbeddedEvaluator:
    """``ezspark train``'s evaluator: in this process, or over ``workers`` processes.

    ``isolate`` plays even a one-worker run in a worker process (see :func:`plays_user_code`),
    so a native crash or hang of the environment costs its genomes, not the run.  The first
    ``alone_training_iterations`` generations run in one process, as a client would run them
    alone before joining others (this one, or the first worker process), unless
    ``pool_alone`` (``ezspark train --gateway``, where the alone phase is the whole local
    run); later ones use the pool.  Either way a call into the environment stuck for
    ``hang_limit_s`` fails its game.
    """

    def __init__(
        self,
        workers: int = 1,
        env_modules: Sequence[str] = (),
        *,
        pool_alone: bool = False,
        hang_limit_s: float | None = None,
        isolate: bool = False,
    ) -> None:
        self.workers = workers
        self._pool_alone = pool_alone
        self.pool = ProcessPoolEvaluator(workers, env_modules, hang_limit_s)
        self.in_process = workers <= 1 and not isolate
        self.here: Evaluator = (
            InProcessEvaluator(hang_limit_s) if self.in_process else SoloEvaluator(self.pool)
        )

    def evaluator_for(self, config: TrainingConfig, generation: int) -> Evaluator:
        """Which of the two evaluates generation ``generation``."""
        alone = generation < config.alone_training_iterations and not self._pool_alone
        return self.here if self.in_process or alone else self.pool

    def evaluate(self, population: Population, config: TrainingConfig) -> GenerationOutcome:
        """Every genome of the population on the generation's games."""
        return self.evaluator_for(config, population.generation).evaluate(population, config)

    def close(self) -> None:
        """Stop worker processes, if any were started."""
        self.pool.close()


def plays_user_code(env_id: str) -> bool:
    """Whether games of ``env_id`` step the environment itself (not EzSpark's stand-in for
    it) and a worker process can build it: then even a one-worker run plays in a worker,
    because only another process survives a native crash of a user's code."""
    return not stood_in(env_id) and buildable_elsewhere(env_id)


def _recheck_plans(plans: list[TaskPlan], sample: set[int]) -> list[TaskPlan]:
    """One re-check task per task holding sampled genomes; ``index`` is the original task."""
    out = []
    for plan in plans:
        keys = tuple(k for k in plan.genome_keys if k in sample)
        if keys:
            out.append(TaskPlan(plan.index, keys, plan.game_indices))
    return out


def _batch(plan: TaskPlan, pop: Population, setup: GameSetup, seeds: list[int]) -> Batch:
    return Batch(
        genomes=tuple(pop.genomes[k] for k in plan.genome_keys),
        setup=setup,
        game_seeds=tuple(seeds[g] for g in plan.game_indices),
    )
