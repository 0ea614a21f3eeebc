"""The calendar as a source: missions, meetings and completed tasks, synced incrementally.

Every ``read_calendars`` calendar, and ``write_calendar`` (for the tasks the
user completes), is synced with the RFC 6578 sync token: the server lists
what changed and what was deleted since the last token, and only changed
objects are fetched, with ``calendar-multiget`` in chunks. When the server
has no sync support, rejects a stored token, or the library hands back a
``fake-`` token (it listed everything), the objects' ETags are compared with
those stored in ``calendar_objects`` instead; a real token is asked for again
on the next sync. Tokens and ETags live in the store, so the daemon and
`followupd sync` share them.

The calendars are found through the caldav library; once found, with their
tokens stored, by a plain listing of their collection. What changed in them
is asked by plain requests (a sync-collection REPORT, a calendar-multiget:
followupd.dav.plain and followupd.sources.caldav.calendar_access), a first
sync's too, the library asked only for an answer those do not read as
plainly: a sync after one change is a short command, and the library stack
takes longer to import than the sync to run; a first sync reads thousands
of objects, which the library's per-object URLs make slower.

An object that cannot be read is skipped with its URL and the reason, and
never stops the sync; its ETag is kept so it is not fetched again until it
changes. One that could not be fetched is tried again next sync. A calendar
that fails as a whole (a server error, a display name two calendars share,
anything unforeseen) is listed in the report's `failed`, with its URL, and
the other calendars are synced. A deleted mission event is reported, never a
silent mission delete. Meetings are stored as occurrences and counted as they
end, with no fetch (followupd.sources.caldav.meetings).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import ValidationError
from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from followupd.config.accounts import CaldavAccount
from followupd.config.settings import Settings
from followupd.dav.client import (
    TIMEOUT_SECONDS,
    AmbiguousCalendar,
    dav_client,
    find_calendar,
    is_address,
)
from followupd.dav.plain import NotPlain, PlainDav, canonical
from followupd.domain.business_calendar import zone as zone_named
from followupd.domain.owner_scope import SyncedCalendar, calendar_sources, has_calendars
from followupd.domain.states import CalendarObjectKind
from followupd.errors import ConfigError
from followupd.sources.caldav import conventions, known_calendars, meetings, read_back
from followupd.sources.caldav.calendar_access import (
    CalendarAccess,
    LibraryCalendar,
    PlainCalendar,
    calendar_home,
    listed_calendars,
)
from followupd.sources.caldav.change_set import ETags
from followupd.sources.caldav.known_calendars import Known
from followupd.sources.files.importer import Located, apply, check_references
from followupd.sources.files.records import MissionRecord
from followupd.sources.ical.happenings import Happening, UnreadableObject
from followupd.sources.ical.read import read_object
from followupd.sources.ical.remote_control import items_seen
from followupd.store import live_items
from followupd.store.chunks import chunked
from followupd.store.db import Store
from followupd.store.models import CalendarObject, SyncState, Touchpoint

log = logging.getLogger("followupd.sources.caldav")

FETCH_CHUNK = 100
OS_ERROR = re.compile(r"\[Errno -?\d+\] ([^'\"()]+)")  # "[Errno 111] Connection refused"
SOURCE = "caldav:"
UID_LENGTH, KEY_LENGTH = 1000, 120  # the columns of calendar_objects
# what reading an object may change of its row (`series`, deferred, it always sets)
WRITTEN = ("etag", "uid", "kind", "mission_key", "derived", "problem", "updated_at", "series",
           "series_zone", "expanded_until")  # fmt: skip


@dataclass
class CalendarReport:
    name: str
    mode: str  # incremental | full | etag comparison
    fetched: int = 0
    deleted: int = 0


@dataclass
class SyncReport:
    calendars: list[CalendarReport] = field(default_factory=list)
    missions_created: int = 0
    missions_updated: int = 0
    meetings: int = 0  # touchpoints recorded from calendar meetings that ended
    # what the user did to followupd's items in the calendar
    user: read_back.ReadBack = field(default_factory=read_back.ReadBack)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # URL, reason
    notices: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # calendars not synced, and why (in notices)

    @property
    def fetched(self) -> int:
        return sum(calendar.fetched for calendar in self.calendars)

    def skip(self, url: str, reason: str) -> None:
        """An object left out: logged with its URL, and listed for `sync` to print."""
        log.info("calendar object skipped: %s: %s", url, reason)  # `sync` prints the list
        self.skipped.append((url, reason))

    def note(self, line: str) -> None:
        """Something worth saying that stops nothing: logged, and listed for `sync` to print."""
        log.info("%s", line)
        self.notices.append(line)

    def mark(self) -> ReportMark:
        """Where the report stands, to `undo_to` should what follows be undone."""
        counts = (self.missions_created, self.missions_updated)
        return ReportMark(counts, self.user.mark, len(self.skipped), len(self.notices))

    def undo_to(self, mark: ReportMark) -> None:
        """Forget what was reported since `mark` (objects whose reading was undone)."""
        self.missions_created, self.missions_updated = mark.missions
        self.user.undo_to(mark.user)
        del self.skipped[mark.skipped :]
        del self.notices[mark.notices :]

    def fail(self, calendar: str, reason: str) -> None:
        """A calendar not synced (its token kept, nothing taken as deleted): tried next time."""
        line = f"calendar {calendar} not synced: {reason}; tried again next time"
        self.failed.append(line)
        self.notices.append(line)


@dataclass(frozen=True)
class ReportMark:
    missions: tuple[int, int]  # created, updated
    user: tuple[int, int, int, int]  # ReadBack.mark
    skipped: int
    notices: int


@dataclass(frozen=True)
class PendingMission:
    """A mission event read, its record checked and stored with the others of its chunk."""

    row: CalendarObject
    event: Happening
    record: MissionRecord | None
    key: Any  # as written, for the row of an invalid one
    problems: list[str]


@dataclass(frozen=True)
class Seen:
    """A changed object as fetched, and its row in ``calendar_objects``."""

    row: CalendarObject
    etag: str | None
    data: bytes


class CalendarSync:
    """One sync of every configured calendar into the store, at `at`."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        *,
        environ: Mapping[str, str] | None = None,
        progress: Callable[[str, int, int], None] | None = None,
    ) -> None:
        if not has_calendars(settings):
            raise ValueError("no [caldav] section to sync from")
        self.store = store
        self.settings = settings
        self.sources = calendar_sources(settings)
        self.url = self.sources[0][0].url  # the server being talked to, for errors
        self.environ = environ
        # told (calendar, objects fetched so far, objects to fetch) as a sync goes
        self.progress = progress or (lambda _calendar, _done, _total: None)

    def run(self, at: datetime) -> SyncReport:
        """Sync each calendar; one that fails is reported and the others go on."""
        report = SyncReport()
        read: set[str] = set()  # the URLs of the calendars configured and found
        for account, wanted in self.sources:
            self.url = account.url
            failed = len(report.failed)
            found: dict[str, str | None] | None = None  # URL by name, if looked up by the library
            try:
                with Connections(account, self.environ) as connections:
                    calendars = self._known(connections, wanted)
                    if calendars is None:
                        found = {}
                        calendars = self._found_plainly(connections, wanted, found)
                    if calendars is None:
                        found = {}
                        calendars = self._calendars(connections, wanted, report, found)
                    for source, calendar in calendars:
                        read.add(calendar.url)
                        self._sync_one(source, calendar, at, report)
            except ConfigError:
                raise
            except Exception as error:  # the account as a whole: unreachable, login refused…
                log.debug("CalDAV %s failed", account.url, exc_info=True)
                for source in wanted:
                    report.fail(f"{source.name!r} ({account.url})", _reason(error))
            if len(report.failed) > failed or found is not None:
                known = None if len(report.failed) > failed else Known.of(found or {})
                with self.store.session() as session:
                    if known is None:  # looked up through the library next time
                        known_calendars.forget(session, account)
                    else:
                        known_calendars.remember(session, account, known, at)
        if not report.failed:  # every calendar known: what is stored of others is no more read
            self._forget_calendars_but(read)
        self._record_meetings(at, report)
        return report

    def _known(
        self, connections: Connections, wanted: list[SyncedCalendar]
    ) -> list[tuple[SyncedCalendar, CalendarAccess]] | None:
        """The calendars of an account asked by plain requests, when that can be; None if not.

        It can when the last sync found each of them (followupd.sources.caldav.known_calendars),
        each has a token of the server's, and a listing of their collection
        finds each where it was, the only one of its name (and a write
        calendar not made yet still not there). Nothing is written before
        that is known.
        """
        with self.store.session() as session:
            known = known_calendars.recall(session, connections.account)
            if known is None or any(source.name not in known.calendars for source in wanted):
                return None
            urls = {source.name: known.calendars[source.name] for source in wanted}
            states = [SOURCE + url for url in urls.values() if url]
            query = select(SyncState.source, SyncState.token).where(SyncState.source.in_(states))
            tokens = dict(session.execute(query).all())
        if any(not tokens.get(state) or str(tokens[state]).startswith("fake-") for state in states):
            return None
        try:
            dav = connections.plain()
            if not dav.reaches(known.home):
                raise NotPlain(f"{known.home} is on another server")
            listed = listed_calendars(dav, known.home)
            found: dict[str, tuple[SyncedCalendar, CalendarAccess]] = {}
            for source in wanted:
                url = urls[source.name]
                if is_address(source.name):
                    if url is None or url not in listed:
                        raise NotPlain(f"calendar {source.name!r} is not listed")
                else:
                    answering = [place for place, name in listed.items() if name == source.name]
                    if answering != ([url] if url else []):
                        raise NotPlain(f"calendar {source.name!r} is not where it was, alone")
                if url is not None:
                    calendar = PlainCalendar(dav, url, partial(connections.calendar, url))
                    _merge(found, source, calendar)
        except NotPlain as why:
            log.debug("%s: calendars looked up through the library: %s", self.url, why)
            return None
        return list(found.values())

    def _found_plainly(
        self, connections: Connections, wanted: list[SyncedCalendar], urls: dict[str, str | None]
    ) -> list[tuple[SyncedCalendar, CalendarAccess]] | None:
        """The calendars of an account looked up by plain requests, as the library would find
        them (`urls` told the URL of each, by name); None when that cannot be.

        The account's principal, its calendar home and the calendars there
        (followupd.sources.caldav.calendar_access.calendar_home): each calendar
        named by its display name, found once there; a write calendar not
        made yet not there. Anything else (a calendar named by its path, a
        name two calendars answer to, one not found) is left to the library,
        which says what it says.
        """
        if any(is_address(source.name) for source in wanted):
            return None
        found: dict[str, tuple[SyncedCalendar, CalendarAccess]] = {}
        try:
            dav = connections.plain()
            home = calendar_home(dav, canonical(connections.account.url))
            if not dav.reaches(home):
                raise NotPlain(f"{home} is on another server")
            listed = listed_calendars(dav, home)
            if not listed:  # the library would look for calendars elsewhere
                raise NotPlain(f"no calendar in {home}")
            for source in wanted:
                answering = [place for place, name in listed.items() if name == source.name]
                if len(answering) > 1 or any(place.startswith("?") for place in answering):
                    raise NotPlain(f"calendar {source.name!r} is not alone, or not plain")
                if not answering and not source.writes:
                    raise NotPlain(f"calendar {source.name!r} is not listed")
                url = answering[0] if answering else None
                if url is not None and not urlsplit(url).path.strip("/"):
                    raise NotPlain(f"calendar {source.name!r} at the server's root")
                urls[source.name] = url
                if url is not None:
                    calendar = PlainCalendar(dav, url, partial(connections.calendar, url))
                    _merge(found, source, calendar)
        except NotPlain as why:
            log.debug("%s: calendars looked up through the library: %s", self.url, why)
            urls.clear()
            return None
        return list(found.values())

    def _forget_calendars_but(self, read: set[str]) -> None:
        """The objects of calendars no longer read (taken out of the config, or deleted).

        Their meetings ahead no longer count; the touchpoints of meetings held
        stay, as history. Read again one day, such a calendar is synced anew.
        """
        with self.store.session() as session:
            known_calendars.forget_all_but(session, [account for account, _ in self.sources])
            gone = select(CalendarObject).where(CalendarObject.calendar.not_in(sorted(read)))
            calendars: set[str] = set()
            for row in session.scalars(gone):
                calendars.add(row.calendar)
                meetings.forget(session, row)
                session.delete(row)
            if calendars:
                log.info("no longer read, forgotten: %s", ", ".join(sorted(calendars)))
                sources = [SOURCE + calendar for calendar in calendars]
                session.execute(delete(SyncState).where(SyncState.source.in_(sources)))

    def _sync_one(
        self,
        source: SyncedCalendar,
        calendar: CalendarAccess,
        at: datetime,
        report: SyncReport,
    ) -> None:
        """One calendar; whatever it fails on stops neither the others nor the next sync.

        Its token is kept (what changed is listed again next time) and nothing
        is taken as deleted.
        """
        try:
            self._sync_calendar(source, calendar, at, report)
        except Exception as error:  # caldav raises many kinds; each means "not this time"
            log.debug("calendar %s failed", calendar.url, exc_info=True)
            report.fail(f"{source.name!r} ({calendar.url})", _reason(error))

    def _calendars(
        self,
        connections: Connections,
        wanted: list[SyncedCalendar],
        report: SyncReport,
        urls: dict[str, str | None],
    ) -> list[tuple[SyncedCalendar, CalendarAccess]]:
        """Each calendar to sync that the server has, looked up through the library; `urls`
        told the URL of each, by name.

        A name two calendars answer to is that calendar's failure; a calendar
        named twice (by its name, and by its path) is synced once. What changed
        in each is then asked by plain requests where they reach it
        (`Connections.found`): a first sync lists and fetches every object.
        """
        client = connections.library()
        listed = client.principal().calendars()
        found: dict[str, tuple[SyncedCalendar, CalendarAccess]] = {}
        for source in wanted:
            try:
                calendar = find_calendar(client, listed, source.name)
            except AmbiguousCalendar as error:
                report.fail(repr(source.name), str(error))
                continue
            except Exception as error:  # a path the server refuses to show, say
                report.fail(repr(source.name), _reason(error))
                continue
            if calendar is None:
                if source.writes:  # the write calendar appears with the first task written
                    urls[source.name] = None
                else:
                    report.note(f"calendar {source.name!r} not found on {self.url}")
                continue
            access = connections.found(calendar)
            urls[source.name] = access.url
            _merge(found, source, access)
        return list(found.values())

    # -- what changed ------------------------------------------------------------------
    def _sync_calendar(
        self,
        source: SyncedCalendar,
        calendar: CalendarAccess,
        at: datetime,
        report: SyncReport,
    ) -> None:
        name, url = source.name, calendar.url
        with self.store.session() as session:
            token = session.scalar(select(SyncState.token).where(SyncState.source == SOURCE + url))
            seen = select(CalendarObject.href, CalendarObject.etag).where(
                CalendarObject.calendar == url
            )
            known: ETags = dict(session.execute(seen).all())
            # followupd's own items: those no sync has read yet are fetched whether listed or
            # not (a server may leave out one made and deleted since the last sync): one gone
            # was deleted by the user
            ours = _written_in(session, url) if source.writes else {}
        changes = calendar.changes(token, known)
        unread = {href for href in ours if href not in known} - changes.deleted
        stats = CalendarReport(name, changes.mode, deleted=len(changes.deleted))
        report.calendars.append(stats)
        with self.store.session() as session:
            self._forget(session, url, changes.deleted, report, name, at, ours)
        wanted = sorted(set(changes.changed) | unread)
        missed: set[str] = set()
        got: set[str] = set()
        self.progress(name, 0, len(wanted))
        for chunk in chunked(wanted, FETCH_CHUNK):
            fetched = calendar.fetch(chunk, report.skip)
            missed |= fetched.missed
            got |= set(fetched.data)
            self._apply_chunk(url, fetched.data, changes.changed, source, at, report)
            stats.fetched += len(fetched.data)
            self.progress(name, stats.fetched, len(wanted))
        gone = unread - got - missed
        if gone:
            stats.deleted += len(gone)
            with self.store.session() as session:
                self._forget(session, url, gone, report, name, at, ours)
        if missed:  # listed again next time, from the token of this sync's start
            objects = f"{len(missed)} object{'s' if len(missed) > 1 else ''}"
            report.notices.append(
                f"calendar {name!r}: {objects} could not be fetched; tried again next sync"
            )
            return
        with self.store.session() as session:
            self._remember_token(session, url, changes.token, at)

    def _apply_chunk(
        self,
        calendar: str,
        fetched: Mapping[str, bytes],
        etags: Mapping[str, str | None],
        source: SyncedCalendar,
        at: datetime,
        report: SyncReport,
    ) -> None:
        """Read the objects of a chunk in one transaction, with a few statements for them all.

        Their rows are made, their stored occurrences deleted and their
        missions stored together, and nothing is flushed until the end. Should
        anything fail, the whole chunk is undone and read again object by
        object, each in a savepoint (`_apply_alone`), so that only what fails
        is skipped. The write calendar is always read object by object: two
        copies of one of followupd's items must see each other's effect.
        """
        mark = report.mark()
        if not source.writes:
            try:
                with self.store.session() as session, session.no_autoflush:
                    rows = _objects(session, calendar, list(fetched))
                    batch = meetings.Batch.start(session, [row.id for row in rows.values()])
                    rows |= _created(session, calendar, [h for h in fetched if h not in rows], at)
                    pending: list[PendingMission] = []
                    for href, data in fetched.items():
                        seen = Seen(rows[href], etags.get(href), data)
                        self._apply(session, seen, source, at, report, pending, batch)
                    batch.finish(session)
                    missions = self._missions(session, pending, report)
                    _write(session, list(rows.values()))
                    self._store(session, missions, report)
                return
            except Exception:  # an object nobody foresaw, or two telling one mission
                log.debug(
                    "chunk of %d objects failed: read one by one", len(fetched), exc_info=True
                )
                report.undo_to(mark)
        with self.store.session() as session, session.no_autoflush:
            rows = _objects(session, calendar, list(fetched))
            for href, data in fetched.items():
                seen_now = (href, etags.get(href), data)
                self._apply_alone(session, calendar, rows.get(href), seen_now, source, at, report)

    def _apply_alone(
        self,
        session: Session,
        calendar: str,
        row: CalendarObject | None,
        fetched: tuple[str, str | None, bytes],
        source: SyncedCalendar,
        at: datetime,
        report: SyncReport,
    ) -> None:
        """`_apply` one object in a savepoint: what fails in it is undone, and it is skipped.

        Its ETag is stored with the reason, so it is not fetched again until it changes.
        """
        href, etag, data = fetched
        counts = (report.missions_created, report.missions_updated)
        did = report.user.mark
        try:
            with session.begin_nested():
                if row is None:
                    row = CalendarObject(
                        calendar=calendar, href=href, kind=CalendarObjectKind.OTHER
                    )
                    session.add(row)
                pending: list[PendingMission] = []
                self._apply(session, Seen(row, etag, data), source, at, report, pending)
                self._store(session, self._missions(session, pending, report), report)
        except Exception as error:  # a bug or an object nobody foresaw: this object's alone
            log.debug("calendar object %s failed", href, exc_info=True)
            report.missions_created, report.missions_updated = counts
            report.user.undo_to(did)
            reason = f"not read: {type(error).__name__}: {error}"
            report.skip(href, reason)
            with session.begin_nested():
                kept = _objects(session, calendar, [href]).get(href)
                if kept is None:
                    kept = CalendarObject(calendar=calendar, href=href)
                    session.add(kept)
                kept.kind, kept.problem = CalendarObjectKind.SKIPPED, reason
                kept.etag, kept.updated_at = etag, at

    # -- what it means -----------------------------------------------------------------
    def _apply(
        self,
        session: Session,
        seen: Seen,
        source: SyncedCalendar,
        at: datetime,
        report: SyncReport,
        pending: list[PendingMission],
        batch: meetings.Batch | None = None,
    ) -> None:
        """Read one changed object and record what it means (its meetings count as they end).

        Its mission event goes to `pending`, for `_missions`; read in a
        `batch`, its meetings are stored with the batch's.
        """
        row = seen.row
        previous = set((row.derived or "").split())
        row.etag, row.updated_at, row.problem, row.derived = seen.etag, at, None, None
        zone = zone_named(source.timezone)
        window = meetings.window(at)
        try:
            read = read_object(seen.data, zone, window)
        except UnreadableObject as error:
            row.kind, row.problem = CalendarObjectKind.SKIPPED, str(error)
            report.skip(row.href, str(error))
            meetings.forget(session, row, batch)
            self._drop_touchpoints(session, previous)
            return
        for note in read.notes:
            log.info("%s: %s", row.href, note)
        if read.unused:  # a journal, free/busy time…: ignored, not skipped
            log.debug("%s ignored: %s", row.href, read.unused)
            row.kind, row.uid = CalendarObjectKind.OTHER, None
            meetings.forget(session, row, batch)
            self._drop_touchpoints(session, previous)
            return
        uid = (read.events or read.tasks)[0].uid if (read.events or read.tasks) else None
        row.uid = uid[:UID_LENGTH] if uid else None  # a UID is for people here: kept short
        derived: set[str] = set()
        if source.writes:
            report.user += read_back.read_back(session, items_seen(seen.data, zone), at)
        missions = [event for event in read.events if conventions.is_mission_event(event)]
        if missions:
            row.kind = CalendarObjectKind.MISSION
            pending.append(self._mission(row, missions[0], source))
            meetings.forget(session, row, batch)
        else:
            row.kind = CalendarObjectKind.TASK if read.tasks else CalendarObjectKind.MEETING
            # counted once ended, by _record_meetings and each evaluation
            meetings.store_occurrences(session, row, read, seen.data, zone, batch)
        derived |= meetings.history(session, previous - derived, window[0])
        row.derived = "\n".join(sorted(derived)) or None
        self._drop_touchpoints(session, previous - derived)

    def _record_meetings(self, at: datetime, report: SyncReport) -> None:
        """Touchpoints for the meetings that ended, once every mission event of the sync is in."""
        with self.store.session() as session:
            report.meetings += meetings.record_held(session, at)

    def _mission(
        self, row: CalendarObject, event: Happening, source: SyncedCalendar
    ) -> PendingMission:
        """The mission an event describes, checked as far as the event alone tells.

        In an owner's calendar the mission is that owner's, unless the event
        says ``owner: KEY``.
        """
        described = conventions.mission_event(event)
        problems = list(described.problems)
        if source.owner is not None:
            described.fields.setdefault("owner", source.owner)
        record: MissionRecord | None = None
        if not problems:
            context = {"zone": zone_named(source.timezone)}
            try:
                record = MissionRecord.model_validate(described.fields, context=context)
            except ValidationError as error:
                for detail in error.errors():
                    where = ".".join(str(part) for part in detail["loc"]) or "event"
                    problems.append(f"{where}: {detail['msg']}")
        return PendingMission(row, event, record, described.fields.get("key"), problems)

    def _missions(
        self, session: Session, pending: list[PendingMission], report: SyncReport
    ) -> list[Located]:
        """Check the missions of `pending` together: those to store, each row told its key
        and problem.

        Their references are checked in a few queries for them all; `_store` stores them.
        """
        if not pending:
            return []
        located = {
            Path(mission.row.href): Located(
                mission.record, Path(mission.row.href), "missions", 0, {}
            )
            for mission in pending
            if mission.record is not None and not mission.problems
        }
        owners = [owner.key for owner in self.settings.owners]
        found: dict[Path, list[str]] = {}
        for problem in check_references(session, list(located.values()), owners):
            found.setdefault(problem.file, []).append(problem.message)
        valid: list[Located] = []
        for mission in pending:
            row, path = mission.row, Path(mission.row.href)
            problems = mission.problems + found.get(path, [])
            if problems or mission.record is None:
                reason = f"mission event {mission.event.summary!r}: " + "; ".join(problems)
                report.skip(row.href, reason)
                key = mission.key  # an invalid key, as written
                row.mission_key, row.problem = (str(key)[:KEY_LENGTH] if key else None), reason
            else:
                valid.append(located[path])
                row.mission_key, row.problem = mission.record.key, None
        return valid

    @staticmethod
    def _store(session: Session, missions: list[Located], report: SyncReport) -> None:
        """Create or update the missions checked by `_missions`, together."""
        if missions:
            result = apply(session, missions)
            report.missions_created += result.created["missions"]
            report.missions_updated += result.updated["missions"]

    # -- bookkeeping -------------------------------------------------------------------
    def _forget(
        self,
        session: Session,
        calendar: str,
        hrefs: Iterable[str],
        report: SyncReport,
        name: str,
        at: datetime,
        ours: Mapping[str, int],
    ) -> None:
        """Objects deleted from the calendar: drop what they made, report mission events.

        followupd's items among them (`ours`: URL -> item) are dismissed.
        """
        for chunk in chunked(sorted(hrefs)):
            rows = session.scalars(
                select(CalendarObject)
                .where(CalendarObject.calendar == calendar, CalendarObject.href.in_(chunk))
                .order_by(CalendarObject.id)
                .with_for_update()
            ).all()
            items = live_items.by_uid(session, [row.uid for row in rows if row.uid])
            gone = {item.id: item for item in items.values()}
            by_url = (ours[href] for href in chunk if href in ours)
            gone |= {item.id: item for item in live_items.by_id(session, by_url)}
            report.user.dismissed += read_back.deleted(session, gone.values(), at)
            for row in rows:
                if row.kind == CalendarObjectKind.MISSION and row.mission_key:
                    report.notices.append(
                        f"the mission event of {row.mission_key!r} was deleted from {name!r}; "
                        f"the mission is kept (set its status to closed if it is over)"
                    )
                self._drop_touchpoints(session, set((row.derived or "").split()))
                session.delete(row)

    @staticmethod
    def _drop_touchpoints(session: Session, keys: set[str]) -> None:
        for chunk in chunked(sorted(keys)):
            session.execute(delete(Touchpoint).where(Touchpoint.key.in_(chunk)))

    @staticmethod
    def _remember_token(session: Session, calendar: str, token: str | None, at: datetime) -> None:
        source = SOURCE + calendar
        row = session.scalar(select(SyncState).where(SyncState.source == source))
        if row is None:
            session.add(SyncState(source=source, token=token, updated_at=at))
        else:
            row.token, row.updated_at = token, at


def _written_in(session: Session, calendar: str) -> dict[str, int]:
    """followupd's open items in `calendar` (its canonical URL): URL -> item."""
    inside = calendar if calendar.endswith("/") else calendar + "/"
    found = {canonical(href): item_id for item_id, href in live_items.written(session)}
    return {href: item_id for href, item_id in found.items() if href.startswith(inside)}


def _created(
    session: Session, calendar: str, hrefs: list[str], at: datetime
) -> dict[str, CalendarObject]:
    """Rows for objects not stored yet, inserted together: each is then read into its own."""
    if not hrefs:
        return {}
    made = {"calendar": calendar, "kind": CalendarObjectKind.OTHER, "updated_at": at}
    for chunk in chunked(hrefs):
        session.execute(insert(CalendarObject), [{**made, "href": href} for href in chunk])
    return _objects(session, calendar, hrefs)


def _write(session: Session, rows: list[CalendarObject]) -> None:
    """Write these rows as they are now, in one statement for them all, and let go of them.

    The ORM would send an UPDATE for each run of rows (in order of id)
    changed in the same columns, which differ by kind of object.
    """
    values = [
        {"id": row.id, **{column: getattr(row, column) for column in WRITTEN}} for row in rows
    ]
    for chunk in chunked(values):
        session.execute(update(CalendarObject), list(chunk))
    for row in rows:
        session.expunge(row)  # written: nothing left to flush


def _objects(session: Session, calendar: str, hrefs: list[str]) -> dict[str, CalendarObject]:
    """The stored rows of these objects of `calendar`, by URL, in one query a chunk."""
    found: dict[str, CalendarObject] = {}
    for chunk in chunked(sorted(hrefs)):
        query = select(CalendarObject).where(
            CalendarObject.calendar == calendar, CalendarObject.href.in_(chunk)
        )
        # held to the end of the transaction, as followupd.sources.caldav.meetings holds them
        locked = query.order_by(CalendarObject.id).with_for_update()  # in one order: no deadlock
        found.update({row.href: row for row in session.scalars(locked)})
    return found


def _merge(
    found: dict[str, tuple[SyncedCalendar, CalendarAccess]],
    source: SyncedCalendar,
    calendar: CalendarAccess,
) -> None:
    """`calendar` added to `found` (by URL); one named twice is read and written as one."""
    if calendar.url in found:
        known, _ = found[calendar.url]
        source = replace(known, writes=known.writes or source.writes,
                         owner=known.owner or source.owner)  # fmt: skip
    found[calendar.url] = (source, calendar)


class Connections:
    """An account's connections, each opened when first needed: plain, and the library's."""

    def __init__(self, account: CaldavAccount, environ: Mapping[str, str] | None) -> None:
        self.account, self.environ = account, environ
        self._plain: PlainDav | None = None
        self._client: Any = None

    def __enter__(self) -> Connections:
        return self

    def __exit__(self, *_: object) -> None:
        if self._plain is not None:
            self._plain.close()
        if self._client is not None:
            self._client.__exit__(None, None, None)

    def plain(self) -> PlainDav:
        """Plain requests, as the account's user; NotPlain when they cannot log in as the
        library would (no username or password, a proxy to go through)."""
        if self._plain is None:
            account = self.account
            password, username = account.password("caldav").reveal(self.environ), account.username
            if not username or password is None:
                raise NotPlain("no username and password to log in with Basic")
            self._plain = PlainDav(
                account.url, username, password, account.ca_file, TIMEOUT_SECONDS
            )
        return self._plain

    def library(self) -> Any:
        """The caldav library's client (imported then)."""
        if self._client is None:
            self._client = dav_client(self.account, self.environ).__enter__()
        return self._client

    def found(self, calendar: Any) -> CalendarAccess:
        """A calendar the library found, asked by plain requests when they can reach it
        (the library's calendar for what is not plain); else through the library."""
        library = LibraryCalendar(calendar)
        try:
            dav = self.plain()
        except NotPlain:
            return library
        if not dav.reaches(library.url):
            return library
        return PlainCalendar(dav, library.url, lambda: library)

    def calendar(self, url: str) -> LibraryCalendar:
        """The calendar at `url`, asked through the library."""
        return LibraryCalendar(self.library().calendar(url=url))


def _reason(error: BaseException) -> str:
    """Why a calendar or a server failed, in a line (the traceback is logged at debug level)."""
    from caldav.lib import error as dav_error  # the library's errors come with the library

    if isinstance(error, dav_error.AuthorizationError):
        return f"access refused ({error.reason})"
    if isinstance(error, dav_error.DAVError):
        return str(error)
    if isinstance(error, TimeoutError):  # the socket's own words are only "timed out"
        return f"no answer within {TIMEOUT_SECONDS:g} s (timed out)"
    text = str(error)
    # the HTTP client's connection errors nest three layers deep; what matters is the errno
    refused = OS_ERROR.search(text)
    if refused:
        return f"cannot connect: {refused.group(1)}"
    return f"{type(error).__name__}: {text}"


def sync_calendars(
    store: Store,
    settings: Settings,
    at: datetime,
    progress: Callable[[str, int, int], None] | None = None,
) -> SyncReport:
    """Sync every configured calendar; those not synced are listed in the report's `failed`."""
    return CalendarSync(store, settings, progress=progress).run(at)
