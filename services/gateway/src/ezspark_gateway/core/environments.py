"""Which environments the evaluators serve, learned from their announcements.

Evaluators broadcast ``EvaluatorAnnounced`` every ``interval_s`` seconds.  The registry
keeps each evaluator's last announcement (``announce.LiveEvaluators``, as the evolver
does) until it expires (3 × ``interval_s`` after it arrived) or the evaluator says it is
``leaving``.  An environment is
*live* while an unexpired evaluator serves it, and *known* once any evaluator announced it
since start-up (its ``EnvSpace`` is kept even when nobody serves it any more, so a config
can still be checked against its sizes; the training then waits for an evaluator).

Pure bookkeeping with an injected clock; thread-safe (announcements arrive on a broker
thread while requests read on the server's threads).
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass

from ezspark_common.service.announce import LiveEvaluators
from ezspark_common.wire.messages import EnvSpace, EvaluatorAnnounced, routing_id
from ezspark_gateway.core.ports import Clock


@dataclass(frozen=True)
class KnownEnv:
    """An announced environment and how many live evaluators serve it now."""

    space: EnvSpace
    evaluators: int


class EnvironmentRegistry:
    """Live evaluators by id, and every environment announced since start-up."""

    def __init__(self, clock: Clock) -> None:
        self._live = LiveEvaluators(clock)
        self._lock = threading.Lock()
        self._known: dict[str, EnvSpace] = {}

    def announce(self, msg: EvaluatorAnnounced) -> bool:
        """Record one announcement; True when it changed which evaluators are live."""
        with self._lock:
            for space in msg.envs:
                self._known[space.env_id] = space
        return self._live.record(msg)

    def live_counts(self) -> dict[str, int]:
        """How many live evaluators serve each environment (live ones only)."""
        return dict(Counter(space.env_id for msg in self._live.live() for space in msg.envs))

    def live(self) -> list[str]:
        """The environments some live evaluator serves, sorted."""
        return sorted(self.live_counts())

    def live_evaluators(self) -> list[str]:
        """The ids of the evaluators whose last announcement has not expired, sorted."""
        return sorted(msg.evaluator_id for msg in self._live.live())

    def space(self, env_id: str) -> EnvSpace | None:
        """The last announced space of ``env_id``, live or not; None if never announced.
        A plug-in's ``module:Id`` is looked up by its routing id, as tasks are routed."""
        env_id = routing_id(env_id)
        with self._lock:
            return self._known.get(env_id)

    def known(self) -> list[KnownEnv]:
        """Every environment announced since start-up, by id, with its live evaluator count."""
        counts = self.live_counts()
        with self._lock:
            spaces = sorted(self._known.values(), key=lambda s: s.env_id)
        return [KnownEnv(space=s, evaluators=counts.get(s.env_id, 0)) for s in spaces]
