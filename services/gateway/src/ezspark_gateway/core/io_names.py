"""Names of the network's inputs and outputs for the environments whose observation and
action meanings Gymnasium documents; ``x0 …`` and ``a0 …`` for any other (or when the
config's sizes do not match the documented ones).

Names are fixed strings from this table, never user text, so they are safe in SVG.
"""

from __future__ import annotations

from dataclasses import dataclass

from ezspark_common.wire.messages import routing_id


@dataclass(frozen=True)
class IoNames:
    """One name per network input and per network output."""

    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    documented: bool  # False: the generic x0…/a0… names


_CARTPOLE_OUT = ("push left", "push right")
_MOUNTAINCAR_IN = ("position", "velocity")
_LUNAR_IN = (
    "x",
    "y",
    "x velocity",
    "y velocity",
    "angle",
    "angular velocity",
    "left leg contact",
    "right leg contact",
)
# Environment name (without "-vN") → (observation names, action names).
_TABLE: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "CartPole": (
        ("cart position", "cart velocity", "pole angle", "pole angular velocity"),
        _CARTPOLE_OUT,
    ),
    "EzCartPoleNoVelocity": (("cart position", "pole angle"), _CARTPOLE_OUT),
    "Acrobot": (
        ("cos θ1", "sin θ1", "cos θ2", "sin θ2", "θ1 velocity", "θ2 velocity"),
        ("torque −1", "torque 0", "torque +1"),
    ),
    "MountainCar": (_MOUNTAINCAR_IN, ("push left", "no push", "push right")),
    "MountainCarContinuous": (_MOUNTAINCAR_IN, ("force",)),
    "Pendulum": (("cos θ", "sin θ", "angular velocity"), ("torque",)),
    "LunarLander": (_LUNAR_IN, ("do nothing", "fire left", "fire main", "fire right")),
    "LunarLanderContinuous": (_LUNAR_IN, ("main engine", "lateral engine")),
}


def generic(n_in: int, n_out: int) -> IoNames:
    """``x0 … x{n_in-1}`` and ``a0 … a{n_out-1}``."""
    return IoNames(tuple(f"x{i}" for i in range(n_in)), tuple(f"a{o}" for o in range(n_out)), False)


def io_names(env_id: str, n_in: int, n_out: int) -> IoNames:
    """The names for ``env_id``'s network of ``n_in`` inputs and ``n_out`` outputs."""
    base = routing_id(env_id).rsplit("-v", 1)[0]
    known = _TABLE.get(base)
    if known is None or (len(known[0]), len(known[1])) != (n_in, n_out):
        return generic(n_in, n_out)
    return IoNames(known[0], known[1], True)
