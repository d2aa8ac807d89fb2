"""Which evaluators may serve a training and where its tasks go (``pools.py``)."""

from __future__ import annotations

from collections import Counter

from ezspark_evolver.pools import OPERATOR, OWN, VOLUNTEER, Pools

ENV = "CartPole-v1"
SERVING = {"op-1": 2, "evu.alice.t1xaaaa": 1, "evv.bob.t2xbbbb": 1, "evu.carol.t3xcccc": 1}


def test_pools_by_whose_machine_it_is() -> None:
    """The operator's, the owner's own, other users' volunteers; a non-volunteer of another
    user serves nobody else."""
    pools = Pools(ENV, "alice")
    assert pools.live(SERVING) == {
        OPERATOR: {"op-1": 2},
        OWN: {"evu.alice.t1xaaaa": 1},
        VOLUNTEER: {"evv.bob.t2xbbbb": 1},
    }
    assert pools.pool_of("evu.carol.t3xcccc") is None
    assert Pools(ENV, "bob").pool_of("evv.bob.t2xbbbb") == OWN


def test_tasks_spread_by_slots_checks_prefer_the_operator() -> None:
    """Tasks go to each pool in proportion to its live slots; re-checks to the operator's
    first, then the owner's; nobody live: the operator's queue, where the training waits."""
    pools = Pools(ENV, "alice")
    live = pools.live(SERVING)
    spread = Counter(pools.pick(live, turn, verify=False) for turn in range(8))
    assert spread == {pools.queue(OPERATOR): 4, pools.queue(OWN): 2, pools.queue(VOLUNTEER): 2}
    assert pools.pick(live, 5, verify=True) == pools.queue(OPERATOR)
    assert pools.pick({OWN: live[OWN]}, 5, verify=True) == pools.queue(OWN)
    assert pools.pick({}, 0, verify=False) == "ezspark.tasks.CartPole-v1"


def test_an_answer_counts_only_from_a_queue_its_machine_could_read() -> None:
    """A task sent only to Alice's queue cannot be answered by Bob's volunteer or by the
    operator's evaluator; a task in the volunteers' queue can be by Bob's."""
    pools = Pools(ENV, "alice")
    own, volunteers = {pools.queue(OWN)}, {pools.queue(VOLUNTEER)}
    assert pools.could_receive("evu.alice.t1xaaaa", own)
    assert not pools.could_receive("evv.bob.t2xbbbb", own)
    assert not pools.could_receive("op-1", own)
    assert pools.could_receive("evv.bob.t2xbbbb", volunteers)
    assert not pools.could_receive("evu.carol.t3xcccc", volunteers)


def test_second_opinions_avoid_a_volunteers_whole_account() -> None:
    """Another user's machine cannot be vouched for by a sibling; the owner's may."""
    pools = Pools(ENV, "alice")
    assert pools.avoid_keys("evv.bob.t2xbbbb") == {"evv.bob.t2xbbbb", "account:bob"}
    assert pools.avoid_keys("evu.alice.t1xaaaa") == {"evu.alice.t1xaaaa"}
    assert pools.avoid_keys("op-1") == {"op-1"}
    assert VOLUNTEER not in pools.live(SERVING, {"account:bob"})
