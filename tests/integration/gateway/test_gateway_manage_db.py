"""The list's filters, sorts, facets and delete on each database (SQLite and PostgreSQL).

The tag filter matches inside a JSON column and the environment filter reads a JSON key:
both must give the same answers on the production database as on SQLite.
"""

from __future__ import annotations

from sqlalchemy import func, select

from ezspark_gateway.storage import Database, Repository
from ezspark_gateway.storage.listing import TrainingFilter
from ezspark_gateway.storage.models import GenerationRow, SavedGenomeRow, Training, User

RUNS = [
    # id suffix, name, env, tags, status, best, archived
    ("1", "alpha", "CartPole-v1", ["x", "base_1"], "finished", 10.0, False),
    ("2", "Beta", "CartPole-v1", ["x"], "failed", 30.0, False),
    ("3", "gamma", "Acrobot-v1", ["y"], "finished", -80.0, True),
    ("4", None, "CartPole-v1", None, "running", None, False),
    ("5", "100%_sure", "Acrobot-v1", ["base%1"], "stopped", 5.0, False),
]


def _seed(repo: Repository) -> tuple[int, int]:
    """Two users; the first owns RUNS (created a second apart), the second one run."""
    owner = User(username="owner", password_hash="x", created_at=0.0)
    other = User(username="other", password_hash="x", created_at=0.0)
    repo.session.add_all([owner, other])
    repo.session.flush()
    for i, (suffix, name, env, tags, status, best, archived) in enumerate(RUNS):
        repo.add_training(
            Training(
                id=f"0000000{suffix}-0000-4000-8000-000000000000",
                owner_id=owner.id,
                status=status,
                config={"gym_game_name": env, "generations": 10},
                created_at=1000.0 + i,
                updated_at=1000.0 + i,
                generations=1,
                best_fitness=best,
                name=name,
                tags=tags,
                archived_at=2000.0 if archived else None,
            )
        )
    repo.add_training(
        Training(
            id="00000009-0000-4000-8000-000000000000",
            owner_id=other.id,
            status="finished",
            config={"gym_game_name": "CartPole-v1"},
            created_at=5000.0,
            updated_at=5000.0,
            tags=["x"],
        )
    )
    repo.commit()
    return owner.id, other.id


def _names(repo: Repository, owner_id: int, **kw: object) -> list[str | None]:
    items, total = repo.trainings_filtered(owner_id, TrainingFilter(**kw), 100, 0)  # type: ignore[arg-type]
    assert total == len(items)
    return [t.name for t in items]


def test_filters_and_sorts(database: Database) -> None:
    """Each filter and sort gives the same rows on SQLite and PostgreSQL, owner-scoped."""
    with database.sessions() as session:
        repo = Repository(session)
        owner, other = _seed(repo)
        assert _names(repo, owner) == ["100%_sure", None, "Beta", "alpha"]
        assert _names(repo, owner, archived="only") == ["gamma"]
        assert _names(repo, owner, archived="include", sort="oldest") == [
            "alpha",
            "Beta",
            "gamma",
            None,
            "100%_sure",
        ]
        assert _names(repo, owner, sort="best") == ["Beta", "alpha", "100%_sure", None]
        assert _names(repo, owner, sort="name") == ["100%_sure", "alpha", "Beta", None]
        assert _names(repo, owner, statuses=("finished", "failed")) == ["Beta", "alpha"]
        assert _names(repo, owner, env="Acrobot-v1") == ["100%_sure"]
        assert _names(repo, owner, tag="x") == ["Beta", "alpha"]
        assert _names(repo, owner, tag="base_1") == ["alpha"]
        assert _names(repo, owner, tag="base%1") == ["100%_sure"]  # wildcards are literal
        assert _names(repo, owner, tag="base") == []  # whole tags only
        assert _names(repo, owner, text="ETA") == ["Beta"]
        assert _names(repo, owner, text="%") == ["100%_sure"]
        assert _names(repo, owner, text="00000002") == ["Beta"]
        assert _names(repo, other, tag="x") == [None]
        for field in ("env", "tag", "text"):  # PostgreSQL would refuse the NUL with an error
            assert _names(repo, owner, **{field: "x\x00"}) == []
        page, total = repo.trainings_filtered(owner, TrainingFilter(), 2, 2)
        assert ([t.name for t in page], total) == (["Beta", "alpha"], 4)
        empty, total = repo.trainings_filtered(owner, TrainingFilter(), 2, 10)
        assert (list(empty), total) == ([], 4)


def test_facets_and_delete(database: Database) -> None:
    """Facets list the owner's environments and tags; delete takes the history along and
    refuses a run whose status is not allowed."""
    with database.sessions() as session:
        repo = Repository(session)
        owner, _ = _seed(repo)
        facets = repo.training_facets(owner)
        assert facets.envs == ["Acrobot-v1", "CartPole-v1"]
        assert facets.tags == ["base%1", "base_1", "x", "y"]
        tid = "00000001-0000-4000-8000-000000000000"
        repo.add_generation(
            GenerationRow(
                training_id=tid,
                generation=0,
                best_fitness=1.0,
                mean_fitness=0.5,
                species=1,
                population=10,
                evaluations_per_s=1.0,
                best_genome_key=1,
                received_at=0.0,
            )
        )
        session.add(SavedGenomeRow(training_id=tid, generation=0, received_at=0.0))
        repo.commit()
        running = "00000004-0000-4000-8000-000000000000"
        assert not repo.delete_training(running, {"finished", "failed", "stopped"})
        assert repo.delete_training(tid, {"finished", "failed", "stopped"})
        repo.commit()
        assert repo.training(tid) is None
        assert repo.training(running) is not None
        for table in (GenerationRow, SavedGenomeRow):
            count = session.scalar(
                select(func.count()).select_from(table).where(table.training_id == tid)
            )
            assert count == 0
