"""A sync's SQL statements grow by a small constant per object, on both servers and databases.

A first sync of 1,000 events made 4.9 statements an object (a row inserted,
a savepoint taken and released, references looked up, for each), and the
issue's profile counted 11.8: the objects of a fetched chunk are now read in
one transaction with a few statements for them all. Each sync below fetches
only new objects, in one chunk, of every kind a calendar holds; the
statements of a sync of 2N objects less those of a sync of N are the cost
of N objects, whatever a sync costs on its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event as sqlalchemy_event
from sqlalchemy import func, select

from followupd.config.load import parse_settings
from followupd.config.settings import Settings
from followupd.sources.caldav.sync import FETCH_CHUNK, SyncReport, sync_calendars
from followupd.sources.files.importer import import_files
from followupd.store.db import Store
from followupd.store.models import CalendarMeeting, CalendarObject, Mission
from tests.conftest import MINIMAL_CONFIG
from tests.davserver import (
    ICALENDAR,
    PASSWORD_VARIABLE,
    SERVERS,
    USER,
    CalendarApp,
    DavServer,
    event,
)
from tests.rulekit import ACME, PARIS, paris

AT = paris(2026, 11, 23)
# statements a sync may make for each object it fetches, 4.9 before objects were read a
# chunk at a time. What is left is the INSERT of each mission on SQLite (the ORM inserts
# with RETURNING one row at a time there), one object in four here; one more statement
# an object of any kind would make 0.25 more
PER_OBJECT = 0.4
KINDS = 4  # objects made by `objects`, for each n


@pytest.fixture(params=SERVERS)
def dav_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def settings_for(tmp_path: Path, dav: DavServer) -> Settings:
    text = MINIMAL_CONFIG + (
        f'[caldav]\nurl = "{dav.url}"\nusername = "{USER}"\n'
        f'password_env = "{PASSWORD_VARIABLE}"\nread_calendars = ["Missions"]\n'
    )
    return parse_settings(text, tmp_path / "followupd.toml", {"HOME": str(tmp_path)})


def stamp(moment: datetime) -> str:
    return f"TZID=Europe/Paris:{moment:%Y%m%dT%H%M%S}"


def objects(batch: str, count: int) -> Iterator[tuple[str, str]]:
    """`count` of each kind: a mission event, a meeting held with a contact, an appointment, a
    weekly meeting series; as (resource, text)."""
    for n in range(count):
        name = f"{batch}-{n}"
        yield (
            f"{name}-mission.ics",
            event(
                f"{name}-mission",
                f"[mission] Mission {name}",
                f"key: acme-{name}\nclient: acme\ncontact: jdupont\ncontract_signed: 2026-11-02",
                "DTSTART;VALUE=DATE:20261201",
                "DTEND;VALUE=DATE:20270301",
            ),
        )
        held = AT - timedelta(days=3 + n % 20, hours=2)
        yield (
            f"{name}-meeting.ics",
            event(
                f"{name}-meeting",
                f"Point {name}",
                "",
                f"DTSTART;{stamp(held)}",
                f"DTEND;{stamp(held + timedelta(hours=1))}",
                "ATTENDEE;CN=Jeanne Dupont:mailto:jeanne.dupont@acme.example",
            ),
        )
        yield (
            f"{name}-dentist.ics",
            event(
                f"{name}-dentist",
                "Dentiste",
                "",
                f"DTSTART;{stamp(AT + timedelta(days=n % 30))}",
                f"DTEND;{stamp(AT + timedelta(days=n % 30, hours=1))}",
            ),
        )
        yield (
            f"{name}-weekly.ics",
            event(
                f"{name}-weekly",
                f"Hebdo [acme-{name}]",
                "",
                f"DTSTART;{stamp(AT - timedelta(days=50, hours=n % 8))}",
                f"DTEND;{stamp(AT - timedelta(days=50, hours=n % 8 - 1))}",
                "RRULE:FREQ=WEEKLY;COUNT=30",
            ),
        )


@contextmanager
def counted(store: Store) -> Iterator[list[str]]:
    """The SQL statements run on the store's engine inside the block."""
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    sqlalchemy_event.listen(store.engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        sqlalchemy_event.remove(store.engine, "before_cursor_execute", count)


def synced(store: Store, settings: Settings, app: CalendarApp, batch: str, count: int) -> int:
    """Put `count` objects of each kind in the calendar, sync at AT: how many statements it ran."""
    calendar = app.calendar("Missions")
    for resource, text in objects(batch, count):
        response = app.client.put(
            str(calendar.url.join(resource)), text, {"Content-Type": ICALENDAR}
        )
        assert response.status == 201, response.status
    with counted(store) as statements:
        report = sync_calendars(store, settings, AT)
    assert_read(report, KINDS * count)
    return len(statements)


def assert_read(report: SyncReport, fetched: int) -> None:
    assert (report.failed, report.skipped) == ([], [])
    assert report.fetched == fetched
    assert report.missions_created == fetched // KINDS


def test_a_sync_runs_a_bounded_number_of_statements_per_object(
    store: Store, tmp_path: Path, dav: DavServer
) -> None:
    data = tmp_path / "data.toml"
    data.write_text(ACME, encoding="utf-8")
    import_files(store, [data], PARIS)
    settings, app = settings_for(tmp_path, dav), CalendarApp(dav)
    app.calendar("Missions")
    synced(store, settings, app, "first", 2)  # the token, and the sync's own first work
    n = 6
    assert 2 * n * KINDS <= FETCH_CHUNK, "each sync fetches one chunk"
    single = synced(store, settings, app, "single", n)
    double = synced(store, settings, app, "double", 2 * n)
    per_object = (double - single) / (n * KINDS)
    assert per_object <= PER_OBJECT, f"{per_object:.2f} statements an object"
    with store.session() as session:  # what the statements wrote is all there
        assert session.scalar(select(func.count()).select_from(CalendarObject)) == 20 * KINDS
        assert session.scalar(select(func.count()).select_from(Mission)) == 1 + 20
        series = select(func.count(CalendarMeeting.object_id.distinct()))
        assert session.scalar(series) == 20, "each weekly series stores its next meetings"
