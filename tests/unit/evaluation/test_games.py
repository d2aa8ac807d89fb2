"""Lockstep CartPole against Gymnasium's own environment, game by game and step by step."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import SupportsFloat

import gymnasium as gym
import numpy as np
import pytest

from ezspark_common.evaluation.games import ScalarGames, make_games, vectorised
from ezspark_common.evaluation.games.cartpole import CartPoleGames
from tests.support import faulty_envs

Policy = Callable[[np.ndarray, np.random.Generator], int]


def _random(obs: np.ndarray, rng: np.random.Generator) -> int:
    return int(rng.integers(2))


def _balancing(obs: np.ndarray, rng: np.random.Generator) -> int:
    # Pushes toward the pole's fall: keeps it up for the whole 500 steps (truncation).
    return int(obs[2] + 0.5 * obs[3] > 0)


def _play_gymnasium(
    env_id: str, seed: int, policy: Policy, rng: np.random.Generator
) -> tuple[list[np.ndarray], list[float], list[bool], list[int]]:
    env = gym.make(env_id)
    obs, _ = env.reset(seed=seed)
    trace_obs, rewards, dones, actions = [np.asarray(obs, np.float64)], [], [], []
    while True:
        action = policy(trace_obs[-1], rng)
        obs, reward, term, trunc, _ = env.step(action)
        trace_obs.append(np.asarray(obs, np.float64))
        rewards.append(float(reward))
        dones.append(bool(term or trunc))
        actions.append(action)
        if term or trunc:
            return trace_obs, rewards, dones, actions


@pytest.mark.filterwarnings("ignore:.*CartPole-v0 is out of date")
@pytest.mark.parametrize("policy", [_random, _balancing])
@pytest.mark.parametrize("env_id", ["CartPole-v1", "CartPole-v0"])
def test_cartpole_games_equal_gymnasium_step_by_step(env_id: str, policy: Policy) -> None:
    """Every game's observations, rewards and done flags equal gym.make(id) exactly."""
    seeds = list(range(20))
    traces = [_play_gymnasium(env_id, s, policy, np.random.default_rng(s)) for s in seeds]
    games = CartPoleGames(env_id, len(seeds))
    obs, errors = games.reset(seeds)
    assert errors is None
    longest = max(len(t[1]) for t in traces)
    for step in range(longest):
        live = [step < len(t[1]) for t in traces]
        for r, trace in enumerate(traces):
            if live[r]:
                assert obs[r].tobytes() == trace[0][step].tobytes()
        actions = np.array([t[3][step] if live[r] else 0 for r, t in enumerate(traces)])
        obs, reward, done, errors = games.step(actions, np.array(live))
        assert errors is None
        for r, trace in enumerate(traces):
            if live[r]:
                assert reward[r] == trace[1][step]
                assert bool(done[r]) == trace[2][step]
    if policy is _balancing:
        limit = 500 if env_id == "CartPole-v1" else 200
        assert max(len(t[1]) for t in traces) == limit  # truncation was exercised


def test_select_keeps_the_chosen_games_futures() -> None:
    """After select(rows) the kept games play on exactly as they would have."""
    seeds = [3, 4, 5, 6, 7]
    full, cut = CartPoleGames("CartPole-v1", 5), CartPoleGames("CartPole-v1", 5)
    full.reset(seeds)
    cut.reset(seeds)
    ones = np.ones(5, dtype=np.bool_)
    for _ in range(3):
        full.step(np.array([1, 0, 1, 0, 1]), ones)
        cut.step(np.array([1, 0, 1, 0, 1]), ones)
    rows = np.array([4, 1])
    cut.select(rows)
    for _ in range(5):
        a, *_ = full.step(np.array([0, 1, 0, 1, 0]), ones)
        b, *_ = cut.step(np.array([0, 1]), ones[:2])
        assert a[rows].tobytes() == b.tobytes()


def test_sutton_barto_reward_follows_the_registered_kwargs(monkeypatch: pytest.MonkeyPatch) -> None:
    """With sutton_barto_reward the rewards are 0 per step and −1 on the fall, as Gymnasium's."""
    spec = gym.registry["CartPole-v1"]
    monkeypatch.setitem(
        gym.registry, "CartPole-v1", dataclasses.replace(spec, kwargs={"sutton_barto_reward": True})
    )
    _, rewards, _, actions = _play_gymnasium("CartPole-v1", 9, _random, np.random.default_rng(9))
    assert rewards[-1] == -1.0
    games = CartPoleGames("CartPole-v1", 1)
    games.reset([9])
    ours = [float(games.step(np.array([a]), np.ones(1, np.bool_))[1][0]) for a in actions]
    assert ours == rewards


def test_make_games_picks_vectorised_cartpole_and_scalar_otherwise() -> None:
    """CartPole gets the numpy set unless forced off; other ids get ordinary environments."""
    assert vectorised("CartPole-v1")
    assert isinstance(make_games("CartPole-v1", 3, 4), CartPoleGames)
    assert isinstance(make_games("CartPole-v1", 3, 4, vector=False), ScalarGames)
    assert not vectorised("CliffWalking-v1")
    assert isinstance(make_games("CliffWalking-v1", 3, 48), ScalarGames)


def test_wrong_observation_size_names_both_sizes() -> None:
    """An environment whose observations do not match input_size fails that game with a
    message naming both sizes, not numpy's broadcast error."""
    from ezspark_common.evaluation.games.scalar import ScalarGames

    games = ScalarGames("CartPole-v1", 2, 3)  # CartPole observes 4 values
    _, errors = games.reset([1, 2])
    assert errors == ["reset returned an observation of 4 values; the config's input_size is 3"] * 2


def _endless(limit: int | None, **kwargs: object) -> str:
    """EzTest's endless environment under a fresh id with that TimeLimit (None: none)."""
    faulty_envs.register()
    env_id = f"EzTest/EndlessLimit{limit}-{len(gym.registry)}-v0"
    gym.register(env_id, entry_point=faulty_envs.EndlessEnv, max_episode_steps=limit, **kwargs)
    return env_id


def _steps_to_end(games: ScalarGames, rows: int, cap: int = 50) -> list[int]:
    """Steps until each row's game is done (every row active throughout)."""
    ends = [0] * rows
    on = np.ones(rows, dtype=np.bool_)
    for t in range(1, cap + 1):
        _, _, done, errors = games.step(np.zeros(rows, dtype=np.int64), on)
        assert errors is None
        for r in np.flatnonzero(done & (np.array(ends) == 0)).tolist():
            ends[r] = t
    return ends


@pytest.mark.parametrize("limit", [7, None])
def test_scalar_games_end_games_at_the_time_limit_as_gymnasium_does(limit: int | None) -> None:
    """Stepped past Gymnasium's standard wrappers, a game is still truncated at the
    registered max_episode_steps (not at all without one), after a select too."""
    env_id = _endless(limit)
    games = ScalarGames(env_id, 3, 2)
    assert games.limit == limit
    games.reset([1, 2, 3])
    _steps_to_end(games, 3, cap=3)
    games.select(np.array([2, 0], dtype=np.int64))
    ends = _steps_to_end(games, 2, cap=20)
    assert ends == ([4, 4] if limit else [0, 0])  # 3 steps before the select, 4 after
    games.reset([4, 5])
    assert _steps_to_end(games, 2, cap=20) == ([7, 7] if limit else [0, 0])


class _DoubledReward(gym.RewardWrapper[np.ndarray, int]):
    """A wrapper of the user's own, which must not be stepped past."""

    def reward(self, reward: SupportsFloat) -> float:
        return 2 * float(reward)


def test_scalar_games_keep_every_other_wrapper() -> None:
    """An environment with a wrapper beyond Gymnasium's standard two is stepped through
    all its wrappers: the wrapper's rewards, and TimeLimit's own truncation."""
    env_id = _endless(5, additional_wrappers=(_DoubledReward.wrapper_spec(),))
    games = ScalarGames(env_id, 2, 2)
    assert games.limit is None  # not counted here: TimeLimit itself truncates
    games.reset([1, 2])
    _, reward, done, _ = games.step(np.zeros(2, dtype=np.int64), np.ones(2, dtype=np.bool_))
    assert reward.tolist() == [2.0, 2.0]
    assert not done.any()
    assert _steps_to_end(games, 2) == [4, 4]  # the 5th step in all
