"""users.data_version: a counter every write to the user's trainings bumps.

The hot read keeps each user's rendered list page and serves it again only when the
statement that reads the caller's credential also reads an unchanged ``data_version``
(``api.page_cache``).  The bump is a trigger on ``trainings`` (insert, update, delete),
so every writer bumps it in the same transaction as its write: each gateway worker and
replica, the event consumer, and any future code path or manual SQL.  A later migration
that rebuilds ``trainings`` (SQLite's batch "recreate") drops the triggers with the old
table and must create them again (``create_triggers``); the tests of every write path
would fail otherwise.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision: str | None = "0003"
branch_labels = None
depends_on = None

_BUMP = "UPDATE users SET data_version = data_version + 1 WHERE id = {}"
SQLITE_TRIGGERS = (
    "CREATE TRIGGER IF NOT EXISTS trainings_version_insert AFTER INSERT ON trainings "
    f"BEGIN {_BUMP.format('NEW.owner_id')}; END",
    "CREATE TRIGGER IF NOT EXISTS trainings_version_update AFTER UPDATE ON trainings "
    f"BEGIN {_BUMP.format('OLD.owner_id')}; "
    f"{_BUMP.format('NEW.owner_id')} AND NEW.owner_id <> OLD.owner_id; END",
    "CREATE TRIGGER IF NOT EXISTS trainings_version_delete AFTER DELETE ON trainings "
    f"BEGIN {_BUMP.format('OLD.owner_id')}; END",
)
POSTGRESQL_TRIGGERS = (
    "CREATE OR REPLACE FUNCTION ezspark_trainings_version() RETURNS trigger "
    "LANGUAGE plpgsql AS $$ BEGIN "
    f"IF TG_OP <> 'INSERT' THEN {_BUMP.format('OLD.owner_id')}; END IF; "
    "IF TG_OP = 'INSERT' OR (TG_OP = 'UPDATE' AND NEW.owner_id <> OLD.owner_id) THEN "
    f"{_BUMP.format('NEW.owner_id')}; END IF; "
    "RETURN NULL; END $$",
    "DROP TRIGGER IF EXISTS trainings_version ON trainings",
    "CREATE TRIGGER trainings_version AFTER INSERT OR UPDATE OR DELETE ON trainings "
    "FOR EACH ROW EXECUTE FUNCTION ezspark_trainings_version()",
)


def create_triggers() -> None:
    """(Re)create the triggers that bump ``users.data_version`` on the trainings."""
    name = op.get_bind().dialect.name
    for statement in POSTGRESQL_TRIGGERS if name == "postgresql" else SQLITE_TRIGGERS:
        op.execute(statement)


def upgrade() -> None:
    """Add the counter (0 for existing users) and the triggers that bump it."""
    present = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("users")}
    if "data_version" not in present:
        with op.batch_alter_table("users") as batch:
            column = sa.Column("data_version", sa.BigInteger(), nullable=False, server_default="0")
            batch.add_column(column)
    create_triggers()


def downgrade() -> None:
    """Drop the triggers and the counter."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS trainings_version ON trainings")
        op.execute("DROP FUNCTION IF EXISTS ezspark_trainings_version()")
    else:
        for kind in ("insert", "update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS trainings_version_{kind}")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("data_version")
