"""Repository and event application on SQLite and PostgreSQL alike."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, text

from ezspark_common.wire.messages import (
    GenerationFinished,
    TrainingFailed,
    TrainingFinished,
    WireGenome,
)
from ezspark_gateway.core import accounts
from ezspark_gateway.core.events import apply_event
from ezspark_gateway.core.security import hash_token
from ezspark_gateway.storage import Database, Repository
from ezspark_gateway.storage.models import GenerationRow, Training, User

TID = "00000000-0000-4000-8000-000000000001"
GENOME = WireGenome(
    key=1,
    node_ids=[0, 1],
    biases=[0.0, 0.25],
    innov=[3],
    src=[0],
    dst=[1],
    weight=[1.5],
    enabled=[True],
)


def _user(repo: Repository, name: str = "ada") -> User:
    user = repo.add_user(name, "argon2-hash", 1.0)
    assert user is not None
    return user


def _training(repo: Repository, owner: User, tid: str = TID, status: str = "queued") -> Training:
    training = Training(
        id=tid,
        owner_id=owner.id,
        status=status,
        config={"gym_game_name": "CartPole-v0", "nested": {"x": [1, 2.5]}},
        created_at=1.0,
        updated_at=1.0,
        generations=0,
    )
    repo.add_training(training)
    repo.commit()
    return training


def _report(tid: str, gen: int, best: float) -> GenerationFinished:
    return GenerationFinished(
        training_id=tid,
        generation=gen,
        best_fitness=best,
        mean_fitness=best / 2,
        species=2,
        population=50,
        evaluations_per_s=123.5,
        best_genome_key=2**40 + gen,
    )


def test_usernames_are_unique(database: Database) -> None:
    """A second user with a taken name is refused by the unique index, not duplicated."""
    with database.session() as s:
        repo = Repository(s)
        _user(repo)
        assert repo.add_user("ada", "other", 2.0) is None
        assert repo.add_user("bob", "x", 2.0) is not None
        assert len(s.scalars(select(User)).all()) == 2


def test_tokens_found_by_digest_only_and_revocable(database: Database) -> None:
    """A token is found by its SHA-256, the plain text is nowhere, revoking disables it."""
    with database.session() as s:
        repo = Repository(s)
        user = _user(repo)
        issued = accounts.issue_token(repo, user, kind="api", name="ci", now=10.0)
        dump = s.execute(text("SELECT * FROM api_tokens")).all()
        assert issued.plain not in repr(dump)
        found = repo.token_by_hash(hash_token(issued.plain))
        assert found is not None
        assert found.id == issued.row.id
        assert accounts.authenticate(repo, issued.plain, 11.0).user.id == user.id
        accounts.revoke_token(repo, user, issued.row.id, 12.0)
        assert repo.tokens_of(user.id, "api") == []


def test_trainings_are_scoped_to_their_owner(database: Database) -> None:
    """Looking a training up under another owner finds nothing; JSON config round-trips."""
    with database.session() as s:
        repo = Repository(s)
        ada, bob = _user(repo, "ada"), _user(repo, "bob")
        _training(repo, ada)
        assert repo.training(TID, bob.id) is None
        mine = repo.training(TID, ada.id)
        assert mine is not None
        assert mine.config["nested"] == {"x": [1, 2.5]}
        assert repo.count_trainings_of(ada.id) == 1
        assert [t.id for t in repo.trainings_of(bob.id, 10, 0)] == []


def test_transition_only_from_allowed_statuses(database: Database) -> None:
    """A conditional status change happens only from the listed statuses."""
    with database.session() as s:
        repo = Repository(s)
        _training(repo, _user(repo), status="finished")
        assert not repo.transition(TID, {"queued", "running"}, status="stopping")
        assert repo.transition(TID, {"finished"}, status="failed")
        repo.commit()
        s.expire_all()
        assert repo.training(TID) is not None
        assert repo.training(TID).status == "failed"  # type: ignore[union-attr]


def test_stop_racing_finish_cannot_undo_it(database: Database) -> None:
    """A stop decided on a stale read cannot overwrite a finish committed meanwhile."""
    with database.session() as s:
        repo = Repository(s)
        _training(repo, _user(repo), status="running")
    with database.session() as reader, database.session() as writer:
        stale = Repository(reader).training(TID)
        assert stale is not None
        assert stale.status == "running"
        apply_event(
            Repository(writer),
            TrainingFinished(
                training_id=TID,
                generations=3,
                best_fitness=9.0,
                reason="generations",
                best_genome=None,
            ),
            now=5.0,
        )
        moved = Repository(reader).transition(TID, {"queued", "running"}, status="stopping")
        reader.commit()
        assert moved is False
    with database.session() as s:
        assert Repository(s).training(TID).status == "finished"  # type: ignore[union-attr]


def test_generation_rows_are_idempotent_and_ordered(database: Database) -> None:
    """Inserting a known generation changes nothing; history pages come back in order."""
    with database.session() as s:
        repo = Repository(s)
        _training(repo, _user(repo))
        for gen in (2, 0, 1):
            row = GenerationRow(
                training_id=TID,
                generation=gen,
                best_fitness=float(gen),
                mean_fitness=0.0,
                species=1,
                population=10,
                evaluations_per_s=1.0,
                best_genome_key=2**40,
                received_at=1.0,
            )
            assert repo.add_generation(row)
        repo.commit()
        dup = GenerationRow(
            training_id=TID,
            generation=1,
            best_fitness=99.0,
            mean_fitness=0.0,
            species=1,
            population=10,
            evaluations_per_s=1.0,
            best_genome_key=1,
            received_at=2.0,
        )
        assert not repo.add_generation(dup)
        repo.commit()
        assert [r.generation for r in repo.generations(TID, 0, 10)] == [0, 1, 2]
        assert [r.best_fitness for r in repo.generations(TID, 1, 1)] == [1.0]
        latest = repo.latest_generation(TID)
        assert latest is not None
        assert latest.generation == 2
        assert latest.best_genome_key == 2**40  # needs a 64-bit column on PostgreSQL


def test_events_applied_idempotently(database: Database) -> None:
    """Every event applied twice gives the same row as once; the genome is stored as JSON."""
    with database.session() as s:
        _training(Repository(s), _user(Repository(s)))
    events: list[Any] = [
        _report(TID, 0, 1.0),
        _report(TID, 1, 3.0),
        _report(TID, 2, 2.0),
        TrainingFinished(
            training_id=TID,
            generations=3,
            best_fitness=3.0,
            reason="generations",
            best_genome=GENOME,
        ),
    ]
    snapshots = []
    for _ in range(2):
        with database.session() as s:
            outcomes = [apply_event(Repository(s), e, now=7.0) for e in events]
        with database.session() as s:
            t = Repository(s).training(TID)
            assert t is not None
            snapshots.append(
                (
                    outcomes,
                    t.status,
                    t.generations,
                    t.best_fitness,
                    t.best_genome,
                    len(Repository(s).generations(TID, 0, 100)),
                )
            )
    assert snapshots[0][0] == ["applied"] * 4
    assert snapshots[1][0] == ["duplicate"] * 4
    assert snapshots[0][1:] == snapshots[1][1:]
    assert snapshots[0][1:] == ("finished", 3, 3.0, GENOME.model_dump(mode="json"), 3)


def test_no_genome_is_sql_null(database: Database) -> None:
    """A training without a genome stores SQL NULL (not JSON null), so IS NULL finds it."""
    with database.session() as s:
        repo = Repository(s)
        _training(repo, _user(repo))
        apply_event(repo, TrainingFailed(training_id=TID, error="boom " * 2000), now=3.0)
        count = s.scalar(text("SELECT count(*) FROM trainings WHERE best_genome IS NULL"))
        assert count == 1
        t = repo.training(TID)
        assert t is not None
        assert t.status == "failed"
        assert t.error is not None
        assert len(t.error) == 4000
