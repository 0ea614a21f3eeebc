"""What the user did to followupd's items in their calendar app, read back on each sync.

The calendar is a remote control: an item completed there is done, and what
it asked for is recorded (a call made, a status update sent, the client
informed of an issue), at the completion time the app wrote; an item
cancelled or deleted there dismisses its concern; an item moved later
snoozes it (followupd.store.live_items says what each means for the
follow-ups still pending). Only an open item is read: one followupd closed
itself says nothing of the user.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from followupd.domain import items
from followupd.domain.states import CalendarState, FollowUpState, TouchpointKind
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


def read_back(
    session: Session, seen: Iterable[ItemSeen], at: datetime
) -> tuple[list[str], set[str]]:
    """Act on what the user did to the items among `seen` (followupd's, as read in an object).

    Returns the keys of the follow-ups whose item was completed or
    dismissed, and the touchpoints recorded (kept while the object lasts).
    """
    items_seen = list(seen)
    found = live_items.by_uid(session, [one.uid for one in items_seen])
    acted: list[str] = []
    derived: set[str] = set()
    for one in items_seen:
        item = found.get(one.uid)
        if item is None or item.retire is not None or item.state != CalendarState.OPEN:
            continue
        written_due = max(item.due_at, item.snoozed_until or item.due_at)
        match user_action(one, written_due):
            case Completed(at=when):
                live_items.completed_by_user(item, when, at)
                live_items.pending_of(session, item.concern, FollowUpState.CANCELLED, COMPLETED, at)
                derived |= _what_it_asked(session, item, when or at)
                acted.append(item.followup_key)
            case Dismissed():
                dismissed(session, item, "cancelled in your calendar", at)
                acted.append(item.followup_key)
            case Snoozed(until=until):
                live_items.snoozed_by_user(item, until, at)
            case _:
                pass
    return acted, derived


def deleted(
    session: Session, uids: Iterable[str], at: datetime, hrefs: Sequence[str] = ()
) -> list[str]:
    """Items the user deleted from their calendar: their concerns dismissed; their keys.

    An item is found by the UID its object was read with, or, deleted before
    any sync read it, by the URL followupd wrote it at (`hrefs`).
    """
    found = {item.id: item for item in live_items.by_uid(session, list(uids)).values()}
    found.update((item.id, item) for item in live_items.by_href(session, hrefs))
    acted: list[str] = []
    for item in found.values():
        if item.retire is None and item.state == CalendarState.OPEN:
            dismissed(session, item, "deleted in your calendar", at)
            item.href = None
            acted.append(item.followup_key)
    return acted


def unread(session: Session, calendar: Any, url: str, known: Iterable[str]) -> dict[str, str]:
    """followupd's items in the calendar at `url` that no sync has read: URL -> as stored.

    `known` are the URLs of the objects read. One written and deleted between
    two syncs may be listed neither as changed nor as deleted (RFC 6578 lets a
    server leave it out): these are fetched, and one gone was deleted.
    """
    read = set(known)
    stored = live_items.hrefs_in(session, url)
    found = {str(calendar.url.join(href).canonical()): href for href in stored}
    return {full: href for full, href in found.items() if full not in read}


def dismissed(session: Session, item: LiveItem, why: str, at: datetime) -> None:
    live_items.dismissed_by_user(item, why, at)
    live_items.pending_of(session, item.concern, FollowUpState.DISMISSED, why, at)


def _what_it_asked(session: Session, item: LiveItem, when: datetime) -> set[str]:
    """Record what a completed item asked for; the touchpoints it made."""
    if item.rule == "client_not_informed":
        session.execute(
            update(Issue)
            .where(Issue.key == item.subject_key, Issue.client_informed.is_(None))
            .values(client_informed=when)
        )
        return set()
    if items.is_call(item.rule, item.step, item.followup_key):
        kind = TouchpointKind.CALL
    elif item.rule == "status_update_due":
        kind = TouchpointKind.STATUS_UPDATE
    else:
        return set()
    mission = session.get(Mission, item.mission_id) if item.mission_id is not None else None
    if mission is None:
        return set()
    contact = session.scalar(select(Contact.key).where(Contact.id == item.contact_id))
    record = TouchpointRecord(
        mission=mission.key,
        contact=contact,
        kind=kind,
        at=when,
        note=f"{item.summary} ({COMPLETED})",
    )
    apply(session, [Located(record, Path("calendar"), "touchpoints", 0, {})])
    return {record.identity()}
