"""An in-process ``Broker`` for unit tests of pure logic: same contract, no network.

It honours the parts of the contract that logic depends on: publishing to an undeclared
queue fails, ``prefetch`` bounds unsettled deliveries per consumer, ``reject(requeue=True)``
puts the message back at the head of its queue (as RabbitMQ quorum queues do), and a
message rejected without requeue or requeued past ``delivery_limit`` goes to
``<queue>.dead``.  Nothing is persisted.  ``broadcast`` appends to the private queue of
every current subscription of the exchange (bounded like RabbitMQ's, oldest dropped), so
only broadcasts made after ``subscribe`` reach a handler.

Besides ``run()`` (handlers on worker threads, like the real broker) it offers ``drain()``,
which delivers synchronously on the calling thread until nothing is deliverable: handy
for deterministic tests.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry

from ezspark_common.broker.base import (
    SUBSCRIBER_PREFETCH,
    SUBSCRIBER_QUEUE_LIMIT,
    Broker,
    BrokerError,
    Delivery,
    Handler,
    check_prefetch,
    dead_letters,
    run_handler,
)
from ezspark_common.broker.metrics import broker_metrics
from ezspark_common.wire.messages import dead_letter_queue


@dataclass(eq=False)
class _Message:
    body: bytes
    message_id: str | None
    deliveries: int = 0


@dataclass(eq=False)
class _Consumer:
    queue: str  # for a subscription, the exchange
    handler: Handler
    prefetch: int
    source: deque[_Message] = field(repr=False)  # the queue, or a subscription's own queue
    subscription: bool = False  # then one handler thread, no retry, no dead-letter queue
    unsettled: int = 0
    executor: ThreadPoolExecutor | None = field(default=None, repr=False)


class InMemoryBroker(Broker):
    """A thread-safe in-process broker with RabbitMQ-like delivery-limit semantics."""

    def __init__(
        self,
        *,
        delivery_limit: int = 5,
        registry: CollectorRegistry | None = None,
        user: str = "memory",
        fronted: Iterable[str] = (),
        declares: bool = True,
    ) -> None:
        # ``fronted`` and ``declares`` shape RabbitMQ's exchanges and permissions; one
        # process has neither, so they are accepted and change nothing here.
        del fronted, declares
        self._delivery_limit = delivery_limit
        self._user = user  # every delivery's user_id: one process, one trusted publisher
        self._metrics = broker_metrics(registry)
        self._cond = threading.Condition()
        self._queues: dict[str, deque[_Message]] = {}
        self._consumers: list[_Consumer] = []
        self._running = False
        self._stopped = False

    def declare(self, queue: str) -> None:
        """Create ``queue`` and ``<queue>.dead`` if missing."""
        with self._cond:
            self._check_open()
            self._queues.setdefault(queue, deque())
            self._queues.setdefault(dead_letter_queue(queue), deque())

    def publish(self, queue: str, body: bytes, *, message_id: str | None = None) -> None:
        """Append one message to ``queue``."""
        self.publish_many(queue, [(body, message_id)])

    def publish_many(self, queue: str, items: Iterable[tuple[bytes, str | None]]) -> None:
        """Append messages to ``queue`` (all or none)."""
        batch = [_Message(bytes(body), message_id) for body, message_id in items]
        with self._cond:
            self._check_open()
            self._queue(queue).extend(batch)
            self._cond.notify_all()

    def consume(self, queue: str, handler: Handler, *, prefetch: int = 1) -> None:
        """Register ``handler`` for ``queue``."""
        check_prefetch(prefetch)
        with self._cond:
            self._check_open()
            self._consumers.append(_Consumer(queue, handler, prefetch, self._queue(queue)))
            self._cond.notify_all()

    def broadcast(self, exchange: str, body: bytes) -> None:
        """Append ``body`` to the private queue of every subscription of ``exchange``."""
        with self._cond:
            self._check_open()
            for consumer in self._consumers:
                if consumer.subscription and consumer.queue == exchange:
                    consumer.source.append(_Message(bytes(body), None))
            self._cond.notify_all()

    def subscribe(self, exchange: str, handler: Handler) -> None:
        """Register ``handler`` for broadcasts to ``exchange`` made from now on."""
        private: deque[_Message] = deque(maxlen=SUBSCRIBER_QUEUE_LIMIT)  # drops the oldest
        with self._cond:
            self._check_open()
            self._consumers.append(
                _Consumer(exchange, handler, SUBSCRIBER_PREFETCH, private, subscription=True)
            )
            self._cond.notify_all()

    def queue_depth(self, queue: str) -> int:
        """Messages waiting in ``queue`` (not counting unsettled deliveries)."""
        with self._cond:
            return len(self._queue(queue))

    def ping(self) -> bool:
        """True until the broker is stopped."""
        return not self._stopped

    def run(self) -> None:
        """Dispatch deliveries to handler threads until ``stop()``."""
        with self._cond:
            self._check_open()
            if self._running:
                raise BrokerError("run() is already running")
            self._running = True
        try:
            while (picked := self._next(block=True)) is not None:
                consumer, delivery = picked
                if consumer.executor is None:
                    workers = 1 if consumer.subscription else consumer.prefetch
                    consumer.executor = ThreadPoolExecutor(
                        workers, thread_name_prefix=f"ezspark-handler-{consumer.queue}"
                    )
                consumer.executor.submit(run_handler, consumer.handler, delivery)
        finally:
            for consumer in self._consumers:
                if consumer.executor is not None:
                    consumer.executor.shutdown(wait=True)

    def drain(self, max_deliveries: int = 100_000) -> int:
        """Deliver on this thread until nothing is deliverable; return how many were."""
        delivered = 0
        while delivered < max_deliveries and (picked := self._next(block=False)) is not None:
            consumer, delivery = picked
            run_handler(consumer.handler, delivery)
            delivered += 1
        return delivered

    def stop(self) -> None:
        """End ``run()``; later publishes raise BrokerError."""
        with self._cond:
            self._stopped = True
            self._cond.notify_all()

    def messages(self, queue: str) -> list[bytes]:
        """The bodies waiting in ``queue``, oldest first (for assertions in tests)."""
        with self._cond:
            return [m.body for m in self._queue(queue)]

    def _check_open(self) -> None:
        if self._stopped:
            raise BrokerError("broker is stopped")

    def _queue(self, name: str) -> deque[_Message]:
        try:
            return self._queues[name]
        except KeyError:
            raise BrokerError(f"queue {name!r} was not declared") from None

    def _next(self, *, block: bool) -> tuple[_Consumer, Delivery] | None:
        """Take the next deliverable (consumer, delivery); None when stopped or idle."""
        with self._cond:
            while not self._stopped:
                for index, consumer in enumerate(self._consumers):
                    pending = consumer.source
                    if pending and consumer.unsettled < consumer.prefetch:
                        # Rotate so consumers of the same queue take turns.
                        self._consumers.append(self._consumers.pop(index))
                        return consumer, self._deliver(consumer, pending.popleft())
                if not block:
                    return None
                self._cond.wait()
            return None

    def _deliver(self, consumer: _Consumer, message: _Message) -> Delivery:
        message.deliveries += 1
        consumer.unsettled += 1
        final = consumer.subscription or message.deliveries > self._delivery_limit

        def settle(requeue: bool | None) -> None:
            with self._cond:
                consumer.unsettled -= 1
                if consumer.subscription:
                    pass  # acked or rejected, a broadcast is done: no retry, no dead letter
                elif dead_letters(requeue, final):
                    self._metrics.poison_messages.labels(queue=consumer.queue).inc()
                    # A dead-letter queue has no dead-letter queue of its own: drop, as RabbitMQ.
                    dead = self._queues.get(dead_letter_queue(consumer.queue))
                    if dead is not None:
                        dead.append(_Message(message.body, message.message_id))
                elif requeue:
                    consumer.source.appendleft(message)
                self._cond.notify_all()

        return Delivery(
            message.body,
            queue=consumer.queue,
            message_id=message.message_id,
            delivery_count=message.deliveries,
            redelivered=message.deliveries > 1,
            final_attempt=final,
            settle=settle,
            user_id=self._user,
        )
