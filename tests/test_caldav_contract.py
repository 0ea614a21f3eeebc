"""What followupd does against a CalDAV server, end to end, against each server of the suite.

One contract, run against Radicale and Xandikos (the `dav_kind` fixture below),
the way vdirsyncer runs one storage test class against every server: the
calendars found by display name; a mission event read, changed and deleted;
an incremental sync that fetches only what changed; a task written by `tick`
into ``write_calendar`` (made if missing), never twice, completed when its
reason goes; a task the user completed read back; a meeting recorded; a
server stopped in the middle of a run, then back.

The database engine is irrelevant to a server's contract (the store's side of
the sync runs on both engines in test_calendar_sync.py and
test_calendar_channel.py), so the contract runs on SQLite only: the servers
double it already.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import quote, unquote, urlsplit

import pytest
from caldav.elements import dav
from icalendar import Calendar
from sqlalchemy import select, update

from followupd.channels.calendar import ical
from followupd.channels.calendar.caldav_writer import CalendarWriter
from followupd.config.load import parse_settings
from followupd.config.settings import Settings
from followupd.dav.plain import PlainDav
from followupd.domain import identity
from followupd.errors import ServiceUnavailable
from followupd.sources.caldav import sync as calendar_sync
from followupd.sources.caldav.calendar_access import LibraryCalendar, PlainCalendar
from followupd.sources.caldav.sync import SOURCE, SyncReport, sync_calendars
from followupd.store.db import Store
from followupd.store.models import CalendarObject, Mission, SyncState, Touchpoint
from tests.conftest import MINIMAL_CONFIG, Result, RunCli
from tests.davserver import (
    PASSWORD,
    PASSWORD_VARIABLE,
    SERVERS,
    USER,
    CalendarApp,
    DavServer,
    event,
)
from tests.rulekit import ACME, PARIS, item, paris
from tests.test_calendar_channel import remote

pytestmark = pytest.mark.one_engine

DATA = (
    ACME
    + """\
[[invoices]]
number = "F-1"
mission = "acme-audit"
amount = 12000.00
issued = 2026-10-31
due = 2026-11-30
[[issues]]
key = "late-data"
mission = "acme-audit"
opened = 2026-12-01T10:00:00+01:00
severity = "high"
summary = "Les extractions de données arrivent avec deux semaines de retard"
client_informed = 2026-12-01T11:00:00+01:00
"""
)
WRITE_CALENDAR = "Suivi clients"
HEADS_UP, CALL = "invoice_due:F-1:heads-up", "escalate_by_phone:late-data:call"


def mission_event(key: str, title: str, *lines: str) -> str:
    body = "\n".join((f"key: {key}", "client: acme", "contact: jdupont", *lines))
    return event(f"uid-{key}", f"[mission] {title}", body, "DTSTART;VALUE=DATE:20261201",
                 "DTEND;VALUE=DATE:20270301")  # fmt: skip


def at(month: int, day: int, hour: int = 9) -> datetime:
    return paris(2026, month, day, hour)


@pytest.fixture(params=SERVERS)
def dav_kind(request: pytest.FixtureRequest) -> str:
    """Each server of the suite: the whole contract runs against each."""
    return str(request.param)


class User:
    """A user of followupd with a calendar app, both on the server under test."""

    def __init__(self, home: Path, dav: DavServer, cli: RunCli, store: Store) -> None:
        self.home, self.dav, self.cli, self.store = home, dav, cli, store
        self.app = CalendarApp(dav)
        self.config = home / "followupd.toml"
        self.configure(["Missions"])

    def configure(self, read_calendars: list[str]) -> None:
        names = ", ".join(f'"{name}"' for name in read_calendars)
        self.config.write_text(
            MINIMAL_CONFIG + f'[caldav]\nurl = "{self.dav.url}"\nusername = "{USER}"\n'
            f'password_env = "{PASSWORD_VARIABLE}"\nread_calendars = [{names}]\n'
            f'write_calendar = "{WRITE_CALENDAR}"\n',
            encoding="utf-8",
        )

    @property
    def settings(self) -> Settings:
        text = self.config.read_text(encoding="utf-8")
        return parse_settings(text, self.config, {"HOME": str(self.home)})

    def sync(self, when: datetime) -> SyncReport:
        return sync_calendars(self.store, self.settings, when)

    def tick(self, when: datetime) -> dict[str, dict[str, Any]]:
        """`followupd tick --json` at `when`: the follow-ups it touched, by key."""
        ticked = self.cli("tick", "--now", when.isoformat(), "--json")
        assert ticked.code == 0, ticked
        return {row["key"]: row for row in json.loads(ticked.out)["followups"]}

    def run(self, *args: str) -> Result:
        result = self.cli(*args)
        assert result.code == 0, result
        return result

    def written(self) -> dict[str, Any]:
        """The objects of the write calendar, by UID (one object per UID, or it fails)."""
        return remote(self.dav, WRITE_CALENDAR)


@pytest.fixture
def user(home: Path, dav: DavServer, cli: RunCli, store: Store) -> User:
    """Claire, with ACME's data imported, an invoice due and an issue open."""
    person = User(home, dav, cli, store)
    (home / "data.toml").write_text(DATA, encoding="utf-8")
    person.run("import", str(home / "data.toml"))
    return person


def library_forbidden(*_: object) -> NoReturn:
    raise AssertionError("the caldav library was asked")


def missions(store: Store) -> dict[str, Mission]:
    with store.session() as session:
        return {mission.key: mission for mission in session.scalars(select(Mission))}


def meetings(store: Store) -> list[tuple[str, str | None, datetime]]:
    with store.session() as session:
        found = session.scalars(select(Touchpoint).where(Touchpoint.kind == "meeting"))
        return sorted((t.mission.key, t.contact.key if t.contact else None, t.at) for t in found)


class TestCaldavServer:
    def test_the_calendars_named_are_found_by_their_display_names(self, user: User) -> None:
        principal = user.app.client.principal()
        principal.make_calendar(name="Missions", cal_id="d41d8cd98f00")
        principal.make_calendar(name="Rendez-vous été", cal_id="rdv")
        principal.make_calendar(name="Archives", cal_id="archives")  # not read
        user.app.put("Missions", "a.ics", mission_event("acme-crm", "Refonte du CRM"))
        user.app.put("Rendez-vous été", "b.ics", mission_event("acme-rdv", "Rendez-vous"))
        user.app.put("Archives", "c.ics", mission_event("acme-old", "Archivée"))
        user.configure(["Missions", "Rendez-vous été", "Absent"])

        report = user.sync(at(11, 23))
        assert [c.name for c in report.calendars] == ["Missions", "Rendez-vous été"]
        assert set(missions(user.store)) == {"acme-audit", "acme-crm", "acme-rdv"}

        checked = user.cli("check")
        assert checked.code == 69, checked  # "Absent" is not on the server
        names = ("Missions", "Rendez-vous été", "Absent")
        lines = checked.out.splitlines()
        said = {name: line for line in lines for name in names if f"calendar '{name}'" in line}
        assert "reachable, syncs by token" in said["Missions"], checked.out
        assert "reachable, syncs by token" in said["Rendez-vous été"], checked.out
        assert "not found on the server" in said["Absent"], checked.out

    def test_a_mission_event_is_read_changed_and_its_deletion_seen(self, user: User) -> None:
        user.app.put("Missions", "crm.ics", mission_event("acme-crm", "Refonte du CRM",
                                                          "deposit_amount: 3000"))  # fmt: skip
        report = user.sync(at(11, 23))
        assert (report.missions_created, report.skipped, report.notices) == (1, [], [])
        crm = missions(user.store)["acme-crm"]
        assert (crm.title, crm.start, crm.end) == (
            "Refonte du CRM",
            date(2026, 12, 1),
            date(2027, 2, 28),
        )
        assert str(crm.deposit_amount) == "3000.00"

        changed = mission_event("acme-crm", "Refonte du CRM", "deposit_amount: 4500")
        user.app.put("Missions", "crm.ics", changed)
        report = user.sync(at(11, 24))
        assert (report.missions_created, report.missions_updated) == (0, 1)
        assert str(missions(user.store)["acme-crm"].deposit_amount) == "4500.00"

        user.app.delete("Missions", "crm.ics")
        report = user.sync(at(11, 25))
        assert [(c.mode, c.fetched, c.deleted) for c in report.calendars] == [("incremental", 0, 1)]
        assert report.notices == [
            "the mission event of 'acme-crm' was deleted from 'Missions'; "
            "the mission is kept (set its status to closed if it is over)"
        ]
        assert "acme-crm" in missions(user.store)

    def test_a_sync_fetches_only_what_changed(self, user: User) -> None:
        for n in range(12):
            user.app.put("Missions", f"e{n}.ics", event(f"e{n}", f"Atelier {n}", "",
                         f"DTSTART:202612{n + 1:02d}T090000Z", "DURATION:PT2H"))  # fmt: skip
        first = user.sync(at(11, 23))
        assert [(c.mode, c.fetched, c.deleted) for c in first.calendars] == [("full", 12, 0)]

        user.dav.reset_counts()
        again = user.sync(at(11, 23, 10))
        assert [(c.mode, c.fetched, c.deleted) for c in again.calendars] == [("incremental", 0, 0)]
        assert user.dav.calendar_data_sent == 0, user.dav.requests

        user.app.put("Missions", "e7.ics", event("e7", "Atelier 7 (déplacé)", "",
                                                 "DTSTART:20261230T090000Z"))  # fmt: skip
        user.app.delete("Missions", "e3.ics")
        user.dav.reset_counts()
        once = user.sync(at(11, 23, 11))
        assert [(c.mode, c.fetched, c.deleted) for c in once.calendars] == [("incremental", 1, 1)]
        assert user.dav.calendar_data_sent == 1, "exactly the changed object crossed the wire"

    def test_objects_named_as_apps_name_them_are_synced_and_their_deletion_seen(
        self, user: User
    ) -> None:
        """Apps name an object after its UID: '@', spaces, accents, '+', '&', ';'…"""
        calendar = user.app.calendar("Missions")
        names = ["7kukuq@google.com", "a b", "réunion", "50%", "a+b", "a&b", "a;b", "(1)", "a~b"]
        for n, name in enumerate(names):
            text = event(f"u{n}", f"Atelier {n}", "", "DTSTART:20261201T090000Z")
            assert user.dav.put(f"{calendar.url.path}{name}.ics", text.encode()) == 201
        first = user.sync(at(11, 23))
        assert [(c.mode, c.fetched) for c in first.calendars] == [("full", len(names))]
        assert first.skipped == []
        again = user.sync(at(11, 23, 10))
        assert [(c.mode, c.fetched, c.deleted) for c in again.calendars] == [("incremental", 0, 0)]
        for name in names[:5]:
            user.app.client.delete(str(calendar.url) + quote(f"{name}.ics"))
        gone = user.sync(at(11, 23, 11))
        assert [(c.mode, c.fetched, c.deleted) for c in gone.calendars] == [("incremental", 0, 5)]
        with user.store.session() as session:
            left = session.scalars(select(CalendarObject.href)).all()
        assert sorted(unquote(href.rsplit("/", 1)[1]) for href in left) == sorted(
            f"{name}.ics" for name in names[5:]
        )

    def test_a_token_the_server_no_longer_knows_falls_back_to_etags(self, user: User) -> None:
        for n in range(3):
            text = event(f"e{n}", f"Atelier {n}", "", "DTSTART:20261201T090000Z")
            user.app.put("Missions", f"e{n}.ics", text)
        user.sync(at(11, 23))
        with user.store.session() as session:
            state = session.scalars(select(SyncState).where(SyncState.source.startswith(SOURCE)))
            (row,) = state
            assert row.token
            forgotten = row.token[:-8] + ("0" * 8 if not row.token.endswith("0" * 8) else "1" * 8)
            session.execute(update(SyncState).values(token=forgotten))
        user.app.put("Missions", "e1.ics",
                     event("e1", "Atelier 1 bis", "", "DTSTART:20261202T090000Z"))  # fmt: skip
        user.app.delete("Missions", "e2.ics")
        report = user.sync(at(11, 24))
        assert [(c.mode, c.fetched, c.deleted) for c in report.calendars] == [
            ("etag comparison", 1, 1)
        ]
        assert [c.mode for c in user.sync(at(11, 25)).calendars] == ["full"]
        assert [c.mode for c in user.sync(at(11, 26)).calendars] == ["incremental"]

    def test_calendars_found_before_are_asked_by_plain_requests_alone(
        self, user: User, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Found once through the library, a calendar is then listed and asked directly."""
        principal = user.app.client.principal()
        principal.make_calendar(name="Rendez-vous été", cal_id="rendez-vous été")  # not read
        user.app.put("Missions", "crm.ics", mission_event("acme-crm", "Refonte du CRM",
                                                          "deposit_amount: 3000"))  # fmt: skip
        user.app.put("Missions", "old.ics", mission_event("acme-old", "Ancienne"))
        user.sync(at(11, 23))
        user.app.put("Missions", "crm.ics", mission_event("acme-crm", "Refonte du CRM",
                                                          "deposit_amount: 4500"))  # fmt: skip
        user.app.delete("Missions", "old.ics")
        user.dav.reset_counts()
        with monkeypatch.context() as patched:
            patched.setattr(calendar_sync, "dav_client", library_forbidden)
            report = user.sync(at(11, 24))
        assert [(c.mode, c.fetched, c.deleted) for c in report.calendars] == [("incremental", 1, 1)]
        assert (report.missions_updated, report.failed) == (1, [])
        assert str(missions(user.store)["acme-crm"].deposit_amount) == "4500.00"
        assert report.notices == [
            "the mission event of 'acme-old' was deleted from 'Missions'; "
            "the mission is kept (set its status to closed if it is over)"
        ]
        asked = [method for method, _, status in user.dav.requests if status != 401]
        assert asked == ["PROPFIND", "REPORT", "REPORT"], user.dav.requests  # list, sync, fetch

    def test_a_first_sync_finds_lists_and_fetches_by_plain_requests(
        self, user: User, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The principal, its calendar home, the calendars there, their objects: no library."""
        user.app.put("Missions", "crm.ics", mission_event("acme-crm", "Refonte du CRM"))
        user.app.put("Missions", "old.ics", mission_event("acme-old", "Ancienne"))
        with monkeypatch.context() as patched:
            patched.setattr(calendar_sync, "dav_client", library_forbidden)
            report = user.sync(at(11, 23))
        assert [(c.mode, c.fetched, c.deleted) for c in report.calendars] == [("full", 2, 0)]
        assert (report.missions_created, report.failed) == (2, [])
        assert {"acme-crm", "acme-old"} <= set(missions(user.store))
        library = LibraryCalendar(user.app.calendar("Missions"))
        with user.store.session() as session:
            stored = set(session.scalars(select(CalendarObject.calendar)))
        assert stored == {library.url}, "the calendar's URL as the library spells it"

    def test_a_calendar_the_library_finds_is_listed_and_fetched_by_plain_requests(
        self, user: User, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Named by its path, a calendar is looked up through the library; then asked plainly."""
        library = LibraryCalendar(user.app.calendar("Missions"))
        user.configure([urlsplit(library.url).path])
        user.app.put("Missions", "crm.ics", mission_event("acme-crm", "Refonte du CRM"))
        with monkeypatch.context() as patched:
            patched.setattr(LibraryCalendar, "changes", library_forbidden)
            patched.setattr(LibraryCalendar, "fetch", library_forbidden)
            report = user.sync(at(11, 23))
        assert [(c.mode, c.fetched, c.deleted) for c in report.calendars] == [("full", 1, 0)]
        assert (report.missions_created, report.failed) == (1, [])

    def test_plain_requests_read_what_changed_as_the_library_reads_it(self, user: User) -> None:
        """The same changes, deletions, token and calendar data, by either way of asking."""
        user.app.put("Missions", "crm.ics", mission_event("acme-crm", "Refonte du CRM"))
        user.app.put("Missions", "old.ics", mission_event("acme-old", "Ancienne"))
        user.sync(at(11, 23))
        with user.store.session() as session:
            token = session.scalar(
                select(SyncState.token).where(SyncState.source.startswith(SOURCE))
            )
            known = dict(session.execute(select(CalendarObject.href, CalendarObject.etag)).all())
        user.app.put("Missions", "crm.ics", mission_event("acme-crm", "Refonte du CRM",
                                                          "deposit_amount: 4500"))  # fmt: skip
        user.app.put("Missions", "new.ics", mission_event("acme-new", "Nouvelle"))
        user.app.delete("Missions", "old.ics")

        library = LibraryCalendar(user.app.calendar("Missions"))
        with PlainDav(user.dav.url, USER, PASSWORD) as dav:
            plain = PlainCalendar(dav, library.url, library_forbidden)
            gone = library.url + "gone.ics"  # stored, no longer listed: deleted
            for stored in ({}, {**known, gone: '"old"'}):
                first = plain.changes(None, stored)
                assert first == library.changes(None, stored)
                assert first.mode == "full" and len(first.changed) == 2
            assert first.deleted == {gone, *known} - set(first.changed)
            asked = plain.changes(token, known)
            assert asked == library.changes(token, known)
            assert (len(asked.changed), len(asked.deleted)) == (2, 1)
            hrefs = sorted(asked.changed)
            fetched = plain.fetch(hrefs, library_forbidden)
        assert fetched == library.fetch(hrefs, library_forbidden)
        assert sorted(fetched.data) == hrefs

    def test_a_calendar_renamed_named_twice_or_made_is_looked_up_again(
        self, user: User, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """What the plain listing does not find as it was goes through the library, which
        says what it says without the plain requests."""
        missions_calendar = user.app.calendar("Missions")
        user.app.put("Missions", "crm.ics", mission_event("acme-crm", "Refonte du CRM"))
        user.sync(at(11, 23))
        missions_calendar.set_properties([dav.DisplayName("Missions 2026")])
        renamed = user.sync(at(11, 24))
        assert renamed.notices == [f"calendar 'Missions' not found on {user.dav.url}"]
        missions_calendar.set_properties([dav.DisplayName("Missions")])
        assert [c.mode for c in user.sync(at(11, 25)).calendars] == ["full"]
        twin = user.app.client.principal().make_calendar(name="Missions", cal_id="missions été")
        (failed,) = user.sync(at(11, 26)).failed
        assert "2 calendars are named 'Missions'" in failed
        twin.delete()
        user.sync(at(11, 27))

        user.tick(at(11, 27, 10))  # makes the write calendar, which no sync has read yet
        assert WRITE_CALENDAR in {
            c.get_display_name() for c in user.app.client.principal().calendars()
        }
        made = user.sync(at(11, 27, 11))
        assert [c.name for c in made.calendars] == ["Missions", WRITE_CALENDAR]
        with monkeypatch.context() as patched:
            patched.setattr(calendar_sync, "dav_client", library_forbidden)
            again = user.sync(at(11, 27, 12))
        assert [(c.name, c.mode) for c in again.calendars] == [
            ("Missions", "incremental"),
            (WRITE_CALENDAR, "incremental"),
        ]

    def test_a_task_is_written_once_made_where_missing_and_completed_when_its_reason_goes(
        self, user: User
    ) -> None:
        calendars = {c.get_display_name() for c in user.app.client.principal().calendars()}
        assert WRITE_CALENDAR not in calendars
        ticked = user.tick(at(11, 27))
        assert (ticked[HEADS_UP]["channel"], ticked[HEADS_UP]["state"]) == ("calendar", "sent")
        written = user.written()
        sent = {key for key, row in ticked.items() if row["channel"] == "calendar"}
        assert len(written) == len(sent), (sorted(written), sorted(sent))  # one object each
        task = written[identity.uid(HEADS_UP)]
        assert (task.name, str(task["STATUS"]), task["DUE"].dt) == (
            "VTODO",
            "NEEDS-ACTION",
            at(11, 27),
        )
        href = item(user.store, HEADS_UP).href
        assert href is not None and href.startswith(user.dav.url)

        assert HEADS_UP not in user.tick(at(11, 27, 12)), "written once"
        assert set(user.written()) == set(written), "nothing written twice"

        user.run("invoice", "paid", "F-1", "--on", "2026-12-02")
        assert HEADS_UP in user.tick(at(12, 8))
        assert item(user.store, HEADS_UP).state == "completed"
        task = user.written()[identity.uid(HEADS_UP)]
        assert (str(task["STATUS"]), int(task["SEQUENCE"])) == ("COMPLETED", 1)
        assert task.subcomponents == [], "no alarm left on a completed task"
        assert item(user.store, HEADS_UP).href == href, "updated in place"
        assert HEADS_UP not in user.tick(at(12, 15)), "closed once"

    def test_a_write_whose_record_was_lost_is_not_written_twice(self, user: User) -> None:
        """A crash between the server's 201 and the commit: the next claim finds it there."""
        user.tick(at(11, 27))
        caldav = user.settings.caldav
        assert caldav is not None
        written = item(user.store, HEADS_UP)
        shown = ical.item_of(written, PARIS, None, None)
        user.dav.reset_counts()
        with CalendarWriter(caldav) as writer:
            url = writer.create(identity.resource_name(HEADS_UP), ical.document(shown, PARIS),
                                identity.uid(HEADS_UP))  # fmt: skip
        assert url == written.href
        assert ("PUT", 412) in {(method, status) for method, _, status in user.dav.requests}
        assert list(user.written()).count(identity.uid(HEADS_UP)) == 1

    def test_a_task_the_user_completed_is_read_back(self, user: User) -> None:
        ticked = user.tick(at(12, 2))
        assert ticked[CALL]["state"] == "sent"
        href = item(user.store, CALL).href
        assert href is not None
        text, etag = user.app.get(href)  # the ETag as the server wrote it, quotes and all
        calendar = Calendar.from_ical(text)
        (task,) = calendar.todos
        task.pop("STATUS")
        task.add("STATUS", "COMPLETED")
        task.add("COMPLETED", at(12, 2, 15))
        headers = {"If-Match": etag, "Content-Type": "text/calendar; charset=utf-8"}
        assert user.app.client.put(href, calendar.to_ical(), headers).status in (200, 204)

        report = user.sync(at(12, 2, 16))
        assert report.user.completed == [CALL]
        task_item = item(user.store, CALL)
        assert (task_item.state, task_item.reason) == ("completed", "completed in your calendar")
        with user.store.session() as session:
            (call,) = session.scalars(select(Touchpoint).where(Touchpoint.kind == "call"))
            assert (call.at, call.contact and call.contact.key) == (at(12, 2, 15), "jdupont")
        assert CALL not in user.tick(at(12, 3)), "not written again, nor closed twice"
        (task,) = Calendar.from_ical(user.app.get(href)[0]).todos
        assert str(task["STATUS"]) == "COMPLETED"

    def test_a_meeting_with_a_contact_is_recorded(self, user: User) -> None:
        user.app.put(
            "Missions", "point.ics",
            event("meet-1", "Point d'étape", "", "DTSTART;TZID=Europe/Paris:20261130T140000",
                  "DURATION:PT1H", "ATTENDEE;CN=Jeanne Dupont:mailto:Jeanne.Dupont@acme.example"),
        )  # fmt: skip
        report = user.sync(at(12, 1, 10))
        assert report.meetings == 1
        assert meetings(user.store) == [("acme-audit", "jdupont", at(11, 30, 14))]
        assert user.sync(at(12, 1, 11)).meetings == 0, "recorded once"
        assert meetings(user.store) == [("acme-audit", "jdupont", at(11, 30, 14))]

    def test_a_server_stopped_mid_sync_then_back_loses_and_doubles_nothing(
        self, user: User
    ) -> None:
        """The server stops after the first calendar: the next sync takes up from there."""
        user.app.calendar("Rendez-vous")
        user.app.put("Missions", "crm.ics", mission_event("acme-crm", "Refonte du CRM"))
        for day in (2, 9, 16):
            user.app.put(
                "Rendez-vous", f"point-{day}.ics",
                event(f"point-{day}", "Point [acme-crm]", "",
                      f"DTSTART;TZID=Europe/Paris:202611{day:02d}T100000", "DURATION:PT1H"),
            )  # fmt: skip
        user.configure(["Missions", "Rendez-vous"])

        def stop_before_the_second(calendar: str, done: int, total: int) -> None:
            if calendar == "Rendez-vous":
                user.dav.stop()

        try:
            cut = sync_calendars(user.store, user.settings, at(11, 23), stop_before_the_second)
        except ServiceUnavailable:
            pass  # the server out of reach stops the sync…
        else:  # …or is told for the calendar it stopped, the others being synced
            assert any("'Rendez-vous'" in notice for notice in cut.notices), cut.notices
        assert set(missions(user.store)) == {"acme-audit", "acme-crm"}
        assert meetings(user.store) == []

        down = user.cli("sync", "--now", at(11, 23, 10).isoformat())
        assert down.code == 69, down
        failed = user.sync(at(11, 23, 10)).failed  # each calendar said, none raising
        assert failed, "a server out of reach is said, calendar by calendar"
        assert all(f"({user.dav.url}) not synced: cannot connect: Connection refused;" in line
                   for line in failed), failed  # fmt: skip

        user.dav.start()
        report = user.sync(at(11, 23, 11))
        assert [(c.name, c.mode, c.fetched) for c in report.calendars] == [
            ("Missions", "incremental", 0),
            ("Rendez-vous", "full", 3),
        ]
        assert (report.missions_created, report.meetings) == (0, 3)
        expected = [("acme-crm", None, at(11, day, 10)) for day in (2, 9, 16)]
        assert meetings(user.store) == expected
        again = user.sync(at(11, 23, 12))
        assert (again.fetched, again.meetings, meetings(user.store)) == (0, 0, expected)

    def test_a_server_stopped_mid_delivery_then_back_loses_and_doubles_nothing(
        self, user: User
    ) -> None:
        invoices = "".join(
            f'[[invoices]]\nnumber = "F-{n}"\nmission = "acme-audit"\namount = 100\n'
            f"issued = 2026-10-31\ndue = 2026-11-30\n"
            for n in range(2, 7)
        )
        (user.home / "more.toml").write_text(invoices, encoding="utf-8")
        user.run("import", str(user.home / "more.toml"))
        heads_ups = {f"invoice_due:F-{n}:heads-up" for n in range(1, 7)}
        written = 0
        original = CalendarWriter.create

        def stops_after_two(writer: CalendarWriter, resource: str, body: bytes, uid: str) -> str:
            nonlocal written
            if written == 2:
                user.dav.stop()
            written += 1
            return original(writer, resource, body, uid)

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(CalendarWriter, "create", stops_after_two)
            stopped = user.cli("tick", "--now", at(11, 27).isoformat(), "--json")
        assert stopped.code == 69, stopped
        rows = {row["key"]: row for row in json.loads(stopped.out)["followups"]}
        tasks = {key for key, row in rows.items() if row["channel"] == "calendar"}
        assert heads_ups <= tasks
        sent_first = {key for key in tasks if rows[key]["state"] == "sent"}
        retrying = {key for key in tasks if rows[key]["state"] == "pending"}
        assert (len(sent_first), retrying) == (2, tasks - sent_first), rows
        assert all("unreachable" in rows[key]["reason"] for key in retrying), rows

        user.dav.start()
        later = user.tick(at(11, 27, 12))
        assert {key for key, row in later.items() if row["state"] == "sent"} == retrying
        objects = user.written()  # one object per UID, or it fails
        assert len(objects) == len(tasks), "each task once"
        assert {identity.uid(key) for key in heads_ups} <= set(objects)
