"""What ``RabbitBroker`` declares on RabbitMQ, and in which order; no pika import here.

Each function takes an open pika channel (typed ``Any``: only ``rabbitmq`` imports pika),
chains its declarations through pika's completion callbacks and calls ``done`` at the
end.  If RabbitMQ refuses one (404/406), it closes the channel and ``done`` never runs;
the channel's close callback reports the error.

* Work queues: durable quorum queues with ``x-delivery-limit`` that dead-letter through
  the default exchange into ``<name>.dead``.  Result queues (``is_results_queue``) are
  durable *classic* queues instead: a quorum queue hands a message to its consumer only
  once its log is fsynced, about 2.5 ms per message on our machines, which was a third of
  a CartPole generation's broker overhead; a classic queue delivers at once and persists
  in the background.  Results need no delivery count: their one consumer dead-letters what
  it cannot use, and a redelivered result is its final attempt (see ``RabbitBroker``).
  A *fronted* queue also gets a durable direct exchange of its own name, bound with the
  queue's name as routing key: publishers write to that exchange, so RabbitMQ's write
  permission says who may feed the queue (the default exchange would let anyone who may
  write to it reach every queue).
* Fanout exchanges: durable.  A broker that does not own the topology (``passive``) only
  checks that they exist: re-declaring needs the configure permission.
* A subscription's private queue: a server-named, exclusive, auto-delete classic queue
  bound to its exchange, at most ``SUBSCRIBER_QUEUE_LIMIT`` messages, oldest dropped.
"""

from __future__ import annotations

from collections.abc import Callable
from types import MappingProxyType
from typing import Any

from ezspark_common.broker.base import SUBSCRIBER_QUEUE_LIMIT
from ezspark_common.wire.messages import dead_letter_queue, is_results_queue

_PRIVATE_QUEUE_ARGUMENTS = MappingProxyType(
    {
        "x-queue-type": "classic",
        "x-max-length": SUBSCRIBER_QUEUE_LIMIT,
        "x-overflow": "drop-head",
    }
)


def declare_queues(
    ch: Any,
    queues: list[str],
    delivery_limit: int,
    done: Callable[[], None],
    fronted: frozenset[str] = frozenset(),
) -> None:
    """Declare each queue's dead-letter queue, then the queue (and the exchange in front
    of a fronted one), one after another."""
    if not queues:
        done()
        return
    queue, rest = queues[0], queues[1:]

    def next_queue() -> None:
        declare_queues(ch, rest, delivery_limit, done, fronted)

    def front(_frame: Any) -> None:
        if queue not in fronted:
            next_queue()
            return
        ch.exchange_declare(
            queue,
            exchange_type="direct",
            durable=True,
            callback=lambda _f: ch.queue_bind(
                queue, queue, queue, callback=lambda _b: next_queue()
            ),
        )

    arguments: dict[str, Any] = {
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": dead_letter_queue(queue),
    }
    if is_results_queue(queue):
        arguments["x-queue-type"] = "classic"
    else:
        arguments.update({"x-queue-type": "quorum", "x-delivery-limit": delivery_limit})
    ch.queue_declare(
        dead_letter_queue(queue),
        durable=True,
        arguments={"x-queue-type": "quorum"},
        callback=lambda _f: ch.queue_declare(
            queue,
            durable=True,
            arguments=arguments,
            callback=front,
        ),
    )


def declare_exchanges(
    ch: Any, exchanges: list[str], done: Callable[[], None], passive: bool = False
) -> None:
    """Declare (or, ``passive``, check) each durable fanout exchange, one after another."""
    if not exchanges:
        done()
        return
    ch.exchange_declare(
        exchanges[0],
        exchange_type="fanout",
        durable=True,
        passive=passive,
        callback=lambda _f: declare_exchanges(ch, exchanges[1:], done, passive),
    )


def declare_private_queue(
    ch: Any, exchange: str, done: Callable[[str], None], passive: bool = False
) -> None:
    """Declare ``exchange`` and a fresh private queue bound to it; ``done(queue_name)``."""

    def bind(frame: Any) -> None:
        queue = frame.method.queue  # server-assigned, amq.gen-...
        ch.queue_bind(queue, exchange, callback=lambda _f: done(queue))

    def declare_queue() -> None:
        ch.queue_declare(
            "",
            exclusive=True,
            auto_delete=True,
            arguments=dict(_PRIVATE_QUEUE_ARGUMENTS),
            callback=bind,
        )

    declare_exchanges(ch, [exchange], declare_queue, passive)
