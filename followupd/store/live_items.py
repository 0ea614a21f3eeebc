"""Live items: the one calendar item of each concern, and what the user did to it.

A follow-up delivered to the calendar raises its concern's item: made the
first time, updated in place at each later period (`raised`). followupd
closes an item when its reason goes (`close`); the calendar sync records
what the user did in their app (`completed_by_user`, `dismissed_by_user`,
`snoozed_by_user`), and the pending follow-ups of that concern follow: a
dismissed concern records its next periods `dismissed`, a snoozed one holds
them until the user's date (followupd.delivery.holds).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import and_, or_, select, true, update
from sqlalchemy.orm import Session

from followupd.domain import identity
from followupd.domain.owner_scope import Scope
from followupd.domain.states import ACTIVE_STATES, Audience, CalendarState, Channel, FollowUpState
from followupd.store.chunks import chunked
from followupd.store.models import Contact, FollowUp, LiveItem
from followupd.store.outbox.recording import PENDING_COLUMNS
from followupd.store.outbox.rows import FollowUpRow, PendingRow
from followupd.store.rows import record

DISMISSED = and_(LiveItem.state == CalendarState.CANCELLED, LiveItem.by_user)


def of_concerns(session: Session, concerns: Iterable[str]) -> dict[str, LiveItem]:
    """The items of `concerns` that exist, by concern."""
    found: dict[str, LiveItem] = {}
    for chunk in chunked(sorted(set(concerns))):
        found.update(
            (item.concern, item)
            for item in session.scalars(select(LiveItem).where(LiveItem.concern.in_(chunk)))
        )
    return found


def raised(session: Session, row: FollowUpRow, href: str | None, at: datetime) -> LiveItem:
    """Record the calendar follow-up `row` delivered: its concern's item made, or moved to it."""
    item = session.scalars(select(LiveItem).where(LiveItem.concern == row.concern)).first()
    if item is None:
        item = _new(row, at)
        session.add(item)
    _raise(item, row, href, at)
    session.flush()
    return item


def as_raised(item: LiveItem | None, row: FollowUpRow, at: datetime) -> LiveItem:
    """What `item` (None: none yet) becomes once `row` is delivered, for writing it; unsaved.

    An item closed before (its reason went, the user completed it) opens
    again: this is a new period of the same concern. The user's snooze is
    kept while it is ahead of the new period.
    """
    shown = _new(row, at)
    if item is not None:
        for column in LiveItem.__table__.columns:
            setattr(shown, column.key, getattr(item, column.key))
        shown.id = None  # type: ignore[assignment]  # a copy, never saved
    _raise(shown, row, item.href if item is not None else None, at)
    return shown


def _new(row: FollowUpRow, at: datetime) -> LiveItem:
    return LiveItem(
        concern=row.concern,
        uid=identity.uid(row.concern),
        owner=row.owner,
        first_raised_at=row.due_at,
        times_raised=0,
        sequence=-1,
        snoozed_until=None,
        created_at=at,
    )


def _raise(item: LiveItem, row: FollowUpRow, href: str | None, at: datetime) -> None:
    item.rule, item.step, item.followup_key = row.rule, row.step, row.key
    item.subject_key, item.mission_id = row.subject_key, row.mission_id
    item.contact_id, item.language = row.contact_id, row.language
    item.summary, item.description, item.due_at = row.subject, row.body, row.due_at
    item.times_raised += 1
    item.sequence += 1
    item.href = href
    item.state, item.by_user, item.reason, item.completed_at = CalendarState.OPEN, False, None, None
    if item.snoozed_until is not None and item.snoozed_until <= row.due_at:
        item.snoozed_until = None
    item.updated_at = at


def open_items(session: Session) -> list[tuple[LiveItem, PendingRow]]:
    """Open items with the period each shows, for its rule to say whether the reason went.

    Items whose period housekeeping deleted are left out: nothing tells
    their rule what they were about.
    """
    query = (
        select(LiveItem, *PENDING_COLUMNS)
        .join(FollowUp, FollowUp.key == LiveItem.followup_key)
        .where(LiveItem.state == CalendarState.OPEN, LiveItem.retire.is_(None))
    )
    return [(found[0], found) for found in session.execute(query)]


def dismissed_items(session: Session) -> list[tuple[LiveItem, PendingRow]]:
    """Items the user dismissed, with their period: the dismissal ends when its reason goes."""
    query = (
        select(LiveItem, *PENDING_COLUMNS)
        .join(FollowUp, FollowUp.key == LiveItem.followup_key)
        .where(DISMISSED)
    )
    return [(found[0], found) for found in session.execute(query)]


def to_retire(session: Session) -> list[LiveItem]:
    """Items of before schema 0008 that a newer one of their concern replaced, still open."""
    return list(
        session.scalars(
            select(LiveItem).where(
                LiveItem.retire.is_not(None), LiveItem.state == CalendarState.OPEN
            )
        )
    )


def close(session: Session, item_id: int, state: CalendarState, reason: str, at: datetime) -> None:
    """Record item `item_id` closed by followupd (`state`: completed or cancelled), if open."""
    session.execute(
        update(LiveItem)
        .where(LiveItem.id == item_id, LiveItem.state == CalendarState.OPEN)
        .values(state=state, reason=reason, sequence=LiveItem.sequence + 1, updated_at=at)
    )


def end_dismissal(session: Session, item_id: int, reason: str, at: datetime) -> None:
    """The reason the user dismissed item `item_id` for went: its concern may be raised again."""
    session.execute(
        update(LiveItem)
        .where(LiveItem.id == item_id, DISMISSED)
        .values(by_user=False, reason=reason, updated_at=at)
    )


FeedItem = tuple[LiveItem, str | None, str | None]  # an item, its contact's name and phone


def feed_items(session: Session, since: datetime, scope: Scope | None = None) -> list[FeedItem]:
    """The owner's items open, and those closed since `since`, with the contact of each.

    With several owners, `scope` says whose. By due time, then UID. Light rows,
    compared by value: the feed is built again only when they change.
    """
    query = (
        select(record(LiveItem, "item"), Contact.name, Contact.phone)
        .outerjoin(Contact, LiveItem.contact_id == Contact.id)
        .where(
            scope.holds(LiveItem.owner) if scope is not None else true(),
            LiveItem.retire.is_(None),
            or_(LiveItem.state == CalendarState.OPEN, LiveItem.updated_at >= since),
        )
        .order_by(LiveItem.due_at, LiveItem.uid)
    )
    return [(item, name, phone) for item, name, phone in session.execute(query)]


PreviewRow = tuple[FollowUpRow, str | None, str | None]  # a period, its contact's name, phone


def previews(session: Session, scope: Scope | None = None) -> list[PreviewRow]:
    """The first calendar period still to deliver of each concern that has no item yet.

    The feed shows what is coming as the item it will be (the same UID), one
    per concern; once delivered, the item itself takes its place.
    """
    query = (
        select(record(FollowUp, "followup"), Contact.name, Contact.phone)
        .outerjoin(Contact, FollowUp.contact_id == Contact.id)
        .where(
            scope.holds(FollowUp.owner) if scope is not None else true(),
            FollowUp.audience == Audience.OWNER,
            FollowUp.channel == Channel.CALENDAR,
            FollowUp.state.in_(ACTIVE_STATES),
            FollowUp.concern.not_in(select(LiveItem.concern)),
        )
        .order_by(FollowUp.due_at, FollowUp.key)
    )
    first: dict[str, PreviewRow] = {}
    for row, name, phone in session.execute(query):
        first.setdefault(row.concern, (row, name, phone))
    return list(first.values())


def by_uid(session: Session, uids: Sequence[str]) -> dict[str, LiveItem]:
    """The items with these UIDs, by UID."""
    found: dict[str, LiveItem] = {}
    for chunk in chunked(sorted(set(uids))):
        found.update(
            (item.uid, item)
            for item in session.scalars(select(LiveItem).where(LiveItem.uid.in_(chunk)))
        )
    return found


def hrefs_in(session: Session, calendar: str) -> list[str]:
    """Where followupd's items are in the calendar at URL `calendar`."""
    prefix = calendar.rstrip("/") + "/"
    query = select(LiveItem.href).where(LiveItem.href.startswith(prefix, autoescape=True))
    return [href for href in session.scalars(query) if href]


def by_href(session: Session, hrefs: Sequence[str]) -> list[LiveItem]:
    """The items stored at these URLs."""
    found: list[LiveItem] = []
    for chunk in chunked(sorted(set(hrefs))):
        found += session.scalars(select(LiveItem).where(LiveItem.href.in_(chunk)))
    return found


def completed_by_user(item: LiveItem, when: datetime | None, at: datetime) -> None:
    """The user completed `item` in their app, at `when` as it wrote (None: no time written)."""
    item.state, item.by_user, item.completed_at = CalendarState.COMPLETED, True, when
    item.reason, item.snoozed_until, item.updated_at = "completed in your calendar", None, at


def dismissed_by_user(item: LiveItem, why: str, at: datetime) -> None:
    """The user cancelled or deleted `item` in their app: its concern raises nothing more."""
    item.state, item.by_user, item.reason = CalendarState.CANCELLED, True, why
    item.snoozed_until, item.updated_at = None, at


def deleted_by_user(session: Session, item_id: int, at: datetime) -> None:
    """The user deleted item `item_id` from their calendar: dismissed, and nowhere now."""
    item = session.get(LiveItem, item_id)
    if item is not None:
        dismissed_by_user(item, "deleted in your calendar", at)
        item.href = None


def snoozed_by_user(item: LiveItem, until: datetime, at: datetime) -> None:
    """The user moved `item` later in their app: no repeat of its concern before `until`."""
    item.snoozed_until, item.updated_at = until, at


def pending_of(
    session: Session, concern: str, state: FollowUpState, reason: str, at: datetime
) -> int:
    """The pending follow-ups of `concern` ended as `state` for `reason`; how many."""
    result = session.execute(
        update(FollowUp)
        .where(FollowUp.concern == concern, FollowUp.state == FollowUpState.PENDING)
        .values(state=state, reason=reason, updated_at=at)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0))


def dismiss_recorded(session: Session, keys: Sequence[str], at: datetime) -> None:
    """Follow-ups just recorded whose concern the user dismissed: recorded dismissed."""
    for chunk in chunked(list(keys)):
        concerns = select(FollowUp.concern).where(FollowUp.key.in_(chunk))
        found = session.execute(
            select(LiveItem.concern, LiveItem.reason).where(
                LiveItem.concern.in_(concerns), DISMISSED
            )
        ).all()
        for concern, reason in found:
            session.execute(
                update(FollowUp)
                .where(
                    FollowUp.key.in_(chunk),
                    FollowUp.concern == concern,
                    FollowUp.state == FollowUpState.PENDING,
                )
                .values(
                    state=FollowUpState.DISMISSED,
                    reason=reason or "dismissed in your calendar",
                    updated_at=at,
                )
                .execution_options(synchronize_session=False)
            )


def dismissed_concerns(session: Session, concerns: Iterable[str]) -> dict[str, str]:
    """Of `concerns`, those the user dismissed: concern -> why."""
    found: dict[str, str] = {}
    for chunk in chunked(sorted(set(concerns))):
        query = select(LiveItem.concern, LiveItem.reason).where(
            LiveItem.concern.in_(chunk), DISMISSED
        )
        found.update(
            (concern, reason or "dismissed in your calendar")
            for concern, reason in session.execute(query)
        )
    return found


def snoozes(session: Session, concerns: Iterable[str], at: datetime) -> dict[str, datetime]:
    """Of `concerns`, those the user snoozed beyond `at`: concern -> until when."""
    found: dict[str, datetime] = {}
    for chunk in chunked(sorted(set(concerns))):
        query = select(LiveItem.concern, LiveItem.snoozed_until).where(
            LiveItem.concern.in_(chunk), LiveItem.snoozed_until > at
        )
        found.update((concern, until) for concern, until in session.execute(query) if until)
    return found
