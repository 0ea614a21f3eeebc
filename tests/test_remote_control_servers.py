"""The calendar as a remote control, on real CalDAV servers, on both databases.

followupd delivers a reminder as a live item to Radicale or Xandikos; then
the user's app changes the object there the way that app does, and the next
pass reads it back. The app's change is the one of a document of
tests/remote_control_corpus/ (Thunderbird, Apple, tasks.org, Nextcloud and
ownCloud Tasks, todoman, Evolution): what it changed in the object followupd
wrote there is replayed on the real object, PUT back with its ETag and its
UID. Every scenario's first item is due on 10 December 2026 at 09:00 in
Paris, as the corpus items are, so the app's times mean the same here.

- completed: the item is closed as done by the user, and what it asked for
  is recorded at the time the app wrote (a call, a status update, the
  client informed of an issue);
- put off: no repeat before the user's date, and followupd's next update
  keeps that date and whatever the app added;
- cancelled or deleted: the concern's next periods are recorded dismissed,
  nothing comes back to the calendar, until its subject changes;
- a meeting to place made the user's meeting (moved, confirmed, a contact
  invited): followupd never writes to that event again, the meeting held in
  it stays held, and the next period comes in an item of its own.

Every form runs on Radicale and SQLite; one of each answer runs on both
servers and both databases.
"""

from __future__ import annotations

import asyncio
import random
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from icalendar import Calendar, Component, vText
from sqlalchemy import func, select

from followupd.channels.calendar import ical
from followupd.config.load import parse_settings
from followupd.config.settings import Settings
from followupd.delivery.deliverer import Deliverer, DeliveryReport
from followupd.domain.business_calendar import BusinessCalendar
from followupd.domain.identity import uid
from followupd.domain.states import CalendarState, Channel, FollowUpState, TouchpointKind
from followupd.engine.evaluation import evaluate
from followupd.rules.base import Evaluation
from followupd.rules.registry import RULES, enabled_rules
from followupd.sources.caldav.sync import SyncReport, sync_calendars
from followupd.sources.ical.remote_control import (
    Completed,
    NoAction,
    Snoozed,
    items_seen,
    user_action,
)
from followupd.store.db import Store
from followupd.store.models import Issue, LiveItem, Touchpoint
from followupd.templates.loader import templates_of
from tests.conftest import MINIMAL_CONFIG
from tests.davserver import PASSWORD_VARIABLE, SERVERS, USER, CalendarApp, DavServer
from tests.rulekit import ACME, PARIS, imported, item, outbox, paris
from tests.test_remote_control import CASES, OWNED, alarms, block, corpus, item_for, name_of
from tests.test_remote_control import own_lines as lines_of

D0 = paris(2026, 12, 10, 9)  # the corpus items' due
WRITE_CALENDAR = "Suivi"
COMPLETED_FORMS = sorted(stem for stem, case in CASES.items() if isinstance(case.action, Completed))
SNOOZED_FORMS = sorted(stem for stem, case in CASES.items() if isinstance(case.action, Snoozed))
DISMISSALS = ["evolution-cancelled", "deleted"]  # the corpus's cancellation, and a DELETE


def mission(start: str) -> str:
    return ACME.replace("start = 2026-09-01", f"start = {start}")


def issue(key: str, opened: str, severity: str, *lines: str) -> str:
    fields = [f'key = "{key}"', 'mission = "acme-audit"', f"opened = {opened}",
              f'severity = "{severity}"', f'summary = "Problème {key}"', *lines]  # fmt: skip
    return "[[issues]]\n" + "\n".join(fields) + "\n"


@dataclass(frozen=True)
class Concern:
    """A reminder whose first period is due at D0, and its data."""

    rule: str
    data: str
    first: str  # the key of the calendar period due at D0
    options: str = ""  # the rule's table, beyond `enabled`


TOLD = "client_informed = 2026-12-09T11:00:00+01:00"  # a call is due all the same
CALL = Concern(
    "escalate_by_phone",
    mission("2026-09-01") + issue("late-data", "2026-12-09T10:00:00+01:00", "high", TOLD),
    "escalate_by_phone:late-data:call",
)
STATUS = Concern(
    "status_update_due", mission("2026-09-03"), "status_update_due:acme-audit:2026-12-10"
)
INFORMED = Concern(
    "client_not_informed",
    mission("2026-09-01") + issue("late-data", "2026-12-08T10:00:00+01:00", "low"),
    "client_not_informed:late-data:2026-12-10:calendar",
)
DAILY = Concern(INFORMED.rule, INFORMED.data, INFORMED.first, "every_working_days = 1\n")
MEETING = Concern(
    "checkpoint_meeting", mission("2026-11-10"), "checkpoint_meeting:acme-audit:2026-12-10"
)
ASKED = {"call": CALL, "status": STATUS, "informed": INFORMED}


def settings_for(tmp_path: Path, dav: DavServer, concern: Concern) -> Settings:
    """The owner's settings, with the write calendar on `dav` and only the concern's rule."""
    rules = "".join(
        f"[rules.{name}]\nenabled = {'true' if name == concern.rule else 'false'}\n"
        + (concern.options if name == concern.rule else "")
        for name in RULES
    )
    text = MINIMAL_CONFIG + (
        f'[caldav]\nurl = "{dav.url}"\nusername = "{USER}"\n'
        f'password_env = "{PASSWORD_VARIABLE}"\nwrite_calendar = "{WRITE_CALENDAR}"\n'
    ) + rules  # fmt: skip
    return parse_settings(text, tmp_path / "followupd.toml", {"HOME": str(tmp_path)})


@dataclass
class Pass:
    synced: SyncReport
    delivered: DeliveryReport


def tick(store: Store, settings: Settings, at: datetime) -> Pass:
    """One whole pass at `at`, as `followupd tick` runs it: sync, evaluate, deliver, close."""
    synced = sync_calendars(store, settings, at)
    assert not synced.failed, synced.notices
    with store.session() as session:
        evaluate(session, settings, enabled_rules(settings.rules), at)
    deliverer = Deliverer(store, settings, "w1", rng=random.Random(1))

    async def deliver() -> DeliveryReport:
        report = await deliverer.run(at)
        await deliverer.close_vanished(at, report)
        return report

    return Pass(synced, asyncio.run(deliver()))


class WriteCalendar:
    """The owner's write calendar on the server, read and changed as an app does."""

    def __init__(self, dav: DavServer) -> None:
        self.app = CalendarApp(dav)

    def objects(self) -> dict[str, str]:
        """Every object of the calendar: URL -> text."""
        calendar = self.app.calendar(WRITE_CALENDAR)
        listed = self.app.client.propfind(str(calendar.url), ["getetag"], depth=1)
        hrefs = [str(calendar.url.join(found.href).canonical()) for found in listed.results]
        url = str(calendar.url.canonical()).rstrip("/")
        return {href: self.get(href)[0] for href in hrefs if href.rstrip("/") != url}

    def get(self, href: str) -> tuple[str, str]:
        return self.app.get(href)

    def put(self, href: str, body: bytes, etag: str) -> None:
        headers = {"If-Match": etag, "Content-Type": "text/calendar; charset=utf-8"}
        assert self.app.client.put(href, body, headers).status in (200, 201, 204)

    def delete(self, href: str, etag: str) -> None:
        assert self.app.client.delete(href, {"If-Match": etag}).status in (200, 204)


def part_of(text: bytes | str) -> Component:
    """The one VTODO or VEVENT of an object."""
    (part,) = [p for p in Calendar.from_ical(text).walk() if p.name in ("VTODO", "VEVENT")]
    return part


def get(part: Component, name: str) -> Any:
    return part[name]


def as_the_app_leaves_it(stem: str, text: str, live: LiveItem) -> bytes:
    """Object `text` (followupd's item `live`) changed as the app of corpus `stem` changes it.

    What the app changed in the object followupd wrote for the corpus item
    (properties it set, removed or rewrote, and its alarms) is replayed on
    `text`; the corpus item's UID, summary and rule are this item's.
    """
    model = item_for(stem)
    written = part_of(ical.document(model, PARIS))
    changed = part_of(corpus(stem))
    before, after = lines_of(written), lines_of(changed)
    rewritten = {name_of(line) for line in before if line not in after}

    def ours(line: str) -> str:
        line = line.replace(model.uid, live.uid).replace(model.rule, live.rule)
        return line.replace(vText(model.summary).to_ical().decode(),
                            vText(live.summary).to_ical().decode())  # fmt: skip

    calendar = Calendar.from_ical(text)
    part = part_of(text)
    assert part.name == written.name, "the corpus item is of the same kind"
    kept = [line for line in lines_of(part) if name_of(line) not in rewritten]
    added = [ours(line) for line in after if line not in before]
    zones = "".join(bytes(zone.to_ical()).decode() for zone in calendar.walk("VTIMEZONE"))
    app_alarms = "".join(ours(block(alarm)) for alarm in alarms(changed))
    prodid = str(Calendar.from_ical(corpus(stem))["PRODID"])
    body = (
        f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:{prodid}\r\n{zones}BEGIN:{part.name}\r\n"
        + "".join(f"{line}\r\n" for line in kept + added)
        + app_alarms
        + f"END:{part.name}\r\nEND:VCALENDAR\r\n"
    )
    return bytes(Calendar.from_ical(body).to_ical())  # folded as the app would


def what_the_app_added(app_text: str, before: str) -> tuple[list[str], list[str]]:
    """The properties and alarms of `app_text` that followupd did not write in `before`."""
    written, changed = part_of(before), part_of(app_text)
    lines = [line for line in lines_of(changed) if line not in lines_of(written)]
    ours = {block(alarm) for alarm in alarms(written)}
    return (
        [line for line in lines if name_of(line) not in OWNED],
        [block(alarm) for alarm in alarms(changed) if block(alarm) not in ours],
    )


@dataclass
class Delivered:
    """A concern's first period delivered at D0 to the real server."""

    store: Store
    settings: Settings
    calendar: WriteCalendar
    concern: Concern
    href: str

    def text(self) -> tuple[str, str]:
        return self.calendar.get(self.href)

    def live(self) -> LiveItem:
        return item(self.store, self.concern.first)


def delivered(store: Store, tmp_path: Path, dav: DavServer, concern: Concern) -> Delivered:
    imported(store, tmp_path, concern.data)
    settings = settings_for(tmp_path, dav, concern)
    first = tick(store, settings, D0)
    assert concern.first in first.delivered.sent
    live = item(store, concern.first)
    assert live.href is not None and live.uid == uid(live.concern)
    calendar = WriteCalendar(dav)
    assert list(calendar.objects()) == [live.href]
    found = Delivered(store, settings, calendar, concern, live.href)
    (seen,) = items_seen(found.text()[0], PARIS)
    assert seen.due == D0, "due as the corpus items are"
    return found


def app_changes(run: Delivered, stem: str) -> tuple[str, str]:
    """The app changes the item as corpus `stem` says; the object followupd wrote, and now."""
    before, etag = run.text()
    run.calendar.put(run.href, as_the_app_leaves_it(stem, before, run.live()), etag)
    after, _ = run.text()
    assert user_action(items_seen(after, PARIS)[0], D0) == CASES[stem].action
    return before, after


def sequence_of(text: str) -> int:
    return int(get(part_of(text), "SEQUENCE"))


# -- completed --------------------------------------------------------------------------


def touchpoints(store: Store, kind: TouchpointKind) -> list[datetime]:
    with store.session() as session:
        found = session.scalars(select(Touchpoint.at).where(Touchpoint.kind == kind)).all()
    return [when.astimezone(UTC) for when in found]


def informed_at(store: Store, key: str) -> datetime | None:
    with store.session() as session:
        when = session.scalar(select(Issue.client_informed).where(Issue.key == key))
    return None if when is None else when.astimezone(UTC)


def recorded(run: Delivered, kind: str) -> list[datetime]:
    """What the completed item asked for, as recorded: when."""
    if kind == "call":
        return touchpoints(run.store, TouchpointKind.CALL)
    if kind == "status":
        return touchpoints(run.store, TouchpointKind.STATUS_UPDATE)
    when = informed_at(run.store, "late-data")
    return [] if when is None else [when]


SYNC_AFTER_COMPLETION = paris(2026, 12, 10, 20)  # after every app's completion time


def check_completed(store: Store, tmp_path: Path, dav: DavServer, stem: str, kind: str) -> None:
    run = delivered(store, tmp_path, dav, ASKED[kind])
    assert recorded(run, kind) == []
    _, app_text = app_changes(run, stem)
    action = CASES[stem].action
    assert isinstance(action, Completed)
    after = tick(store, run.settings, SYNC_AFTER_COMPLETION)
    assert after.synced.user.completed == [run.concern.first]
    live = run.live()
    assert (live.state, live.by_user) == (CalendarState.COMPLETED, True)
    assert live.completed_at == action.at  # as the app wrote it; None when it wrote none
    when = action.at or SYNC_AFTER_COMPLETION  # no time written: when it was seen
    assert recorded(run, kind) == [when.astimezone(UTC)]
    assert run.text()[0] == app_text, "followupd leaves the user's completed item alone"
    # the next pass reads nothing new, and writes nothing
    again = tick(store, run.settings, SYNC_AFTER_COMPLETION + timedelta(hours=1))
    assert again.synced.user.completed == [] and again.delivered.sent == []
    assert recorded(run, kind) == [when.astimezone(UTC)]
    assert run.calendar.objects() == {run.href: app_text}


@pytest.mark.one_engine  # every form on SQLite; the engines compare on one, below
@pytest.mark.parametrize("kind", sorted(ASKED))
@pytest.mark.parametrize("stem", COMPLETED_FORMS)
def test_an_item_completed_in_the_app_records_what_it_asked_for(
    store: Store, tmp_path: Path, dav: DavServer, stem: str, kind: str
) -> None:
    check_completed(store, tmp_path, dav, stem, kind)


@pytest.mark.parametrize("dav_kind", SERVERS)
def test_a_completion_on_each_server_and_database(
    store: Store, tmp_path: Path, dav: DavServer
) -> None:
    check_completed(store, tmp_path, dav, "thunderbird-completed", "informed")


@pytest.mark.one_engine
def test_a_call_about_an_issue_made_tells_the_client_of_it(
    store: Store, tmp_path: Path, dav: DavServer
) -> None:
    """The call task about an issue the client was not told of says so; made, the client
    has been told: `client_not_informed` has nothing more to remind."""
    untold = Concern(CALL.rule, CALL.data.replace(TOLD + "\n", ""), CALL.first)
    run = delivered(store, tmp_path, dav, untold)
    assert informed_at(store, "late-data") is None
    app_changes(run, "thunderbird-completed")
    after = tick(store, run.settings, SYNC_AFTER_COMPLETION)
    assert after.synced.user.completed == [CALL.first]
    (made,) = touchpoints(store, TouchpointKind.CALL)
    assert informed_at(store, "late-data") == made
    with store.session() as session:
        note = session.scalar(select(Touchpoint.note).where(Touchpoint.kind == "call"))
    assert note is not None and note.endswith("(fait dans votre agenda)"), "the owner's language"


# -- put off ----------------------------------------------------------------------------


def periods(run: Delivered, after: datetime, days: int) -> list[tuple[str, datetime]]:
    """The concern's calendar periods due after `after`, within `days`: (key, due).

    Asked of the rules themselves: `plan` leaves out a dismissed concern's.
    """
    settings = run.settings
    with run.store.session() as session:
        window = Evaluation(session, settings, BusinessCalendar(settings.business),
                            templates_of(settings, settings.owners[0]),
                            after + timedelta(minutes=1), after + timedelta(days=days))  # fmt: skip
        found = [
            intent for rule in enabled_rules(settings.rules) for intent in rule.evaluate(window)
        ]
    return sorted(
        ((intent.key, intent.due_at) for intent in found if intent.channel == Channel.CALENDAR),
        key=lambda period: period[1],
    )


def items_count(store: Store) -> int:
    with store.session() as session:
        return int(session.scalar(select(func.count()).select_from(LiveItem)) or 0)


def alarm_time(alarm: Component) -> datetime:
    """When an alarm with an absolute trigger fires."""
    trigger = alarm.get("TRIGGER")
    value = getattr(trigger, "dt", None)
    assert isinstance(value, datetime), f"not an absolute trigger: {trigger!r}"
    return value


def check_snoozed(store: Store, tmp_path: Path, dav: DavServer, stem: str) -> None:
    run = delivered(store, tmp_path, dav, MEETING if "-calendar-" in stem else DAILY)
    before, app_text = app_changes(run, stem)
    action = CASES[stem].action
    assert isinstance(action, Snoozed)
    until = action.until
    tick(store, run.settings, D0 + timedelta(minutes=30))
    assert run.live().snoozed_until == until
    # followupd's alarm moved to the user's date, once: the user's due and what the app added
    # stay (its spent snoozes aside)
    moved, _ = run.text()
    (seen_moved,) = items_seen(moved, PARIS)
    assert seen_moved.due == until, "the user's date is theirs"
    own = [a for a in alarms(part_of(moved)) if f"UID:{ical.alarm_uid(run.live().uid)}" in block(a)]
    assert [alarm_time(a) for a in own] == [until], "followupd's alarm rings on the user's date"
    assert sequence_of(moved) == sequence_of(app_text) + 1
    tick(store, run.settings, D0 + timedelta(minutes=40))
    assert run.text()[0] == moved, "once"
    app_text = moved

    ahead = periods(run, D0, 60)
    held = [(key, due) for key, due in ahead if due < until]
    # no repeat before the user's date: not at a period that falls before it, nor just before
    for key, due in [*held, ("", until - timedelta(minutes=1))]:
        quiet = tick(store, run.settings, due)
        assert quiet.delivered.sent == [], "nor by email: the concern waits"
        if key:
            assert quiet.delivered.held[key].startswith("snoozed until")
            assert outbox(store)[key].state == FollowUpState.PENDING
        assert run.calendar.objects() == {run.href: app_text}, "no SEQUENCE raised, no new item"

    # the repeat: the period held comes at the user's date; else the next one after it
    repeat_at = until if held else next(due for _, due in ahead if due >= until)
    repeated = tick(store, run.settings, repeat_at)
    rows = outbox(store)
    assert [key for key in repeated.delivered.sent if rows[key].channel == Channel.CALENDAR] == [
        max(key for key, due in ahead if due <= repeat_at)
    ], "the latest period due, once"
    assert list(run.calendar.objects()) == [run.href], "updated in place, no new item"
    text, _ = run.text()
    (seen,) = items_seen(text, PARIS)
    assert seen.due == (until if held else repeat_at), "the user's date kept while ahead"
    assert user_action(seen, seen.due) == NoAction()
    assert sequence_of(text) == sequence_of(app_text) + 1
    part, app_part = part_of(text), part_of(app_text)
    lines, blocks = lines_of(part), [block(alarm) for alarm in alarms(part)]
    app_lines, app_alarms = what_the_app_added(app_text, before)
    dropped = CASES[stem].dropped  # snoozes spent once the reminder comes
    assert app_lines or app_alarms
    for line in app_lines:
        assert (line in lines) != any(mark in line for mark in dropped), line
    own_alarm = ical.alarm_uid(run.live().uid)
    for alarm in app_alarms:
        if f"UID:{own_alarm}" not in alarm:  # followupd's own alarm, moved to the new due
            assert (alarm in blocks) != any(mark in alarm for mark in dropped), alarm
    if part.name == "VEVENT":  # a meeting keeps the length the user gave it
        length = get(app_part, "DTEND").dt - get(app_part, "DTSTART").dt
        assert get(part, "DTEND").dt - get(part, "DTSTART").dt == length
    assert items_count(store) == 1


@pytest.mark.one_engine  # every form on SQLite; the engines compare on one, below
@pytest.mark.parametrize("stem", SNOOZED_FORMS)
def test_an_item_put_off_in_the_app_repeats_at_the_users_date(
    store: Store, tmp_path: Path, dav: DavServer, stem: str
) -> None:
    check_snoozed(store, tmp_path, dav, stem)


@pytest.mark.parametrize("dav_kind", SERVERS)
def test_a_snooze_on_each_server_and_database(store: Store, tmp_path: Path, dav: DavServer) -> None:
    check_snoozed(store, tmp_path, dav, "todoman-due-moved")


# -- cancelled or deleted ---------------------------------------------------------------


def app_dismisses(run: Delivered, form: str) -> str | None:
    """The user cancels the item (as corpus `form` says) or deletes it: what is left there."""
    if form == "deleted":
        _, etag = run.text()
        run.calendar.delete(run.href, etag)
        return None
    return app_changes(run, form)[1]


def check_dismissed(
    store: Store, tmp_path: Path, dav: DavServer, form: str, concern: Concern
) -> Delivered:
    """Dismissed in the app; the next three periods recorded dismissed, nothing written."""
    run = delivered(store, tmp_path, dav, concern)
    sync_calendars(store, run.settings, D0 + timedelta(minutes=5))  # followupd reads it once
    left = app_dismisses(run, form)
    seen = tick(store, run.settings, D0 + timedelta(hours=1))
    assert seen.synced.user.dismissed == [concern.first]
    live = run.live()
    assert (live.state, live.by_user) == (CalendarState.CANCELLED, True)
    assert live.reason == f"{'deleted' if left is None else 'cancelled'} in your calendar"
    there = {} if left is None else {run.href: left}
    assert run.calendar.objects() == there

    coming = periods(run, D0, 60)[:3]
    assert len(coming) == 3, coming
    for key, due in coming:
        later = tick(store, run.settings, due)
        assert later.delivered.sent == [], "nor by email: the concern is dismissed"
        row = outbox(store)[key]
        assert (row.state, row.reason) == (FollowUpState.DISMISSED, live.reason)
        assert run.calendar.objects() == there, "no item comes back"
    assert items_count(store) == 1
    return run


@pytest.mark.one_engine  # both forms on SQLite; the engines compare on one, below
@pytest.mark.parametrize("form", DISMISSALS)
def test_a_status_update_dismissed_in_the_app_comes_back_after_the_next_update(
    store: Store, tmp_path: Path, dav: DavServer, form: str
) -> None:
    check_dismissed_until_a_status_update(store, tmp_path, dav, form)


def check_dismissed_until_a_status_update(
    store: Store, tmp_path: Path, dav: DavServer, form: str
) -> None:
    run = check_dismissed(store, tmp_path, dav, form, STATUS)
    # the user sends a status update: a new period of the cadence, the concern raised again
    sent = paris(2027, 1, 26, 15)
    imported(store, tmp_path, mission("2026-09-03") + (
        '[[touchpoints]]\nmission = "acme-audit"\nkind = "status_update"\n'
        f"at = {sent.isoformat()}\n"), name="update.toml")  # fmt: skip
    ended = tick(store, run.settings, sent + timedelta(hours=1))
    live = run.live()
    assert (live.state, live.by_user) == (CalendarState.CANCELLED, False), "dismissal over"
    assert ended.delivered.sent == []
    ((key, due),) = periods(run, sent, 15)
    assert due == paris(2027, 2, 9, 9)  # 14 days after the update
    again = tick(store, run.settings, due)
    assert again.delivered.sent == [key]
    live = run.live()
    assert (live.state, live.followup_key, live.by_user) == (CalendarState.OPEN, key, False)
    ((href, text),) = run.calendar.objects().items()
    assert href == live.href
    (seen,) = items_seen(text, PARIS)
    assert (seen.uid, seen.status, seen.due) == (live.uid, "NEEDS-ACTION", due)
    assert items_count(store) == 1


def test_a_new_issue_is_raised_beside_one_dismissed_in_the_app(
    store: Store, tmp_path: Path, dav: DavServer
) -> None:
    run = check_dismissed(store, tmp_path, dav, "deleted", INFORMED)
    opened = paris(2026, 12, 21, 10)
    imported(store, tmp_path, mission("2026-09-01") + issue("new-data", opened.isoformat(), "low"),
             name="update.toml")  # fmt: skip
    key, due = next(period for period in periods(run, opened, 5) if "new-data" in period[0])
    assert key == "client_not_informed:new-data:2026-12-23:calendar"
    raised = tick(store, run.settings, due)
    assert key in raised.delivered.sent
    rows = outbox(store)
    old = [k for k in rows if ":late-data:" in k and ":2026-12-10:" not in k]
    assert ":late-data:2026-12-22:calendar" in " ".join(old)
    assert {rows[k].state for k in old} == {FollowUpState.DISMISSED}, "by email too"
    new = item(store, key)
    assert new.uid == "client_not_informed:new-data@followupd"
    assert list(run.calendar.objects()) == [new.href], "the new issue's item, no zombie"
    assert items_count(store) == 2
    # informing the client of the dismissed issue ends its dismissal, and raises nothing
    imported(store, tmp_path, mission("2026-09-01") + issue(
        "late-data", "2026-12-08T10:00:00+01:00", "low",
        "client_informed = 2026-12-23T11:00:00+01:00"), name="informed.toml")  # fmt: skip
    tick(store, run.settings, paris(2026, 12, 23, 12))
    assert (run.live().state, run.live().by_user) == (CalendarState.CANCELLED, False)
    assert list(run.calendar.objects()) == [new.href]


@pytest.mark.parametrize("dav_kind", SERVERS)
def test_a_deletion_on_each_server_and_database(
    store: Store, tmp_path: Path, dav: DavServer
) -> None:
    check_dismissed_until_a_status_update(store, tmp_path, dav, "deleted")


@pytest.mark.parametrize("dav_kind", SERVERS)
@pytest.mark.parametrize("calendar", ["made by the first item", "there before"])
def test_an_item_deleted_before_any_sync_read_it_is_dismissed_at_the_next_sync(
    store: Store, tmp_path: Path, dav: DavServer, calendar: str
) -> None:
    """Written by one pass and deleted before the next one read it: that one finds it gone.

    Otherwise the item stays open until its next period's write finds it
    gone, and that period's email goes out meanwhile.
    """
    if calendar == "there before":  # the first pass's sync has a token: the next is incremental
        CalendarApp(dav).calendar(WRITE_CALENDAR)
    run = delivered(store, tmp_path, dav, INFORMED)
    _, etag = run.text()
    run.calendar.delete(run.href, etag)
    synced = sync_calendars(store, run.settings, D0 + timedelta(hours=1))
    assert synced.user.dismissed == [INFORMED.first]
    live = run.live()
    assert (live.state, live.by_user, live.href) == (CalendarState.CANCELLED, True, None)
    key, due = periods(run, D0, 10)[0]
    later = tick(store, run.settings, due)
    assert later.delivered.sent == [], "nor by email"
    assert outbox(store)[key].state == FollowUpState.DISMISSED
    assert run.calendar.objects() == {}


# -- made the user's meeting --------------------------------------------------------------

HELD = paris(2026, 12, 11, 14)  # the day after the item's due, 14:00-15:00 in Paris


def placed_by_the_user(text: str, summary: str | None = None) -> bytes:
    """followupd's meeting event as a calendar app leaves it once the user placed the meeting
    there: moved to HELD, confirmed, the contact invited; renamed to `summary` if given."""
    part = part_of(text)
    start = HELD.astimezone(PARIS).strftime("%Y%m%dT%H%M%S")
    end = (HELD + timedelta(hours=1)).astimezone(PARIS).strftime("%Y%m%dT%H%M%S")
    placed = re.sub(r"(DTSTART;TZID=[^:]+:)\d{8}T\d{6}", rf"\g<1>{start}", text, count=1)
    placed = re.sub(r"(DTEND;TZID=[^:]+:)\d{8}T\d{6}", rf"\g<1>{end}", placed, count=1)
    assert placed.count(start) == 1 and placed.count(end) == 1
    placed = placed.replace(
        "STATUS:TENTATIVE",
        "STATUS:CONFIRMED\r\n"
        "ORGANIZER;CN=Claire Martin:mailto:claire@cabinet.example\r\n"
        "ATTENDEE;CN=Jeanne Dupont;PARTSTAT=ACCEPTED:mailto:jeanne.dupont@acme.example",
    )
    if summary is not None:
        placed = placed.replace(f"SUMMARY:{part['SUMMARY']}", f"SUMMARY:{summary}")
    return placed.encode()


@pytest.mark.parametrize("dav_kind", SERVERS)
def test_a_meeting_held_in_followupds_event_stays_held_and_untouched(
    store: Store, tmp_path: Path, dav: DavServer
) -> None:
    """Cancelled once held, the event would tell the client the meeting was called off (on
    a server that schedules) and, read back cancelled, take the meeting held away: the
    reminder would come back at once."""
    run = delivered(store, tmp_path, dav, MEETING)
    before, etag = run.text()
    run.calendar.put(run.href, placed_by_the_user(before), etag)
    users, _ = run.text()

    tick(store, run.settings, D0 + timedelta(hours=1))  # read as put off to the meeting
    ended = tick(store, run.settings, HELD + timedelta(hours=2))
    assert touchpoints(store, TouchpointKind.MEETING) == [HELD.astimezone(UTC)]
    assert ended.delivered.closed == {MEETING.first: "meeting held on 2026-12-11"}
    tick(store, run.settings, HELD + timedelta(hours=3))
    assert run.calendar.objects() == {run.href: users}, "never written to again"
    assert touchpoints(store, TouchpointKind.MEETING) == [HELD.astimezone(UTC)], "still held"

    key, due = periods(run, HELD, 60)[0]
    assert due >= HELD + timedelta(days=30), "a period from the meeting held"
    tick(store, run.settings, due)
    live = run.live()
    assert live.followup_key == key and live.state == CalendarState.OPEN
    assert live.uid == uid(f"{MEETING.first.rsplit(':', 1)[0]}~2"), "a UID of its own"
    objects = run.calendar.objects()
    assert live.href is not None
    assert objects.pop(run.href) == users and list(objects) == [live.href]
    fresh = part_of(objects[live.href])
    assert (str(get(fresh, "UID")), str(get(fresh, "STATUS"))) == (live.uid, "TENTATIVE")


@pytest.mark.one_engine
def test_the_users_meeting_keeps_their_status_and_title(
    store: Store, tmp_path: Path, dav: DavServer
) -> None:
    """The pass after the user placed the meeting would move followupd's alarm to their
    date, writing its TENTATIVE and its summary back: an update a server that schedules
    sends the invitee."""
    run = delivered(store, tmp_path, dav, MEETING)
    before, etag = run.text()
    run.calendar.put(run.href, placed_by_the_user(before, "Réunion avec Jeanne"), etag)
    users, _ = run.text()
    after = tick(store, run.settings, D0 + timedelta(hours=1))
    assert after.synced.user.snoozed == [MEETING.first]
    part = part_of(run.text()[0])
    assert (str(get(part, "STATUS")), str(get(part, "SUMMARY"))) == (
        "CONFIRMED",
        "Réunion avec Jeanne",
    )
    assert run.calendar.objects() == {run.href: users}
