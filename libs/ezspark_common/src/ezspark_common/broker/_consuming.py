"""The consuming side of ``RabbitBroker``: its consumers and subscriptions; no pika here.

Used only on the IO thread.  Channels and frames are typed ``Any`` (only ``rabbitmq``
imports pika); what this needs of the broker's connection comes in as callables.

Each consumer or subscription has a channel of its own, with its own ``basic_qos``.  A
subscription's channel declares its exchange and a fresh private queue each time it
starts.  A consumer channel that RabbitMQ closes (or whose consumer it cancels: the queue
was deleted) is reopened after ``_CONSUMER_RETRY_S`` while the connection stays up; after
a lost connection the broker calls ``connection_lost`` and, once ready again, ``resume``.
A settle for a delivery of a dead channel is dropped: RabbitMQ has already requeued it.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from functools import partial
from typing import Any

from ezspark_common.broker._bridge import describe, resolve
from ezspark_common.broker._threaded import Consumer
from ezspark_common.broker._topology import declare_private_queue
from ezspark_common.broker.base import BrokerError, Delivery, dead_letters, run_handler
from ezspark_common.broker.metrics import BrokerMetrics
from ezspark_common.wire.messages import is_results_queue

_CONSUMER_RETRY_S = 1.0


class ConsumerSet:
    """The registered consumers, their channels and whether deliveries flow."""

    def __init__(
        self,
        *,
        connection: Callable[[], Any],
        alive: Callable[[], bool],
        call_later: Callable[[float, Callable[[], None]], object],
        submit: Callable[[Callable[[], None]], None],
        delivery_limit: int,
        passive: bool,
        metrics: BrokerMetrics,
        log: Any,
    ) -> None:
        """``connection()``: the connection to open channels on now, or None (the broker is
        not ready, or closing); ``alive()``: the connection is open and the broker not
        closing, so a closed channel is worth reopening.  ``submit`` posts to the IO thread
        (BrokerError once it is gone); ``passive`` only checks a subscription's exchange."""
        self._connection, self._alive = connection, alive
        self._call_later, self._submit = call_later, submit
        self._delivery_limit, self._passive = delivery_limit, passive
        self._metrics, self._log = metrics, log
        self._consumers: list[Consumer] = []
        self._consuming = False

    def add(self, consumer: Consumer) -> None:
        """Remember ``consumer``; start it if consuming has started."""
        self._consumers.append(consumer)
        if self._consuming:
            self._start(consumer)

    def start_all(self) -> None:
        """Start consuming: open a channel for every consumer."""
        self._consuming = True
        for consumer in self._consumers:
            self._start(consumer)

    def resume(self) -> None:
        """The broker is ready (again): restart the consumers if consuming."""
        if self._consuming:
            for consumer in self._consumers:
                self._start(consumer)

    def connection_lost(self) -> None:
        """Every channel died with the connection."""
        for consumer in self._consumers:
            consumer.channel, consumer.tag, consumer.active = None, None, False

    def cancel(self, finished: Future[Any]) -> None:
        """Stop deliveries (basic.cancel) but keep channels open so handlers can still ack."""
        self._consuming = False
        remaining = [c for c in self._consumers if c.tag is not None and c.channel is not None]

        def cancelled(consumer: Consumer) -> None:
            remaining.remove(consumer)
            if not remaining:
                resolve(finished)

        if not remaining:
            resolve(finished)
        for consumer in list(remaining):
            channel, tag = consumer.channel, consumer.tag
            if channel is None or not channel.is_open:
                cancelled(consumer)
            else:
                channel.basic_cancel(tag, callback=lambda _f, c=consumer: cancelled(c))

    def _start(self, consumer: Consumer) -> None:
        if consumer.active:
            return
        conn = self._connection()
        if conn is None:
            return
        consumer.active = True

        def on_open(ch: Any) -> None:
            consumer.channel = ch
            ch.add_on_close_callback(partial(self._on_closed, consumer))
            ch.add_on_cancel_callback(lambda _f: self._on_cancelled(consumer, ch))
            ch.basic_qos(prefetch_count=consumer.prefetch, callback=lambda _f: on_qos(ch))

        def on_qos(ch: Any) -> None:
            exchange = consumer.exchange
            if exchange is None:
                self._basic_consume(consumer, ch, consumer.queue)
            else:  # a subscription: a fresh private queue on every (re)start
                declare_private_queue(
                    ch, exchange, partial(self._basic_consume, consumer, ch), self._passive
                )

        conn.channel(on_open_callback=on_open)

    def _basic_consume(self, consumer: Consumer, ch: Any, queue: str) -> None:
        if not self._consuming:  # stop() came while the channel was opening
            ch.close()
            return
        consumer.tag = ch.basic_consume(queue, partial(self._on_message, consumer))
        if consumer.exchange is None:
            self._log.info("consuming", queue=queue, prefetch=consumer.prefetch)
        else:
            self._log.info("subscribed", exchange=consumer.exchange, queue=queue)

    def _on_cancelled(self, consumer: Consumer, ch: Any) -> None:
        # RabbitMQ cancels consumers of a deleted queue; reopen (and complain) until it is back.
        self._log.warning("RabbitMQ cancelled consumer", queue=consumer.queue)
        if ch.is_open:
            ch.close()

    def _on_closed(self, consumer: Consumer, ch: Any, reason: BaseException) -> None:
        if consumer.channel is not ch and consumer.channel is not None:
            return
        consumer.channel, consumer.tag, consumer.active = None, None, False
        if not self._consuming or not self._alive():
            return  # shutting down, or resume() re-registers after the reconnect
        self._log.warning("consumer channel closed", queue=consumer.queue, reason=describe(reason))
        self._call_later(_CONSUMER_RETRY_S, partial(self._start, consumer))

    def _on_message(
        self, consumer: Consumer, ch: Any, method: Any, properties: Any, body: bytes
    ) -> None:
        previous = (properties.headers or {}).get("x-delivery-count", 0)
        count = (previous if isinstance(previous, int) else 0) + 1
        if is_results_queue(consumer.queue) and method.redelivered:
            count = self._delivery_limit + 1  # classic: no count kept, one retry only
        subscription = consumer.exchange is not None
        final = subscription or count > self._delivery_limit  # subscriptions never retry
        delivery = Delivery(
            body,
            queue=consumer.queue,
            message_id=properties.message_id,
            delivery_count=count,
            redelivered=bool(method.redelivered),
            final_attempt=final,
            user_id=properties.user_id,
            settle=partial(
                self._settle, ch, method.delivery_tag, consumer.queue, final, subscription
            ),
        )
        try:
            consumer.executor.submit(run_handler, consumer.handler, delivery)
        except RuntimeError:  # shutting down: leave it unacked, RabbitMQ redelivers it
            self._log.debug("delivery arrived during shutdown", queue=consumer.queue)

    def _settle(
        self,
        ch: Any,
        tag: int,
        queue: str,
        final: bool,
        subscription: bool,
        requeue: bool | None,
    ) -> None:
        """Ack/reject from any thread; the channel call itself happens on the IO thread.

        A subscription's reject drops the broadcast: no requeue (a classic queue has no
        delivery limit), no dead-letter queue, no poison count.  A results queue (classic
        too) dead-letters on its final attempt instead of requeueing.
        """

        def apply() -> None:
            if not ch.is_open:
                self._log.info("settle dropped, channel gone; RabbitMQ redelivers", queue=queue)
                return
            if requeue is None:
                ch.basic_ack(tag)
            else:
                # Quorum queues dead-letter a final requeue themselves (delivery limit); a
                # classic results queue keeps no count, so its final attempt is rejected.
                last = final and is_results_queue(queue)
                ch.basic_reject(tag, requeue=requeue and not subscription and not last)
            if not subscription and dead_letters(requeue, final):
                self._metrics.poison_messages.labels(queue=queue).inc()

        try:
            self._submit(apply)
        except BrokerError:
            self._log.warning("settle after broker stopped; RabbitMQ redelivers", queue=queue)
