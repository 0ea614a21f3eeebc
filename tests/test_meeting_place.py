"""A meeting to place raised after its due time is offered at the owner's next working time.

A checkpoint meeting (and the closeout's bilan) is a tentative event at its
due time; raised late (a first pass catching up a period within its grace,
the daemon down), it would sit in the past. followupd.domain.meeting_place
puts it at the owner's next half-hour slot inside the send window on a
working day, in their zone; the time is fixed when the item is raised. The
cases: the pure placing (weekends, holidays, the daylight-saving changes of
tests/test_dst.py, another zone), then the feed and a real CalDAV server on
both databases, where the sync must not take followupd's own placing for a
move of the user's, and a move of the user's still wins. A task raised late
stays due when it was (an overdue task is fine), but its alarm, in the past,
would never ring on a phone: it rings at the owner's next working time, the
raise itself inside the send window of a working day.
"""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from icalendar import Calendar, Component
from sqlalchemy.engine import URL

from followupd.channels.feed.build import build_feed, feed_items
from followupd.config.load import parse_settings
from followupd.config.sections import Business
from followupd.config.settings import Settings
from followupd.delivery.deliverer import Deliverer
from followupd.domain.business_calendar import BusinessCalendar
from followupd.domain.meeting_place import MEETING_LENGTH, OwnersTime, placed_at, ring_at
from followupd.domain.states import FollowUpState
from followupd.engine.evaluation import evaluate
from followupd.rules.registry import RULES, enabled_rules
from followupd.sources.caldav.sync import sync_calendars
from followupd.store.db import Store
from tests.conftest import MINIMAL_CONFIG, RunCli
from tests.davserver import SERVERS, DavServer
from tests.rulekit import NEW_YORK, PARIS, imported, item, new_york, outbox, paris
from tests.test_remote_control_servers import MEETING, STATUS, Concern, WriteCalendar, settings_for
from tests.test_scenario_four_weeks import todoman_moved

CALENDAR = BusinessCalendar(Business())  # 09:00-18:00, Monday to Friday
FR = ("FR",)
D0 = paris(2026, 12, 10, 9)  # Thursday: the first period of MEETING and STATUS
SATURDAY = paris(2026, 12, 12, 11)  # two days late
MONDAY = paris(2026, 12, 14, 9)  # the owner's next working time after SATURDAY


def placed(
    due: datetime, at: datetime, tz: ZoneInfo = PARIS, countries: tuple[str, ...] = FR
) -> datetime:
    return placed_at(CALENDAR, due.astimezone(UTC), at.astimezone(UTC), tz, countries)


# -- the placing ---------------------------------------------------------------------------


def test_a_meeting_raised_on_time_keeps_its_due() -> None:
    assert placed(D0, D0) == D0
    assert placed(D0, D0 - timedelta(days=3)) == D0, "raised ahead: at its due"
    assert placed(D0, D0 + timedelta(minutes=4)) == D0, "a pass a few minutes late"


def test_a_meeting_raised_late_on_a_working_day_takes_the_next_half_hour() -> None:
    assert placed(D0, paris(2026, 12, 10, 14, 10)) == paris(2026, 12, 10, 14, 30)
    assert placed(D0, paris(2026, 12, 10, 14, 30)) == paris(2026, 12, 10, 14, 30)
    assert placed(D0, paris(2026, 12, 11, 7, 0)) == paris(2026, 12, 11, 9), "before the window"
    assert placed(D0, paris(2026, 12, 10, 17, 30)) == paris(2026, 12, 10, 17, 30), "the last one"


def test_a_meeting_that_would_end_after_the_window_goes_to_the_next_working_day() -> None:
    assert placed(D0, paris(2026, 12, 10, 17, 31)) == paris(2026, 12, 11, 9)
    assert placed(D0, paris(2026, 12, 11, 18, 0)) == MONDAY, "Friday evening: Monday"
    assert placed(D0, SATURDAY) == MONDAY


def test_holidays_and_daylight_saving_changes() -> None:
    christmas_eve = paris(2026, 12, 24, 17, 45)  # 25 December is a holiday, then a weekend
    assert placed(D0, christmas_eve) == paris(2026, 12, 28, 9)
    # Sunday 25 October 2026: Paris goes from UTC+2 to UTC+1; Monday 09:00 is 08:00 UTC
    autumn = placed(paris(2026, 10, 22, 9), paris(2026, 10, 25, 10))
    assert autumn == datetime(2026, 10, 26, 8, tzinfo=UTC)
    # Easter Sunday 28 March 2027 is the spring change, and Easter Monday a holiday
    spring = placed(paris(2027, 3, 25, 9), paris(2027, 3, 26, 18, 5))
    assert spring == datetime(2027, 3, 30, 7, tzinfo=UTC)
    # New York changed on 14 March 2027 and Paris had not: the owner's zone counts
    in_new_york = placed(new_york(2027, 3, 11, 9), new_york(2027, 3, 13, 12), NEW_YORK, ("US",))
    assert in_new_york == datetime(2027, 3, 15, 13, tzinfo=UTC)
    assert in_new_york.astimezone(NEW_YORK).hour == 9


def rings(due: datetime, at: datetime) -> datetime:
    return ring_at(CALENDAR, due.astimezone(UTC), at.astimezone(UTC), PARIS, FR)


def test_a_task_raised_late_rings_at_the_next_working_time() -> None:
    assert rings(D0, D0 + timedelta(minutes=4)) == D0, "a pass a few minutes late: at its due"
    assert rings(D0, paris(2026, 12, 10, 14, 10)) == paris(2026, 12, 10, 14, 10), "at once"
    assert rings(D0, paris(2026, 12, 10, 19)) == paris(2026, 12, 11, 9), "evening: next morning"
    assert rings(D0, SATURDAY) == MONDAY
    assert rings(D0, paris(2026, 12, 24, 18, 30)) == paris(2026, 12, 28, 9), "Christmas"


def test_a_meeting_is_placed_and_a_task_rings_late() -> None:
    owners_time = OwnersTime(CALENDAR, PARIS, FR)
    assert owners_time.late_time("mission_closeout", "bilan", D0, SATURDAY) == MONDAY
    assert owners_time.late_time("checkpoint_meeting", "open-issues", D0, SATURDAY) == MONDAY
    assert owners_time.late_time("checkpoint_meeting", "open-issues", D0, D0) is None
    assert owners_time.late_time("status_update_due", "reminder", D0, D0) is None
    thursday_late = paris(2026, 12, 10, 14, 10)
    assert owners_time.late_time("status_update_due", "reminder", D0, thursday_late) == (
        thursday_late
    )
    assert owners_time.late_time("checkpoint_meeting", "open-issues", D0, thursday_late) == (
        paris(2026, 12, 10, 14, 30)
    ), "a meeting takes the next half-hour"


# -- through a pass: the feed, a CalDAV server ---------------------------------------------


def feed_only(tmp_path: Path, concern: Concern) -> Settings:
    """The owner's settings without [caldav] (items in the feed only), the concern's rule on."""
    rules = "".join(
        f"[rules.{name}]\nenabled = {'true' if name == concern.rule else 'false'}\n"
        for name in RULES
    )
    return parse_settings(MINIMAL_CONFIG + rules, tmp_path / "f.toml", {"HOME": str(tmp_path)})


def tick(store: Store, settings: Settings, at: datetime) -> list[str]:
    """One pass at `at` as `followupd tick` runs it; the keys delivered."""
    synced = sync_calendars(store, settings, at) if settings.caldav is not None else None
    assert synced is None or not synced.failed, synced.notices
    with store.session() as session:
        evaluate(session, settings, enabled_rules(settings.rules), at)
    deliverer = Deliverer(store, settings, "w1", rng=random.Random(1))

    async def deliver() -> list[str]:
        report = await deliverer.run(at)
        await deliverer.close_vanished(at, report)
        return report.sent

    return asyncio.run(deliver())


def the_part(text: bytes | str, name: str) -> Component:
    (part,) = [part for part in Calendar.from_ical(text).walk() if part.name == name]
    return part


def when(part: Component, name: str) -> datetime:
    """The time of property `name` of `part`."""
    value: Any = part.get(name)
    found: datetime = value.dt
    return found


def trigger(part: Component) -> datetime:
    (alarm,) = [sub for sub in part.subcomponents if sub.name == "VALARM"]
    return when(alarm, "TRIGGER")


def feed_event(store: Store, at: datetime) -> Component:
    with store.session() as session:
        body = build_feed(feed_items(session, at, PARIS), PARIS, "followupd").body
    return the_part(body, "VEVENT")


def test_the_feed_offers_a_late_meeting_at_the_next_working_time_and_keeps_it(
    store: Store, tmp_path: Path
) -> None:
    imported(store, tmp_path, MEETING.data)
    settings = feed_only(tmp_path, MEETING)
    assert MEETING.first in tick(store, settings, SATURDAY)
    assert outbox(store)[MEETING.first].due_at == D0, "the period is still the rule's"
    event = feed_event(store, SATURDAY)
    assert when(event, "DTSTART") == MONDAY and when(event, "DTEND") == MONDAY + MEETING_LENGTH
    assert str(event["STATUS"]) == "TENTATIVE"
    assert trigger(event) == MONDAY.astimezone(UTC), "its alarm rings then too"
    for later in (paris(2026, 12, 13, 20), paris(2026, 12, 14, 11), paris(2026, 12, 16, 10)):
        tick(store, settings, later)
        assert when(feed_event(store, later), "DTSTART") == MONDAY, f"moved at {later}"
    assert item(store, MEETING.first).snoozed_until is None, "no snooze of the user's"


def test_the_feed_shows_a_late_meeting_still_to_deliver_where_it_will_be(
    store: Store, tmp_path: Path
) -> None:
    imported(store, tmp_path, MEETING.data)
    settings = feed_only(tmp_path, MEETING)
    with store.session() as session:
        evaluate(session, settings, enabled_rules(settings.rules), SATURDAY)
    assert outbox(store)[MEETING.first].state == FollowUpState.PENDING
    owners_time = OwnersTime(CALENDAR, PARIS, FR)
    for at in (SATURDAY, paris(2026, 12, 13, 18)):
        with store.session() as session:
            (coming,) = feed_items(session, at, PARIS, time=owners_time)
        assert coming.meeting and coming.due_at == MONDAY, f"as it will be, at {at}"
    assert MEETING.first in tick(store, settings, paris(2026, 12, 13, 18))
    assert when(feed_event(store, SATURDAY), "DTSTART") == MONDAY, "raised: where it was shown"


def feed_task(store: Store, at: datetime, time: OwnersTime | None = None) -> Component:
    with store.session() as session:
        body = build_feed(feed_items(session, at, PARIS, time=time), PARIS, "followupd").body
    return the_part(body, "VTODO")


def test_a_task_raised_late_stays_due_when_it_was_and_rings_at_the_next_working_time(
    store: Store, tmp_path: Path
) -> None:
    imported(store, tmp_path, STATUS.data)
    settings = feed_only(tmp_path, STATUS)
    with store.session() as session:
        evaluate(session, settings, enabled_rules(settings.rules), SATURDAY)
    coming = feed_task(store, SATURDAY, OwnersTime(CALENDAR, PARIS, FR))
    assert when(coming, "DUE") == D0 and trigger(coming) == MONDAY, "still to deliver"
    assert STATUS.first in tick(store, settings, paris(2026, 12, 13, 18))
    assert item(store, STATUS.first).due_at.astimezone(UTC) == D0.astimezone(UTC)
    for later in (paris(2026, 12, 13, 18), paris(2026, 12, 14, 11)):
        task = feed_task(store, later)
        assert when(task, "DUE") == D0, "overdue, honestly"
        assert trigger(task) == MONDAY.astimezone(UTC), f"rings on Monday morning, at {later}"


def written_late(
    store: Store, tmp_path: Path, dav: DavServer, concern: Concern
) -> tuple[Settings, str, WriteCalendar]:
    """`concern`'s first period raised two days late into `dav`'s calendar: the settings,
    its item's href, the calendar as an app sees it."""
    imported(store, tmp_path, concern.data)
    settings = settings_for(tmp_path, dav, concern)
    assert concern.first in tick(store, settings, SATURDAY)
    href = item(store, concern.first).href
    assert href is not None
    return settings, href, WriteCalendar(dav)


@pytest.mark.parametrize("dav_kind", SERVERS)
def test_a_late_meeting_on_a_caldav_server_is_no_move_of_the_users_and_theirs_wins(
    store: Store, tmp_path: Path, dav: DavServer
) -> None:
    settings, href, calendar = written_late(store, tmp_path, dav, MEETING)
    text, _ = calendar.get(href)
    assert when(the_part(text, "VEVENT"), "DTSTART") == MONDAY

    # the next syncs read followupd's own placing back: no answer of the user's
    for at in (paris(2026, 12, 13, 10), paris(2026, 12, 14, 8)):
        synced = sync_calendars(store, settings, at)
        assert not synced.failed and synced.user.counts == (0, 0, 0), at
    assert item(store, MEETING.first).snoozed_until is None

    # the user moves it to Tuesday afternoon: snoozed there, and kept
    text, etag = calendar.get(href)
    moved = Calendar.from_ical(text)
    event = the_part(text, "VEVENT")
    tuesday = paris(2026, 12, 15, 14)
    for part in moved.walk("VEVENT"):
        part.pop("DTSTART")
        part.pop("DTEND")
        part.add("dtstart", tuesday)
        part.add("dtend", tuesday + timedelta(hours=1))
        part.pop("SEQUENCE")
        part.add("sequence", int(str(event["SEQUENCE"])) + 1)
    calendar.put(href, moved.to_ical(), etag)
    synced = sync_calendars(store, settings, paris(2026, 12, 14, 10))
    assert synced.user.snoozed == [MEETING.first]
    assert item(store, MEETING.first).snoozed_until == tuesday
    tick(store, settings, paris(2026, 12, 14, 11))  # followupd moves its alarm to the user's date
    text, _ = calendar.get(href)
    assert when(the_part(text, "VEVENT"), "DTSTART") == tuesday
    assert trigger(the_part(text, "VEVENT")) == tuesday.astimezone(UTC)


@pytest.mark.parametrize("dav_kind", SERVERS)
def test_a_late_task_on_a_caldav_server_rings_monday_and_then_when_the_user_says(
    store: Store, tmp_path: Path, dav: DavServer
) -> None:
    settings, href, calendar = written_late(store, tmp_path, dav, STATUS)
    text, _ = calendar.get(href)
    task = the_part(text, "VTODO")
    assert when(task, "DUE") == D0 and trigger(task) == MONDAY.astimezone(UTC)

    synced = sync_calendars(store, settings, paris(2026, 12, 13, 10))
    assert not synced.failed and synced.user.counts == (0, 0, 0), "its own alarm: no answer"

    # the user puts it off to Sunday evening (before followupd's alarm), then to Tuesday:
    # followupd's alarm follows
    for to, at in ((paris(2026, 12, 13, 20), paris(2026, 12, 13, 11)),
                   (paris(2026, 12, 15, 14), paris(2026, 12, 13, 12))):  # fmt: skip
        text, etag = calendar.get(href)
        moved = "\r\n".join(todoman_moved(to)(text.splitlines()))
        calendar.put(href, moved.encode(), etag)
        synced = sync_calendars(store, settings, at)
        assert synced.user.snoozed == [STATUS.first], to
        tick(store, settings, at)
        text, _ = calendar.get(href)
        task = the_part(text, "VTODO")
        due = when(task, "DUE")  # floating, as todoman wrote it: in the owner's zone
        assert due.tzinfo is None and due == to.replace(tzinfo=None), to
        assert trigger(task) == to.astimezone(UTC), to


def test_the_demo_late_meeting_is_offered_on_monday(
    cli: RunCli, home: Path, database_url: URL
) -> None:
    """The new-user trial: the demo on Sunday 6 December 2026; Karim Benali's meeting of
    30 November is offered on Monday 7 December at 09:00, in the feed and `outbox show`."""
    (home / "followupd.toml").write_text(MINIMAL_CONFIG, encoding="utf-8")
    assert cli("init", "--demo", "--today", "2026-12-06").code == 0
    assert cli("tick", "--now", "2026-12-06T10:00").code == 0
    monday = paris(2026, 12, 7, 9)
    store = Store.open(database_url)
    try:
        meetings = {
            key: row.due_at for key, row in outbox(store).items() if row.rule == MEETING.rule
        }
        with store.session() as session:
            body = build_feed(feed_items(session, SATURDAY, PARIS), PARIS, "followupd").body
    finally:
        store.close()
    assert len(meetings) == 2, meetings
    assert all(due.astimezone(UTC) < monday.astimezone(UTC) for due in meetings.values())
    events = [part for part in Calendar.from_ical(body).walk() if part.name == "VEVENT"]
    assert sorted(str(event["SUMMARY"]) for event in events if "Karim" in str(event["SUMMARY"]))
    assert [when(event, "DTSTART") for event in events] == [monday, monday]
    for key in meetings:
        shown = cli("outbox", "show", key)
        assert "offered at 2026-12-07 09:00, the next working time" in shown.out, shown.out
