"""Delivery's statements: claim due rows under a lease, check it, record the outcome, hand back.

A claim is one atomic statement that moves due rows to ``sending`` under a
lease (``FOR UPDATE SKIP LOCKED`` on PostgreSQL), so two workers never take
the same row, and a lease left by a worker that died is taken again once it
expires. An outcome is recorded only where the lease is still the worker's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, TypedDict, Unpack, cast

from sqlalchemy import (
    ColumnElement,
    Table,
    and_,
    bindparam,
    func,
    not_,
    or_,
    select,
    true,
    tuple_,
    update,
)
from sqlalchemy.orm import Session

from followupd.domain.states import Channel, FollowUpState
from followupd.store.chunks import chunked
from followupd.store.models import FollowUp
from followupd.store.outbox.rows import FollowUpRow
from followupd.store.rows import record


class Outcome(TypedDict, total=False):
    """The columns an outcome sets, besides the lease it ends."""

    state: FollowUpState
    reason: str | None
    last_error: str | None
    attempts: int
    next_attempt_at: datetime
    expires_at: datetime | None  # a grace that runs from the end of a hold
    sent_at: datetime
    message_id: str | None
    subject: str  # made at sending: a digest's, a nudge listing several invoices
    body: str


def claim(
    session: Session,
    at: datetime,
    worker: str,
    channels: Sequence[str],
    *,
    batch: int,
    lease: timedelta,
    held: ColumnElement[bool] | None = None,
) -> list[FollowUpRow]:
    """Move due rows (and rows whose lease expired) to `sending` for `worker`; return them.

    At most `batch` rows, by due time, each under a lease of `lease` from `at`;
    none of those `held` selects (reminders waiting for a digest).
    """
    claimable = or_(
        and_(
            FollowUp.state == FollowUpState.PENDING,
            FollowUp.due_at <= at,
            or_(FollowUp.next_attempt_at.is_(None), FollowUp.next_attempt_at <= at),
        ),
        and_(FollowUp.state == FollowUpState.SENDING, FollowUp.lease_expires_at < at),
    )
    chosen = (
        select(FollowUp.id)
        .where(
            claimable, FollowUp.channel.in_(channels), not_(held) if held is not None else true()
        )
        .order_by(FollowUp.due_at, FollowUp.id)
        .limit(batch)
    )
    # the rows chosen still claimable as they are updated: PostgreSQL checks them again
    # once locked; on SQLite one statement sees one state of the store, the write lock
    # held, so there the check would only have it walk every due row's index again
    # instead of finding the chosen ones by their ids
    dialect = session.get_bind().dialect.name
    still = [] if dialect == "sqlite" else [claimable]
    if dialect == "postgresql":
        # Chosen once: as a plain subquery, PostgreSQL may run it again for each
        # row it updates, and each run, skipping the rows already updated, takes
        # the next ones: every due row, not a batch.
        locked = chosen.with_for_update(skip_locked=True).cte("batch").prefix_with("MATERIALIZED")
        chosen = select(locked.c.id)
    claimed_ids = session.scalars(
        update(FollowUp)
        .where(FollowUp.id.in_(chosen.scalar_subquery()), *still)
        .values(
            state=FollowUpState.SENDING,
            lease_owner=worker,
            lease_expires_at=at + lease,
            attempts=FollowUp.attempts + 1,
            updated_at=at,
        )
        .returning(FollowUp.id)
        .execution_options(synchronize_session=False)
    ).all()
    rows: list[FollowUpRow] = []
    for ids in chunked(list(claimed_ids)):
        query = select(record(FollowUp, "followup")).where(FollowUp.id.in_(ids))
        rows += [row for (row,) in session.execute(query)]
    return sorted(rows, key=lambda row: (row.due_at, row.id))


def finish_sent(
    session: Session, message_ids: Mapping[int, str], worker: str, at: datetime
) -> set[int]:
    """Rows (id -> the Message-ID they went with) recorded sent at `at` where the lease is
    still `worker`'s; the ids recorded.

    Two statements whatever their number, each compiled once: the rows still
    ours, locked (SQLite's transaction holds the write lock already), then one
    UPDATE run for each of them by the driver.
    """
    done: set[int] = set()
    for chunk in chunked(sorted(message_ids)):
        ours = session.scalars(
            select(FollowUp.id)
            .where(
                FollowUp.id.in_(chunk),
                FollowUp.state == FollowUpState.SENDING,
                FollowUp.lease_owner == worker,
            )
            .with_for_update()
        ).all()
        if ours:
            session.connection().execute(
                _SENT,
                [{"row_id": row_id, "sent_with": message_ids[row_id], "at": at} for row_id in ours],
            )
        done.update(ours)
    return done


_TABLE = cast(Table, FollowUp.__table__)
# what a row sent becomes, its values bound as row_id, at and sent_with (also for
# store.outbox.sent_record)
SENT_VALUES: dict[str, Any] = {
    "state": FollowUpState.SENT,
    "sent_at": bindparam("at"),
    "reason": None,
    "last_error": None,
    "message_id": bindparam("sent_with"),
    "lease_owner": None,
    "lease_expires_at": None,
    "updated_at": bindparam("at"),
}
_SENT = (  # Core: the ORM's bulk UPDATE would not take the statement as it is
    update(_TABLE).where(_TABLE.c.id == bindparam("row_id")).values(SENT_VALUES)
)


def finish(
    session: Session, row_id: int, worker: str, at: datetime, **values: Unpack[Outcome]
) -> bool:
    """Record an outcome where the lease is still ours; False if it was lost."""
    result = session.execute(
        update(FollowUp)
        .where(
            FollowUp.id == row_id,
            FollowUp.state == FollowUpState.SENDING,
            FollowUp.lease_owner == worker,
        )
        .values(lease_owner=None, lease_expires_at=None, updated_at=at, **values)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0))


def give_back(session: Session, at: datetime, row_ids: Sequence[int], worker: str) -> int:
    """Rows `row_ids` still claimed by `worker` back to pending, attempt not counted; how many."""
    released = 0
    for chunk in chunked(row_ids):
        mine = (FollowUp.id.in_(chunk), FollowUp.lease_owner == worker)
        released += hand_back(session, at, *mine, attempts=FollowUp.attempts - 1)
    return released


def sent_in_threads(session: Session, thread_keys: Sequence[str]) -> dict[str, list[str]]:
    """The keys already sent in each of these threads, oldest first."""
    threads: dict[str, list[str]] = {}
    for chunk in chunked(thread_keys):
        query = (
            select(FollowUp.thread_key, FollowUp.key)
            .where(FollowUp.thread_key.in_(chunk), FollowUp.state == FollowUpState.SENT)
            .order_by(FollowUp.sent_at, FollowUp.due_at)
        )
        for thread, key in session.execute(query):
            threads.setdefault(thread or "", []).append(key)
    return threads


def hand_back(
    session: Session, at: datetime, *where: ColumnElement[bool], **values: ColumnElement[int]
) -> int:
    """Claimed rows matching `where` back to ``pending``, for the next claim; how many.

    One statement for every way a claim is given up: a stopping worker's,
    a dead worker's, an expired lease.
    """
    result = session.execute(
        update(FollowUp)
        .where(FollowUp.state == FollowUpState.SENDING, *where)
        .values(
            state=FollowUpState.PENDING,
            lease_owner=None,
            lease_expires_at=None,
            updated_at=at,
            **values,
        )
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0))


def supersede(session: Session, at: datetime) -> dict[str, str]:
    """Of the periods of one concern due by `at` and still pending, all but the latest superseded.

    After a downtime, or on a first start, several periods of a repeating
    reminder may be due at once: the person gets the latest, once. Per
    channel: a reminder by email and in the calendar keeps one of each. The
    steps of one email thread (an invoice's nudges, a deposit's request and
    nudge) are one concern here: a client gets the latest step, not two
    emails in the same minute. Returns key -> reason for the rows superseded.
    """
    due = (FollowUp.state == FollowUpState.PENDING, FollowUp.due_at <= at)
    concern = func.coalesce(FollowUp.thread_key, FollowUp.concern)
    piled = (
        select(concern, FollowUp.channel)
        .where(*due)
        .group_by(concern, FollowUp.channel)
        .having(func.count() > 1)
    )
    latest: dict[tuple[str, Channel], tuple[datetime, str]] = {}
    keys: dict[tuple[str, Channel], list[str]] = {}
    query = select(FollowUp.key, concern, FollowUp.channel, FollowUp.due_at).where(
        *due, tuple_(concern, FollowUp.channel).in_(piled)
    )
    for key, what, channel, due_at in session.execute(query):
        group = (what, channel)
        keys.setdefault(group, []).append(key)
        latest[group] = max(latest.get(group, (due_at, key)), (due_at, key))
    superseded: dict[str, str] = {}
    for group, members in keys.items():
        newest = latest[group][1]
        for key in members:
            if key != newest:
                superseded[key] = f"superseded by {newest}"
    for key, reason in superseded.items():
        session.execute(
            update(FollowUp)
            .where(FollowUp.key == key, FollowUp.state == FollowUpState.PENDING)
            .values(state=FollowUpState.SUPERSEDED, reason=reason, updated_at=at)
            .execution_options(synchronize_session=False)
        )
    return superseded
