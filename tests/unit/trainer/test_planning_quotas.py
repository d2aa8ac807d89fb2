"""Task sizing for the live evaluators, and the per-user quotas (pure functions)."""

from __future__ import annotations

from ezspark_common.config import config_with, load_config
from ezspark_common.quotas import Quotas, quota_errors, work_per_generation
from ezspark_common.trainer.tasks import game_groups, plan_chunks, split_tasks
from tests.support.configs import EXAMPLES

CARTPOLE = load_config(EXAMPLES / "cartpole.json")


def test_plan_gives_every_evaluator_several_tasks() -> None:
    """Population 100 × 5 games, sub_games 1: with 8 or 16 evaluators, at least 4 tasks
    per evaluator; with fewer, one task per game group (nothing to balance)."""
    for slots in (8, 16):
        assert len(plan_chunks(100, 5, slots)) * 5 >= 4 * slots
    for slots in (1, 2):
        assert plan_chunks(100, 5, slots) == [100]


def test_plan_respects_the_maximum_and_the_population() -> None:
    """Never more genomes per task than the maximum, nor than the population."""
    assert max(plan_chunks(5000, 1, 1, max_batch=300)) == 300
    assert plan_chunks(3, 1, 1, seconds_per_genome=1e-6) == [3]
    assert plan_chunks(100, len(game_groups(5, 5)), 1) == [100]


def test_quota_errors_name_the_limit_and_the_key() -> None:
    """Over-quota configs get one error per quota, naming the key and the setting."""
    quotas = Quotas(population=1000, work_per_generation=10_000_000)
    ok = config_with(CARTPOLE, max_population=1000)
    assert work_per_generation(ok) == 2_500_000
    assert quota_errors(ok, quotas) == []
    big = config_with(CARTPOLE, max_population=50_000)
    errors = dict(quota_errors(big, quotas))
    assert "EZSPARK_QUOTA_POPULATION" in errors["max_population"]
    assert "EZSPARK_QUOTA_WORK_PER_GENERATION" in errors["max_number_of_steps"]
    assert "50,000 × 5 × 500 = 125,000,000" in errors["max_number_of_steps"]


def test_shipped_examples_fit_the_default_quotas() -> None:
    """The default quotas accept every shipped example."""
    for name in ("cartpole", "acrobot", "lunarlander", "spec-example"):
        assert quota_errors(load_config(EXAMPLES / f"{name}.json"), Quotas()) == []


def test_chunks_shrink_towards_the_end_and_cover_every_genome_once() -> None:
    """Guided self-scheduling: sizes never grow, sum to the population, end small."""
    for n, groups, slots in ((100, 5, 8), (500, 5, 16), (1000, 1, 4), (7, 1, 32)):
        sizes = plan_chunks(n, groups, slots)
        assert sum(sizes) == n
        assert sizes == sorted(sizes, reverse=True)
        assert sizes[-1] <= max(1, sizes[0] // 4) or len(sizes) == 1
        specs = split_tasks(list(range(n)), groups, 1, sizes)
        assert sorted(k for s in specs if s.game_indices == (0,) for k in s.genome_keys) == list(
            range(n)
        )


def test_chunks_respect_the_measured_minimum_and_the_maximum() -> None:
    """No chunk below min_task_s of measured work (except the remainder) or above max."""
    sizes = plan_chunks(1000, 1, 2, seconds_per_genome=1e-3, min_task_s=0.05, max_batch=300)
    assert max(sizes) <= 300
    assert all(s >= 50 for s in sizes[:-1])
    assert plan_chunks(100, 5, 1) == [100]  # one evaluator: one task per game group


def test_chunks_stay_below_the_maximum_task_time() -> None:
    """With a measured cost, no chunk exceeds max_task_s of work (it bounds others' wait)."""
    sizes = plan_chunks(10_000, 1, 1, seconds_per_genome=0.01, max_task_s=0.5)
    assert max(sizes) == 50
    assert sum(sizes) == 10_000
