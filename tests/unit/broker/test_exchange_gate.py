"""The IO thread's bookkeeping of fanout exchanges and the broadcasts held for them."""

from __future__ import annotations

from concurrent.futures import Future

import pytest

from ezspark_common.broker._confirms import PendingPublish
from ezspark_common.broker._exchanges import ExchangeGate
from ezspark_common.broker.base import BrokerError


def _item(n: int) -> PendingPublish:
    return PendingPublish("", f"m{n}".encode(), None, Future())


def test_only_the_first_held_broadcast_asks_for_a_declare() -> None:
    """Broadcasts to an undeclared exchange share one declare, per exchange."""
    gate = ExchangeGate()
    assert gate.hold("a", _item(1)) is True
    assert gate.hold("a", _item(2)) is False
    assert gate.hold("b", _item(3)) is True
    assert not gate.is_declared("a")


def test_a_declare_releases_the_held_broadcasts_in_order() -> None:
    """After the declare the held broadcasts are sent oldest first, and no more are held."""
    gate = ExchangeGate()
    items = [_item(n) for n in range(3)]
    for item in items:
        gate.hold("a", item)
    assert gate.settle("a", None) == items
    assert gate.is_declared("a")
    assert gate.hold("a", _item(4)) is True  # held again only if the caller did not check


def test_a_refused_declare_fails_every_held_broadcast() -> None:
    """RabbitMQ's refusal reaches each waiting publisher; nothing is sent or remembered."""
    gate = ExchangeGate()
    items = [_item(n) for n in range(2)]
    for item in items:
        gate.hold("a", item)
    assert gate.settle("a", BrokerError("406 PRECONDITION_FAILED")) == []
    assert not gate.is_declared("a")
    for item in items:
        with pytest.raises(BrokerError, match="406"):
            item.future.result(timeout=0)


def test_declared_exchanges_are_redeclared_in_first_declared_order() -> None:
    """A reconnect redeclares every declared exchange once, oldest first; forget drops one."""
    gate = ExchangeGate()
    for name in ("b", "a", "c", "a"):
        gate.hold(name, _item(0))
        gate.settle(name, None)
    assert gate.declared() == ["b", "a", "c"]
    gate.forget("a")
    assert gate.declared() == ["b", "c"]
    assert not gate.is_declared("a")
