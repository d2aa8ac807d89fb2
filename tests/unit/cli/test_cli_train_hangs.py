"""``ezspark train`` on an environment whose step never returns: the stuck games fail with
the floor and a counted error naming the line, and the run finishes instead of hanging."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import gymnasium as gym
import pytest
from click.testing import CliRunner, Result

from ezspark_common.cli import app
from ezspark_common.cli.app import main
from tests.support import faulty_envs
from tests.support.configs import small_config

pytestmark = pytest.mark.timeout(120)  # a hang here must fail the test, not stall the suite


@pytest.fixture(autouse=True)
def _short_probe(monkeypatch: pytest.MonkeyPatch) -> None:
    """The determinism probe gives up on these environments after 0.3 s, not 15."""
    quick = partial(app._warn_if_nondeterministic, wait_s=0.3)
    monkeypatch.setattr(app, "_warn_if_nondeterministic", quick)


def _train(tmp_path: Path, env_id: str, *args: str, env: dict[str, str] | None = None) -> Result:
    config = small_config(
        gym_game_name=env_id,
        input_size=2,
        output_size=2,
        generations=2,
        initial_population=6,
        max_population=6,
        max_number_of_games=1,
        sub_games=1,
    )
    cfg = tmp_path / "stuck.json"
    cfg.write_text(json.dumps(config.model_dump()))
    out = tmp_path / "run"
    return CliRunner().invoke(
        main, ["train", str(cfg), "--out", str(out), "--hang-limit", "0.1", *args], env=env
    )


def _history(tmp_path: Path) -> list[dict[str, object]]:
    lines = (tmp_path / "run" / "history.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def test_train_in_process_fails_the_stuck_games_and_finishes(tmp_path: Path) -> None:
    """A step looping for ever in Python (on action 1) fails its game, named by its line."""
    faulty_envs.register()
    result = _train(tmp_path, "EzTest/Spin-v0", "--workers", "1")
    assert result.exit_code == 0, result.output
    assert "finished (generations)" in result.output
    history = _history(tmp_path)
    assert len(history) == 2
    assert all(int(str(r["errors"])) > 0 for r in history)
    first = str(history[0]["first_error"])
    assert re.fullmatch(
        r"step did not return within 0\.1 s \(the hang limit\) "
        r"\(at support/faulty_envs\.py:\d+ in step\)",
        first,
    ), first
    assert "did not return within 0.1 s" in result.output  # printed under the generation


def test_train_over_worker_processes_fails_the_stuck_games_and_finishes(tmp_path: Path) -> None:
    """The same bound holds in ``--workers`` processes (each guards its own main thread)."""
    modules = {"EZSPARK_ENV_MODULES": "tests.integration.faults.fault_envs"}
    result = _train(tmp_path, "EzFault/Hang-v0", "--workers", "2", env=modules)
    assert result.exit_code == 0, result.output
    history = _history(tmp_path)
    assert len(history) == 2
    population = int(str(history[0]["population"]))
    assert int(str(history[0]["errors"])) == population  # every game sleeps in its 3rd step
    assert "step did not return within 0.1 s" in str(history[0]["first_error"])


class _StuckBuildingEnv(faulty_envs.SleepingEnv):
    """Its constructor never returns (a plug-in waiting on a resource that never comes)."""

    def __init__(self) -> None:
        while True:
            time.sleep(3600)


@pytest.fixture
def stuck_building() -> Iterator[str]:
    """Registered for one test only: catalogues of every registered id would hang on it."""
    env_id = "EzTest/StuckBuilding-v0"
    gym.register(id=env_id, entry_point=_StuckBuildingEnv)
    try:
        yield env_id
    finally:
        del gym.registry[env_id]


def test_validate_names_a_constructor_that_never_returns(
    tmp_path: Path, stuck_building: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Checking the config builds the environment: a stuck build is a config error, not a hang."""
    monkeypatch.setattr(app, "DEFAULT_HANG_LIMIT_S", 0.2)
    config: dict[str, Any] = small_config(input_size=2, output_size=2).model_dump()
    cfg = tmp_path / "stuck.json"
    cfg.write_text(json.dumps({**config, "gym_game_name": stuck_building}))
    result = CliRunner().invoke(main, ["validate", str(cfg)])
    assert result.exit_code == 2, result.output
    assert re.search(
        r"gym_game_name: building the environment did not return within 0\.2 s "
        r"\(the hang limit\) \(at cli/test_cli_train_hangs\.py:\d+ in __init__\)",
        result.output,
    ), result.output
