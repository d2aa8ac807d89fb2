"""Checks shared by the tests of EzSpark's lockstep game sets against Gymnasium."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
from numpy.typing import NDArray

from ezspark_common.evaluation.games import Games

# An action from an observation: an index for a Discrete space, a value or a vector for a Box.
Policy = Callable[[NDArray[np.float64], np.random.Generator], Any]


def play_both(
    games: Games, env_id: str, seeds: list[int], policy: Policy, **make: Any
) -> list[tuple[int, bool]]:
    """Play every seed with ``games`` and with Gymnasium (``gym.make(env_id, **make)``),
    asserting after every step that observations, rewards and done flags are equal, until
    every game ended; each game's (length, terminated)."""
    envs = [gym.make(env_id, disable_env_checker=True, **make) for _ in seeds]
    rngs = [np.random.default_rng(k) for k in range(len(seeds))]
    box = games.box
    obs, errors = games.reset(seeds)
    assert errors is None
    ref = np.array([e.reset(seed=s)[0] for e, s in zip(envs, seeds, strict=True)], np.float64)
    assert np.array_equal(obs, ref)
    live = np.ones(len(seeds), dtype=np.bool_)
    ends: dict[int, tuple[int, bool]] = {}
    t = 0
    while live.any():
        t += 1
        chosen = [policy(obs[r], rngs[r]) for r in range(len(seeds))]
        actions = (
            np.array(chosen, np.int64)
            if box is None
            else np.array(chosen, np.float64).reshape(len(seeds), -1)
        )
        obs, reward, done, errors = games.step(actions, live)
        assert errors is None
        for r in np.flatnonzero(live).tolist():
            act = int(actions[r]) if box is None else box.for_env(actions[r])
            o, rew, term, trunc, _ = envs[r].step(act)
            assert np.array_equal(obs[r], np.asarray(o, np.float64)), (seeds[r], t)
            assert (reward[r], bool(done[r])) == (rew, term or trunc), (seeds[r], t)
            if term or trunc:
                ends[r] = (t, bool(term))
        live &= ~done
    return [ends[r] for r in range(len(seeds))]


def assert_select_keeps_futures(
    build: Callable[[int], Games], seeds: list[int], history: NDArray[Any], cut: int
) -> None:
    """Rows 4, 1 and 5 kept by ``select`` after ``cut`` of the ``history``'s steps (actions
    per step and row) continue exactly like a fresh set of only those games."""
    keep = np.array([4, 1, 5], dtype=np.int64)
    games, fresh = build(len(seeds)), build(len(keep))
    games.reset(seeds)
    fresh.reset([seeds[r] for r in keep.tolist()])
    on = np.ones(len(seeds), dtype=np.bool_)
    for t, actions in enumerate(history):
        if t == cut:
            games.select(keep)
        got = games.step(actions if t < cut else actions[keep], on if t < cut else on[keep])
        want = fresh.step(actions[keep], on[keep])
        rows = keep if t < cut else np.arange(len(keep))
        for a, b in zip(got[:3], want[:3], strict=True):
            assert np.array_equal(a[rows], b)
