"""delivery's lookups by thread and by contact

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06

`followups.thread_key` and `followups.contact_id` indexed: before every
delivery, the Message-IDs already sent in each thread (an invoice's nudges)
and to each contact (grouped client nudges) are looked up, and without an
index each lookup scanned every row of the outbox, which grows with its
400-day retention.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(op.f("ix_followups_thread_key"), "followups", ["thread_key"])
    op.create_index(op.f("ix_followups_contact_id"), "followups", ["contact_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_followups_contact_id"), table_name="followups")
    op.drop_index(op.f("ix_followups_thread_key"), table_name="followups")
