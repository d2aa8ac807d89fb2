"""Message broker for EzSpark services: the interface, an in-memory broker and ``connect``.

See ``ezspark_common.broker.base`` for the contract.  Importing this package never
imports pika; ``connect`` loads the RabbitMQ adapter only for ``amqp://`` URLs.
"""

from __future__ import annotations

from typing import Any

try:
    import prometheus_client  # noqa: F401  (the broker extra's marker)
except ImportError as exc:  # the embedded trainer's install: say what to install
    raise ImportError(
        "ezspark_common.broker needs the broker extra: pip install 'ezspark-common[broker]'"
    ) from exc

from ezspark_common.broker.base import Broker, BrokerError, Delivery, Handler
from ezspark_common.broker.memory import InMemoryBroker
from ezspark_common.broker.metrics import BrokerMetrics, broker_metrics

__all__ = [
    "Broker",
    "BrokerError",
    "BrokerMetrics",
    "Delivery",
    "Handler",
    "InMemoryBroker",
    "broker_metrics",
    "connect",
]


def connect(url: str, **options: Any) -> Broker:
    """A connected broker for ``url``: ``memory://`` or ``amqp(s)://user:pass@host:port/vhost``.

    ``options`` go to the broker's constructor (e.g. ``delivery_limit``, ``heartbeat``).
    Raises ``BrokerError`` if RabbitMQ cannot be reached within its connect timeout.
    """
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme == "memory":
        return InMemoryBroker(**options)
    if scheme in ("amqp", "amqps"):
        from ezspark_common.broker.rabbitmq import RabbitBroker  # pika only when needed

        return RabbitBroker(url, **options)
    raise ValueError(f"unsupported broker URL scheme {scheme!r} in {url.split('@')[-1]!r}")
