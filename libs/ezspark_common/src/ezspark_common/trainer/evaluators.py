"""The embedded trainer's evaluators: in this process, or over a pool of processes.

Both implement ``generations.Evaluator``.  Tasks are assigned to workers by index (task
``i`` → worker ``i mod N``), and a safeness re-check of a task always goes to the next
worker, so the two results come from different processes.  Results are bit-identical
whatever the assignment (see ``evaluation``), which is what the re-check verifies.
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing as mp
import signal
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import structlog

from ezspark_common import rng as rngs
from ezspark_common.config import TrainingConfig
from ezspark_common.evaluation.batch import GameSetup, Outcome, agree, evaluate_batch
from ezspark_common.evaluation.envs import load_env_modules
from ezspark_common.evaluation.games import EnvPool
from ezspark_common.evaluation.hangs import HangGuard
from ezspark_common.neat.genome import Genome
from ezspark_common.neat.population import Population
from ezspark_common.trainer.generations import Evaluator, GenerationOutcome
from ezspark_common.trainer.tasks import TaskPlan, merge_outcomes, safeness_sample, split_tasks

log = structlog.get_logger(__name__)

MAX_BATCH = 2000  # genomes per task: bigger batches amortise Python overhead, up to memory


@dataclass(frozen=True)
class Batch:
    """Genomes to play on some games: what a worker is handed (a task, run locally)."""

    genomes: tuple[Genome, ...]
    setup: GameSetup
    game_seeds: tuple[int, ...]

    def run(self, envs: EnvPool) -> list[Outcome]:
        """Evaluate the batch here, with the caller's environment pool."""
        return evaluate_batch(self.genomes, self.setup, self.game_seeds, envs=envs)


Assigned = Sequence[tuple[int, Batch]]  # (worker, batch) pairs


def _worker_main(conn: Connection, env_modules: list[str], hang_limit_s: float | None) -> None:
    # Ctrl-C belongs to the parent, which checkpoints and then stops us.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    load_env_modules(env_modules)
    envs = EnvPool(HangGuard(hang_limit_s))  # this process's own, reused from task to task
    while True:
        batch = conn.recv()
        if batch is None:
            return
        try:
            with envs.guard:
                outcomes = batch.run(envs)
            conn.send(("ok", outcomes))
        except Exception as exc:  # a bug, not an environment error: report it upstream
            conn.send(("error", f"{type(exc).__name__}: {exc}"))


class WorkerPool:
    """N worker processes, each fed its own ordered list of batches."""

    def __init__(
        self, workers: int, env_modules: Sequence[str] = (), hang_limit_s: float | None = None
    ) -> None:
        ctx = mp.get_context("spawn")
        self._conns: list[Connection] = []
        self._procs: list[Any] = []
        for _ in range(workers):
            parent, child = ctx.Pipe()
            args = (child, list(env_modules), hang_limit_s)
            proc = ctx.Process(target=_worker_main, args=args, daemon=True)
            proc.start()
            self._conns.append(parent)
            self._procs.append(proc)

    @property
    def size(self) -> int:
        """Number of worker processes."""
        return len(self._conns)

    def run(self, assigned: Assigned) -> list[list[Outcome]]:
        """Run ``(worker, task)`` pairs; results in the order given."""
        results: list[Any] = [None] * len(assigned)
        threads = [
            threading.Thread(target=self._feed, args=(w, assigned, results), daemon=True)
            for w in range(self.size)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for status, value in results:
            if status != "ok":
                raise RuntimeError(f"worker failed: {value}")
        return [value for _, value in results]

    def _feed(self, worker: int, assigned: Assigned, results: list[Any]) -> None:
        conn = self._conns[worker]
        for i, (w, batch) in enumerate(assigned):
            if w != worker:
                continue
            try:
                conn.send(batch)
                results[i] = conn.recv()
            except (EOFError, OSError) as exc:
                results[i] = ("error", f"worker {worker} died: {exc}")
                return

    def close(self) -> None:
        """Stop the workers."""
        for conn in self._conns:
            with contextlib.suppress(OSError):  # already gone
                conn.send(None)
        for proc in self._procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.terminate()


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
        self._envs = EnvPool(HangGuard(hang_limit_s))

    def evaluate(self, population: Population, config: TrainingConfig) -> GenerationOutcome:
        """Every genome of the population on the generation's games."""
        return evaluate_generation(population, config, 1, self._run)

    def _run(self, assigned: Assigned) -> list[list[Outcome]]:
        with self._envs.guard:
            return [batch.run(self._envs) for _, batch in assigned]

    def close(self) -> None:
        """Nothing to stop."""


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

    def evaluate(self, population: Population, config: TrainingConfig) -> GenerationOutcome:
        """Every genome of the population on the generation's games, over the workers."""
        if self._pool is None:
            self._pool = WorkerPool(self.workers, self._env_modules, self._hang_limit_s)
        return evaluate_generation(population, config, self._pool.size, self._pool.run)

    def close(self) -> None:
        """Stop the worker processes, if any were started."""
        if self._pool is not None:
            self._pool.close()
            self._pool = None


class EmbeddedEvaluator:
    """``ezspark train``'s evaluator: in this process, or over ``workers`` processes.

    The first ``alone_training_iterations`` generations run in this process, as a client
    would run them alone before joining others, unless ``pool_alone`` (``ezspark train
    --gateway``, where the alone phase is the whole local run); later ones use the pool.
    Either way a call into the environment stuck for ``hang_limit_s`` fails its game.
    """

    def __init__(
        self,
        workers: int = 1,
        env_modules: Sequence[str] = (),
        *,
        pool_alone: bool = False,
        hang_limit_s: float | None = None,
    ) -> None:
        self.workers = workers
        self._pool_alone = pool_alone
        self.here = InProcessEvaluator(hang_limit_s)
        self.pool = ProcessPoolEvaluator(workers, env_modules, hang_limit_s)

    def evaluator_for(self, config: TrainingConfig, generation: int) -> Evaluator:
        """Which of the two evaluates generation ``generation``."""
        alone = generation < config.alone_training_iterations and not self._pool_alone
        return self.here if self.workers <= 1 or alone else self.pool

    def evaluate(self, population: Population, config: TrainingConfig) -> GenerationOutcome:
        """Every genome of the population on the generation's games."""
        return self.evaluator_for(config, population.generation).evaluate(population, config)

    def close(self) -> None:
        """Stop worker processes, if any were started."""
        self.pool.close()


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
