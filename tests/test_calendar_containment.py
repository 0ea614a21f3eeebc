"""Nothing ordinary stops the calendar source (issue 12, points 1, 4 and 6).

A component followupd does not use (VFREEBUSY, VJOURNAL, VAVAILABILITY, an
X- component) is left out, with its address; an object or a calendar that
fails does so alone; two calendars with one display name are refused with
both URLs, and a calendar may be named by its path or URL; the calendar
stack's own log lines show with --debug only.

Radicale refuses VFREEBUSY and VAVAILABILITY objects (400), so those tests
run against Xandikos (tests/davserver.py); both servers refuse
an X- component at the top of an object, which is read by the reader only.
"""

from __future__ import annotations

import io
import json
import logging
import signal
import subprocess
import sys
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from caldav.elements import dav
from sqlalchemy import select

from followupd.config.load import parse_settings
from followupd.config.settings import Settings
from followupd.daemon import logs
from followupd.sources.caldav.sync import CalendarSync, sync_calendars
from followupd.sources.files.importer import import_files
from followupd.sources.ical.read import read_object
from followupd.store.db import Store
from followupd.store.models import CalendarObject, Mission
from tests.conftest import MINIMAL_CONFIG, RunCli
from tests.daemon import environment, followupd, get, wait_for
from tests.davserver import (
    PASSWORD,
    PASSWORD_VARIABLE,
    USER,
    CalendarApp,
    DavServer,
    dav_server,
    event,
)
from tests.rulekit import ACME, PARIS, paris
from tests.smtpserver import free_port

AT = paris(2026, 11, 23, 9)
HEAD = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//other//app//EN\r\n"
TAIL = "END:VCALENDAR\r\n"
STAMP = "DTSTAMP:20261101T000000Z\r\n"
FREEBUSY = (
    "BEGIN:VFREEBUSY\r\nUID:fb-1\r\n" + STAMP + "DTSTART:20261101T000000Z\r\n"
    "DTEND:20261201T000000Z\r\nFREEBUSY:20261102T090000Z/20261102T100000Z\r\nEND:VFREEBUSY\r\n"
)
JOURNAL = (
    "BEGIN:VJOURNAL\r\nUID:journal-1\r\n" + STAMP + "DTSTART;VALUE=DATE:20261101\r\n"
    "SUMMARY:Notes de la semaine\r\nEND:VJOURNAL\r\n"
)
AVAILABILITY = (
    "BEGIN:VAVAILABILITY\r\nUID:avail-1\r\n"
    + STAMP
    + "BEGIN:AVAILABLE\r\nUID:avail-1a\r\n"
    + STAMP
    + "DTSTART:20261102T090000Z\r\nDTEND:20261102T170000Z\r\nEND:AVAILABLE\r\n"
    "END:VAVAILABILITY\r\n"
)
X_COMPONENT = "BEGIN:X-ACME-THING\r\nUID:x-1\r\nX-ACME-LEVEL:3\r\nEND:X-ACME-THING\r\n"
MISSION = event(
    "mission-crm",
    "[mission] Refonte du CRM",
    "key: acme-crm\nclient: acme\ncontact: jdupont\ncontract_signed: 2026-11-20\n"
    "deposit_amount: 3000",
    "DTSTART;VALUE=DATE:20261201",
    "DTEND;VALUE=DATE:20270301",
)
MEETING = event(
    "meeting-1",
    "Point d'étape",
    "",
    "DTSTART;TZID=Europe/Paris:20261116T140000",
    "DURATION:PT1H",
    "ATTENDEE;CN=Jeanne Dupont:mailto:jeanne.dupont@acme.example",
)


# -- a second server: Xandikos, which stores every component RFC 4791 names ---------------
@pytest.fixture
def xandikos(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[DavServer]:
    """Xandikos (tests/davserver.py) beside `dav`'s Radicale; the password in the env."""
    monkeypatch.setenv(PASSWORD_VARIABLE, PASSWORD)
    with dav_server(tmp_path / "xandikos", "xandikos") as server:
        yield server


Server = DavServer


@contextmanager
def app_of(server: Server) -> Iterator[CalendarApp]:
    """A calendar app's client, closed after use (Xandikos keeps connections alive)."""
    app = CalendarApp(server)
    with app.client:
        yield app


def put(server: Server, calendar: str, resource: str, body: str) -> None:
    with app_of(server) as app:
        app.put(calendar, resource, body)


def config_text(server: Server, *calendars: str, more: str = "") -> str:
    names = ", ".join(json.dumps(name) for name in calendars)
    return MINIMAL_CONFIG + (
        f'[caldav]\nurl = "{server.url}"\nusername = "{USER}"\n'
        f'password_env = "{PASSWORD_VARIABLE}"\nread_calendars = [{names}]\n{more}'
    )


def settings_for(tmp_path: Path, server: Server, *calendars: str, more: str = "") -> Settings:
    text = config_text(server, *calendars, more=more)
    return parse_settings(text, tmp_path / "followupd.toml", {"HOME": str(tmp_path)})


@pytest.fixture
def loaded(store: Store, tmp_path: Path) -> Store:
    path = tmp_path / "data.toml"
    path.write_text(ACME, encoding="utf-8")
    import_files(store, [path], PARIS)
    return store


def missions(store: Store) -> set[str]:
    with store.session() as session:
        return set(session.scalars(select(Mission.key)))


def calendar_url(server: Server, name: str) -> str:
    with app_of(server) as app:
        return str(app.calendar(name).url.canonical())


def two_calendars_named(server: Server, name: str) -> list[str]:
    """Two calendars with one display name (paths `/claire/NAME-a/`, `-b/`): their URLs."""
    with app_of(server) as app:
        principal = app.client.principal()
        made = [principal.make_calendar(name=name, cal_id=f"{name.lower()}-{n}") for n in "ab"]
        return sorted(str(calendar.url.canonical()) for calendar in made)


# -- point 1: what followupd does not use is left out; the rest is synced ------------------
def test_components_followupd_does_not_use_are_left_out_and_the_rest_is_synced(
    loaded: Store, tmp_path: Path, xandikos: DavServer
) -> None:
    put(xandikos, "Missions", "crm.ics", MISSION)
    put(xandikos, "Missions", "meeting.ics", MEETING)
    for name, body in (("freebusy", FREEBUSY), ("journal", JOURNAL),
                       ("availability", AVAILABILITY)):  # fmt: skip
        put(xandikos, "Missions", f"{name}.ics", HEAD + body + TAIL)
    # a free/busy block first: caldav 3.6 makes a FreeBusy of the object, and fails
    workshop = event("meeting-2", "Atelier [acme-audit]", "",
                     "DTSTART;TZID=Europe/Paris:20261118T100000", "DURATION:PT1H")  # fmt: skip
    both = workshop.replace("BEGIN:VEVENT", FREEBUSY.replace("fb-1", "fb-2") + "BEGIN:VEVENT")
    put(xandikos, "Missions", "both.ics", both)
    settings = settings_for(tmp_path, xandikos, "Missions")

    report = sync_calendars(loaded, settings, AT)
    assert report.failed == [], report.failed
    assert [(c.name, c.fetched) for c in report.calendars] == [("Missions", 6)]
    assert "acme-crm" in missions(loaded)
    # the meeting with jdupont (acme-audit, acme-crm), and both.ics's beside its free/busy
    assert report.meetings == 3
    assert report.skipped == [], "a journal, free/busy time, availability: ignored"
    calendar = calendar_url(xandikos, "Missions")
    with loaded.session() as session:
        kinds = {
            row.href.removeprefix(calendar): (row.kind, row.problem)
            for row in session.scalars(select(CalendarObject))
        }
    for name in ("freebusy.ics", "journal.ics", "availability.ics"):
        assert kinds[name] == ("other", None), kinds

    again = sync_calendars(loaded, settings, paris(2026, 11, 23, 10))
    assert (again.skipped, again.failed, again.fetched) == ([], [], 0), "said once, not each sync"


def test_an_x_component_beside_an_event_is_left_out_by_the_reader() -> None:
    window = (paris(2026, 11, 1), paris(2026, 12, 31))
    read = read_object(MISSION.replace("BEGIN:VEVENT", X_COMPONENT + "BEGIN:VEVENT"), PARIS, window)
    assert [happening.uid for happening in read.events] == ["mission-crm"]


def test_sync_and_tick_go_through_a_freebusy_object_and_deliver(
    cli: RunCli, home: Path, xandikos: DavServer
) -> None:
    put(xandikos, "Missions", "crm.ics", MISSION)
    put(xandikos, "Missions", "freebusy.ics", HEAD + FREEBUSY + TAIL)
    (home / "followupd.toml").write_text(config_text(xandikos, "Missions"), encoding="utf-8")
    (home / "data.toml").write_text(ACME, encoding="utf-8")
    assert cli("init").code == 0
    assert cli("import", home / "data.toml").code == 0

    synced = cli("sync", "--now", "2026-11-23T09:00")
    assert synced.code == 0, synced
    assert "missions: 1 created" in synced.out
    assert "freebusy.ics" not in synced.out, "ignored, not reported"

    ticked = cli("tick", "--now", "2026-12-01T10:00", "--json")
    assert ticked.code == 0, ticked
    states = {item["key"]: item["state"] for item in json.loads(ticked.out)["followups"]}
    assert states.get("deposit_due:acme-crm:request") == "sent", states


def test_an_object_that_fails_unforeseen_is_skipped_alone_and_undone(
    loaded: Store, tmp_path: Path, dav: DavServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fault injected in one object's reading: that object alone is left out, undone."""
    put(dav, "Missions", "a-crm.ics", MISSION)
    broken = MISSION.replace("mission-crm", "mission-erp").replace("acme-crm", "acme-erp")
    put(dav, "Missions", "b-erp.ics", broken)
    put(dav, "Missions", "c-meeting.ics", MEETING)
    apply = CalendarSync._apply

    def failing(self: CalendarSync, session: Any, seen: Any, *rest: Any) -> None:
        apply(self, session, seen, *rest)  # the mission is written, then the fault
        if seen.row.href.endswith("b-erp.ics"):
            raise RuntimeError("injected fault")

    monkeypatch.setattr(CalendarSync, "_apply", failing)
    report = sync_calendars(loaded, settings_for(tmp_path, dav, "Missions"), AT)
    assert report.failed == []
    ((url, reason),) = report.skipped
    assert url.endswith("b-erp.ics")
    assert reason == "not read: RuntimeError: injected fault"
    assert {"acme-crm", "acme-erp"} & missions(loaded) == {"acme-crm"}, "its writes undone"
    assert (report.missions_created, report.meetings) == (1, 2)  # with jdupont: audit and crm
    with loaded.session() as session:
        row = session.scalars(select(CalendarObject).where(CalendarObject.href == url)).one()
        assert (row.kind, row.problem, row.etag is not None) == ("skipped", reason, True)


class NoMultiget(DavServer):
    """Radicale behind a proxy that fails every calendar-multiget, and GETs of `broken`."""

    broken: set[str]

    def _app(self) -> Callable[..., Iterable[bytes]]:
        radicale_app = super()._app()

        def failing(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(length) if length else b""
            environ["wsgi.input"] = io.BytesIO(body)
            method, path = environ["REQUEST_METHOD"], environ["PATH_INFO"]
            if (method == "REPORT" and b"calendar-multiget" in body) or (
                method == "GET" and path.rsplit("/", 1)[-1] in self.broken
            ):
                self.requests.append((method, path, 500))
                start_response("500 Internal Server Error", [("Content-Type", "text/plain")])
                return [b"this server fails here"]
            return radicale_app(environ, start_response)

        return failing


@pytest.fixture
def no_multiget(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[NoMultiget]:
    monkeypatch.setenv(PASSWORD_VARIABLE, PASSWORD)
    (tmp_path / "radicale").mkdir()
    server = NoMultiget(root=tmp_path / "radicale", port=free_port())
    server.broken = set()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_a_failing_multiget_falls_back_to_one_get_an_object_and_a_failed_get_is_tried_again(
    loaded: Store, tmp_path: Path, no_multiget: NoMultiget
) -> None:
    put(no_multiget, "Missions", "crm.ics", MISSION)
    put(no_multiget, "Missions", "meeting.ics", MEETING)
    settings = settings_for(tmp_path, no_multiget, "Missions")
    no_multiget.broken = {"meeting.ics"}
    no_multiget.reset_counts()

    report = sync_calendars(loaded, settings, AT)
    failed_multiget = [r for r in no_multiget.requests if r[0] == "REPORT" and r[2] == 500]
    assert len(failed_multiget) == 1, no_multiget.requests
    gets = sorted(path.rsplit("/", 1)[1] for method, path, status in no_multiget.requests
                  if method == "GET" and status != 401)  # fmt: skip  # 401: the login's challenge
    assert gets == ["crm.ics", "meeting.ics"], no_multiget.requests
    assert report.failed == [], "an object the server fails on is not the calendar's failure"
    assert "acme-crm" in missions(loaded)
    ((url, reason),) = report.skipped
    assert url.endswith("/meeting.ics")
    assert reason == "not fetched: GET answered 500 Internal Server Error; tried again next sync"
    assert report.notices == ["calendar 'Missions': 1 object could not be fetched; "
                              "tried again next sync"]  # fmt: skip

    no_multiget.broken = set()
    again = sync_calendars(loaded, settings, paris(2026, 11, 23, 10))
    assert (again.skipped, again.failed, again.meetings) == ([], [], 2)


def test_a_server_out_of_reach_is_said_and_tick_delivers_from_what_is_stored(
    cli: RunCli, home: Path, dav: DavServer
) -> None:
    put(dav, "Missions", "crm.ics", MISSION)
    (home / "followupd.toml").write_text(config_text(dav, "Missions"), encoding="utf-8")
    (home / "data.toml").write_text(ACME, encoding="utf-8")
    assert cli("init").code == 0
    assert cli("import", home / "data.toml").code == 0
    assert cli("sync", "--now", "2026-11-23T09:00").code == 0
    dav.stop()

    synced = cli("sync", "--now", "2026-11-24T09:00")
    assert synced.code == 69, synced
    assert f"note: calendar 'Missions' ({dav.url}) not synced: " in synced.out, synced.out
    ticked = cli("tick", "--now", "2026-12-01T10:00", "--json")
    assert ticked.code == 69, ticked
    assert f"followupd: calendar 'Missions' ({dav.url}) not synced: " in ticked.err
    states = {item["key"]: item["state"] for item in json.loads(ticked.out)["followups"]}
    assert states.get("deposit_due:acme-crm:request") == "sent", "from the mission stored"


# -- point 4: one name, two calendars; a calendar named by its URL or path -------------------
def test_two_calendars_with_one_name_are_refused_with_both_urls_the_others_synced(
    cli: RunCli, home: Path, dav: DavServer
) -> None:
    urls = two_calendars_named(dav, "Rendez-vous")
    put(dav, "Missions", "crm.ics", MISSION)
    (home / "followupd.toml").write_text(
        config_text(dav, "Missions", "Rendez-vous"), encoding="utf-8"
    )
    (home / "data.toml").write_text(ACME, encoding="utf-8")
    assert cli("init").code == 0
    assert cli("import", home / "data.toml").code == 0

    checked = cli("check")
    assert checked.code == 69, checked
    (line,) = [line for line in checked.out.splitlines() if "'Rendez-vous'" in line]
    assert "FAILED" in line and all(url in line for url in urls), line
    assert "calendar 'Missions' ok" in checked.out

    synced = cli("sync", "--now", "2026-11-23T09:00")
    assert synced.code == 69, synced
    assert "missions: 1 created" in synced.out, "the other calendar is synced"
    assert all(url in synced.out for url in urls), synced.out

    ticked = cli("tick", "--now", "2026-12-01T10:00", "--json")
    assert ticked.code == 69, ticked
    assert all(url in ticked.err for url in urls), ticked.err
    states = {item["key"]: item["state"] for item in json.loads(ticked.out)["followups"]}
    assert states.get("deposit_due:acme-crm:request") == "sent", "tick still delivers"


def test_a_calendar_is_named_by_its_url_or_its_path_and_synced_once(
    loaded: Store, tmp_path: Path, dav: DavServer
) -> None:
    two_calendars_named(dav, "Missions")
    with app_of(dav) as app:
        for calendar in app.client.principal().calendars():  # put by URL: their names are one
            path = str(calendar.url.canonical())
            body = MISSION if path.endswith("/missions-a/") else MEETING
            response = app.client.put(path + "object.ics", body, {"Content-Type": "text/calendar"})
            assert response.status in (201, 204)
    by_url = f"{dav.url}{USER}/missions-a/"
    by_path = f"/{USER}/missions-b"  # without its trailing slash, as a user may write it
    settings = settings_for(tmp_path, dav, by_url, by_path, f"/{USER}/missions-a/")

    report = sync_calendars(loaded, settings, AT)
    assert report.failed == [], report.failed
    assert sorted(c.name for c in report.calendars) == sorted([by_url, by_path]), "synced once"
    assert "acme-crm" in missions(loaded)
    assert report.meetings == 2  # jdupont is the contact of acme-audit and acme-crm


def test_the_write_calendar_by_path_and_an_ambiguous_one_holds_its_tasks_back(
    cli: RunCli, home: Path, dav: DavServer
) -> None:
    urls = two_calendars_named(dav, "Suivi")
    data = ACME + (
        '[[missions]]\nkey = "acme-crm"\nclient = "acme"\ntitle = "Refonte du CRM"\n'
        'contact = "jdupont"\nstart = 2026-12-01\n'
    )  # no contract: a reminder by email and a task in the calendar from 2026-11-24
    (home / "data.toml").write_text(data, encoding="utf-8")
    config = home / "followupd.toml"
    config.write_text(config_text(dav, more='write_calendar = "Suivi"\n'), encoding="utf-8")
    assert cli("init").code == 0
    assert cli("import", home / "data.toml").code == 0

    checked = cli("check")
    assert checked.code == 69, checked
    assert "write calendar 'Suivi' unusable (see below)" in checked.out
    (line,) = [line for line in checked.out.splitlines() if line.startswith("calendar 'Suivi'")]
    assert "FAILED 2 calendars are named 'Suivi'" in line and all(url in line for url in urls)

    ticked = cli("tick", "--now", "2026-11-24T10:00", "--json")
    assert ticked.code == 69, ticked  # a task is retrying
    items = {item["key"]: item for item in json.loads(ticked.out)["followups"]}
    task = items["contract_missing:acme-crm:2026-11-24:calendar"]
    assert task["state"] == "pending", task
    assert all(url in task["reason"] for url in urls), task["reason"]
    assert items["contract_missing:acme-crm:2026-11-24:email"]["state"] == "sent"

    config.write_text(
        config_text(dav, more=f'write_calendar = "/{USER}/suivi-b/"\n'), encoding="utf-8"
    )
    ticked = cli("tick", "--now", "2026-11-24T11:00", "--json")  # its next attempt is due
    assert ticked.code == 0, ticked
    items = {item["key"]: item for item in json.loads(ticked.out)["followups"]}
    assert items["contract_missing:acme-crm:2026-11-24:calendar"]["state"] == "sent", items
    with app_of(dav) as app:
        written = {
            str(calendar.url.canonical()): list(calendar.get_objects_by_sync_token())
            for calendar in app.client.principal().calendars()
        }
    assert written[urls[0]] == [], written
    assert any("contract_missing-acme-crm" in str(item.url) for item in written[urls[1]])


# -- the daemon: one object never makes it unhealthy; an ambiguous name does, until fixed ---
@pytest.mark.slow
def test_the_daemon_is_healthy_despite_a_freebusy_and_says_which_calendar_is_ambiguous(
    home: Path, xandikos: DavServer
) -> None:
    put(xandikos, "Missions", "crm.ics", MISSION)
    put(xandikos, "Missions", "freebusy.ics", HEAD + FREEBUSY + TAIL)
    twins = two_calendars_named(xandikos, "Rendez-vous")
    port = free_port()
    more = f'[feed]\nlisten = "127.0.0.1:{port}"\n[service]\nsync_every_seconds = 10\n'
    text = config_text(xandikos, "Missions", "Rendez-vous", more=more)
    (home / "followupd.toml").write_text(text, encoding="utf-8")
    (home / "data.toml").write_text(ACME, encoding="utf-8")
    assert followupd(home, "init").returncode == 0
    assert followupd(home, "import", str(home / "data.toml")).returncode == 0

    daemon = subprocess.Popen(
        [sys.executable, "-m", "followupd", "--config", str(home / "followupd.toml"), "run"],
        env=environment(home), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:

        def health() -> tuple[int, str]:
            try:
                status, body, _ = get(f"http://127.0.0.1:{port}/healthz")
            except OSError:
                return 0, ""
            return status, body.decode()

        wait_for(lambda: "sync failed" in health()[1], timeout=30)
        status, said = health()
        assert status == 503
        assert all(twin in said for twin in twins), said
        assert "freebusy" not in said
        listed = followupd(home, "missions")
        assert "acme-crm" in listed.stdout, "the other calendar was synced"

        with app_of(xandikos) as app:
            app.client.calendar(url=twins[1]).set_properties([dav.DisplayName("Rendez-vous 2")])
        wait_for(lambda: health()[0] == 200, timeout=30)  # the next sync, in 10 s
    finally:
        daemon.send_signal(signal.SIGTERM)
        output, _ = daemon.communicate(timeout=30)
    assert "calendar 'Rendez-vous' not synced: 2 calendars are named" in output, output
    assert "Traceback" not in output, output
    assert PASSWORD not in output


# -- point 6: the calendar stack's log lines --------------------------------------------
NO_STAMP = HEAD + "BEGIN:VEVENT\r\nUID:no-stamp\r\nDTSTART:20261201T090000Z\r\nSUMMARY:x\r\n"
NO_STAMP += "END:VEVENT\r\n" + TAIL  # caldav "repairs" it, and says so with a diff


@pytest.mark.slow
def test_the_calendar_librarys_warnings_are_not_in_syncs_output(
    home: Path, xandikos: DavServer
) -> None:
    put(xandikos, "Missions", "no-stamp.ics", NO_STAMP)
    (home / "followupd.toml").write_text(config_text(xandikos, "Missions"), encoding="utf-8")
    assert followupd(home, "init").returncode == 0
    synced = followupd(home, "sync", "--now", "2026-11-23T09:00")
    assert synced.returncode == 0, synced
    assert "Ical data was modified" not in synced.stdout + synced.stderr
    assert "caldav" not in synced.stderr, synced.stderr


def test_library_log_lines_go_through_followupds_logging_at_debug_level(
    caplog: pytest.LogCaptureFixture,
) -> None:
    library = logging.getLogger("caldav")
    try:
        logs.route_libraries(debug=False)
        with caplog.at_level(logging.INFO):
            library.warning("Ical data was modified to avoid compatibility issues")
        assert caplog.records == [], "shown only with --debug"

        logs.route_libraries(debug=True)
        with caplog.at_level(logging.DEBUG):
            library.warning("Ical data was modified to avoid compatibility issues")
        ((name, level, message),) = caplog.record_tuples
        assert (name, level) == ("followupd.libraries", logging.DEBUG)
        assert message == "caldav warning: Ical data was modified to avoid compatibility issues"
    finally:
        library.handlers.clear()
        library.propagate = True
        library.setLevel(logging.NOTSET)


def test_the_libraries_python_warnings_are_logged_at_debug_level_not_printed(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    """icalendar warns (GloballyUniqueTZIDGuessed) about a vendor's zone name: not on stderr."""
    warnings_log = logging.getLogger("py.warnings")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            logging.captureWarnings(False)  # an earlier test's CLI hooked pytest's showwarning
            logs.route_libraries(debug=True)
            with caplog.at_level(logging.DEBUG):
                warnings.warn("a time zone name was guessed", UserWarning, stacklevel=1)
        assert capsys.readouterr().err == ""
        ((name, level, message),) = caplog.record_tuples
        assert (name, level) == ("followupd.libraries", logging.DEBUG)
        assert "UserWarning: a time zone name was guessed" in message
    finally:
        logging.captureWarnings(False)
        warnings_log.handlers.clear()
        warnings_log.propagate = True
        warnings_log.setLevel(logging.NOTSET)


def test_a_path_to_no_calendar_is_said_by_check(cli: RunCli, home: Path, dav: DavServer) -> None:
    calendar_url(dav, "Missions")
    config = config_text(dav, "Missions", f"/{USER}/nowhere/", f"/{USER}/")
    (home / "followupd.toml").write_text(config, encoding="utf-8")
    assert cli("init").code == 0
    checked = cli("check")
    assert checked.code == 69, checked
    assert f"calendar '/{USER}/nowhere/' FAILED not found on the server" in checked.out
    assert f"calendar '/{USER}/' FAILED not usable: NotACalendar: {dav.url}{USER}/ is not a" in (
        checked.out
    )
    assert "calendar 'Missions' ok     reachable, syncs by token; 0 objects read" in checked.out
