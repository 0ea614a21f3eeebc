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

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select, true, update
from sqlalchemy.orm import Bundle, InstrumentedAttribute, Session

from followupd.domain import identity
from followupd.domain.items import is_meeting
from followupd.domain.owner_scope import Scope
from followupd.domain.states import ACTIVE_STATES, Audience, CalendarState, Channel, FollowUpState
from followupd.store.chunks import chunked
from followupd.store.models import Contact, FollowUp, LiveItem
from followupd.store.outbox.recording import PENDING_COLUMNS, end_pending
from followupd.store.outbox.rows import FollowUpRow, PendingRow, PeriodRow
from followupd.store.rows import record

DISMISSED = and_(LiveItem.state == CalendarState.CANCELLED, LiveItem.by_user)
DISMISSED_REASON = "dismissed in your calendar"  # an item dismissed without a word


def _keyed_by(
    session: Session, column: InstrumentedAttribute[str], values: Iterable[str]
) -> dict[str, LiveItem]:
    """The items whose `column` is one of `values`, by that value."""
    found: dict[str, LiveItem] = {}
    for chunk in chunked(sorted(set(values))):
        for item in session.scalars(select(LiveItem).where(column.in_(chunk))):
            found[getattr(item, column.key)] = item
    return found


def of_concerns(session: Session, concerns: Iterable[str]) -> dict[str, LiveItem]:
    """The items of `concerns` that exist, by concern."""
    return _keyed_by(session, LiveItem.concern, concerns)


def by_uid(session: Session, uids: Iterable[str]) -> dict[str, LiveItem]:
    """The items with these UIDs, by UID."""
    return _keyed_by(session, LiveItem.uid, uids)


def raised(
    session: Session,
    row: FollowUpRow,
    href: str | None,
    at: datetime,
    late_by: int = 0,
    put_off: datetime | None = None,
    placed: datetime | None = None,
    uid: str | None = None,
) -> LiveItem:
    """Record the calendar follow-up `row` delivered: its concern's item made, or moved to it.

    `late_by`: how many working days after its due time `row` went. When it
    went on the date the user put the item off to, the periods after it come
    as much later (`LiveItem.repeat_offset`). `put_off`: the time a period
    that waited for that rhythm is shown due at; `placed`: the time a meeting
    to place raised after its due is offered at (`_raise`). `uid`: the item's
    new UID, when the period went into an object of its own (the user made
    the item's event a meeting of theirs).
    """
    item = session.scalars(select(LiveItem).where(LiveItem.concern == row.concern)).first()
    if item is None:
        item = _new(row, at)
        session.add(item)
    if uid is not None:
        item.uid = uid
    if item.state != CalendarState.OPEN:
        item.repeat_offset = 0  # reopened: a new run of the concern, as the rule says
    elif item.repeat_offset == 0 and row.due_at < (item.snoozed_until or row.due_at) <= at:
        item.repeat_offset = late_by  # raised on the date the user put it off to
    _raise(item, row, href, at, put_off, placed)
    session.flush()
    return item


def as_raised(
    item: LiveItem | None,
    row: PeriodRow,
    at: datetime,
    put_off: datetime | None = None,
    placed: datetime | None = None,
) -> LiveItem:
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
    _raise(shown, row, item.href if item is not None else None, at, put_off, placed)
    return shown


def _new(row: PeriodRow, at: datetime) -> LiveItem:
    return LiveItem(
        concern=row.concern,
        uid=identity.uid(row.concern),
        owner=row.owner,
        first_raised_at=row.due_at,
        times_raised=0,
        sequence=-1,
        snoozed_until=None,
        repeat_offset=0,
        created_at=at,
    )


def _raise(
    item: LiveItem,
    row: PeriodRow,
    href: str | None,
    at: datetime,
    put_off: datetime | None,
    placed: datetime | None,
) -> None:
    """`item` showing `row`'s period; shown due at `put_off` when that is later (a period
    that waited for the rhythm of a reminder the user put off is due when it comes, not
    overdue on arrival).

    A meeting to place raised after its due is offered at `placed`, the owner's next
    working time (followupd.domain.meeting_place), not in the past: that is the due
    followupd writes (`LiveItem.due_at`), fixed from then on. The sync compares what the
    user did with it, so followupd's own placing is no move of the user's. A task raised
    after its due stays due then; `placed` is when its alarm rings (`LiveItem.alarm_at`).
    """
    item.rule, item.step, item.followup_key = row.rule, row.step, row.key
    item.subject_key, item.mission_id = row.subject_key, row.mission_id
    item.contact_id, item.language = row.contact_id, row.language
    item.summary, item.description = row.subject, row.body
    late = max(row.due_at, placed or row.due_at)
    item.due_at = late if is_meeting(row.rule, row.step) else row.due_at
    item.times_raised += 1
    item.sequence += 1
    item.href = href
    item.state, item.by_user, item.reason, item.completed_at = CalendarState.OPEN, False, None, None
    if item.snoozed_until is not None and item.snoozed_until <= item.due_at:
        item.snoozed_until = None
    if put_off is not None and put_off > item.due_at:
        item.snoozed_until = max(put_off, item.snoozed_until or put_off)
    item.alarm_at = item.snoozed_until or late  # as `ical.item_of`: the user's date wins
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
    return _with_contacts(
        session,
        scope.holds(LiveItem.owner) if scope is not None else true(),
        LiveItem.retire.is_(None),
        or_(LiveItem.state == CalendarState.OPEN, LiveItem.updated_at >= since),
    )


def _with_contacts(session: Session, *conditions: ColumnElement[bool]) -> list[FeedItem]:
    """The items under `conditions` as light rows, with their contact's name and phone;
    by due time, then UID."""
    query = (
        select(record(LiveItem, "item"), Contact.name, Contact.phone)
        .outerjoin(Contact, LiveItem.contact_id == Contact.id)
        .where(*conditions)
        .order_by(LiveItem.due_at, LiveItem.uid)
    )
    return [(item, name, phone) for item, name, phone in session.execute(query)]


def unwritten(session: Session) -> list[FeedItem]:
    """Open items in no CalDAV calendar (made before the owner had one), with their contact."""
    return _with_contacts(
        session,
        LiveItem.href.is_(None),
        LiveItem.state == CalendarState.OPEN,
        LiveItem.retire.is_(None),
    )


def alarms_to_move(session: Session) -> list[FeedItem]:
    """Open items in a calendar that the user put off to another time than followupd's alarm.

    Also back to an earlier date than one they chose before (the alarm was moved there).
    """
    return _with_contacts(
        session,
        LiveItem.href.is_not(None),
        LiveItem.state == CalendarState.OPEN,
        LiveItem.retire.is_(None),
        LiveItem.snoozed_until > LiveItem.due_at,
        LiveItem.snoozed_until != func.coalesce(LiveItem.alarm_at, LiveItem.due_at),
    )


def alarm_moved(session: Session, item_id: int, to: datetime, at: datetime) -> None:
    """followupd's alarm of item `item_id` fires at `to` now (the user's date)."""
    session.execute(
        update(LiveItem)
        .where(LiveItem.id == item_id)
        .values(alarm_at=to, sequence=LiveItem.sequence + 1, updated_at=at)
    )


def written_at(session: Session, item_id: int, href: str, at: datetime) -> None:
    """Item `item_id`, in no calendar until now, is at `href`."""
    session.execute(
        update(LiveItem)
        .where(LiveItem.id == item_id, LiveItem.href.is_(None))
        .values(href=href, updated_at=at)
    )


PreviewRow = tuple[PeriodRow, str | None, str | None]  # a period, its contact's name, phone
# what the feed reads of a period still to deliver: a third of a follow-up's columns, read
# on every request of the feed
PERIOD_COLUMNS = (*PENDING_COLUMNS, FollowUp.subject, FollowUp.body, FollowUp.language,
                  FollowUp.created_at)  # fmt: skip


def previews(session: Session, scope: Scope | None = None) -> list[PreviewRow]:
    """The first calendar period still to deliver of each concern that has no item yet.

    The feed shows what is coming as the item it will be (the same UID), one
    per concern; once delivered, the item itself takes its place.
    """
    period: Bundle[Any] = Bundle("followup", *PERIOD_COLUMNS)
    query = (
        select(period, Contact.name, Contact.phone)
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


def written(session: Session) -> list[tuple[int, str]]:
    """The open items in a CalDAV calendar: id and URL of each."""
    query = select(LiveItem.id, LiveItem.href).where(
        LiveItem.href.is_not(None), LiveItem.state == CalendarState.OPEN
    )
    return [(item_id, href) for item_id, href in session.execute(query) if href]


def by_id(session: Session, ids: Iterable[int]) -> list[LiveItem]:
    found: list[LiveItem] = []
    for chunk in chunked(sorted(set(ids))):
        found += session.scalars(select(LiveItem).where(LiveItem.id.in_(chunk)))
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
    """The user moved `item` later in their app: no repeat of its concern before `until`.

    Its rhythm is set again when it is raised on that date.
    """
    item.snoozed_until, item.repeat_offset, item.updated_at = until, 0, at


def pending_of(
    session: Session, concern: str, state: FollowUpState, reason: str, at: datetime
) -> int:
    """The pending follow-ups of `concern` ended as `state` for `reason`; how many."""
    return end_pending(session, FollowUp.concern == concern, state, reason, at)


def any_dismissed(session: Session) -> bool:
    """Whether the user has dismissed any item (else no concern is dismissed: no need to ask)."""
    return session.scalar(select(LiveItem.id).where(DISMISSED).limit(1)) is not None


def dismissed_concerns(session: Session, concerns: Iterable[str]) -> dict[str, str]:
    """Of `concerns`, those the user dismissed: concern -> why."""
    found: dict[str, str] = {}
    for chunk in chunked(sorted(set(concerns))):
        query = select(LiveItem.concern, LiveItem.reason).where(
            LiveItem.concern.in_(chunk), DISMISSED
        )
        found.update(
            (concern, reason or DISMISSED_REASON) for concern, reason in session.execute(query)
        )
    return found


@dataclass(frozen=True)
class LastRaise:
    """The open item of a concern: the period it shows, when that went, the user's snooze."""

    shown_due: datetime  # the due time of the period the item shows
    raised_at: datetime | None  # when followupd delivered that period
    snoozed_until: datetime | None  # the user put the item off to then
    repeat_offset: int  # working days the periods come later since then

    @property
    def raised_since_snooze(self) -> bool:
        """Whether the item was raised again once the user's date came."""
        return self.snoozed_until is None or (
            self.raised_at is not None and self.raised_at >= self.snoozed_until
        )


def last_raises(session: Session, concerns: Iterable[str]) -> dict[str, LastRaise]:
    """Of `concerns`, those with an open item: concern -> its last raise."""
    found: dict[str, LastRaise] = {}
    for chunk in chunked(sorted(set(concerns))):
        query = (
            select(
                LiveItem.concern,
                LiveItem.due_at,
                FollowUp.sent_at,
                LiveItem.snoozed_until,
                LiveItem.repeat_offset,
            )
            .outerjoin(FollowUp, FollowUp.key == LiveItem.followup_key)
            .where(
                LiveItem.concern.in_(chunk),
                LiveItem.state == CalendarState.OPEN,
                LiveItem.retire.is_(None),
            )
        )
        for concern, due, sent, until, offset in session.execute(query):
            found[concern] = LastRaise(due, sent, until, offset)
    return found
