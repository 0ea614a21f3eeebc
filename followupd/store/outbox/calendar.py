"""Calendar items in the outbox: open ones to close, the feed's, those the user completed.

A calendar follow-up, once sent, has a `calendar_state`: ``open`` until its
reason goes (followupd closes it) or the user completes or cancels it in
their calendar app (the sync records it).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import or_, select, true, update
from sqlalchemy.orm import Session

from followupd.domain.owner_scope import Scope
from followupd.domain.states import ACTIVE_STATES, Audience, CalendarState, Channel, FollowUpState
from followupd.store.models import Contact, FollowUp
from followupd.store.outbox.recording import PENDING_COLUMNS
from followupd.store.outbox.rows import FeedRow, OpenItemRow, TaskRow

FEED_COLUMNS = (
    FollowUp.key,
    FollowUp.rule,
    FollowUp.step,
    FollowUp.subject,
    FollowUp.body,
    FollowUp.due_at,
    FollowUp.calendar_state,
    FollowUp.completed_at,
    FollowUp.created_at,
    FollowUp.updated_at,
    Contact.name.label("contact_name"),
    Contact.phone.label("contact_phone"),
)
TASK_COLUMNS = select(FollowUp.rule, FollowUp.step, FollowUp.mission_id, FollowUp.contact_id)


def open_items(session: Session) -> list[OpenItemRow]:
    """The calendar items sent and still open, with what their rule reads and where they are."""
    query = select(*PENDING_COLUMNS, FollowUp.id, FollowUp.calendar_href).where(
        FollowUp.channel == Channel.CALENDAR,
        FollowUp.state == FollowUpState.SENT,
        FollowUp.calendar_state == CalendarState.OPEN,
    )
    return list(session.execute(query))


def close_item(
    session: Session, row_id: int, state: CalendarState, reason: str, at: datetime
) -> None:
    """Record item `row_id` closed (`state`: completed or cancelled) for `reason`, if still open."""
    session.execute(
        update(FollowUp)
        .where(FollowUp.id == row_id, FollowUp.calendar_state == CalendarState.OPEN)
        .values(calendar_state=state, reason=reason, updated_at=at)
    )


def feed_items(session: Session, since: datetime, scope: Scope | None = None) -> list[FeedRow]:
    """The owner's calendar follow-ups still to do, and those sent that are due since `since`.

    With several owners, `scope` says whose. By due time, then key.
    """
    query = (
        select(*FEED_COLUMNS)
        .outerjoin(Contact, FollowUp.contact_id == Contact.id)
        .where(
            scope.holds(FollowUp.owner) if scope is not None else true(),
            FollowUp.audience == Audience.OWNER,
            FollowUp.channel == Channel.CALENDAR,
            FollowUp.state.in_(ACTIVE_STATES | {FollowUpState.SENT}),
            or_(FollowUp.state.in_(ACTIVE_STATES), FollowUp.due_at >= since),
        )
        .order_by(FollowUp.due_at, FollowUp.key)
    )
    return list(session.execute(query))


def done_in_calendar(
    session: Session, key: str, state: CalendarState, completed_at: datetime | None, at: datetime
) -> TaskRow | None:
    """Record the open item keyed `key` as `state` in the user's calendar; the row, if it was."""
    return session.execute(
        update(FollowUp)
        .where(FollowUp.key == key, FollowUp.calendar_state == CalendarState.OPEN)
        .values(
            calendar_state=state,
            reason=f"{state} in your calendar",
            completed_at=completed_at,
            updated_at=at,
        )
        .returning(*TASK_COLUMNS.selected_columns)
    ).first()


def task(session: Session, key: str) -> TaskRow | None:
    """What the sync reads of the follow-up keyed `key`; None if there is none."""
    return session.execute(TASK_COLUMNS.where(FollowUp.key == key)).first()
