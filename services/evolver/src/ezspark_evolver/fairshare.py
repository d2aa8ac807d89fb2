"""Fair sharing of the evaluators between trainings and users.

Each environment has a window of tasks in flight, sized to its live evaluators (about 1.5
per evaluation slot: one running on each, and a few ready so nobody idles between a
result and the next publish; any more would only queue ahead of other users' tasks).  The
window is split max-min fairly, first between users, then between each user's trainings:
nobody gets more than they ask for, and what one leaves unused goes to the others.  A
training publishes a task only while it holds less than its share, so a huge training
never fills the queue ahead of a small one: both progress, each at its fair rate.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ezspark_evolver.registry import EvaluatorRegistry


def water_fill(capacity: int, demands: Mapping[str, int]) -> dict[str, int]:
    """Max-min fair integer split of ``capacity``; each positive demand gets at least 1.

    The "at least 1" may exceed ``capacity`` when there are more claimants than units:
    a training must never wait for ever behind others.
    """
    out = dict.fromkeys(demands, 0)
    left = max(capacity, 0)
    todo = sorted((d, k) for k, d in demands.items() if d > 0)
    while todo:
        share, extra = divmod(left, len(todo))
        d, k = todo[0]
        if d <= share:  # the smallest demand fits its equal share: give it all, re-split
            out[k] = d
            left -= d
            todo.pop(0)
            continue
        for i, (d, k) in enumerate(todo):  # nobody left fits: equal shares, ties by order
            out[k] = max(1, min(d, share + (1 if i < extra else 0)))
        break
    return out


Claim = tuple[str, str]  # (user, training)


def fair_shares(capacity: int, demands: Mapping[Claim, int]) -> dict[Claim, int]:
    """Split ``capacity`` between ``(user, training)`` demands: by user, then by training."""
    per_user: dict[str, dict[str, int]] = {}
    for (user, training), demand in demands.items():
        per_user.setdefault(user, {})[training] = demand
    user_caps = water_fill(capacity, {u: sum(t.values()) for u, t in per_user.items()})
    out: dict[Claim, int] = {}
    for user, trainings in per_user.items():
        for training, share in water_fill(user_caps[user], trainings).items():
            out[(user, training)] = share
    return out


@dataclass
class _Member:
    owner: str
    env_id: str
    wake: Callable[[], None]
    in_flight: int = 0
    pending: int = 0


class Scheduler:
    """Grants publishing credit to the rounds of every running training."""

    def __init__(self, registry: EvaluatorRegistry, per_slot: float = 1.5,
                 min_window: int = 2) -> None:
        self._registry = registry
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

    def grant(self, training_id: str, wanted: int) -> int:
        """How many of ``wanted`` new tasks the training may publish now (counted as sent)."""
        window = self.window(self._members[training_id].env_id) if wanted else 0
        with self._lock:
            me = self._members[training_id]
            me.pending = wanted
            peers = {(m.owner, t): m.in_flight + m.pending
                     for t, m in self._members.items() if m.env_id == me.env_id}
            share = fair_shares(window, peers)[(me.owner, training_id)]
            granted = max(0, min(wanted, share - me.in_flight))
            me.in_flight += granted
            me.pending -= granted
        return granted

    def release(self, training_id: str) -> None:
        """One task of ``training_id`` was answered (or cancelled)."""
        with self._lock:
            member = self._members.get(training_id)
            if member is None:
                return
            member.in_flight = max(0, member.in_flight - 1)
        self._wake_others(member.env_id, training_id)

    def _wake_others(self, env_id: str, training_id: str) -> None:
        with self._lock:
            waiting = [m.wake for t, m in self._members.items()
                       if t != training_id and m.env_id == env_id and m.pending > 0]
        for wake in waiting:
            wake()
