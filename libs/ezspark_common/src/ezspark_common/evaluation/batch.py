"""Batched evaluation: many genomes × many games, all stepped in lockstep.

Pure compute shared by the embedded trainer and the evaluator service.  A genome's returns
depend only on its genes and the game seeds, never on which other genomes share its batch:
networks are evaluated with batch-independent operation order (see ``neat.network``) and
each game is seeded on its own.  Actions are argmax indices for a Discrete space and the
squashed outputs for a Box (``evaluation.actions``); with ``recurrent`` the value array is
the networks' memory, zero at the start of every game (``neat.recurrent``).

A game ends when the environment terminates or truncates it, or after ``max_steps`` steps.
An environment that raises, or yields a NaN/inf observation or reward, ends all of that
genome's games: it gets ``reward_floor`` for every game and an error message; the rest of
the batch goes on.

On request (``GameSetup.behaviour``, for ``novelty_weight``) a game also yields its
*behaviour*: for each observation value, the lowest and the highest it took in that game
(reset and terminal observations included), ``2 · n_inputs`` numbers.  A failed genome's
behaviour is zeros.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ezspark_common.config import TrainingConfig
from ezspark_common.evaluation.games import EnvPool, Games, make_games
from ezspark_common.evaluation.scaling import InputScaling, for_games
from ezspark_common.neat.genome import Genome
from ezspark_common.neat.network import BatchPlan
from ezspark_common.neat.packed import PackedGenomes
from ezspark_common.neat.recurrent import carry


@dataclass(frozen=True)
class Outcome:
    """One genome's result over the games it played."""

    key: int
    returns: tuple[float, ...]
    steps: int
    error: str | None = None
    # One tuple per game (its lowest, then highest, observation values), when asked for.
    behaviour: tuple[tuple[float, ...], ...] = ()

    @property
    def mean(self) -> float:
        """Mean return; ``fsum`` makes it independent of summation order."""
        return math.fsum(self.returns) / len(self.returns)


@dataclass(frozen=True, eq=False)
class OutcomeTable:
    """Many genomes' outcomes as arrays: what a result carries, and what a batch yields.

    Row ``i`` is genome ``keys[i]``: its return per game ``returns[i]``, its ``steps[i]``,
    ``errors.get(i)`` and, when asked for, ``behaviour[i]`` (one row per game).  Iterating
    gives :class:`Outcome` objects; equality is exact.
    """

    keys: NDArray[np.int64]
    returns: NDArray[np.float64]  # (genomes, games)
    steps: NDArray[np.int64]
    errors: Mapping[int, str] = field(default_factory=dict)
    behaviour: NDArray[np.float64] | None = None  # (genomes, games, values)

    @staticmethod
    def of(outcomes: Sequence[Outcome], n_games: int | None = None) -> OutcomeTable:
        """The table of ``outcomes`` (all with ``n_games`` returns, or as many as the first)."""
        games = n_games if n_games is not None else (len(outcomes[0].returns) if outcomes else 0)
        returns = np.array([o.returns for o in outcomes], dtype=np.float64)
        described = bool(outcomes) and all(o.behaviour for o in outcomes)
        return OutcomeTable(
            keys=np.array([o.key for o in outcomes], dtype=np.int64),
            returns=returns.reshape(len(outcomes), games),
            steps=np.array([o.steps for o in outcomes], dtype=np.int64),
            errors={i: o.error for i, o in enumerate(outcomes) if o.error is not None},
            behaviour=np.array([o.behaviour for o in outcomes], dtype=np.float64)
            if described
            else None,
        )

    def check(self) -> None:
        """Raise ValueError unless the columns line up, returns are finite, steps ≥ 0."""
        n = self.keys.shape[0]
        if self.keys.ndim != 1 or self.returns.ndim != 2 or self.returns.shape[0] != n:
            raise ValueError(f"returns must be one row per genome ({n}), got {self.returns.shape}")
        if self.steps.shape != (n,):
            raise ValueError(f"steps must be one value per genome ({n}), got {self.steps.shape}")
        if not np.isfinite(self.returns).all():
            raise ValueError("returns must be finite")
        if n and int(self.steps.min()) < 0:
            raise ValueError("steps must be ≥ 0")
        if any(not 0 <= i < n for i in self.errors):
            raise ValueError(f"an error names a row outside 0..{n - 1}")
        b = self.behaviour
        if b is not None and (b.ndim != 3 or b.shape[:2] != self.returns.shape):
            raise ValueError(f"behaviour must be (genomes, games, values), got {b.shape}")
        if b is not None and not np.isfinite(b).all():
            raise ValueError("behaviour must be finite")

    def __len__(self) -> int:
        return int(self.keys.shape[0])

    def __getitem__(self, row: int) -> Outcome:
        key, steps = int(self.keys[row]), int(self.steps[row])
        b = () if self.behaviour is None else tuple(map(tuple, self.behaviour[row].tolist()))
        return Outcome(key, tuple(self.returns[row].tolist()), steps, self.errors.get(row), b)

    def __iter__(self) -> Iterator[Outcome]:
        returns = self.returns.tolist()
        described = [] if self.behaviour is None else self.behaviour.tolist()
        for i, (key, steps) in enumerate(zip(self.keys.tolist(), self.steps.tolist(), strict=True)):
            b = tuple(map(tuple, described[i])) if described else ()
            yield Outcome(key, tuple(returns[i]), steps, self.errors.get(i), b)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, OutcomeTable):
            return NotImplemented
        return (
            np.array_equal(self.keys, other.keys)
            and self.returns.shape == other.returns.shape
            and self.returns.tobytes() == other.returns.tobytes()
            and np.array_equal(self.steps, other.steps)
            and dict(self.errors) == dict(other.errors)
            and _same(self.behaviour, other.behaviour)
        )

    __hash__ = None  # type: ignore[assignment]


def _same(a: NDArray[np.float64] | None, b: NDArray[np.float64] | None) -> bool:
    if a is None or b is None:
        return a is b
    return a.shape == b.shape and a.tobytes() == b.tobytes()


def agree(a: Outcome, b: Outcome) -> bool:
    """Two evaluations of one genome are identical (as they must be: it is deterministic)."""
    return (
        a.returns == b.returns
        and a.steps == b.steps
        and a.error == b.error
        and a.behaviour == b.behaviour
    )


class _Rollout:
    """One batch in flight.  Row ``r`` of the current layout is game ``r // n`` of the
    ``r % n``-th genome still playing; finished genomes are compacted away so late steps
    cost only what is still alive."""

    def __init__(
        self,
        genomes: PackedGenomes,
        n_games: int,
        n_inputs: int,
        n_outputs: int,
        games: Games,
        recurrent: bool = False,
        describe: bool = False,
        scaling: InputScaling | None = None,
    ) -> None:
        self.n_total, self.n_games = len(genomes), n_games
        self.scaling = scaling
        self.n_inputs, self.n_outputs = n_inputs, n_outputs
        self.recurrent = recurrent
        # Lowest and highest observation values per game row, when behaviour is asked for.
        self.seen: tuple[NDArray[np.float64], NDArray[np.float64]] | None = None
        if describe:
            shape = (n_games * self.n_total, n_inputs)
            self.seen = (np.full(shape, np.inf), np.full(shape, -np.inf))
        self.plan = BatchPlan(genomes, recurrent=recurrent)
        self.games = games
        if games.box is not None and games.box.size != n_outputs:
            raise ValueError(f"networks have {n_outputs} outputs, the actions {games.box.size}")
        self.returns = np.zeros(n_games * self.n_total)  # flat (game, genome), original order
        self.steps = np.zeros(n_games * self.n_total, dtype=np.int64)
        self.errors: dict[int, str] = {}
        self.active: NDArray[np.bool_] = np.ones(n_games * self.n_total, dtype=np.bool_)
        self.values: NDArray[np.float64] = np.zeros((0, n_games))
        self._use(np.arange(self.n_total))

    def _use(self, alive: NDArray[np.int64]) -> None:
        self.alive = alive
        old = getattr(self, "net", None)
        self.net = self.plan.compile(alive, self.n_inputs, self.n_outputs)
        games = np.repeat(np.arange(self.n_games), alive.shape[0])
        self.flat = games * self.n_total + np.tile(alive, self.n_games)
        values = self.net.new_values(self.n_games)
        if self.recurrent and old is not None:  # node values are the networks' memory
            carry(old, self.values, self.net, values)
        self.values = values

    def _actions(self) -> NDArray[Any]:
        """Argmax indices ``(rows,)``, or for a Box the squashed outputs ``(rows, n_out)``."""
        box = self.games.box
        if box is None:
            return self.net.actions(self.values).ravel()
        outputs = self.net.output_values(self.values)  # (games, genomes, n_out): row order
        return box.squash(outputs.reshape(-1, self.n_outputs))

    def fail(self, rows: NDArray[np.int64], messages: list[str | None] | None) -> None:
        """End every game of the genomes owning ``rows`` (they get the floor later)."""
        n = self.alive.shape[0]
        for r in rows.tolist():
            message = (messages[r] if messages else None) or "non-finite observation or reward"
            self.errors.setdefault(int(self.alive[r % n]), message)
        dead = np.isin(self.alive, np.fromiter(self.errors, np.int64))
        self.active &= ~np.tile(dead, self.n_games)

    def compact(self, obs: NDArray[np.float64]) -> NDArray[np.float64]:
        """Drop genomes with no game left when they are at least half the batch."""
        n = self.alive.shape[0]
        playing = self.active.reshape(self.n_games, n).any(axis=0)
        keep = np.flatnonzero(playing)
        if n < 16 or keep.shape[0] > n // 2:
            return obs
        rows = (np.arange(self.n_games)[:, None] * n + keep[None, :]).ravel()
        self.games.select(rows)
        self.active = self.active[rows]
        self._use(self.alive[keep])
        return np.asarray(obs[rows])

    def run(self, seeds: Sequence[int], max_steps: int) -> None:
        """Play until every game has ended or ``max_steps`` steps were taken."""
        obs, errors = self.games.reset([s for s in seeds for _ in range(self.n_total)])
        self.active = np.ones(self.flat.shape[0], dtype=np.bool_)
        self._visit(obs, self.active & ~self._check(obs, None, errors))
        for _ in range(max_steps):
            if not self.active.any():
                break
            n = self.alive.shape[0]
            seen = obs if self.scaling is None else self.scaling.apply(obs)
            self.net.set_inputs(self.values, seen.reshape(self.n_games, n * self.n_inputs))
            self.net.activate(self.values)
            actions = self._actions()
            obs, reward, done, errors = self.games.step(actions, self.active)
            live = self.active & ~self._check(obs, reward, errors)
            self.returns[self.flat[live]] += reward[live]
            self.steps[self.flat[live]] += 1
            self._visit(obs, live)
            self.active &= ~done
            obs = self.compact(obs)

    def _visit(self, obs: NDArray[np.float64], rows: NDArray[np.bool_]) -> None:
        """Widen the observed range of the games in ``rows`` (current layout) by ``obs``."""
        if self.seen is None:
            return
        lo, hi = self.seen
        flat = self.flat[rows]
        lo[flat] = np.minimum(lo[flat], obs[rows])
        hi[flat] = np.maximum(hi[flat], obs[rows])

    def _check(
        self,
        obs: NDArray[np.float64],
        reward: NDArray[np.float64] | None,
        errors: list[str | None] | None,
    ) -> NDArray[np.bool_]:
        """Rows that failed this step; their genomes are failed as a side effect."""
        if (
            errors is None
            and np.isfinite(obs).all()
            and (reward is None or np.isfinite(reward).all())
        ):
            return np.zeros(obs.shape[0], dtype=np.bool_)  # the common case, kept cheap
        bad = ~np.isfinite(obs).all(axis=1)
        if reward is not None:
            bad |= ~np.isfinite(reward)
        if errors is not None:
            bad |= np.array([e is not None for e in errors], dtype=np.bool_)
        bad &= self.active
        if bad.any():
            self.fail(np.flatnonzero(bad), errors)
        return np.asarray(bad, dtype=np.bool_)

    def table(self, keys: NDArray[np.int64], reward_floor: float) -> OutcomeTable:
        """Every genome's outcome, in input order; failed genomes get the floor."""
        returns = self.returns.reshape(self.n_games, self.n_total).T.copy()
        steps = self.steps.reshape(self.n_games, self.n_total).sum(axis=0)
        for b in self.errors:
            returns[b] = reward_floor
        errors = dict(sorted(self.errors.items()))
        return OutcomeTable(keys, returns, steps, errors, self._behaviour())

    def _behaviour(self) -> NDArray[np.float64] | None:
        """``(genomes, games, 2 · n_inputs)``: each game's lowest then highest values."""
        if self.seen is None:
            return None
        both = np.concatenate(self.seen, axis=1)
        both[~np.isfinite(both)] = 0.0  # a game that failed at reset observed nothing
        out = both.reshape(self.n_games, self.n_total, -1).transpose(1, 0, 2).copy()
        out[list(self.errors)] = 0.0
        return out


@dataclass(frozen=True)
class GameSetup:
    """What playing a game needs besides the networks and the seeds: the environment, the
    step limit, the reward a failing genome gets, the network sizes, and whether networks
    keep their node values from step to step (``neat.recurrent``)."""

    env_id: str
    max_steps: int
    reward_floor: float
    n_inputs: int
    n_outputs: int
    recurrent: bool = False
    behaviour: bool = False  # also return each game's behaviour (``novelty_weight``)
    # (seed, step limit) of the random-action games that fix input normalisation
    # (``normalize_inputs``, evaluation.scaling); None: raw observations.
    input_scaling: tuple[int, int] | None = None

    def scaling(self, envs: EnvPool | None = None) -> InputScaling | None:
        """The input normalisation constants (kept in ``envs`` once measured), or None."""
        return for_games(self.env_id, self.n_inputs, self.n_outputs, self.input_scaling, envs)

    @staticmethod
    def of(config: TrainingConfig) -> GameSetup:
        """The setup a training config asks for."""
        return GameSetup(
            env_id=config.gym_game_name,
            max_steps=config.max_number_of_steps,
            reward_floor=config.reward_floor,
            n_inputs=config.input_size,
            n_outputs=config.output_size,
            recurrent=config.recurrent,
            behaviour=config.novelty_weight > 0,
            input_scaling=None
            if config.input_scaling_seed is None
            else (config.input_scaling_seed, config.max_number_of_steps),
        )


def evaluate_table(
    genomes: Sequence[Genome] | PackedGenomes,
    setup: GameSetup,
    game_seeds: Sequence[int],
    *,
    vector: bool | None = None,
    envs: EnvPool | None = None,
) -> OutcomeTable:
    """Play every genome on every game seed; one row per genome, in input order.

    ``envs``: the caller's reusable environment instances (a fresh set if None); only
    environments without vectorised physics use them.
    """
    packed = genomes if isinstance(genomes, PackedGenomes) else PackedGenomes.pack(genomes)
    if not len(packed):
        return OutcomeTable(packed.keys, np.zeros((0, len(game_seeds))), packed.keys.copy())
    rows = len(packed) * len(game_seeds)
    # Before the batch's games: measuring plays the pool's environment instances too.
    scaling = setup.scaling(envs)
    games = make_games(setup.env_id, rows, setup.n_inputs, vector=vector, envs=envs)
    rollout = _Rollout(
        packed,
        len(game_seeds),
        setup.n_inputs,
        setup.n_outputs,
        games,
        setup.recurrent,
        setup.behaviour,
        scaling,
    )
    rollout.run(game_seeds, setup.max_steps)
    return rollout.table(packed.keys, setup.reward_floor)


def evaluate_batch(
    genomes: Sequence[Genome] | PackedGenomes,
    setup: GameSetup,
    game_seeds: Sequence[int],
    *,
    vector: bool | None = None,
    envs: EnvPool | None = None,
) -> list[Outcome]:
    """Play every genome on every game seed; one Outcome per genome, in input order."""
    return list(evaluate_table(genomes, setup, game_seeds, vector=vector, envs=envs))
