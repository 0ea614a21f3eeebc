"""calendar objects seen by the CalDAV sync: ETags, and what was made of them

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "calendar_objects",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("calendar", sa.String(length=1000), nullable=False),
        sa.Column("href", sa.String(length=1000), nullable=False),
        sa.Column("etag", sa.String(length=400), nullable=True),
        sa.Column("uid", sa.String(length=1000), nullable=True),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("mission_key", sa.String(length=120), nullable=True),
        sa.Column("derived", sa.Text(), nullable=True),
        sa.Column("problem", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calendar_objects")),
        sa.UniqueConstraint("calendar", "href", name=op.f("uq_calendar_objects_calendar")),
    )


def downgrade() -> None:
    op.drop_table("calendar_objects")
