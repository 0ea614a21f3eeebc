"""The calendar channel: follow-up objects written over CalDAV into ``write_calendar``.

caldav's synchronous client does the talking; async callers run a writer's
methods in a thread. Every write is conditional, so nothing is lost or
written twice when two workers, a crash or the user get in the way:

- a new object is PUT with ``If-None-Match: *``. A 412 means it is already
  there (the write went through but its record was lost to a crash, or a
  second worker got there first): the object is read back and, if it is
  ours, counted as written;
- an update (a new period of a repeating reminder) or a close reads the
  object, changes followupd's part of it (keeping what the user and their
  apps added) and PUTs it back with ``If-Match`` its ETag; a 412 (the user
  edited it meanwhile) reads it again.

Failures are sorted like SMTP's: connection errors, timeouts and 5xx are
worth retrying; authentication and other 4xx answers are not.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Self
from urllib.parse import urljoin

from icalendar import Calendar

from followupd.channels.calendar.ical import close as closed_document
from followupd.channels.failure import DeliveryError
from followupd.config.owners import OwnerEntry
from followupd.config.sections import Caldav
from followupd.config.settings import Settings
from followupd.dav.client import AmbiguousCalendar, dav_client, find_calendar, is_address
from followupd.domain import identity
from followupd.domain.owner_scope import caldav_of
from followupd.domain.states import CalendarState

ICALENDAR = {"Content-Type": 'text/calendar; charset="utf-8"'}
GONE = (404, 410)
UPDATE_ATTEMPTS = 3


def classify(error: BaseException) -> DeliveryError:
    """A CalDAV failure as a DeliveryError: network trouble and 5xx are worth retrying."""
    import niquests.exceptions
    from caldav.lib import error as dav_error

    if isinstance(error, DeliveryError):
        return error
    if isinstance(error, niquests.exceptions.SSLError):
        return DeliveryError(f"CalDAV TLS failure: {error}", permanent=True)
    if isinstance(error, dav_error.AuthorizationError):
        return DeliveryError(f"CalDAV authorization refused: {error.reason}", permanent=True)
    if isinstance(error, dav_error.RateLimitError):
        return DeliveryError(f"CalDAV server busy: {error.reason}", permanent=False)
    if isinstance(error, OSError | TimeoutError):
        return DeliveryError(f"CalDAV server unreachable: {error}", permanent=False)
    return DeliveryError(f"CalDAV: {type(error).__name__}: {error}", permanent=False)


def _refused(what: str, response: Any) -> DeliveryError:
    status = int(response.status)
    reason = f"CalDAV {what} answered {status} {getattr(response, 'reason', '') or ''}".strip()
    return DeliveryError(reason, permanent=400 <= status < 500)


def _uids(text: str) -> set[str]:
    calendar = Calendar.from_ical(text)
    return {str(part["UID"]) for part in calendar.walk() if "UID" in part}


class CalendarWriter:
    """Writes and closes follow-up objects in one collection; ``with`` it for one batch."""

    def __init__(self, caldav: Caldav, environ: Mapping[str, str] | None = None) -> None:
        self.caldav = caldav
        self.environ = environ
        self.client: Any = None
        self.collection = ""
        self.collections: dict[str, str] = {}  # calendar name -> URL

    def __enter__(self) -> Self:
        try:
            self.client = dav_client(self.caldav, self.environ)
            self.into(self.caldav.write_calendar)
        except Exception as error:  # caldav raises many kinds; classify says what each means
            self.__exit__()
            raise classify(error) from error
        return self

    def into(self, name: str) -> None:
        """Write into the calendar `name` of the same account from now on (an owner's)."""
        if name not in self.collections:
            try:
                self.collections[name] = self._collection_url(name)
            except Exception as error:
                raise classify(error) from error
        self.collection = self.collections[name]

    def __exit__(self, *exc_info: object) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None

    def _collection_url(self, name: str) -> str:
        """The calendar's URL, made on the server the first time it is needed.

        `name` is a display name (two calendars sharing it is an error until
        one is renamed or named by its path: tasks wait meanwhile), or a path
        or URL, which must exist.
        """
        principal = self.client.principal()
        listed = principal.calendars()
        try:
            found = find_calendar(self.client, listed, name)
        except AmbiguousCalendar as error:
            raise DeliveryError(f"write calendar: {error}", permanent=False) from error
        if found is not None:
            return str(found.url)
        if is_address(name):
            raise DeliveryError(f"write calendar {name!r} not found on the server", permanent=False)
        slug = identity.slug(name) or "followupd"
        for calendar in listed:  # the one followupd made, should the server drop display names
            if str(calendar.url).rstrip("/").rsplit("/", 1)[-1] == slug:
                return str(calendar.url)
        made = principal.make_calendar(
            name=name, cal_id=slug, supported_calendar_component_set=["VTODO", "VEVENT"]
        )
        return str(made.url)

    def href(self, resource: str) -> str:
        return urljoin(self.collection if self.collection.endswith("/") else self.collection + "/",
                       resource)  # fmt: skip

    def _request(self, url: str, method: str, body: bytes = b"", **headers: str) -> Any:
        try:
            return self.client.request(url, method, body, {**ICALENDAR, **headers})
        except Exception as error:
            raise classify(error) from error

    def create(self, resource: str, body: bytes, uid: str) -> str:
        """Store a new object as `resource`; its URL. Already there and ours counts as done."""
        url = self.href(resource)
        response = self._request(url, "PUT", body, **{"If-None-Match": "*"})
        if 200 <= response.status < 300:
            return url
        if response.status in (409, 412):
            current = self._request(url, "GET")
            if current.status == 200 and uid in _uids(current.raw):
                return url
            if current.status in GONE:  # deleted in between: write it again
                return self.create(resource, body, uid)
            raise DeliveryError(f"CalDAV: {url} holds another object than {uid}", permanent=True)
        raise _refused("PUT", response)

    def update(self, url: str, change: Callable[[str], tuple[bytes, bool]]) -> str:
        """Rewrite the object at `url` with `change` (its text -> new body, changed or not).

        "updated", "already" (`change` changed nothing) or "gone" (the user
        deleted it). Conditional on the ETag read: an edit made meanwhile (a
        412) is read again and `change` applied to it, so it is never lost.
        """
        for _ in range(UPDATE_ATTEMPTS):
            current = self._request(url, "GET")
            if current.status in GONE:
                return "gone"
            if current.status != 200:
                raise _refused("GET", current)
            body, changed = change(current.raw)
            if not changed:
                return "already"
            etag = current.headers.get("ETag")
            conditions = {"If-Match": etag} if etag else {}
            response = self._request(url, "PUT", body, **conditions)
            if 200 <= response.status < 300:
                return "updated"
            if response.status not in (409, 412):
                raise _refused("PUT", response)
        raise DeliveryError(f"CalDAV: {url} kept changing while being written", permanent=False)

    def close(self, url: str, status: CalendarState, stamp: datetime, note: str) -> str:
        """Mark the object at `url` completed or cancelled: "updated", "already" or "gone"."""
        return self.update(url, lambda text: closed_document(text, status, stamp, note))


class Writers:
    """The calendar writers of one delivery pass: one connection per CalDAV account.

    Each owner's items go into that owner's write calendar: on the shared
    ``[caldav]`` account through one writer made by `make_shared` (which tests
    replace), on an owner's own account through a writer of its own. An
    account that cannot be reached is tried once a pass.
    """

    def __init__(self, settings: Settings, make_shared: Callable[[], CalendarWriter]) -> None:
        self.settings = settings
        shared = settings.caldav
        self.shared = (shared.url, shared.username) if shared is not None else None
        self.make_shared = make_shared
        self.opened: dict[tuple[str, str | None], CalendarWriter | DeliveryError] = {}
        self.calendars: dict[str, Caldav | None] = {}  # owner key -> account and calendars

    async def writer(self, owner: OwnerEntry) -> CalendarWriter | None:
        """A writer into the owner's calendar; None: the owner has none (items in the feed).

        A DeliveryError when the owner's server cannot be reached.
        """
        if owner.key not in self.calendars:
            self.calendars[owner.key] = caldav_of(self.settings, owner)
        caldav = self.calendars[owner.key]
        if caldav is None:
            return None
        account = (caldav.url, caldav.username)
        if account not in self.opened:
            made = self.make_shared() if account == self.shared else CalendarWriter(caldav)
            try:
                self.opened[account] = await asyncio.to_thread(made.__enter__)
            except DeliveryError as error:
                self.opened[account] = error
        writer = self.opened[account]
        if isinstance(writer, DeliveryError):
            raise writer
        if writer.collection != writer.collections.get(caldav.write_calendar):
            await asyncio.to_thread(writer.into, caldav.write_calendar)
        return writer

    async def close(self) -> None:
        for writer in self.opened.values():
            if isinstance(writer, CalendarWriter):
                await asyncio.to_thread(writer.__exit__)
        self.opened.clear()
