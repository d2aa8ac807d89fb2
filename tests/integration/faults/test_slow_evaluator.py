"""An evaluator slower than the task deadline, end to end with REAL processes.

``tests/integration/services/test_evolver_service.py`` proves re-dispatch after the
deadline with a scripted evaluator that swallows tasks.  Here the slow one is a real
evaluator process whose environment (``EzSlowCartPole-v1`` from ``slow_envs``, loaded by
EZSPARK_ENV_MODULES) takes longer than ``task_timeout_s`` per task.  While it holds the last
open task of a generation the fast evaluator is idle, so the evolver publishes a
speculative copy that the fast one answers (usually long before the deadline; a task that
does pass its deadline is re-dispatched).  Either way the slow evaluator is overtaken, its
late answers are ignored, and the run equals the embedded one.

Safeness is 0 here: a re-check must go to another evaluator than the first, so with two
evaluators every re-check of the fast one's answers would wait for the slow one (1 s per
genome and game), which is not what this test is about; re-checks are covered by
``tests/integration/services/test_evolver_faults.py`` and the e2e stack test.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from ezspark_common.trainer.checkpoints import load_checkpoint
from tests.integration.faults.common import alive, evaluator_proc, evolver_proc, record_figures
from tests.integration.services import slow_envs
from tests.integration.services.harness import (
    URL,
    assert_same_run,
    bus,
    config,
    embedded,
    new_prefix,
)
from tests.integration.services.procs import processes
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.faults, pytest.mark.slow, pytest.mark.serial]

TASK_TIMEOUT_S = 2.0
# A task is 3 or 4 genomes x 1 game (12 genomes, 2 games, cut for 2 evaluators, at most
# task_batch_size=4): 3-4 resets = 3-4 s, well past TASK_TIMEOUT_S.
SLOW_RESET_S = 1.0
# <= 0.08 s per task: a whole generation fits well within the deadline on the fast one
# alone (the deadline also counts the time a task waits in the queue).
FAST_RESET_S = 0.02


def test_evaluator_slower_than_the_deadline_is_overtaken_and_run_is_unchanged(
    tmp_path: Path,
) -> None:
    """A slow real evaluator's tasks are overtaken (speculated or re-dispatched); run unchanged."""
    prefix, tid = new_prefix(), "slow-evaluator"
    cfg = config(
        gym_game_name=slow_envs.ENV_ID, generations=4, alone_training_iterations=1, safeness=0.0
    )
    data = tmp_path / "evolver-data"
    with bus(prefix) as b, processes() as procs:
        evo = evolver_proc(tmp_path, procs, URL, queue_prefix=prefix, task_timeout_s=TASK_TIMEOUT_S)
        slow = evaluator_proc(
            tmp_path,
            procs,
            URL,
            "slow",
            slow_envs.ENV_ID,
            queue_prefix=prefix,
            prefetch=1,
            test_slow_reset_s=SLOW_RESET_S,
        )
        fast = evaluator_proc(
            tmp_path,
            procs,
            URL,
            "fast",
            slow_envs.ENV_ID,
            queue_prefix=prefix,
            test_slow_reset_s=FAST_RESET_S,
        )
        evo.wait_log("evolver_active")
        slow.wait_log("consuming")
        fast.wait_log("consuming")
        started = time.monotonic()
        b.request(tid, cfg)
        wait_until(lambda: (data / tid / "final.json").is_file(), 120, "the training to finish")
        seconds = time.monotonic() - started
        overdue = [r for r in evo.logs() if r.get("event") == "task_overdue"]
        redispatched = evo.metric("ezspark_evolver_tasks_redispatched_total")
        speculative = evo.metric("ezspark_evolver_tasks_speculative_total")
        assert speculative + len(overdue) >= 1, "the slow evaluator was never overtaken"

        def late_answers() -> float:
            return sum(
                evo.metric("ezspark_evolver_results_ignored_total", {"reason": r})
                for r in ("duplicate", "stale")
            )

        # The slow evaluator's last answer may still be on its way: poll, bounded.
        wait_until(
            lambda: slow.metric("ezspark_evaluator_genomes_total") > 0,
            30,
            "the slow evaluator to answer (late)",
        )
        wait_until(
            lambda: slow.metric("ezspark_evaluator_tasks_in_flight") == 0,
            30,
            "the slow evaluator to finish its task in hand",
        )
        ignored = wait_until(late_answers, 30, "a late answer to be ignored")
        slow_genomes = slow.metric("ezspark_evaluator_genomes_total")
        assert alive(slow)
        assert alive(fast)
        for proc in procs:
            assert proc.stop() == 0
    assert_same_run(load_checkpoint(data / tid), embedded(cfg))
    record_figures(
        "slow_evaluator",
        {
            "task_timeout_s": TASK_TIMEOUT_S,
            "slow_task_s_max": 4 * SLOW_RESET_S,
            "fast_task_s_max": 4 * FAST_RESET_S,
            "tasks_overdue": len(overdue),
            "tasks_redispatched": redispatched,
            "tasks_speculative": speculative,
            "late_answers_ignored": ignored,
            "training_seconds": round(seconds, 1),
            "generations": cfg["generations"],
            "slow_genomes_evaluated": slow_genomes,
        },
    )
