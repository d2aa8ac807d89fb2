"""Evaluators' announcements: who is live now, and asking them to announce at once.

``LiveEvaluators`` keeps every evaluator's last announcement until ``EXPIRY_INTERVALS``
of its own intervals have passed without another (or it says it is leaving); the
evolver and the gateway both build on it.

A service that just started (a gateway validating configs, an evolver sizing tasks) knows
no evaluator until announcements arrive.  It broadcasts ``AnnounceRequested`` a few times
shortly after start: its own subscription to the announcements may not be bound yet at the
first one, and a broadcast nobody hears is simply lost.  Evaluators answer at most once a
second, however many services start at once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

import structlog

from ezspark_common.broker import Broker, BrokerError
from ezspark_common.wire.messages import AnnounceRequested, EvaluatorAnnounced, encode

log = structlog.get_logger(__name__)

ASK_AT_S = (0.5, 2.0, 5.0)  # after start-up
EXPIRY_INTERVALS = 3.0  # announcements an evaluator may miss before it counts as gone


class LiveEvaluators:
    """The last announcement of each evaluator still live (thread-safe, clock injected).

    Expired entries are dropped whenever one is recorded or read, so memory follows the
    live evaluators, not every evaluator id ever heard.
    """

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._last: dict[str, tuple[EvaluatorAnnounced, float]] = {}  # id → (msg, expiry)

    def record(self, msg: EvaluatorAnnounced) -> bool:
        """Record an announcement or a goodbye; True when it changed who is live."""
        now = self._clock()
        with self._lock:
            self._prune(now)
            was_live = msg.evaluator_id in self._last
            if msg.leaving:
                self._last.pop(msg.evaluator_id, None)
                return was_live
            self._last[msg.evaluator_id] = (msg, now + EXPIRY_INTERVALS * msg.interval_s)
            return not was_live

    def live(self) -> list[EvaluatorAnnounced]:
        """The last announcement of every live evaluator."""
        with self._lock:
            self._prune(self._clock())
            return [msg for msg, _ in self._last.values()]

    def __len__(self) -> int:
        """Entries held (live or not yet pruned)."""
        return len(self._last)

    def _prune(self, now: float) -> None:
        for evaluator_id in [k for k, (_, expiry) in self._last.items() if expiry <= now]:
            del self._last[evaluator_id]


def ask_evaluators(
    broker: Broker,
    exchange: str,
    requester: str,
    stopping: threading.Event,
    at: Sequence[float] = ASK_AT_S,
) -> threading.Thread:
    """Broadcast ``AnnounceRequested`` at each of ``at`` seconds from now (a thread)."""

    def run() -> None:
        waited = 0.0
        for when in at:
            if stopping.wait(max(0.0, when - waited)):
                return
            waited = when
            try:
                broker.broadcast(exchange, encode(AnnounceRequested(requester=requester)))
            except BrokerError as exc:  # the next try, or the next interval, will do
                log.info("announce_request_failed", error=str(exc))

    thread = threading.Thread(target=run, name="ask-evaluators", daemon=True)
    thread.start()
    return thread
