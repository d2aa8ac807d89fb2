"""Does the same seed give the same game?  A quick probe of an environment, for its owner.

EzSpark replays nothing and trusts nothing it cannot repeat: every game is played from
``reset(seed=…)``, and ``safeness`` compares two evaluators' answers bit for bit.  An
environment that draws from ``random``, the global ``np.random`` or the clock, or that
keeps state from one game to the next, gives different games from the same seed: runs
cannot be repeated, and in a shared training the re-checks disagree and the evaluators
that answered are quarantined.  The probe plays one game three times with the same seed
and the same actions (twice on one instance, once on a fresh one) and says where the
games first differ: at most 200 steps, and as many as fit in about a second for a slow
environment, so it costs at most about three seconds.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from ezspark_common.evaluation import isolation
from ezspark_common.evaluation.envs import (
    buildable_elsewhere,
    flatten_obs,
    load_env_modules,
    make_env,
)
from ezspark_common.evaluation.hangs import EnvHung, interrupt

PROBE_SEED = 20_261_206
PROBE_STEPS = 200
PROBE_BUDGET_S = 1.0  # the first game stops early past this; the others play as many steps

Trace = list[tuple[Any, ...]]


def _game(env: Any, seed: int, steps: int, budget_s: float = float("inf")) -> Trace:
    """One game from ``reset(seed)`` with actions drawn from a space seeded by ``seed``: at
    most ``steps`` steps, and none begun after ``budget_s`` seconds (a slow environment)."""
    deadline = time.monotonic() + budget_s
    obs, _ = env.reset(seed=seed)
    trace: Trace = [("reset", flatten_obs(obs).tolist())]
    env.action_space.seed(seed)
    for _ in range(steps):
        if time.monotonic() > deadline:
            break
        obs, reward, term, trunc, _ = env.step(env.action_space.sample())
        trace.append(("step", flatten_obs(obs).tolist(), float(reward), bool(term), bool(trunc)))
        if term or trunc:
            break
    return trace


def _first_difference(a: Trace, b: Trace) -> str | None:
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if repr(x) == repr(y):  # by repr: a NaN equals itself here, as it should
            continue
        if i == 0:
            return "reset gave different observations"
        what = "observation" if x[1] != y[1] else "reward" if x[2] != y[2] else "end of game"
        detail = f" ({x[2]!r} against {y[2]!r})" if what == "reward" else ""
        return f"step {i} gave a different {what}{detail}"
    if len(a) != len(b):
        return f"the games lasted {len(a) - 1} and {len(b) - 1} steps"
    return None


def nondeterminism(env_id: str, seed: int = PROBE_SEED, steps: int = PROBE_STEPS) -> str | None:
    """Where two games from the same seed and actions first differ; None when they agree
    (or when the environment raises: evaluation reports that on its own)."""
    envs: list[Any] = []
    try:
        envs.extend((make_env(env_id), make_env(env_id)))
        first, second = envs
        games = [_game(first, seed, steps, PROBE_BUDGET_S)]
        played = len(games[0]) - 1  # the others play exactly as many steps, however slow
        games += [_game(first, seed, played), _game(second, seed, played)]
    except Exception:  # the user's environment: a crash is not this probe's finding
        return None
    finally:
        for env in envs:
            with contextlib.suppress(Exception):  # a close that raises changes no finding
                env.close()
    again = _first_difference(games[0], games[1])
    if again is not None:
        return f"on one instance, {again}"
    fresh = _first_difference(games[0], games[2])
    if fresh is not None:
        return f"on a fresh instance against a used one, {fresh}"
    return None


PROBE_WAIT_S = 15.0  # the probe takes about 3 s at most unless a single step hangs


def warning(
    env_id: str, wait_s: float = PROBE_WAIT_S, env_modules: Sequence[str] = ()
) -> str | None:
    """What to tell the owner before a training or an evaluator starts, or None.

    The probe plays in a child process when one can build the environment (its entry
    point is a module path; ``env_modules`` are imported there first): a step that never
    returns or a native crash then ends only the child, and is reported.  An environment
    registered with a class object (a test's) is probed on a daemon thread instead: a hang
    is reported and a Python loop interrupted, a sleep dies with the process."""
    if buildable_elsewhere(env_id):
        return _in_child(env_id, wait_s, env_modules)
    return _on_thread(env_id, wait_s)


def _stuck(env_id: str, wait_s: float) -> str:
    return (
        f"'{env_id}' did not finish a short game within {wait_s:g} s: a step that never "
        "returns fails its game after `ezspark train --hang-limit` (60 s) and its "
        "evaluator task after EZSPARK_TASK_HANG_S, so a training on it is slow"
    )


def _probe_main(conn: Connection, dump: str, env_id: str, env_modules: list[str]) -> None:
    isolation.enter(dump)
    load_env_modules(env_modules)
    conn.send(nondeterminism(env_id))


def _in_child(env_id: str, wait_s: float, env_modules: Sequence[str]) -> str | None:
    args = (env_id, list(env_modules))
    ctx = isolation.context()
    parent, proc, dump = isolation.start(ctx, _probe_main, args, name="determinism-probe")
    try:
        if not parent.poll(wait_s):
            proc.kill()  # a hang, native or not: only the child is stuck
            return _stuck(env_id, wait_s)
        try:
            finding: str | None = parent.recv()
        except EOFError:  # the child died without an answer: a native crash
            proc.join(5)
            how = isolation.how_it_ended(proc.exitcode, dump)
            return (
                f"'{env_id}' {how} while playing a short game. A game that does this "
                "in a training gets the floor fitness and a counted error (games play in "
                "worker processes), but ends the run or evaluator that plays it in its "
                "own process (EZSPARK_ISOLATE_ENVS=false)"
            )
        return advice(env_id, finding) if finding else None
    finally:
        parent.close()
        proc.join(1)
        Path(dump).unlink(missing_ok=True)


def _on_thread(env_id: str, wait_s: float) -> str | None:
    found: list[str | None] = []

    def probe_env() -> None:
        with contextlib.suppress(EnvHung):  # interrupted below: nothing to report
            found.append(nondeterminism(env_id))

    probe = threading.Thread(target=probe_env, name="determinism-probe", daemon=True)
    probe.start()
    probe.join(wait_s)
    if not found:
        interrupt(probe)
        return _stuck(env_id, wait_s)
    return advice(env_id, found[0]) if found[0] else None


def advice(env_id: str, finding: str) -> str:
    """The warning for a user whose environment is not deterministic."""
    return (
        f"'{env_id}' is not deterministic: playing one seed twice with the same actions, "
        f"{finding}. Draw every "
        "random number from self.np_random (seeded by reset(seed=...)), not from random, "
        "np.random or the clock, and start each game afresh in reset. Otherwise runs "
        "cannot be repeated, and in a shared training the safeness re-checks disagree "
        "and the evaluators that answered are quarantined"
    )
