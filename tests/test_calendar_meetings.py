"""Meetings put in the calendar ahead of time count as they pass, with nothing fetched again.

Against a real CalDAV server (Radicale on loopback), on both databases. The
mission `acme-audit` started on 1 September with no meeting since: without
one, `checkpoint_meeting` asks for a réunion de mise au point on 30 December.
"""

from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import func, select

from followupd.config.load import parse_settings
from followupd.config.rule_options import RuleOptions
from followupd.config.settings import Settings
from followupd.engine import evaluation
from followupd.rules.base import Rule
from followupd.rules.registry import enabled_rules
from followupd.sources.caldav import meetings
from followupd.sources.caldav.sync import CalendarSync, SyncReport, sync_calendars
from followupd.sources.files.importer import import_files
from followupd.store.db import HEAD_REVISION, MIGRATIONS, Store
from followupd.store.models import CalendarMeeting, Contact, Touchpoint
from tests.conftest import MINIMAL_CONFIG, RunCli
from tests.davserver import PASSWORD_VARIABLE, USER, CalendarApp, DavServer, event
from tests.rulekit import ACME, PARIS, outbox, paris

JEANNE = "ATTENDEE;CN=Jeanne Dupont:mailto:jeanne.dupont@acme.example"
DECEMBER_30 = "checkpoint_meeting:acme-audit:2026-12-30"


def at(month: int, day: int, hour: int = 9, year: int = 2026) -> datetime:
    return paris(year, month, day, hour)


@pytest.fixture
def loaded(store: Store, tmp_path: Path) -> Store:
    path = tmp_path / "data.toml"
    path.write_text(ACME, encoding="utf-8")
    import_files(store, [path], PARIS)
    return store


def config_text(dav: DavServer) -> str:
    return MINIMAL_CONFIG + (
        f'[caldav]\nurl = "{dav.url}"\nusername = "{USER}"\n'
        f'password_env = "{PASSWORD_VARIABLE}"\nread_calendars = ["Rendez-vous"]\n'
    )


@pytest.fixture
def settings(tmp_path: Path, dav: DavServer) -> Settings:
    text = config_text(dav)
    return parse_settings(text, tmp_path / "followupd.toml", {"HOME": str(tmp_path)})


@pytest.fixture
def app(dav: DavServer) -> CalendarApp:
    return CalendarApp(dav)


def checkpoint(settings: Settings) -> list[Rule[RuleOptions]]:
    return [rule for rule in enabled_rules(settings.rules) if rule.name == "checkpoint_meeting"]


def evaluate(store: Store, settings: Settings, when: datetime) -> set[str]:
    """One evaluation pass at `when`, with no sync: the checkpoint keys recorded."""
    with store.session() as session:
        evaluation.evaluate(session, settings, checkpoint(settings), when)
    return {key for key in outbox(store) if key.startswith("checkpoint_meeting:")}


def met(store: Store) -> list[datetime]:
    """When the meetings counted took place, in Paris."""
    with store.session() as session:
        query = select(Touchpoint.at).where(Touchpoint.kind == "meeting").order_by(Touchpoint.at)
        return [instant.astimezone(PARIS) for instant in session.scalars(query)]


def weekly(*lines: str) -> str:
    """Jeanne's weekly point, Tuesdays 14:00 to 15:00 from 1 December, with no end."""
    return event(
        "weekly-1", "Point hebdo", "", "DTSTART;TZID=Europe/Paris:20261201T140000",
        "DTEND;TZID=Europe/Paris:20261201T150000", "RRULE:FREQ=WEEKLY;BYDAY=TU", JEANNE, *lines,
    )  # fmt: skip


def sync(store: Store, settings: Settings, when: datetime) -> SyncReport:
    return sync_calendars(store, settings, when)


ONE_MEETING = event(
    "meet-1", "Point d'étape", "", "DTSTART;TZID=Europe/Paris:20261208T140000",
    "DURATION:PT1H", JEANNE,
)  # fmt: skip


def test_a_meeting_synced_a_week_ahead_counts_once_it_has_ended_without_a_sync(
    loaded: Store, settings: Settings, app: CalendarApp, dav: DavServer
) -> None:
    with loaded.sessions() as session:
        planned = evaluation.plan(session, settings, checkpoint(settings), at(12, 1), at(12, 31))
    assert DECEMBER_30 in {intent.key for intent in planned}, "no meeting: the reminder is due"

    app.put("Rendez-vous", "point.ics", ONE_MEETING)
    assert sync(loaded, settings, at(12, 1)).meetings == 0, "not held yet"
    assert met(loaded) == []
    assert evaluate(loaded, settings, at(12, 8, 14)) == set()
    assert met(loaded) == [], "under way: not counted yet"

    dav.reset_counts()
    assert evaluate(loaded, settings, at(12, 30, 10)) == set(), "the meeting was on 8 December"
    assert met(loaded) == [at(12, 8, 14)]
    with loaded.session() as session:
        (meeting,) = session.scalars(select(Touchpoint).where(Touchpoint.kind == "meeting"))
        contact = session.get(Contact, meeting.contact_id)
        assert (meeting.mission.key, contact and contact.key) == ("acme-audit", "jdupont")
        assert meeting.note == "Point d'étape"
        assert session.scalar(select(func.count()).select_from(CalendarMeeting)) == 0
    report = sync(loaded, settings, at(12, 30, 11))
    assert (report.fetched, report.meetings, dav.calendar_data_sent) == (0, 0, 0)
    assert met(loaded) == [at(12, 8, 14)], "counted once"
    assert evaluate(loaded, settings, at(1, 7, 10, year=2027)) == {
        "checkpoint_meeting:acme-audit:2027-01-07"
    }, "30 days after the meeting, the next reminder"


def test_a_sync_that_fetches_nothing_counts_the_meetings_that_ended(
    loaded: Store, settings: Settings, app: CalendarApp, dav: DavServer
) -> None:
    app.put("Rendez-vous", "point.ics", ONE_MEETING)
    sync(loaded, settings, at(12, 1))
    dav.reset_counts()
    report = sync(loaded, settings, at(12, 8, 16))
    assert (report.fetched, report.meetings, dav.calendar_data_sent) == (0, 1, 0)
    assert met(loaded) == [at(12, 8, 14)]
    assert evaluate(loaded, settings, at(12, 30, 10)) == set()


def test_plan_sees_the_meetings_that_ended_and_changes_nothing(
    loaded: Store, settings: Settings, app: CalendarApp
) -> None:
    app.put("Rendez-vous", "point.ics", ONE_MEETING)
    sync(loaded, settings, at(12, 1))
    with loaded.sessions() as session:
        planned = evaluation.plan(session, settings, checkpoint(settings), at(12, 9), at(12, 31))
        session.rollback()
    assert DECEMBER_30 not in {intent.key for intent in planned}
    assert met(loaded) == [], "plan recorded nothing"
    with loaded.session() as session:
        assert session.scalar(select(func.count()).select_from(CalendarMeeting)) == 1


@pytest.mark.slow
def test_a_weekly_meeting_keeps_counting_for_months_with_no_object_fetched(
    loaded: Store, settings: Settings, app: CalendarApp, dav: DavServer
) -> None:
    app.put("Rendez-vous", "weekly.ics", weekly())
    assert sync(loaded, settings, at(11, 30)).fetched == 1
    dav.reset_counts()
    when = at(12, 2)  # Wednesdays, for ten months: a sync, then an evaluation
    while when < at(10, 1, year=2027):
        report = sync(loaded, settings, when)
        assert (report.fetched, report.meetings) == (0, 1), when
        assert evaluate(loaded, settings, when) == set(), when
        assert met(loaded)[-1] == when - timedelta(hours=19), "Tuesday 14:00, DST or not"
        when += timedelta(days=7)
    assert dav.calendar_data_sent == 0, "no object fetched again"
    assert met(loaded) == tuesdays(until=at(9, 28, 14, year=2027))

    # two years with no sync at all: the evaluations alone keep counting
    assert evaluate(loaded, settings, at(9, 26, 16, year=2029)) == set()
    assert met(loaded) == tuesdays(until=at(9, 25, 14, year=2029))


def tuesdays(until: datetime) -> list[datetime]:
    """Every Tuesday at 14:00 in Paris from 1 December 2026 to `until`."""
    day, found = at(12, 1, 14), []
    while day <= until:
        found.append(day)
        day += timedelta(days=7)  # same zone: wall-clock days, 14:00 in summer too
    return found


def test_an_exdate_or_a_cancelled_occurrence_never_counts(
    loaded: Store, settings: Settings, app: CalendarApp
) -> None:
    cancelled = (
        "BEGIN:VEVENT\r\nUID:weekly-1\r\nDTSTAMP:20261101T000000Z\r\n"
        "RECURRENCE-ID;TZID=Europe/Paris:20261222T140000\r\nSUMMARY:Point hebdo\r\n"
        "DTSTART;TZID=Europe/Paris:20261222T140000\r\nDTEND;TZID=Europe/Paris:20261222T150000\r\n"
        f"STATUS:CANCELLED\r\n{JEANNE}\r\nEND:VEVENT\r\n"
    )
    series = weekly("EXDATE;TZID=Europe/Paris:20261215T140000")
    series = series.replace("END:VCALENDAR", cancelled + "END:VCALENDAR")
    app.put("Rendez-vous", "weekly.ics", series)
    app.put("Rendez-vous", "off.ics", event(
        "off-1", "Point annulé", "", "DTSTART;TZID=Europe/Paris:20261210T100000",
        "DURATION:PT1H", "STATUS:CANCELLED", JEANNE,
    ))  # fmt: skip
    sync(loaded, settings, at(11, 30))
    evaluate(loaded, settings, at(1, 6, 10, year=2027))
    assert met(loaded) == [at(12, 1, 14), at(12, 8, 14), at(12, 29, 14), at(1, 5, 14, year=2027)]

    # the user takes 12 January off the series too, the day before
    app.put("Rendez-vous", "weekly.ics", weekly(
        "EXDATE;TZID=Europe/Paris:20261215T140000,20261222T140000,20270112T140000"
    ))  # fmt: skip
    sync(loaded, settings, at(1, 11, year=2027))
    evaluate(loaded, settings, at(1, 20, 10, year=2027))
    assert met(loaded)[-3:] == [at(12, 29, 14), at(1, 5, 14, year=2027), at(1, 19, 14, year=2027)]


def test_moving_or_deleting_a_meeting_updates_what_counts(
    loaded: Store, settings: Settings, app: CalendarApp
) -> None:
    app.put("Rendez-vous", "point.ics", ONE_MEETING)
    sync(loaded, settings, at(12, 1))
    moved = ONE_MEETING.replace("20261208T140000", "20261215T100000")
    app.put("Rendez-vous", "point.ics", moved)
    sync(loaded, settings, at(12, 2))
    evaluate(loaded, settings, at(12, 9))
    assert met(loaded) == [], "moved to the 15th: not held on the 8th"
    evaluate(loaded, settings, at(12, 15, 12))
    assert met(loaded) == [at(12, 15, 10)]

    app.delete("Rendez-vous", "point.ics")
    sync(loaded, settings, at(12, 16))
    assert met(loaded) == [], "deleted: it was not held after all"

    app.put("Rendez-vous", "weekly.ics", weekly())
    sync(loaded, settings, at(12, 16))
    evaluate(loaded, settings, at(12, 23))
    assert met(loaded) == [at(12, 1, 14), at(12, 8, 14), at(12, 15, 14), at(12, 22, 14)]
    app.delete("Rendez-vous", "weekly.ics")
    sync(loaded, settings, at(12, 24))
    evaluate(loaded, settings, at(2, 1, year=2027))
    assert met(loaded) == [], "a deleted series counts no more"
    with loaded.session() as session:
        assert session.scalar(select(func.count()).select_from(CalendarMeeting)) == 0


def test_a_meeting_with_someone_imported_later_counts_and_a_title_can_name_the_mission(
    loaded: Store, settings: Settings, app: CalendarApp, tmp_path: Path
) -> None:
    app.put("Rendez-vous", "new.ics", event(
        "meet-2", "Atelier", "", "DTSTART;TZID=Europe/Paris:20261203T100000", "DURATION:PT2H",
        "ATTENDEE:mailto:Paul.Martin@acme.example",
    ))  # fmt: skip
    app.put("Rendez-vous", "named.ics", event(
        "meet-3", "Revue [acme-audit]", "", "DTSTART;TZID=Europe/Paris:20261204T100000",
        "DURATION:PT1H",
    ))  # fmt: skip
    assert sync(loaded, settings, at(12, 1)).meetings == 0
    assert sync(loaded, settings, at(12, 4, 12)).meetings == 1
    assert met(loaded) == [at(12, 4, 10)], "Paul is no contact yet"
    paul = tmp_path / "paul.toml"
    paul.write_text(
        '[[contacts]]\nkey = "pmartin"\nclient = "acme"\nname = "Paul Martin"\n'
        'email = "paul.martin@acme.example"\n',
        encoding="utf-8",
    )
    import_files(loaded, [paul], PARIS)
    evaluate(loaded, settings, at(12, 7))
    assert met(loaded) == [at(12, 3, 10), at(12, 4, 10)]
    with loaded.session() as session:
        assert session.scalar(select(func.count()).select_from(CalendarMeeting)) == 0


def test_a_sync_killed_before_counting_loses_nothing_and_counting_twice_doubles_nothing(
    loaded: Store, settings: Settings, app: CalendarApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    app.put("Rendez-vous", "weekly.ics", weekly())

    def killed(self: CalendarSync, when: datetime, report: SyncReport) -> None:
        raise KeyboardInterrupt  # the process dies once the objects are stored

    with monkeypatch.context() as patch:
        patch.setattr(CalendarSync, "_record_meetings", killed)
        with pytest.raises(KeyboardInterrupt):
            sync(loaded, settings, at(12, 16))
    evaluate(loaded, settings, at(12, 16))
    assert met(loaded) == [at(12, 1, 14), at(12, 8, 14), at(12, 15, 14)]
    for _ in range(2):
        with loaded.session() as session:
            assert meetings.record_held(session, at(12, 16)) == 0
    assert sync(loaded, settings, at(12, 16)).meetings == 0
    assert len(met(loaded)) == 3


@pytest.fixture
def home_with_calendar(home: Path, dav: DavServer, app: CalendarApp, cli: RunCli) -> Path:
    (home / "followupd.toml").write_text(config_text(dav), encoding="utf-8")
    (home / "data.toml").write_text(ACME, encoding="utf-8")
    assert cli("init").code == 0
    assert cli("import", "data.toml").code == 0
    app.put("Rendez-vous", "point.ics", ONE_MEETING)
    return home


def test_tick_and_plan_count_a_meeting_held_since_the_last_sync(
    cli: RunCli, home_with_calendar: Path, dav: DavServer
) -> None:
    assert cli("sync", "--now", "2026-12-01T09:00").code == 0
    dav.reset_counts()
    plan = json.loads(cli("plan", "--from", "2026-12-29", "--to", "2026-12-31", "--json").out)
    assert DECEMBER_30 not in [followup["key"] for followup in plan["followups"]]
    tick = json.loads(cli("tick", "--now", "2026-12-30T10:00", "--json").out)
    assert DECEMBER_30 not in [followup["key"] for followup in tick["followups"]]
    assert dav.calendar_data_sent == 0
    shown = cli("show", "acme-audit").out
    assert "meeting" in shown and "Point d'étape" in shown


def test_editing_a_series_keeps_the_meetings_held_long_ago(
    loaded: Store, settings: Settings, app: CalendarApp
) -> None:
    app.put("Rendez-vous", "weekly.ics", weekly())
    sync(loaded, settings, at(11, 30))
    evaluate(loaded, settings, at(6, 2, year=2027))
    held = tuesdays(until=at(6, 1, 14, year=2027))
    assert met(loaded) == held

    app.put("Rendez-vous", "weekly.ics", weekly().replace("Point hebdo", "Point du mardi"))
    report = sync(loaded, settings, at(6, 2, year=2027))
    assert report.fetched == 1
    assert met(loaded) == held, "what was read again (90 days) is counted again, once"
    with loaded.session() as session:
        notes = session.execute(
            select(Touchpoint.at, Touchpoint.note).where(Touchpoint.kind == "meeting")
        ).all()
    recent = at(6, 2, year=2027) - meetings.LOOKBACK
    assert {note for when, note in notes if when < recent} == {"Point hebdo"}
    assert {note for when, note in notes if when >= recent} == {"Point du mardi"}

    app.delete("Rendez-vous", "weekly.ics")
    sync(loaded, settings, at(6, 3, year=2027))
    assert met(loaded) == [], "deleted: every meeting it made goes"


def test_two_passes_at_once_record_each_meeting_once(
    loaded: Store, settings: Settings, app: CalendarApp
) -> None:
    app.put("Rendez-vous", "weekly.ics", weekly())
    sync(loaded, settings, at(11, 30))
    first_in, may_commit = threading.Event(), threading.Event()
    created: dict[str, int] = {}

    def holding() -> None:  # a pass that has counted but not committed yet
        with loaded.session() as session:
            created["first"] = meetings.record_held(session, at(12, 16))
            first_in.set()
            may_commit.wait(timeout=30)

    def second() -> None:
        with loaded.session() as session:
            created["second"] = meetings.record_held(session, at(12, 16))

    threads = [threading.Thread(target=holding), threading.Thread(target=second)]
    threads[0].start()
    assert first_in.wait(timeout=30)
    threads[1].start()  # SQLite: waits for the first; PostgreSQL: skips what it holds
    may_commit.set()
    for thread in threads:
        thread.join(timeout=30)
    assert created == {"first": 3, "second": 0}
    assert met(loaded) == [at(12, 1, 14), at(12, 8, 14), at(12, 15, 14)]


def test_a_meeting_ahead_synced_before_the_upgrade_counts_after_it(
    loaded: Store, settings: Settings, app: CalendarApp, dav: DavServer
) -> None:
    app.put("Rendez-vous", "point.ics", ONE_MEETING.replace("T140000", "T100000"))
    app.put("Rendez-vous", "other.ics", weekly())
    sync(loaded, settings, at(12, 1))
    config = Config()  # back to the schema before: its meetings ahead were not kept
    config.set_main_option("script_location", str(MIGRATIONS))
    with loaded.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0005")
    assert loaded.upgrade() == ("0005", HEAD_REVISION)
    report = sync(loaded, settings, at(12, 2))
    assert (report.fetched, report.meetings) == (2, 1), "read again once: the 1 December point"
    assert sync(loaded, settings, at(12, 3)).fetched == 0
    evaluate(loaded, settings, at(12, 9))
    assert met(loaded) == [at(12, 1, 14), at(12, 8, 10), at(12, 8, 14)]


def test_a_series_with_more_occurrences_than_one_read_gives_is_counted_whole(
    loaded: Store, settings: Settings, app: CalendarApp
) -> None:
    app.put("Rendez-vous", "hourly.ics", event(
        "hourly-1", "Permanence [acme-audit]", "", "DTSTART;TZID=Europe/Paris:20261201T000000",
        "DURATION:PT30M", "RRULE:FREQ=HOURLY",
    ))  # fmt: skip
    sync(loaded, settings, at(12, 1, 0))  # 62 days ahead is 1,488 occurrences: read 1,000
    evaluate(loaded, settings, at(1, 30, 0, year=2027))
    held = met(loaded)
    assert (len(held), held[0], held[-1]) == (60 * 24, at(12, 1, 0), at(1, 29, 23, year=2027))


def test_a_calendar_taken_out_of_the_config_counts_no_more_meetings(
    loaded: Store, settings: Settings, app: CalendarApp, dav: DavServer, tmp_path: Path
) -> None:
    app.put("Rendez-vous", "point.ics", ONE_MEETING)
    app.calendar("Missions")
    assert sync(loaded, settings, at(12, 1)).meetings == 0, "stored ahead, not held yet"

    only_missions = config_text(dav).replace('["Rendez-vous"]', '["Missions"]')
    elsewhere = parse_settings(only_missions, tmp_path / "followupd.toml", {"HOME": str(tmp_path)})
    assert sync(loaded, elsewhere, at(12, 2)).failed == []
    assert evaluate(loaded, elsewhere, at(12, 30, 10)) == {DECEMBER_30}, "no meeting counted"
    assert met(loaded) == []

    back = sync(loaded, settings, at(12, 31))  # read again: synced anew, the meeting held
    assert [(c.mode, c.fetched) for c in back.calendars] == [("full", 1)]
    assert met(loaded) == [at(12, 8, 14)]
