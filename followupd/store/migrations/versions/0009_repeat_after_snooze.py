"""a reminder put off in the calendar starts its repeat over from the user's date

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05

`live_items.repeat_offset`: by how many working days the periods of a
concern come later than the rule's, since the user put its item off and
followupd raised it again on the user's date. 0 for every item so far.

`live_items.alarm_at`: when followupd's alarm in the calendar fires (the due
it last wrote): an item the user put off later than that gets its alarm
moved to the user's date. Unknown (null) for the items written so far: their
due stands for it.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("live_items") as batch_op:
        batch_op.add_column(
            sa.Column("repeat_offset", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(sa.Column("alarm_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("live_items") as batch_op:
        batch_op.drop_column("alarm_at")
        batch_op.drop_column("repeat_offset")
