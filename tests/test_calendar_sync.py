"""The calendar as a source, against a real CalDAV server (Radicale on loopback), both databases."""

from __future__ import annotations

import asyncio
import base64
import logging
import random
import socket
from datetime import date, datetime
from pathlib import Path
from typing import NoReturn

import pytest
from icalendar import Calendar
from sqlalchemy import select, update

from followupd.config.load import parse_settings
from followupd.config.rule_options import RuleOptions
from followupd.config.settings import Settings
from followupd.delivery.deliverer import Deliverer, DeliveryReport
from followupd.engine.evaluation import evaluate
from followupd.rules.base import Rule
from followupd.rules.registry import enabled_rules
from followupd.sources.caldav import sync as calendar_sync
from followupd.sources.caldav.sync import SOURCE, SyncReport, sync_calendars
from followupd.sources.files.importer import import_files
from followupd.store.db import Store
from followupd.store.models import Mission, SyncState, Touchpoint
from followupd.store.updates import resolve_issue
from tests.conftest import MINIMAL_CONFIG, RunCli
from tests.davserver import (
    PASSWORD,
    PASSWORD_VARIABLE,
    USER,
    CalendarApp,
    DavServer,
    event,
    self_signed,
)
from tests.rulekit import ACME, PARIS, item, outbox, paris

DATA = ACME


def at(month: int, day: int, hour: int = 9) -> datetime:
    return paris(2026, month, day, hour)


@pytest.fixture
def loaded(store: Store, tmp_path: Path) -> Store:
    path = tmp_path / "data.toml"
    path.write_text(DATA, encoding="utf-8")
    import_files(store, [path], PARIS)
    return store


def settings_text(dav: DavServer) -> str:
    return MINIMAL_CONFIG + (
        f'[caldav]\nurl = "{dav.url}"\nusername = "{USER}"\n'
        f'password_env = "{PASSWORD_VARIABLE}"\nread_calendars = ["Missions"]\n'
    )


def settings_for(tmp_path: Path, dav: DavServer) -> Settings:
    return parse_settings(settings_text(dav), tmp_path / "followupd.toml", {"HOME": str(tmp_path)})


MISSION = event(
    "mission-1",
    "[mission] Refonte du CRM",
    "key: acme-crm\nclient: acme\ncontact: jdupont\ncontract_signed: 2026-11-20\n"
    "deposit_amount: 3000\nLieu : Lyon, dans leurs locaux",
    "DTSTART;VALUE=DATE:20261201",
    "DTEND;VALUE=DATE:20270301",
)


def rules_named(settings: Settings, name: str) -> list[Rule[RuleOptions]]:
    return [rule for rule in enabled_rules(settings.rules) if rule.name == name]


def sync(store: Store, settings: Settings, when: datetime) -> SyncReport:
    return sync_calendars(store, settings, when)


def test_a_mission_event_creates_updates_and_its_deletion_is_reported(
    loaded: Store, tmp_path: Path, dav: DavServer
) -> None:
    app, settings = CalendarApp(dav), settings_for(tmp_path, dav)
    app.put("Missions", "crm.ics", MISSION)
    report = sync(loaded, settings, at(11, 23))
    assert (report.missions_created, report.skipped) == (1, [])
    with loaded.session() as session:
        mission = session.scalars(select(Mission).where(Mission.key == "acme-crm")).one()
        assert (mission.title, mission.start, mission.end) == (
            "Refonte du CRM",
            date(2026, 12, 1),
            date(2027, 2, 28),
        )
        assert mission.contract_signed == date(2026, 11, 20)
        assert str(mission.deposit_amount) == "3000.00"
        assert mission.contact is not None and mission.contact.key == "jdupont"

    edited = MISSION.replace("deposit_amount: 3000", "deposit_amount: 4500\\nstatus: proposed")
    app.put("Missions", "crm.ics", edited)
    report = sync(loaded, settings, at(11, 24))
    assert (report.missions_created, report.missions_updated) == (0, 1)
    with loaded.session() as session:
        mission = session.scalars(select(Mission).where(Mission.key == "acme-crm")).one()
        assert (str(mission.deposit_amount), mission.status) == ("4500.00", "proposed")

    app.delete("Missions", "crm.ics")
    report = sync(loaded, settings, at(11, 25))
    assert [calendar.deleted for calendar in report.calendars] == [1]
    assert report.notices == [
        "the mission event of 'acme-crm' was deleted from 'Missions'; "
        "the mission is kept (set its status to closed if it is over)"
    ]
    with loaded.session() as session:
        assert session.scalars(select(Mission.key).where(Mission.key == "acme-crm")).one()


def test_a_past_meeting_with_a_contact_resets_the_checkpoint_reminder(
    loaded: Store, tmp_path: Path, dav: DavServer
) -> None:
    app, settings = CalendarApp(dav), settings_for(tmp_path, dav)
    checkpoint = [
        rule for rule in enabled_rules(settings.rules) if rule.name == "checkpoint_meeting"
    ]
    with loaded.session() as session:
        evaluate(session, settings, checkpoint, at(12, 1))
    due = [key for key in outbox(loaded) if key.startswith("checkpoint_meeting:acme-audit:")]
    assert due, "no meeting since the start: a checkpoint reminder is due"

    app.put(
        "Missions", "point.ics",
        event("meet-1", "Point d'étape", "", "DTSTART;TZID=Europe/Paris:20261130T140000",
              "DURATION:PT1H", "ATTENDEE;CN=Jeanne Dupont:mailto:Jeanne.Dupont@acme.example"),
    )  # fmt: skip
    report = sync(loaded, settings, at(12, 1, 10))
    assert report.meetings == 1
    with loaded.session() as session:
        (meeting,) = session.scalars(select(Touchpoint).where(Touchpoint.kind == "meeting"))
        assert (meeting.mission.key, meeting.contact and meeting.contact.key) == (
            "acme-audit",
            "jdupont",
        )
        assert meeting.at == at(11, 30, 14)
        evaluate(session, settings, checkpoint, at(12, 1, 10))
    cancelled = outbox(loaded)[due[0]]
    assert (cancelled.state, cancelled.reason) == ("cancelled", "meeting held on 2026-11-30")

    # the meeting is moved to next week: not held yet, so its touchpoint goes
    app.put(
        "Missions", "point.ics",
        event("meet-1", "Point d'étape", "", "DTSTART;TZID=Europe/Paris:20261208T140000",
              "DURATION:PT1H", "ATTENDEE:mailto:jeanne.dupont@acme.example"),
    )  # fmt: skip
    sync(loaded, settings, at(12, 1, 11))
    with loaded.session() as session:
        assert session.scalars(select(Touchpoint).where(Touchpoint.kind == "meeting")).all() == []


def test_a_call_task_completed_in_the_app_is_a_call_and_is_left_alone(
    loaded: Store, tmp_path: Path, dav: DavServer
) -> None:
    app, settings = CalendarApp(dav), settings_for(tmp_path, dav)
    issue = tmp_path / "issue.toml"
    issue.write_text(
        '[[issues]]\nkey = "late-data"\nmission = "acme-audit"\n'
        'opened = 2026-12-01T10:00:00+01:00\nseverity = "high"\nsummary = "Données en retard"\n'
        "client_informed = 2026-12-01T11:00:00+01:00\n",
        encoding="utf-8",
    )
    import_files(loaded, [issue], PARIS)
    escalate = rules_named(settings, "escalate_by_phone")
    with loaded.session() as session:
        evaluate(session, settings, escalate, at(12, 2))
    deliverer = Deliverer(loaded, settings, "w1", rng=random.Random(1))
    assert asyncio.run(deliverer.run(at(12, 2))).sent == ["escalate_by_phone:late-data:call"]
    href = item(loaded, "escalate_by_phone:late-data:call").href
    assert href is not None

    # on the phone, the user ticks the task off
    text, etag = app.get(href)
    calendar = Calendar.from_ical(text)
    (task,) = calendar.todos
    task.pop("STATUS")
    task.add("STATUS", "COMPLETED")
    task.add("COMPLETED", at(12, 2, 15))
    response = app.client.put(
        href, calendar.to_ical(), {"If-Match": etag, "Content-Type": "text/calendar"}
    )
    assert response.status == 204

    report = sync(loaded, settings, at(12, 2, 16))
    assert report.user.completed == ["escalate_by_phone:late-data:call"]
    done = item(loaded, "escalate_by_phone:late-data:call")
    assert (done.state, done.reason) == ("completed", "completed in your calendar")
    with loaded.session() as session:
        (call,) = session.scalars(select(Touchpoint).where(Touchpoint.kind == "call"))
        assert (call.at, call.contact and call.contact.key) == (at(12, 2, 15), "jdupont")
        evaluate(session, settings, escalate, at(12, 3))
    assert [key for key in outbox(loaded) if key.startswith("escalate")] == [
        "escalate_by_phone:late-data:call"
    ], "no second call task for the same issue"
    with loaded.session() as session:
        resolve_issue(session, "late-data", at(12, 3, 10))
    closing = DeliveryReport()
    asyncio.run(deliverer.close_vanished(at(12, 3, 11), closing))
    assert closing.closed == {}, "done in the calendar already: not closed again"
    (task,) = Calendar.from_ical(app.get(href)[0]).todos
    assert (str(task["STATUS"]), int(task.get("SEQUENCE", 0))) == ("COMPLETED", 0)


def test_a_sync_without_changes_transfers_no_object_and_one_change_fetches_one(
    loaded: Store, tmp_path: Path, dav: DavServer
) -> None:
    app, settings = CalendarApp(dav), settings_for(tmp_path, dav)
    for n in range(30):
        app.put(
            "Missions", f"e{n}.ics",
            event(f"e{n}", f"Atelier {n}", "", f"DTSTART:202612{n % 28 + 1:02d}T090000Z",
                  "DURATION:PT2H"),
        )  # fmt: skip
    first = sync(loaded, settings, at(11, 23))
    assert [(c.mode, c.fetched) for c in first.calendars] == [("full", 30)]

    dav.reset_counts()
    again = sync(loaded, settings, at(11, 23, 10))
    assert [(c.mode, c.fetched, c.deleted) for c in again.calendars] == [("incremental", 0, 0)]
    assert dav.calendar_data_sent == 0, dav.requests
    assert "GET" not in {method for method, _, _ in dav.requests}

    app.put("Missions", "e7.ics", event("e7", "Atelier 7 (déplacé)", "",
                                        "DTSTART:20261230T090000Z", "DURATION:PT2H"))  # fmt: skip
    dav.reset_counts()
    once = sync(loaded, settings, at(11, 23, 11))
    assert [(c.mode, c.fetched) for c in once.calendars] == [("incremental", 1)]
    assert dav.calendar_data_sent == 1, "exactly the changed object crossed the wire"


def test_a_token_the_server_rejects_falls_back_to_etags_then_recovers(
    loaded: Store, tmp_path: Path, dav: DavServer
) -> None:
    app, settings = CalendarApp(dav), settings_for(tmp_path, dav)
    for n in range(3):
        app.put("Missions", f"e{n}.ics",
                event(f"e{n}", f"Atelier {n}", "", "DTSTART:20261201T090000Z"))  # fmt: skip
    sync(loaded, settings, at(11, 23))
    with loaded.session() as session:
        session.execute(
            update(SyncState)
            .where(SyncState.source.startswith(SOURCE))
            .values(token="http://radicale.org/ns/sync/not-a-token")
        )
    app.put("Missions", "e1.ics", event("e1", "Atelier 1 bis", "", "DTSTART:20261202T090000Z"))
    app.delete("Missions", "e2.ics")
    report = sync(loaded, settings, at(11, 24))
    assert [(c.mode, c.fetched, c.deleted) for c in report.calendars] == [("etag comparison", 1, 1)]
    recovered = sync(loaded, settings, at(11, 25))
    assert [(c.mode, c.fetched) for c in recovered.calendars] == [("full", 0)]
    incremental = sync(loaded, settings, at(11, 26))
    assert [c.mode for c in incremental.calendars] == ["incremental"]


def test_check_tells_each_calendar_reachable_and_syncing_by_token(
    cli: RunCli, home: Path, dav: DavServer
) -> None:
    CalendarApp(dav).calendar("Missions")
    config = home / "followupd.toml"
    text = settings_text(dav).replace('["Missions"]', '["Missions", "Rendez-vous"]')
    config.write_text(text, encoding="utf-8")
    assert cli("init").code == 0
    checked = cli("check")
    assert checked.code == 69, checked
    assert "calendar 'Missions'" in checked.out
    assert "reachable, syncs by token" in checked.out
    assert "calendar 'Rendez-vous'" in checked.out
    assert "not found on the server" in checked.out
    assert ": reachable, 1 calendar, write calendar " in checked.out, "one, not '1 calendars'"
    assert PASSWORD not in checked.out + checked.err


def test_a_fake_token_left_by_the_library_is_never_sent_back(
    loaded: Store, tmp_path: Path, dav: DavServer
) -> None:
    app, settings = CalendarApp(dav), settings_for(tmp_path, dav)
    for n in range(5):
        app.put(
            "Missions", f"e{n}.ics", event(f"e{n}", f"Atelier {n}", "", "DTSTART:20261201T090000Z")
        )
    sync(loaded, settings, at(11, 23))
    with loaded.session() as session:
        session.execute(
            update(SyncState).where(SyncState.source.startswith(SOURCE)).values(token="fake-1")
        )
    dav.reset_counts()
    report = sync(loaded, settings, at(11, 24))
    assert [(c.mode, c.fetched) for c in report.calendars] == [("full", 0)]
    assert dav.calendar_data_sent == 0, "a listing of ETags, not of every object"


def test_a_meeting_about_a_mission_made_in_the_same_sync_counts(
    loaded: Store, tmp_path: Path, dav: DavServer
) -> None:
    app, settings = CalendarApp(dav), settings_for(tmp_path, dav)
    past_mission = MISSION.replace("20261201", "20261101")
    app.put("Missions", "z-crm.ics", past_mission)  # fetched after the meeting
    app.put(
        "Missions", "a-point.ics",
        event("meet-2", "Lancement [acme-crm]", "", "DTSTART;TZID=Europe/Paris:20261116T100000",
              "DTEND;TZID=Europe/Paris:20261116T113000"),
    )  # fmt: skip
    report = sync(loaded, settings, at(11, 23))
    assert (report.missions_created, report.meetings) == (1, 1)
    with loaded.session() as session:
        (meeting,) = session.scalars(select(Touchpoint).where(Touchpoint.kind == "meeting"))
        assert (meeting.mission.key, meeting.at) == ("acme-crm", at(11, 16, 10))


def test_overlong_uids_and_keys_are_stored_shortened(
    loaded: Store, tmp_path: Path, dav: DavServer
) -> None:
    app, settings = CalendarApp(dav), settings_for(tmp_path, dav)
    app.put(
        "Missions", "long.ics",
        event("u" * 1500, "[mission] Trop long", "key: " + "k" * 200 + "\\nclient: acme",
              "DTSTART;VALUE=DATE:20261201"),
    )  # fmt: skip
    report = sync(loaded, settings, at(11, 23))
    assert report.missions_created == 0
    ((url, reason),) = report.skipped
    assert url.endswith("long.ics") and "key" in reason


@pytest.mark.parametrize("password", [True, False], ids=["wrong-password", "no-password"])
def test_check_says_what_to_set_when_the_login_is_refused(
    cli: RunCli, home: Path, dav: DavServer, monkeypatch: pytest.MonkeyPatch, password: bool
) -> None:
    text = settings_text(dav)
    if password:
        monkeypatch.setenv(PASSWORD_VARIABLE, "not-the-password")
    else:
        text = "\n".join(line for line in text.splitlines() if "password" not in line) + "\n"
    (home / "followupd.toml").write_text(text, encoding="utf-8")
    checked = cli("check")
    assert checked.code == 69, checked
    line = next(line for line in checked.out.splitlines() if "access refused" in line)
    assert "AuthorizationError" not in checked.out
    if password:
        assert "check the username and the password" in line
    else:
        assert "no password is configured" in checked.out
        assert "password_file or password_env" in checked.out


def test_a_sync_by_plain_requests_never_logs_the_password(
    loaded: Store, tmp_path: Path, dav: DavServer, caplog: pytest.LogCaptureFixture
) -> None:
    app, settings = CalendarApp(dav), settings_for(tmp_path, dav)
    app.put("Missions", "crm.ics", MISSION)
    sync(loaded, settings, at(11, 23))
    app.put("Missions", "crm.ics", MISSION.replace("deposit_amount: 3000", "deposit_amount: 4500"))
    with caplog.at_level(logging.DEBUG):
        report = sync(loaded, settings, at(11, 24))
    assert (report.missions_updated, report.failed) == (1, [])
    login = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    assert caplog.text, "logged at debug level"
    assert PASSWORD not in caplog.text
    assert login not in caplog.text


def test_a_sync_over_tls_trusts_only_the_ca_file_plain_requests_or_not(
    loaded: Store, tmp_path: Path, dav: DavServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    CalendarApp(dav).put("Missions", "crm.ics", MISSION)
    certificate, key = self_signed(tmp_path / "server")
    other, _ = self_signed(tmp_path / "other")
    dav.serve_tls(certificate, key)

    def over_tls(ca_file: Path) -> Settings:
        text = settings_text(dav).replace("[caldav]\n", f'[caldav]\nca_file = "{ca_file}"\n')
        return parse_settings(text, tmp_path / "followupd.toml", {"HOME": str(tmp_path)})

    first = sync(loaded, over_tls(certificate), at(11, 23))
    assert ([c.mode for c in first.calendars], first.missions_created) == (["full"], 1)
    with monkeypatch.context() as patched:  # asked by plain requests, over TLS
        patched.setattr(calendar_sync, "dav_client", library_forbidden)
        again = sync(loaded, over_tls(certificate), at(11, 23, 10))
    assert ([(c.mode, c.fetched) for c in again.calendars], again.failed) == (
        [("incremental", 0)],
        [],
    )
    refused = sync(loaded, over_tls(other), at(11, 23, 11))
    assert refused.calendars == []
    assert len(refused.failed) == 2, refused.failed  # the account's two calendars
    assert all("CERTIFICATE_VERIFY_FAILED" in failed for failed in refused.failed), refused.failed


def library_forbidden(*_: object) -> NoReturn:
    raise AssertionError("the caldav library was asked")


def test_a_server_that_does_not_answer_is_waited_for_once_not_again_through_the_library(
    loaded: Store, tmp_path: Path, dav: DavServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_for(tmp_path, dav)
    CalendarApp(dav).put("Missions", "crm.ics", MISSION)
    sync(loaded, settings, at(11, 23))
    dav.stop()
    monkeypatch.setattr(calendar_sync, "TIMEOUT_SECONDS", 0.5)
    monkeypatch.setattr(calendar_sync, "dav_client", library_forbidden)
    with socket.socket() as silent:  # takes connections on the server's port, never answers
        silent.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        silent.bind(("127.0.0.1", dav.port))
        silent.listen(8)
        report = sync(loaded, settings, at(11, 24))
    assert report.calendars == []
    assert len(report.failed) == 2, report.failed  # the account's two calendars
    assert all("no answer within 0.5 s" in failed for failed in report.failed), report.failed
