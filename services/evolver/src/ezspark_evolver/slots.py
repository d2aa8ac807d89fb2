"""One round's bookkeeping: a slot per task, re-check or tie-break, what came back, and
whether an answer may fill its slot."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum

from ezspark_common.evaluation.batch import Outcome
from ezspark_common.trainer.tasks import TaskPlan
from ezspark_common.wire.messages import EvaluationResult
from ezspark_common.wire.routing import avoided
from ezspark_evolver.pools import Pools


class Kind(Enum):
    """What a slot is for."""

    TASK = "t"  # a part of the generation
    CHECK = "c"  # safeness: the sampled genomes of a task, again, on another evaluator
    TIE = "x"  # a task and its check disagreed: a third evaluator decides


@dataclass(eq=False)
class Slot:
    """One unit of work of the round and what came back for it."""

    task_id: str
    plan: TaskPlan
    kind: Kind = Kind.TASK
    of: Slot | None = None  # CHECK/TIE: the task they verify
    attempt: int = 0
    deadline: float = math.inf
    sent_at: float = math.inf
    in_flight: bool = False  # holds publishing credit
    speculated: bool = False  # a second copy went out while evaluators were idle
    outcomes: dict[int, Outcome] | None = None
    evaluator: str | None = None
    expiries: int = 0  # deadlines this slot passed without an answer
    declines: int = 0  # copies given back unevaluated (avoided or not served)
    not_before: float = 0.0  # clock reading before which it is not published again
    check: Slot | None = None  # TASK: its current check or tie-break
    done: bool = False  # TASK: answered and, if sampled, verified
    avoid: set[str] = field(default_factory=set)  # evaluators that must not answer it
    queues: set[str] = field(default_factory=set)  # task queues its copies went to
    # TIE: the check's answer and who gave it (the task's own answer is on ``of``).
    second: dict[int, Outcome] | None = None
    second_by: str | None = None

    @property
    def open(self) -> bool:
        """Published and still unanswered."""
        return self.in_flight and self.outcomes is None


def why_unusable(
    slot: Slot | None,
    result: EvaluationResult,
    pools: Pools,
    quarantine: set[str],
    input_size: int,
) -> str | None:
    """Why ``result`` cannot fill ``slot`` (the metric's ``reason`` label), or None if it can."""
    if slot is None:
        return "stale"
    if not pools.could_receive(result.evaluator_id, slot.queues):
        return "unauthorized"
    if slot.outcomes is not None:
        return "duplicate"
    if result.declined:
        return "declined"
    if avoided(result.evaluator_id, quarantine):
        return "quarantined"
    if avoided(result.evaluator_id, slot.avoid):
        return "same_evaluator"
    table, keys = result.outcomes, list(slot.plan.genome_keys)
    if table.returns.shape != (len(keys), len(slot.plan.game_indices)) or (
        table.keys.tolist() != keys
    ):
        return "invalid"
    if table.behaviour is not None and table.behaviour.shape[2] != 2 * input_size:
        return "invalid"
    return None
