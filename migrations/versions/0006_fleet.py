"""fleet: files and streams belong to a node; the daemon row says which node is master

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 10:00:00

Rows written before this revision belong to the one node that ran against the database: the
node of the only daemon row if there is exactly one, else this host's name (the default of
``run --node``), so an upgraded single-host database carries on where it stopped instead of
reading every file again.
"""

import socket
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy import event

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# 0001 left the streams' UNIQUE (name) unnamed: name it so batch mode can drop it on SQLite.
_NAMING = {"uq": "uq_%(table_name)s_%(column_0_name)s"}


def _owner() -> str:
    bind = op.get_bind()
    nodes = list(bind.execute(sa.text("SELECT node FROM daemon")).scalars())
    return str(nodes[0]) if len(nodes) == 1 else socket.gethostname()


def _sqlite_foreign_keys_off() -> None:
    """Batch mode rebuilds `streams` (copy, drop, rename) while other tables refer to it; SQLite
    checks those references on the drop unless foreign keys are off, which it only allows outside
    a transaction. So: commit the revisions before this one (each is already stamped), turn them
    off, and run this revision in a transaction of its own; the rows are checked at the end and
    the setting restored when the connection goes back to the pool."""
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    raw: Any = bind.connection.dbapi_connection
    if raw.in_transaction:
        raw.commit()
    raw.execute("PRAGMA foreign_keys = OFF")
    raw.execute("BEGIN")

    def restore(dbapi_conn: Any, _record: Any) -> None:
        if dbapi_conn is raw:
            dbapi_conn.execute("PRAGMA foreign_keys = ON")

    event.listen(bind.engine, "checkin", restore, once=True)


def _sqlite_check_foreign_keys() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        broken = bind.execute(sa.text("PRAGMA foreign_key_check")).all()
        if broken:
            raise RuntimeError(f"foreign keys broken by the rebuild: {broken[:5]}")


def upgrade() -> None:
    bind = op.get_bind()
    owner = _owner()
    _sqlite_foreign_keys_off()
    with op.batch_alter_table("files", schema=None) as batch_op:
        batch_op.add_column(sa.Column("node", sa.String(255), nullable=False, server_default=""))
        batch_op.create_index("ix_files_node_status", ["node", "status"], unique=False)
    if bind.dialect.name == "sqlite":
        with op.batch_alter_table(
            "streams", schema=None, naming_convention=_NAMING, recreate="always"
        ) as batch_op:
            batch_op.add_column(
                sa.Column("node", sa.String(255), nullable=False, server_default="")
            )
            batch_op.drop_constraint("uq_streams_name", type_="unique")
            batch_op.create_unique_constraint("uq_streams_node_name", ["node", "name"])
    else:
        op.add_column(
            "streams", sa.Column("node", sa.String(255), nullable=False, server_default="")
        )
        op.drop_constraint("streams_name_key", "streams", type_="unique")
        op.create_unique_constraint("uq_streams_node_name", "streams", ["node", "name"])
    with op.batch_alter_table("daemon", schema=None) as batch_op:
        batch_op.add_column(sa.Column("role", sa.String(16), nullable=True))
    op.execute(sa.text("UPDATE files SET node = :n").bindparams(n=owner))
    op.execute(sa.text("UPDATE streams SET node = :n").bindparams(n=owner))
    _sqlite_check_foreign_keys()


def downgrade() -> None:
    bind = op.get_bind()
    _sqlite_foreign_keys_off()
    with op.batch_alter_table("daemon", schema=None) as batch_op:
        batch_op.drop_column("role")
    if bind.dialect.name == "sqlite":
        with op.batch_alter_table("streams", schema=None, recreate="always") as batch_op:
            batch_op.drop_constraint("uq_streams_node_name", type_="unique")
            batch_op.drop_column("node")
            batch_op.create_unique_constraint("uq_streams_name", ["name"])
    else:
        op.drop_constraint("uq_streams_node_name", "streams", type_="unique")
        op.drop_column("streams", "node")
        op.create_unique_constraint("streams_name_key", "streams", ["name"])
    with op.batch_alter_table("files", schema=None) as batch_op:
        batch_op.drop_index("ix_files_node_status")
        batch_op.drop_column("node")
    _sqlite_check_foreign_keys()
