"""COMPLETED is written in UTC (RFC 5545, 3.8.2.1), and is the time the user completed the task.

The calendar items go to a real CalDAV server (Radicale on loopback), on both
databases; the feed is built from the store as the daemon serves it.
"""

from __future__ import annotations

import asyncio
import json
import random
from datetime import UTC, datetime
from pathlib import Path

import pytest
from icalendar import Calendar
from sqlalchemy import select
from sqlalchemy.engine import URL

from followupd.channels.calendar import ical
from followupd.channels.feed.build import build_feed, feed_items
from followupd.config.load import parse_settings
from followupd.config.settings import Settings
from followupd.delivery.deliverer import Deliverer, DeliveryReport
from followupd.domain.states import CalendarState
from followupd.engine.evaluation import evaluate
from followupd.rules.registry import enabled_rules
from followupd.sources.caldav.sync import sync_calendars
from followupd.sources.files.importer import import_files
from followupd.store.db import Store
from followupd.store.models import Touchpoint
from followupd.store.updates import resolve_issue
from tests.conftest import MINIMAL_CONFIG, RunCli
from tests.davserver import PASSWORD_VARIABLE, USER, CalendarApp, DavServer
from tests.rulekit import ACME, PARIS, item, paris

CALL = "escalate_by_phone:late-data:call"
ISSUE = (
    '[[issues]]\nkey = "late-data"\nmission = "acme-audit"\n'
    'opened = 2026-12-01T10:00:00+01:00\nseverity = "high"\nsummary = "Données en retard"\n'
    "client_informed = 2026-12-01T11:00:00+01:00\n"
)


def completed_lines(text: bytes | str) -> list[str]:
    raw = text.decode() if isinstance(text, bytes) else text
    return [line for line in raw.splitlines() if line.startswith("COMPLETED")]


@pytest.fixture
def settings(tmp_path: Path, dav: DavServer) -> Settings:
    text = MINIMAL_CONFIG + (
        f'[caldav]\nurl = "{dav.url}"\nusername = "{USER}"\n'
        f'password_env = "{PASSWORD_VARIABLE}"\nread_calendars = []\n'
    )
    return parse_settings(text, tmp_path / "followupd.toml", {"HOME": str(tmp_path)})


@pytest.fixture
def called(store: Store, tmp_path: Path, settings: Settings) -> Deliverer:
    """A call task written into the owner's calendar on 2 December."""
    path = tmp_path / "data.toml"
    path.write_text(ACME + ISSUE, encoding="utf-8")
    import_files(store, [path], PARIS)
    rules = [rule for rule in enabled_rules(settings.rules) if rule.name == "escalate_by_phone"]
    with store.session() as session:
        evaluate(session, settings, rules, paris(2026, 12, 2, 9))
    deliverer = Deliverer(store, settings, "w1", rng=random.Random(1))
    assert asyncio.run(deliverer.run(paris(2026, 12, 2, 9))).sent == [CALL]
    return deliverer


def complete_in_the_app(app: CalendarApp, href: str, *lines: str) -> None:
    """What a phone app does when the task is ticked off: STATUS, and the `lines` it adds."""
    text, etag = app.get(href)
    done = text.replace("STATUS:NEEDS-ACTION", "\r\n".join(("STATUS:COMPLETED", *lines)))
    headers = {"If-Match": etag, "Content-Type": "text/calendar"}
    assert app.client.put(href, done.encode(), headers).status == 204


def feed_of(store: Store, when: datetime) -> bytes:
    with store.session() as session:
        return build_feed(feed_items(session, when, PARIS), PARIS, "followupd").body


def test_the_feed_serves_the_completion_time_the_app_wrote_in_utc(
    store: Store, settings: Settings, called: Deliverer, dav: DavServer
) -> None:
    href = item(store, CALL).href
    assert href is not None
    # written in local time, as some apps do: 15:00 in Paris, 14:00 UTC
    complete_in_the_app(CalendarApp(dav), href, "COMPLETED;TZID=Europe/Paris:20261202T150000")
    sync_calendars(store, settings, paris(2026, 12, 2, 18))
    assert item(store, CALL).completed_at == datetime(2026, 12, 2, 14, tzinfo=UTC)
    assert completed_lines(feed_of(store, paris(2026, 12, 3))) == ["COMPLETED:20261202T140000Z"]


def test_an_app_that_writes_no_completion_time_gets_the_time_it_was_seen(
    store: Store, settings: Settings, called: Deliverer, dav: DavServer
) -> None:
    href = item(store, CALL).href
    assert href is not None
    complete_in_the_app(CalendarApp(dav), href)
    sync_calendars(store, settings, paris(2026, 12, 2, 18))
    assert item(store, CALL).completed_at is None
    assert completed_lines(feed_of(store, paris(2026, 12, 3))) == ["COMPLETED:20261202T170000Z"]


def test_a_task_followupd_completes_says_when_in_utc_in_the_calendar_and_the_feed(
    store: Store, called: Deliverer, dav: DavServer
) -> None:
    with store.session() as session:
        resolve_issue(session, "late-data", paris(2026, 12, 3, 10))
    closing = DeliveryReport()
    asyncio.run(called.close_vanished(paris(2026, 12, 3, 11), closing))
    assert list(closing.closed) == [CALL]
    href = item(store, CALL).href
    assert href is not None
    text, _ = CalendarApp(dav).get(href)
    assert completed_lines(text) == ["COMPLETED:20261203T100000Z"]
    (task,) = Calendar.from_ical(text).todos
    assert str(task["STATUS"]) == "COMPLETED"
    assert completed_lines(feed_of(store, paris(2026, 12, 4))) == ["COMPLETED:20261203T100000Z"]


def test_completed_items_are_built_with_a_utc_completion_time() -> None:
    item = ical.CalendarItem(
        key=CALL, uid=f"{CALL}@followupd", rule="escalate_by_phone", step="call",
        summary="Appeler", description="",
        due_at=paris(2026, 12, 2, 9), stamp=paris(2026, 12, 2, 18), status=CalendarState.COMPLETED,
        completed_at=paris(2026, 12, 2, 15),
    )  # fmt: skip
    assert completed_lines(ical.document(item, PARIS)) == ["COMPLETED:20261202T140000Z"]
    unknown = ical.CalendarItem(**{**item.__dict__, "completed_at": None})
    assert completed_lines(ical.document(unknown, PARIS)) == ["COMPLETED:20261202T170000Z"]
    still_open = ical.CalendarItem(**{**item.__dict__, "status": CalendarState.OPEN})
    closed, changed = ical.close(
        ical.document(still_open, PARIS), CalendarState.COMPLETED, paris(2026, 12, 3, 11), "done"
    )
    assert changed
    assert completed_lines(closed) == ["COMPLETED:20261203T100000Z"]


def test_tick_says_what_its_sync_read_back(
    cli: RunCli, home: Path, database_url: URL, dav: DavServer
) -> None:
    (home / "followupd.toml").write_text(
        MINIMAL_CONFIG + f'[caldav]\nurl = "{dav.url}"\nusername = "{USER}"\n'
        f'password_env = "{PASSWORD_VARIABLE}"\nread_calendars = []\n',
        encoding="utf-8",
    )
    (home / "data.toml").write_text(ACME + ISSUE, encoding="utf-8")
    assert cli("init").code == 0
    assert cli("import", str(home / "data.toml")).code == 0
    assert cli("tick", "--now", "2026-12-02T09:00").code == 0
    store = Store.open(database_url)
    try:
        href = item(store, CALL).href
    finally:
        store.close()
    assert href is not None
    complete_in_the_app(CalendarApp(dav), href)
    after = cli("tick", "--now", "2026-12-02T18:00", "--json")
    assert after.code == 0, after
    assert "followupd's items completed: 1, cancelled or deleted: 0, put off: 0" in after.err
    (done,) = json.loads(after.out)["followups"]
    assert (done["key"], done["action"], done["state"]) == (CALL, "closed", "sent")
    assert done["reason"] == "completed in your calendar", "the app wrote no COMPLETED time"


def test_a_calendar_added_later_gets_what_is_open_now(
    cli: RunCli, home: Path, database_url: URL, dav: DavServer
) -> None:
    """Run with the feed alone, then with [caldav]: the call task open in the feed is written."""
    config = home / "followupd.toml"
    config.write_text(MINIMAL_CONFIG, encoding="utf-8")
    (home / "data.toml").write_text(ACME + ISSUE, encoding="utf-8")
    assert cli("init").code == 0
    assert cli("import", str(home / "data.toml")).code == 0
    assert cli("tick", "--now", "2026-12-02T09:00").code == 0
    store = Store.open(database_url)
    try:
        assert item(store, CALL).href is None, "in the feed only"
    finally:
        store.close()
    config.write_text(
        MINIMAL_CONFIG + f'[caldav]\nurl = "{dav.url}"\nusername = "{USER}"\n'
        f'password_env = "{PASSWORD_VARIABLE}"\nread_calendars = []\n',
        encoding="utf-8",
    )
    for hour in (10, 11):  # written once
        assert cli("tick", "--now", f"2026-12-02T{hour}:00").code == 0
    store = Store.open(database_url)
    try:
        written = item(store, CALL)
    finally:
        store.close()
    assert written.href is not None
    text, _ = CalendarApp(dav).get(written.href)
    (task,) = Calendar.from_ical(text).todos
    assert (str(task["UID"]), str(task["STATUS"])) == (written.uid, "NEEDS-ACTION")
    objects = CalendarApp(dav).calendar("followupd").objects(load_objects=True)
    uids = [str(Calendar.from_ical(one.data).subcomponents[-1]["UID"]) for one in objects]
    assert sorted(uids) == sorted(set(uids)), "each written once"
    assert written.uid in uids


def calls_recorded(store: Store) -> list[datetime]:
    with store.session() as session:
        query = select(Touchpoint.at).where(Touchpoint.kind == "call")
        return [at.astimezone(UTC) for at in session.scalars(query)]


def test_a_call_ticked_off_stays_recorded_when_the_done_task_changes_or_goes(
    store: Store, settings: Settings, called: Deliverer, dav: DavServer
) -> None:
    """The call was made: neither the app touching the done task nor clearing it away undoes it.

    (followupd rewrites a repeating reminder's item for its next period the same way.)
    """
    app = CalendarApp(dav)
    href = item(store, CALL).href
    assert href is not None
    complete_in_the_app(app, href, "COMPLETED:20261202T140000Z")
    sync_calendars(store, settings, paris(2026, 12, 2, 18))
    made = [datetime(2026, 12, 2, 14, tzinfo=UTC)]
    assert calls_recorded(store) == made

    text, etag = app.get(href)
    sorted_ = text.replace("STATUS:COMPLETED", "STATUS:COMPLETED\r\nX-APPLE-SORT-ORDER:786704400")
    headers = {"If-Match": etag, "Content-Type": "text/calendar"}
    assert app.client.put(href, sorted_.encode(), headers).status == 204
    sync_calendars(store, settings, paris(2026, 12, 3, 9))
    assert calls_recorded(store) == made, "an app's change to the done task"

    assert app.client.delete(href).status in (200, 204)
    sync_calendars(store, settings, paris(2026, 12, 4, 9))
    assert calls_recorded(store) == made, "the done task cleared away"
