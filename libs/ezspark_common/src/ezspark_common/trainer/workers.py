"""Worker processes that play games (the embedded trainer's pool, an evaluator's child),
and what happens when one dies.

A user's environment may crash natively (a segfault in its C code, ``os._exit``): nothing
in Python can catch that, but it only ends the worker process that played the game.  The
pool then starts a new worker and plays that batch's genomes again one at a time: a genome
whose games end the worker once more gets the reward floor for every game and an error
naming how the process ended, the others their ordinary outcomes.  Each genome's outcome
does not depend on the batch it was played in (see ``evaluation``), so the result is the
same whatever the number of workers, and a worker killed for another reason (the kernel's
out-of-memory killer, a stray ``kill``) costs nothing but time.  ``abort`` kills a worker
stuck in a game on purpose (an evaluator's hang watchdog): its job then has no result.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Protocol

import structlog

from ezspark_common.evaluation import isolation
from ezspark_common.evaluation.batch import (
    GameSetup,
    Outcome,
    OutcomeTable,
    evaluate_batch,
    evaluate_table,
)
from ezspark_common.evaluation.envs import load_env_modules
from ezspark_common.evaluation.games import EnvPool
from ezspark_common.evaluation.hangs import HangGuard
from ezspark_common.neat.genome import Genome
from ezspark_common.neat.packed import PackedGenomes

log = structlog.get_logger(__name__)


class Job(Protocol):
    """What a worker is handed: genomes to play on some games, cut into one-genome parts
    when a worker dies on it (``Batch``, ``TableBatch``)."""

    def run(self, envs: EnvPool) -> Any:
        """Play it here, with the caller's environment pool."""

    def parts(self) -> Sequence[Job]:
        """One job per genome, in order."""

    def crashed(self, how: str) -> Any:
        """A one-genome part's result when playing it ended the worker ``how``."""

    def merge(self, results: Sequence[Any]) -> Any:
        """The whole job's result from its parts' results, in order."""


def _crashed(key: int, setup: GameSetup, n_games: int, how: str) -> Outcome:
    """The floor on every game, and how the environment ended its worker (and where)."""
    width = 2 * setup.n_inputs if setup.behaviour else 0
    return Outcome(
        key=key,
        returns=(setup.reward_floor,) * n_games,
        steps=0,
        error=f"the environment {how}",
        behaviour=((0.0,) * width,) * n_games if width else (),
    )


@dataclass(frozen=True)
class Batch:
    """Genomes to play on some games, as the embedded trainer hands them out."""

    genomes: tuple[Genome, ...]
    setup: GameSetup
    game_seeds: tuple[int, ...]

    def run(self, envs: EnvPool) -> list[Outcome]:
        """Evaluate the batch here, with the caller's environment pool."""
        return evaluate_batch(self.genomes, self.setup, self.game_seeds, envs=envs)

    def parts(self) -> list[Batch]:
        """One batch per genome, on the same games."""
        return [Batch((g,), self.setup, self.game_seeds) for g in self.genomes]

    def crashed(self, how: str) -> list[Outcome]:
        """The floor for the (one) genome."""
        n_games = len(self.game_seeds)
        return [_crashed(g.key, self.setup, n_games, how) for g in self.genomes]

    def merge(self, results: Sequence[list[Outcome]]) -> list[Outcome]:
        """The parts' outcomes, in order."""
        return [o for part in results for o in part]


@dataclass(frozen=True)
class TableBatch:
    """Packed genomes to play on some games, as an evaluator gets them in a task."""

    genomes: PackedGenomes
    setup: GameSetup
    game_seeds: tuple[int, ...]

    def run(self, envs: EnvPool) -> OutcomeTable:
        """Evaluate the batch here, with the caller's environment pool."""
        return evaluate_table(self.genomes, self.setup, self.game_seeds, envs=envs)

    def parts(self) -> list[TableBatch]:
        """One batch per genome, on the same games."""
        return [
            TableBatch(PackedGenomes.pack([g]), self.setup, self.game_seeds)
            for g in self.genomes.genomes()
        ]

    def crashed(self, how: str) -> OutcomeTable:
        """The floor for the (one) genome."""
        n_games = len(self.game_seeds)
        keys = self.genomes.keys.tolist()
        return OutcomeTable.of([_crashed(k, self.setup, n_games, how) for k in keys], n_games)

    def merge(self, results: Sequence[OutcomeTable]) -> OutcomeTable:
        """The parts' rows, in order."""
        return OutcomeTable.of([o for part in results for o in part], len(self.game_seeds))


Assigned = Sequence[tuple[int, Job]]  # (worker, job) pairs
_DIED = "died"  # a worker's answer when it ended instead of answering
_ABORTED = "aborted"  # ... when it was killed by ``abort``


class JobAbortedError(Exception):
    """A job's worker was killed by ``WorkerPool.abort`` (its game hung): no result."""


def _worker_main(
    conn: Connection, dump: str, env_modules: list[str], hang_limit_s: float | None
) -> None:
    isolation.enter(dump)  # Ctrl-C belongs to the parent, which checkpoints and stops us
    load_env_modules(env_modules)
    # This process's own environments, reused from task to task; a call stuck in native
    # code past the hang limit ends the process, and the parent fails that genome.
    envs = EnvPool(HangGuard(hang_limit_s, isolation.end_stuck(dump, hang_limit_s)))
    while True:
        try:
            job = conn.recv()
        except EOFError:  # the parent is gone (killed, or exited without closing us)
            return
        if job is None:
            return
        try:
            with envs.guard:
                result = job.run(envs)
            conn.send(("ok", result))
        except Exception as exc:  # a bug, not an environment error: report it upstream
            conn.send(("error", f"{type(exc).__name__}: {exc}"))


class WorkerPool:
    """N worker processes, each fed its own ordered list of jobs; a worker that dies is
    replaced, and its job played again genome by genome (module docstring)."""

    def __init__(
        self, workers: int, env_modules: Sequence[str] = (), hang_limit_s: float | None = None
    ) -> None:
        self._ctx = isolation.context()
        self._args = (list(env_modules), hang_limit_s)
        self._conns: list[Connection] = []
        self._procs: list[Any] = []
        self._dumps: list[str] = []  # each worker's faulthandler file
        self._lock = threading.Lock()  # guards the two flags below against ``abort``
        self._busy = [False] * workers  # playing a job now
        self._aborting = [False] * workers  # killed by ``abort``: its job has no result
        for _ in range(workers):
            conn, proc, dump = self._start()
            self._conns.append(conn)
            self._procs.append(proc)
            self._dumps.append(dump)
        self.replaced = 0  # workers started again after dying

    def _start(self) -> tuple[Connection, Any, str]:
        return isolation.start(self._ctx, _worker_main, self._args)

    @property
    def size(self) -> int:
        """Number of worker processes."""
        return len(self._conns)

    def run(self, assigned: Assigned) -> list[Any]:
        """Run ``(worker, job)`` pairs; results in the order given."""
        results: list[Any] = [None] * len(assigned)
        threads = [
            threading.Thread(target=self._feed, args=(w, assigned, results), daemon=True)
            for w in range(self.size)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if any(status == _ABORTED for status, _ in results):
            raise JobAbortedError("a worker playing the job was stopped (abort)")
        for status, value in results:
            if status != "ok":
                raise RuntimeError(f"worker failed: {value}")
        return [value for _, value in results]

    def _feed(self, worker: int, assigned: Assigned, results: list[Any]) -> None:
        for i, (w, job) in enumerate(assigned):
            if w != worker:
                continue
            status, value = self._play(worker, job)
            if status == _DIED:
                status, value = self._by_parts(worker, job)
            results[i] = (status, value)

    def _by_parts(self, worker: int, job: Job) -> tuple[str, Any]:
        """``job`` played again one genome at a time, after it ended a worker: a part that
        ends the worker again gets the floor (``Job.crashed``)."""
        done = []
        for part in job.parts():
            status, value = self._play(worker, part)
            if status == _DIED:
                value = part.crashed(value)
            elif status != "ok":
                return status, value
            done.append(value)
        return "ok", job.merge(done)

    def _play(self, worker: int, job: Job) -> tuple[str, Any]:
        """Send ``job`` to ``worker`` and wait for its answer; if the worker dies instead,
        replace it and answer ``(_DIED, how it ended)``, or ``(_ABORTED, None)`` if ``abort``
        killed it."""
        with self._lock:
            self._busy[worker] = True
        try:
            self._conns[worker].send(job)
            answer: tuple[str, Any] = self._conns[worker].recv()
        except (EOFError, OSError):
            with self._lock:
                aborted, self._aborting[worker] = self._aborting[worker], False
                self._busy[worker] = False
            how = self._replace(worker)
            return (_ABORTED, None) if aborted else (_DIED, how)
        with self._lock:  # answered: an abort that came too late leaves a dead worker,
            self._busy[worker] = self._aborting[worker] = False  # which the next job replaces
        return answer

    def abort(self, worker: int = 0) -> bool:
        """Kill ``worker`` if it is playing a job (a game that hangs): the job ends with
        :class:`JobAbortedError` instead of being played again, and a new worker takes
        the next one.  False if the worker was idle."""
        with self._lock:
            if not self._busy[worker]:
                return False
            self._aborting[worker] = True
            self._procs[worker].kill()
            return True

    def _replace(self, worker: int) -> str:
        """Start a new worker in place of the dead one; how the dead one ended."""
        proc, dump = self._procs[worker], self._dumps[worker]
        proc.join(timeout=5)
        how = isolation.how_it_ended(proc.exitcode, dump)
        log.debug("worker_died", worker=worker, how=how)
        self._conns[worker].close()
        self._conns[worker], self._procs[worker], self._dumps[worker] = self._start()
        self.replaced += 1
        return how

    def close(self) -> None:
        """Stop the workers."""
        for conn in self._conns:
            try:
                conn.send(None)
            except OSError:  # already gone
                continue
        for proc in self._procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.terminate()
        for dump in self._dumps:
            Path(dump).unlink(missing_ok=True)
