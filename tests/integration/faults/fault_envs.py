"""Environment plug-in for the fault tests (load it with ``EZSPARK_ENV_MODULES``).

Importing this module registers deliberately broken environments under ``EzFault/…`` ids:

* ``EzFault/Raise-v0``: ``step`` raises at the 3rd step;
* ``EzFault/NaN-v0``: the 3rd step's reward is NaN;
* ``EzFault/Endless-v0``: never terminates nor truncates (only ``max_steps`` ends a game);
* ``EzFault/RaiseOnOne-v0``: ``step`` raises when the agent picks action 1, so whether a
  genome fails depends on the genome (a training on it still evolves);
* ``EzFault/BrokenCtor-v0``: the constructor always raises, so an evaluator cannot even
  describe it at start-up and never offers it;
* ``EzFault/BrokenLater-v0``: the constructor works once per process (the evaluator's
  start-up probe, which reads the spaces) and raises ever after, so ``evaluate_batch``
  itself raises (a broken plug-in, not a bad game): the evaluator's retry path;
* ``EzFault/Crash-v0``: ``reset`` ends the process at once (``os._exit``), as a segfault in
  a native environment would: nothing can be settled or logged;
* ``EzFault/Hang-v0``: the 3rd ``step`` never returns (a deadlocked native environment);
* ``EzFault/SegfaultOnOne-v0``: the 3rd ``step`` reads address 0 (SIGSEGV, a real native
  crash) when the agent picks action 1 there, so whether a genome crashes its process
  depends on the genome; other steps reward the action, as ``EzTest/Echo-v0``;
* ``EzFault/Segfault-v0``: the same on every action (every game crashes its process);
* ``EzFault/NativeHangOnOne-v0``: the 3rd ``step`` never returns on action 1, and no
  signal handler can run in it (the hang guard's signal is blocked, as in native code).

The first four reuse the unit tests' ``tests.support.faulty_envs`` classes.
"""

from __future__ import annotations

import ctypes
import os
import signal
import time
from typing import Any

import gymnasium as gym
import numpy as np

from tests.support.faulty_envs import (
    ActionEchoEnv,
    EndlessEnv,
    NaNRewardEnv,
    RaiseOnActionOneEnv,
    RaisingEnv,
)

CRASH_EXIT_CODE = 70


class BrokenConstructorEnv(RaisingEnv):
    """Cannot even be built: ``gym.make`` raises."""

    def __init__(self) -> None:
        raise RuntimeError("broken plug-in: constructor failed")


class BrokenLaterEnv(RaisingEnv):
    """Builds once per process, then ``gym.make`` raises every time."""

    built = 0

    def __init__(self) -> None:
        BrokenLaterEnv.built += 1
        if BrokenLaterEnv.built > 1:
            raise RuntimeError("broken plug-in: constructor failed")
        super().__init__()


class CrashingEnv(RaisingEnv):
    """Kills its process on ``reset`` (a native crash: no exception, no clean-up)."""

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        os._exit(CRASH_EXIT_CODE)


class HangingEnv(EndlessEnv):
    """Blocks for ever in its 3rd ``step``: only the process's end releases the thread."""

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        while self.t + 1 >= self.fail_at:
            time.sleep(3600)
        return super().step(action)


class SegfaultOnOneEnv(ActionEchoEnv):
    """Segfaults in its 3rd ``step`` on action 1: no exception, no clean-up, a signal."""

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if action == 1 and self.t + 1 == self.fail_at:
            ctypes.string_at(0)  # reads address 0, as a bug in a C extension would
        return super().step(action)


class SegfaultEnv(ActionEchoEnv):
    """Segfaults in its 3rd ``step`` whatever the action."""

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if self.t + 1 == self.fail_at:
            ctypes.string_at(0)
        return super().step(action)


class NativeHangOnOneEnv(ActionEchoEnv):
    """Blocks for ever in its 3rd ``step`` on action 1, deaf to the hang guard's signal."""

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if action == 1 and self.t + 1 == self.fail_at:
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR2})
            while True:
                time.sleep(3600)
        return super().step(action)


ENVS: dict[str, type[Any]] = {
    "EzFault/Raise-v0": RaisingEnv,
    "EzFault/NaN-v0": NaNRewardEnv,
    "EzFault/Endless-v0": EndlessEnv,
    "EzFault/RaiseOnOne-v0": RaiseOnActionOneEnv,
    "EzFault/BrokenCtor-v0": BrokenConstructorEnv,
    "EzFault/BrokenLater-v0": BrokenLaterEnv,
    "EzFault/Crash-v0": CrashingEnv,
    "EzFault/Hang-v0": HangingEnv,
    "EzFault/SegfaultOnOne-v0": SegfaultOnOneEnv,
    "EzFault/Segfault-v0": SegfaultEnv,
    "EzFault/NativeHangOnOne-v0": NativeHangOnOneEnv,
}

for _env_id, _cls in ENVS.items():
    if _env_id not in gym.registry:
        gym.register(id=_env_id, entry_point=f"{_cls.__module__}:{_cls.__name__}")
