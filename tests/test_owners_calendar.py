"""Owners' calendars in a real CalDAV server (Radicale): missions read from each, tasks written.

Claire and Bob share the agency's account (Claire's login here); in the last
test Bob brings an account of his own on the same server.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from caldav.davclient import DAVClient
from icalendar import Calendar
from sqlalchemy import select

from followupd.config.load import parse_settings
from followupd.config.settings import Settings
from followupd.sources.caldav.sync import sync_calendars
from followupd.store.db import Store
from followupd.store.models import Mission
from tests.conftest import RunCli
from tests.davserver import PASSWORD_VARIABLE, USER, CalendarApp, DavServer, event
from tests.rulekit import ACME, BOB, CLAIRE, imported, item, paris
from tests.test_owners import tick

BOB_PASSWORD, BOB_VARIABLE = "bob-dav-secret", "FOLLOWUPD_TEST_BOB_PASSWORD"
EACH = 'reminders_by_email = "each"\n'  # these tests follow one reminder at a time
OWNERS = CLAIRE + EACH + 'read_calendars = ["Missions Claire"]\n\n' + BOB + EACH
BOB_READS = 'read_calendars = ["Missions Bob"]\n'


def mission_event(key: str, *lines: str) -> str:
    body = "\n".join((f"key: {key}", "client: acme", *lines))
    return event(key, f"[mission] {key}", body, "DTSTART;VALUE=DATE:20261201")


def settings_text(dav: DavServer, bob: str = BOB_READS) -> str:
    return (
        f'[caldav]\nurl = "{dav.url}"\nusername = "{USER}"\n'
        f'password_env = "{PASSWORD_VARIABLE}"\nread_calendars = ["Shared"]\n'
    ) + OWNERS + bob  # fmt: skip


def settings_for(tmp_path: Path, dav: DavServer, bob: str = BOB_READS) -> Settings:
    text = settings_text(dav, bob)
    return parse_settings(text, tmp_path / "followupd.toml", {"HOME": str(tmp_path)})


@pytest.fixture
def loaded(store: Store, tmp_path: Path) -> Store:
    return imported(store, tmp_path, ACME)


def owners(store: Store) -> dict[str, str | None]:
    with store.session() as session:
        return dict(session.execute(select(Mission.key, Mission.owner)).all())


def test_a_mission_event_belongs_to_the_owner_of_its_calendar(
    loaded: Store, tmp_path: Path, dav: DavServer
) -> None:
    app = CalendarApp(dav)
    app.put("Missions Bob", "b1.ics", mission_event("bob-one"))
    app.put("Missions Bob", "b2.ics", mission_event("for-claire", "owner: claire"))
    app.put("Missions Claire", "c1.ics", mission_event("claire-one"))
    app.put("Shared", "s1.ics", mission_event("shared-one"))
    app.put("Shared", "s2.ics", mission_event("shared-bob", "owner: bob"))
    app.put("Missions Bob", "bad.ics", mission_event("bad-owner", "owner: bobby"))
    report = sync_calendars(loaded, settings_for(tmp_path, dav), paris(2026, 11, 23))
    assert report.missions_created == 5
    ((url, reason),) = report.skipped
    assert url.endswith("/bad.ics")
    assert reason == (
        "mission event '[mission] bad-owner': "
        "refers to owner 'bobby', which is not in the config; did you mean 'bob'?"
    )
    assert owners(loaded) == {
        "acme-audit": None,
        "bob-one": "bob",
        "for-claire": "claire",
        "claire-one": "claire",
        "shared-one": None,  # the shared calendars belong to no one: the first owner
        "shared-bob": "bob",
    }
    names = [calendar.name for calendar in report.calendars]
    assert names == ["Shared", "Missions Claire", "Missions Bob"]


def test_a_task_completed_in_an_owners_calendar_is_read_back(
    loaded: Store, tmp_path: Path, dav: DavServer
) -> None:
    crm = '[[missions]]\nkey = "acme-crm"\nclient = "acme"\ntitle = "CRM"\nstart = 2026-11-16\n'
    imported(loaded, tmp_path, crm + 'owner = "bob"\ncontact = "jdupont"\n', ["claire", "bob"])
    settings = settings_for(tmp_path, dav)
    report = tick(loaded, settings, paris(2026, 11, 23, 10))  # contract_missing for bob
    task = "contract_missing:acme-crm:2026-11-23:calendar"
    assert task in report.sent
    href = item(loaded, task).href
    assert href is not None and "/followupd-bob/" in href
    app = CalendarApp(dav)
    text, etag = app.get(href)
    calendar = Calendar.from_ical(text)
    (todo,) = calendar.todos
    todo.pop("STATUS")
    todo.add("STATUS", "COMPLETED")
    response = app.client.put(
        href, calendar.to_ical(), {"If-Match": etag, "Content-Type": "text/calendar"}
    )
    assert response.status == 204
    synced = sync_calendars(loaded, settings, paris(2026, 11, 23, 12))
    assert synced.user.completed == [task]
    assert item(loaded, task).state == "completed"


@pytest.mark.slow
def test_an_owner_with_an_account_of_their_own(
    loaded: Store, tmp_path: Path, dav: DavServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    with (dav.root / "users").open("a", encoding="utf-8") as users:
        users.write(f"bob:{BOB_PASSWORD}\n")
    monkeypatch.setenv(BOB_VARIABLE, BOB_PASSWORD)
    account = (
        'read_calendars = ["Clients"]\n'
        f'[owners.caldav]\nurl = "{dav.url}"\nusername = "bob"\npassword_env = "{BOB_VARIABLE}"\n'
    )
    settings = settings_for(tmp_path, dav, account)
    bob: Any = DAVClient(url=dav.url, username="bob", password=BOB_PASSWORD)
    bob.principal().make_calendar(name="Clients", cal_id="clients")
    clients = bob.principal().calendar(name="Clients")
    clients.save_event(mission_event("acme-bob"))
    report = sync_calendars(loaded, settings, paris(2026, 11, 23))
    assert report.missions_created == 1
    assert owners(loaded)["acme-bob"] == "bob"

    sent = tick(loaded, settings, paris(2026, 11, 24, 10)).sent  # 7 days before the start
    assert sent == [
        "contract_missing:acme-bob:2026-11-24:calendar",
        "contract_missing:acme-bob:2026-11-24:email",
    ]
    written = bob.principal().calendar(name="followupd")
    (todo,) = written.search(todo=True)
    assert "UID:contract_missing:acme-bob@followupd" in todo.data.splitlines()
    claire = CalendarApp(dav).client.principal()
    assert "followupd" not in {c.get_display_name() for c in claire.calendars()}


def test_check_reaches_every_owners_calendars(cli: RunCli, home: Path, dav: DavServer) -> None:
    CalendarApp(dav).calendar("Missions Bob")
    config = home / "followupd.toml"
    config.write_text(settings_text(dav), encoding="utf-8")
    assert cli("init").code == 0
    checked = cli("check")
    assert checked.code == 69, checked  # "Shared" and "Missions Claire" do not exist
    assert "write calendars 'followupd' will be created, 'followupd-bob' will be created" in (
        checked.out
    )
    lines = {line.split(maxsplit=1)[1] for line in checked.out.splitlines() if "calendar '" in line}
    assert any(line.startswith("'Missions Bob' ok     reachable, syncs by token") for line in lines)
    assert "'Missions Claire' FAILED not found on the server" in lines
