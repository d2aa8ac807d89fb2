"""Fair sharing of the evaluators: pure policy, and the Scheduler's credit."""

from __future__ import annotations

from ezspark_common.wire.messages import EnvSpace, EvaluatorAnnounced
from ezspark_evolver.fairshare import Scheduler, Usage, fair_shares, water_fill
from ezspark_evolver.registry import EvaluatorRegistry


def _registry(evaluators: int, env: str = "E-v0") -> EvaluatorRegistry:
    reg = EvaluatorRegistry(60.0, clock=lambda: 0.0)
    for i in range(evaluators):
        reg.announced(
            EvaluatorAnnounced(
                evaluator_id=f"ev{i}",
                interval_s=10.0,
                envs=[
                    EnvSpace(
                        env_id=env,
                        input_size=1,
                        output_size=2,
                        action_space="",
                        observation_space="",
                    )
                ],
            )
        )
    return reg


def test_water_fill_gives_small_demands_all_and_splits_the_rest_equally() -> None:
    """Max-min fairness: a demand under its equal share is met; the rest share equally."""
    assert water_fill(10, {"a": 2, "b": 100, "c": 100}) == {"a": 2, "b": 4, "c": 4}
    assert water_fill(10, {"a": 3, "b": 3, "z": 0}) == {"a": 3, "b": 3, "z": 0}
    assert sum(water_fill(12, {"a": 50, "b": 50, "c": 50}).values()) == 12


def test_fair_shares_split_by_user_first_then_by_training() -> None:
    """A user with four trainings gets the same share as a user with one."""
    demands = {("alice", f"a{i}"): 100.0 for i in range(4)} | {("bob", "b0"): 100.0}
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


def test_scheduler_shares_evaluator_time_not_task_counts() -> None:
    """Alice's tasks take 4× longer than Bob's: Bob gets 4× as many tasks in flight, so
    both get the same evaluator time."""
    sched = Scheduler(_registry(4), per_slot=2.5)  # window 10
    sched.join("slow", "alice", "E-v0", lambda: None)
    sched.join("fast", "bob", "E-v0", lambda: None)
    assert sched.grant("slow", 100, task_s=0.8) == 10  # alone: the whole window
    fast = sched.grant("fast", 100, task_s=0.2)
    for _ in range(10):
        sched.release("slow")
    slow = sched.grant("slow", 90, task_s=0.8)
    assert (fast, slow) == (12, 3)  # 2.4 s of evaluator time each
    assert fast * 0.2 == slow * 0.8


def test_scheduler_never_starves_a_user() -> None:
    """Every user with work gets at least one task in flight, whatever the window; one
    user's trainings share that one task when the window is too small for more."""
    sched = Scheduler(_registry(0), per_slot=1.5, min_window=2)
    for i in range(5):
        sched.join(f"t{i}", f"user{i}", "E-v0", lambda: None)
    assert all(sched.grant(f"t{i}", 3) >= 1 for i in range(5))
    crowded = Scheduler(_registry(0), per_slot=1.5, min_window=2)
    for i in range(4):
        crowded.join(f"a{i}", "alice", "E-v0", lambda: None)
    crowded.join("b", "bob", "E-v0", lambda: None)
    assert crowded.grant("b", 3) == 2  # alone with work: the whole window
    granted = [crowded.grant(f"a{i}", 3) for i in range(4)]
    assert sum(granted) == 1  # alice: one task, for one of her four trainings
    crowded.release(f"a{granted.index(1)}")
    assert sum(crowded.grant(f"a{i}", 3) for i in range(4)) == 1


def test_scheduler_window_follows_the_live_evaluators() -> None:
    """The window is per_slot × live slots of the environment, with a floor when none."""
    assert Scheduler(_registry(0), per_slot=3, min_window=2).window("E-v0") == 2
    assert Scheduler(_registry(5), per_slot=3).window("E-v0") == 15
    assert Scheduler(_registry(5), per_slot=3).window("Other-v0") == 2


def test_speculation_only_fills_slots_nobody_else_can_use() -> None:
    """Second copies go out only while no training has work waiting for credit, and never
    more than the idle slots; answering a speculated task frees its copy."""
    sched = Scheduler(_registry(4), per_slot=1.5)  # window 6
    sched.join("a", "alice", "E-v0", lambda: None)
    sched.join("b", "bob", "E-v0", lambda: None)
    assert sched.grant("a", 2) == 2
    assert sched.grant("b", 9) > 0  # bob still has work waiting for credit
    assert sched.speculate("a", 2) == 0
    sched.leave("b")
    assert sched.speculate("a", 5) == 2  # 4 slots, 2 tasks out: 2 idle
    assert sched.speculate("a", 5) == 0
    sched.release("a", speculated=True)
    assert sched.speculate("a", 5) == 2  # one task and its copy done: 2 idle again


def test_weighted_water_fill_follows_the_weights() -> None:
    """A claim with 3× the weight gets 3× the share while both want more."""
    shares = water_fill(8.0, {"a": 100.0, "b": 100.0}, {"a": 3.0, "b": 1.0})
    assert shares == {"a": 6.0, "b": 2.0}
    assert water_fill(8.0, {"a": 1.0, "b": 100.0}, {"a": 3.0, "b": 1.0}) == {"a": 1.0, "b": 7.0}


def test_recent_usage_lowers_a_users_weight_and_decays() -> None:
    """A user who used 45 s of evaluator time weighs a tenth of a fresh one; after one
    half-life the usage counts half."""
    now = [0.0]
    usage = Usage(half_life_s=60.0, clock=lambda: now[0])
    usage.charge("alice", 45.0)
    assert usage.weight("bob") == 1.0
    assert abs(usage.weight("alice") - 5.0 / 50.0) < 1e-12
    now[0] = 60.0
    assert abs(usage.weight("alice") - 5.0 / 27.5) < 1e-12


def test_a_fresh_user_gets_most_of_the_window_beside_a_heavy_one() -> None:
    """Bob, new, gets far more than half of the window next to Alice, who used a lot."""
    usage = Usage(clock=lambda: 0.0)
    usage.charge("alice", 95.0)  # weight 1/20 of bob's
    sched = Scheduler(_registry(4), per_slot=5, usage=usage)  # window 20
    sched.join("a", "alice", "E-v0", lambda: None)
    sched.join("b", "bob", "E-v0", lambda: None)
    assert sched.grant("a", 100, task_s=0.1) == 20
    for _ in range(20):
        sched.release("a")
    assert sched.grant("b", 100, task_s=0.1) == 19
    assert sched.grant("a", 100, task_s=0.1) == 1
