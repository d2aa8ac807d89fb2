"""The example of a user's own environment (``examples/my_env``, ``examples/catch.json``)
works as docs/byo-environment.md says: a proper Gymnasium environment, the same game for
the same seed, and ``ezspark train`` on it from a fresh process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from tests.support.configs import REPO

PACKAGE = REPO / "examples" / "my_env"
CONFIG = REPO / "examples" / "catch.json"


@pytest.fixture
def catch(monkeypatch: pytest.MonkeyPatch) -> None:
    """The example package importable and imported, as ``pip install -e`` would make it."""
    monkeypatch.syspath_prepend(str(PACKAGE))
    __import__("my_env")


def _rollout(seed: int, actions: list[int]) -> list[tuple[object, ...]]:
    env = gym.make("Catch-v0")
    obs, _ = env.reset(seed=seed)
    trace: list[tuple[object, ...]] = [tuple(obs.tolist())]
    for action in actions:
        obs, reward, terminated, truncated, _ = env.step(action)
        trace.append((*obs.tolist(), reward, terminated, truncated))
    return trace


@pytest.mark.usefixtures("catch")
def test_catch_passes_gymnasiums_environment_checker() -> None:
    """Spaces, reset and step signatures, dtypes and seeding as Gymnasium requires."""
    check_env(gym.make("Catch-v0").unwrapped, skip_render_check=True)


@pytest.mark.usefixtures("catch")
def test_catch_gives_the_same_game_for_the_same_seed() -> None:
    """Same seed and actions, same rollout (observations, rewards, ends); another seed, another."""
    actions = np.random.default_rng(3).integers(3, size=200).tolist()  # 10 balls, 20 steps each
    first = _rollout(11, actions)
    assert first == _rollout(11, actions)
    assert first != _rollout(12, actions)
    assert [step[-2] for step in first[1:]] == [False] * 199 + [True]  # ends after the 10th


def test_ezspark_trains_on_the_example_package_in_a_fresh_process(tmp_path: Path) -> None:
    """``ezspark validate`` and ``ezspark train`` with EZSPARK_ENV_MODULES=my_env, as the
    docs tell a user: no warning, and every generation played without an error."""
    config = {**json.loads(CONFIG.read_text()), "generations": 3}
    cfg = tmp_path / "catch.json"
    cfg.write_text(json.dumps(config))
    env = {**os.environ, "PYTHONPATH": str(PACKAGE), "EZSPARK_ENV_MODULES": "my_env"}
    cli = [sys.executable, "-m", "ezspark_common"]
    checked = subprocess.run(
        [*cli, "validate", str(cfg)], env=env, capture_output=True, text=True, timeout=120
    )
    assert checked.returncode == 0, checked.stderr
    assert "warning" not in checked.stderr
    out = tmp_path / "run"
    run = subprocess.run(
        [*cli, "train", str(cfg), "--out", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert "finished (generations) after generation 2" in run.stdout
    history = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    assert [h["generation"] for h in history] == [0, 1, 2]
    assert all(h["errors"] == 0 and h["safeness_mismatches"] == 0 for h in history)
    assert history[-1]["best_fitness"] > history[0]["mean_fitness"]
