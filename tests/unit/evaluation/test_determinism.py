"""The determinism probe: the same seed and actions must give the same game, on one
instance and on a fresh one; ``ezspark validate`` warns the owner when they do not."""

from __future__ import annotations

import importlib
import json
import multiprocessing
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import pytest
from click.testing import CliRunner

from ezspark_common.cli.app import main
from ezspark_common.evaluation import determinism
from ezspark_common.evaluation.determinism import nondeterminism
from tests.support import faulty_envs
from tests.support.configs import small_config


@pytest.fixture(autouse=True)
def _envs() -> None:
    faulty_envs.register()


@pytest.mark.parametrize(
    "env_id", ["CartPole-v1", "Acrobot-v1", "LunarLander-v3", "Pendulum-v1", "EzTest/Echo-v0"]
)
def test_seeded_environments_pass(env_id: str) -> None:
    """Environments that draw only from reset's seed are found deterministic."""
    assert nondeterminism(env_id) is None


def test_global_random_numbers_are_found_at_their_step() -> None:
    """A reward from the global numpy generator differs at step 1, on one instance."""
    finding = nondeterminism("EzTest/GlobalRandom-v0")
    assert finding is not None
    assert finding.startswith("on one instance, step 1 gave a different reward (")


def test_state_carried_from_game_to_game_is_found_at_reset() -> None:
    """An instance whose second game starts elsewhere than its first is caught at reset."""
    assert nondeterminism("EzTest/CarryOver-v0") == (
        "on one instance, reset gave different observations"
    )


def test_an_instance_unlike_a_fresh_one_is_found() -> None:
    """Games that repeat on one instance but not on another are caught by the fresh one."""
    finding = nondeterminism("EzTest/FirstInstance-v0")
    assert finding == "on a fresh instance against a used one, reset gave different observations"


@pytest.mark.parametrize("env_id", ["EzTest/Raise-v0", "EzTest/NaN-v0"])
def test_a_raising_or_nan_environment_is_not_called_nondeterministic(env_id: str) -> None:
    """A crash or a NaN is evaluation's finding (a floor and an error), not the probe's:
    the same NaN on every game is the same game."""
    assert nondeterminism(env_id) is None


def test_validate_warns_and_still_accepts_the_config(tmp_path: Path) -> None:
    """`ezspark validate` prints the finding and the advice on stderr, and exits 0."""
    config = small_config(gym_game_name="EzTest/GlobalRandom-v0", input_size=2, output_size=2)
    cfg = tmp_path / "random.json"
    cfg.write_text(json.dumps(config.model_dump()))
    result = CliRunner().invoke(main, ["validate", str(cfg)])
    assert result.exit_code == 0, result.output
    assert "warning: 'EzTest/GlobalRandom-v0' is not deterministic" in result.stderr
    assert "self.np_random" in result.stderr
    plain = small_config(gym_game_name="EzTest/Echo-v0", input_size=2, output_size=2)
    cfg.write_text(json.dumps(plain.model_dump()))
    assert "not deterministic" not in CliRunner().invoke(main, ["validate", str(cfg)]).stderr


class _SlowEnv(faulty_envs.ActionEchoEnv):
    """Deterministic, but each step takes 20 ms (a game of 10 steps here: made endless)."""

    def step(self, action: int) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        time.sleep(0.02)
        obs, reward, _, trunc, info = super().step(action)
        return obs, reward, False, trunc, info


def test_a_slow_environment_is_probed_within_a_few_seconds() -> None:
    """The first game stops after about a second, the others play as many steps: a slow
    environment costs seconds, not 600 steps' worth, and is still found deterministic."""
    if "EzTest/Slow-v0" not in gym.registry:
        gym.register(id="EzTest/Slow-v0", entry_point=_SlowEnv)
    started = time.monotonic()
    assert nondeterminism("EzTest/Slow-v0") is None
    assert time.monotonic() - started < 6.0  # 200 steps x 3 games would take 12 s


_RELEASE = threading.Event()


class _BlockingEnv(faulty_envs.ActionEchoEnv):
    """Its third step waits until the test releases it (a step that never returns)."""

    def step(self, action: int) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        if self.t == 2:
            _RELEASE.wait(30)
        return super().step(action)


def test_a_hanging_step_is_reported_instead_of_hanging_validate(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """validate/train wait a bounded time for the probe and say that a step hung."""
    from ezspark_common.cli.app import _warn_if_nondeterministic

    if "EzTest/Block-v0" not in gym.registry:
        gym.register(id="EzTest/Block-v0", entry_point=_BlockingEnv)
    started = time.monotonic()
    try:
        _warn_if_nondeterministic("EzTest/Block-v0", wait_s=0.5)
    finally:
        _RELEASE.set()  # let the probe's thread finish
    assert time.monotonic() - started < 5.0
    err = capsys.readouterr().err
    assert "did not finish a short game within" in err
    assert "never returns" in err


def test_a_probe_stuck_in_a_python_loop_is_stopped_once_given_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A spinning step would take a share of the interpreter for the whole run: it is ended."""
    faulty_envs.register()
    started: list[threading.Thread] = []

    class Recorded(threading.Thread):
        def start(self) -> None:
            started.append(self)
            super().start()

    monkeypatch.setattr(determinism.threading, "Thread", Recorded)
    text = determinism.warning("EzTest/Spin-v0", wait_s=0.3)  # spins on action 1
    assert text is not None
    assert "did not finish a short game within 0.3 s" in text
    assert len(started) == 1
    started[0].join(10)
    assert not started[0].is_alive()


FAULT_ENVS = "tests.integration.faults.fault_envs"


def test_a_native_crash_in_the_probe_is_reported_and_the_command_lives_on() -> None:
    """An environment registered by module path is probed in a child process: a segfault
    there ends the child only, and the warning names the signal and the line."""
    importlib.import_module(FAULT_ENVS)
    text = determinism.warning("EzFault/Segfault-v0", env_modules=[FAULT_ENVS])
    assert text is not None
    assert re.match(
        r"'EzFault/Segfault-v0' ended its worker process with SIGSEGV "
        r"\(at faults/fault_envs\.py:\d+ in step\) while playing a short game\.",
        text,
    ), text
    assert "floor fitness and a counted error" in text
    assert "ISOLATE_ENVS=false" in text


def test_a_step_that_never_returns_in_the_child_probe_is_killed_after_the_wait() -> None:
    """A step blocked for ever (as a native deadlock would be) costs the wait, then the
    child is killed: nothing keeps running."""
    importlib.import_module(FAULT_ENVS)
    started = time.monotonic()
    text = determinism.warning("EzFault/Hang-v0", wait_s=0.5, env_modules=[FAULT_ENVS])
    assert time.monotonic() - started < 5.0
    assert text is not None
    assert "did not finish a short game within 0.5 s" in text
    assert not [p for p in multiprocessing.active_children() if p.name == "determinism-probe"]


def test_validate_survives_an_environment_that_crashes_natively(tmp_path: Path) -> None:
    """`ezspark validate` on a segfaulting environment accepts the config and warns."""
    config = small_config(gym_game_name="EzFault/Segfault-v0", input_size=2, output_size=2)
    path = tmp_path / "segv.json"
    path.write_text(json.dumps(config.model_dump()))
    run = subprocess.run(
        [
            sys.executable,
            "-c",
            "from ezspark_common.cli import main; main()",
            "validate",
            str(path),
        ],
        env={**os.environ, "EZSPARK_ENV_MODULES": FAULT_ENVS},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    assert "ok: EzFault/Segfault-v0" in run.stdout
    assert "ended its worker process with SIGSEGV" in run.stderr
