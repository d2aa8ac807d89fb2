"""Asking the evaluators to announce themselves now, rather than at their next interval.

A service that just started (a gateway validating configs, an evolver sizing tasks) knows
no evaluator until announcements arrive.  It broadcasts ``AnnounceRequested`` a few times
shortly after start: its own subscription to the announcements may not be bound yet at the
first one, and a broadcast nobody hears is simply lost.  Evaluators answer at most once a
second, however many services start at once.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import structlog

from ezspark_common.broker import Broker, BrokerError
from ezspark_common.messages import AnnounceRequested, encode

log = structlog.get_logger(__name__)

ASK_AT_S = (0.5, 2.0, 5.0)  # after start-up


def ask_evaluators(broker: Broker, exchange: str, requester: str,
                   stopping: threading.Event, at: Sequence[float] = ASK_AT_S
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
