"""Cross-thread plumbing for an adapter whose client library lives on one IO thread.

Callers hand closures to the IO thread through ``post`` (for pika, the ioloop's
``add_callback_threadsafe``) and wait on ``concurrent.futures.Future`` objects.  The bridge
tracks every pending future, so a stop or a fatal error fails all waiters at once instead
of leaving each to time out.  It knows nothing about AMQP.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import numpy as np

from ezspark_common.broker.base import BrokerError

Post = Callable[[Callable[[], None]], None]


def resolve(fut: Future[Any], result: Any = None, error: BaseException | None = None) -> None:
    """Complete ``fut`` unless its waiter gave up (cancelled) or it is already complete."""
    try:
        if error is None:
            fut.set_result(result)
        else:
            fut.set_exception(error)
    except InvalidStateError:
        pass


def redact(url: str) -> str:
    """The URL without its password, for logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def describe(error: BaseException) -> str:
    """A readable one-line reason (some pika errors have an empty ``str``)."""
    return str(error) or repr(error)


class Backoff:
    """Reconnect delays: 0.5 s doubling up to 5 s, until the outage exceeds ``budget`` s.

    Each delay is scaled by a random factor in [0.5, 1): after a broker restart, many
    evaluators that lost it at the same instant spread their reconnects instead of
    arriving together at every step.
    """

    FIRST_S = 0.5
    MAX_S = 5.0  # short enough to notice a restarted broker quickly, long enough to not spin
    JITTER = 0.5  # the lowest factor a delay is scaled by

    def __init__(self, budget: float, rng: np.random.Generator | None = None) -> None:
        self.budget = budget
        self.attempts = 0
        self.down_since = time.monotonic()
        # Timing only, never training results: OS entropy unless a test passes a seeded one.
        self._rng = rng if rng is not None else np.random.default_rng()

    def down_for(self) -> float:
        """Seconds since the connection was lost (or since the first attempt)."""
        return time.monotonic() - self.down_since

    def next_delay(self) -> float | None:
        """Seconds to wait before the next attempt, or None to give up."""
        down = self.down_for()
        if down >= self.budget:
            return None
        delay = min(self.FIRST_S * 2.0 ** max(self.attempts - 1, 0), self.MAX_S)
        delay *= self._rng.uniform(self.JITTER, 1.0)
        return max(0.05, min(delay, self.budget - down))

    def connected(self, budget: float) -> None:
        """Reset after a successful connection; later outages get ``budget`` s."""
        self.attempts = 0
        self.budget = budget

    def lost(self) -> None:
        """The outage starts now."""
        self.down_since = time.monotonic()


class IOBridge:
    """Runs closures on the IO thread and waits for their futures, with timeouts."""

    def __init__(self, post: Post, *, op_timeout: float) -> None:
        self._post = post
        self.op_timeout = op_timeout
        self._lock = threading.Lock()
        self._inflight: set[Future[Any]] = set()
        self._thread: threading.Thread | None = None
        self.failure: BrokerError | None = None
        self.closed = False
        # Set by stop() or by a fatal error; run() waits on it.
        self.stop_event = threading.Event()

    def start(self, target: Callable[[], None]) -> None:
        """Start the IO thread running ``target`` (the ioloop)."""
        self._thread = threading.Thread(target=target, name="ezspark-broker-io", daemon=True)
        self._thread.start()

    @property
    def alive(self) -> bool:
        """Whether the IO thread is running."""
        return self._thread is not None and self._thread.is_alive()

    def join(self, timeout: float) -> bool:
        """Wait for the IO thread to end; True if it did."""
        if self._thread is not None:
            self._thread.join(timeout)
        return not self.alive

    def new_future(self) -> Future[Any]:
        """A future that ``fail``/``close`` will fail if still pending."""
        fut: Future[Any] = Future()
        with self._lock:
            if self.failure is not None:
                raise BrokerError(str(self.failure))
            if self.closed:
                raise BrokerError("broker is stopped")
            self._inflight.add(fut)
        fut.add_done_callback(self._forget)
        return fut

    def _forget(self, fut: Future[Any]) -> None:
        with self._lock:
            self._inflight.discard(fut)

    def submit(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the IO thread soon; BrokerError if the thread is gone."""
        if not self.alive:
            raise BrokerError(str(self.failure or "broker is stopped"))
        try:
            self._post(fn)
        except Exception as exc:  # the loop was closed under us by a concurrent stop()
            raise BrokerError(f"broker is stopped ({exc})") from exc

    def call(
        self, op: Callable[[Future[Any]], None], what: str, timeout: float | None = None
    ) -> Any:
        """Run ``op(future)`` on the IO thread and wait for the future's result."""
        fut = self.new_future()
        self.submit(lambda: op(fut))
        return self.wait(fut, what, timeout)

    def wait(self, fut: Future[Any], what: str, timeout: float | None = None) -> Any:
        """The future's result; BrokerError naming ``what`` on failure or timeout."""
        limit = self.op_timeout if timeout is None else timeout
        try:
            return fut.result(timeout=limit)
        except TimeoutError:
            fut.cancel()  # so the IO thread skips it if it has not started yet
            raise BrokerError(f"{what}: no answer from RabbitMQ within {limit:.0f}s") from None
        except BrokerError as exc:
            raise BrokerError(f"{what}: {exc}") from exc

    def fail(self, error: BrokerError) -> None:
        """Give up for good: fail every pending call and wake ``run()``."""
        with self._lock:
            self.failure = self.failure or error
        self._fail_pending(error)
        self.stop_event.set()

    def close(self) -> bool:
        """Refuse new calls; False if already closed (so shutdown runs once)."""
        with self._lock:
            if self.closed:
                return False
            self.closed = True
        return True

    def fail_pending(self) -> None:
        """Fail whatever is still waiting once the IO thread is gone."""
        self._fail_pending(BrokerError("broker is stopped"))

    def _fail_pending(self, error: BrokerError) -> None:
        with self._lock:
            pending = list(self._inflight)
        for fut in pending:
            resolve(fut, error=error)
