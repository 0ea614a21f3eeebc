"""A store and a calendar made before live items (schema 0007), taken over by today's followupd.

Before schema 0008 a repeating reminder was one calendar item per period,
its UID the period's key. The followupd of commit bc9fe80, the last one
before live items, is run for real from `git archive` in a subprocess (with
this environment's dependencies): it ticks three periods of one concern
into a real CalDAV server, leaving three tasks open there. Then today's
`followupd init` migrates the store and `tick` takes over: the newest task
becomes the concern's live item (its UID and place kept), the two older ones
are closed in the calendar as replaced, once, and nothing is duplicated.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
from datetime import datetime
from pathlib import Path

import pytest
from icalendar import Calendar, Component
from sqlalchemy import select
from sqlalchemy.engine import URL

from followupd.domain.states import CalendarState, FollowUpState
from followupd.store.db import HEAD_REVISION, Store
from followupd.store.models import CalendarObject, FollowUp, LiveItem
from tests.conftest import RunCli, schema_revision
from tests.davserver import PASSWORD_VARIABLE, USER, CalendarApp, DavServer
from tests.rulekit import ACME, paris

BEFORE_LIVE_ITEMS = "bc9fe80"  # schema 0007, one calendar item per period
REPOSITORY = Path(__file__).parents[1]
WRITE_CALENDAR = "Suivi"
CONCERN = "client_not_informed:late-data"
ISSUE = (
    '[[issues]]\nkey = "late-data"\nmission = "acme-audit"\n'
    'opened = 2026-12-08T10:00:00+01:00\nseverity = "low"\nsummary = "Données en retard"\n'
)
# the periods of the reminder, every 2 working days from 10 December
OLD_PASSES = [paris(2026, 12, 10, 9), paris(2026, 12, 14, 9), paris(2026, 12, 16, 9)]
PERIODS = [f"{CONCERN}:{day:%Y-%m-%d}:calendar" for day in OLD_PASSES]
OLD_RULES = ("invoice_due", "deposit_due", "contract_missing", "escalate_by_phone",
             "client_not_informed", "status_update_due", "checkpoint_meeting",
             "mission_closeout", "open_ended_mission", "new_year_greetings")  # fmt: skip


def config_text(dav: DavServer) -> str:
    """A config both versions read: one owner, the write calendar, one rule.

    The rules the old version knows, each turned off but one (those that came
    later, such as the mailbox's, are off by themselves without `[imap]`).
    """
    rules = "".join(
        f"[rules.{name}]\nenabled = {'true' if name == 'client_not_informed' else 'false'}\n"
        for name in OLD_RULES
    )
    return (
        '[owner]\nname = "Claire Martin"\nemail = "claire@cabinet.example"\n'
        f'[caldav]\nurl = "{dav.url}"\nusername = "{USER}"\n'
        f'password_env = "{PASSWORD_VARIABLE}"\nwrite_calendar = "{WRITE_CALENDAR}"\n'
    ) + rules  # fmt: skip


def old_followupd(tmp_path: Path) -> Path:
    """The package as it was at BEFORE_LIVE_ITEMS, extracted under `tmp_path`.

    The commit is in the repository's history: a clone that lacks it (a
    shallow one) fails here, it does not skip.
    """
    archive = subprocess.run(
        ["git", "-C", str(REPOSITORY), "archive", "--format=tar", BEFORE_LIVE_ITEMS, "followupd"],
        capture_output=True,
        check=False,
    )
    assert archive.returncode == 0, archive.stderr.decode()
    root = tmp_path / "followupd-0007"
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(root, filter="data")
    return root


def run_old(root: Path, config: Path, *args: str) -> str:
    """The old followupd's command line, in a process of its own; what it printed."""
    environ = {**os.environ, "PYTHONPATH": str(root)}
    done = subprocess.run(
        [sys.executable, "-m", "followupd", "--config", str(config), *args],
        capture_output=True,
        text=True,
        env=environ,
        cwd=root,
        check=False,
        timeout=300,
    )
    assert done.returncode == 0, (args, done.stdout, done.stderr)
    return done.stdout


def now(moment: datetime) -> str:
    return moment.isoformat()


def objects(dav: DavServer) -> dict[str, tuple[str, str]]:
    """Every object of the write calendar: URL -> (text, ETag)."""
    app = CalendarApp(dav)
    calendar = app.calendar(WRITE_CALENDAR)
    listed = app.client.propfind(str(calendar.url), ["getetag"], depth=1)
    hrefs = [str(calendar.url.join(found.href).canonical()) for found in listed.results]
    url = str(calendar.url.canonical()).rstrip("/")
    return {href: app.get(href) for href in hrefs if href.rstrip("/") != url}


def task(text: str) -> Component:
    (found,) = Calendar.from_ical(text).todos
    return found


def sequence(part: Component) -> int:
    return int(str(part["SEQUENCE"]))


def due(part: Component) -> datetime:
    value = part.decoded("DUE")
    assert isinstance(value, datetime)
    return value


def by_uid(dav: DavServer) -> dict[str, tuple[str, Component, str]]:
    """The write calendar's tasks by UID: (URL, task, ETag)."""
    found = {}
    for href, (text, etag) in objects(dav).items():
        part = task(text)
        found[str(part["UID"])] = (href, part, etag)
    return found


def items(url: URL) -> list[LiveItem]:
    store = Store.open(url)
    try:
        with store.session() as session:
            return list(session.scalars(select(LiveItem).order_by(LiveItem.uid)))
    finally:
        store.close()


def states(url: URL) -> dict[str, FollowUpState]:
    store = Store.open(url)
    try:
        with store.session() as session:
            rows = session.execute(select(FollowUp.key, FollowUp.state)).all()
            assert session.scalar(select(CalendarObject.id).limit(1)) is not None, "synced"
    finally:
        store.close()
    return {key: FollowUpState(state) for key, state in rows}


@pytest.fixture
def before_live_items(
    home: Path, tmp_path: Path, dav: DavServer, database_url: URL
) -> tuple[Path, URL]:
    """The old followupd's store and calendar after three periods of one reminder; the config."""
    config = home / "followupd.toml"
    config.write_text(config_text(dav), encoding="utf-8")
    data = home / "data.toml"
    data.write_text(ACME + ISSUE, encoding="utf-8")
    root = old_followupd(tmp_path)
    run_old(root, config, "init")
    assert schema_revision(database_url) == "0007"
    run_old(root, config, "import", str(data))
    for moment in OLD_PASSES:
        run_old(root, config, "tick", "--now", now(moment))
    return config, database_url


def test_the_newest_per_period_task_becomes_the_live_item_and_the_others_are_closed_once(
    before_live_items: tuple[Path, URL], dav: DavServer, cli: RunCli
) -> None:
    config, url = before_live_items
    old = by_uid(dav)
    assert sorted(old) == sorted(f"{key}@followupd" for key in PERIODS), "one task a period"
    assert {str(part["STATUS"]) for _, part, _ in old.values()} == {"NEEDS-ACTION"}
    sent = states(url)
    assert [sent[key] for key in PERIODS] == [FollowUpState.SENT] * 3

    migrated = cli("--config", config, "init")
    assert migrated.code == 0, migrated
    assert f"-> {HEAD_REVISION}" in migrated.out
    newest, older = f"{PERIODS[-1]}@followupd", [f"{key}@followupd" for key in PERIODS[:-1]]
    (live,) = [one for one in items(url) if one.retire is None]
    assert (live.concern, live.uid, live.href) == (CONCERN, newest, old[newest][0])
    assert (live.times_raised, live.first_raised_at) == (3, OLD_PASSES[0])

    took_over = cli("--config", config, "tick", "--now", now(paris(2026, 12, 17, 9)))
    assert took_over.code == 0, took_over
    after = by_uid(dav)
    assert sorted(after) == sorted(old), "no object added, none lost"
    for uid in older:
        href, part, _ = after[uid]
        assert href == old[uid][0]
        assert str(part["STATUS"]) == "COMPLETED", uid
        assert "followupd: replaced by the item of 2026-12-16" in str(part["DESCRIPTION"])
        assert sequence(part) == sequence(old[uid][1]) + 1
        assert not [sub for sub in part.subcomponents if sub.name == "VALARM"]
    assert after[newest][2] == old[newest][2], "the live item is left as it was"
    retired = [one for one in items(url) if one.retire is not None]
    assert sorted(one.uid for one in retired) == sorted(older)
    assert {one.state for one in retired} == {CalendarState.COMPLETED}

    again = cli("--config", config, "tick", "--now", now(paris(2026, 12, 17, 10)))
    assert again.code == 0, again
    assert {uid: etag for uid, (_, _, etag) in by_uid(dav).items()} == {
        uid: etag for uid, (_, _, etag) in after.items()
    }, "closed once: a second pass changes nothing"

    # the next period updates the live item in place, under its old UID
    later = cli("--config", config, "tick", "--now", now(paris(2026, 12, 18, 9)))
    assert later.code == 0, later
    raised = by_uid(dav)
    assert sorted(raised) == sorted(old)
    href, part, _ = raised[newest]
    assert href == old[newest][0] and str(part["STATUS"]) == "NEEDS-ACTION"
    assert due(part) == paris(2026, 12, 18, 9)
    assert sequence(part) == sequence(old[newest][1]) + 1
    assert {uid: raised[uid][2] for uid in older} == {uid: after[uid][2] for uid in older}
    found = items(url)
    assert len(found) == 3 and len({one.concern for one in found}) == 3
    (live,) = [one for one in found if one.retire is None]
    assert (live.uid, live.followup_key, live.times_raised) == (
        newest,
        f"{CONCERN}:2026-12-18:calendar",
        4,
    )
    calendar_rows = {key: state for key, state in states(url).items() if key.endswith(":calendar")}
    assert calendar_rows == {
        **dict.fromkeys(PERIODS, FollowUpState.SENT),
        f"{CONCERN}:2026-12-18:calendar": FollowUpState.SENT,
    }, "no period recorded or sent twice"


def test_the_newest_task_deleted_in_the_app_before_the_upgrade_dismisses_its_concern(
    before_live_items: tuple[Path, URL], dav: DavServer, cli: RunCli
) -> None:
    """The old followupd never read the newest task back; the user deleted it meanwhile."""
    config, url = before_live_items
    newest = f"{PERIODS[-1]}@followupd"
    href, _, etag = by_uid(dav)[newest]
    assert CalendarApp(dav).client.delete(href, {"If-Match": etag}).status in (200, 204)
    assert cli("--config", config, "init").code == 0

    took_over = cli("--config", config, "tick", "--now", now(paris(2026, 12, 17, 9)))
    assert took_over.code == 0, took_over
    (live,) = [one for one in items(url) if one.retire is None]
    assert (live.uid, live.state, live.by_user) == (newest, CalendarState.CANCELLED, True)
    assert live.reason == "deleted in your calendar"
    left = by_uid(dav)
    assert sorted(left) == sorted(f"{key}@followupd" for key in PERIODS[:-1])
    assert {str(part["STATUS"]) for _, part, _ in left.values()} == {"COMPLETED"}, "replaced"

    later = cli("--config", config, "tick", "--now", now(paris(2026, 12, 18, 9)))
    assert later.code == 0, later
    assert states(url)[f"{CONCERN}:2026-12-18:calendar"] == FollowUpState.DISMISSED
    assert {uid: e for uid, (_, _, e) in by_uid(dav).items()} == {
        uid: e for uid, (_, _, e) in left.items()
    }, "nothing comes back, nothing else is written"
