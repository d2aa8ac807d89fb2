"""Least privilege on the real RabbitMQ: what each broker user can and cannot do.

Every test runs in a fresh vhost with the deployments' own permission regexes
(``permissions.py``) and the brokers the services use (``fronted`` exchanges, validated
``user_id``).  Refusals are positive facts (a ``BrokerError`` from RabbitMQ's 403, a
message still in its queue after the attacker got its own), never the
absence of something within a time limit.
"""

from __future__ import annotations

import pytest

from ezspark_common.broker import BrokerError, Delivery
from ezspark_common.wire.messages import (
    ANNOUNCE_EXCHANGE,
    COMMANDS_QUEUE,
    EVENTS_QUEUE,
    RESULTS_QUEUE,
    StopRequested,
    TrainingFinished,
    TrainingWaiting,
    decode,
    encode,
    tasks_queue,
)
from ezspark_common.wire.routing import (
    account_tag,
    user_tasks_queue,
    volunteer_tasks_queue,
)
from tests.integration.security.broker_users import broker, evolver_topology, running, secure_vhost
from tests.support.waiting import wait_until

ENV = "CartPole-v1"


def fake_finished() -> bytes:
    """The attack of issue 13: a finished training with an absurd best fitness."""
    return encode(
        TrainingFinished(
            training_id="victims-training",
            generations=1,
            best_fitness=1e9,
            reason="fitness_threshold",
            best_genome=None,
        )
    )


def test_user_evaluator_cannot_publish_events_or_commands() -> None:
    """A user's machine may publish results and announcements, but RabbitMQ refuses its
    events and commands, through their exchanges and through the default exchange."""
    with secure_vhost() as sv:
        evolver_topology(sv)
        _, url = sv.issue("mallory", volunteer=True)
        command = encode(StopRequested(training_id="victims-training"))
        with broker(url) as b, broker(url, fronted=False) as straight:
            for queue, body in ((EVENTS_QUEUE, fake_finished()), (COMMANDS_QUEUE, command)):
                with pytest.raises(BrokerError):
                    b.publish(queue, body)
                with pytest.raises(BrokerError):
                    straight.publish(queue, body)  # the default exchange: write refused
            b.publish(RESULTS_QUEUE, b"{}")  # what it is for still works after the refusals
            b.broadcast(ANNOUNCE_EXCHANGE, b"{}")


def test_user_evaluator_cannot_read_other_users_tasks() -> None:
    """Mallory's machine gets the task on Mallory's queue; Alice's queue, the operator's, the
    volunteers' (Mallory does not volunteer) and the services' queues keep their message,
    however it tries."""
    mine = user_tasks_queue(account_tag("mallory"), ENV)
    forbidden = [
        user_tasks_queue(account_tag("alice"), ENV),
        tasks_queue(ENV),
        volunteer_tasks_queue(ENV),
        COMMANDS_QUEUE,
        EVENTS_QUEUE,
        RESULTS_QUEUE,
    ]
    with secure_vhost() as sv:
        evolver_topology(sv, mine, *forbidden)
        with broker(sv.url("evolver"), declares=True) as evo:
            for queue in forbidden:
                evo.publish(queue, queue.encode())
            evo.publish(mine, b"mallory's own task")
        _, url = sv.issue("mallory", volunteer=False)
        got: list[bytes] = []

        def take(delivery: Delivery) -> None:
            got.append(delivery.body)
            delivery.ack()

        with broker(url) as b:
            for queue in (*forbidden, mine):
                b.consume(queue, take)
            with running(b):
                wait_until(lambda: got, 20, "Mallory's machine to get its own task")
        assert got == [b"mallory's own task"]  # it acks what it gets: nothing else came
        with broker(sv.url("evolver")) as evo:
            assert [evo.queue_depth(q) for q in forbidden] == [1] * len(forbidden)


def test_fake_training_finished_never_reaches_the_gateway() -> None:
    """The attack of issue 13: a user's machine, an operator evaluator and the gateway itself
    each try to put a fake TrainingFinished into the gateway's event queue every way their
    permissions might allow; all are refused or land elsewhere, and the first event the
    gateway consumes is the evolver's genuine one, stamped with the evolver's user."""
    with secure_vhost() as sv:
        evolver_topology(sv)
        _, mallory = sv.issue("mallory", volunteer=True)
        for url in (mallory, sv.url("evaluator"), sv.url("gateway")):
            with broker(url) as b, broker(url, fronted=False) as straight:
                with pytest.raises(BrokerError):
                    b.publish(EVENTS_QUEUE, fake_finished())
                with pytest.raises(BrokerError):
                    straight.publish(EVENTS_QUEUE, fake_finished())
        with broker(mallory) as b:  # allowed exchanges, but they do not lead to the events
            b.publish(RESULTS_QUEUE, fake_finished())
            b.broadcast(ANNOUNCE_EXCHANGE, fake_finished())
        genuine = TrainingWaiting(training_id="victims-training", waiting=True, reason="x")
        with broker(sv.url("evolver"), declares=True) as evo:
            evo.publish(EVENTS_QUEUE, encode(genuine))
        seen: list[tuple[object, str | None]] = []

        def take(delivery: Delivery) -> None:
            seen.append((decode(delivery.body), delivery.user_id))
            delivery.ack()

        with broker(sv.url("gateway")) as gw:
            gw.consume(EVENTS_QUEUE, take)
            with running(gw):
                wait_until(lambda: seen, 20, "the gateway to consume an event")
        assert seen == [(genuine, sv.user("evolver"))]
        with broker(sv.url("evolver")) as evo:
            assert evo.queue_depth(EVENTS_QUEUE) == 0
