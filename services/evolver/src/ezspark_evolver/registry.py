"""Which evaluators are alive, and which environments each of them serves.

Fed by the evaluators' announcements (``announce.LiveEvaluators``: alive for
``3 × interval_s`` after the last one, or until a goodbye) and by their results: one
known only from its results (announcing is newer than some test doubles) counts for
``liveness_s`` after its last result.  The clock is injected so the rules are tested
without waiting.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable

from ezspark_common.service.announce import LiveEvaluators
from ezspark_common.wire.messages import EvaluatorAnnounced


class EvaluatorRegistry:
    """Thread-safe view of the live evaluators, per environment."""

    def __init__(self, liveness_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._liveness_s = liveness_s
        self._clock = clock
        self._announced = LiveEvaluators(clock)
        self._seen: dict[tuple[str, str], float] = {}  # (evaluator, env) → alive until
        self._lock = threading.Lock()

    def announced(self, msg: EvaluatorAnnounced) -> None:
        """Record an announcement (or a goodbye)."""
        self._announced.record(msg)
        if msg.leaving:
            with self._lock:
                for key in [k for k in self._seen if k[0] == msg.evaluator_id]:
                    del self._seen[key]

    def seen(self, evaluator_id: str, env_id: str) -> None:
        """``evaluator_id`` just answered a task of ``env_id``."""
        with self._lock:
            if (evaluator_id, env_id) not in self._seen:
                self._prune()
            self._seen[(evaluator_id, env_id)] = self._clock() + self._liveness_s

    def _prune(self) -> None:
        """Forget result-only evaluators gone for good (ids are per process: they never
        come back), so memory does not grow with every restart (under _lock)."""
        now = self._clock()
        for key in [k for k, until in self._seen.items() if until < now]:
            del self._seen[key]

    def serving(self, env_id: str) -> dict[str, int]:
        """Live evaluators that serve ``env_id``, with their evaluation slots."""
        out = {
            msg.evaluator_id: msg.slots
            for msg in self._announced.live()
            if any(e.env_id == env_id for e in msg.envs)
        }
        now = self._clock()
        with self._lock:
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
