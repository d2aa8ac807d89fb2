"""The evaluator registry: announcements, expiry, goodbyes and results as liveness."""

from __future__ import annotations

from ezspark_common.wire.messages import EnvSpace, EvaluatorAnnounced
from ezspark_evolver.registry import EvaluatorRegistry


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _announce(evaluator: str, envs: list[str], leaving: bool = False) -> EvaluatorAnnounced:
    return EvaluatorAnnounced(
        evaluator_id=evaluator,
        interval_s=10.0,
        leaving=leaving,
        envs=[
            EnvSpace(env_id=e, input_size=1, output_size=2, action_space="", observation_space="")
            for e in envs
        ],
    )


def test_announced_evaluator_serves_its_envs_until_three_intervals_pass() -> None:
    """An evaluator counts for the environments it announced, for 3 × interval_s."""
    clock = Clock()
    reg = EvaluatorRegistry(120.0, clock=clock)
    reg.announced(_announce("a", ["CartPole-v1", "Acrobot-v1"]))
    reg.announced(_announce("b", ["CartPole-v1"]))
    assert reg.slots("CartPole-v1") == 2
    assert reg.slots("Acrobot-v1") == 1
    assert reg.slots("LunarLander-v3") == 0
    assert reg.any_alive("CartPole-v1", {"a"})
    assert not reg.any_alive("Acrobot-v1", {"a"})
    clock.now = 29.0
    assert reg.slots("CartPole-v1") == 2
    clock.now = 31.0
    assert reg.slots("CartPole-v1") == 0
    assert reg.serving("Acrobot-v1") == {}


def test_leaving_removes_an_evaluator_at_once() -> None:
    """A goodbye announcement takes the evaluator out immediately."""
    reg = EvaluatorRegistry(120.0, clock=Clock())
    reg.announced(_announce("a", ["CartPole-v1"]))
    reg.seen("a", "CartPole-v1")
    reg.announced(_announce("a", [], leaving=True))
    assert reg.slots("CartPole-v1") == 0


def test_a_result_makes_an_unannounced_evaluator_live_for_its_environment() -> None:
    """Results count as liveness (for liveness_s) for the environment they answered."""
    clock = Clock()
    reg = EvaluatorRegistry(5.0, clock=clock)
    reg.seen("quiet", "CartPole-v1")
    assert reg.serving("CartPole-v1") == {"quiet": 1}
    assert reg.slots("Acrobot-v1") == 0
    clock.now = 6.0
    assert reg.slots("CartPole-v1") == 0


def test_evaluators_gone_for_good_are_forgotten() -> None:
    """Expired entries are dropped when new evaluators appear: memory stays bounded."""
    clock = Clock()
    reg = EvaluatorRegistry(5.0, clock=clock)
    for i in range(100):
        reg.announced(_announce(f"old{i}", ["CartPole-v1"]))
        reg.seen(f"old{i}", "CartPole-v1")
    clock.now = 100.0
    reg.announced(_announce("new", ["CartPole-v1"]))
    reg.seen("new", "CartPole-v1")
    assert reg.serving("CartPole-v1") == {"new": 1}
    assert len(reg._announced) == 1  # the bound is the point of the test
    assert len(reg._seen) == 1
