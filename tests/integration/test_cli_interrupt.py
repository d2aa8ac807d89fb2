"""Ctrl-C in a real ``ezspark train`` process: a checkpoint, and a resume that reaches the
uninterrupted result."""

from __future__ import annotations

import importlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from ezspark_common.config import TrainingConfig
from ezspark_common.trainer.checkpoints import load_checkpoint
from tests.support.configs import REPO, small_config
from tests.support.runs import fingerprint, train
from tests.support.waiting import wait_until


def _generations_written(out: Path) -> int:
    history = out / "history.jsonl"
    return len(history.read_text().splitlines()) if history.exists() else 0


def _ctrl_c_as_at_a_terminal() -> None:
    # A job started in the background by a non-interactive shell (`cmd &`, as a CI runner
    # may start the suite) inherits SIGINT ignored, and Python then never turns it into
    # KeyboardInterrupt: give the CLI the disposition it has at a terminal.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "ezspark_common", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env={**os.environ, **(env or {})},
        preexec_fn=_ctrl_c_as_at_a_terminal,
    )


def _interrupt_then_resume(
    tmp_path: Path, config: TrainingConfig, env: dict[str, str] | None = None
) -> None:
    """SIGINT after two generations exits 130 with a checkpoint and says how to resume;
    --resume then reaches the uninterrupted run's state and history."""
    cfg_file = tmp_path / "config.json"
    cfg_file.write_text(json.dumps(config.model_dump()))
    # The interrupted run is asked for far more generations, so it cannot finish before
    # the signal lands however slow the machine is; a resume may change the stopping rules.
    long_file = tmp_path / "config-long.json"
    long_file.write_text(json.dumps({**config.model_dump(), "generations": 100_000}))
    straight = train(config, tmp_path / "straight", workers=1)
    out = tmp_path / "interrupted"
    proc = _run_cli("train", str(long_file), "--out", str(out), env=env)
    wait_until(lambda: _generations_written(out) >= 2, 120, "two generations written")
    os.kill(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "--resume" in err
    interrupted_at = load_checkpoint(out).generation
    assert 2 <= interrupted_at < config.generations, "interrupted too late to test the resume"
    resumed = _run_cli("train", str(cfg_file), "--resume", str(out), env=env)
    _, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    assert fingerprint(load_checkpoint(out)) == fingerprint(straight)
    history = (out / "history.jsonl").read_text().splitlines()
    assert [json.loads(h)["generation"] for h in history] == list(range(config.generations))


def test_ctrl_c_writes_checkpoint_and_resume_matches_uninterrupted(tmp_path: Path) -> None:
    """SIGINT mid-run exits 130 with a checkpoint; --resume reaches the uninterrupted result."""
    config = small_config(
        gym_game_name="Acrobot-v1",
        input_size=6,
        output_size=3,
        minimum_reward=-1,
        generations=8,
        initial_population=30,
        max_number_of_steps=200,
        max_number_of_games=2,
        sub_games=2,
    )
    _interrupt_then_resume(tmp_path, config)


FAULT_ENVS = "tests.integration.faults.fault_envs"


def test_ctrl_c_with_games_in_a_worker_process_leaves_a_resumable_run(tmp_path: Path) -> None:
    """A user's environment plays in a worker process even with one worker: SIGINT still
    exits 130 with a checkpoint (the worker ignores it; the trainer stops it), and --resume
    reaches the uninterrupted result."""
    importlib.import_module(FAULT_ENVS)  # the uninterrupted run plays here
    config = small_config(
        gym_game_name="EzFault/Endless-v0",  # games last max_number_of_steps: slow enough
        input_size=2,
        output_size=2,
        generations=6,
        initial_population=20,
        max_number_of_steps=400,
        max_number_of_games=2,
        sub_games=1,
    )
    _interrupt_then_resume(tmp_path, config, {"EZSPARK_ENV_MODULES": FAULT_ENVS})
