"""Adapters between the broker and the use cases: publish commands, consume events."""

from __future__ import annotations

import threading
import uuid

import structlog
from sqlalchemy.exc import OperationalError

from ezspark_common.broker import Broker, BrokerError, Delivery
from ezspark_common.wire.messages import (
    COMMANDS_QUEUE,
    EvaluatorAnnounced,
    GenerationFinished,
    GenerationProgressed,
    MessageError,
    TrainingFailed,
    TrainingFinished,
    TrainingRequested,
    TrainingWaiting,
    decode,
    encode,
)
from ezspark_common.wire.routing import attributed
from ezspark_gateway.api.metrics import GatewayMetrics
from ezspark_gateway.core.environments import EnvironmentRegistry
from ezspark_gateway.core.ports import Command, Event, EventSink

log = structlog.get_logger(__name__)
# While the database is down, an event is retried in place (not requeued) this long, so
# a short outage does not burn the broker's delivery limit and dead-letter good events.
DB_RETRY_S = (0.5, 1.0, 2.0, 5.0, 10.0, 10.0, 10.0, 10.0)


class BrokerPublisher:
    """CommandPublisher on a Broker: confirmed publishes to ``COMMANDS_QUEUE``."""

    def __init__(self, broker: Broker, queue: str = COMMANDS_QUEUE) -> None:
        self._broker = broker
        self._queue = queue

    def publish(self, msg: Command) -> None:
        """Publish and wait for the broker's confirm; BrokerError if it did not confirm."""
        # A training is requested once, so its id dedupes redeliveries downstream; every
        # stop request is its own message.
        suffix = "" if isinstance(msg, TrainingRequested) else f":{uuid.uuid4().hex}"
        self._broker.publish(
            self._queue, encode(msg), message_id=f"{msg.kind}:{msg.training_id}{suffix}"
        )


def broker_ping(broker: Broker) -> None:
    """Readiness probe: raise unless the broker answers."""
    if not broker.ping():
        raise BrokerError("broker unreachable")


class EventConsumer:
    """Broker handler for ``EVENTS_QUEUE``: decode, apply through the sink, settle."""

    def __init__(
        self, sink: EventSink, metrics: GatewayMetrics, stopping: threading.Event | None = None
    ) -> None:
        self._sink = sink
        self._metrics = metrics
        self._stopping = stopping or threading.Event()

    def __call__(self, delivery: Delivery) -> None:
        """Handle one delivery; poison messages are dead-lettered, never requeued."""
        try:
            event = decode(delivery.body)
        except MessageError as exc:
            log.warning("poison_event", error=str(exc), message_id=delivery.message_id)
            self._metrics.events.labels("invalid", "dead_lettered").inc()
            delivery.reject(requeue=False)
            return
        if not isinstance(
            event,
            GenerationFinished
            | GenerationProgressed
            | TrainingFinished
            | TrainingFailed
            | TrainingWaiting,
        ):
            log.warning("unexpected_message", kind=event.kind, message_id=delivery.message_id)
            self._metrics.events.labels(event.kind, "dead_lettered").inc()
            delivery.reject(requeue=False)
            return
        outcome = self._apply_with_retry(event)
        self._metrics.events.labels(event.kind, outcome).inc()
        delivery.ack()

    def _apply_with_retry(self, event: Event) -> str:
        for delay in (*DB_RETRY_S, None):
            try:
                return self._sink.handle(event)
            except OperationalError as exc:
                if delay is None or self._stopping.is_set():
                    raise  # the broker requeues it (counts against the delivery limit)
                log.warning(
                    "event_db_retry",
                    training_id=event.training_id,
                    error=str(exc)[:200],
                    retry_in_s=delay,
                )
                self._stopping.wait(delay)
        raise AssertionError("unreachable")


class AnnouncementConsumer:
    """Subscriber of ``ANNOUNCE_EXCHANGE``: feed evaluators' announcements to the registry.

    Every delivery is acked: a subscription has no dead-letter queue, and a bad or foreign
    message is only logged (announcements repeat, so nothing is lost by dropping one).
    """

    def __init__(self, registry: EnvironmentRegistry, metrics: GatewayMetrics) -> None:
        self._registry = registry
        self._metrics = metrics

    def __call__(self, delivery: Delivery) -> None:
        """Record one announcement and ack it."""
        try:
            msg = decode(delivery.body)
        except MessageError as exc:
            log.warning("bad_announcement", error=str(exc)[:300])
            msg = None
        if isinstance(msg, EvaluatorAnnounced) and not attributed(
            delivery.user_id, msg.evaluator_id
        ):  # a user's machine may announce only as itself (RabbitMQ validates user_id)
            log.warning("unattributed_announcement", evaluator_id=msg.evaluator_id)
            msg = None
        if not isinstance(msg, EvaluatorAnnounced):
            if msg is not None:
                log.warning("unexpected_announcement", kind=msg.kind)
            self._metrics.announcements.labels("invalid").inc()
            delivery.ack()
            return
        changed = self._registry.announce(msg)
        outcome = "leaving" if msg.leaving else "live"
        self._metrics.announcements.labels(outcome).inc()
        emit = log.info if changed else log.debug
        emit(
            "evaluator_" + outcome,
            evaluator_id=msg.evaluator_id,
            envs=[e.env_id for e in msg.envs][:20],
            env_count=len(msg.envs),
        )
        delivery.ack()
