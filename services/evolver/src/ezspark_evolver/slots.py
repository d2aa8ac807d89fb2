"""One round's bookkeeping: a slot per task, re-check or tie-break, and what came back."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum

from ezspark_common.evaluation.batch import Outcome
from ezspark_common.trainer.tasks import TaskPlan


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
