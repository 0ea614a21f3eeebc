"""The iCalendar feed: the owner's calendar items as one document a calendar app subscribes to.

It holds the owner's calendar items (one per concern) still open, and those
closed in the last 30 days (marked completed or cancelled), built with the
same objects the CalDAV channel writes. Everything in it comes from stored
state, so the same store gives the same bytes, and the ETag (a digest of
the bytes) lets a client ask "anything new?" for the price of a 304.

A built feed is kept while what it is built from stays the same
(`FeedCache`): an app polling an unchanged feed costs one query. When
something changed, the feed is built again from the bytes of each item's
object kept from the last build (`components.Components`): only the items
that changed are made again.

A formal notice's PDF is linked by URL (`files`), not inlined: the feed
reads no file's bytes, and its items name their file at the origin the
feed was asked at, so a feed is kept per owner and origin.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import partial
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from followupd.channels.calendar import ical
from followupd.channels.feed.components import Components, serialized
from followupd.channels.feed.files import FileLinks
from followupd.domain.meeting_place import OwnersTime
from followupd.domain.owner_scope import Scope
from followupd.store import live_items
from followupd.store.attachments import Named, names
from followupd.store.outbox.rows import PeriodRow

RECENT = timedelta(days=30)
REFRESH = timedelta(hours=1)
EPOCH = date(2000, 1, 1)  # the zone span of an empty feed: no times, no zones needed
ORIGINS = 4  # the feeds kept per owner, one per origin it was asked at


@dataclass(frozen=True)
class Feed:
    body: bytes
    etag: str  # a strong ETag, quoted
    count: int


@dataclass(frozen=True)
class FeedSource:
    """What an owner's feed is made of, as stored: compared by value to keep a built feed."""

    items: list[live_items.FeedItem]  # open, or closed since the recent cut-off
    previews: list[live_items.PreviewRow]  # concerns still to deliver, as they will be
    files: dict[str, Named]  # the attachments of the follow-ups they show, by key


def feed_source(session: Session, at: datetime, scope: Scope | None = None) -> FeedSource:
    """The rows the owner's feed at `at` is made of (see `feed_items`)."""
    items = live_items.feed_items(session, at - RECENT, scope)
    previews = live_items.previews(session, scope)
    keys = [item.followup_key for item, _, _ in items] + [row.key for row, _, _ in previews]
    return FeedSource(items, previews, names(session, keys))


def items_of(
    source: FeedSource,
    zone: ZoneInfo,
    links: FileLinks | None,
    components: Components | None = None,
    time: OwnersTime | None = None,
) -> list[ical.CalendarItem]:
    """The calendar items of `source`, their times in `zone`; by due time, then UID.

    Each item's file is linked where `links` says (None: the items show no
    file, for a caller that needs the items, not the document). Those of
    rows `components` saw in the last build are taken from there. A meeting
    to place still to deliver, recorded after its due, is shown where it will
    be offered by `time`, the owner's working time (None: at its due); a task,
    with its alarm then.
    """
    kept = (components or Components()).items

    def link(key: str) -> ical.FileLink | None:
        file = source.files.get(key)
        return links.link(file) if file is not None and links is not None else None

    items = []
    for entry in source.items:
        item, name, phone = entry
        file = link(item.followup_key)
        made = partial(ical.item_of, item, zone, name, phone, file)
        items.append(kept.get((zone.key, "item", entry, file), made))
    for preview in source.previews:
        row, name, phone = preview
        file = link(row.key)
        made = partial(_coming, row, zone, name, phone, file, time)
        items.append(kept.get((zone.key, "preview", preview, file), made))
    kept.end_round()
    return sorted(items, key=lambda item: (item.due_at, item.uid))


def _coming(
    row: PeriodRow,
    zone: ZoneInfo,
    name: str | None,
    phone: str | None,
    file: ical.FileLink | None,
    time: OwnersTime | None,
) -> ical.CalendarItem:
    """The item a follow-up still to deliver will be, as if raised when it was recorded (a
    time that stays: a meeting to place recorded late is offered at the next working time,
    a task's alarm rings then)."""
    at = row.created_at
    placed = time.late_time(row.rule, row.step, row.due_at, at) if time is not None else None
    return ical.item_of(live_items.as_raised(None, row, at, None, placed), zone, name, phone, file)


def feed_items(
    session: Session,
    at: datetime,
    zone: ZoneInfo,
    scope: Scope | None = None,
    links: FileLinks | None = None,
    time: OwnersTime | None = None,
) -> list[ical.CalendarItem]:
    """The owner's items: open ones, those closed in the last 30 days, and those to come.

    One per concern; a concern not delivered yet shows its next period, under
    the UID its item will have. With several owners, `scope` says whose: each
    owner's feed has their items only. By due time, then UID. Files are
    linked where `links` says (None: not shown); `time` places meetings still to come
    (`items_of`).
    """
    return items_of(feed_source(session, at, scope), zone, links, time=time)


def build_feed(
    items: Sequence[ical.CalendarItem],
    zone: ZoneInfo,
    name: str,
    components: Components | None = None,
) -> Feed:
    """One document for `items`, its times in the owner's `zone`.

    The same bytes as ``ical.calendar_of(...).to_ical()`` of every item's
    component, put together faster: the calendar around them is made with the
    first item alone, for its VTIMEZONE (every item's times are in `zone` or
    in UTC), and the items' own bytes, from `components` (kept from the last
    build) or made now, go where it was.
    """
    parts = (components or Components()).of(items, zone)
    days = [item.due_at.date() for item in items]
    span = (min(days) - ical.ZONE_SPAN, max(days) + ical.ZONE_SPAN) if days else (EPOCH, EPOCH)
    probe = [ical.component(items[0], zone)] if items else []
    calendar = ical.calendar_of(probe, span, name=name)
    calendar.subcomponents = [part for part in calendar.subcomponents if part.name == "VTIMEZONE"]
    calendar.add("refresh-interval", REFRESH, parameters={"VALUE": "DURATION"})
    calendar.add("x-published-ttl", "PT1H")
    envelope = serialized(calendar)
    end = b"END:VCALENDAR\r\n"
    if not envelope.endswith(end):
        raise AssertionError(f"a calendar that does not end with {end!r}")
    body = b"".join([envelope.removesuffix(end), *parts, end])
    return Feed(body, f'"{hashlib.sha256(body).hexdigest()[:32]}"', len(items))


class FeedCache:
    """The last feed built for each owner and origin, and what it was built from.

    The stored rows are compared, not a version number: reading them is cheap
    next to making items of them and rendering those, and any change to what
    the feed shows, a contact's phone number included, gives different rows.
    The items link their files at the origin the feed was asked at (the
    daemon's address, or a proxy's), so each origin has its own feed; an
    owner's ORIGINS last ones are kept.
    """

    def __init__(self) -> None:
        self._built: dict[tuple[str, str], tuple[object, Feed]] = {}
        self._components: dict[tuple[str, str], Components] = {}

    def get(self, owner: str, origin: str, source: object) -> Feed | None:
        kept = self._built.get((owner, origin))
        return kept[1] if kept is not None and kept[0] == source else None

    def put(self, owner: str, origin: str, source: object, feed: Feed) -> None:
        self._built.pop((owner, origin), None)
        self._built[(owner, origin)] = (source, feed)  # the latest last
        self._components.setdefault((owner, origin), Components())
        self._components[(owner, origin)] = self._components.pop((owner, origin))
        for kept in (self._built, self._components):
            theirs = [key for key in kept if key[0] == owner]
            for key in theirs[: max(0, len(theirs) - ORIGINS)]:
                del kept[key]

    def components(self, owner: str, origin: str) -> Components:
        """The bytes of the items of the owner's last feed at `origin`, for `build_feed`."""
        return self._components.setdefault((owner, origin), Components())
