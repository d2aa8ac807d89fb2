"""Which waiting trainings start: the limit, the per-user cap and fairness between users,
stepped by hand (no threads, no clock)."""

from __future__ import annotations

from ezspark_evolver.admission import Admissions


def started(admissions: Admissions) -> list[str]:
    """Ids of the trainings ``admit`` starts now."""
    return [w.training_id for w in admissions.admit()]


def test_never_more_than_the_limit_run_and_the_next_waits_its_turn() -> None:
    """Three requests with a limit of 2: two start at once, never a third beside them; the
    third starts when one of them ends."""
    a = Admissions(limit=2, per_user=4)
    for i, tid in enumerate(("a", "b", "c")):
        a.add(float(i), tid, "ada")
    assert started(a) == ["a", "b"]
    assert started(a) == []
    assert sorted(a.running) == ["a", "b"]
    a.ended("b")
    assert started(a) == ["c"]
    assert sorted(a.running) == ["a", "c"]


def test_the_next_slot_goes_to_the_user_with_the_fewest_running() -> None:
    """Ada asked first for three trainings, Bob later for one: with room for two, Bob gets
    the second slot, not Ada's second training."""
    a = Admissions(limit=2, per_user=4)
    for i in range(3):
        a.add(float(i), f"ada-{i}", "ada")
    a.add(10.0, "bob-0", "bob")
    assert started(a) == ["ada-0", "bob-0"]
    a.ended("bob-0")
    assert started(a) == ["ada-1"]


def test_a_user_never_runs_more_than_per_user() -> None:
    """With room for four but a cap of two per user, Ada's third waits though slots are
    free, and starts when one of hers ends."""
    a = Admissions(limit=4, per_user=2)
    for i in range(3):
        a.add(float(i), f"ada-{i}", "ada")
    assert started(a) == ["ada-0", "ada-1"]
    assert started(a) == []
    a.ended("ada-0")
    assert started(a) == ["ada-2"]


def test_a_withdrawn_training_never_starts_and_known_ids_are_reported() -> None:
    """A stop request for a waiting training takes it off the list; running and waiting
    ids are known, others not."""
    a = Admissions(limit=1, per_user=1)
    a.add(0.0, "a", "ada")
    a.add(1.0, "b", "ada")
    assert started(a) == ["a"]
    assert [a.knows(t) for t in ("a", "b", "c")] == [True, True, False]
    assert a.withdraw("b") is True
    assert a.withdraw("b") is False
    a.ended("a")
    assert started(a) == []
