"""From network outputs to environment actions.

* ``Discrete(n)``: ``output_size = n``; the action is the argmax of the outputs (lowest index
  on ties), computed by ``BatchNetwork.actions``.
* ``Box(low, high)``: ``output_size`` is the flattened action dimension. Output ``y`` (a
  softsign value in (−1, 1)) becomes ``clip((y + 1) · ((high − low) / 2) + low, low,
  high)`` per dimension, then is cast to the space's dtype and shape. Only IEEE-exact operations,
  so actions are as deterministic as the outputs. A Box with an infinite bound is refused:
  a squashing needs both ends.
* ``MultiDiscrete``, ``MultiBinary`` and anything else are refused with a message saying so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from gymnasium import spaces
from numpy.typing import NDArray


class ActionSpaceError(ValueError):
    """The action space cannot be driven by a network; the message says why."""


@dataclass(frozen=True, eq=False)
class BoxActions:
    """How outputs map onto a bounded Box (see the module docstring)."""

    low: NDArray[np.float64]  # flattened bounds
    high: NDArray[np.float64]
    half_range: NDArray[np.float64]  # (high − low) / 2, formed once
    dtype: np.dtype[Any]
    shape: tuple[int, ...]

    @property
    def size(self) -> int:
        """The flattened action dimension: ``output_size``."""
        return int(self.low.shape[0])

    def squash(self, outputs: NDArray[np.float64]) -> NDArray[np.float64]:
        """Outputs ``(rows, size)`` in (−1, 1) → actions within the bounds, float64."""
        actions = (outputs + 1.0) * self.half_range
        actions += self.low
        return np.clip(actions, self.low, self.high, out=actions)

    def for_env(self, row: NDArray[np.float64]) -> NDArray[Any]:
        """One row of :meth:`squash` as the environment expects it: its dtype and shape."""
        return row.astype(self.dtype).reshape(self.shape)


def box_actions(space: spaces.Space[Any]) -> BoxActions:
    """The mapping for a Box ``space``; ActionSpaceError when a bound is infinite."""
    if not isinstance(space, spaces.Box):
        raise ActionSpaceError(f"has a {type(space).__name__} action space, not a Box")
    low = np.asarray(space.low, dtype=np.float64).ravel()
    high = np.asarray(space.high, dtype=np.float64).ravel()
    if not (np.isfinite(low).all() and np.isfinite(high).all()):
        raise ActionSpaceError(
            "has a Box action space with an infinite bound; EzSpark maps outputs onto "
            "[low, high] and needs both bounds finite (wrap the environment to bound it)"
        )
    return BoxActions(low, high, (high - low) * 0.5, np.dtype(space.dtype), tuple(space.shape))


def action_size(space: spaces.Space[Any]) -> int:
    """``output_size`` for ``space``; ActionSpaceError for a space EzSpark cannot drive."""
    if isinstance(space, spaces.Discrete):
        if int(space.n) < 2:
            raise ActionSpaceError("has a Discrete action space of one action: nothing to learn")
        return int(space.n)
    if isinstance(space, spaces.Box):
        return box_actions(space).size
    if isinstance(space, spaces.MultiDiscrete | spaces.MultiBinary):
        raise ActionSpaceError(
            f"has a {type(space).__name__} action space, which EzSpark does not support; "
            "it needs Discrete or a bounded Box"
        )
    raise ActionSpaceError(
        f"has a {type(space).__name__} action space; EzSpark needs Discrete or a bounded Box"
    )


def box_of(space: spaces.Space[Any]) -> BoxActions | None:
    """The Box mapping, or None for a Discrete space (argmax)."""
    return box_actions(space) if isinstance(space, spaces.Box) else None
