"""Where an evaluator plays a task's games: in a child process by default, or here.

A user's environment may crash natively (a segfault in its C code): in the evaluator's own
process that would end the evaluator, RabbitMQ would hand the task to the next one, and
after the delivery limit it would be dead-lettered and the training failed, one crashed
evaluator per delivery.  Played in a child process (``trainer.workers``), the crash ends
only the child: a new one is forked, the task's genomes are played again one at a time, and
those that crash it again get the reward floor and an error naming the signal and the
line, while the rest keep their outcomes.  The evaluator answers the task as usual.  A
game that hangs is ended the same way: the watchdog kills the child (``abort``), and the
evaluator goes on with a new one instead of exiting.

``EZSPARK_ISOLATE_ENVS=false`` plays in the evaluator's process instead (a little less
overhead, for operators whose environments cannot crash natively).
"""

from __future__ import annotations

from collections.abc import Sequence

from ezspark_common.evaluation.batch import OutcomeTable
from ezspark_common.evaluation.games import EnvPool
from ezspark_common.trainer.tasks import evaluate_task, task_setup
from ezspark_common.trainer.workers import TableBatch, WorkerPool
from ezspark_common.wire.messages import EvaluationTask


class Player:
    """Plays tasks one at a time (the caller serialises them)."""

    def __init__(self, env_modules: Sequence[str], *, isolate: bool = True) -> None:
        self._env_modules = list(env_modules)
        self._isolate = isolate
        self._pool: WorkerPool | None = None  # started by ``start`` or the first task
        self._envs = EnvPool()  # when not isolated: this process's own, reused
        self.crashes = 0  # child processes that died while playing

    def start(self) -> None:
        """Start the child now (about half a second of imports), not with the first task."""
        if self._isolate and self._pool is None:
            self._pool = WorkerPool(1, self._env_modules)

    def play(self, task: EvaluationTask) -> OutcomeTable:
        """Every genome's outcome on the task's games; raises if evaluation itself fails
        (a bug or a broken plug-in, not a bad game), ``JobAbortedError`` after ``abort``."""
        if not self._isolate:
            return evaluate_task(task, self._envs)
        self.start()
        assert self._pool is not None
        job = TableBatch(task.genomes, task_setup(task), tuple(task.game_seeds))
        before = self._pool.replaced
        try:
            (table,) = self._pool.run([(0, job)])
        finally:
            self.crashes += self._pool.replaced - before
        result: OutcomeTable = table
        return result

    @property
    def isolated(self) -> bool:
        """Whether tasks are played in a child process."""
        return self._isolate

    def abort(self) -> bool:
        """Kill the child playing a task now (its game hung): ``play`` then raises
        ``JobAbortedError`` and the next task gets a new child.  False if none was playing."""
        return self._pool is not None and self._pool.abort()

    def close(self) -> None:
        """Stop the child, if one was started."""
        if self._pool is not None:
            self._pool.close()
            self._pool = None
