"""A promise to pay recorded from the calendar app: a task about an invoice, done with the date.

On a real CalDAV server (Radicale on loopback), on both databases. Jeanne
replies on 3 December to the first nudge of F-042 (due 30 November); the
owner gets a ``client_replied`` task in their calendar, and ticks it off
with the date she promised: written in its notes, or as its moved due.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from icalendar import Calendar
from sqlalchemy import select

from followupd.cli.render import user_actions
from followupd.config.load import parse_settings
from followupd.config.settings import Settings
from followupd.sources.caldav.sync import sync_calendars
from followupd.store.db import Store
from followupd.store.models import Invoice
from followupd.store.updates import mark_invoice_paid
from tests.conftest import MINIMAL_CONFIG
from tests.davserver import PASSWORD_VARIABLE, USER, CalendarApp, DavServer
from tests.rulekit import imported, item, outbox, paris
from tests.test_mail_meaning import (
    DATA,
    MAILBOX,
    a_pass,
    act,
    message_id_of,
    recorded,
    reply,
    touchpoints,
)
from tests.test_mail_meaning import NUDGE_1 as NUDGE_1

READ_AT = paris(2026, 12, 3, 10, 5)
SYNC_AT = paris(2026, 12, 3, 18, 0)


@pytest.fixture
def settings(tmp_path: Path, dav: DavServer) -> Settings:
    text = (
        MINIMAL_CONFIG
        + MAILBOX
        + (
            f'[caldav]\nurl = "{dav.url}"\nusername = "{USER}"\n'
            f'password_env = "{PASSWORD_VARIABLE}"\nread_calendars = []\n'
        )
    )
    return parse_settings(text, tmp_path / "followupd.toml", {"HOME": str(tmp_path)})


@pytest.fixture
def replied(store: Store, tmp_path: Path, settings: Settings) -> str:
    """The href of the owner's task about Jeanne's reply, written in their calendar."""
    loaded = imported(store, tmp_path, DATA)
    a_pass(loaded, settings, paris(2026, 12, 1, 9, 0))
    answer = reply((message_id_of(loaded, NUDGE_1),), date=paris(2026, 12, 3, 10, 0))
    act(loaded, settings, recorded(loaded, "INBOX", READ_AT, answer), READ_AT)
    a_pass(loaded, settings, READ_AT)
    (key,) = [key for key, row in outbox(loaded).items() if row.rule == "client_replied"]
    task = item(loaded, key)
    assert "promis" in task.description, "the task says how to record a promise"
    assert task.href is not None
    return task.href


def done_in_the_app(
    dav: DavServer, href: str, *, note: str | None = None, due: date | None = None
) -> None:
    """The task ticked off in an app, with a line added to its notes, or its due moved."""
    app = CalendarApp(dav)
    text, etag = app.get(href)
    calendar = Calendar.from_ical(text)
    (task,) = calendar.walk("VTODO")
    if note is not None:
        description = str(task["DESCRIPTION"])
        del task["DESCRIPTION"]
        task.add("DESCRIPTION", f"{description}\n{note}")
    if due is not None:
        del task["DUE"]
        task.add("DUE", due)
    del task["STATUS"]
    task.add("STATUS", "COMPLETED")
    task.add("COMPLETED", datetime(2026, 12, 3, 16, 0, tzinfo=UTC))
    headers = {"If-Match": etag, "Content-Type": "text/calendar"}
    assert app.client.put(href, calendar.to_ical(), headers).status == 204


def promised(store: Store) -> date | None:
    with store.session() as session:
        return session.scalar(select(Invoice.promised).where(Invoice.number == "F-042"))


def test_a_date_written_in_the_notes_is_the_promise(
    store: Store, settings: Settings, replied: str, dav: DavServer
) -> None:
    done_in_the_app(dav, replied, note="Appelée : promis le 18/12, virement lancé lundi")
    synced = sync_calendars(store, settings, SYNC_AT)
    assert promised(store) == date(2026, 12, 18)
    assert synced.user.promised == [("F-042", date(2026, 12, 18))]
    assert "; invoice F-042: promised to pay by 2026-12-18" in user_actions(synced.user)
    report = a_pass(store, settings, paris(2026, 12, 8, 9, 30))
    assert "invoice_due:F-042:nudge-2" not in report.sent  # it waits for the promise
    assert "invoice_due:F-042:nudge-2" not in outbox(store)


def test_the_due_moved_and_the_task_done_at_once_is_the_promise(
    store: Store, settings: Settings, replied: str, dav: DavServer
) -> None:
    done_in_the_app(dav, replied, due=date(2026, 12, 18))  # an all-day due, as apps write it
    sync_calendars(store, settings, SYNC_AT)
    assert promised(store) == date(2026, 12, 18)


def test_a_task_put_off_then_done_promises_nothing(
    store: Store, settings: Settings, replied: str, dav: DavServer
) -> None:
    app = CalendarApp(dav)
    text, etag = app.get(replied)
    calendar = Calendar.from_ical(text)
    (task,) = calendar.walk("VTODO")
    del task["DUE"]
    task.add("DUE", paris(2026, 12, 7, 9, 0))
    headers = {"If-Match": etag, "Content-Type": "text/calendar"}
    assert app.client.put(replied, calendar.to_ical(), headers).status == 204
    sync_calendars(store, settings, SYNC_AT)  # read as put off until the 7th
    done_in_the_app(dav, replied)
    sync_calendars(store, settings, paris(2026, 12, 7, 12, 0))
    assert promised(store) is None


def test_a_paid_invoice_takes_no_promise(
    store: Store, settings: Settings, replied: str, dav: DavServer
) -> None:
    with store.session() as session:
        mark_invoice_paid(session, "F-042", date(2026, 12, 3))
    done_in_the_app(dav, replied, note="promised 2026-12-18")
    sync_calendars(store, settings, SYNC_AT)
    assert promised(store) is None


def test_the_call_about_a_broken_promise_takes_the_new_one(
    store: Store, settings: Settings, replied: str, dav: DavServer
) -> None:
    done_in_the_app(dav, replied, note="promis 10/12/2026")
    sync_calendars(store, settings, SYNC_AT)
    # 10 December + 3 working days: Tuesday 15, when the owner is told to call
    a_pass(store, settings, paris(2026, 12, 15, 9, 30))
    call = item(store, "invoice_due:F-042:promise-broken-2026-12-10")
    assert call.href is not None
    assert "tel:+33612345678" in call.description
    done_in_the_app(dav, call.href, note="Rappelée, nouvelle promesse : 2027-01-08")
    sync_calendars(store, settings, paris(2026, 12, 15, 18, 0))
    assert promised(store) == date(2027, 1, 8)
    assert sorted(row.kind for row in touchpoints(store).values()) == [
        "call",
        "email",
    ]  # and the reply
