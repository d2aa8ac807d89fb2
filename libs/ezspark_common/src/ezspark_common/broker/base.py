"""The broker interface every EzSpark service uses; no service ever touches pika.

Lifecycle::

    broker = connect(settings.broker_url)       # connected (or BrokerError)
    broker.declare(TASKS_QUEUE)                  # idempotent, call for every queue you use
    broker.consume(TASKS_QUEUE, handle, prefetch=2)
    broker.run()                                 # blocks; another thread calls broker.stop()

* ``declare(queue)`` creates a durable queue whose messages are dead-lettered to
  ``dead_letter_queue(queue)`` once rejected without requeue or once redelivered more
  than ``delivery_limit`` times (a message is delivered at most ``delivery_limit + 1``
  times).
* ``publish`` / ``publish_many`` return only once the broker has confirmed every message
  (persisted); anything else raises ``BrokerError``.  Publishing to a queue that was never
  declared raises too, instead of silently dropping the message.  Delivery is at least
  once: after a reconnect a message may arrive twice, so consumers dedupe on
  ``message_id`` where it matters.
* ``consume`` registers a handler; deliveries start when ``run()`` starts (or at once if
  it is already running).  Handlers run on worker threads (at most ``prefetch`` at a time
  per consumer), never on the connection thread, so a slow handler cannot starve
  heartbeats.  A handler settles its delivery with ``ack()`` or ``reject(requeue)``, from
  any thread and possibly later; if it raises before settling, the delivery is rejected
  with requeue (so it counts against the delivery limit).
* ``broadcast(exchange, body)`` / ``subscribe(exchange, handler)`` are publish/subscribe
  over a durable fanout exchange (declared if missing): every subscriber gets every
  message broadcast after it subscribed; a broadcast with no subscriber is dropped, not an
  error.  Broadcasts are transient (not persisted) but still confirmed, and are meant for
  periodic announcements: what is broadcast while a subscriber is disconnected is lost.
  Each subscription has a private queue (RabbitMQ: server-named, exclusive, auto-delete,
  classic, at most ``SUBSCRIBER_QUEUE_LIMIT`` messages, oldest dropped first) that is
  declared and bound again after a reconnect.  Its handler runs on one worker thread, one
  delivery at a time, with up to ``SUBSCRIBER_PREFETCH`` unsettled; deliveries start with
  ``run()`` like ``consume``.  ``Delivery.queue`` is the exchange name.  There is no
  dead-letter queue and no retry: ``final_attempt`` is always True, and a reject (with or
  without requeue, or a raising handler) drops the message.
* ``stop()`` (thread-safe, idempotent) makes ``run()`` stop consuming, wait for running
  handlers, close the connection and return.  Without ``run()``, ``stop()`` closes the
  broker itself.  A stopped broker cannot be restarted.

Publishing and broadcasting are safe from any thread, including handlers.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Self

import structlog

log = structlog.get_logger("ezspark.broker")


class BrokerError(RuntimeError):
    """The broker could not do what was asked (unreachable, not confirmed, stopped, ...)."""


# ``settle(requeue)``: None acks, True/False rejects with/without requeue.
SettleFn = Callable[[bool | None], None]


class Delivery:
    """One message handed to a handler; settle it exactly once with ``ack`` or ``reject``."""

    __slots__ = (
        "_lock",
        "_settle",
        "_settled",
        "body",
        "delivery_count",
        "final_attempt",
        "message_id",
        "queue",
        "redelivered",
        "user_id",
    )

    def __init__(
        self,
        body: bytes,
        *,
        queue: str,
        message_id: str | None,
        delivery_count: int,
        redelivered: bool,
        final_attempt: bool,
        settle: SettleFn,
        user_id: str | None = None,
    ) -> None:
        self.body = body
        self.queue = queue
        self.message_id = message_id
        # 1 on the first delivery, 2 on the first redelivery, ...
        self.delivery_count = delivery_count
        self.redelivered = redelivered
        # True when reject(requeue=True) would dead-letter the message instead.
        self.final_attempt = final_attempt
        # The broker user that published it, as RabbitMQ validated it (None: not stated,
        # so nothing can be attributed to anyone).
        self.user_id = user_id
        self._settle = settle
        self._settled = False
        self._lock = threading.Lock()

    @property
    def settled(self) -> bool:
        """Whether ack/reject has already been called."""
        return self._settled

    def ack(self) -> None:
        """Acknowledge: the message is done and removed. Safe from any thread."""
        self._finish(None)

    def reject(self, requeue: bool) -> None:
        """Give the message back (``requeue``) or dead-letter it. Safe from any thread."""
        self._finish(requeue)

    def _finish(self, requeue: bool | None) -> None:
        with self._lock:
            if self._settled:
                # A second settle would be a protocol error on the channel; ignore it.
                log.debug("delivery already settled", queue=self.queue, message_id=self.message_id)
                return
            self._settled = True
        self._settle(requeue)

    def __repr__(self) -> str:
        return (
            f"Delivery(queue={self.queue!r}, message_id={self.message_id!r}, "
            f"delivery_count={self.delivery_count}, bytes={len(self.body)})"
        )


Handler = Callable[[Delivery], None]

# A subscription's private queue: how many unsettled deliveries it hands out at once, and
# how many messages it holds before dropping the oldest (a stalled subscriber stays bounded).
SUBSCRIBER_PREFETCH = 16
SUBSCRIBER_QUEUE_LIMIT = 10_000


def run_handler(handler: Handler, delivery: Delivery) -> None:
    """Call a handler; if it raises before settling, requeue the delivery (counts an attempt)."""
    try:
        handler(delivery)
    except Exception:
        log.exception(
            "handler failed",
            queue=delivery.queue,
            message_id=delivery.message_id,
            delivery_count=delivery.delivery_count,
        )
        if not delivery.settled:
            delivery.reject(requeue=True)


def dead_letters(requeue: bool | None, final_attempt: bool) -> bool:
    """Whether settling this way sends the message to the dead-letter queue."""
    return requeue is False or (requeue is True and final_attempt)


class Broker(ABC):
    """A message broker: durable queues, confirmed publishes, threaded consumers, fanout."""

    @abstractmethod
    def declare(self, queue: str) -> None:
        """Create ``queue`` and its dead-letter queue if missing (idempotent)."""

    @abstractmethod
    def publish(self, queue: str, body: bytes, *, message_id: str | None = None) -> None:
        """Publish one persistent message; return once the broker confirmed it."""

    @abstractmethod
    def publish_many(self, queue: str, items: Iterable[tuple[bytes, str | None]]) -> None:
        """Publish ``(body, message_id)`` pairs with windowed confirms; return when all are."""

    @abstractmethod
    def consume(self, queue: str, handler: Handler, *, prefetch: int = 1) -> None:
        """Call ``handler`` on a worker thread for each delivery, ``prefetch`` at a time."""

    @abstractmethod
    def broadcast(self, exchange: str, body: bytes) -> None:
        """Publish ``body`` to every current subscriber of ``exchange`` (a durable fanout
        exchange, declared if missing). Transient (not persisted), confirmed by the broker;
        with no subscriber the message is simply dropped (not an error)."""

    @abstractmethod
    def subscribe(self, exchange: str, handler: Handler) -> None:
        """Call ``handler`` (on a worker thread, one at a time) for every message broadcast to
        ``exchange`` from now on. Backed by a private, exclusive, auto-delete, server-named
        classic queue bound to the fanout exchange (so several subscribers each get every
        message). Messages broadcast while not connected are lost (announcements are
        periodic). Deliveries start when ``run()`` runs (or at once if it already runs), like
        ``consume``; after a reconnect the private queue is declared and bound again."""

    @abstractmethod
    def run(self) -> None:
        """Deliver to the registered handlers until ``stop()``; raise BrokerError if lost."""

    @abstractmethod
    def stop(self) -> None:
        """End ``run()`` (or close an idle broker). Thread-safe and idempotent."""

    @abstractmethod
    def queue_depth(self, queue: str) -> int:
        """How many messages wait in ``queue`` (ready, not counting unacknowledged ones)."""

    @abstractmethod
    def ping(self) -> bool:
        """Whether the broker is reachable right now (for health checks; never raises)."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def check_prefetch(prefetch: int) -> None:
    """Refuse a prefetch that would never deliver anything."""
    if prefetch < 1:
        raise ValueError(f"prefetch must be >= 1, got {prefetch}")
