"""Environment resolution: which Gymnasium ids a config may name, and checking its sizes.

A config never makes the process import anything.  Custom environments are registered by
plug-in modules the operator names in ``EZSPARK_ENV_MODULES`` (imported at start-up by
:func:`load_env_modules`); an id of the form ``module:Env-v0`` is accepted only when its
module is one of those.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import warnings
from collections.abc import Iterable
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from ezspark_common.config import ConfigError, TrainingConfig
from ezspark_common.evaluation import masked_envs  # noqa: F401  (registers EzSpark's own ids)
from ezspark_common.evaluation.actions import ActionSpaceError, action_size
from ezspark_common.evaluation.failures import own_frame


class EnvError(ValueError):
    """The config's environment cannot be used; the message says why."""


@dataclass(frozen=True)
class EnvInfo:
    """What the engine needs to know about an environment."""

    env_id: str
    input_size: int
    output_size: int
    max_episode_steps: int | None
    action_space: str = ""
    observation_space: str = ""


class EnvModuleError(RuntimeError):
    """A module named in EZSPARK_ENV_MODULES cannot be imported; the message says which,
    why, and where in that module's own code it failed."""


def load_env_modules(modules: Iterable[str]) -> list[str]:
    """Import the operator's environment plug-in modules (they register their ids)."""
    loaded = []
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception as exc:  # the plug-in's own code: name it and say where it broke
            raise EnvModuleError(
                f"EZSPARK_ENV_MODULES names '{name}', which cannot be imported: "
                f"{type(exc).__name__}: {exc}{_where(exc)}"
            ) from exc
        loaded.append(name)
    return loaded


def _where(exc: BaseException) -> str:
    """`` (at file:line)`` of the plug-in's own frame that raised, by its whole path (on
    this machine, unlike an evaluation's report); none when the module was not found."""
    frame = own_frame(exc)
    return f" (at {frame.filename}:{frame.lineno})" if frame else ""


def check_env_id(env_id: str, allowed_modules: Iterable[str] = ()) -> None:
    """Refuse ids that would import a module not on the allow-list, and unknown ids."""
    allowed = set(allowed_modules)
    if ":" in env_id:
        module = env_id.split(":", 1)[0]
        if module not in allowed:
            raise EnvError(
                f"'{env_id}' names module '{module}', which is not an allowed environment "
                f"module: EZSPARK_ENV_MODULES lists those (on your machine, set "
                f"EZSPARK_ENV_MODULES={module}; on a service, its operator sets it)"
            )
        env_id = env_id.split(":", 1)[1]
    if env_id not in gym.registry:
        close = difflib.get_close_matches(env_id, list(gym.registry), n=5, cutoff=0.5)
        hint = f"; close matches: {', '.join(close)}" if close else ""
        # The usual cause for a user's own id: the package that registers it was not imported.
        hint += "; a package's environments are known once EZSPARK_ENV_MODULES lists it"
        raise EnvError(f"unknown environment '{env_id}'{hint}")


def registered_id(env_id: str) -> str:
    """The registry id, without an allowed ``module:`` prefix (already imported)."""
    return env_id.split(":", 1)[1] if ":" in env_id else env_id


def buildable_elsewhere(env_id: str) -> bool:
    """Whether a fresh process can build ``env_id``: its entry point is a module path, not
    a class object registered in this process (as tests do)."""
    try:
        spec = gym.spec(registered_id(env_id))
    except Exception:  # unknown or unimportable: nothing elsewhere can build it either
        return False
    return isinstance(spec.entry_point, str)


def make_env(env_id: str) -> gym.Env[object, object]:
    """One environment instance, with Gymnasium's standard wrappers."""
    return gym.make(registered_id(env_id), disable_env_checker=True)


def describe(env_id: str) -> EnvInfo:
    """Build one instance to read the observation and action sizes."""
    env = make_env(env_id)
    try:
        try:
            out_size = action_size(env.action_space)
        except ActionSpaceError as exc:
            raise EnvError(f"'{env_id}' {exc}") from None
        obs_size = int(spaces.flatdim(env.observation_space))
        spec = env.spec
        return EnvInfo(
            env_id=env_id,
            input_size=obs_size,
            output_size=out_size,
            max_episode_steps=spec.max_episode_steps if spec else None,
            action_space=repr(env.action_space)[:200],
            observation_space=repr(env.observation_space)[:200],
        )
    finally:
        env.close()


def size_errors(config: TrainingConfig, info: EnvInfo) -> list[tuple[str, str]]:
    """``(key, message)`` for each of ``input_size``/``output_size`` that ``info`` contradicts."""
    errors = []
    if info.input_size != config.input_size:
        errors.append(
            (
                "input_size",
                f"is {config.input_size} but '{info.env_id}' observations "
                f"have {info.input_size} values",
            )
        )
    if info.output_size != config.output_size:
        what = (
            f"a Box action space of {info.output_size} values (output_size is its "
            "flattened dimension)"
            if info.action_space.startswith("Box")
            else f"{info.output_size} discrete actions"
        )
        errors.append(("output_size", f"is {config.output_size} but '{info.env_id}' has {what}"))
    return errors


def catalogue(allowed_modules: Iterable[str] = (), only: Iterable[str] = ()) -> list[EnvInfo]:
    """The environments this process can run: ``only`` if given, else every registered id
    it can build with an action space EzSpark drives (Discrete or a bounded Box).  Ids are
    registry ids (``routing_id``: a plug-in's ``module:`` prefix is dropped; the module must
    be allowed and loaded).

    An id in ``only`` that cannot be built is left out with no error: the announcement
    then simply does not offer it (the log says why, see the evaluator).
    """
    modules = list(allowed_modules)
    wanted = [e.strip() for e in only if e.strip()] or list(gym.registry)
    found = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Gymnasium's deprecation notes, once per old id
        for env_id in dict.fromkeys(wanted):
            try:
                check_env_id(env_id, modules)
                info = describe(env_id)
                found.append(dataclasses.replace(info, env_id=registered_id(env_id)))
            except Exception:  # missing extra (box2d, mujoco), unsupported actions, broken plug-in
                continue
    return found


def resolve(config: TrainingConfig, allowed_modules: Iterable[str] = ()) -> EnvInfo:
    """Check the config's environment exists and matches ``input_size``/``output_size``."""
    try:
        check_env_id(config.gym_game_name, allowed_modules)
        info = describe(config.gym_game_name)
    except EnvError as exc:
        raise ConfigError([("gym_game_name", str(exc))]) from None
    except Exception as exc:  # a broken plug-in must not look like our crash
        raise ConfigError([("gym_game_name", f"environment failed to start: {exc}")]) from None
    errors = size_errors(config, info)
    if errors:
        raise ConfigError(errors)
    return info


def flatten_obs(obs: object) -> np.ndarray:
    """An observation as a flat float64 vector."""
    return np.asarray(obs, dtype=np.float64).ravel()
