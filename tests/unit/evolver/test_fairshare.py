"""Fair sharing of the evaluators: pure policy, and the Scheduler's credit."""

from __future__ import annotations

from ezspark_common.messages import EnvSpace, EvaluatorAnnounced
from ezspark_evolver.fairshare import Scheduler, fair_shares, water_fill
from ezspark_evolver.registry import EvaluatorRegistry


def _registry(evaluators: int, env: str = "E-v0") -> EvaluatorRegistry:
    reg = EvaluatorRegistry(60.0, clock=lambda: 0.0)
    for i in range(evaluators):
        reg.announced(EvaluatorAnnounced(
            evaluator_id=f"ev{i}", interval_s=10.0,
            envs=[EnvSpace(env_id=env, input_size=1, output_size=2, action_space="",
                           observation_space="")]))
    return reg


def test_water_fill_gives_small_demands_all_and_splits_the_rest_equally() -> None:
    """Max-min fairness: a demand under its equal share is met; the rest share equally."""
    assert water_fill(10, {"a": 2, "b": 100, "c": 100}) == {"a": 2, "b": 4, "c": 4}
    assert water_fill(10, {"a": 3, "b": 3}) == {"a": 3, "b": 3}
    assert sum(water_fill(12, {"a": 50, "b": 50, "c": 50}).values()) == 12


def test_water_fill_never_starves_a_claimant_when_claimants_outnumber_capacity() -> None:
    """Every positive demand gets at least one unit, even beyond the capacity."""
    shares = water_fill(2, {"a": 5, "b": 5, "c": 5, "z": 0})
    assert shares == {"a": 1, "b": 1, "c": 1, "z": 0}


def test_fair_shares_split_by_user_first_then_by_training() -> None:
    """A user with four trainings gets the same share as a user with one."""
    demands = {("alice", f"a{i}"): 100 for i in range(4)} | {("bob", "b0"): 100}
    shares = fair_shares(16, demands)
    assert shares[("bob", "b0")] == 8
    assert sum(v for (user, _), v in shares.items() if user == "alice") == 8


def test_scheduler_grants_within_the_window_and_rebalances_when_a_peer_joins() -> None:
    """One training may fill the whole window; a newcomer gets its fair share at once, the
    first refills only while under its own share, and released credit wakes waiting peers."""
    sched = Scheduler(_registry(4), per_slot=3)  # window 12
    woken: list[str] = []
    sched.join("big", "alice", "E-v0", lambda: woken.append("big"))
    assert sched.grant("big", 100) == 12
    assert sched.grant("big", 88) == 0
    sched.join("small", "bob", "E-v0", lambda: woken.append("small"))
    assert sched.grant("small", 10) == 6  # bob's share of 12, not behind alice's refills
    for _ in range(6):
        sched.release("big")  # alice drops to 6 = her share: nothing more for her
    assert sched.grant("big", 88) == 0
    assert "small" in woken  # bob still wants 4 more: he is told credit moved
    sched.release("big")
    assert sched.grant("big", 88) == 1
    assert sched.in_flight("E-v0") == 12


def test_scheduler_window_follows_the_live_evaluators() -> None:
    """The window is per_slot × live slots of the environment, with a floor when none."""
    assert Scheduler(_registry(0), per_slot=3, min_window=2).window("E-v0") == 2
    assert Scheduler(_registry(5), per_slot=3).window("E-v0") == 15
    assert Scheduler(_registry(5), per_slot=3).window("Other-v0") == 2
