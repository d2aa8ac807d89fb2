"""Which waiting trainings may start: a rule with no threads and no clock of its own.

At most ``limit`` trainings run at once and ``per_user`` per user.  Waiting trainings are
admitted by user: the next one belongs to the user with the fewest running (the oldest
request among theirs), so one user's many trainings never hold every slot.  Not
thread-safe: the service calls it under its own lock.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Waiting:
    """A training accepted but not started."""

    requested_at: float
    training_id: str
    owner: str


@dataclass
class Admissions:
    """The waiting and running trainings, and who starts next."""

    limit: int
    per_user: int
    waiting: list[Waiting] = field(default_factory=list)
    running: dict[str, str] = field(default_factory=dict)  # training id → owner

    def add(self, requested_at: float, training_id: str, owner: str) -> None:
        """A training waits for a slot."""
        self.waiting.append(Waiting(requested_at, training_id, owner))

    def knows(self, training_id: str) -> bool:
        """True if the training is waiting or running."""
        return training_id in self.running or any(
            w.training_id == training_id for w in self.waiting
        )

    def withdraw(self, training_id: str) -> bool:
        """Stop waiting for a slot (a stop request); False if it was not waiting."""
        entry = next((w for w in self.waiting if w.training_id == training_id), None)
        if entry is not None:
            self.waiting.remove(entry)
        return entry is not None

    def admit(self) -> list[Waiting]:
        """The trainings to start now, in order (counted as running from now on)."""
        started = []
        while len(self.running) < self.limit:
            picked = self._next()
            if picked is None:
                break
            self.waiting.remove(picked)
            self.running[picked.training_id] = picked.owner
            started.append(picked)
        return started

    def ended(self, training_id: str) -> None:
        """A running training finished, failed or paused: its slot is free."""
        self.running.pop(training_id, None)

    def _next(self) -> Waiting | None:
        """The oldest waiting training of the user with the fewest running."""
        counts: dict[str, int] = {}
        for owner in self.running.values():
            counts[owner] = counts.get(owner, 0) + 1
        allowed = [w for w in self.waiting if counts.get(w.owner, 0) < self.per_user]
        if not allowed:
            return None
        return min(allowed, key=lambda w: (counts.get(w.owner, 0), w.requested_at))
