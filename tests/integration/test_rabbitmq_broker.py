"""RabbitBroker against the real RabbitMQ (CI starts it; if it is not reachable, FAIL).

Each test uses its own uuid-named queues and deletes them afterwards.  The restart test
stops and restarts the RabbitMQ application with rabbitmqctl, and always restores it.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
from prometheus_client import CollectorRegistry

from ezspark_common.broker import BrokerError, Delivery, connect
from ezspark_common.broker.rabbitmq import RabbitBroker
from ezspark_common.wire.messages import RESULTS_QUEUE, MessageError, dead_letter_queue, decode
from tests.support.waiting import wait_until

URL = os.environ.get("EZSPARK_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")

BrokerFactory = Callable[..., RabbitBroker]


@pytest.fixture(scope="module")
def rabbit_url() -> str:
    """The broker URL, after checking RabbitMQ listens there (fail, never skip)."""
    parts = urlsplit(URL)
    try:
        socket.create_connection((parts.hostname, parts.port or 5672), timeout=3).close()
    except OSError as exc:
        pytest.fail(f"RabbitMQ is not reachable at {parts.hostname}:{parts.port}: {exc}")
    return URL


@pytest.fixture
def rabbit_registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def rabbit_broker(rabbit_url: str, rabbit_registry: CollectorRegistry) -> Iterator[BrokerFactory]:
    """Makes brokers (private metrics registry); stops them all and deletes their queues."""
    made: list[RabbitBroker] = []
    queues: list[str] = []

    def make(*queue_names: str, **options: Any) -> RabbitBroker:
        broker = RabbitBroker(rabbit_url, registry=rabbit_registry, **options)
        made.append(broker)
        for name in queue_names:
            broker.declare(name)
            queues.append(name)
        return broker

    yield make
    for broker in made:
        broker.stop()
    if queues:
        with RabbitBroker(rabbit_url, registry=rabbit_registry) as cleaner:
            for name in queues:
                cleaner.delete(name)


@pytest.fixture
def rabbit_queue() -> str:
    return f"test.{uuid.uuid4().hex[:12]}"


class Runner:
    """Runs broker.run() on a thread and collects deliveries."""

    def __init__(self, broker: RabbitBroker) -> None:
        self.broker = broker
        self.deliveries: list[Delivery] = []
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            self.broker.run()
        except BaseException as exc:
            self.error = exc

    def __enter__(self) -> Runner:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.broker.stop()
        self.thread.join(15)
        assert not self.thread.is_alive(), "run() did not return after stop()"

    def record(self, delivery: Delivery) -> None:
        self.deliveries.append(delivery)


def poison_count(registry: CollectorRegistry, queue: str) -> float:
    value = registry.get_sample_value("ezspark_broker_poison_messages_total", {"queue": queue})
    return value or 0.0


def test_round_trip_with_confirms(rabbit_broker: BrokerFactory, rabbit_queue: str) -> None:
    """Confirmed publishes arrive intact with message ids, on handler threads, and are acked."""
    broker = rabbit_broker(rabbit_queue)
    threads: set[str] = set()

    with Runner(broker) as runner:

        def handle(d: Delivery) -> None:
            threads.add(threading.current_thread().name)
            runner.record(d)
            d.ack()

        broker.consume(rabbit_queue, handle, prefetch=2)
        for i in range(3):
            broker.publish(rabbit_queue, b"body-%d" % i, message_id=f"m{i}")
        wait_until(lambda: len(runner.deliveries) == 3, 10, "3 deliveries")
        assert broker.queue_depth(rabbit_queue) == 0
    got = sorted((d.body, d.message_id, d.delivery_count, d.redelivered) for d in runner.deliveries)
    assert got == [(b"body-%d" % i, f"m{i}", 1, False) for i in range(3)]
    assert all(name.startswith("ezspark-handler-") for name in threads)
    assert runner.error is None


def test_publish_many_thousand_confirmed(rabbit_broker: BrokerFactory, rabbit_queue: str) -> None:
    """publish_many of 1,000 messages returns confirmed (windowed) and all are in the queue."""
    broker = rabbit_broker(rabbit_queue, confirm_window=128)
    start = time.monotonic()
    broker.publish_many(rabbit_queue, [(b"%d" % i, str(i)) for i in range(1000)])
    elapsed = time.monotonic() - start
    assert broker.queue_depth(rabbit_queue) == 1000
    assert elapsed < 10, f"1,000 confirmed publishes took {elapsed:.1f}s"


def test_queue_depth_and_errors(rabbit_broker: BrokerFactory, rabbit_queue: str) -> None:
    """queue_depth counts ready messages; missing queues and unroutable publishes raise."""
    broker = rabbit_broker(rabbit_queue)
    assert broker.queue_depth(rabbit_queue) == 0
    assert broker.queue_depth(dead_letter_queue(rabbit_queue)) == 0
    broker.publish_many(rabbit_queue, [(b"x", None)] * 5)
    assert broker.queue_depth(rabbit_queue) == 5
    missing = f"{rabbit_queue}.missing"
    with pytest.raises(BrokerError, match="NOT_FOUND"):
        broker.queue_depth(missing)
    with pytest.raises(BrokerError, match="unroutable"):
        broker.publish(missing, b"lost?")
    # The failed calls closed only their own channels: the broker still works.
    assert broker.ping()
    broker.publish(rabbit_queue, b"y")
    assert broker.queue_depth(rabbit_queue) == 6


def test_poison_requeued_until_dead_lettered(
    rabbit_broker: BrokerFactory, rabbit_queue: str, rabbit_registry: CollectorRegistry
) -> None:
    """A body that never decodes, requeued each time, reaches <q>.dead after limit+1 tries."""
    broker = rabbit_broker(rabbit_queue, delivery_limit=2)
    dead = dead_letter_queue(rabbit_queue)
    with Runner(broker) as runner:

        def handle(d: Delivery) -> None:
            runner.record(d)
            try:
                decode(d.body)
            except MessageError:
                d.reject(requeue=True)  # pretend it is transient: the limit must stop this

        broker.consume(rabbit_queue, handle)
        broker.publish(rabbit_queue, b"{not json", message_id="poison")
        wait_until(lambda: broker.queue_depth(dead) == 1, 15, "message in the DLQ")
        time.sleep(0.5)  # a further (wrong) redelivery would show up here
    assert [d.delivery_count for d in runner.deliveries] == [1, 2, 3]
    assert [d.final_attempt for d in runner.deliveries] == [False, False, True]
    assert [d.redelivered for d in runner.deliveries] == [False, True, True]
    assert poison_count(rabbit_registry, rabbit_queue) == 1


def test_results_queue_is_classic_and_gives_one_retry(
    rabbit_broker: BrokerFactory, rabbit_registry: CollectorRegistry
) -> None:
    """A results queue is a classic queue (no fsync before delivery); a result requeued once
    is dead-lettered on its redelivery, so a poison result cannot loop without a count."""
    queue = f"test.{uuid.uuid4().hex[:12]}.{RESULTS_QUEUE}"
    broker = rabbit_broker(queue, delivery_limit=5)
    listed = subprocess.run(
        ["rabbitmqctl", "-q", "list_queues", "name", "type"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    types = dict(line.split()[:2] for line in listed.splitlines() if line.strip())
    assert (types[queue], types[dead_letter_queue(queue)]) == ("classic", "quorum")
    with Runner(broker) as runner:

        def handle(d: Delivery) -> None:
            runner.record(d)
            d.reject(requeue=True)

        broker.consume(queue, handle)
        broker.publish(queue, b"{not json", message_id="poison")
        wait_until(lambda: broker.queue_depth(dead_letter_queue(queue)) == 1, 15, "a dead letter")
        time.sleep(0.5)  # a further (wrong) redelivery would show up here
    assert [d.final_attempt for d in runner.deliveries] == [False, True]
    assert poison_count(rabbit_registry, queue) == 1


def test_poison_rejected_goes_straight_to_dlq(
    rabbit_broker: BrokerFactory, rabbit_queue: str, rabbit_registry: CollectorRegistry
) -> None:
    """reject(requeue=False) on a MessageError dead-letters the message on the first try."""
    broker = rabbit_broker(rabbit_queue)
    dead = dead_letter_queue(rabbit_queue)
    with Runner(broker) as runner:

        def handle(d: Delivery) -> None:
            runner.record(d)
            try:
                decode(d.body)
            except MessageError:
                d.reject(requeue=False)

        broker.consume(rabbit_queue, handle)
        broker.publish(rabbit_queue, b'{"kind": "nonsense"}')
        wait_until(lambda: broker.queue_depth(dead) == 1, 10, "message in the DLQ")
        assert broker.queue_depth(rabbit_queue) == 0
    assert len(runner.deliveries) == 1
    assert poison_count(rabbit_registry, rabbit_queue) == 1


def test_long_handler_survives_heartbeats(
    rabbit_broker: BrokerFactory, rabbit_queue: str, rabbit_registry: CollectorRegistry
) -> None:
    """A handler sleeping > 2x the heartbeat (2 s) still acks; the connection never drops."""
    broker = rabbit_broker(rabbit_queue, heartbeat=2)
    with Runner(broker) as runner:

        def handle(d: Delivery) -> None:
            runner.record(d)
            if d.body == b"slow":
                time.sleep(5)
            d.ack()

        broker.consume(rabbit_queue, handle)
        broker.publish(rabbit_queue, b"slow")
        wait_until(lambda: len(runner.deliveries) == 1, 5, "the slow delivery")
        time.sleep(5.5)
        broker.publish(rabbit_queue, b"after")  # same connection, still alive
        wait_until(lambda: len(runner.deliveries) == 2, 5, "the second delivery")
        assert broker.queue_depth(rabbit_queue) == 0
    assert [(d.body, d.delivery_count) for d in runner.deliveries] == [(b"slow", 1), (b"after", 1)]
    reconnects = rabbit_registry.get_sample_value("ezspark_broker_reconnects_total")
    assert reconnects == 0


def test_connect_failure_is_bounded() -> None:
    """An unreachable broker raises BrokerError after the connect timeout, not forever."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens here once closed
    start = time.monotonic()
    with pytest.raises(BrokerError, match="unreachable"):
        connect(f"amqp://guest:guest@127.0.0.1:{port}/%2F", connect_timeout=2)
    assert time.monotonic() - start < 8


def rabbitmqctl(*args: str, timeout: float = 60) -> None:
    subprocess.run(["rabbitmqctl", *args], check=True, capture_output=True, timeout=timeout)


def wait_for_rabbitmq(timeout: float = 60) -> None:
    """Until the node answers ping and the app (AMQP listener) runs again."""

    def ok() -> bool:
        checks = (
            ["rabbitmq-diagnostics", "-q", "ping"],
            ["rabbitmq-diagnostics", "-q", "check_running"],
        )
        return all(
            subprocess.run(cmd, capture_output=True, timeout=30, check=False).returncode == 0
            for cmd in checks
        )

    wait_until(ok, timeout, "RabbitMQ to come back")


@pytest.mark.slow
@pytest.mark.serial  # stops RabbitMQ: nothing else may run meanwhile
def test_reconnects_after_broker_restart(
    rabbit_broker: BrokerFactory, rabbit_queue: str, rabbit_registry: CollectorRegistry
) -> None:
    """After stop_app/start_app the broker reconnects, re-consumes and delivers a publish
    made during the outage."""
    assert shutil.which("rabbitmqctl"), "rabbitmqctl must be on PATH"
    broker = rabbit_broker(rabbit_queue, op_timeout=60)
    published = threading.Event()

    def publish_during_outage() -> None:
        broker.publish(rabbit_queue, b"during")
        published.set()

    publisher = threading.Thread(target=publish_during_outage)
    with Runner(broker) as runner:

        def handle(d: Delivery) -> None:
            runner.record(d)
            d.ack()

        broker.consume(rabbit_queue, handle)
        broker.publish(rabbit_queue, b"before")
        wait_until(lambda: len(runner.deliveries) == 1, 10, "the first delivery")
        try:
            rabbitmqctl("stop_app")
            wait_until(lambda: not broker.ping(), 10, "the broker to notice the outage")
            # Publish while RabbitMQ is down: it must wait, then be confirmed after reconnect.
            publisher.start()
            time.sleep(1)
            assert not published.is_set()
        finally:
            rabbitmqctl("start_app")
            wait_for_rabbitmq()
        publisher.join(45)
        assert published.is_set(), "publish made during the outage never completed"
        wait_until(lambda: len(runner.deliveries) >= 2, 20, "delivery after reconnect")
        broker.publish(rabbit_queue, b"after")
        wait_until(lambda: len(runner.deliveries) >= 3, 10, "delivery of a new publish")
    assert {d.body for d in runner.deliveries} == {b"before", b"during", b"after"}
    assert runner.error is None
    assert (rabbit_registry.get_sample_value("ezspark_broker_reconnects_total") or 0) >= 1


# ----- broadcast / subscribe over fanout exchanges ---------------------------------------


@pytest.fixture
def rabbit_exchange(rabbit_url: str, rabbit_registry: CollectorRegistry) -> Iterator[str]:
    """A uuid-named fanout exchange, deleted after the test."""
    name = f"test.fanout.{uuid.uuid4().hex[:12]}"
    yield name
    with RabbitBroker(rabbit_url, registry=rabbit_registry) as cleaner:
        cleaner.delete_exchange(name)


def broadcast_until(
    broker: RabbitBroker, exchange: str, body: bytes, done: Callable[[], bool], timeout: float
) -> None:
    """Broadcast ``body`` every 0.2 s until ``done()``: a subscription starts asynchronously
    (and restarts after a reconnect), and what is broadcast before it is bound is lost."""
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s broadcasting {body!r}")
        broker.broadcast(exchange, body)
        time.sleep(0.2)


def subscribe_recording(broker: RabbitBroker, exchange: str, runner: Runner) -> None:
    def handle(d: Delivery) -> None:
        runner.record(d)
        d.ack()

    broker.subscribe(exchange, handle)


def bodies(runner: Runner) -> list[bytes]:
    return [d.body for d in list(runner.deliveries)]


def test_broadcast_reaches_every_subscriber(
    rabbit_broker: BrokerFactory, rabbit_exchange: str
) -> None:
    """Two brokers subscribed to one fanout exchange each receive every broadcast, once."""
    publisher, first, second = rabbit_broker(), rabbit_broker(), rabbit_broker()
    with Runner(first) as run1, Runner(second) as run2:
        subscribe_recording(first, rabbit_exchange, run1)
        subscribe_recording(second, rabbit_exchange, run2)
        broadcast_until(
            publisher,
            rabbit_exchange,
            b"warm-up",
            lambda: bool(run1.deliveries) and bool(run2.deliveries),
            10,
        )
        publisher.broadcast(rabbit_exchange, b"payload")
        wait_until(
            lambda: b"payload" in bodies(run1) and b"payload" in bodies(run2), 10, "the broadcast"
        )
        time.sleep(0.3)  # a (wrong) duplicate would show up here
    for runner in (run1, run2):
        assert bodies(runner).count(b"payload") == 1
        payload = next(d for d in runner.deliveries if d.body == b"payload")
        assert payload.queue == rabbit_exchange
        assert (payload.delivery_count, payload.final_attempt) == (1, True)
        assert runner.error is None


def test_broadcast_without_subscribers_returns(
    rabbit_broker: BrokerFactory, rabbit_exchange: str, rabbit_queue: str
) -> None:
    """A broadcast nobody receives is confirmed and dropped; the publisher keeps working."""
    broker = rabbit_broker(rabbit_queue)
    broker.broadcast(rabbit_exchange, b"into the void")  # declares the exchange first
    broker.broadcast(rabbit_exchange, b"again")  # already declared
    broker.publish(rabbit_queue, b"work")  # mandatory publishes to queues are unaffected
    assert broker.queue_depth(rabbit_queue) == 1


def close_connection_named(name: str) -> None:
    """Force-close (like a network cut) the RabbitMQ connection with this connection_name."""
    out = subprocess.run(
        ["rabbitmqctl", "list_connections", "pid", "client_properties", "-q", "--no-table-headers"],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    pids = [
        line.split("\t", 1)[0]
        for line in out.splitlines()
        if f'{{"connection_name","{name}"}}' in line
    ]
    assert len(pids) == 1, f"expected one connection named {name!r}, found {pids}"
    rabbitmqctl("close_connection", pids[0], "test: simulated connection loss")


def test_subscription_survives_connection_loss(
    rabbit_broker: BrokerFactory,
    rabbit_url: str,
    rabbit_exchange: str,
    rabbit_registry: CollectorRegistry,
) -> None:
    """After its connection is force-closed, a subscriber reconnects, declares and binds a
    new private queue, and receives later broadcasts."""
    assert shutil.which("rabbitmqctl"), "rabbitmqctl must be on PATH"
    name = f"ezspark-test-sub-{uuid.uuid4().hex[:12]}"
    props = quote(repr({"connection_name": name}))
    separator = "&" if "?" in rabbit_url else "?"
    subscriber = RabbitBroker(
        f"{rabbit_url}{separator}client_properties={props}", registry=rabbit_registry
    )
    publisher = rabbit_broker()
    try:
        with Runner(subscriber) as runner:
            subscribe_recording(subscriber, rabbit_exchange, runner)
            broadcast_until(
                publisher, rabbit_exchange, b"before", lambda: b"before" in bodies(runner), 10
            )
            close_connection_named(name)
            wait_until(
                lambda: (
                    (rabbit_registry.get_sample_value("ezspark_broker_reconnects_total") or 0) >= 1
                ),
                15,
                "the subscriber to reconnect",
            )
            broadcast_until(
                publisher, rabbit_exchange, b"after", lambda: b"after" in bodies(runner), 15
            )
        assert runner.error is None
    finally:
        subscriber.stop()


def private_queues_of(exchange: str) -> list[str]:
    """The queues bound to ``exchange`` right now (subscribers' private queues)."""
    out = subprocess.run(
        ["rabbitmqctl", "list_bindings", "source_name", "destination_name", "-q"],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    rows = [line.split("\t") for line in out.splitlines()]
    return [row[1] for row in rows if len(row) == 2 and row[0] == exchange]


def test_subscription_channel_closed_is_retried(
    rabbit_broker: BrokerFactory, rabbit_exchange: str
) -> None:
    """When RabbitMQ cancels a subscription (its private queue deleted under it), the
    subscriber reopens its channel with a new private queue and receives later broadcasts."""
    assert shutil.which("rabbitmqctl"), "rabbitmqctl must be on PATH"
    publisher, subscriber = rabbit_broker(), rabbit_broker()
    with Runner(subscriber) as runner:
        subscribe_recording(subscriber, rabbit_exchange, runner)
        broadcast_until(
            publisher, rabbit_exchange, b"before", lambda: b"before" in bodies(runner), 10
        )
        [old] = private_queues_of(rabbit_exchange)
        assert old.startswith("amq.gen-")
        rabbitmqctl("delete_queue", old)
        broadcast_until(
            publisher, rabbit_exchange, b"after", lambda: b"after" in bodies(runner), 15
        )
        [new] = private_queues_of(rabbit_exchange)
        assert new != old
    assert runner.error is None


def test_broadcast_to_refused_exchange_raises(
    rabbit_broker: BrokerFactory, rabbit_exchange: str
) -> None:
    """A broadcast to an exchange that exists with another type (amq.direct) raises
    BrokerError; it closed only its own channel, so broadcasting elsewhere still works."""
    broker = rabbit_broker()
    with pytest.raises(BrokerError, match="PRECONDITION_FAILED"):
        broker.broadcast("amq.direct", b"x")
    broker.broadcast(rabbit_exchange, b"fine")
    assert broker.ping()
