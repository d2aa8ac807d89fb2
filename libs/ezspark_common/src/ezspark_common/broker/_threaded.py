"""The thread model of a network broker, independent of the wire library.

Threads: one IO thread owns the client library's connection and never runs user code,
so heartbeats are always answered.  Callers (any thread) hand it closures through an
``IOBridge`` and wait on futures.  Each consumer has a pool of ``prefetch`` handler
threads; a handler's ``ack``/``reject`` is posted back to the IO thread.

``ThreadedBroker`` implements the caller-facing half of ``Broker``: publish windows,
broadcasts, consumer and subscriber pools, ``run``/``stop`` and the shutdown order
(cancel consumers so nothing new arrives, let running handlers finish since their acks
still need the connection, then close the connection).  A subclass supplies the ``_io_*``
hooks, which run on the IO thread and are the only place the client library is touched.

If the connection cannot be restored within the subclass's outage budget, the bridge
fails: pending calls raise ``BrokerError``, and so does ``run()``, so the service exits
and its supervisor restarts it.
"""

from __future__ import annotations

import time
from abc import abstractmethod
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from threading import BoundedSemaphore, Lock
from typing import Any

from ezspark_common.broker._bridge import IOBridge, Post, redact
from ezspark_common.broker._confirms import PendingPublish
from ezspark_common.broker.base import (
    SUBSCRIBER_PREFETCH,
    Broker,
    BrokerError,
    Handler,
    check_prefetch,
    log,
)

_SHUTDOWN_WAIT_S = 10.0
_IO_POLL_S = 0.05  # how often a shutdown wait checks that the IO thread still runs


@dataclass(eq=False)
class PendingBroadcast(PendingPublish):
    """A broadcast on its way: to the fanout ``exchange`` (``queue`` is the routing key "")."""

    exchange: str = ""


@dataclass(eq=False)
class Consumer:
    """A registered handler and, on the IO thread, the channel currently serving it.

    A subscription has ``exchange`` set; its ``queue`` is the exchange name too (what
    ``Delivery.queue``, logs and metrics show), while the private queue it consumes is
    declared, server-named, on every (re)start of its channel.
    """

    queue: str
    handler: Handler
    prefetch: int
    executor: ThreadPoolExecutor
    exchange: str | None = None
    channel: Any = None
    tag: str | None = None
    active: bool = False  # a channel is open or being opened


class ThreadedBroker(Broker):
    """Caller-side ``Broker`` logic; subclasses implement the IO-thread hooks."""

    def __init__(self, post: Post, *, url: str, op_timeout: float, confirm_window: int) -> None:
        self._bridge = IOBridge(post, op_timeout=op_timeout)
        self._confirm_window = confirm_window
        self._lock = Lock()  # guards _running and _executors
        self._running = False
        self._executors: list[ThreadPoolExecutor] = []
        self._log: Any = log.bind(broker=redact(url))

    def publish(self, queue: str, body: bytes, *, message_id: str | None = None) -> None:
        """Publish one persistent message and wait for its confirm."""
        self.publish_many(queue, [(body, message_id)])

    def publish_many(self, queue: str, items: Iterable[tuple[bytes, str | None]]) -> None:
        """Publish messages with at most ``confirm_window`` unconfirmed at once."""
        window = BoundedSemaphore(self._confirm_window)
        futures: list[Future[Any]] = []
        what = f"publish to {queue!r}"
        try:
            for body, message_id in items:
                if not window.acquire(timeout=self._bridge.op_timeout):
                    raise BrokerError(f"{what}: no confirm within {self._bridge.op_timeout:.0f}s")
                fut = self._bridge.new_future()
                fut.add_done_callback(lambda _f: window.release())
                futures.append(fut)
                item = PendingPublish(queue, bytes(body), message_id, fut)
                self._bridge.submit(partial(self._io_publish, item))
            for fut in futures:
                self._bridge.wait(fut, what)
        except BaseException:
            # Unsent messages are skipped; sent ones may still arrive (at least once).
            for fut in futures:
                fut.cancel()
            raise

    def broadcast(self, exchange: str, body: bytes) -> None:
        """Publish transiently to the fanout ``exchange`` and wait for the confirm."""
        fut = self._bridge.new_future()
        item = PendingBroadcast("", bytes(body), None, fut, exchange=exchange)
        try:
            self._bridge.submit(partial(self._io_publish, item))
            self._bridge.wait(fut, f"broadcast to {exchange!r}")
        except BaseException:
            fut.cancel()  # so the IO thread skips it if it has not been sent yet
            raise

    def consume(self, queue: str, handler: Handler, *, prefetch: int = 1) -> None:
        """Register ``handler``; deliveries flow while ``run()`` runs."""
        check_prefetch(prefetch)
        self._add_consumer(queue, handler, prefetch, workers=prefetch)

    def subscribe(self, exchange: str, handler: Handler) -> None:
        """Register ``handler`` for broadcasts to ``exchange``; they flow while ``run()`` runs."""
        self._add_consumer(exchange, handler, SUBSCRIBER_PREFETCH, workers=1, exchange=exchange)

    def _add_consumer(
        self,
        queue: str,
        handler: Handler,
        prefetch: int,
        *,
        workers: int,
        exchange: str | None = None,
    ) -> None:
        if self._bridge.closed:
            raise BrokerError("broker is stopped")
        executor = ThreadPoolExecutor(workers, thread_name_prefix=f"ezspark-handler-{queue}")
        with self._lock:
            self._executors.append(executor)
        consumer = Consumer(queue, handler, prefetch, executor, exchange=exchange)
        self._bridge.submit(partial(self._io_add_consumer, consumer))

    def run(self) -> None:
        """Consume until ``stop()``; raise BrokerError if the broker was lost for good."""
        with self._lock:
            if self._bridge.closed or self._bridge.stop_event.is_set():
                raise BrokerError("broker is stopped")
            if self._running:
                raise BrokerError("run() is already running")
            self._running = True
        try:
            self._bridge.submit(self._io_start_consuming)
            self._bridge.stop_event.wait()
        finally:
            self._shutdown()
        if self._bridge.failure is not None:
            raise BrokerError(str(self._bridge.failure)) from self._bridge.failure

    def stop(self) -> None:
        """Make ``run()`` return after in-flight handlers finish; close the connection."""
        with self._lock:
            self._bridge.stop_event.set()
            running = self._running
        if not running:
            self._shutdown()

    def _shutdown(self) -> None:
        """Cancel consumers, let running handlers finish, close the connection, end the thread."""
        if not self._bridge.close():
            return
        with self._lock:
            executors = list(self._executors)
        cancelled: Future[Any] = Future()
        posted = self._post_quietly(partial(self._io_cancel_consumers, cancelled))
        if posted and not self._await_io(cancelled) and self._bridge.alive:
            self._log.warning("consumers not cancelled in time")
        for executor in executors:
            # Queued, not yet started deliveries stay unacked: the broker redelivers them.
            executor.shutdown(wait=True, cancel_futures=True)
        self._post_quietly(self._io_close)
        if self._bridge.join(_SHUTDOWN_WAIT_S):
            self._io_thread_ended()
        else:
            self._log.warning("broker IO thread did not stop")
        self._bridge.fail_pending()
        self._log.info("broker stopped")

    def _await_io(self, fut: Future[Any]) -> bool:
        """Wait up to ``_SHUTDOWN_WAIT_S`` for ``fut``, but only while the IO thread lives:
        a loop already told to stop (the broker given up on) may end without running what
        was just posted, and waiting out the whole timeout then only delays the caller."""
        deadline = time.monotonic() + _SHUTDOWN_WAIT_S
        while True:
            try:
                fut.result(timeout=_IO_POLL_S)
                return True
            except TimeoutError:
                if not self._bridge.alive or time.monotonic() >= deadline:
                    return fut.done()

    def _post_quietly(self, fn: Any) -> bool:
        """Post to the IO thread if it still runs; False if it is gone."""
        try:
            self._bridge.submit(fn)
        except BrokerError:
            return False
        return True

    # ----- hooks, all called on the IO thread except _io_thread_ended ---------------------

    @abstractmethod
    def _io_publish(self, item: PendingPublish) -> None:
        """Send ``item`` (now or once connected); resolve its future on confirm.

        A ``PendingBroadcast`` goes to its exchange (declared first if need be), transient
        and not mandatory; anything else to its queue, persistent and mandatory.
        """

    @abstractmethod
    def _io_add_consumer(self, consumer: Consumer) -> None:
        """Remember ``consumer``; start it if consuming has started."""

    @abstractmethod
    def _io_start_consuming(self) -> None:
        """Start every registered consumer (``run()`` began)."""

    @abstractmethod
    def _io_cancel_consumers(self, finished: Future[Any]) -> None:
        """Stop deliveries, keeping channels open for acks; resolve ``finished`` when done."""

    @abstractmethod
    def _io_close(self) -> None:
        """Close the connection and end the IO loop."""

    @abstractmethod
    def _io_thread_ended(self) -> None:
        """Release what the IO loop held (called on the stopping thread)."""
