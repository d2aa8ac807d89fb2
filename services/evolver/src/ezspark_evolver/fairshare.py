"""Fair sharing of the evaluators between trainings and users.

Each environment has a window of tasks in flight, sized to its live evaluators (about 1.5
per evaluation slot: one running on each, and a few ready so nobody idles between a
result and the next publish; any more would only queue ahead of other users' tasks).  The
window is split max-min fairly in evaluator time (tasks × their expected duration),
first between users, then between each user's trainings: nobody gets more than they ask
for, and what one leaves unused goes to the others.  A training publishes a task only
while it holds less than its share, so a huge training never fills the queue ahead of a
small one.  Every user with work keeps at least one task in flight.

Users are weighted by their recent usage (weighted fair share, as batch schedulers do):
weight = 1 / (``USAGE_OFFSET_S`` + evaluator-seconds used, decayed with a half-life).  A
user who just arrived, or who used little lately, gets most of the evaluators for as long
as that lasts, so a small training runs nearly as fast beside a huge one as alone; users
who keep asking converge to equal shares of evaluator time.
"""

from __future__ import annotations

import math
import statistics
import threading
import time
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from ezspark_evolver.registry import EvaluatorRegistry

K = TypeVar("K", bound=Hashable)
USAGE_OFFSET_S = 5.0  # evaluator-seconds: how much recent usage halves a user's weight


def water_fill(
    capacity: float, demands: Mapping[K, float], weights: Mapping[K, float] | None = None
) -> dict[K, float]:
    """Weighted max-min split of ``capacity``: each claim gets ``min(demand, weight × L)``
    with the level ``L`` that uses the capacity up (equal weights: equal shares)."""
    w = weights or {}
    out = dict.fromkeys(demands, 0.0)
    left = max(capacity, 0.0)
    todo = sorted(
        (k for k, d in demands.items() if d > 0), key=lambda k: demands[k] / w.get(k, 1.0)
    )
    total = sum(w.get(k, 1.0) for k in todo)
    for key in todo:
        weight = w.get(key, 1.0)
        give = min(demands[key], left * weight / total)
        out[key] = give
        left -= give
        total -= weight
    return out


Claim = tuple[str, str]  # (user, training)


def fair_shares(
    capacity: float, demands: Mapping[Claim, float], user_weights: Mapping[str, float] | None = None
) -> dict[Claim, float]:
    """Split ``capacity`` between ``(user, training)`` demands: by user (weighted), then
    equally between each user's trainings."""
    per_user: dict[str, dict[Claim, float]] = {}
    for claim, demand in demands.items():
        per_user.setdefault(claim[0], {})[claim] = demand
    user_caps = water_fill(
        capacity, {u: sum(c.values()) for u, c in per_user.items()}, user_weights
    )
    out: dict[Claim, float] = {}
    for user, claims in per_user.items():
        out.update(water_fill(user_caps[user], claims))
    return out


class Usage:
    """Evaluator-seconds used per user, decaying with ``half_life_s``."""

    def __init__(
        self, half_life_s: float = 120.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._half_life = half_life_s
        self._clock = clock
        self._used: dict[str, tuple[float, float]] = {}  # user → (seconds, as of)

    def _now(self, user: str) -> float:
        used, since = self._used.get(user, (0.0, self._clock()))
        return float(used * 0.5 ** ((self._clock() - since) / self._half_life))

    def charge(self, user: str, seconds: float) -> None:
        """``user``'s tasks just took an evaluator ``seconds``."""
        self._used[user] = (self._now(user) + seconds, self._clock())
        if len(self._used) > 10_000:  # forget the idlest users: bounded memory
            for idle in sorted(self._used, key=self._now)[:1000]:
                del self._used[idle]

    def weight(self, user: str) -> float:
        """Share weight: 1 for a fresh user, falling as usage grows."""
        return USAGE_OFFSET_S / (USAGE_OFFSET_S + self._now(user))


@dataclass
class _Member:
    owner: str
    env_id: str
    wake: Callable[[], None]
    in_flight: int = 0
    pending: int = 0
    # How long one of its tasks takes an evaluator: the round's hint with every grant
    # (unknown only in a training's first generation).
    task_s: float | None = None
    copies: int = 0  # speculative second copies out (on top of ``in_flight``)


class Scheduler:
    """Grants publishing credit to the rounds of every running training."""

    def __init__(
        self,
        registry: EvaluatorRegistry,
        per_slot: float = 1.5,
        min_window: int = 2,
        usage: Usage | None = None,
    ) -> None:
        self._registry = registry
        self._usage = usage or Usage()
        self._per_slot = per_slot
        self._min_window = min_window
        self._members: dict[str, _Member] = {}
        self._lock = threading.Lock()

    def join(self, training_id: str, owner: str, env_id: str, wake: Callable[[], None]) -> None:
        """A round of ``training_id`` starts; ``wake`` nudges it when credit frees up."""
        with self._lock:
            self._members[training_id] = _Member(owner, env_id, wake)

    def leave(self, training_id: str) -> None:
        """The round ended: its credit goes back to the others."""
        with self._lock:
            member = self._members.pop(training_id, None)
        if member is not None:
            self._wake_others(member.env_id, training_id)

    def window(self, env_id: str) -> int:
        """Tasks that may be in flight on ``env_id`` at once."""
        return max(self._min_window, math.ceil(self._per_slot * self._registry.slots(env_id)))

    def in_flight(self, env_id: str) -> int:
        """Tasks in flight on ``env_id``, all trainings together."""
        with self._lock:
            return sum(m.in_flight for m in self._members.values() if m.env_id == env_id)

    def charge(self, training_id: str, seconds: float) -> None:
        """A task of ``training_id`` took an evaluator ``seconds`` (its owner's usage)."""
        with self._lock:
            member = self._members.get(training_id)
            if member is not None:
                self._usage.charge(member.owner, seconds)

    def grant(self, training_id: str, wanted: int, task_s: float | None = None) -> int:
        """How many of ``wanted`` new tasks the training may publish now (counted as sent);
        ``task_s``: how long one of them should take an evaluator, if known.

        Shares are of evaluator *time*: a training whose tasks take twice as long gets
        half as many in flight, so users get equal evaluator time, not equal task counts.
        """
        window = self.window(self._members[training_id].env_id) if wanted else 0
        with self._lock:
            me = self._members[training_id]
            me.pending = wanted
            if task_s is not None and task_s > 0:
                me.task_s = task_s
            peers = {t: m for t, m in self._members.items() if m.env_id == me.env_id}
            known = [m.task_s for m in peers.values() if m.task_s]
            default = statistics.median(known) if known else 1.0
            cost = {t: m.task_s or default for t, m in peers.items()}
            demand = {(m.owner, t): (m.in_flight + m.pending) * cost[t] for t, m in peers.items()}
            busy = [cost[t] for (_, t), d in demand.items() if d > 0]
            capacity = window * (statistics.fmean(busy) if busy else default)
            weights = {m.owner: self._usage.weight(m.owner) for m in peers.values()}
            share_s = fair_shares(capacity, demand, weights)[(me.owner, training_id)]
            # Rounded down: a task over the share would sit in the queue ahead of another
            # user's next task.  But every user with work keeps at least one task in
            # flight, so nobody waits for ever (its trainings take turns for it).
            share = math.floor(share_s / cost[training_id] + 1e-9)
            if share == 0 and not any(m.in_flight for m in peers.values() if m.owner == me.owner):
                share = 1
            granted = max(0, min(wanted, share - me.in_flight))
            me.in_flight += granted
            me.pending -= granted
        return granted

    def speculate(self, training_id: str, wanted: int) -> int:
        """How many open tasks the training may send out a second time now: only into
        evaluation slots nobody else could use (no training of the environment has work
        waiting for credit, and more slots are live than tasks and copies are out)."""
        env_id = self._members[training_id].env_id
        slots = self._registry.slots(env_id)
        with self._lock:
            peers = [m for m in self._members.values() if m.env_id == env_id]
            if any(m.pending > 0 for m in peers):
                return 0
            idle = slots - sum(m.in_flight + m.copies for m in peers)
            granted = max(0, min(wanted, idle))
            self._members[training_id].copies += granted
        return granted

    def release(self, training_id: str, speculated: bool = False) -> None:
        """One task of ``training_id`` was answered (or cancelled); ``speculated``: it had
        a second copy out."""
        with self._lock:
            member = self._members.get(training_id)
            if member is None:
                return
            member.in_flight = max(0, member.in_flight - 1)
            if speculated:
                member.copies = max(0, member.copies - 1)
        self._wake_others(member.env_id, training_id)

    def _wake_others(self, env_id: str, training_id: str) -> None:
        with self._lock:
            waiting = [
                m.wake
                for t, m in self._members.items()
                if t != training_id and m.env_id == env_id and m.pending > 0
            ]
        for wake in waiting:
            wake()
