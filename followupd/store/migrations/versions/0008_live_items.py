"""one live calendar item per concern, and the states `superseded` and `dismissed`

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05

A reminder that repeats (a missing contract, a client not informed, a status
update, a checkpoint meeting, an open-ended mission) was one calendar item
per period, and piled up; it is now one item per concern (`live_items`),
updated in place. Every follow-up gets its concern: the rule and subject for
those five rules, the key itself for the others.

The items already written move into `live_items`: of each concern's, the
newest becomes the live item (it keeps its UID and its place in the
calendar, so nothing is written twice and the user's edits stay), and the
older ones still open are marked `retire`: the next delivery pass closes
them in the calendar, once. The calendar columns of `followups` go: the item
holds them now.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

REPEATING = (
    "contract_missing",
    "client_not_informed",
    "status_update_due",
    "checkpoint_meeting",
    "open_ended_mission",
)
STATES = "'pending', 'sending', 'sent', 'failed', 'dead', 'cancelled', 'expired'"
NEW_STATES = f"{STATES}, 'superseded', 'dismissed'"
CALENDAR_COLUMNS = ("calendar_uid", "calendar_href", "calendar_state", "completed_at")

FOLLOWUP_COLUMNS = [
    "key",
    "rule",
    "step",
    "subject_key",
    "concern",
    "owner",
    "mission_id",
    "contact_id",
    "language",
    "subject",
    "body",
    "due_at",
    "state",
    "reason",
    "calendar_uid",
    "calendar_href",
    "calendar_state",
    "completed_at",
    "created_at",
    "updated_at",
]
ITEM_COLUMNS = [
    "concern",
    "uid",
    "owner",
    "rule",
    "step",
    "followup_key",
    "subject_key",
    "mission_id",
    "contact_id",
    "language",
    "summary",
    "description",
    "due_at",
    "first_raised_at",
    "times_raised",
    "sequence",
    "href",
    "state",
    "by_user",
    "snoozed_until",
    "completed_at",
    "reason",
    "retire",
    "created_at",
    "updated_at",
]
followups = sa.table("followups", *(sa.column(name) for name in FOLLOWUP_COLUMNS))


def _state_check(states: str) -> None:
    with op.batch_alter_table("followups") as batch_op:
        batch_op.drop_constraint(op.f("ck_followups_state"), type_="check")
        batch_op.create_check_constraint(op.f("ck_followups_state"), f"state IN ({states})")


def upgrade() -> None:
    op.add_column("followups", sa.Column("concern", sa.String(length=400), nullable=True))
    repeating = followups.c.rule.in_(REPEATING)
    op.execute(
        followups.update().values(
            concern=sa.case(
                (repeating, followups.c.rule + sa.literal(":") + followups.c.subject_key),
                else_=followups.c.key,
            )
        )
    )
    op.create_table(
        "live_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("concern", sa.String(length=400), nullable=False),
        sa.Column("uid", sa.String(length=400), nullable=False),
        sa.Column("owner", sa.String(length=40), nullable=True),
        sa.Column("rule", sa.String(length=40), nullable=False),
        sa.Column("step", sa.String(length=80), nullable=False),
        sa.Column("followup_key", sa.String(length=400), nullable=False),
        sa.Column("subject_key", sa.String(length=200), nullable=False),
        sa.Column("mission_id", sa.Integer(), nullable=True),
        sa.Column("contact_id", sa.Integer(), nullable=True),
        sa.Column("language", sa.String(length=2), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("first_raised_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("times_raised", sa.Integer(), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("href", sa.String(length=1000), nullable=True),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("by_user", sa.Boolean(), nullable=False),
        sa.Column("snoozed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("retire", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "state IN ('open', 'completed', 'cancelled')", name=op.f("ck_live_items_state")
        ),
        sa.ForeignKeyConstraint(
            ["contact_id"], ["contacts.id"], name=op.f("fk_live_items_contact_id_contacts")
        ),
        sa.ForeignKeyConstraint(
            ["mission_id"], ["missions.id"], name=op.f("fk_live_items_mission_id_missions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_live_items")),
        sa.UniqueConstraint("concern", name=op.f("uq_live_items_concern")),
        sa.UniqueConstraint("uid", name=op.f("uq_live_items_uid")),
    )
    _items_from_followups()
    with op.batch_alter_table("followups") as batch_op:
        batch_op.alter_column("concern", existing_type=sa.String(length=400), nullable=False)
        batch_op.create_index(op.f("ix_followups_concern"), ["concern"])
        for name in CALENDAR_COLUMNS:
            batch_op.drop_column(name)
    _state_check(NEW_STATES)


def _items_from_followups() -> None:
    """The calendar items written so far, one live item per concern; older ones to retire."""
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(followups)
        .where(followups.c.calendar_uid.is_not(None), followups.c.state == "sent")
        .order_by(followups.c.concern, followups.c.due_at, followups.c.key)
    ).all()
    by_concern: dict[str, list[sa.Row[tuple[object, ...]]]] = {}
    for row in rows:
        by_concern.setdefault(row.concern, []).append(row)
    items = sa.table("live_items", *(sa.column(name) for name in ITEM_COLUMNS))
    made = []
    for concern, written in by_concern.items():
        newest = written[-1]
        for row in written:
            live = row is newest
            if not live and row.calendar_state != "open":
                continue  # closed already: nothing to do in the calendar
            closed = row.calendar_state in ("completed", "cancelled")
            made.append({
                "concern": concern if live else row.key,
                "uid": row.calendar_uid,
                "owner": row.owner,
                "rule": row.rule,
                "step": row.step,
                "followup_key": row.key,
                "subject_key": row.subject_key,
                "mission_id": row.mission_id,
                "contact_id": row.contact_id,
                "language": row.language,
                "summary": row.subject,
                "description": row.body,
                "due_at": row.due_at,
                "first_raised_at": written[0].due_at if live else row.due_at,
                "times_raised": len(written) if live else 1,
                "sequence": 1 if closed else 0,
                "href": row.calendar_href,
                "state": row.calendar_state or "open",
                "by_user": bool(row.reason and row.reason.endswith("in your calendar")),
                "snoozed_until": None,
                "completed_at": row.completed_at,
                "reason": row.reason if closed else None,
                "retire": None if live else f"replaced by the item of {str(newest.due_at)[:10]}",
                "created_at": row.created_at,
                "updated_at": row.updated_at,
            })  # fmt: skip
    if made:
        bind.execute(items.insert(), made)


def downgrade() -> None:
    """Back to 0007: the items are forgotten (the calendar columns come back empty)."""
    op.execute(
        followups.update()
        .where(followups.c.state.in_(("superseded", "dismissed")))
        .values(state="cancelled")
    )
    _state_check(STATES)
    with op.batch_alter_table("followups") as batch_op:
        batch_op.drop_index(op.f("ix_followups_concern"))
        batch_op.drop_column("concern")
        batch_op.add_column(sa.Column("calendar_uid", sa.String(length=400), nullable=True))
        batch_op.add_column(sa.Column("calendar_href", sa.String(length=1000), nullable=True))
        batch_op.add_column(sa.Column("calendar_state", sa.String(length=12), nullable=True))
        batch_op.add_column(sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True))
    _items_to_followups()
    op.drop_table("live_items")


def _items_to_followups() -> None:
    """Each item back on the follow-up it shows: it keeps its UID, place and state."""
    bind = op.get_bind()
    items = sa.table("live_items", *(sa.column(name) for name in ITEM_COLUMNS))
    for item in bind.execute(sa.select(items)).all():
        bind.execute(
            followups.update()
            .where(followups.c.key == item.followup_key)
            .values(
                calendar_uid=item.uid,
                calendar_href=item.href,
                calendar_state=item.state,
                completed_at=item.completed_at,
            )
        )
