"""What a failing environment tells its owner: the report's first error, deterministic
whatever order tasks come back in, capped, and the progress lines that show it."""

from __future__ import annotations

from ezspark_common.cli.env_errors import EnvErrorLines
from ezspark_common.evaluation.batch import Outcome
from ezspark_common.trainer import training
from ezspark_common.trainer.tasks import MAX_OUTCOME_ERROR, TaskPlan, merge_outcomes
from tests.support.configs import example_config


def _state() -> training.TrainingState:
    config = example_config("spec-example", gym_game_name="CartPole-v1", initial_population=20)
    return training.start(config)


def test_report_names_the_lowest_keyed_failed_genome_and_counts_all() -> None:
    """first_error is the message of the smallest failed key; errors counts every one."""
    state = _state()
    keys = sorted(state.population.genomes)
    failing = {keys[7]: "step raised RuntimeError: late", keys[3]: "reset raised KeyError: 'x'"}
    outcomes = {k: Outcome(k, (1.0,), 5, failing.get(k)) for k in keys}
    report = training.report_for(state, outcomes, 1.0)
    assert report.errors == 2
    assert report.first_error == "reset raised KeyError: 'x'"
    clean = training.report_for(state, {k: Outcome(k, (1.0,), 5) for k in keys}, 1.0)
    assert clean.errors == 0
    assert clean.first_error is None


def test_a_long_message_is_capped_and_survives_the_report_round_trip() -> None:
    """A huge exception text is cut to training.MAX_ERROR_CHARS; to_dict/from_dict keep it."""
    state = _state()
    keys = sorted(state.population.genomes)
    outcomes = {k: Outcome(k, (1.0,), 5, "x" * 10_000 if k == keys[0] else None) for k in keys}
    report = training.report_for(state, outcomes, 1.0)
    assert report.first_error is not None
    assert len(report.first_error) == training.MAX_ERROR_CHARS
    assert report.first_error.endswith("…")
    assert training.GenerationReport.from_dict(report.to_dict()) == report


def test_merged_error_comes_from_the_earliest_game_in_any_arrival_order() -> None:
    """Two tasks of one genome fail differently: the lower game's message wins, both orders."""
    early, late = TaskPlan(0, (5,), (0, 1)), TaskPlan(1, (5,), (2, 3))
    parts = [
        (late, [Outcome(5, (0.0, 0.0), 3, "step raised ValueError: game 2")]),
        (early, [Outcome(5, (0.0, 0.0), 4, "step raised ValueError: game 0")]),
    ]
    for order in (parts, parts[::-1]):
        merged = merge_outcomes(order, 4, -1.0)
        assert merged[5].error == "step raised ValueError: game 0"
        assert merged[5].returns == (-1.0,) * 4  # the floor, for every game


def test_each_new_message_is_printed_once_and_again_after_a_clean_generation() -> None:
    """The line appears for a new message, not for a repeat, and again after recovery."""
    lines = EnvErrorLines()
    shown = [
        lines.line(3, 10, "boom"),
        lines.line(4, 10, "boom"),
        lines.line(2, 10, "bang"),
        lines.line(0, 10, None),
        lines.line(1, 10, "bang"),
        lines.line(None, 10, None),  # an older gateway's report: no count, nothing shown
    ]
    assert [s is not None for s in shown] == [True, False, True, False, True, False]
    assert shown[0] is not None
    assert "3 of 10 genomes: boom" in shown[0]


def test_a_huge_message_from_an_evaluator_is_cut_when_merged() -> None:
    """A failed genome's message is kept to MAX_OUTCOME_ERROR characters, whoever sent it."""
    plan = TaskPlan(0, (1,), (0,))
    merged = merge_outcomes([(plan, [Outcome(1, (0.0,), 1, "x" * 10**6)])], 1, -1.0)
    assert merged[1].error == "x" * MAX_OUTCOME_ERROR
