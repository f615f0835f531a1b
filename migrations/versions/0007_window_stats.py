"""window_stats: every daemon's closed time windows, for the master model's view of the fleet

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 10:00:00

Only a new table: nothing already stored changes. The master model's saved state keeps its key;
the window aggregator's (the per-stream volume baseline) moves to a key per node, so it is
relearned once after the upgrade.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "window_stats",
        sa.Column("node", sa.String(255), nullable=False),
        sa.Column("stream", sa.String(512), nullable=False),
        sa.Column("window_start", sa.Float(), nullable=False),
        sa.Column("events", sa.BigInteger(), nullable=False),
        sa.Column("anomalies", sa.Integer(), nullable=False),
        sa.Column("max_severity", sa.Integer(), nullable=False),
        sa.Column("expected", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("node", "stream", "window_start"),
    )
    op.create_index("ix_window_stats_window_start", "window_stats", ["window_start"])


def downgrade() -> None:
    op.drop_index("ix_window_stats_window_start", table_name="window_stats")
    op.drop_table("window_stats")
