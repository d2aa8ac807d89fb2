"""``ezspark evaluator`` probes the user's own environments before serving them: a
non-deterministic one would get this machine quarantined in shared trainings."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path

import gymnasium as gym
import pytest

from ezspark_common.cli import evaluator as cli_evaluator

PLUGIN = """
import random
import gymnasium as gym
import numpy as np

class Coin(gym.Env):
    observation_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float64)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(2), {}

    def step(self, action):
        self.t += 1
        return np.zeros(2), float(random.random()), self.t >= 5, False, {}

if "EzProbe/Coin-v0" not in gym.registry:
    gym.register(id="EzProbe/Coin-v0", entry_point="ezspark_probe_plugin:Coin")
"""


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A user's environment module on the path, imported (its id registered, and
    unregistered afterwards: other tests list the registry)."""
    (tmp_path / "ezspark_probe_plugin.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "ezspark_probe_plugin", raising=False)
    importlib.import_module("ezspark_probe_plugin")
    yield "ezspark_probe_plugin"
    gym.registry.pop("EzProbe/Coin-v0", None)


def test_own_environments_are_those_of_the_listed_modules(plugin: str) -> None:
    """Only ids whose entry point is in a listed module count as the user's own."""
    assert cli_evaluator.own_env_ids([plugin]) == ["EzProbe/Coin-v0"]
    assert "CartPole-v1" in gym.registry
    assert cli_evaluator.own_env_ids([]) == []


def test_starting_an_evaluator_warns_about_a_nondeterministic_own_environment(
    plugin: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The user's own environment is probed (a warning naming it); with --envs only those
    named are, and a deterministic one passes in silence."""
    monkeypatch.setenv("EZSPARK_ENV_MODULES", plugin)
    cli_evaluator._warn_nondeterministic("")
    assert "warning: 'EzProbe/Coin-v0' is not deterministic" in capsys.readouterr().err
    cli_evaluator._warn_nondeterministic("CartPole-v1")
    assert capsys.readouterr().err == ""
