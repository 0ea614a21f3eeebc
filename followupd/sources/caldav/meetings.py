"""Meetings in the calendar count as they pass, from what is stored.

People put a meeting in their calendar ahead of time, and the sync reads an
object again only when it changes. So when an object is read, each of its
occurrences that is a meeting, from LOOKBACK before to AHEAD after the sync,
is stored (`store_occurrences`); each becomes `meeting` touchpoints once it
has ended (`record_held`), which the end of every sync and the start of
every evaluation (`tick`, the daemon's pass, `plan`) run: a rule sees a
meeting that took place without waiting for a sync, or for the object to
change. A meeting series keeps its object's text: when less than
EXTEND_BEFORE of its occurrences are stored ahead, the next ones are read
from that text, so a weekly meeting with no end counts for years without a
fetch. A change or delete of the object replaces or deletes its occurrences
(the caller drops the touchpoints it made).

A meeting is an occurrence that is no mission event, is not cancelled
(STATUS:CANCELLED; an EXDATE'd one is no occurrence at all), and has
attendees or names a mission in brackets in its title (``Point
[acme-audit]``). Whom it is with is looked up when it has ended, so a
meeting with a contact imported later, or about a mission whose event the
same sync reads after it, still counts; one that finds no mission is looked
up again at each pass for WAIT_FOR_PARTIES, then dropped.

Each step is one transaction holding the rows of the objects it works on
(FOR UPDATE on PostgreSQL, skipping those a sync holds; SQLite has a single
writer). A touchpoint's key says what it is, so a step done twice records it
once, and a kill at any instant leaves the occurrence or its touchpoint.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import delete, func, insert, select
from sqlalchemy.engine import Row
from sqlalchemy.orm import Session, undefer

from followupd.domain.identity import touchpoint_key
from followupd.domain.states import MissionStatus, TouchpointKind
from followupd.sources.caldav import conventions
from followupd.sources.ical.happenings import Happening, ReadObject, UnreadableObject
from followupd.store.chunks import chunked
from followupd.store.models import CalendarMeeting, CalendarObject, Contact, Mission, Touchpoint
from followupd.store.upserts import insert_of

log = logging.getLogger("followupd.sources.meetings")

LOOKBACK = timedelta(days=90)  # meetings read this far back when an object is read
AHEAD = timedelta(days=62)  # occurrences stored this far ahead
EXTEND_BEFORE = timedelta(days=31)  # a series is read again when less is stored ahead
WAIT_FOR_PARTIES = LOOKBACK  # how long a meeting with no known mission is looked at again
MAX_SERIES_BYTES = 1_000_000  # a larger object (attachments) is not kept: no occurrence past AHEAD
MAX_READS = 20  # reads of a series in one pass (each gives at most 1,000 occurrences)
NOTE_LENGTH = 500


def is_meeting(event: Happening) -> bool:
    """An occurrence that counts as a meeting once it has ended."""
    if event.cancelled or conventions.is_mission_event(event):
        return False
    return bool(event.attendees or conventions.bracketed_keys(event))


def window(at: datetime) -> tuple[datetime, datetime]:
    """The span whose occurrences are stored when an object is read at `at`."""
    return at - LOOKBACK, at + AHEAD


def store_occurrences(
    session: Session,
    row: CalendarObject,
    read: ReadObject,
    data: bytes,
    zone: ZoneInfo,
    batch: Batch | None = None,
) -> None:
    """The meetings of an object just read replace those stored; a series keeps its text.

    Read with others in a `batch`, they are inserted with theirs.
    """
    forget(session, row, batch)
    if row.id is None:
        session.flush()
    until = read.complete_until
    occurrences = [o for o in read.occurrences if until is None or o.start < until]
    _add(session, row.id, occurrences, batch)
    later = until is not None and any(
        (event.recurring or event.start >= until) for event in read.events if is_meeting(event)
    )
    if not later:
        return
    if len(data) > MAX_SERIES_BYTES:
        log.info("%s: a meeting series of %d bytes: its occurrences are stored up to %s only",
                 row.href, len(data), until)  # fmt: skip
        return
    row.series, row.series_zone, row.expanded_until = data, zone.key, until


def forget(session: Session, row: CalendarObject, batch: Batch | None = None) -> None:
    """An object's stored occurrences and text go (it changed, went, or holds no meeting).

    Those of an object read in a `batch` went when the batch started.
    """
    if row.id is not None and batch is None:
        session.execute(delete(CalendarMeeting).where(CalendarMeeting.object_id == row.id))
    row.series, row.series_zone, row.expanded_until = None, None, None


@dataclass
class Batch:
    """Objects read together, in a few statements: their stored occurrences deleted at once
    (`start`), and the new ones inserted at once (`finish`)."""

    rows: list[dict[str, Any]] = field(default_factory=list)  # occurrences to insert

    @classmethod
    def start(cls, session: Session, object_ids: Sequence[int]) -> Batch:
        """A batch of these stored objects, and any new ones: their occurrences go."""
        for chunk in chunked(sorted(object_ids)):
            session.execute(delete(CalendarMeeting).where(CalendarMeeting.object_id.in_(chunk)))
        return cls()

    def finish(self, session: Session) -> None:
        for chunk in chunked(self.rows):
            session.execute(insert(CalendarMeeting), list(chunk))
        self.rows.clear()


def history(session: Session, keys: set[str], before: datetime) -> set[str]:
    """The meeting touchpoints among `keys` older than `before`: kept when their object changes.

    An object read again gives its meetings back from LOOKBACK only; those
    before are history that an edit of the series (its title, say) must not
    erase. Deleting the object takes them too.
    """
    kept: set[str] = set()
    for chunk in chunked(sorted(keys)):
        kept.update(
            session.scalars(
                select(Touchpoint.key).where(
                    Touchpoint.key.in_(chunk),
                    Touchpoint.kind == TouchpointKind.MEETING,
                    Touchpoint.at < before,
                )
            )
        )
    return kept


def record_held(session: Session, at: datetime) -> int:
    """Store the next occurrences of series running out, and record those ended by `at`.

    Returns how many touchpoints are new.
    """
    _extend_series(session, at)
    return _record_ended(session, at)


# -- storing occurrences ------------------------------------------------------------------


def _add(
    session: Session, object_id: int, occurrences: Iterable[Happening], batch: Batch | None = None
) -> None:
    rows: dict[tuple[Any, ...], dict[str, Any]] = {}
    for event in occurrences:
        if not is_meeting(event):
            continue
        ends_at = event.end if event.end > event.start else event.start
        values = {
            "object_id": object_id,
            "starts_at": event.start,
            "ends_at": ends_at,
            "summary": event.summary[:NOTE_LENGTH],
            "attendees": "\n".join(sorted(event.attendees)),
            "named": "\n".join(sorted(conventions.bracketed_keys(event))),
        }
        rows.setdefault(tuple(values.values()), values)  # an RDATE repeating DTSTART, say
    if batch is not None:
        batch.rows += rows.values()
        return
    for chunk in chunked(list(rows.values())):
        session.execute(insert(CalendarMeeting), list(chunk))


def _extend_series(session: Session, at: datetime) -> None:
    """Occurrences of the series whose stored ones run out before EXTEND_BEFORE, up to AHEAD."""
    running_out = CalendarObject.expanded_until < at + EXTEND_BEFORE
    ids = list(session.scalars(select(CalendarObject.id).where(running_out)))
    for chunk in chunked(ids):
        rows = session.scalars(
            select(CalendarObject)
            .options(undefer(CalendarObject.series))
            .where(CalendarObject.id.in_(chunk), running_out)
            .order_by(CalendarObject.id)
            .with_for_update(skip_locked=True)
        )
        for row in rows:
            _extend(session, row, at + AHEAD)


def _extend(session: Session, row: CalendarObject, until: datetime) -> None:
    start = row.expanded_until
    if row.series is None or row.series_zone is None or start is None:
        return
    from followupd.sources.ical.read import read_object  # the reader (icalendar) when needed

    zone = ZoneInfo(row.series_zone)
    for _ in range(MAX_READS):
        if start >= until:
            break
        try:
            read = read_object(row.series, zone, (start, until))
        except UnreadableObject as error:  # read before: only a library update would do this
            log.warning("%s: its meetings are no longer read ahead: %s", row.href, error)
            forget(session, row)
            return
        done = read.complete_until or until
        _add(session, row.id, [o for o in read.occurrences if start <= o.start < done])
        if done <= start:  # no step forward: tried again next pass
            break
        start = done
    row.expanded_until = start


# -- counting those that ended ------------------------------------------------------------


@dataclass(frozen=True)
class _Party:
    mission_id: int
    mission: str
    contact_id: int | None
    contact: str | None


def _record_ended(session: Session, at: datetime) -> int:
    ended = CalendarMeeting.ends_at <= at
    objects = sorted(set(session.scalars(select(CalendarMeeting.object_id).where(ended))))
    created = 0
    for chunk in chunked(objects):
        rows = {
            row.id: row
            for row in session.scalars(
                select(CalendarObject)
                .where(CalendarObject.id.in_(chunk))
                .order_by(CalendarObject.id)
                .with_for_update(skip_locked=True)
            )
        }
        if not rows:
            continue
        occurrences = list(
            session.scalars(
                select(CalendarMeeting).where(CalendarMeeting.object_id.in_(rows), ended)
            )
        )
        parties = _parties(session, occurrences)
        touchpoints: dict[str, dict[str, Any]] = {}  # by key: one meeting in two objects
        done: list[int] = []
        for occurrence in occurrences:
            made = [_touchpoint(occurrence, party) for party in parties[occurrence.id]]
            touchpoints.update((values["key"], values) for values in made)
            if made:  # its object lists them, so that a change or delete takes them
                row = rows[occurrence.object_id]
                derived = set((row.derived or "").split()) | {values["key"] for values in made}
                row.derived = "\n".join(sorted(derived))
            if made or occurrence.ends_at <= at - WAIT_FOR_PARTIES:
                done.append(occurrence.id)
        created += _insert_touchpoints(session, list(touchpoints.values()))
        for ids in chunked(done):
            session.execute(delete(CalendarMeeting).where(CalendarMeeting.id.in_(ids)))
    return created


def _touchpoint(occurrence: CalendarMeeting, party: _Party) -> dict[str, Any]:
    """The touchpoint row of a meeting with a party, keyed as an import would key it."""
    return {
        "key": touchpoint_key(
            party.mission, TouchpointKind.MEETING, occurrence.starts_at, party.contact
        ),
        "mission_id": party.mission_id,
        "contact_id": party.contact_id,
        "kind": TouchpointKind.MEETING,
        "at": occurrence.starts_at,
        "note": occurrence.summary or None,
    }


def _insert_touchpoints(session: Session, made: Sequence[dict[str, Any]]) -> int:
    """Insert the touchpoints not there yet (one made by an import, a second calendar…)."""
    if not made:
        return 0
    upsert = insert_of(session)
    statement = (
        upsert(Touchpoint).on_conflict_do_nothing(index_elements=["key"]).returning(Touchpoint.key)
    )
    created = 0
    # NULLs sent as such: the ORM leaves a None out, and one statement per run of rows
    # with the same columns would go, rows with a contact and without alternating
    nulls = {"render_nulls": True}
    for chunk in chunked(made):
        inserted = session.execute(statement, list(chunk), execution_options=nulls)
        created += len(inserted.scalars().all())
    return created


def _parties(session: Session, occurrences: list[CalendarMeeting]) -> dict[int, list[_Party]]:
    """Whom each meeting is with: (mission, contact) pairs, looked up in a few queries.

    A mission named in brackets in the title is the one (with the attending
    contact of its client, if any); otherwise each attending contact's
    missions (those they are the main contact of, or else their client's),
    closed ones left out.
    """
    emails = sorted({email for o in occurrences for email in o.attendees.split()})
    named = sorted({key for o in occurrences for key in o.named.split()})
    contacts: dict[str, list[Row[tuple[int, str, int, str]]]] = {}
    for chunk in chunked(emails):
        query = select(Contact.id, Contact.key, Contact.client_id, func.lower(Contact.email))
        for row in session.execute(query.where(func.lower(Contact.email).in_(chunk))):
            contacts.setdefault(row[3], []).append(row)
    by_key: dict[str, Row[tuple[int, str, int]]] = {}
    for chunk in chunked(named):
        query = select(Mission.id, Mission.key, Mission.client_id).where(Mission.key.in_(chunk))
        by_key.update({row.key: row for row in session.execute(query)})
    known = sorted({c for found in contacts.values() for c in found}, key=lambda c: c.key)
    open_missions: list[
        Row[tuple[int, str, int, int | None]]
    ] = []  # of their clients (a mission's contact is its client's)
    for chunk in chunked(sorted({c.client_id for c in known})):
        query = select(Mission.id, Mission.key, Mission.client_id, Mission.contact_id)
        open_missions += session.execute(
            query.where(Mission.status != MissionStatus.CLOSED, Mission.client_id.in_(chunk))
        )
    open_missions.sort(key=lambda m: m.key)
    of_contact: dict[int | None, list[Row[tuple[int, str, int, int | None]]]] = {}
    of_client: dict[int, list[Row[tuple[int, str, int, int | None]]]] = {}
    for held in open_missions:  # in order of key, as open_missions
        of_contact.setdefault(held.contact_id, []).append(held)
        of_client.setdefault(held.client_id, []).append(held)
    found: dict[int, list[_Party]] = {}
    for occurrence in occurrences:
        there = sorted(
            {c for email in occurrence.attendees.split() for c in contacts.get(email, [])},
            key=lambda c: c.key,
        )
        parties: set[_Party] = set()
        keys = occurrence.named.split()
        if keys:
            for mission in (by_key[key] for key in keys if key in by_key):
                who = next((c for c in there if c.client_id == mission.client_id), None)
                parties.add(_Party(mission.id, mission.key, who and who.id, who and who.key))
        for contact in [] if keys else there:
            theirs = of_contact.get(contact.id) or of_client.get(contact.client_id, [])
            parties |= {_Party(m.id, m.key, contact.id, contact.key) for m in theirs}
        found[occurrence.id] = sorted(parties, key=str)
    return found
