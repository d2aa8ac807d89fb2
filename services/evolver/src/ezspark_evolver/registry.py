"""Which evaluators are alive, and which environments each of them serves.

Fed by the evaluators' announcements (``EvaluatorAnnounced``, every ``interval_s``) and by
their results.  An announced evaluator counts as alive for ``3 × interval_s`` after its last
announcement, or until it says it is leaving; one known only from its results (announcing
is newer than some test doubles) counts for ``liveness_s`` after its last result.  The
clock is injected so the rules are tested without waiting.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ezspark_common.messages import EvaluatorAnnounced

_MISSED_ANNOUNCEMENTS = 3.0  # announcements an evaluator may miss before it counts as gone


@dataclass
class _Entry:
    envs: frozenset[str]
    slots: int
    until: float  # alive until this clock reading


class EvaluatorRegistry:
    """Thread-safe view of the live evaluators, per environment."""

    def __init__(self, liveness_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._liveness_s = liveness_s
        self._clock = clock
        self._announced: dict[str, _Entry] = {}
        self._seen: dict[tuple[str, str], float] = {}  # (evaluator, env) → alive until
        self._lock = threading.Lock()

    def announced(self, msg: EvaluatorAnnounced) -> None:
        """Record an announcement (or a goodbye)."""
        with self._lock:
            self._prune()
            if msg.leaving:
                self._announced.pop(msg.evaluator_id, None)
                for key in [k for k in self._seen if k[0] == msg.evaluator_id]:
                    del self._seen[key]
                return
            self._announced[msg.evaluator_id] = _Entry(
                frozenset(e.env_id for e in msg.envs), msg.slots,
                self._clock() + _MISSED_ANNOUNCEMENTS * msg.interval_s)

    def seen(self, evaluator_id: str, env_id: str) -> None:
        """``evaluator_id`` just answered a task of ``env_id``."""
        with self._lock:
            if (evaluator_id, env_id) not in self._seen:
                self._prune()
            self._seen[(evaluator_id, env_id)] = self._clock() + self._liveness_s

    def _prune(self) -> None:
        """Forget evaluators gone for good (ids are per process: they never come back),
        so a long-running evolver's memory does not grow with every restart (under _lock)."""
        now = self._clock()
        for evaluator in [e for e, entry in self._announced.items() if entry.until < now]:
            del self._announced[evaluator]
        for key in [k for k, until in self._seen.items() if until < now]:
            del self._seen[key]

    def serving(self, env_id: str) -> dict[str, int]:
        """Live evaluators that serve ``env_id``, with their evaluation slots."""
        now = self._clock()
        with self._lock:
            out = {e: entry.slots for e, entry in self._announced.items()
                   if entry.until >= now and env_id in entry.envs}
            for (evaluator, env), until in self._seen.items():
                if env == env_id and until >= now:
                    out.setdefault(evaluator, 1)
        return out

    def slots(self, env_id: str) -> int:
        """Evaluations that can run at once on ``env_id`` (0: nobody serves it)."""
        return sum(self.serving(env_id).values())

    def any_alive(self, env_id: str, excluding: Iterable[str]) -> bool:
        """Whether an evaluator outside ``excluding`` serves ``env_id`` now."""
        skip = set(excluding)
        return any(e not in skip for e in self.serving(env_id))

    def envs(self) -> set[str]:
        """Every environment some live evaluator serves."""
        now = self._clock()
        with self._lock:
            found = {env for entry in self._announced.values() if entry.until >= now
                     for env in entry.envs}
            found |= {env for (_, env), until in self._seen.items() if until >= now}
        return found
