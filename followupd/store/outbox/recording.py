"""What an evaluation pass reads and writes: new follow-ups, pending ones, cancellations.

Recording is idempotent: ``INSERT … ON CONFLICT (key) DO NOTHING``, so two
passes at the same instant, or two instances at once, record each follow-up
once.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import TypedDict

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from followupd.domain.owner_scope import Scope
from followupd.domain.states import Audience, Channel, FollowUpState
from followupd.store.chunks import chunked
from followupd.store.models import FollowUp
from followupd.store.outbox.rows import FollowUpRow, PendingRow
from followupd.store.rows import record

# what `Rule.vanished` reads of a pending follow-up (store.outbox.rows.PendingRow)
PENDING_COLUMNS = (
    FollowUp.key,
    FollowUp.rule,
    FollowUp.step,
    FollowUp.subject_key,
    FollowUp.concern,
    FollowUp.audience,
    FollowUp.channel,
    FollowUp.mission_id,
    FollowUp.contact_id,
    FollowUp.due_at,
    FollowUp.owner,
)


class NewFollowUp(TypedDict):
    """A follow-up as an evaluation pass records it: its intent, message and first state."""

    key: str
    owner: str
    rule: str
    step: str
    subject_key: str
    concern: str
    mission_id: int | None
    contact_id: int | None
    audience: Audience
    channel: Channel
    recipient: str | None
    language: str
    subject: str
    body: str
    thread_key: str | None
    due_at: datetime
    expires_at: datetime
    late: bool
    state: FollowUpState
    reason: str | None
    last_error: str | None
    attachment: bytes | None
    attachment_name: str | None
    attempts: int
    created_at: datetime
    updated_at: datetime


def recorded_keys(session: Session, rule: str, since: datetime, scope: Scope) -> set[str]:
    """The keys of `rule`'s follow-ups for `scope` due at `since` or later."""
    return set(
        session.scalars(
            select(FollowUp.key).where(
                FollowUp.rule == rule, FollowUp.due_at >= since, scope.holds(FollowUp.owner)
            )
        )
    )


def insert_new(session: Session, rows: Sequence[NewFollowUp]) -> list[str]:
    """Insert `rows`, but for those whose key is recorded already; return the keys inserted."""
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    statement = (
        insert(FollowUp).on_conflict_do_nothing(index_elements=["key"]).returning(FollowUp.key)
    )
    connection = session.connection()
    inserted: list[str] = []
    for chunk in chunked(rows):
        inserted += connection.execute(statement, list(chunk)).scalars().all()
    return inserted


def load(session: Session, keys: Sequence[str]) -> list[FollowUpRow]:
    """The outbox rows with these keys, by due time, as light read-only rows."""
    rows: list[FollowUpRow] = []
    for chunk in chunked(keys):
        query = select(record(FollowUp, "followup")).where(FollowUp.key.in_(chunk))
        rows += [row for (row,) in session.execute(query)]
    return sorted(rows, key=lambda row: (row.due_at, row.key))


def pending(session: Session) -> list[PendingRow]:
    """Every pending follow-up, with what its rule needs to tell whether its reason went."""
    return list(
        session.execute(select(*PENDING_COLUMNS).where(FollowUp.state == FollowUpState.PENDING))
    )


def end_pending(
    session: Session,
    which: ColumnElement[bool],
    state: FollowUpState,
    reason: str,
    at: datetime,
) -> int:
    """The follow-ups `which` selects that are still pending, ended as `state`; how many."""
    result = session.execute(
        update(FollowUp)
        .where(which, FollowUp.state == FollowUpState.PENDING)
        .values(state=state, reason=reason, updated_at=at)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0))


def cancel(session: Session, cancelled: dict[str, str], at: datetime) -> None:
    """Cancel the follow-ups keyed in `cancelled` (key -> reason) that are still pending."""
    for reason, keys in _group_by_reason(cancelled).items():
        for chunk in chunked(keys):
            session.execute(
                update(FollowUp)
                .where(FollowUp.key.in_(chunk), FollowUp.state == FollowUpState.PENDING)
                .values(state=FollowUpState.CANCELLED, reason=reason, updated_at=at)
            )


def _group_by_reason(cancelled: dict[str, str]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = defaultdict(list)
    for key, reason in cancelled.items():
        grouped[reason].append(key)
    return grouped
