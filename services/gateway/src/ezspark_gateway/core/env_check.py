"""Check a config's environment the way ``ezspark validate`` does, without running it here.

The sizes a config must match come, in this order, from:

1. the evaluators' announcements (``EnvironmentRegistry``): an environment announced since
   start-up is accepted when ``input_size``/``output_size`` match, even if no evaluator
   serves it right now (the training then waits for one);
2. the gateway's own Gymnasium registry, for a plain id (never ``module:Id``: the gateway
   imports no plug-in module) that it can build; the result is cached per id;
3. otherwise the config is refused on ``gym_game_name``, naming what is served now.
"""

from __future__ import annotations

import difflib
import threading
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import gymnasium as gym

from ezspark_common.config import TrainingConfig
from ezspark_common.evaluation.envs import EnvError, EnvInfo, describe, size_errors
from ezspark_gateway.core.environments import EnvironmentRegistry

# How many served environments an error message lists before pointing at the endpoint.
MAX_LISTED = 15
Describe = Callable[[str], EnvInfo]


@dataclass(frozen=True)
class EnvChoice:
    """An environment the form offers, with the sizes a config for it must have.
    ``evaluators`` is None for one no evaluator announced (the gateway described it)."""

    env_id: str
    input_size: int
    output_size: int
    evaluators: int | None


class EnvironmentCheck:
    """``errors(config)``: the ``(field, message)`` pairs of an environment it cannot run."""

    def __init__(self, registry: EnvironmentRegistry, describe_env: Describe = describe) -> None:
        self._registry = registry
        self._describe = describe_env
        self._lock = threading.Lock()
        # Keyed by registered Gymnasium ids only, so its size is bounded by the registry.
        self._local: dict[str, EnvInfo | str] = {}

    def errors(self, config: TrainingConfig, *, detailed: bool = True) -> list[tuple[str, str]]:
        """Size mismatches against the best-known space, or why the environment is unknown
        (naming close matches and the served environments only when ``detailed``: those
        are for authenticated callers, like ``GET /api/environments``)."""
        env_id = config.gym_game_name
        space = self._registry.space(env_id)
        if space is not None:
            return size_errors(config, space.info())
        local = self.local_info(env_id)
        if isinstance(local, EnvInfo):
            return size_errors(config, local)
        return [("gym_game_name", self._unknown(env_id, local, detailed))]

    def sizes(self, env_id: str) -> tuple[int, int] | None:
        """``(input_size, output_size)`` of ``env_id`` from the same sources as ``errors``."""
        space = self._registry.space(env_id)
        if space is not None:
            return space.input_size, space.output_size
        local = self.local_info(env_id)
        return (local.input_size, local.output_size) if isinstance(local, EnvInfo) else None

    def choices(self, also: Iterable[str] = ()) -> list[EnvChoice]:
        """Every announced environment, then those of ``also`` (e.g. the presets' ids)
        that nobody announced but this gateway can describe: all a config may name."""
        found = [
            EnvChoice(k.space.env_id, k.space.input_size, k.space.output_size, k.evaluators)
            for k in self._registry.known()
        ]
        seen = {c.env_id for c in found}
        for env_id in dict.fromkeys(also):
            local = None if env_id in seen else self.local_info(env_id)
            if isinstance(local, EnvInfo):
                found.append(EnvChoice(env_id, local.input_size, local.output_size, None))
        return found

    def local_info(self, env_id: str) -> EnvInfo | str | None:
        """What this process can tell about ``env_id``: its sizes, why it cannot build it
        (a registered id that fails), or None when it is not a plain registered id."""
        if ":" in env_id or env_id not in gym.registry:
            return None  # never import a module named by a user
        with self._lock:
            cached = self._local.get(env_id)
        if cached is None:
            cached = self._build(env_id)
            with self._lock:
                self._local[env_id] = cached
        return cached

    def _build(self, env_id: str) -> EnvInfo | str:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)  # "CartPole-v0 is old"
                return self._describe(env_id)
        except EnvError as exc:
            return str(exc)
        except Exception as exc:  # a missing extra (box2d, mujoco) or a broken constructor
            return f"it failed to start here: {type(exc).__name__}: {str(exc)[:200]}"

    def _unknown(self, env_id: str, local: str | None, detailed: bool) -> str:
        """The message for an environment nobody announced and this process cannot build."""
        parts = [f"no evaluator has announced '{env_id}'"]
        if local is not None:
            parts[0] += f" and the gateway cannot describe it ({local})"
        if not detailed:
            return parts[0] + "; log in to see the environments served"
        announced = [k.space.env_id for k in self._registry.known()]
        pool = list(dict.fromkeys([*announced, *gym.registry]))
        close = difflib.get_close_matches(env_id, pool, n=5, cutoff=0.6)
        if close:
            parts.append("close matches: " + ", ".join(close))
        parts.append(served_now(self._registry.live()))
        return "; ".join(parts)


def served_now(live: list[str]) -> str:
    """``served now: A, B`` (shortened past ``MAX_LISTED``), or that nothing is served."""
    if not live:
        return "no evaluator serves any environment right now"
    shown = ", ".join(live[:MAX_LISTED])
    more = len(live) - MAX_LISTED
    tail = f" and {more} more (GET /api/environments)" if more > 0 else ""
    return f"served now: {shown}{tail}"
