"""A reminder put off in the calendar comes back in the first digest after the user's date.

The digest of its day leaves it out (the user put it off); the digests that
follow list what fell due since the one before, which a reminder due before
the snooze never is: without looking at the user's date, it would be in no
digest at all. A real CalDAV server (Radicale) and a real SMTP server.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path

import pytest

from followupd.config.load import parse_settings
from followupd.config.settings import Settings
from followupd.delivery.deliverer import Deliverer
from followupd.engine.evaluation import evaluate
from followupd.rules.registry import enabled_rules
from followupd.sources.caldav.sync import sync_calendars
from followupd.store.db import Store
from tests.conftest import MINIMAL_CONFIG
from tests.davserver import PASSWORD_VARIABLE, USER, CalendarApp, DavServer
from tests.rulekit import ACME, imported, item, paris
from tests.smtpserver import Recorder, smtp_server

# a weekly status update (the last one on Monday 23 November), and a daily one on another
# mission: a digest every working day
MISSIONS = (
    ACME
    + "status_update_every_days = 7\n"
    + """\
[[missions]]
key = "acme-crm"
client = "acme"
title = "Refonte du CRM"
contact = "jdupont"
start = 2026-11-02
contract_signed = 2026-10-28
status_update_every_days = 1

[[touchpoints]]
mission = "acme-audit"
kind = "status_update"
at = 2026-11-23T17:00:00+01:00
"""
)
WEEKLY = "status_update_due:acme-audit"
WORDS = "envoyer le point d'avancement à jeanne dupont"


def said(digest: str, title: str, words: str = WORDS) -> bool:
    """Whether the digest's section of the mission `title` has a line with `words`."""
    for section in digest.replace("\r\n", "\n").split("\n\n"):
        if section.startswith(f"« {title} »") and words in section:
            return True
    return False


@pytest.fixture
def smtp() -> Iterator[tuple[Recorder, int]]:
    with smtp_server() as running:
        yield running


@pytest.fixture
def settings(tmp_path: Path, dav: DavServer, smtp: tuple[Recorder, int]) -> Settings:
    text = MINIMAL_CONFIG.replace('reminders_by_email = "each"\n', "") + (
        f'[caldav]\nurl = "{dav.url}"\nusername = "{USER}"\n'
        f'password_env = "{PASSWORD_VARIABLE}"\nread_calendars = []\n'
        f'[smtp]\nhost = "127.0.0.1"\nport = {smtp[1]}\nsecurity = "none"\n'
    )
    return parse_settings(text, tmp_path / "followupd.toml", {"HOME": str(tmp_path)})


def tick(store: Store, settings: Settings, at: datetime) -> None:
    """One pass as `followupd tick` runs it: sync, evaluate, deliver, close."""
    sync_calendars(store, settings, at)
    with store.session() as session:
        evaluate(session, settings, enabled_rules(settings.rules), at)
    deliverer = Deliverer(store, settings, "w1", rng=random.Random(5))

    async def both() -> None:
        await deliverer.close_vanished(at, await deliverer.run(at))

    asyncio.run(both())


def digest_of(recorder: Recorder, seen: int) -> str:
    """The one message sent since the first `seen`, a digest: its text, lower case."""
    (message,) = recorder.messages[seen:]
    assert str(message["Subject"]).startswith("followupd : ")
    body = message.get_body(("plain",))
    assert isinstance(body, EmailMessage)
    return str(body.get_content()).lower()


def test_a_reminder_put_off_comes_back_in_the_first_digest_after_the_users_date(
    store: Store, tmp_path: Path, settings: Settings, dav: DavServer, smtp: tuple[Recorder, int]
) -> None:
    recorder = smtp[0]
    imported(store, tmp_path, MISSIONS)
    tick(store, settings, paris(2026, 11, 30, 9))  # the weekly one, due today
    assert said(digest_of(recorder, 0), "audit du si")
    href = item(store, f"{WEEKLY}:2026-11-30").href
    assert href is not None

    # todoman `todo edit --due`: put off to Wednesday 10:00
    app = CalendarApp(dav)
    text, etag = app.get(href)
    lines = [
        "DUE:20261202T100000" if line.startswith("DUE") else line for line in text.splitlines()
    ]
    headers = {"If-Match": etag, "Content-Type": "text/calendar"}
    assert app.client.put(href, "\r\n".join(lines).encode(), headers).status == 204

    seen = len(recorder.messages)
    digests = []
    for day in (1, 2, 3, 4):
        tick(store, settings, paris(2026, 12, day, 9))
        digests.append(digest_of(recorder, seen))
        seen = len(recorder.messages)
    put_off, still_off, back, after = digests
    assert not said(put_off, "audit du si"), "before the user's date"
    assert not said(still_off, "audit du si"), "before the user's date"
    assert said(back, "audit du si"), "the first digest after Wednesday 10:00"
    assert not said(after, "audit du si"), "once"
    assert said(after, "refonte du crm")  # the daily one
