"""Run health: the stalled rule, the ETA, progress events, times and finish reasons."""

from __future__ import annotations

import re
from typing import Any

import pytest

from ezspark_common.wire.messages import (
    GenerationFinished,
    GenerationProgressed,
    SavedGenome,
    TrainingFailed,
    TrainingFinished,
    TrainingWaiting,
    WireGenome,
)
from ezspark_gateway.core.events import EventApplier
from ezspark_gateway.core.health import (
    STALL_MIN_S,
    eta_s,
    stall_threshold_s,
    typical_generation_s,
)
from ezspark_gateway.storage.models import GenerationRow

GENOME = WireGenome(
    key=5,
    node_ids=[0, 1],
    biases=[0.0, 0.0],
    innov=[0],
    src=[-1],
    dst=[0],
    weight=[2.0],
    enabled=[True],
)


def _row(gen: int, at: float) -> GenerationRow:
    return GenerationRow(generation=gen, received_at=at)


def _report(tid: str, gen: int, best: float = 1.0, **extra: Any) -> GenerationFinished:
    return GenerationFinished(
        training_id=tid,
        generation=gen,
        best_fitness=best,
        mean_fitness=best / 2,
        species=2,
        population=20,
        evaluations_per_s=39.8,
        best_genome_key=gen,
        **extra,
    )


def test_typical_generation_time_is_the_median_gap_ignoring_bulk_rows() -> None:
    """Median of consecutive arrival gaps; a hand-over's rows stored at once do not count."""
    rows = [_row(0, 100.0), _row(1, 100.0), _row(2, 110.0), _row(3, 112.0), _row(4, 150.0)]
    assert typical_generation_s(rows) == 10.0  # gaps 10, 2, 38
    assert typical_generation_s([_row(0, 5.0)]) is None


def test_stall_threshold_is_a_minute_or_five_generations() -> None:
    """max(60 s, 5 x typical); 60 s before the typical time is known."""
    assert stall_threshold_s(None) == STALL_MIN_S
    assert stall_threshold_s(2.0) == STALL_MIN_S
    assert stall_threshold_s(30.0) == 150.0


@pytest.mark.parametrize(
    ("left", "typical", "since", "expected"),
    [(10, 3.0, 1.0, 29.0), (10, 3.0, 9.0, 27.0), (0, 3.0, 1.0, 0.0), (5, None, 1.0, None)],
)
def test_eta(left: int, typical: float | None, since: float, expected: float | None) -> None:
    """Generations left x typical, less the running one's time (at most one typical)."""
    assert eta_s(left, typical, since) == expected


def _health(gw: Any, token: str, tid: str) -> dict[str, Any]:
    body = gw.client.get(f"/api/trainings/{tid}", headers=gw.auth(token)).json()
    return dict(body["health"])


def test_progress_and_reports_drive_health(gw: Any) -> None:
    """Progress sets tasks and evaluators and starts the run; a report counts the
    generation and clears the tasks; ETA follows the measured generation time."""
    token = gw.signup()
    tid = gw.create(token)
    sink = EventApplier(gw.db.sessions, clock=gw.clock)
    start = gw.clock.now
    h = _health(gw, token, tid)
    assert (h["state"], h["generations_done"], h["running_generation"]) == ("queued", 0, 1)
    assert h["generations_total"] == 600000
    assert h["last_event_at"] is None
    gw.clock.now += 1
    progress = GenerationProgressed(
        training_id=tid, generation=0, done=3, total=8, evaluators=2, phase="local"
    )
    assert sink.handle(progress) == "applied"
    h = _health(gw, token, tid)
    assert (h["state"], h["phase"], h["tasks_done"], h["tasks_total"]) == ("running", "local", 3, 8)
    assert h["evaluators_answering"] == 2
    assert h["last_event_at"] == start + 1
    for gen in range(3):
        gw.clock.now += 4
        sink.handle(_report(tid, gen, phase="local"))
    h = _health(gw, token, tid)
    assert (h["generations_done"], h["running_generation"], h["tasks_done"]) == (3, 4, None)
    assert h["generation_s"] == 4.0
    gw.clock.now += 1
    assert h["eta_s"] == (600000 - 3) * 4.0
    assert _health(gw, token, tid)["eta_s"] == (600000 - 3) * 4.0 - 1
    # A late progress event of an already reported generation changes nothing.
    assert sink.handle(progress) == "duplicate"


def test_silence_past_the_threshold_is_stalled_and_hides_the_eta(gw: Any) -> None:
    """No event for max(60 s, 5 x typical) makes an active run 'stalled', without ETA;
    the next event makes it healthy again."""
    token = gw.signup()
    tid = gw.create(token)
    sink = EventApplier(gw.db.sessions, clock=gw.clock)
    for gen in range(3):
        gw.clock.now += 20
        sink.handle(_report(tid, gen))
    gw.clock.now += 99  # 5 x 20 s = 100 s
    h = _health(gw, token, tid)
    assert (h["state"], h["stalled"], h["stalled_after_s"]) == ("running", False, 100.0)
    gw.clock.now += 2
    h = _health(gw, token, tid)
    assert (h["state"], h["stalled"], h["eta_s"]) == ("stalled", True, None)
    assert h["last_event_age_s"] == 101.0
    sink.handle(GenerationProgressed(training_id=tid, generation=3, done=1, total=4, evaluators=1))
    assert _health(gw, token, tid)["state"] == "running"


def test_a_queued_run_nobody_answers_stalls_after_a_minute(gw: Any) -> None:
    """With no event at all, the creation time counts: stalled after 60 s."""
    token = gw.signup()
    tid = gw.create(token)
    gw.clock.now += STALL_MIN_S - 1
    assert _health(gw, token, tid)["state"] == "queued"
    gw.clock.now += 2
    assert _health(gw, token, tid)["state"] == "stalled"


def test_stall_min_s_setting_sets_the_minimum_silence(make_gateway: Any) -> None:
    """With ``stall_min_s`` 10, a queued run nobody answers is stalled after 10 s, not 60."""
    gw = make_gateway(stall_min_s=10.0)
    token = gw.signup()
    tid = gw.create(token)
    gw.clock.now += 9
    assert _health(gw, token, tid)["state"] == "queued"
    gw.clock.now += 2
    h = _health(gw, token, tid)
    assert (h["state"], h["stalled_after_s"]) == ("stalled", 10.0)


def test_waiting_is_said_and_counts_as_an_event(gw: Any) -> None:
    """A waiting notice makes the state 'waiting' and refreshes the last event time."""
    token = gw.signup()
    tid = gw.create(token)
    sink = EventApplier(gw.db.sessions, clock=gw.clock)
    gw.clock.now += 30
    sink.handle(TrainingWaiting(training_id=tid, waiting=True, reason="no evaluator serves X"))
    h = _health(gw, token, tid)
    assert (h["state"], h["last_event_age_s"]) == ("waiting", 0.0)


def test_finish_sets_the_end_time_and_says_why(gw: Any) -> None:
    """Finished runs have finished_at, elapsed up to it, and the reason in words."""
    token = gw.signup()
    tid = gw.create(token)
    created = gw.clock.now
    sink = EventApplier(gw.db.sessions, clock=gw.clock)
    gw.clock.now += 50
    sink.handle(
        TrainingFinished(
            training_id=tid,
            generations=7,
            best_fitness=3.0,
            reason="fitness_threshold",
            best_genome=GENOME,
        )
    )
    gw.clock.now += 1000
    h = _health(gw, token, tid)
    assert (h["state"], h["finished_at"], h["elapsed_s"]) == ("finished", created + 50, 50.0)
    assert h["finish_reason_text"].startswith("a genome reached the fitness threshold")
    assert h["eta_s"] is None
    assert h["stalled"] is False
    other = gw.create(token)
    sink.handle(TrainingFailed(training_id=other, error="ValueError: boom\nmore"))
    assert _health(gw, token, other)["finish_reason_text"] == "failed: ValueError: boom"


def test_champion_makes_the_best_genome_available_during_the_run(gw: Any) -> None:
    """A report's champion is stored at once (download and drawing work while running);
    an older, weaker champion applied late does not replace a better one."""
    token = gw.signup()
    tid = gw.create(token)
    sink = EventApplier(gw.db.sessions, clock=gw.clock)
    better = GENOME.model_copy(update={"key": 9})
    sink.handle(
        _report(
            tid,
            1,
            5.0,
            champion=SavedGenome(generation=1, fitness=5.0, returns=[5.0], genome=better),
        )
    )
    body = gw.client.get(f"/api/trainings/{tid}", headers=gw.auth(token)).json()
    assert body["status"] == "running"
    assert body["has_best_genome"] is True
    sink.handle(
        _report(
            tid,
            0,
            2.0,
            champion=SavedGenome(generation=0, fitness=2.0, returns=[2.0], genome=GENOME),
        )
    )
    best = gw.client.get(f"/api/trainings/{tid}/best", headers=gw.auth(token)).json()
    assert best["key"] == 9
    svg = gw.client.get(f"/api/trainings/{tid}/best.svg", headers=gw.auth(token))
    assert svg.status_code == 200


def test_list_and_page_count_generations_alike(gw: Any) -> None:
    """After reports of generations 0-9 the list says 10 and the page '10 of 600000'
    (finished generations, counted from 1), and the health panel is on the page."""
    token = gw.signup("counter")
    gw.browser_login("counter")
    tid = gw.create(token)
    sink = EventApplier(gw.db.sessions, clock=gw.clock)
    for gen in range(10):
        gw.clock.now += 1
        sink.handle(_report(tid, gen))
    listing = gw.client.get("/trainings").text
    assert re.search(r'<td data-label="Generations[^"]*">10</td>', listing)
    page = gw.client.get(f"/trainings/{tid}").text
    assert '<span id="s-generation">10 of 600000</span>' in page
    assert '<dd id="h-generations">10 done of 600000</dd>' in page
    assert '<dd id="h-running">generation 11</dd>' in page


def test_a_handover_shows_its_local_generations_and_champion_at_once(gw: Any) -> None:
    """The local run's generations are stored with phase 'local' and their shape, and
    its champion is the best network before the cluster reports anything."""
    from tests.unit.gateway.test_gateway_handoff import CONFIG, checkpoint, post

    token = gw.signup("handy")
    resp = post(gw, token, {"config": CONFIG, "checkpoint": checkpoint()})
    assert resp.status_code == 201, resp.text
    tid = resp.json()["id"]
    items = gw.client.get(f"/api/trainings/{tid}/generations", headers=gw.auth(token)).json()[
        "items"
    ]
    assert len(items) == CONFIG["alone_training_iterations"]
    assert {i["phase"] for i in items} == {"local"}
    assert all(sum(i["species_sizes"]) == i["population"] for i in items)
    assert resp.json()["has_best_genome"] is True
    svg = gw.client.get(f"/api/trainings/{tid}/best.svg", headers=gw.auth(token))
    assert svg.status_code == 200


def test_environment_errors_of_the_newest_report_are_said_and_stored(gw: Any) -> None:
    """A report's failed genomes and first message reach the health text, the history and
    the page (escaped); a clean newer report clears the text, the history keeps both."""
    token = gw.signup()
    tid = gw.create(token)
    sink = EventApplier(gw.db.sessions, clock=gw.clock)
    why = "step raised ValueError: <b>bad</b> action"
    sink.handle(_report(tid, 0, errors=7, first_error=why))
    h = _health(gw, token, tid)
    assert h["env_errors_text"] == (
        f"7 of 20 genomes failed in generation 1 (they get the floor fitness): {why}"
    )
    page = gw.client.get(f"/trainings/{tid}", headers=gw.auth(token)).text
    assert "&lt;b&gt;bad&lt;/b&gt; action" in page
    assert "<b>bad</b>" not in page
    sink.handle(_report(tid, 1, errors=0))
    assert _health(gw, token, tid)["env_errors_text"] is None
    items = gw.client.get(f"/api/trainings/{tid}/generations", headers=gw.auth(token)).json()
    got = [(r["errors"], r["first_error"]) for r in items["items"]]
    assert got == [(7, why), (0, None)]


def test_disagreeing_safeness_rechecks_are_said_with_their_usual_cause(gw: Any) -> None:
    """Mismatched re-checks of the newest report are counted and explained in run health
    and kept per generation in the history; a clean newer report clears the text."""
    token = gw.signup()
    tid = gw.create(token)
    sink = EventApplier(gw.db.sessions, clock=gw.clock)
    sink.handle(_report(tid, 0, safeness_checks=10, safeness_mismatches=4))
    text = _health(gw, token, tid)["safeness_text"]
    assert text.startswith("4 of 10 re-checked genomes got two different answers in generation 1")
    assert "not deterministic" in text
    sink.handle(_report(tid, 1, safeness_checks=10, safeness_mismatches=0))
    assert _health(gw, token, tid)["safeness_text"] is None
    items = gw.client.get(f"/api/trainings/{tid}/generations", headers=gw.auth(token)).json()
    got = [(r["safeness_checks"], r["safeness_mismatches"]) for r in items["items"]]
    assert got == [(10, 4), (10, 0)]
