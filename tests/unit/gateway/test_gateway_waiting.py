"""TrainingWaiting events: the reason is stored, shown (API, page, ``ezspark watch``) and
cleared when the training goes on or ends."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from click.testing import CliRunner
from prometheus_client import CollectorRegistry

from ezspark_common.broker import InMemoryBroker
from ezspark_common.cli import remote_common, remote_trainings
from ezspark_common.cli.client import Gateway as CliGateway
from ezspark_common.wire.messages import (
    EVENTS_QUEUE,
    GenerationFinished,
    TrainingFailed,
    TrainingFinished,
    TrainingWaiting,
    encode,
)
from ezspark_gateway.api.metrics import GatewayMetrics
from ezspark_gateway.bus import EventConsumer
from ezspark_gateway.core.events import EventApplier
from tests.unit.gateway.conftest import PASSWORD

REASON = "no evaluator serves CartPole-v0"


def waiting(tid: str, on: bool = True, reason: str = REASON) -> TrainingWaiting:
    """The evolver's event: ``tid`` waits (``on``) or goes on."""
    return TrainingWaiting(training_id=tid, waiting=on, reason=reason if on else "")


def report(tid: str, gen: int) -> GenerationFinished:
    """A generation report."""
    return GenerationFinished(
        training_id=tid,
        generation=gen,
        best_fitness=1.0,
        mean_fitness=0.5,
        species=1,
        population=100,
        evaluations_per_s=10.0,
        best_genome_key=1,
    )


def _waiting_of(gw: Any, token: str, tid: str) -> Any:
    return gw.client.get(f"/api/trainings/{tid}", headers=gw.auth(token)).json()["waiting"]


def test_waiting_is_set_shown_and_cleared(gw: Any) -> None:
    """waiting=True stores the reason (detail and list); waiting=False clears it; repeats are
    duplicates."""
    token = gw.signup()
    tid = gw.create(token)
    sink = EventApplier(gw.db.sessions, clock=gw.clock)
    assert _waiting_of(gw, token, tid) is None
    assert sink.handle(waiting(tid)) == "applied"
    assert sink.handle(waiting(tid)) == "duplicate"
    assert _waiting_of(gw, token, tid) == REASON
    listed = gw.client.get("/api/trainings", headers=gw.auth(token)).json()["items"][0]
    assert (listed["status"], listed["waiting"]) == ("queued", REASON)
    assert sink.handle(waiting(tid, on=False)) == "applied"
    assert sink.handle(waiting(tid, on=False)) == "duplicate"
    assert _waiting_of(gw, token, tid) is None


@pytest.mark.parametrize("event", ["report", "finished", "failed"])
def test_progress_or_end_clears_waiting(gw: Any, event: str) -> None:
    """A generation report, a finish or a failure clears the waiting reason."""
    token = gw.signup()
    tid = gw.create(token)
    sink = EventApplier(gw.db.sessions, clock=gw.clock)
    sink.handle(waiting(tid))
    clearing = {
        "report": report(tid, 0),
        "finished": TrainingFinished(
            training_id=tid, generations=1, best_fitness=1.0, reason="generations", best_genome=None
        ),
        "failed": TrainingFailed(training_id=tid, error="boom"),
    }[event]
    assert sink.handle(clearing) == "applied"
    assert _waiting_of(gw, token, tid) is None


def test_waiting_after_the_end_is_ignored(gw: Any) -> None:
    """A late waiting event cannot mark a finished training as waiting."""
    token = gw.signup()
    tid = gw.create(token)
    sink = EventApplier(gw.db.sessions, clock=gw.clock)
    sink.handle(TrainingFailed(training_id=tid, error="boom"))
    assert sink.handle(waiting(tid)) == "duplicate"
    assert _waiting_of(gw, token, tid) is None


def test_consumer_applies_waiting_events_from_the_queue(gw: Any) -> None:
    """The events queue consumer accepts training_waiting (not dead-lettered)."""
    token = gw.signup()
    tid = gw.create(token)
    broker = InMemoryBroker(registry=CollectorRegistry())
    broker.declare(EVENTS_QUEUE)
    metrics = GatewayMetrics(CollectorRegistry())
    broker.consume(
        EVENTS_QUEUE, EventConsumer(EventApplier(gw.db.sessions), metrics, threading.Event())
    )
    broker.publish(EVENTS_QUEUE, encode(waiting(tid, reason=" x\x00 ")))
    broker.drain()
    assert _waiting_of(gw, token, tid) == "x"
    assert metrics.events.labels("training_waiting", "applied")._value.get() == 1


def test_training_page_shows_waiting_while_set(gw: Any) -> None:
    """The training page shows "waiting: <reason>" prominently, and hides it once cleared."""
    token = gw.signup("web")
    tid = gw.create(token)
    gw.client.post("/login", data={"username": "web", "password": PASSWORD})
    sink = EventApplier(gw.db.sessions, clock=gw.clock)
    sink.handle(waiting(tid))
    page = gw.client.get(f"/trainings/{tid}").text
    assert (
        '<p id="waiting-box" class="waiting" role="status" >waiting: '
        f'<span id="waiting-reason">{REASON}</span></p>'
    ) in page
    assert 'class="waiting-tag"' in gw.client.get("/trainings").text
    sink.handle(report(tid, 0))
    assert (
        '<p id="waiting-box" class="waiting" role="status" hidden>'
        in gw.client.get(f"/trainings/{tid}").text
    )


class _ApiOverTestClient(CliGateway):
    """The CLI's gateway client, answering from a TestClient instead of the network."""

    def __init__(self, gw: Any, token: str) -> None:
        super().__init__("http://testserver", token)
        self._gw = gw

    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        raw_json: bytes | None = None,
        query: dict[str, Any] | None = None,
        token: str | None = None,
    ) -> Any:
        resp = self._gw.client.request(
            method, path, params=query, headers=self._gw.auth(token or self.token or "")
        )
        assert resp.status_code < 400, resp.text
        return resp.json()


def test_watch_prints_when_the_training_waits_and_goes_on(
    gw: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``ezspark watch`` prints the waiting reason, then that it no longer waits."""
    token = gw.signup()
    tid = gw.create(token)
    sink = EventApplier(gw.db.sessions, clock=gw.clock)
    sink.handle(waiting(tid))
    script = iter(
        [
            report(tid, 0),
            TrainingFinished(
                training_id=tid,
                generations=1,
                best_fitness=1.0,
                reason="generations",
                best_genome=None,
            ),
        ]
    )
    monkeypatch.setattr(remote_trainings, "_gateway", lambda: _ApiOverTestClient(gw, token))
    monkeypatch.setattr(remote_common, "_sleep", lambda _s: sink.handle(next(script)))
    result = CliRunner().invoke(remote_trainings.watch, [tid])
    assert result.exit_code == 0, result.output
    # Only the command's own lines (the app under test logs to the same stdout).
    # Health lines (tests/unit/test_cli_health.py) are set apart by their prefix.
    lines = [
        line
        for line in result.output.splitlines()
        if line.startswith("-- ") and not line.startswith("-- health: ")
    ]
    head = f"-- CartPole-v0 training {tid}:"
    assert lines == [
        f"{head} queued",
        f"-- waiting: {REASON}",
        f"{head} running",
        "-- no longer waiting",
        f"{head} finished",
    ]
