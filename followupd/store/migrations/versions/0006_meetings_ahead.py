"""meetings counted as they pass, and tasks completed when the user says

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04

A meeting synced before it happens is stored as an upcoming occurrence
(`calendar_meetings`) and counted once it has ended; a meeting series keeps
its text so that its later occurrences are stored without fetching it again.
A task the user completed keeps the completion time their app wrote.

The meetings synced before this version were kept only if already held: so
that those still ahead count too, every object that may hold one (kind
`meeting`) is fetched once more, by the next sync (its ETag forgotten, and
the calendars' sync tokens with it, so that the sync lists every object).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # plain ALTER TABLE ADD COLUMN, as in 0005: SQLite adds a column in place
    op.add_column("followups", sa.Column("completed_at", sa.DateTime(timezone=True)))
    op.add_column("calendar_objects", sa.Column("series", sa.LargeBinary()))
    op.add_column("calendar_objects", sa.Column("series_zone", sa.String(length=64)))
    op.add_column("calendar_objects", sa.Column("expanded_until", sa.DateTime(timezone=True)))
    op.create_index(
        op.f("ix_calendar_objects_expanded_until"), "calendar_objects", ["expanded_until"]
    )
    op.create_table(
        "calendar_meetings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("object_id", sa.Integer(), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("attendees", sa.Text(), nullable=False),
        sa.Column("named", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["object_id"],
            ["calendar_objects.id"],
            name=op.f("fk_calendar_meetings_object_id_calendar_objects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calendar_meetings")),
    )
    op.create_index(op.f("ix_calendar_meetings_object_id"), "calendar_meetings", ["object_id"])
    op.create_index(op.f("ix_calendar_meetings_ends_at"), "calendar_meetings", ["ends_at"])
    objects, states = (
        sa.table("calendar_objects", sa.column("kind"), sa.column("etag")),
        sa.table("sync_state", sa.column("source"), sa.column("token")),
    )
    op.execute(objects.update().where(objects.c.kind == "meeting").values(etag=None))
    op.execute(states.update().where(states.c.source.like("caldav:%")).values(token=None))


def downgrade() -> None:
    op.drop_table("calendar_meetings")
    op.drop_index(op.f("ix_calendar_objects_expanded_until"), table_name="calendar_objects")
    op.drop_column("calendar_objects", "expanded_until")
    op.drop_column("calendar_objects", "series_zone")
    op.drop_column("calendar_objects", "series")
    op.drop_column("followups", "completed_at")
