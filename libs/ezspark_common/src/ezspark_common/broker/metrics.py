"""Prometheus metrics of the broker adapters, created once per registry.

Metric objects are built on first use rather than at import time, and cached per
``CollectorRegistry``: two brokers in one process (a test, or a service that both
publishes and consumes) share the same counters instead of failing with "Duplicated
timeseries in CollectorRegistry".
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass

from prometheus_client import REGISTRY, CollectorRegistry, Counter


@dataclass(frozen=True)
class BrokerMetrics:
    """The counters a broker updates."""

    poison_messages: Counter
    reconnects: Counter


_lock = threading.Lock()
_cache: weakref.WeakKeyDictionary[CollectorRegistry, BrokerMetrics] = weakref.WeakKeyDictionary()


def broker_metrics(registry: CollectorRegistry | None = None) -> BrokerMetrics:
    """The broker metrics registered in ``registry`` (default: the global one), made once."""
    target = REGISTRY if registry is None else registry
    with _lock:
        found = _cache.get(target)
        if found is None:
            found = BrokerMetrics(
                poison_messages=Counter(
                    "ezspark_broker_poison_messages_total",
                    "Messages sent to a dead-letter queue: rejected without requeue, "
                    "or requeued past the delivery limit.",
                    ["queue"],
                    registry=target,
                ),
                reconnects=Counter(
                    "ezspark_broker_reconnects_total",
                    "Times the broker connection was re-established after being lost.",
                    registry=target,
                ),
            )
            _cache[target] = found
        return found
