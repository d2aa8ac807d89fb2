"""In-process and multi-process evaluation for the embedded trainer.

Tasks are assigned to workers by index (task ``i`` → worker ``i mod N``), and a safeness
re-check of a task always goes to the next worker, so the two results come from different
processes.  Results are bit-identical whatever the assignment (see ``evaluation``), which
is what the re-check verifies.
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing as mp
import signal
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import structlog

from ezspark_common import rng as rngs
from ezspark_common.config import TrainingConfig
from ezspark_common.envs import load_env_modules
from ezspark_common.evaluation import Outcome, agree, evaluate_batch
from ezspark_common.neat.genome import Genome
from ezspark_common.neat.population import Population
from ezspark_common.tasks import TaskSpec, merge_outcomes, safeness_sample, split_tasks

log = structlog.get_logger(__name__)

MAX_BATCH = 2000  # genomes per task: bigger batches amortise Python overhead, up to memory


@dataclass(frozen=True)
class Task:
    """Everything a worker needs to evaluate one task."""

    genomes: tuple[Genome, ...]
    env_id: str
    game_seeds: tuple[int, ...]
    max_steps: int
    reward_floor: float
    n_inputs: int
    n_outputs: int
    recurrent: bool = False

    def run(self) -> list[Outcome]:
        """Evaluate the task here."""
        return evaluate_batch(
            self.genomes,
            self.env_id,
            self.game_seeds,
            self.max_steps,
            self.reward_floor,
            self.n_inputs,
            self.n_outputs,
            recurrent=self.recurrent,
        )


@dataclass(frozen=True)
class GenerationOutcome:
    """A generation's merged outcomes plus the safeness re-check counts."""

    outcomes: dict[int, Outcome]
    checks: int
    mismatches: int


def _worker_main(conn: Connection, env_modules: list[str]) -> None:
    # Ctrl-C belongs to the parent, which checkpoints and then stops us.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    load_env_modules(env_modules)
    while True:
        task = conn.recv()
        if task is None:
            return
        try:
            conn.send(("ok", task.run()))
        except Exception as exc:  # a bug, not an environment error: report it upstream
            conn.send(("error", f"{type(exc).__name__}: {exc}"))


class WorkerPool:
    """N worker processes, each fed its own ordered list of tasks."""

    def __init__(self, workers: int, env_modules: Sequence[str] = ()) -> None:
        ctx = mp.get_context("spawn")
        self._conns: list[Connection] = []
        self._procs: list[Any] = []
        for _ in range(workers):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_worker_main, args=(child, list(env_modules)), daemon=True)
            proc.start()
            self._conns.append(parent)
            self._procs.append(proc)

    @property
    def size(self) -> int:
        """Number of worker processes."""
        return len(self._conns)

    def run(self, assigned: Sequence[tuple[int, Task]]) -> list[list[Outcome]]:
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

    def _feed(self, worker: int, assigned: Sequence[tuple[int, Task]], results: list[Any]) -> None:
        conn = self._conns[worker]
        for i, (w, task) in enumerate(assigned):
            if w != worker:
                continue
            try:
                conn.send(task)
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


class LocalEvaluator:
    """Evaluates generations in this process, or over ``workers`` processes.

    The first ``alone_training_iterations`` generations run in this process, as a client
    would run them alone before joining others, unless ``pool_alone`` (``ezspark train
    --gateway``, where the alone phase is the whole local run); later ones use the pool.
    """

    def __init__(
        self, workers: int = 1, env_modules: Sequence[str] = (), *, pool_alone: bool = False
    ) -> None:
        self.workers = workers
        self._env_modules = list(env_modules)
        self._pool_alone = pool_alone
        self._pool: WorkerPool | None = None

    def _pool_for(self, config: TrainingConfig, generation: int) -> WorkerPool | None:
        alone = generation < config.alone_training_iterations and not self._pool_alone
        if self.workers <= 1 or alone:
            return None
        if self._pool is None:
            self._pool = WorkerPool(self.workers, self._env_modules)
        return self._pool

    def evaluate(self, population: Population, config: TrainingConfig) -> GenerationOutcome:
        """Evaluate every genome of the population on the generation's games."""
        gen = population.generation
        pool = self._pool_for(config, gen)
        n_workers = pool.size if pool else 1
        keys = list(population.genomes)
        batch = min(MAX_BATCH, math.ceil(len(keys) / n_workers))
        specs = split_tasks(keys, config.max_number_of_games, config.sub_games, batch)
        checks = _recheck_specs(specs, set(safeness_sample(config, gen, keys)))
        seeds = rngs.game_seeds(config.seed, gen, config.max_number_of_games)
        tasks = [_task(s, population, config, seeds) for s in specs + checks]
        assigned = [(i % n_workers, t) for i, t in enumerate(tasks[: len(specs)])]
        assigned += [
            ((i + 1) % n_workers, tasks[len(specs) + j])
            for j, i in enumerate(c.index for c in checks)
        ]
        results = pool.run(assigned) if pool else [t.run() for _, t in assigned]
        n_games, floor = config.max_number_of_games, config.reward_floor
        merged = merge_outcomes(zip(specs, results[: len(specs)], strict=True), n_games, floor)
        rechecked = (
            merge_outcomes(zip(checks, results[len(specs) :], strict=True), n_games, floor)
            if checks
            else {}
        )
        mismatches = [k for k, o in rechecked.items() if not agree(o, merged[k])]
        if mismatches:
            log.warning(
                "safeness_mismatch", generation=gen, genomes=mismatches[:10], count=len(mismatches)
            )
        return GenerationOutcome(merged, len(rechecked), len(mismatches))

    def close(self) -> None:
        """Stop worker processes, if any were started."""
        if self._pool is not None:
            self._pool.close()
            self._pool = None


def _recheck_specs(specs: list[TaskSpec], sample: set[int]) -> list[TaskSpec]:
    """One re-check task per task holding sampled genomes; ``index`` is the original task."""
    out = []
    for spec in specs:
        keys = tuple(k for k in spec.genome_keys if k in sample)
        if keys:
            out.append(TaskSpec(spec.index, keys, spec.game_indices))
    return out


def _task(spec: TaskSpec, pop: Population, config: TrainingConfig, seeds: list[int]) -> Task:
    return Task(
        genomes=tuple(pop.genomes[k] for k in spec.genome_keys),
        env_id=config.gym_game_name,
        game_seeds=tuple(seeds[g] for g in spec.game_indices),
        max_steps=config.max_number_of_steps,
        reward_floor=config.reward_floor,
        n_inputs=config.input_size,
        n_outputs=config.output_size,
        recurrent=config.recurrent,
    )
