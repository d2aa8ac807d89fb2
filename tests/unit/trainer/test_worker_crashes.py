"""A worker process that dies (a native crash in the environment, or a kill) costs the
genomes that crash it their fitness, never the run: ``trainer/workers.py``."""

from __future__ import annotations

import ctypes
import json
import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import gymnasium as gym
import pytest
from click.testing import CliRunner
from gymnasium.envs.classic_control.cartpole import CartPoleEnv

from ezspark_common import rng as rngs
from ezspark_common.cli.app import main
from ezspark_common.config import TrainingConfig
from ezspark_common.evaluation import failures, isolation
from ezspark_common.evaluation.batch import GameSetup, evaluate_batch
from ezspark_common.trainer.evaluators import (
    EmbeddedEvaluator,
    InProcessEvaluator,
    ProcessPoolEvaluator,
    SoloEvaluator,
    plays_user_code,
)
from ezspark_common.trainer.training import start
from ezspark_common.trainer.workers import Batch, JobAbortedError, WorkerPool
from tests.support.configs import small_config

pytestmark = pytest.mark.timeout(120)

FAULT_ENVS = "tests.integration.faults.fault_envs"
ENTRY = "from ezspark_common.cli import main; main()"  # the `ezspark` command
SEGFAULT = "EzFault/SegfaultOnOne-v0"
CRASHED = re.compile(
    r"the environment ended its worker process with SIGSEGV "
    r"\(at faults/fault_envs\.py:\d+ in step\)"
)


def _config(**changes: object) -> TrainingConfig:
    """A small training on the segfaulting environment, one game group per genome."""
    values: dict[str, object] = {
        "gym_game_name": SEGFAULT,
        "input_size": 2,
        "output_size": 2,
        "initial_population": 16,
        "max_population": 16,
        "max_number_of_games": 2,
        "sub_games": 1,
        "safeness": 0.0,
        "seed": 5,
    }
    return small_config(**{**values, **changes})


@pytest.fixture(autouse=True)
def _fault_envs() -> None:
    """Registers the EzFault environments here too (the workers import the module)."""
    __import__(FAULT_ENVS)


def test_a_native_crash_fails_only_the_genomes_that_cause_it() -> None:
    """Genomes whose games segfault get the floor and an error naming the signal and the
    line; every other genome's outcome equals playing it in this process."""
    _only_the_failing_genomes_fail(_config(), CRASHED)


def _only_the_failing_genomes_fail(
    config: TrainingConfig,
    error: re.Pattern[str],
    hang_limit_s: float | None = None,
    workers: int = 2,
) -> None:
    """Over ``workers`` workers (one: ``ezspark train``'s isolated default), some genomes
    (not all) fail with ``error`` at the floor, and every other genome's outcome equals
    playing it in this process."""
    population = start(config).population
    pool = EmbeddedEvaluator(workers, [FAULT_ENVS], hang_limit_s=hang_limit_s, isolate=True)
    try:
        outcomes = pool.evaluate(population, config).outcomes
    finally:
        pool.close()
    failed = {k for k, o in outcomes.items() if o.error is not None}
    assert 0 < len(failed) < len(outcomes)
    for k in failed:
        assert error.fullmatch(str(outcomes[k].error)), outcomes[k].error
        assert outcomes[k].returns == (config.reward_floor,) * config.max_number_of_games
    sound = [population.genomes[k] for k in sorted(outcomes) if k not in failed]
    here = evaluate_batch(sound, GameSetup.of(config), _game_seeds(config))
    assert {o.key: o for o in here} == {k: outcomes[k] for k in outcomes if k not in failed}


def _game_seeds(config: TrainingConfig) -> list[int]:
    """Generation 0's game seeds, as the evaluators draw them."""
    return rngs.game_seeds(config.seed, 0, config.max_number_of_games)


def test_crashes_give_the_same_outcomes_whatever_the_number_of_workers() -> None:
    """Two and three workers cut the generation differently; the outcomes are identical."""
    config = _config()
    population = start(config).population
    results = []
    for workers in (2, 3):
        pool = ProcessPoolEvaluator(workers, [FAULT_ENVS])
        try:
            results.append(pool.evaluate(population, config).outcomes)
        finally:
            pool.close()
    assert results[0] == results[1]


def test_a_killed_worker_is_replaced_and_nothing_is_lost() -> None:
    """A worker killed from outside (an out-of-memory kill) is replaced; its batch is
    played again and every outcome equals playing it in this process."""
    config = small_config()
    population = start(config).population
    setup = GameSetup.of(config)
    seeds = tuple(_game_seeds(config))
    batch = Batch(tuple(population.genomes.values()), setup, seeds)
    pool = WorkerPool(2)
    try:
        os.kill(pool._procs[0].pid, signal.SIGKILL)
        pool._procs[0].join(timeout=10)
        out = pool.run([(0, batch), (1, batch)])
    finally:
        pool.close()
    assert pool.replaced == 1
    reference = InProcessEvaluator().evaluate(population, config).outcomes
    expected = [reference[g.key] for g in batch.genomes]
    assert out == [expected, expected]


@pytest.mark.parametrize(
    ("workers", "alone"), [((), 1), (("--workers", "2"), 0), (("--workers", "2"), 1)]
)
def test_train_finishes_and_reports_where_the_environment_crashed(
    tmp_path: Path, workers: tuple[str, ...], alone: int
) -> None:
    """``ezspark train`` on an environment that segfaults for some genomes, with one worker
    (the default) or two, alone phase or not, finishes every generation and prints the
    crash, with its line, under the generation."""
    cfg = tmp_path / "segv.json"
    config = _config(generations=2, alone_training_iterations=alone)
    cfg.write_text(json.dumps(config.model_dump()))
    result = CliRunner().invoke(
        main,
        ["train", str(cfg), "--out", str(tmp_path / "run"), *workers],
        env={"EZSPARK_ENV_MODULES": FAULT_ENVS},
    )
    assert result.exit_code == 0, result.output
    assert "finished (generations)" in result.output
    history = [
        json.loads(line) for line in (tmp_path / "run" / "history.jsonl").read_text().splitlines()
    ]
    assert len(history) == 2
    assert int(history[0]["errors"]) > 0
    assert CRASHED.fullmatch(str(history[0]["first_error"])), history[0]["first_error"]
    assert "ended its worker process with SIGSEGV" in result.output


def test_one_worker_plays_in_a_worker_process_only_where_a_user_s_step_runs() -> None:
    """A one-worker run isolates an environment whose own step runs and that a worker can
    build; EzSpark's stand-ins (CartPole, LunarLander) and class-registered ones stay here."""
    assert plays_user_code(SEGFAULT)
    assert plays_user_code(f"{FAULT_ENVS}:{SEGFAULT}")
    assert not plays_user_code("CartPole-v1")
    assert not plays_user_code("LunarLander-v3")
    gym.register(id="EzTest/ClassOnly-v0", entry_point=CartPoleEnv)
    try:
        assert not plays_user_code("EzTest/ClassOnly-v0")
    finally:
        del gym.registry["EzTest/ClassOnly-v0"]
    config = _config(alone_training_iterations=1)
    isolated = EmbeddedEvaluator(1, [FAULT_ENVS], isolate=True)
    assert not isolated.in_process
    assert isinstance(isolated.evaluator_for(config, 0), SoloEvaluator)
    assert isolated.evaluator_for(config, 1) is isolated.pool
    here = EmbeddedEvaluator(1, [FAULT_ENVS])
    assert here.in_process
    assert isinstance(here.evaluator_for(config, 1), InProcessEvaluator)


def test_a_crash_in_a_single_process_run_prints_where(tmp_path: Path) -> None:
    """With games in the trainer's own process (``EZSPARK_ISOLATE_ENVS=false``) a segfault
    ends ``ezspark train``, but it prints the Python stack of the crash (faulthandler),
    which names the environment's line."""
    cfg = tmp_path / "segv.json"
    cfg.write_text(json.dumps(_config(generations=1).model_dump()))
    env = {"EZSPARK_ENV_MODULES": FAULT_ENVS, "EZSPARK_ISOLATE_ENVS": "false"}
    run = subprocess.run(
        [sys.executable, "-c", ENTRY, "train", str(cfg), "--out", str(tmp_path)],
        env={**os.environ, **env, "PYTHONFAULTHANDLER": ""},
        capture_output=True,
        text=True,
        timeout=100,
    )
    assert run.returncode == -signal.SIGSEGV, run.stderr[-2000:]
    assert "Fatal Python error: Segmentation fault" in run.stderr
    assert re.search(r'fault_envs\.py", line \d+ in step', run.stderr), run.stderr[-2000:]


def test_crash_site_is_the_innermost_frame_of_the_user_s_code() -> None:
    """Of a faulthandler dump, the first (innermost) frame outside EzSpark, Gymnasium,
    numpy and the standard library is the crash site, by folder, file and line."""
    dump = (
        "Fatal Python error: Segmentation fault\n\n"
        "Current thread 0x00007f (most recent call first):\n"
        f'  File "{ctypes.__file__}", line 519 in string_at\n'
        '  File "/home/me/my_env/env.py", line 40 in step\n'
        '  File "/home/me/my_env/physics.py", line 9 in advance\n'
        f'  File "{failures.__file__}", line 1 in nothing\n'
    )
    assert failures.crash_site(dump) == " (at my_env/env.py:40 in step)"
    assert failures.crash_site(f'  File "{ctypes.__file__}", line 519 in string_at\n') == ""
    assert failures.crash_site("") == ""


def test_the_signal_is_read_from_the_crash_stack_when_the_exit_code_is_lost(
    tmp_path: Path,
) -> None:
    """A forkserver child's exit code can come back as 255 (the server's report lost) or
    not at all in time: the signal named by faulthandler's dump wins, so the message is
    the same either way; with no dump the exit code says it."""
    dump = (
        "Fatal Python error: Segmentation fault\n\n"
        "Current thread 0x00007f (most recent call first):\n"
        '  File "/home/me/my_env/env.py", line 40 in step\n'
    )
    expected = "ended its worker process with SIGSEGV (at my_env/env.py:40 in step)"
    for code in (-signal.SIGSEGV, 255, None):  # None: not reported within the join's wait
        path = tmp_path / f"{code}.stack"
        path.write_text(dump)
        assert isolation.how_it_ended(code, str(path)) == expected
        assert not path.exists()  # read once, then removed
    assert isolation.how_it_ended(-signal.SIGKILL, str(tmp_path / "none")) == (
        "ended its worker process with SIGKILL"
    )
    assert isolation.how_it_ended(255, str(tmp_path / "none")) == (
        "ended its worker process (exit code 255)"
    )


def test_abort_ends_a_stuck_job_without_playing_it_again_and_the_pool_goes_on() -> None:
    """``abort`` kills a worker stuck in a game: the job raises JobAbortedError at once (no
    game of it is played again), an idle pool has nothing to abort, and the next job gets
    a new worker."""
    hang = _config(gym_game_name="EzFault/Hang-v0")
    population = start(hang).population
    stuck = Batch(tuple(population.genomes.values()), GameSetup.of(hang), (1, 2))
    pool = WorkerPool(1, [FAULT_ENVS])
    try:
        assert not pool.abort()  # idle
        timer = threading.Timer(0.5, pool.abort)
        timer.start()
        with pytest.raises(JobAbortedError):
            pool.run([(0, stuck)])
        timer.join()
        assert pool.replaced == 1
        config = small_config()
        fine = start(config).population
        batch = Batch(
            tuple(fine.genomes.values()), GameSetup.of(config), tuple(_game_seeds(config))
        )
        (out,) = pool.run([(0, batch)])
    finally:
        pool.close()
    reference = InProcessEvaluator().evaluate(fine, config).outcomes
    assert out == [reference[g.key] for g in batch.genomes]


@pytest.mark.parametrize("workers", [1, 2])
def test_a_game_stuck_in_native_code_fails_its_genome_and_the_run_goes_on(workers: int) -> None:
    """A step that the hang guard's signal cannot interrupt (native code) ends its worker
    (of one or two) after the limit and a short grace; that genome gets the floor and an
    error saying so and where, every other genome its ordinary outcome."""
    stuck = re.compile(
        r"the environment hung in step past the hang limit \(0\.3 s\) in native code, "
        r"which cannot be interrupted, so its worker process ended "
        r"\(at faults/fault_envs\.py:\d+ in step\)"
    )
    config = _config(gym_game_name="EzFault/NativeHangOnOne-v0", initial_population=6)
    _only_the_failing_genomes_fail(config, stuck, hang_limit_s=0.3, workers=workers)
