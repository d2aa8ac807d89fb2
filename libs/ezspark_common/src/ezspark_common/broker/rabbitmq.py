"""RabbitMQ implementation of ``Broker``: the only module in the repo that imports pika.

One IO thread per broker runs a pika ``SelectConnection`` ioloop and owns every pika
object; other threads post closures to it with ``IOLoop.add_callback_threadsafe`` (see
``_threaded``), so heartbeats never wait for a handler (pika #1104).  Channels: one in
confirm mode for publishing and broadcasting, one per consumer or subscription (own
``basic_qos``), and a throw-away one per declare / queue_depth / ping, so a 404/406 (which
closes its channel) disturbs nothing else.  The consumer side (channels, deliveries,
settles) is in ``_consuming``.

What is declared is in ``_topology``.  Messages to queues are persistent and
``mandatory`` (through the queue's own exchange when it is ``fronted``); broadcasts go to
a fanout exchange (declared before the first one, ``_exchanges``; only checked when the
broker does not ``declare``), are transient and not mandatory.  Every message carries
the connection's user as ``user_id``.  Refused credentials end the broker at once:
retrying cannot help.  After a lost connection the IO thread reconnects with backoff,
redeclares the queues and exchanges, republishes unconfirmed messages (at least once) and
restarts consumers and subscriptions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import Future
from functools import partial
from typing import Any

import pika
import pika.exceptions
import pika.spec
from pika.adapters.select_connection import IOLoop, SelectConnection
from pika.channel import Channel
from prometheus_client import CollectorRegistry

from ezspark_common.broker._bridge import Backoff, describe, resolve
from ezspark_common.broker._confirms import ConfirmTracker, PendingPublish
from ezspark_common.broker._consuming import ConsumerSet
from ezspark_common.broker._exchanges import ExchangeGate
from ezspark_common.broker._threaded import Consumer, PendingBroadcast, ThreadedBroker
from ezspark_common.broker._topology import declare_exchanges, declare_queues
from ezspark_common.broker.base import BrokerError
from ezspark_common.broker.metrics import broker_metrics
from ezspark_common.wire.messages import dead_letter_queue

_SEQ_HEADER = "ezspark-publish-seq"  # ties a basic.return to the publish it refers to
_CONNECT_GRACE_S = 10.0
_REFUSED = (pika.exceptions.ProbableAuthenticationError, pika.exceptions.AuthenticationError)


class RabbitBroker(ThreadedBroker):
    """A ``Broker`` on RabbitMQ; construction connects (or raises BrokerError)."""

    def __init__(
        self,
        url: str,
        *,
        delivery_limit: int = 5,
        heartbeat: int = 30,
        confirm_window: int = 512,
        connect_timeout: float = 30.0,
        op_timeout: float = 30.0,
        max_outage: float = 300.0,
        registry: CollectorRegistry | None = None,
        fronted: Iterable[str] = (),
        declares: bool = True,
    ) -> None:
        self._ioloop = IOLoop()
        super().__init__(
            self._ioloop.add_callback_threadsafe,
            url=url,
            op_timeout=op_timeout,
            confirm_window=confirm_window,
        )
        self._params = pika.URLParameters(url)
        self._params.heartbeat = heartbeat
        self._params.connection_attempts = 1  # retries are ours, with backoff and logs
        self._delivery_limit = delivery_limit
        # Publishes to these queues go through their own exchange (``_topology``); a broker
        # that ``declares`` nothing leaves the topology to the service that owns it.
        self._fronted, self._declares = frozenset(fronted), declares
        self._user = self._params.credentials.username  # stamped on every message
        self._max_outage = max_outage
        self._metrics = broker_metrics(registry)
        # Everything below is owned by the IO thread.
        self._conn: SelectConnection | None = None
        self._ready = self._closing = self._connected_once = False
        self._pub: Channel | None = None
        self._confirms = ConfirmTracker()
        self._waiting: list[Callable[[], None]] = []
        self._declared: dict[str, None] = {}  # an ordered set
        self._exchanges = ExchangeGate()  # fanout exchanges declared for broadcasts
        self._consumers = self._consumer_set()
        self._backoff = Backoff(connect_timeout)
        self._start(connect_timeout)

    def _consumer_set(self) -> ConsumerSet:
        """The consumer side, which sees the connection only while it is ready."""
        return ConsumerSet(
            connection=lambda: self._conn if self._ready and not self._closing else None,
            alive=lambda: not self._closing and self._conn is not None and self._conn.is_open,
            call_later=self._ioloop.call_later,
            submit=self._bridge.submit,
            delivery_limit=self._delivery_limit,
            passive=not self._declares,
            metrics=self._metrics,
            log=self._log,
        )

    def _start(self, connect_timeout: float) -> None:
        """Start the IO thread and wait for the first connection (or raise BrokerError)."""
        self._bridge.start(self._io_main)
        self._bridge.submit(self._connect)
        try:
            self._call(resolve, "connect", timeout=connect_timeout + _CONNECT_GRACE_S)
        except BrokerError:
            self._shutdown()
            raise

    # ----- public API (any thread) -------------------------------------------------------

    def declare(self, queue: str) -> None:
        """Create the quorum queue and its dead-letter queue if missing."""
        if not self._declares:
            return  # the topology's owner declares it (we may not: no configure permission)

        def op(fut: Future[Any]) -> None:
            self._declared[queue] = None
            self._with_channel(fut, lambda ch, done: self._declare_queues(ch, [queue], done))

        self._call(op, f"declare {queue!r}")

    def queue_depth(self, queue: str) -> int:
        """Ready messages in ``queue`` (passive declare; BrokerError if it does not exist)."""

        def count(ch: Channel, done: Callable[..., None]) -> None:
            ch.queue_declare(queue, passive=True, callback=lambda f: done(f.method.message_count))

        return int(self._call(lambda fut: self._with_channel(fut, count), f"depth of {queue!r}"))

    def delete(self, queue: str) -> None:
        """Delete ``queue`` and its dead-letter queue (tests and ops; not in ``Broker``)."""

        def drop(ch: Channel, done: Callable[..., None]) -> None:
            dead = dead_letter_queue(queue)
            ch.queue_delete(queue, callback=lambda _f: ch.queue_delete(dead, callback=done))

        def op(fut: Future[Any]) -> None:
            self._declared.pop(queue, None)  # so a reconnect does not recreate it
            self._with_channel(fut, drop)

        self._call(op, f"delete {queue!r}")

    def delete_exchange(self, exchange: str) -> None:
        """Delete ``exchange`` (tests and ops; not in ``Broker``)."""

        def op(fut: Future[Any]) -> None:
            self._exchanges.forget(exchange)  # the next broadcast declares it again
            self._with_channel(fut, lambda ch, done: ch.exchange_delete(exchange, callback=done))

        self._call(op, f"delete exchange {exchange!r}")

    def ping(self) -> bool:
        """True if a channel can be opened and closed on RabbitMQ within 5 s."""
        try:
            self._call(
                lambda fut: self._with_channel(fut, lambda _ch, done: done(True)),
                "ping",
                timeout=min(5.0, self._bridge.op_timeout),
            )
        except BrokerError:
            return False
        return True

    def _call(
        self, op: Callable[[Future[Any]], None], what: str, timeout: float | None = None
    ) -> Any:
        """Run ``op(future)`` on the IO thread once connected and wait for the future."""
        return self._bridge.call(
            lambda fut: self._when_ready(lambda: None if fut.done() else op(fut)), what, timeout
        )

    def _io_thread_ended(self) -> None:
        self._ioloop.close()

    # ----- IO thread: connection lifecycle -----------------------------------------------

    def _io_main(self) -> None:
        try:
            self._ioloop.start()
        except Exception as exc:
            self._log.exception("broker IO loop crashed")
            self._bridge.fail(BrokerError(f"broker IO loop crashed: {exc!r}"))

    def _connect(self) -> None:
        if self._closing:
            return
        self._backoff.attempts += 1
        self._conn = SelectConnection(
            self._params,
            on_open_callback=self._on_open,
            on_open_error_callback=self._on_open_error,
            on_close_callback=self._on_closed,
            custom_ioloop=self._ioloop,
        )

    def _on_open(self, conn: SelectConnection) -> None:
        if conn is not self._conn:
            return
        self._log.info("connected to RabbitMQ", attempts=self._backoff.attempts)
        if self._connected_once:
            self._metrics.reconnects.inc()
        self._backoff.connected(self._max_outage)
        # Redeclare on a throw-away channel; the publisher opens whether or not that worked.
        queues, exchanges = list(self._declared), self._exchanges.declared()
        self._with_channel(
            Future(),
            lambda ch, done: self._declare_queues(
                ch, queues, lambda: declare_exchanges(ch, exchanges, done, not self._declares)
            ),
            on_closed=lambda: self._open_publisher(conn),
        )

    def _on_open_error(self, conn: SelectConnection, error: BaseException) -> None:
        if conn is self._conn:
            self._retry_later(error)

    def _on_closed(self, conn: SelectConnection, error: BaseException) -> None:
        if conn is not self._conn:
            return
        self._ready, self._pub = False, None
        self._consumers.connection_lost()
        self._confirms.resend_unconfirmed()
        if not self._closing:
            self._log.warning("connection to RabbitMQ lost", error=describe(error))
            self._backoff.lost()
        self._retry_later(error)

    def _retry_later(self, error: BaseException) -> None:
        if self._closing:
            self._ioloop.stop()
            return
        attempts, delay = self._backoff.attempts, self._backoff.next_delay()
        if isinstance(error, _REFUSED):  # credentials deleted or wrong: retrying cannot help
            delay = None
        if delay is None:
            down = self._backoff.down_for()
            self._log.error("giving up on RabbitMQ", error=describe(error), attempts=attempts)
            message = f"RabbitMQ unreachable for {down:.0f}s ({attempts} attempts)"
            self._bridge.fail(BrokerError(f"{message}: {describe(error)}"))
            self._ioloop.stop()
            return
        self._log.warning(
            "RabbitMQ not reachable, retrying",
            failed_attempts=attempts,
            retry_in_s=round(delay, 2),
            error=describe(error),
        )
        self._ioloop.call_later(delay, self._connect)

    def _open_publisher(self, conn: SelectConnection) -> None:
        current = self._conn
        if self._closing or current is None or current is not conn or not current.is_open:
            return

        def on_open(ch: Channel) -> None:
            ch.add_on_close_callback(self._on_publisher_closed)
            ch.add_on_return_callback(self._on_return)
            self._confirms.new_channel()
            ch.confirm_delivery(self._on_confirm, callback=lambda _f: self._on_ready(ch))

        current.channel(on_open_callback=on_open)

    def _on_ready(self, ch: Channel) -> None:
        self._pub, self._ready, self._connected_once = ch, True, True
        self._flush()
        waiting, self._waiting = self._waiting, []
        for fn in waiting:
            fn()
        self._consumers.resume()

    def _when_ready(self, fn: Callable[[], None]) -> None:
        if self._ready:
            fn()
        else:
            self._waiting.append(fn)

    def _io_close(self) -> None:
        self._closing, self._ready = True, False
        conn = self._conn
        if conn is None or conn.is_closed:
            self._ioloop.stop()
        elif not conn.is_closing:
            conn.close()  # _on_closed (or _on_open_error if still opening) stops the loop

    def _with_channel(
        self,
        fut: Future[Any],
        body: Callable[[Channel, Callable[..., None]], None],
        on_closed: Callable[[], None] | None = None,
    ) -> None:
        """Run ``body(channel, done)`` on a fresh channel; ``done(result)`` resolves ``fut``.

        The channel is closed after ``done``; if RabbitMQ closes it first (404, 406, lost
        connection) ``fut`` fails with the reason.  ``on_closed`` runs after either.
        """

        def on_close(_ch: Channel, reason: BaseException) -> None:
            if not isinstance(reason, pika.exceptions.ChannelClosedByClient):
                self._log.warning("broker channel closed", reason=describe(reason))
            resolve(fut, error=BrokerError(describe(reason)))
            if on_closed is not None:
                on_closed()

        def on_open(ch: Channel) -> None:
            ch.add_on_close_callback(on_close)

            def done(result: Any = None) -> None:
                resolve(fut, result)
                ch.close()

            body(ch, done)

        if self._conn is not None:
            self._conn.channel(on_open_callback=on_open)

    def _declare_queues(self, ch: Channel, queues: list[str], done: Callable[[], None]) -> None:
        declare_queues(ch, queues, self._delivery_limit, done, self._fronted)

    # ----- IO thread: publishing ---------------------------------------------------------

    def _io_publish(self, item: PendingPublish) -> None:
        exchange = item.exchange if isinstance(item, PendingBroadcast) else None
        if exchange is not None and not self._exchanges.is_declared(exchange):
            if self._exchanges.hold(exchange, item):
                self._when_ready(partial(self._declare_exchange, exchange))
            return
        self._confirms.add(item)
        self._flush()

    def _declare_exchange(self, exchange: str) -> None:
        declared: Future[Any] = Future()
        declared.add_done_callback(partial(self._on_exchange_declared, exchange))
        self._with_channel(
            declared,
            lambda ch, done: declare_exchanges(ch, [exchange], done, not self._declares),
        )

    def _on_exchange_declared(self, exchange: str, declared: Future[Any]) -> None:
        error = declared.exception()
        if self._conn is None or not self._conn.is_open:
            error = None  # the connection dropped: _on_open declares it before sending
        for item in self._exchanges.settle(exchange, error):
            self._confirms.add(item)
        self._flush()

    def _flush(self) -> None:
        while self._ready and self._pub is not None and (next_item := self._confirms.take()):
            tag, item = next_item
            exchange = item.exchange if isinstance(item, PendingBroadcast) else None
            # RabbitMQ refuses a user_id other than the connection's: consumers can trust it.
            # Queue messages must outlive a broker restart; broadcasts are only news.
            mode = pika.DeliveryMode.Persistent if exchange is None else pika.DeliveryMode.Transient
            properties = pika.BasicProperties(
                user_id=self._user,
                delivery_mode=mode,
                message_id=item.message_id,
                headers={_SEQ_HEADER: tag},
            )
            try:
                front = item.queue if item.queue in self._fronted else ""
                self._pub.basic_publish(
                    exchange or front, item.queue, item.body, properties, mandatory=exchange is None
                )
            except pika.exceptions.AMQPError as exc:
                self._log.warning("publish deferred", error=str(exc))
                self._confirms.put_back(item)
                return
            self._confirms.sent(tag, item)

    def _on_confirm(self, frame: Any) -> None:
        method = frame.method
        nacked = isinstance(method, pika.spec.Basic.Nack)
        self._confirms.confirm(method.delivery_tag, multiple=method.multiple, nacked=nacked)

    def _on_return(self, _ch: Channel, method: Any, properties: Any, _body: bytes) -> None:
        tag = (properties.headers or {}).get(_SEQ_HEADER)
        if isinstance(tag, int):
            self._confirms.returned(tag, method.reply_text)

    def _on_publisher_closed(self, ch: Channel, reason: BaseException) -> None:
        if ch is not self._pub or self._conn is None or not self._conn.is_open:
            return  # connection-level loss: _on_closed resends
        self._log.error("publish channel closed by RabbitMQ", reason=describe(reason))
        self._pub, self._ready = None, False
        self._confirms.fail_unconfirmed(BrokerError(f"publish channel closed: {reason}"))
        self._open_publisher(self._conn)

    # ----- IO thread: consuming (``_consuming``) -----------------------------------------

    def _io_add_consumer(self, consumer: Consumer) -> None:
        self._consumers.add(consumer)

    def _io_start_consuming(self) -> None:
        self._consumers.start_all()

    def _io_cancel_consumers(self, finished: Future[Any]) -> None:
        self._consumers.cancel(finished)
