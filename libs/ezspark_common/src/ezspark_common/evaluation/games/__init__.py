"""Lockstep game sets: many games of one environment stepped together.

:func:`make_games` picks the fastest implementation for an id: numpy-vectorised physics
where EzSpark has them, a leaner step around Gymnasium's own Box2D world for LunarLander
(each proven bit-identical to Gymnasium's environment), otherwise a set of ordinary
Gymnasium environments stepped in a loop.
"""

from __future__ import annotations

from ezspark_common.evaluation.envs import registered_id
from ezspark_common.evaluation.games import acrobot, cartpole, lunarlander, mountaincar, pendulum
from ezspark_common.evaluation.games.base import Games, StepResult
from ezspark_common.evaluation.games.scalar import EnvPool, ScalarGames

__all__ = [
    "EnvPool",
    "Games",
    "ScalarGames",
    "StepResult",
    "make_games",
    "stood_in",
    "vectorised",
]


def vectorised(env_id: str) -> bool:
    """True where a numpy-vectorised implementation is used for ``env_id``."""
    return (
        registered_id(env_id) in cartpole.IDS
        or acrobot.available(env_id)
        or pendulum.available(env_id)
        or mountaincar.available(env_id)
        or mountaincar.discrete_available(env_id)
    )


def stood_in(env_id: str) -> bool:
    """True where EzSpark's own code plays ``env_id`` (vectorised, or LunarLander's lean
    step around Gymnasium's world), so no step of a user's environment runs."""
    return lunarlander.available(env_id) or vectorised(env_id)


def make_games(
    env_id: str,
    rows: int,
    n_inputs: int,
    *,
    vector: bool | None = None,
    envs: EnvPool | None = None,
) -> Games:
    """The fastest lockstep implementation available for ``env_id``.

    ``vector=False`` forces ordinary environments (the reference the tests compare with);
    those come from ``envs`` (the caller's pool) when given.
    """
    if vector is not False and lunarlander.available(env_id):
        return lunarlander.LunarLanderGames(env_id, rows, envs)
    use_vector = vectorised(env_id) if vector is None else vector and vectorised(env_id)
    if use_vector:
        rid = registered_id(env_id)
        if rid in acrobot.IDS:
            return acrobot.AcrobotGames(env_id, rows)
        if rid in pendulum.IDS:
            return pendulum.PendulumGames(env_id, rows)
        if rid in mountaincar.IDS:
            return mountaincar.MountainCarGames(env_id, rows)
        if rid in mountaincar.DISCRETE_IDS:
            return mountaincar.DiscreteMountainCarGames(env_id, rows)
        return cartpole.CartPoleGames(env_id, rows)
    return ScalarGames(env_id, rows, n_inputs, envs)
