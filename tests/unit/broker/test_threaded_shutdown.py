"""Broker shutdown does not wait for an IO thread that has already ended."""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future
from typing import Any

from ezspark_common.broker._threaded import ThreadedBroker


class _StoppingLoop(ThreadedBroker):
    """An IO 'loop' already told to stop: it drops what is posted, then its thread ends,
    as pika's ioloop does after the broker was given up on."""

    def __init__(self) -> None:
        self.release = threading.Event()
        super().__init__(lambda _fn: None, url="amqp://x", op_timeout=1.0, confirm_window=1)
        self._bridge.start(lambda: self.release.wait(5))

    def declare(self, queue: str) -> None:
        raise AssertionError("not used")

    def queue_depth(self, queue: str) -> int:
        raise AssertionError("not used")

    def ping(self) -> bool:
        raise AssertionError("not used")

    def _io_publish(self, item: Any) -> None:
        raise AssertionError("not used")

    def _io_add_consumer(self, consumer: Any) -> None:
        raise AssertionError("not used")

    def _io_start_consuming(self) -> None:
        raise AssertionError("not used")

    def _io_cancel_consumers(self, finished: Future[Any]) -> None:
        raise AssertionError("dropped, never run")

    def _io_close(self) -> None:
        raise AssertionError("dropped, never run")

    def _io_thread_ended(self) -> None:
        pass


def test_shutdown_returns_once_the_io_thread_ends_without_running_the_cancel() -> None:
    """The posted cancel is never run; shutdown returns when the thread ends, not after 10 s."""
    broker = _StoppingLoop()
    threading.Timer(0.2, broker.release.set).start()  # the loop finishes its last turn
    start = time.monotonic()
    broker.stop()
    assert time.monotonic() - start < 5  # the fixed wait was 10 s; here about 0.2 s
