"""Small Gymnasium tasks that need hidden nodes: XOR and 3-bit parity as classification.

An episode shows each of the ``2**bits`` input patterns (0/1 values) once, in a fixed order;
the action (argmax of two outputs) is the predicted parity, and a correct one earns 1.  A
network with no hidden node cannot score full marks: parity is not linearly separable.
Importing this module registers ``EzXor-v0`` and ``EzParity3-v0``.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from numpy.typing import NDArray

XOR_ID = "EzXor-v0"
PARITY3_ID = "EzParity3-v0"


class ParityClassify(gym.Env[NDArray[np.float64], np.int64]):
    """Classify every ``bits``-bit pattern by its parity; reward 1 per correct answer."""

    def __init__(self, bits: int = 2) -> None:
        codes = np.arange(2**bits)
        self.patterns = ((codes[:, None] >> np.arange(bits)) & 1).astype(np.float64)
        self.targets = self.patterns.sum(axis=1).astype(np.int64) % 2
        self.observation_space = spaces.Box(0.0, 1.0, (bits,), np.float64)
        self.action_space = spaces.Discrete(2)
        self.index = 0

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[NDArray[np.float64], dict[str, Any]]:
        super().reset(seed=seed)
        self.index = 0
        return self.patterns[0].copy(), {}

    def step(
        self, action: np.int64
    ) -> tuple[NDArray[np.float64], float, bool, bool, dict[str, Any]]:
        reward = float(int(action) == int(self.targets[self.index]))
        self.index += 1
        done = self.index == self.patterns.shape[0]
        obs = self.patterns[self.index % self.patterns.shape[0]].copy()
        return obs, reward, done, False, {}


def _make(**kwargs: Any) -> gym.Env[NDArray[np.float64], np.int64]:
    """Gymnasium's entry point: the class itself does not match its creator protocol."""
    return ParityClassify(**kwargs)


for _id, _bits in ((XOR_ID, 2), (PARITY3_ID, 3)):
    if _id not in gym.registry:
        gym.register(_id, entry_point=_make, kwargs={"bits": _bits})
