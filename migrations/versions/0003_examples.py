"""templates.example; anomalies.closest, template_id, host, process, pid

The closest normal line is shown beside an anomaly; the header fields go into alerts and reports.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30 13:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("templates", schema=None) as batch_op:
        batch_op.add_column(sa.Column("example", sa.Text(), nullable=True))
    with op.batch_alter_table("anomalies", schema=None) as batch_op:
        batch_op.add_column(sa.Column("closest", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("template_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("host", sa.String(255), nullable=True))
        batch_op.add_column(sa.Column("process", sa.String(255), nullable=True))
        batch_op.add_column(sa.Column("pid", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("anomalies", schema=None) as batch_op:
        for column in ("pid", "process", "host", "template_id", "closest"):
            batch_op.drop_column(column)
    with op.batch_alter_table("templates", schema=None) as batch_op:
        batch_op.drop_column("example")
