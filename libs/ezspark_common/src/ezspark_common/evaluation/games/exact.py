"""Helpers for lockstep games that must equal Gymnasium's bit for bit.

* :func:`square32`: ``u**2`` on a numpy float32 *scalar* is the C library's ``powf``, which
  is not always the correctly rounded square.
* :func:`stands_in` (:func:`may_stand_in`, then :func:`agrees`): the guard every exact set
  passes before it stands in for an environment (the right registered environment, its
  physics not overridden, and a short step-by-step comparison with Gymnasium on this
  machine).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ezspark_common.evaluation.envs import make_env, registered_id
from ezspark_common.evaluation.games.base import Games

# powf's result before its final rounding was measured within 0.0017 ULP of the exact
# square (10⁷ squares); squares nearer than this to a rounding midpoint go to powf itself.
_UNSURE_ULP = 1.0 / 64.0


def square32(u: NDArray[np.float32]) -> NDArray[np.float32]:
    """``u**2`` for every element exactly as numpy float32 scalars compute it."""
    exact = u.astype(np.float64) * u.astype(np.float64)  # 48 bits at most: exact
    out = exact.astype(np.float32)
    ulp = np.spacing(out).astype(np.float64)
    off = np.abs(exact - out.astype(np.float64))  # distance to the rounded value
    # A midpoint is half an ULP away (a quarter just below a power of two).
    unsure = (np.abs(off - 0.5 * ulp) < _UNSURE_ULP * ulp) | (
        np.abs(off - 0.25 * ulp) < _UNSURE_ULP * ulp
    )
    if unsure.any():
        out[unsure] = [np.float32(v) ** 2 for v in u[unsure].tolist()]
    return out


def unchanged(env: Any, cls: type, methods: Sequence[str]) -> bool:
    """``env`` is a ``cls`` whose ``methods`` no subclass has overridden."""
    return isinstance(env, cls) and all(getattr(type(env), n) is getattr(cls, n) for n in methods)


def may_stand_in(env_id: str, ids: Sequence[str], supports: Callable[[Any], bool]) -> bool:
    """Whether ``env_id`` is one of ``ids`` and its unwrapped environment passes ``supports``."""
    if registered_id(env_id) not in ids:
        return False
    env = make_env(env_id)
    try:
        return supports(env.unwrapped)
    finally:
        env.close()


def stands_in(
    env_id: str,
    ids: Sequence[str],
    supports: Callable[[Any], bool],
    build: Callable[[str, int], Games],
    seeds: Sequence[int],
    steps: int,
    action: Callable[[int, int], NDArray[Any]],
) -> bool:
    """Whether the set ``build(env_id, rows)`` may stand in for ``env_id`` here: the right
    environment (:func:`may_stand_in`), then ``seeds`` played both ways (:func:`agrees`)."""
    if not may_stand_in(env_id, ids, supports):
        return False
    return agrees(build(env_id, len(seeds)), env_id, seeds, steps, action)


def agrees(
    games: Games,
    env_id: str,
    seeds: Sequence[int],
    steps: int,
    action: Callable[[int, int], NDArray[Any]],
) -> bool:
    """``games`` (one row per seed) against Gymnasium, step by step; ``action(t, row)`` is
    the row's action at step ``t`` (an index for a Discrete space)."""
    box = games.box
    envs = [make_env(env_id) for _ in seeds]
    try:
        obs, _ = games.reset(seeds)
        ref = [np.asarray(e.reset(seed=s)[0], np.float64) for e, s in zip(envs, seeds, strict=True)]
        live = np.ones(len(seeds), dtype=np.bool_)
        for t in range(steps):
            if not np.array_equal(obs[live], np.array(ref)[live]):
                return False
            acts = np.stack([action(t, r) for r in range(len(seeds))])
            obs, reward, done, _ = games.step(acts, live)
            for r in np.flatnonzero(live).tolist():
                act = int(acts[r]) if box is None else box.for_env(acts[r])
                o, rew, term, trunc, _ = envs[r].step(act)
                ref[r] = np.asarray(o, np.float64)
                if rew != reward[r] or (term or trunc) != done[r]:
                    return False
            live &= ~done
        return bool(np.array_equal(obs[live], np.array(ref)[live]))
    finally:
        for env in envs:
            env.close()
