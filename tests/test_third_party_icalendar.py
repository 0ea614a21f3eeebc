"""iCalendar objects from other projects' test suites: read one by one, then synced.

The corpus is the test data the installed packages carry, read where they
are installed (nothing is copied into this repository):

- icalendar (https://github.com/collective/icalendar, BSD-2-Clause):
  ``icalendar/tests/{calendars,events,alarms,availabilities,freebusy,journals,
  timezones,todos}/*.ics``: calendars from many apps, broken ones on purpose,
  bare components, VFREEBUSY, VJOURNAL, VAVAILABILITY;
- recurring-ical-events (https://github.com/niccokunzmann/python-recurring-ical-events,
  LGPL-3.0-or-later): ``recurring_ical_events/test/calendars/*.ics``: recurrences
  of every kind, from Google, Outlook, Thunderbird and others.

Each file goes through the reader: it gives what it holds, or is refused with
UnreadableObject and a reason; nothing else is ever raised. Then the whole
corpus sits in read calendars of each server, next to valid mission events
and a meeting, one object per UID as a server stores it (a file of several
UIDs is split, see `objects_of`; a UID taken goes into another calendar, see
`corpus_calendars`): a server may refuse some on PUT; one sync reads the
rest, names each object it skips with its URL and why, and still applies the
valid ones.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path

import pytest
from icalendar import Calendar, Component
from sqlalchemy import select

from followupd.config.load import parse_settings
from followupd.config.settings import Settings
from followupd.sources.caldav.sync import sync_calendars
from followupd.sources.ical.happenings import UnreadableObject
from followupd.sources.ical.read import read_object
from followupd.store.db import Store
from followupd.store.models import CalendarObject, Mission, Touchpoint
from tests.conftest import MINIMAL_CONFIG
from tests.davserver import PASSWORD_VARIABLE, SERVERS, USER, CalendarApp, DavServer
from tests.rulekit import ACME, PARIS, imported, paris

ICALENDAR_FOLDERS = (
    "calendars", "events", "alarms", "availabilities", "freebusy", "journals", "timezones", "todos"
)  # fmt: skip
SYNC_AT = paris(2026, 12, 10, 9)
WINDOW = (SYNC_AT - timedelta(days=90), SYNC_AT)
CALENDAR = "Corpus"  # "Corpus 1", "Corpus 2"…
PER_FILE, PER_CALENDAR = 20, 100


def _corpus() -> dict[str, Traversable]:
    """Every .ics file of both packages' test data, by a name that says where it is from."""
    found: dict[str, Traversable] = {}
    icalendar_tests = files("icalendar") / "tests"
    for folder in ICALENDAR_FOLDERS:
        for path in (icalendar_tests / folder).iterdir():
            if path.name.endswith(".ics"):
                found[f"icalendar/{folder}/{path.name}"] = path
    for path in (files("recurring_ical_events") / "test" / "calendars").iterdir():
        if path.name.endswith(".ics"):
            found[f"recurring_ical_events/{path.name}"] = path
    return dict(sorted(found.items()))


CORPUS = _corpus()


def test_the_corpus_is_there() -> None:
    """Both packages' test data is found (a new release could move it: this says so)."""
    sources = {name.split("/", 1)[0] for name in CORPUS}
    assert sources == {"icalendar", "recurring_ical_events"}
    assert len(CORPUS) >= 250, len(CORPUS)


@pytest.mark.parametrize("name", list(CORPUS))
def test_each_file_is_read_or_refused_with_a_reason(name: str) -> None:
    try:
        read = read_object(CORPUS[name].read_bytes(), PARIS, WINDOW)
    except UnreadableObject as refused:
        reason = str(refused)
    else:
        for happening in read.events + read.occurrences:
            assert happening.start.tzinfo is not None and happening.end.tzinfo is not None
        assert read.events or read.tasks or read.unused, "read: events, tasks, or what instead"
        if read.unused:  # a journal, free/busy time…: ignored by a sync, saying what it is
            assert read.unused.startswith("no event or task in it"), read.unused
        return
    assert reason.strip(), "a refusal says why"


# -- one object per UID, as a server stores them ----------------------------------------

CALENDAR_HEAD = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//followupd tests//corpus//EN\r\n"


def objects_of(name: str) -> dict[str, bytes]:
    """The objects a server would store for the file `name`: one per UID, by resource name.

    A bare component (no VCALENDAR around it) is put in one, as an app would; a
    file of several UIDs is split, each part with the file's zones; a file the
    parser cannot read is put as it is. Of a file of more than PER_FILE objects
    (Google and Outlook exports of up to 496 events, 1209 objects in all), PER_FILE
    spread over the file are kept: the rest are more of the same shape, and each
    PUT costs both servers more the fuller a calendar is.
    """
    raw = CORPUS[name].read_bytes()
    stem = re.sub(r"[^A-Za-z0-9_-]+", "-", name.removesuffix(".ics"))
    if not raw.lstrip(b"\xef\xbb\xbf \r\n").upper().startswith(b"BEGIN:VCALENDAR"):
        raw = CALENDAR_HEAD.encode() + raw.rstrip(b"\r\n") + b"\r\nEND:VCALENDAR\r\n"
    try:
        with warnings.catch_warnings():  # the same split with the suite's warnings as errors
            warnings.simplefilter("ignore")
            calendars = Calendar.from_ical(raw, multiple=True)
            parts = [_split(calendar) for calendar in calendars]
    except Exception:  # a file no parser reads is still put as it is
        return {stem: raw}
    split = [part for found in parts for part in found]
    if len(split) <= 1:
        return {stem: raw}
    if len(split) > PER_FILE:  # the same app's export of more of the same: a spread sample
        step = (len(split) - 1) / (PER_FILE - 1)
        kept = {round(n * step) for n in range(PER_FILE)}
        return {f"{stem}-{n}": part for n, part in enumerate(split) if n in kept}
    return {f"{stem}-{n}": part for n, part in enumerate(split)}


def _split(calendar: Component) -> list[bytes]:
    zones = [part for part in calendar.subcomponents if part.name == "VTIMEZONE"]
    by_uid: dict[str, list[Component]] = {}
    for n, part in enumerate(calendar.subcomponents):
        if part.name != "VTIMEZONE":
            by_uid.setdefault(str(part.get("UID", f"(no UID {n})")), []).append(part)
    documents = []
    for parts in by_uid.values():
        document = Calendar()
        document.update(calendar)  # VERSION, PRODID…: the properties, not the components
        document.subcomponents = [*zones, *parts]
        documents.append(document.to_ical())
    return documents


def _uids(body: bytes) -> tuple[str, ...]:
    unfolded = re.sub(rb"\r?\n[ \t]", b"", body)
    return tuple(sorted({uid.decode(errors="replace") for uid in UID_LINE.findall(unfolded)}))


UID_LINE = re.compile(rb"^UID(?:;[^:\r\n]*)?:(.*?)\r?$", re.MULTILINE)


def corpus_calendars() -> dict[str, dict[str, bytes]]:
    """The corpus's objects, by calendar: each UID at most once in a calendar.

    Files of different projects reuse UIDs ("1", "test-123"), and a server
    keeps one object per UID in a calendar: an object whose UID is taken goes
    into another calendar, so that each one reaches a server. A calendar holds
    at most PER_CALENDAR objects: both servers take longer for each PUT the
    more objects a calendar holds (a UID is looked for in all of them).
    """
    calendars: list[dict[str, bytes]] = []
    uids_in: list[set[tuple[str, ...]]] = []
    for name in CORPUS:
        for resource, body in objects_of(name).items():
            uids = _uids(body)
            free = (
                n
                for n, objects in enumerate(calendars)
                if len(objects) < PER_CALENDAR and (not uids or uids not in uids_in[n])
            )
            number = next(free, len(calendars))
            if number == len(calendars):
                calendars.append({})
                uids_in.append(set())
            calendars[number][resource] = body
            uids_in[number].add(uids)
    return {f"{CALENDAR} {n}": objects for n, objects in enumerate(calendars, 1)}


# -- against each server -----------------------------------------------------------------

VALID = {
    "valid-mission-crm": (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Apple Inc.//macOS 14.5//EN\r\n"
        "BEGIN:VEVENT\r\nUID:8E1F2A3B-4C5D-4E6F-8A9B-0C1D2E3F4A5B\r\nDTSTAMP:20261120T083000Z\r\n"
        "DTSTART;VALUE=DATE:20261201\r\nDTEND;VALUE=DATE:20270301\r\nSUMMARY:Refonte du CRM\r\n"
        "CATEGORIES:Mission\r\nDESCRIPTION:key: acme-crm\\nclient: acme\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    ),
    "valid-mission-mail": (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Google Inc//Google Calendar 70.9054//EN\r\n"
        "BEGIN:VEVENT\r\nUID:7kukuqrfedlm2f9t0vr42q2gc4@google.com\r\n"
        "DTSTAMP:20261120T083000Z\r\nDTSTART;TZID=Europe/Paris:20270104T090000\r\n"
        "DTEND;TZID=Europe/Paris:20270226T180000\r\nSUMMARY:[mission] Migration messagerie\r\n"
        "DESCRIPTION:key: acme-mail\\nclient: acme\\nstatus: proposed\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    ),
    "valid-meeting": (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\n"
        "PRODID:-//Mozilla.org/NONSGML Mozilla Calendar V1.1//EN\r\n"
        "BEGIN:VEVENT\r\nUID:b0e0a1c2-3d4e-4f5a-8b9c-0d1e2f3a4b5c\r\nDTSTAMP:20261120T083000Z\r\n"
        "DTSTART:20261203T090000Z\r\nDURATION:PT1H\r\nSUMMARY:Point d'étape\r\n"
        "ATTENDEE;CN=Jeanne Dupont:mailto:jeanne.dupont@acme.example\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    ),
}


@pytest.fixture(params=SERVERS)
def dav_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def loaded(store: Store, tmp_path: Path) -> Store:
    return imported(store, tmp_path, ACME)


def settings_for(tmp_path: Path, dav: DavServer, calendars: list[str]) -> Settings:
    names = ", ".join(f'"{name}"' for name in calendars)
    text = MINIMAL_CONFIG + (
        f'[caldav]\nurl = "{dav.url}"\nusername = "{USER}"\n'
        f'password_env = "{PASSWORD_VARIABLE}"\nread_calendars = [{names}]\n'
    )
    return parse_settings(text, tmp_path / "followupd.toml", {"HOME": str(tmp_path)})


@dataclass
class Stored:
    """What a server kept of the corpus: what it refused, what each calendar lists."""

    refused: dict[str, int] = field(default_factory=dict)  # resource -> HTTP status
    listed: dict[str, set[str]] = field(default_factory=dict)  # calendar -> its objects' URLs

    @property
    def urls(self) -> set[str]:
        return {url for urls in self.listed.values() for url in urls}


def store_corpus(dav: DavServer) -> Stored:
    """The corpus (and the valid objects, in the first calendar) PUT into the server."""
    app, stored = CalendarApp(dav), Stored()
    for number, (name, objects) in enumerate(corpus_calendars().items()):
        calendar = app.calendar(name)
        if number == 0:
            objects = {**objects, **{key: text.encode() for key, text in VALID.items()}}
        for resource, body in objects.items():
            status = dav.put(f"{calendar.url.path}{resource}.ics", body)
            if status >= 300:
                stored.refused[resource] = status
        listing = calendar.objects(load_objects=False)
        stored.listed[name] = {str(obj.url.canonical()) for obj in listing}
    return stored


# the database is not what this is about; the servers run in this process, where the
# suite turns warnings into errors: a server would answer 500 to an object it takes
@pytest.mark.slow
@pytest.mark.one_engine
@pytest.mark.filterwarnings("ignore::icalendar.error.GloballyUniqueTZIDGuessed")
def test_one_sync_of_the_corpus_skips_each_object_it_cannot_use_and_applies_the_valid(
    loaded: Store, tmp_path: Path, dav: DavServer
) -> None:
    stored = store_corpus(dav)
    assert not set(VALID) & set(stored.refused), stored.refused
    assert all(400 <= status < 500 for status in stored.refused.values()), stored.refused
    settings = settings_for(tmp_path, dav, list(stored.listed))

    report = sync_calendars(loaded, settings, SYNC_AT)
    assert {c.name: (c.mode, c.fetched) for c in report.calendars} == {
        name: ("full", len(urls)) for name, urls in stored.listed.items()
    }
    skipped = [url for url, _ in report.skipped]
    assert set(skipped) <= stored.urls, sorted(set(skipped) - stored.urls)
    assert len(skipped) == len(set(skipped)), "each object reported once"
    assert all(reason.strip() for _, reason in report.skipped), report.skipped
    assert (report.missions_created, report.meetings, report.notices) == (2, 1, [])
    with loaded.session() as session:
        assert set(session.scalars(select(Mission.key))) == {"acme-audit", "acme-crm", "acme-mail"}
        (meeting,) = session.scalars(select(Touchpoint))
        assert (meeting.mission.key, meeting.contact and meeting.contact.key, meeting.at) == (
            "acme-audit",
            "jdupont",
            datetime(2026, 12, 3, 9, tzinfo=UTC),
        )
        rows = {row.href: row for row in session.scalars(select(CalendarObject))}
    assert set(rows) == stored.urls, "every object the server holds is accounted for"
    assert {href for href, row in rows.items() if row.kind == "skipped"} <= set(skipped)

    again = sync_calendars(loaded, settings, SYNC_AT + timedelta(hours=1))
    assert {(c.mode, c.fetched) for c in again.calendars} == {("incremental", 0)}
    assert again.skipped == [], "an object is reported again only once it changes"
