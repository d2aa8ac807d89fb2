"""Asking evaluators to announce themselves: the requests a starting service sends."""

from __future__ import annotations

import threading

from ezspark_common.broker import Delivery
from ezspark_common.broker.memory import InMemoryBroker
from ezspark_common.service.announce import ask_evaluators
from ezspark_common.wire.messages import AnnounceRequested, decode


def test_requests_go_out_at_each_time_and_stop_when_told() -> None:
    """Each planned time broadcasts one AnnounceRequested; a set stop event sends none."""
    broker = InMemoryBroker()
    got: list[str] = []

    def handler(delivery: Delivery) -> None:
        msg = decode(delivery.body)
        assert isinstance(msg, AnnounceRequested)
        got.append(msg.requester)
        delivery.ack()

    broker.subscribe("req", handler)
    ask_evaluators(broker, "req", "gateway", threading.Event(), at=(0.0, 0.01)).join(5)
    broker.drain()
    assert got == ["gateway", "gateway"]
    stopped = threading.Event()
    stopped.set()
    ask_evaluators(broker, "req", "evolver", stopped, at=(0.0,)).join(5)
    broker.drain()
    assert got == ["gateway", "gateway"]
