"""The interface every lockstep game set implements."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ezspark_common.evaluation.actions import BoxActions

StepResult = tuple[
    NDArray[np.float64], NDArray[np.float64], NDArray[np.bool_], list[str | None] | None
]


class Games:
    """``rows`` games of one environment, stepped together.

    Errors come back as a per-row list of messages, or ``None`` when no row failed (the
    common case stays free of per-row Python work).  ``box`` is None for a Discrete action
    space (actions are argmax indices, shape ``(rows,)``); for a Box it maps outputs onto
    the bounds and actions are float64 rows ``(rows, output_size)``.
    """

    box: BoxActions | None = None

    def reset(self, seeds: Sequence[int]) -> tuple[NDArray[np.float64], list[str | None] | None]:
        """Start every game with its seed; returns observations and per-row errors."""
        raise NotImplementedError

    def step(self, actions: NDArray[Any], active: NDArray[np.bool_]) -> StepResult:
        """Step active rows; returns observations, rewards, done flags and per-row errors.

        Rows that are not active may be stepped too (vectorised sets step everything);
        their results are ignored.
        """
        raise NotImplementedError

    def select(self, rows: NDArray[np.int64]) -> None:
        """Keep only ``rows``, in that order (games that still matter)."""
        raise NotImplementedError
