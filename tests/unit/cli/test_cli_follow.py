"""``remote_common.follow``, the polling loop of ``ezspark watch`` and ``train --gateway``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from ezspark_common.cli import remote_common
from ezspark_common.cli.client import UnreachableError


class ScriptedGateway:
    """Answers polls from a script: an exception is raised, anything else returned."""

    def __init__(self, trainings: list[Any]) -> None:
        self._trainings: Iterator[Any] = iter(trainings)
        self.generations: list[dict[str, Any]] = []

    def get(self, path: str, **query: Any) -> Any:
        if path.endswith("/generations"):
            since = int(query["since"])
            items = [g for g in self.generations if g["generation"] >= since]
            return {"items": items, "next_since": since + len(items)}
        answer = next(self._trainings)
        if isinstance(answer, Exception):
            raise answer
        return answer


def _training(status: str, waiting: str | None = None) -> dict[str, Any]:
    return {"status": status, "gym_game_name": "CartPole-v1", "waiting": waiting}


def _report(gen: int) -> dict[str, Any]:
    return {
        "generation": gen,
        "best_fitness": 1.0,
        "mean_fitness": 0.5,
        "species": 1,
        "population": 4,
        "evaluations_per_s": 10.0,
    }


@pytest.fixture(autouse=True)
def _no_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(remote_common, "_sleep", lambda _s: None)


def test_follow_rides_out_a_missed_poll_and_prints_each_change_once(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """One unanswered poll warns once and is retried; status, waiting and every generation
    are printed once each; ``on_poll`` runs after each answered poll; the end state returns."""
    gw = ScriptedGateway(
        [
            _training("queued", waiting="no evaluator serves CartPole-v1"),
            UnreachableError("gateway down"),
            _training("running"),
            _training("finished"),
        ]
    )
    gw.generations = [_report(0), _report(1)]
    polls: list[int] = []
    end = remote_common.follow(gw, "t1", 0, 0.01, lambda: polls.append(1))  # type: ignore[arg-type]
    out, err = capsys.readouterr()
    assert end["status"] == "finished"
    assert len(polls) == 3
    assert err.count("warning: gateway down; retrying") == 1
    lines = out.splitlines()
    assert [line for line in lines if line.startswith("-- ")] == [
        "-- CartPole-v1 training t1: queued",
        "-- waiting: no evaluator serves CartPole-v1",
        "-- CartPole-v1 training t1: running",
        "-- no longer waiting",
        "-- CartPole-v1 training t1: finished",
    ]
    assert [line.split()[1] for line in lines if line.startswith("gen ")] == ["0", "1"]


def test_follow_gives_up_after_too_many_missed_polls() -> None:
    """More than MAX_MISSES unanswered polls in a row raise the last error."""
    misses = [UnreachableError(f"down {i}") for i in range(remote_common.MAX_MISSES + 1)]
    gw = ScriptedGateway([*misses, _training("finished")])
    with pytest.raises(UnreachableError, match=f"down {remote_common.MAX_MISSES}"):
        remote_common.follow(gw, "t1", 0, 0.01)  # type: ignore[arg-type]


def test_follow_prints_environment_errors_once_per_new_message(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A report with failed genomes shows the count in its line; the message is printed
    under it once, again only when it changes; an older gateway's reports show neither."""
    gw = ScriptedGateway([_training("running"), _training("finished")])
    why = {"first_error": "step raised RuntimeError: boom"}
    gw.generations = [
        _report(0) | {"errors": 4} | why,
        _report(1) | {"errors": 3} | why,
        _report(2) | {"errors": 1, "first_error": "reset raised KeyError: 'x'"},
        _report(3),
    ]
    remote_common.follow(gw, "t1", 0, 0.01)  # type: ignore[arg-type]
    lines = capsys.readouterr().out.splitlines()
    gens = [line for line in lines if line.startswith("gen ")]
    assert [line.endswith(f"errors {n}") for line, n in zip(gens, (4, 3, 1), strict=False)] == [
        True
    ] * 3
    assert "errors" not in gens[3]
    assert "safeness" not in gens[0]
    env = [line.strip() for line in lines if "environment failed" in line]
    assert env == [
        "environment failed for 4 of 4 genomes: step raised RuntimeError: boom",
        "environment failed for 1 of 4 genomes: reset raised KeyError: 'x'",
    ]


def test_follow_shows_the_safeness_counts_of_each_report(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A report with re-checks ends its line as ezspark train's does: mismatched/checked."""
    gw = ScriptedGateway([_training("finished")])
    gw.generations = [_report(0) | {"safeness_checks": 20, "safeness_mismatches": 3}]
    remote_common.follow(gw, "t1", 0, 0.01)  # type: ignore[arg-type]
    (line,) = [x for x in capsys.readouterr().out.splitlines() if x.startswith("gen ")]
    assert line.endswith("| safeness 3/20 mismatched")
