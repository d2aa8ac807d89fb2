"""Evolver events applied to storage: idempotent, ordered, visible through the API."""

from __future__ import annotations

import json
import threading
from typing import Any

from prometheus_client import CollectorRegistry

from ezspark_common.broker import InMemoryBroker
from ezspark_common.wire.messages import (
    COMMANDS_QUEUE,
    EVENTS_QUEUE,
    GenerationFinished,
    StopRequested,
    TrainingFailed,
    TrainingFinished,
    TrainingRequested,
    WireGenome,
    dead_letter_queue,
    decode,
    encode,
)
from ezspark_gateway.api.metrics import GatewayMetrics
from ezspark_gateway.bus import BrokerPublisher, EventConsumer
from ezspark_gateway.core.events import EventApplier

GENOME = WireGenome(
    key=7,
    node_ids=[0, 1, 2],
    biases=[0.0, 0.1, -0.2],
    innov=[1, 2],
    src=[0, 1],
    dst=[2, 2],
    weight=[0.5, -1.5],
    enabled=[True, False],
)


def report(tid: str, gen: int, best: float = 1.0) -> GenerationFinished:
    """A generation report with recognisable numbers."""
    return GenerationFinished(
        training_id=tid,
        generation=gen,
        best_fitness=best,
        mean_fitness=best / 2,
        species=3 + gen,
        population=100,
        evaluations_per_s=250.0,
        best_genome_key=gen,
    )


def test_reports_build_history_and_start_running(gw: Any) -> None:
    """Reports move the training to running and show up in order in the history."""
    token = gw.signup()
    tid = gw.create(token)
    sink = EventApplier(gw.db.sessions, clock=gw.clock)
    for gen, best in [(0, 10.0), (1, 25.0), (2, 20.0)]:
        assert sink.handle(report(tid, gen, best)) == "applied"
    detail = gw.client.get(f"/api/trainings/{tid}", headers=gw.auth(token)).json()
    assert detail["status"] == "running"
    assert detail["generations"] == 3
    assert detail["best_fitness"] == 25.0
    assert detail["latest_report"]["generation"] == 2
    assert detail["latest_report"]["species"] == 5
    history = gw.client.get(f"/api/trainings/{tid}/generations", headers=gw.auth(token)).json()
    assert [r["best_fitness"] for r in history["items"]] == [10.0, 25.0, 20.0]
    assert history["next_since"] == 3
    page = gw.client.get(
        f"/api/trainings/{tid}/generations?since=1&limit=1", headers=gw.auth(token)
    ).json()
    assert [r["generation"] for r in page["items"]] == [1]
    assert page["next_since"] == 2


def test_redelivered_events_are_harmless(gw: Any) -> None:
    """Applying every event twice leaves exactly the state of applying it once."""
    token = gw.signup()
    tid = gw.create(token)
    sink = EventApplier(gw.db.sessions, clock=gw.clock)
    events = [
        report(tid, 0, 1.0),
        report(tid, 1, 2.0),
        TrainingFinished(
            training_id=tid,
            generations=2,
            best_fitness=2.0,
            reason="generations",
            best_genome=GENOME,
        ),
    ]
    first = [sink.handle(e) for e in events]
    once = gw.client.get(f"/api/trainings/{tid}", headers=gw.auth(token)).json()
    gw.clock.now += 10
    second = [sink.handle(e) for e in events]
    twice = gw.client.get(f"/api/trainings/{tid}", headers=gw.auth(token)).json()
    assert first == ["applied"] * 3
    assert second == ["duplicate"] * 3
    # Health is computed when read (ages grow with the clock); what it is computed from
    # must not change.
    assert once.pop("health")["last_event_at"] == twice.pop("health")["last_event_at"]
    assert once == twice
    history = gw.client.get(f"/api/trainings/{tid}/generations", headers=gw.auth(token)).json()
    assert len(history["items"]) == 2


def test_finished_stores_best_genome_for_download(gw: Any) -> None:
    """The best genome is 404 until TrainingFinished carries one, then downloads as JSON."""
    token = gw.signup()
    tid = gw.create(token)
    url = f"/api/trainings/{tid}/best"
    assert gw.client.get(url, headers=gw.auth(token)).status_code == 404
    EventApplier(gw.db.sessions).handle(
        TrainingFinished(
            training_id=tid,
            generations=5,
            best_fitness=195.0,
            reason="fitness_threshold",
            best_genome=GENOME,
        )
    )
    resp = gw.client.get(url, headers=gw.auth(token))
    assert resp.status_code == 200
    assert "attachment" in resp.headers["content-disposition"]
    assert WireGenome.model_validate(json.loads(resp.content)) == GENOME
    detail = gw.client.get(f"/api/trainings/{tid}", headers=gw.auth(token)).json()
    assert (detail["status"], detail["finish_reason"]) == ("finished", "fitness_threshold")
    assert detail["has_best_genome"] is True


def test_stop_then_finished_stopped(gw: Any) -> None:
    """A stop request goes stopping → stopped when the evolver confirms; stop again is 409."""
    token = gw.signup()
    tid = gw.create(token)
    gw.client.post(f"/api/trainings/{tid}/stop", headers=gw.auth(token))
    sink = EventApplier(gw.db.sessions)
    sink.handle(report(tid, 0))  # a late report must not turn stopping back into running
    status = gw.client.get(f"/api/trainings/{tid}", headers=gw.auth(token)).json()["status"]
    assert status == "stopping"
    sink.handle(
        TrainingFinished(
            training_id=tid, generations=1, best_fitness=1.0, reason="stopped", best_genome=None
        )
    )
    detail = gw.client.get(f"/api/trainings/{tid}", headers=gw.auth(token)).json()
    assert detail["status"] == "stopped"
    assert detail["has_best_genome"] is False
    assert gw.client.post(f"/api/trainings/{tid}/stop", headers=gw.auth(token)).status_code == 409


def test_failed_keeps_error_and_is_final(gw: Any) -> None:
    """TrainingFailed records the error; a later Finished does not overwrite it."""
    token = gw.signup()
    tid = gw.create(token)
    sink = EventApplier(gw.db.sessions)
    assert sink.handle(TrainingFailed(training_id=tid, error="env not found")) == "applied"
    late = TrainingFinished(
        training_id=tid, generations=1, best_fitness=1.0, reason="generations", best_genome=None
    )
    assert sink.handle(late) == "duplicate"
    detail = gw.client.get(f"/api/trainings/{tid}", headers=gw.auth(token)).json()
    assert (detail["status"], detail["error"]) == ("failed", "env not found")


def test_event_for_unknown_training_is_ignored(gw: Any) -> None:
    """An event about a training this gateway never created changes nothing."""
    assert EventApplier(gw.db.sessions).handle(report("not-ours", 0)) == "unknown"


def _consumer_setup(gw: Any) -> tuple[InMemoryBroker, EventConsumer, GatewayMetrics]:
    broker = InMemoryBroker(registry=CollectorRegistry())
    broker.declare(EVENTS_QUEUE)
    metrics = GatewayMetrics(CollectorRegistry())
    consumer = EventConsumer(EventApplier(gw.db.sessions), metrics, threading.Event())
    broker.consume(EVENTS_QUEUE, consumer, prefetch=1)
    return broker, consumer, metrics


def test_consumer_applies_and_acks_and_dead_letters_poison(gw: Any) -> None:
    """Through a broker: valid events are applied and acked, garbage is dead-lettered."""
    token = gw.signup()
    tid = gw.create(token)
    broker, _consumer, metrics = _consumer_setup(gw)
    broker.publish(EVENTS_QUEUE, encode(report(tid, 0)), message_id="a")
    broker.publish(EVENTS_QUEUE, encode(report(tid, 0)), message_id="a")  # redelivery
    broker.publish(EVENTS_QUEUE, b"{not json", message_id="b")
    broker.publish(EVENTS_QUEUE, encode(StopRequested(training_id=tid)), message_id="c")
    broker.drain()
    assert broker.queue_depth(EVENTS_QUEUE) == 0
    assert broker.queue_depth(dead_letter_queue(EVENTS_QUEUE)) == 2
    history = gw.client.get(f"/api/trainings/{tid}/generations", headers=gw.auth(token)).json()
    assert len(history["items"]) == 1
    applied = metrics.registry.get_sample_value(
        "ezspark_gateway_events_total", {"kind": "generation_report", "outcome": "applied"}
    )
    duplicate = metrics.registry.get_sample_value(
        "ezspark_gateway_events_total", {"kind": "generation_report", "outcome": "duplicate"}
    )
    assert (applied, duplicate) == (1.0, 1.0)


def test_broker_publisher_sends_decodable_commands() -> None:
    """BrokerPublisher puts encoded commands on the commands queue with message ids."""
    broker = InMemoryBroker(registry=CollectorRegistry())
    broker.declare(COMMANDS_QUEUE)
    publisher = BrokerPublisher(broker)
    requested = TrainingRequested(training_id="t1", owner="ada", config={"a": 1}, requested_at=1.0)
    publisher.publish(requested)
    publisher.publish(StopRequested(training_id="t1"))
    got: list[tuple[Any, str | None]] = []
    broker.consume(
        COMMANDS_QUEUE, lambda d: (got.append((decode(d.body), d.message_id)), d.ack()), prefetch=1
    )
    broker.drain()
    assert got[0] == (requested, "training_requested:t1")
    assert got[1][0] == StopRequested(training_id="t1")
    assert got[1][1] is not None
    assert got[1][1].startswith("stop_requested:t1:")
