"""the follow-up state `skipped` and the channel `feed` go: nothing ever wrote them

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04

The CHECK constraints of `followups.state` and `followups.channel` are those
of followupd.domain.states. No row holds either word (no version of followupd
wrote one: the feed shows the calendar follow-ups, it is no channel), so the
rows are kept as they are. SQLite changes a CHECK by copying the table (batch
mode); nothing refers to `followups`, so the copy trips over no foreign key.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATES = "'pending', 'sending', 'sent', 'failed', 'dead', 'cancelled', 'expired'"
CHANNELS = "'email', 'calendar'"


def _checks(states: str, channels: str) -> None:
    with op.batch_alter_table("followups") as batch_op:
        batch_op.drop_constraint(op.f("ck_followups_state"), type_="check")
        batch_op.drop_constraint(op.f("ck_followups_channel"), type_="check")
        batch_op.create_check_constraint(op.f("ck_followups_state"), f"state IN ({states})")
        batch_op.create_check_constraint(op.f("ck_followups_channel"), f"channel IN ({channels})")


def upgrade() -> None:
    _checks(STATES, CHANNELS)


def downgrade() -> None:
    _checks(f"{STATES}, 'skipped'", f"{CHANNELS}, 'feed'")
