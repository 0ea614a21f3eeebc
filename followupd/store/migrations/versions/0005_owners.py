"""several owners: a mission's owner, and the owner each follow-up was recorded for

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01

Both columns are nullable and start empty: NULL means the first owner of the
config, so an existing single-owner database needs no data change, and its
follow-ups keep their keys (nothing is recorded or sent again).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # plain ALTER TABLE: SQLite adds (and, from 3.35, drops) a column in place, where a
    # batch copy of `missions` would trip over the foreign keys that point to it
    op.add_column("missions", sa.Column("owner", sa.String(length=40), nullable=True))
    op.add_column("followups", sa.Column("owner", sa.String(length=40), nullable=True))


def downgrade() -> None:
    op.drop_column("followups", "owner")
    op.drop_column("missions", "owner")
