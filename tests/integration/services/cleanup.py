"""Deleting a test's prefixed queues and exchanges from RabbitMQ afterwards."""

from __future__ import annotations

import os
from collections.abc import Iterable
from urllib.parse import quote, unquote, urlsplit

import httpx
from prometheus_client import CollectorRegistry

from ezspark_common.broker.rabbitmq import RabbitBroker
from ezspark_common.wire.messages import ANNOUNCE_EXCHANGE, ANNOUNCE_REQUESTS_EXCHANGE

_MANAGEMENT_URL = os.environ.get("EZSPARK_TEST_MANAGEMENT_URL", "http://127.0.0.1:15672")


def _declared_with(prefix: str, url: str) -> list[str]:
    """Names (without ``prefix``) of the prefixed queues RabbitMQ has, by its management
    API: the evolver declares a task queue per environment a test never names.  Empty
    when the API does not answer (the known names are deleted anyway)."""
    parts = urlsplit(url)
    vhost = quote(unquote(parts.path[1:] or "/"), safe="")
    auth = (unquote(parts.username or "guest"), unquote(parts.password or "guest"))
    try:
        reply = httpx.get(
            f"{_MANAGEMENT_URL}/api/queues/{vhost}",
            params={"columns": "name"},
            auth=auth,
            timeout=5,
        )
        reply.raise_for_status()
    except httpx.HTTPError:
        return []
    names = [str(q["name"]) for q in reply.json()]
    return [n[len(prefix) :] for n in names if n.startswith(prefix) and not n.endswith(".dead")]


def delete_queues(prefix: str, url: str, known: Iterable[str], fronted: Iterable[str]) -> None:
    """Delete the ``known`` prefixed queues and any other with ``prefix`` (each with its
    dead-letter queue), the exchanges in front of the ``fronted`` ones, and the announce
    exchanges."""
    with RabbitBroker(url, registry=CollectorRegistry()) as broker:
        for name in sorted({*known, *_declared_with(prefix, url)}):
            broker.delete(prefix + name)
        broker.delete_exchange(prefix + ANNOUNCE_EXCHANGE)
        broker.delete_exchange(prefix + ANNOUNCE_REQUESTS_EXCHANGE)
        for name in fronted:
            broker.delete_exchange(prefix + name)
