"""Lockstep CartPole against Gymnasium's own environment, game by game and step by step."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import gymnasium as gym
import numpy as np
import pytest

from ezspark_common.evaluation.games import ScalarGames, make_games, vectorised
from ezspark_common.evaluation.games.cartpole import CartPoleGames

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
