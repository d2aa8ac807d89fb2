"""``benchmarks.bench_learn``: running one side only, merging one-side results, and the
ratio's bootstrap interval."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from benchmarks import bench_learn, learn_table
from benchmarks.learn_tasks import ours_config
from ezspark_common import rng as rngs
from ezspark_common.evaluation.batch import GameSetup, evaluate_batch
from ezspark_common.trainer.evaluators import InProcessEvaluator
from ezspark_common.trainer.generations import NoSink, run_generations
from ezspark_common.trainer.training import start


def _runs(*evaluations: int) -> list[dict[str, Any]]:
    """Solved runs with these evaluation counts."""
    return [
        {"seconds": 1.0, "evaluations": e, "generations": 1, "best": 4.0, "solved": True}
        for e in evaluations
    ]


def test_run_one_side_runs_only_that_side() -> None:
    """``sides=("ezspark",)`` runs EzSpark's seeds and leaves neat-python's list empty."""
    results = bench_learn.run(["xor"], bench_learn.Plan(1), sides=bench_learn.SIDES["ours"])
    assert len(results["xor"]["ezspark"]) == 1
    assert results["xor"]["neat"] == []


def test_merge_keeps_each_files_side() -> None:
    """An EzSpark-only file and a neat-python-only file merge into one row with both sides."""
    ours = {"results": {"xor": {"ezspark": _runs(100, 200), "neat": []}}}
    theirs = {"results": {"xor": {"ezspark": [], "neat": _runs(300)}}}
    merged = learn_table.merge([ours, theirs])
    assert merged["xor"] == {"ezspark": _runs(100, 200), "neat": _runs(300)}
    row = bench_learn.rows(merged)[2]
    assert "2/2 / 1/1" in row
    assert "150 / 300" in row
    assert "0.50×" in row


def test_each_winner_is_judged_on_games_no_generation_played() -> None:
    """A seed's winner replays on 100 game seeds of its own, none a generation's games."""
    seeds = bench_learn.holdout_seeds(3)
    assert len(set(seeds)) == bench_learn.HOLDOUT_GAMES == 100
    assert seeds == bench_learn.holdout_seeds(3) != bench_learn.holdout_seeds(4)
    assert {s for g in range(500) for s in rngs.game_seeds(3, g, 5)}.isdisjoint(seeds)


def test_our_winners_mean_is_its_best_genome_on_the_new_games() -> None:
    """``new_games`` is the run's best genome's mean return over the 100 held-out games."""
    task = bench_learn.task_for("acrobot", generations=1)
    result = bench_learn.ours(task, 5)
    config = ours_config(task, 5)
    state = run_generations(start(config), InProcessEvaluator(), NoSink())
    assert state.best is not None
    [outcome] = evaluate_batch(
        [state.best.genome], GameSetup.of(config), bench_learn.holdout_seeds(5)
    )
    assert len(outcome.returns) == 100
    assert result["new_games"] == outcome.mean
    assert result["new_games"] != result["best"]  # other games than the five it won on


def test_the_table_gives_each_sides_winner_on_new_games() -> None:
    """The column shows each side's median winner; a side run before it existed shows —."""
    winners = (210.0, 190.0, 250.0)
    ours = [{**r, "new_games": v} for r, v in zip(_runs(150, 150, 150), winners, strict=True)]
    theirs = [{**r, "new_games": 120.5} for r in _runs(300)]
    assert "| 210.0 / 120.5 |" in bench_learn.rows({"xor": {"ezspark": ours, "neat": theirs}})[2]
    old = bench_learn.rows({"xor": {"ezspark": ours, "neat": _runs(300)}})[2]
    assert "| 210.0 / — |" in old


def test_the_ratio_interval_collapses_when_seeds_agree() -> None:
    """Seeds that all take the same evaluations leave no doubt: the interval is the ratio."""
    assert learn_table.ratio_interval(_runs(150, 150, 150), _runs(300, 300)) == (0.5, 0.5)


def test_the_ratio_interval_shows_the_spread_of_noisy_seeds() -> None:
    """Spread-out seeds give a wide, repeatable interval around the ratio of the medians."""
    ours = _runs(*(150 * g for g in (8, 6, 32, 12, 16, 12, 24, 28, 4, 8)))
    theirs = _runs(*(150 * g for g in (22, 22, 21, 31, 55, 21, 23, 50, 21, 83)))
    lo, hi = learn_table.ratio_interval(ours, theirs)
    assert lo < 12 / 22.5 < hi
    assert hi - lo > 0.5
    assert learn_table.ratio_interval(ours, theirs) == (lo, hi)
    assert (
        f"0.53× ({lo:.2f}–{hi:.2f})"
        in bench_learn.rows({"xor": {"ezspark": ours, "neat": theirs}})[2]
    )


def test_the_ratio_interval_is_empty_when_neither_side_solves() -> None:
    """No seed solved on either side: there is no ratio to bound."""
    never = [{"seconds": 1.0, "evaluations": 9, "generations": 1, "best": 0.0, "solved": False}]
    lo, hi = learn_table.ratio_interval(never, never)
    assert math.isnan(lo)
    assert math.isnan(hi)


def test_merge_a_rerun_replaces_its_seed() -> None:
    """A later file's run of a seed replaces the earlier file's; its other seeds stay."""
    first = {"results": {"xor": {"ezspark": _runs(100, 200), "neat": _runs(300)}}}
    second = {"results": {"xor": {"ezspark": _runs(50), "neat": []}}}
    merged = learn_table.merge([first, second])
    assert merged["xor"] == {"ezspark": _runs(50, 200), "neat": _runs(300)}


def test_merge_joins_the_seed_ranges_of_files() -> None:
    """Files of seeds 0-1 and 5-6 of a side make one side of four runs, in seed order."""
    later = {"first_seed": 5, "results": {"xor": {"ezspark": [], "neat": _runs(700, 800)}}}
    first = {"first_seed": 0, "results": {"xor": {"ezspark": [], "neat": _runs(300, 400)}}}
    merged = learn_table.merge([later, first])
    assert merged["xor"]["neat"] == _runs(300, 400, 700, 800)
    assert merged["xor"]["ezspark"] == []


def test_merge_refuses_sides_run_with_other_settings() -> None:
    """EzSpark runs with other keys, or a task whose sides ran other caps, are not joined."""
    plain = {"results": {"xor": {"ezspark": _runs(100), "neat": _runs(300)}}}
    keyed = {"first_seed": 1, "overrides": {"elitism": "population"}, "results": plain["results"]}
    with pytest.raises(ValueError, match="xor, ezspark: the files ran it with other settings"):
        learn_table.merge([plain, keyed])
    neat_only = {
        "first_seed": 1,
        "overrides": {"elitism": "population"},
        "results": {"xor": {"ezspark": [], "neat": _runs(400)}},
    }
    assert learn_table.merge([plain, neat_only])["xor"]["neat"] == _runs(300, 400)
    capped = {"first_seed": 1, "generations": 5, "results": {"xor": {"neat": _runs(50)}}}
    with pytest.raises(ValueError, match=r"xor, neat: .*cap None.*cap 5"):
        learn_table.merge([plain, capped])
    ours_capped = {"generations": 5, "results": {"xor": {"ezspark": _runs(50), "neat": []}}}
    theirs_uncapped = {"results": {"xor": {"ezspark": [], "neat": _runs(300)}}}
    with pytest.raises(ValueError, match=r"xor, neat: .*cap 5.*cap None"):
        learn_table.merge([ours_capped, theirs_uncapped])


def test_new_results_file_is_never_shared(tmp_path: Path) -> None:
    """Two runs starting in the same second get two files, each created at once."""
    first = learn_table.new_results_file(tmp_path)
    second = learn_table.new_results_file(tmp_path)
    assert first != second
    assert first.exists()
    assert second.exists()


def test_a_missing_neat_python_is_found_before_the_first_run() -> None:
    """Without neat-python installed, a run with its side is refused at once; ours runs."""
    absent, present = (lambda _: None), (lambda _: object())
    assert "neat-python is not installed" in (bench_learn.baseline_missing(("neat",), absent) or "")
    assert bench_learn.baseline_missing(("ezspark", "neat"), present) is None
    assert bench_learn.baseline_missing(("ezspark",), absent) is None


@pytest.mark.parametrize(
    ("task", "example_name"),
    [
        ("lunarlander", "lunarlander"),
        ("lunarlander-continuous", "lunarlander-continuous"),
        ("mountaincar-novelty", "mountaincar"),
    ],
)
def test_task_runs_the_example_users_run(task: str, example_name: str) -> None:
    """The benchmark's LunarLander (both kinds) and MountainCar settings are their examples'."""
    root = Path(__file__).resolve().parents[2]
    example = json.loads((root / "examples" / f"{example_name}.json").read_text())
    config = bench_learn.ours_config(bench_learn.TASKS[task], seed=0)
    # The run's length and seed, and safeness (re-played games that only a shared
    # training needs), are the benchmark's own; every key that shapes evolution must match.
    own = ("seed", "generations", "alone_training_iterations", "safeness")
    for key, value in example.items():
        if key not in own:
            assert getattr(config, key) == value, key


def test_a_plan_runs_its_own_seeds_and_cap(tmp_path: Path) -> None:
    """``first_seed`` and ``generations`` choose the seeds run and cap every run; the file
    records them."""
    plan = bench_learn.Plan(2, first_seed=3, generations=1)
    save = tmp_path / "run.json"
    results = bench_learn.run(["acrobot"], plan, save=save, sides=bench_learn.SIDES["ours"])
    task = bench_learn.task_for("acrobot", generations=1)

    def runs(seeds: range) -> list[dict[str, Any]]:
        return [
            {k: v for k, v in bench_learn.ours(task, s).items() if k != "seconds"} for s in seeds
        ]

    got = [{k: v for k, v in r.items() if k != "seconds"} for r in results["acrobot"]["ezspark"]]
    assert got == runs(range(3, 5))
    assert got != runs(range(2))
    assert all(r["generations"] == 1 for r in got)
    saved = json.loads(save.read_text())
    assert (saved["first_seed"], saved["seeds"], saved["generations"]) == (3, 2, 1)


def test_no_stop_runs_every_generation_of_the_cap(tmp_path: Path) -> None:
    """``stops=False`` runs past the threshold to the cap, still judging "solved" and the
    winner; the file records it."""
    save = tmp_path / "run.json"
    plan = bench_learn.Plan(1, generations=2, stops=False)
    [run] = bench_learn.run(["acrobot"], plan, save=save, sides=("ezspark",))["acrobot"]["ezspark"]
    [stopped] = bench_learn.run(
        ["acrobot"], bench_learn.Plan(1, generations=2), sides=("ezspark",)
    )["acrobot"]["ezspark"]
    assert (run["generations"], run["evaluations"], run["solved"]) == (2, 300, True)
    assert stopped["generations"] == 1  # a random genome solves Acrobot in generation 0
    assert "new_games" in run
    assert json.loads(save.read_text())["stops"] is False
    assert plan.tasks(["acrobot"])["acrobot"].ours["fitness_threshold"] is None


def test_merge_refuses_runs_to_the_threshold_beside_runs_to_the_cap() -> None:
    """A --no-stop file and a file that stopped at the threshold are not one row."""
    stopped = {"results": {"xor": {"ezspark": _runs(150), "neat": []}}}
    capped = {"stops": False, "results": {"xor": {"ezspark": _runs(300), "neat": []}}}
    with pytest.raises(ValueError, match="--no-stop"):
        learn_table.merge([stopped, capped])


def test_table_of_runs_to_the_cap_says_what_its_columns_mean(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--table`` of --no-stop files warns that evaluations are the budget; others do not."""
    capped = {"stops": False, "results": {"xor": {"ezspark": _runs(300), "neat": _runs(300)}}}
    _table(tmp_path, monkeypatch, capped)
    assert bench_learn.TO_THE_CAP in capsys.readouterr().out
    _table(tmp_path, monkeypatch, {**capped, "stops": True})
    assert bench_learn.TO_THE_CAP not in capsys.readouterr().out


def test_set_keys_reach_our_config_only() -> None:
    """``--set`` values, read as JSON or else as strings, land in EzSpark's config; the cap
    applies to both sides."""
    overrides = bench_learn.parse_overrides(["elitism=species", "weight_mutation_power=0.2"])
    assert overrides == {"elitism": "species", "weight_mutation_power": 0.2}
    task = bench_learn.task_for("lunarlander", 13, overrides)
    config = bench_learn.ours_config(task, seed=0)
    assert (config.elitism, config.weight_mutation_power, config.generations) == (
        "species",
        0.2,
        13,
    )
    assert task.generations == 13  # neat-python's side runs to the same cap
    assert bench_learn.TASKS["lunarlander"].ours["elitism"] == "population"  # left as it was


def test_a_bad_plan_is_refused_before_any_run() -> None:
    """An unknown key, a bad value or a bad seed range is named before the first run."""
    problem = bench_learn.plan_problem(bench_learn.Plan(1, overrides={"elitsm": 1}), ["xor"])
    assert problem is not None
    assert "elitsm" in problem
    problem = bench_learn.plan_problem(bench_learn.Plan(1, overrides={"elitism": "all"}), ["xor"])
    assert problem is not None
    assert "elitism" in problem
    assert bench_learn.plan_problem(bench_learn.Plan(0), ["xor"]) is not None
    assert bench_learn.plan_problem(bench_learn.Plan(1, generations=0), ["xor"]) is not None
    assert bench_learn.plan_problem(bench_learn.Plan(1, generations=5), ["xor"]) is None
    with pytest.raises(ValueError, match="KEY=VALUE"):
        bench_learn.parse_overrides(["elitism"])


def _table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *files: dict[str, Any]) -> None:
    """Write ``files`` as results files and run ``bench_learn --table`` on them."""
    paths = [tmp_path / f"{i}.json" for i in range(len(files))]
    for path, data in zip(paths, files, strict=True):
        path.write_text(json.dumps(data))
    monkeypatch.setattr("sys.argv", ["bench_learn", "--table", *map(str, paths)])
    bench_learn.main()


def test_table_flag_prints_one_row_of_joined_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--table`` joins two files of one side's seeds into a row counting all of them."""
    first = {"results": {"xor": {"ezspark": _runs(150), "neat": _runs(600)}}}
    later = {"first_seed": 1, "results": {"xor": {"ezspark": _runs(450), "neat": []}}}
    _table(tmp_path, monkeypatch, first, later)
    assert "| 2/2 / 1/1 | 300 / 600 | 0.50×" in capsys.readouterr().out


def test_table_labels_each_task_with_its_own_cap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Files of two tasks run with different caps label each row with that task's cap."""
    xor = {"results": {"xor": {"ezspark": _runs(150), "neat": _runs(300)}}}
    lander = {
        "generations": 13,
        "results": {"lunarlander": {"ezspark": _runs(900), "neat": _runs(1800)}},
    }
    _table(tmp_path, monkeypatch, xor, lander)
    out = capsys.readouterr().out
    assert "| xor (4, 150 × 100) |" in out
    assert "| lunarlander (200, 150 × 13) |" in out


def test_table_flag_refuses_files_of_other_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--table`` on files run with other EzSpark keys exits with the reason, no table."""
    plain = {"results": {"xor": {"ezspark": _runs(150), "neat": []}}}
    keyed = {"overrides": {"elitism": "population"}, "results": {"xor": {"ezspark": _runs(9)}}}
    with pytest.raises(SystemExit) as exc:
        _table(tmp_path, monkeypatch, plain, keyed)
    assert exc.value.code == 2
    assert "xor, ezspark: the files ran it with other settings" in capsys.readouterr().err
