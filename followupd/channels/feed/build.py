"""The iCalendar feed: the owner's calendar items as one document a calendar app subscribes to.

It holds the owner's calendar follow-ups that are still to do, and those of
the last 30 days (done ones marked completed or cancelled), built with the
same objects the CalDAV channel writes. Everything in it comes from stored
state, so the same store gives the same bytes, and the ETag (a digest of
the bytes) lets a client ask "anything new?" for the price of a 304.

Building costs about half a millisecond of CPU per item (icalendar), so a
built feed is kept while what it is built from stays the same (`FeedCache`):
an app polling an unchanged feed of 10,000 items costs one query, not five
seconds of rendering.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select, true
from sqlalchemy.orm import Session

from followupd.channels.calendar import ical
from followupd.domain.owner_scope import Scope
from followupd.domain.states import ACTIVE_STATES, Audience, Channel, FollowUpState
from followupd.store.models import Contact, FollowUp

RECENT = timedelta(days=30)
REFRESH = timedelta(hours=1)
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
EPOCH = date(2000, 1, 1)  # the zone span of an empty feed: no times, no zones needed


@dataclass(frozen=True)
class Feed:
    body: bytes
    etag: str  # a strong ETag, quoted
    count: int


def feed_rows(session: Session, at: datetime, scope: Scope | None = None) -> list[Any]:
    """The owner's calendar follow-ups still to do, and those due in the last 30 days.

    With several owners, `scope` says whose: each owner's feed has their items only.
    """
    query = (
        select(*FEED_COLUMNS)
        .outerjoin(Contact, FollowUp.contact_id == Contact.id)
        .where(
            scope.holds(FollowUp.owner) if scope is not None else true(),
            FollowUp.audience == Audience.OWNER,
            FollowUp.channel == Channel.CALENDAR,
            FollowUp.state.in_(ACTIVE_STATES | {FollowUpState.SENT}),
            or_(FollowUp.state.in_(ACTIVE_STATES), FollowUp.due_at >= at - RECENT),
        )
        .order_by(FollowUp.due_at, FollowUp.key)
    )
    return list(session.execute(query))


def build_feed(rows: Sequence[Any], zone: ZoneInfo, name: str) -> Feed:
    """One document for `rows`, its times in the owner's `zone`."""
    components = [
        ical.component(ical.item_of(row, row.contact_name, row.contact_phone), zone) for row in rows
    ]
    days = [row.due_at.date() for row in rows]
    span = (min(days) - ical.ZONE_SPAN, max(days) + ical.ZONE_SPAN) if days else (EPOCH, EPOCH)
    calendar = ical.calendar_of(components, span, name=name)
    calendar.add("refresh-interval", REFRESH, parameters={"VALUE": "DURATION"})
    calendar.add("x-published-ttl", "PT1H")
    body = bytes(calendar.to_ical())
    return Feed(body, f'"{hashlib.sha256(body).hexdigest()[:32]}"', len(rows))


class FeedCache:
    """The last feed built for each owner, and what it was built from.

    The rows are compared, not a version number: reading them is cheap next
    to rendering them, and any change to what the feed shows, a contact's
    phone number included, gives different rows.
    """

    def __init__(self) -> None:
        self._built: dict[str, tuple[object, Feed]] = {}

    def get(self, owner: str, source: object) -> Feed | None:
        kept = self._built.get(owner)
        return kept[1] if kept is not None and kept[0] == source else None

    def put(self, owner: str, source: object, feed: Feed) -> None:
        self._built[owner] = (source, feed)
