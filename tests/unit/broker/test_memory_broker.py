"""InMemoryBroker: the same delivery contract as RabbitMQ, in-process, for logic tests."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from prometheus_client import CollectorRegistry

from ezspark_common.broker import Broker, BrokerError, Delivery, InMemoryBroker, connect
from ezspark_common.wire.messages import dead_letter_queue

Q = "unit.q"


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def broker(registry: CollectorRegistry) -> Iterator[InMemoryBroker]:
    b = InMemoryBroker(delivery_limit=2, registry=registry)
    b.declare(Q)
    yield b
    b.stop()


def poison_count(registry: CollectorRegistry, queue: str = Q) -> float:
    value = registry.get_sample_value("ezspark_broker_poison_messages_total", {"queue": queue})
    return value or 0.0


def test_connect_memory_url_gives_in_memory_broker() -> None:
    """connect('memory://') builds an InMemoryBroker; unknown schemes are refused."""
    b = connect("memory://")
    assert isinstance(b, InMemoryBroker)
    assert isinstance(b, Broker)
    b.stop()
    with pytest.raises(ValueError, match="unsupported broker URL"):
        connect("kafka://localhost")


def test_importing_broker_package_does_not_import_pika() -> None:
    """Only the RabbitMQ adapter imports pika, and only when an amqp:// URL is used."""
    code = (
        "import sys, ezspark_common.broker as b; b.connect('memory://').stop(); "
        "sys.exit('pika' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_ack_removes_message(broker: InMemoryBroker) -> None:
    """An acked delivery is gone; body, message_id and first-delivery fields are passed."""
    seen: list[Delivery] = []

    def handle(d: Delivery) -> None:
        seen.append(d)
        d.ack()

    broker.publish(Q, b"one", message_id="m1")
    broker.consume(Q, handle)
    assert broker.drain() == 1
    assert [(d.body, d.message_id, d.delivery_count, d.redelivered) for d in seen] == [
        (b"one", "m1", 1, False)
    ]
    assert broker.queue_depth(Q) == 0
    assert broker.queue_depth(dead_letter_queue(Q)) == 0


def test_requeue_redelivers_with_count(broker: InMemoryBroker) -> None:
    """reject(requeue=True) puts the message back at the head; the count goes up."""
    counts: list[tuple[bytes, int]] = []

    def handle(d: Delivery) -> None:
        counts.append((d.body, d.delivery_count))
        if d.body == b"a" and d.delivery_count == 1:
            d.reject(requeue=True)
        else:
            d.ack()

    broker.publish_many(Q, [(b"a", None), (b"b", None)])
    broker.consume(Q, handle)
    broker.drain()
    assert counts == [(b"a", 1), (b"a", 2), (b"b", 1)]
    assert broker.queue_depth(Q) == 0


def test_delivery_limit_dead_letters(broker: InMemoryBroker, registry: CollectorRegistry) -> None:
    """A message requeued past delivery_limit (2) goes to <queue>.dead after 3 deliveries."""
    finals: list[bool] = []

    def always_fail(d: Delivery) -> None:
        finals.append(d.final_attempt)
        d.reject(requeue=True)

    broker.publish(Q, b"poison", message_id="p")
    broker.consume(Q, always_fail)
    assert broker.drain() == 3
    assert finals == [False, False, True]
    assert broker.queue_depth(Q) == 0
    assert broker.messages(dead_letter_queue(Q)) == [b"poison"]
    assert poison_count(registry) == 1


def test_reject_without_requeue_dead_letters_at_once(
    broker: InMemoryBroker, registry: CollectorRegistry
) -> None:
    """reject(requeue=False) sends the message straight to the dead-letter queue."""
    broker.publish(Q, b"bad")
    broker.consume(Q, lambda d: d.reject(requeue=False))
    assert broker.drain() == 1
    assert broker.messages(dead_letter_queue(Q)) == [b"bad"]
    assert poison_count(registry) == 1


def test_handler_exception_requeues(broker: InMemoryBroker) -> None:
    """A handler that raises before settling gets its delivery requeued (counts an attempt)."""
    attempts: list[int] = []

    def flaky(d: Delivery) -> None:
        attempts.append(d.delivery_count)
        if d.delivery_count < 2:
            raise RuntimeError("transient")
        d.ack()

    broker.publish(Q, b"x")
    broker.consume(Q, flaky)
    broker.drain()
    assert attempts == [1, 2]
    assert broker.queue_depth(dead_letter_queue(Q)) == 0


def test_settle_twice_is_ignored(broker: InMemoryBroker) -> None:
    """A second ack/reject on the same delivery does nothing."""

    def handle(d: Delivery) -> None:
        d.ack()
        d.reject(requeue=True)

    broker.publish(Q, b"x")
    broker.consume(Q, handle)
    assert broker.drain() == 1
    assert broker.queue_depth(Q) == 0


def test_prefetch_bounds_unsettled(broker: InMemoryBroker) -> None:
    """With prefetch=2 and no acks, only two deliveries are handed out."""
    held: list[Delivery] = []
    broker.publish_many(Q, [(b"%d" % i, None) for i in range(5)])
    broker.consume(Q, held.append, prefetch=2)
    assert broker.drain() == 2
    held[0].ack()
    assert broker.drain() == 1
    assert broker.queue_depth(Q) == 2


def test_undeclared_queue_and_stopped_broker_raise() -> None:
    """Publishing to an undeclared queue, or to a stopped broker, raises BrokerError."""
    b = InMemoryBroker()
    with pytest.raises(BrokerError, match="not declared"):
        b.publish("nope", b"x")
    with pytest.raises(BrokerError, match="not declared"):
        b.queue_depth("nope")
    b.declare(Q)
    assert b.ping()
    b.stop()
    assert not b.ping()
    with pytest.raises(BrokerError, match="stopped"):
        b.publish(Q, b"x")


def test_run_uses_worker_threads_and_stop_ends_it(broker: InMemoryBroker) -> None:
    """run() calls handlers on worker threads, acks work from any thread, stop() ends run()."""
    done = threading.Event()
    handler_threads: set[str] = set()

    def handle(d: Delivery) -> None:
        handler_threads.add(threading.current_thread().name)
        # Settle from yet another thread, as the evaluator may do.
        threading.Thread(target=d.ack).start()
        if d.body == b"9":
            done.set()

    broker.consume(Q, handle, prefetch=3)
    runner = threading.Thread(target=broker.run)
    runner.start()
    broker.publish_many(Q, [(b"%d" % i, None) for i in range(10)])
    assert done.wait(5)
    deadline = time.monotonic() + 5
    while broker.queue_depth(Q) and time.monotonic() < deadline:
        time.sleep(0.01)
    broker.stop()
    runner.join(5)
    assert not runner.is_alive()
    assert handler_threads
    assert all(name.startswith("ezspark-handler-") for name in handler_threads)


def test_metrics_shared_between_brokers(registry: CollectorRegistry) -> None:
    """Two brokers on one registry share counters instead of failing to register twice."""
    a = InMemoryBroker(registry=registry)
    b = InMemoryBroker(registry=registry)
    for broker in (a, b):
        broker.declare(Q)
        broker.publish(Q, b"x")
        broker.consume(Q, lambda d: d.reject(requeue=False))
        broker.drain()
    assert poison_count(registry) == 2


EX = "unit.announce"


def acking(into: list[Delivery]) -> Callable[[Delivery], None]:
    """A handler that records each delivery in ``into`` and acks it."""

    def handle(d: Delivery) -> None:
        into.append(d)
        d.ack()

    return handle


def test_broadcast_reaches_every_subscriber(broker: InMemoryBroker) -> None:
    """Two subscribers of one exchange each get every broadcast, labelled with the exchange."""
    first: list[Delivery] = []
    second: list[Delivery] = []
    broker.subscribe(EX, acking(first))
    broker.subscribe(EX, acking(second))
    broker.broadcast(EX, b"hello")
    broker.broadcast(EX, b"again")
    assert broker.drain() == 4
    for seen in (first, second):
        assert [(d.body, d.queue, d.delivery_count) for d in seen] == [
            (b"hello", EX, 1),
            (b"again", EX, 1),
        ]
    assert broker.drain() == 0


def test_broadcast_before_subscribe_is_not_delivered(broker: InMemoryBroker) -> None:
    """Only broadcasts made after subscribe() reach the handler."""
    seen: list[Delivery] = []
    broker.broadcast(EX, b"too early")
    broker.subscribe(EX, acking(seen))
    assert broker.drain() == 0
    broker.broadcast(EX, b"in time")
    assert broker.drain() == 1
    assert [d.body for d in seen] == [b"in time"]


def test_broadcast_without_subscribers_is_dropped(broker: InMemoryBroker) -> None:
    """A broadcast nobody subscribed to returns normally and leaves nothing behind."""
    broker.broadcast("unit.nobody", b"x")
    broker.consume(Q, lambda d: d.ack())
    assert broker.drain() == 0
    assert broker.queue_depth(Q) == 0


def test_broadcasts_go_only_to_their_exchange(broker: InMemoryBroker) -> None:
    """A subscriber of one exchange gets nothing broadcast to another, or published to a queue."""
    seen: list[Delivery] = []
    broker.subscribe(EX, acking(seen))
    broker.broadcast("unit.other", b"other")
    broker.publish(Q, b"work")
    broker.broadcast(EX, b"mine")
    assert broker.drain() == 1
    assert [d.body for d in seen] == [b"mine"]
    assert broker.queue_depth(Q) == 1


def test_subscription_reject_drops_without_dead_letter(
    broker: InMemoryBroker, registry: CollectorRegistry
) -> None:
    """A failing subscription handler is not retried: the broadcast is dropped, no poison."""
    finals: list[bool] = []

    def fail(d: Delivery) -> None:
        finals.append(d.final_attempt)
        raise RuntimeError("boom")

    broker.subscribe(EX, fail)
    broker.broadcast(EX, b"x")
    assert broker.drain() == 1
    assert finals == [True]
    assert poison_count(registry, EX) == 0


def test_subscription_delivers_under_run(broker: InMemoryBroker) -> None:
    """Under run(), subscription handlers run one at a time on a worker thread."""
    done = threading.Event()
    names: set[str] = set()
    running = 0
    overlap = False
    lock = threading.Lock()

    def handle(d: Delivery) -> None:
        nonlocal running, overlap
        with lock:
            running += 1
            overlap = overlap or running > 1
        names.add(threading.current_thread().name)
        time.sleep(0.01)
        with lock:
            running -= 1
        d.ack()
        if d.body == b"4":
            done.set()

    broker.subscribe(EX, handle)
    runner = threading.Thread(target=broker.run)
    runner.start()
    for i in range(5):
        broker.broadcast(EX, b"%d" % i)
    assert done.wait(5)
    broker.stop()
    runner.join(5)
    assert not runner.is_alive()
    assert not overlap
    assert len(names) == 1
    assert next(iter(names)).startswith("ezspark-handler-")


def test_broadcast_on_stopped_broker_raises() -> None:
    """broadcast and subscribe on a stopped broker raise BrokerError."""
    b = InMemoryBroker()
    b.stop()
    with pytest.raises(BrokerError, match="stopped"):
        b.broadcast(EX, b"x")
    with pytest.raises(BrokerError, match="stopped"):
        b.subscribe(EX, lambda d: d.ack())
