"""Whether an answer may fill its slot: the pure check behind every ignored-result reason."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import pytest

from ezspark_common.evaluation.batch import OutcomeTable
from ezspark_common.trainer.tasks import TaskPlan
from ezspark_common.wire.messages import EvaluationResult
from ezspark_common.wire.routing import user_evaluator_name
from ezspark_evolver.pools import OPERATOR, Pools
from ezspark_evolver.slots import Slot, why_unusable

POOLS = Pools("CartPole-v1", "alice")
INPUTS = 4
STRANGER = user_evaluator_name("mallory", False, "m4ch1ne")  # another user's own machine
VOLUNTEER = user_evaluator_name("bob", True, "v0lunteer")


def _slot(**changes: object) -> Slot:
    """A task of genomes 3 and 4 over games 0 and 1, sent to the operator's queue."""
    slot = Slot("t:0:r:t0", TaskPlan(0, (3, 4), (0, 1)), queues={POOLS.queue(OPERATOR)})
    return dataclasses.replace(slot, **changes)  # type: ignore[arg-type]


def _result(
    evaluator: str = "ev-1",
    keys: tuple[int, ...] = (3, 4),
    games: int = 2,
    behaviour: int | None = None,
    declined: bool = False,
) -> EvaluationResult:
    n = len(keys)
    table = OutcomeTable(
        np.array(keys, dtype=np.int64),
        np.zeros((n, games)),
        np.zeros(n, dtype=np.int64),
        behaviour=None if behaviour is None else np.zeros((n, games, behaviour)),
    )
    return EvaluationResult(
        task_id="t:0:r:t0",
        training_id="t",
        generation=0,
        evaluator_id=evaluator,
        outcomes=table,
        duration_s=0.1,
        declined=declined,
    )


def test_a_well_formed_answer_from_an_allowed_evaluator_fills_its_slot() -> None:
    """An operator evaluator's answer, a row per genome and a column per game, is usable."""
    assert why_unusable(_slot(), _result(), POOLS, set(), INPUTS) is None
    assert why_unusable(_slot(), _result(behaviour=2 * INPUTS), POOLS, set(), INPUTS) is None


Case = Callable[[], tuple[Slot | None, EvaluationResult, set[str]]]
CASES: list[tuple[str, Case]] = [
    ("stale", lambda: (None, _result(), set())),
    ("unauthorized", lambda: (_slot(), _result(STRANGER), set())),
    ("unauthorized", lambda: (_slot(), _result(VOLUNTEER), set())),  # not sent to volunteers
    ("duplicate", lambda: (_slot(outcomes={}), _result(), set())),
    ("declined", lambda: (_slot(), _result(declined=True), set())),
    ("quarantined", lambda: (_slot(), _result(), {"ev-1"})),
    ("same_evaluator", lambda: (_slot(avoid={"ev-1"}), _result(), set())),
    ("invalid", lambda: (_slot(), _result(keys=(4, 3)), set())),
    ("invalid", lambda: (_slot(), _result(games=1), set())),
    ("invalid", lambda: (_slot(), _result(behaviour=INPUTS), set())),
]


@pytest.mark.parametrize(("reason", "case"), CASES)
def test_each_flaw_is_named(reason: str, case: Case) -> None:
    """Stale, foreign, repeated, declined, distrusted or misshapen answers get their reason."""
    slot, result, quarantine = case()
    assert why_unusable(slot, result, POOLS, quarantine, INPUTS) == reason
