"""Safeness for a round: re-check sampled genomes elsewhere, break ties, quarantine.

A task's sampled genomes are evaluated again by a different evaluator (the re-check lists
the first in ``avoid_evaluators``).  Equal answers settle the task; on a mismatch a third
evaluator (avoiding both) decides, the majority's outcome is kept and whoever disagreed
is quarantined for the training: its later answers are ignored and the tasks it answered
in this round are done again.  With no second evaluator serving the environment, a
re-check is impossible and is skipped (counted).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from ezspark_common.evaluation.batch import agree
from ezspark_common.trainer.tasks import TaskPlan
from ezspark_common.wire.routing import avoided
from ezspark_evolver.slots import Kind, Slot

if TYPE_CHECKING:
    from ezspark_evolver.metrics import EvolverMetrics
    from ezspark_evolver.pools import Pools

    class _Counted(Protocol):
        @property
        def metrics(self) -> EvolverMetrics: ...


class Verification:
    """The safeness half of ``rules.RoundRules`` (a mixin: it works on the round's state)."""

    if TYPE_CHECKING:  # provided by RoundRules
        ctx: _Counted
        pools: Pools
        quarantine: set[str]
        on_quarantine: Callable[[str], None]
        checked: set[int]
        mismatched: set[int]
        skipped: int
        _sample: frozenset[int]
        _serial: int
        _prefix: str
        _slots: dict[str, Slot]
        _todo: list[Slot]
        _primaries: list[Slot]
        _log: Any

        def _anyone_for(self, slot: Slot) -> bool: ...
        def _land(self, slot: Slot) -> None: ...
        def _retry(self, slot: Slot) -> None: ...

    def _after_task(self, task: Slot) -> None:
        """A task answered: re-check its sampled genomes on another evaluator, if any."""
        keys = tuple(k for k in task.plan.genome_keys if k in self._sample)
        if not keys:
            task.done = True
            return
        assert task.evaluator is not None
        self._follow_up(task, Kind.CHECK, keys, self.pools.avoid_keys(task.evaluator))

    def _follow_up(
        self,
        task: Slot,
        kind: Kind,
        keys: tuple[int, ...],
        avoid: set[str],
        second: Slot | None = None,
    ) -> None:
        """Schedule a check or tie-break of ``task``'s ``keys`` away from ``avoid``."""
        self._serial += 1
        plan = TaskPlan(task.plan.index, keys, task.plan.game_indices)
        slot = Slot(
            f"{self._prefix}:{kind.value}{plan.index}.{self._serial}",
            plan,
            kind,
            of=task,
            avoid=avoid,
        )
        if second is not None:
            slot.second, slot.second_by = second.outcomes, second.evaluator
        task.check = slot
        self._slots[slot.task_id] = slot
        if kind is Kind.CHECK and not self._anyone_for(slot):
            self._skip_check(slot)
            return
        self._todo.append(slot)

    def _skip_check(self, check: Slot) -> None:
        """No other evaluator serves the environment: a second opinion is impossible."""
        task = check.of
        assert task is not None
        self._slots.pop(check.task_id, None)
        self._land(check)
        task.check, task.done = None, True
        self.skipped += len(check.plan.genome_keys)
        self.ctx.metrics.skipped_checks.inc(len(check.plan.genome_keys))
        self._log.debug(
            "safeness_check_skipped",
            task_id=task.task_id,
            reason="no second evaluator serves the environment",
        )

    def _after_check(self, check: Slot) -> None:
        """Compare a re-check with its task; a mismatch goes to a third evaluator."""
        task = check.of
        assert task is not None
        assert task.outcomes is not None
        assert check.outcomes is not None
        keys = check.plan.genome_keys
        bad = tuple(k for k in keys if not agree(task.outcomes[k], check.outcomes[k]))
        self.checked.update(keys)
        self.ctx.metrics.checks.inc(len(keys))
        if not bad:
            task.done = True
            return
        self.mismatched.update(bad)
        self.ctx.metrics.mismatches.inc(len(bad))
        self._log.warning(
            "safeness_mismatch",
            task_id=task.task_id,
            genomes=list(bad[:10]),
            count=len(bad),
            first=task.evaluator,
            second=check.evaluator,
        )
        assert task.evaluator is not None
        assert check.evaluator is not None
        avoid = self.pools.avoid_keys(task.evaluator) | self.pools.avoid_keys(check.evaluator)
        self._follow_up(task, Kind.TIE, bad, avoid, second=check)

    def _after_tie(self, tie: Slot) -> None:
        """Keep the majority's outcome; quarantine whoever disagreed with it."""
        task = tie.of
        assert task is not None
        assert task.outcomes is not None
        assert tie.outcomes is not None
        second, second_by = tie.second, tie.second_by or ""
        assert second is not None
        losers: set[str] = set()
        for k in tie.plan.genome_keys:
            third = tie.outcomes[k]
            if agree(third, task.outcomes[k]):
                losers.add(second_by)
            elif agree(third, second[k]):
                losers.add(task.evaluator or "")
                task.outcomes[k] = second[k]
            else:  # three different answers: trust neither of the first two
                losers |= {task.evaluator or "", second_by}
        task.done = True
        for evaluator in sorted(losers - {""}):
            self._quarantine(evaluator)

    def _quarantine(self, evaluator: str) -> None:
        """Ignore ``evaluator`` (and, for another user's machine, every machine of that
        user) from now on, and redo whatever they answered in this round."""
        if evaluator in self.quarantine:
            return
        self.quarantine.update(self.pools.avoid_keys(evaluator))  # the trainer's set: saved
        self.on_quarantine(evaluator)
        for task in self._primaries:
            if task.evaluator is not None and avoided(task.evaluator, self.quarantine):
                self._reset(task)

    def _reset(self, task: Slot) -> None:
        """Forget a task's result (and its check) and publish it again."""
        if task.check is not None:
            self._slots.pop(task.check.task_id, None)
            self._land(task.check)
        task.check, task.outcomes, task.evaluator, task.done = None, None, None, False
        self._retry(task)
