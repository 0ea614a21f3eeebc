"""Calendar items written into a real CalDAV server (Radicale on loopback), on both databases."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from caldav.davclient import DAVClient
from icalendar import Calendar
from sqlalchemy import select

from followupd.channels.calendar import ical
from followupd.channels.calendar.caldav_writer import CalendarWriter
from followupd.config.load import parse_settings
from followupd.config.settings import Settings
from followupd.delivery.deliverer import Deliverer, DeliveryReport
from followupd.domain import identity
from followupd.domain.states import CalendarState
from followupd.engine.evaluation import evaluate
from followupd.rules.registry import enabled_rules
from followupd.sources.files.importer import import_files
from followupd.store.db import Store
from followupd.store.models import FollowUp
from followupd.store.updates import mark_invoice_paid, resolve_issue
from tests.conftest import MINIMAL_CONFIG, RunCli
from tests.davserver import PASSWORD, PASSWORD_VARIABLE, USER, DavServer
from tests.rulekit import ACME, PARIS, item, paris
from tests.smtpserver import Recorder, smtp_server

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


def at(month: int, day: int, hour: int = 9) -> datetime:
    """A time in Paris in late 2026, 09:00 (the send window's opening) unless told."""
    return paris(2026, month, day, hour)


@pytest.fixture
def smtp() -> Iterator[tuple[Recorder, int]]:
    with smtp_server() as running:
        yield running


@pytest.fixture
def loaded(store: Store, tmp_path: Path) -> Store:
    path = tmp_path / "data.toml"
    path.write_text(DATA, encoding="utf-8")
    import_files(store, [path], PARIS)
    return store


def settings_for(tmp_path: Path, dav: DavServer | None, smtp_port: int | None = None) -> Settings:
    text = MINIMAL_CONFIG
    if dav is not None:
        text += (f'[caldav]\nurl = "{dav.url}"\nusername = "{USER}"\n'
                 f'password_env = "{PASSWORD_VARIABLE}"\n')  # fmt: skip
    if smtp_port is not None:
        text += f'[smtp]\nhost = "127.0.0.1"\nport = {smtp_port}\nsecurity = "none"\n'
    return parse_settings(text, tmp_path / "followupd.toml", {"HOME": str(tmp_path)})


def tick(store: Store, settings: Settings, at: datetime, *rules: str) -> DeliveryReport:
    """One pass of the named rules, as `followupd tick` runs it: evaluate, deliver, close."""
    record(store, settings, at, *rules)
    return deliver(store, settings, at)


def record(store: Store, settings: Settings, at: datetime, *rules: str) -> None:
    chosen = [rule for rule in enabled_rules(settings.rules) if rule.name in rules]
    with store.session() as session:
        evaluate(session, settings, chosen, at)


def deliver(store: Store, settings: Settings, at: datetime, **options: Any) -> DeliveryReport:
    deliverer = Deliverer(store, settings, "w1", rng=random.Random(3), **options)

    async def both() -> DeliveryReport:
        report = await deliverer.run(at)
        await deliverer.close_vanished(at, report)
        return report

    return asyncio.run(both())


def remote(dav: DavServer, name: str = "followupd") -> dict[str, Any]:
    """Every object in the write calendar, by UID, read with a plain CalDAV client."""
    client: Any = DAVClient(url=dav.url, username=USER, password=PASSWORD)
    with client:
        calendar = client.principal().calendar(name=name)
        found: dict[str, Any] = {}
        for item in calendar.get_objects_by_sync_token(load_objects=True):
            parsed = Calendar.from_ical(item.data)
            for part in parsed.walk():
                if part.name in ("VTODO", "VEVENT"):
                    assert str(part["UID"]) not in found, "one object per UID"
                    found[str(part["UID"])] = part
        return found


def rows(store: Store) -> dict[str, FollowUp]:
    with store.session() as session:
        return {row.key: row for row in session.scalars(select(FollowUp))}


def test_paying_completes_the_task_and_stops_the_nudges(
    loaded: Store, tmp_path: Path, dav: DavServer, smtp: tuple[Recorder, int]
) -> None:
    recorder, port = smtp
    settings = settings_for(tmp_path, dav, port)

    report = tick(loaded, settings, at(11, 27), "invoice_due")
    assert report.sent == ["invoice_due:F-1:heads-up"]
    task = remote(dav)["invoice_due:F-1:heads-up@followupd"]
    assert task.name == "VTODO"
    assert str(task["STATUS"]) == "NEEDS-ACTION"
    assert task["DUE"].dt == at(11, 27)
    assert "F-1" in str(task["SUMMARY"])
    (alarm,) = task.subcomponents
    assert (alarm.name, str(alarm["ACTION"])) == ("VALARM", "DISPLAY")
    assert str(alarm["DESCRIPTION"]) == str(task["SUMMARY"])
    assert alarm["TRIGGER"].dt == at(11, 27)
    stored = item(loaded, "invoice_due:F-1:heads-up")
    assert stored.state == "open"
    assert stored.href is not None and stored.href.startswith(dav.url)

    # the client is nudged: the heads-up's moment passed, its task is completed
    report = tick(loaded, settings, at(12, 1), "invoice_due")
    assert [str(m["Subject"]) for m in recorder.messages] == [
        "Facture F-1 : échéance du 30 novembre 2026"
    ]
    assert report.closed == {
        "invoice_due:F-1:heads-up": "invoice F-1: the client was sent a nudge on 2026-12-01, "
        "the heads-up's moment has passed"
    }
    assert item(loaded, "invoice_due:F-1:heads-up").state == "completed"
    with loaded.session() as session:
        mark_invoice_paid(session, "F-1", date(2026, 12, 2))

    report = tick(loaded, settings, at(12, 8), "invoice_due")
    assert len(recorder.messages) == 1, "no nudge after the payment"
    after = rows(loaded)
    assert "invoice_due:F-1:nudge-2" not in after, "a paid invoice is not nudged"
    assert report.closed == {}, "closed once"
    task = remote(dav)["invoice_due:F-1:heads-up@followupd"]
    assert str(task["STATUS"]) == "COMPLETED"
    assert int(task["SEQUENCE"]) == 1
    assert int(task["PERCENT-COMPLETE"]) == 100
    assert task.subcomponents == [], "no alarm left on a completed task"

    again = tick(loaded, settings, at(12, 15), "invoice_due")
    assert again.closed == {} and again.sent == []
    assert int(remote(dav)["invoice_due:F-1:heads-up@followupd"]["SEQUENCE"]) == 1


def test_a_call_task_carries_the_contact_and_a_tel_link(
    loaded: Store, tmp_path: Path, dav: DavServer
) -> None:
    settings = settings_for(tmp_path, dav)
    report = tick(loaded, settings, at(12, 2), "escalate_by_phone")
    assert report.sent == ["escalate_by_phone:late-data:call"]
    task = remote(dav)["escalate_by_phone:late-data:call@followupd"]
    assert str(task["SUMMARY"]) == (
        "Appeler Jeanne Dupont — Les extractions de données arrivent avec deux semaines de retard"
    )
    assert str(task["CONTACT"]) == "Jeanne Dupont"
    assert str(task["URL"]) == "tel:+33612345678"
    assert "tel:+33612345678" in str(task["DESCRIPTION"])
    assert str(task.subcomponents[0]["DESCRIPTION"]) == str(task["SUMMARY"])

    with loaded.session() as session:
        resolve_issue(session, "late-data", at(12, 2, 15))
    report = tick(loaded, settings, at(12, 3), "escalate_by_phone")
    assert list(report.closed) == ["escalate_by_phone:late-data:call"]
    task = remote(dav)["escalate_by_phone:late-data:call@followupd"]
    assert str(task["STATUS"]) == "COMPLETED"
    assert "followupd: " in str(task["DESCRIPTION"])


def test_a_meeting_to_place_is_a_tentative_event(tmp_path: Path) -> None:
    item = ical.CalendarItem(
        key="checkpoint_meeting:acme-audit:2026-12-07",
        uid="checkpoint_meeting:acme-audit@followupd", rule="checkpoint_meeting",
        step="no-meeting", summary="Planifier une réunion", description="…",
        due_at=at(12, 7), stamp=at(12, 1),
    )  # fmt: skip
    event: Any = ical.component(item, PARIS)
    assert event.name == "VEVENT"
    assert (str(event["STATUS"]), str(event["TRANSP"])) == ("TENTATIVE", "TRANSPARENT")
    assert event["DTEND"].dt - event["DTSTART"].dt == timedelta(minutes=30)
    closed, changed = ical.close(
        ical.document(item, PARIS), CalendarState.CANCELLED, at(12, 8), "x"
    )
    (event,) = Calendar.from_ical(closed).events
    assert changed and str(event["STATUS"]) == "CANCELLED"
    assert ical.document(item, PARIS) == ical.document(item, PARIS), "same bytes every time"


def test_radicale_stopped_mid_run_writes_later_without_duplicates(
    store: Store, tmp_path: Path, dav: DavServer
) -> None:
    invoices = "".join(
        f'[[invoices]]\nnumber = "F-{n}"\nmission = "acme-audit"\namount = 100\n'
        f"issued = 2026-10-31\ndue = 2026-11-30\n"
        for n in range(1, 7)
    )
    path = tmp_path / "data.toml"
    path.write_text(DATA.split("[[invoices]]")[0] + invoices, encoding="utf-8")
    import_files(store, [path], PARIS)
    settings = settings_for(tmp_path, dav)
    written = 0

    class StopsAfterTwo(CalendarWriter):
        def create(self, resource: str, body: bytes, uid: str) -> str:
            nonlocal written
            if written == 2:
                dav.stop()
            written += 1
            return super().create(resource, body, uid)

    record(store, settings, at(11, 27), "invoice_due")
    assert settings.caldav is not None
    caldav = settings.caldav
    report = deliver(store, settings, at(11, 27), calendar_writer=lambda: StopsAfterTwo(caldav))
    assert len(report.sent) == 2 and len(report.retrying) == 4
    assert all("unreachable" in reason for reason in report.retrying.values())

    dav.start()
    later = deliver(store, settings, at(11, 27, 12))
    assert sorted(report.sent + later.sent) == [f"invoice_due:F-{n}:heads-up" for n in range(1, 7)]
    assert sorted(remote(dav)) == [f"invoice_due:F-{n}:heads-up@followupd" for n in range(1, 7)]


def test_a_write_whose_record_was_lost_is_not_written_twice(
    loaded: Store, tmp_path: Path, dav: DavServer
) -> None:
    """A crash between the server's 201 and the commit: the next claim finds it there."""
    settings = settings_for(tmp_path, dav)
    assert settings.caldav is not None
    record(loaded, settings, at(11, 27), "invoice_due")
    pending = rows(loaded)["invoice_due:F-1:heads-up"]
    item = ical.CalendarItem(key=pending.key, uid=identity.uid(pending.key), rule=pending.rule,
                             step=pending.step,
                             summary=pending.subject, description=pending.body,
                             due_at=pending.due_at, stamp=pending.created_at)  # fmt: skip
    with CalendarWriter(settings.caldav) as writer:
        writer.create(identity.resource_name(item.key), ical.document(item, PARIS), item.uid)
    dav.reset_counts()
    report = deliver(loaded, settings, at(11, 27))
    assert report.sent == ["invoice_due:F-1:heads-up"]
    assert ("PUT", 412) in {(method, status) for method, _, status in dav.requests}
    assert list(remote(dav)) == ["invoice_due:F-1:heads-up@followupd"]


def test_a_refused_login_fails_the_items_with_the_reason(
    loaded: Store, tmp_path: Path, dav: DavServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PASSWORD_VARIABLE, "not-the-password")
    settings = settings_for(tmp_path, dav)
    report = tick(loaded, settings, at(11, 27), "invoice_due")
    assert list(report.failed) == ["invoice_due:F-1:heads-up"]
    assert "authorization refused" in report.failed["invoice_due:F-1:heads-up"]
    assert "not-the-password" not in report.failed["invoice_due:F-1:heads-up"]
    assert rows(loaded)["invoice_due:F-1:heads-up"].state == "failed"


def test_tick_on_the_demo_writes_the_owner_tasks_into_radicale(
    cli: RunCli, home: Path, dav: DavServer
) -> None:
    config = home / "followupd.toml"
    config.write_text(
        MINIMAL_CONFIG + f'[caldav]\nurl = "{dav.url}"\nusername = "{USER}"\n'
        f'password_env = "{PASSWORD_VARIABLE}"\nwrite_calendar = "Suivi clients"\n',
        encoding="utf-8",
    )
    assert cli("init", "--demo", "--today", "2026-11-22").code == 0
    ticked = cli("tick", "--now", "2026-11-30T10:00", "--json")
    assert ticked.code == 0, ticked
    sent = [
        row for row in json.loads(ticked.out)["followups"]
        if row["channel"] == "calendar" and row["state"] == "sent"
    ]  # fmt: skip
    assert sent, "the demo has owner tasks due"
    concerns = [row["concern"] for row in sent]
    assert len(set(concerns)) == len(concerns), "one item per concern, however many periods due"
    assert {uid.removesuffix("@followupd") for uid in remote(dav, "Suivi clients")} == set(concerns)
    calendar_keys = {row["key"] for row in sent}
    shown = cli("outbox", "show", sorted(calendar_keys)[0])
    assert "@followupd: open" in shown.out and dav.url in shown.out, shown.out
