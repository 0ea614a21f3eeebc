"""What the user did to followupd's items in their calendar app, read back on each sync.

The calendar is a remote control: an item completed there is done, and what
it asked for is recorded (a call made, a status update sent, the client
informed of an issue, a client's promise to pay written in it:
followupd.sources.caldav.promised), at the completion time the app wrote; an item
cancelled or deleted there dismisses its concern; an item moved later
snoozes it (followupd.store.live_items says what each means for the
follow-ups still pending). Only an open item is read: one followupd closed
itself says nothing of the user.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from followupd.domain import items
from followupd.domain.states import CalendarState, FollowUpState, TouchpointKind
from followupd.sources.caldav.promised import promise_from_task
from followupd.sources.files.importer import Located, apply
from followupd.sources.files.records import TouchpointRecord
from followupd.sources.ical.remote_control import (
    Completed,
    Dismissed,
    ItemSeen,
    Snoozed,
    user_action,
)
from followupd.store import live_items
from followupd.store.models import Contact, Issue, LiveItem, Mission

COMPLETED = "completed in your calendar"
# what a touchpoint made from a completed item says of it, in the item's language: its note
# shows in the owner's later reminders (« Dernier échange : appel le … : « … » »)
DONE_IN_CALENDAR = {"fr": "fait dans votre agenda", "en": COMPLETED}


@dataclass
class ReadBack:
    """What the user did to followupd's items: the keys of the follow-ups each showed."""

    completed: list[str] = field(default_factory=list)
    dismissed: list[str] = field(default_factory=list)  # cancelled or deleted
    snoozed: list[str] = field(default_factory=list)
    promised: list[tuple[str, date]] = field(default_factory=list)  # invoice, by when

    def __iadd__(self, other: ReadBack) -> ReadBack:
        self.completed += other.completed
        self.dismissed += other.dismissed
        self.snoozed += other.snoozed
        self.promised += other.promised
        return self

    @property
    def counts(self) -> tuple[int, int, int]:
        return len(self.completed), len(self.dismissed), len(self.snoozed)

    @property
    def mark(self) -> tuple[int, int, int, int]:
        """Where it stands, to `undo_to`."""
        return (*self.counts, len(self.promised))

    def undo_to(self, mark: tuple[int, int, int, int]) -> None:
        """Forget what was added since `mark` (an object whose reading was undone)."""
        del self.completed[mark[0] :]
        del self.dismissed[mark[1] :]
        del self.snoozed[mark[2] :]
        del self.promised[mark[3] :]


def read_back(session: Session, seen: Iterable[ItemSeen], at: datetime) -> ReadBack:
    """Act on what the user did to the items among `seen` (followupd's, as read in an object).

    What a completed item asked for is recorded for good: unlike a meeting's
    touchpoint, it does not go with the object, which followupd rewrites when
    it raises the concern's next period, and the user may delete once done.
    """
    items_seen = list(seen)
    found = live_items.by_uid(session, [one.uid for one in items_seen])
    did = ReadBack()
    for one in items_seen:
        item = found.get(one.uid)
        if item is None or item.retire is not None or item.state != CalendarState.OPEN:
            continue
        # as followupd wrote it: a meeting to place raised late is where followupd placed it
        # (followupd.domain.meeting_place), which is no move of the user's
        written_due = max(item.due_at, item.snoozed_until or item.due_at)
        match user_action(one, written_due):
            case Completed(at=when):
                live_items.completed_by_user(item, when, at)
                live_items.pending_of(session, item.concern, FollowUpState.CANCELLED, COMPLETED, at)
                _what_it_asked(session, item, when or at)
                promised = promise_from_task(session, item, one, written_due, when or at)
                if promised is not None:
                    did.promised.append((item.subject_key, promised))
                did.completed.append(item.followup_key)
            case Dismissed():
                dismissed(session, item, "cancelled in your calendar", at)
                did.dismissed.append(item.followup_key)
            case Snoozed(until=until):
                if item.snoozed_until != until:
                    did.snoozed.append(item.followup_key)
                live_items.snoozed_by_user(item, until, at)
            case _:
                pass
    return did


def deleted(session: Session, items: Iterable[LiveItem], at: datetime) -> list[str]:
    """Items the user deleted from their calendar: their concerns dismissed; their keys."""
    acted: list[str] = []
    for item in items:
        if item.retire is None and item.state == CalendarState.OPEN:
            dismissed(session, item, "deleted in your calendar", at)
            item.href = None
            acted.append(item.followup_key)
    return acted


def dismissed(session: Session, item: LiveItem, why: str, at: datetime) -> None:
    live_items.dismissed_by_user(item, why, at)
    live_items.pending_of(session, item.concern, FollowUpState.DISMISSED, why, at)


def _what_it_asked(session: Session, item: LiveItem, when: datetime) -> None:
    """Record what a completed item asked for: the client informed, a touchpoint.

    A call about an open issue (escalated by phone) told the client of it too: the issue's
    client is informed then, unless already, and `client_not_informed` stops.
    """
    if item.rule == "client_not_informed" or items.tells_of_issue(item.rule, item.step):
        session.execute(
            update(Issue)
            .where(Issue.key == item.subject_key, Issue.client_informed.is_(None))
            .values(client_informed=when)
        )
        if item.rule == "client_not_informed":
            return
    if items.is_call(item.rule, item.step, item.followup_key):
        kind = TouchpointKind.CALL
    elif item.rule == "status_update_due":
        kind = TouchpointKind.STATUS_UPDATE
    else:
        return
    mission = session.get(Mission, item.mission_id) if item.mission_id is not None else None
    if mission is None:
        return
    contact = session.scalar(select(Contact.key).where(Contact.id == item.contact_id))
    record = TouchpointRecord(
        mission=mission.key,
        contact=contact,
        kind=kind,
        at=when,
        note=f"{item.summary} ({DONE_IN_CALENDAR.get(item.language, COMPLETED)})",
    )
    apply(session, [Located(record, Path("calendar"), "touchpoints", 0, {})])
