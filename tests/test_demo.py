"""`followupd init --demo`: the demo's dates moved to the week it is loaded in.

The demo file is written as seen from Sunday 22 November 2026; loaded on any
day, its dates move by whole weeks so that this Sunday becomes the last one on
or before the day, every weekday kept, and every rule has something to show.
"""

from __future__ import annotations

import email
import email.policy
import json
import tomllib
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.engine import URL

from followupd.channels.feed.build import feed_items
from followupd.cli.app import App
from followupd.config.settings import MAILBOX_RULES
from followupd.domain.states import CalendarState
from followupd.rules.registry import RULES
from followupd.sources.files.demo import DEMO_DATA
from followupd.sources.files.demo_dates import (
    REFERENCE_DAY,
    last_sunday,
    moved_by_weeks,
    shifted,
    weeks_for,
)
from followupd.store.db import Store
from followupd.store.models import Invoice, Issue, Mission, Touchpoint
from tests.conftest import MINIMAL_CONFIG, RunCli

PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")
SUNDAY = 6  # date.weekday()
ONE_HOUR, MINUS_5 = timezone(timedelta(hours=1)), timezone(timedelta(hours=-5))  # as TOML gives

# Days of loading: the reference day itself, a Wednesday in March, a Sunday, the
# last day of a year, a day in July, and the days daylight-saving time starts in
# the United States and in Europe.
LOADING_DAYS = [
    date(2026, 11, 22),
    date(2027, 3, 17),
    date(2027, 6, 6),
    date(2026, 12, 31),
    date(2027, 7, 14),
    date(2027, 3, 14),
    date(2027, 3, 28),
]
GREETINGS = "new_year_greetings"


def demo_data() -> dict[str, Any]:
    return tomllib.loads(DEMO_DATA.read_text(encoding="utf-8"))


def dated(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    """Every date and date-time in `value`, with where it is."""
    if isinstance(value, date):
        yield path, value
    elif isinstance(value, dict):
        for name, item in value.items():
            yield from dated(item, (*path, name))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from dated(item, (*path, index))


def zone_of_mission(data: dict[str, Any]) -> dict[str, ZoneInfo]:
    clients = {client["key"]: ZoneInfo(client["timezone"]) for client in data["clients"]}
    return {mission["key"]: clients[mission["client"]] for mission in data["missions"]}


# -- the shift, on the parsed file -----------------------------------------------------------


@pytest.mark.parametrize("day", LOADING_DAYS, ids=str)
def test_the_reference_day_lands_on_the_last_sunday(day: date) -> None:
    sunday = last_sunday(day)
    assert sunday.weekday() == SUNDAY
    assert timedelta(0) <= day - sunday < timedelta(days=7)
    assert REFERENCE_DAY.weekday() == SUNDAY
    assert REFERENCE_DAY + timedelta(weeks=weeks_for(day)) == sunday


@pytest.mark.parametrize("day", LOADING_DAYS, ids=str)
def test_every_date_moves_by_the_same_weeks_and_keeps_its_weekday(day: date) -> None:
    data = demo_data()
    moved = shifted(data, day)
    weeks = weeks_for(day)
    zones = zone_of_mission(data)
    pairs = list(zip(dated(data), dated(moved), strict=True))
    assert len(pairs) > 50, "the demo is full of dates"
    for (where, written), (moved_where, value) in pairs:
        assert moved_where == where
        if isinstance(written, datetime):
            assert isinstance(value, datetime)
            zone = zones[data[where[0]][where[1]]["mission"]]
            before, after = written.astimezone(zone), value.astimezone(zone)
            assert after.date() == before.date() + timedelta(weeks=weeks), where
            assert after.time() == before.time(), f"{where}: the wall clock is kept"
        else:
            assert value == written + timedelta(weeks=weeks), where
        assert value.weekday() == written.weekday()
    without_dates = [(where, value) for where, value in dated(moved)]
    assert len(without_dates) == len(pairs)
    assert strip_dates(moved) == strip_dates(data), "nothing else changes"


def strip_dates(value: Any) -> Any:
    if isinstance(value, date):
        return None
    if isinstance(value, dict):
        return {name: strip_dates(item) for name, item in value.items()}
    if isinstance(value, list):
        return [strip_dates(item) for item in value]
    return value


def test_loaded_in_the_reference_week_the_demo_is_as_written() -> None:
    data = demo_data()
    for offset in range(7):
        assert shifted(data, REFERENCE_DAY + timedelta(days=offset)) == data
    assert shifted(data, REFERENCE_DAY + timedelta(days=7)) != data
    assert demo_data() == data, "the parsed data given is left as it is"


def test_a_meeting_keeps_its_local_time_across_daylight_saving_time() -> None:
    data = {
        "clients": [
            {"key": "lumen", "timezone": "Europe/Paris"},
            {"key": "harbor", "timezone": "America/New_York"},
        ],
        "missions": [
            {"key": "crm", "client": "lumen", "start": date(2026, 11, 2)},
            {"key": "data", "client": "harbor", "start": date(2026, 9, 14)},
        ],
        "issues": [
            {"key": "a", "mission": "crm", "opened": datetime(2026, 11, 20, 11, tzinfo=ONE_HOUR)},
            {
                "key": "b",
                "mission": "data",
                "opened": datetime(2026, 11, 19, 8, 45, tzinfo=MINUS_5),
            },
        ],
    }
    moved = shifted(data, date(2027, 4, 7))  # 19 weeks on, both zones in summer time
    paris, new_york = (issue["opened"] for issue in moved["issues"])
    assert paris.astimezone(PARIS) == datetime(2027, 4, 2, 11, 0, tzinfo=PARIS)
    assert paris.utcoffset() == timedelta(hours=2)
    assert new_york.astimezone(NEW_YORK) == datetime(2027, 4, 1, 8, 45, tzinfo=NEW_YORK)
    assert new_york.utcoffset() == timedelta(hours=-4)


def test_a_wall_time_in_the_spring_forward_gap_becomes_a_real_one() -> None:
    data = {
        "clients": [{"key": "lumen", "timezone": "Europe/Paris"}],
        "missions": [{"key": "crm", "client": "lumen"}],
        "touchpoints": [{"mission": "crm",
                         "at": datetime.fromisoformat("2026-11-22T02:30+01:00")}],
    }  # fmt: skip
    moved = shifted(data, date(2027, 3, 28))["touchpoints"][0]["at"]
    # 02:30 does not exist in Paris on 28 March 2027: the clocks go from 02:00 to 03:00
    assert moved.astimezone(UTC).astimezone(PARIS) == moved
    assert moved.date() == date(2027, 3, 28)
    assert moved.utcoffset() == timedelta(hours=2)


def test_a_time_without_zone_or_offset_keeps_what_it_has() -> None:
    naive = datetime(2026, 11, 20, 11, 0)
    fixed = datetime.fromisoformat("2026-11-20T11:00+01:00")
    data = {"issues": [{"key": "a", "mission": "unknown", "opened": naive, "resolved": fixed}]}
    moved = moved_by_weeks(data, 2)["issues"][0]
    assert moved["opened"] == naive + timedelta(weeks=2)
    assert moved["opened"].tzinfo is None, "read later in the owner's zone"
    assert moved["resolved"] == fixed + timedelta(weeks=2)
    assert moved["resolved"].utcoffset() == fixed.utcoffset()
    in_paris = moved_by_weeks(data, 30, PARIS)["issues"][0]["resolved"]
    assert in_paris.astimezone(PARIS).time() == time(11, 0), "the owner's zone as fallback"


# -- init --demo ----------------------------------------------------------------------------


@pytest.fixture
def config(home: Path) -> Path:
    path = home / "followupd.toml"
    path.write_text(MINIMAL_CONFIG, encoding="utf-8")
    return path


def followups(cli: RunCli, *args: str) -> list[dict[str, Any]]:
    result = cli(*args, "--json")
    assert result.code == 0, result
    items = json.loads(result.out)["followups"]
    assert isinstance(items, list)
    return items


def stored_dates(database_url: URL) -> dict[tuple[str, str, str], date]:
    """The dates of the demo's missions, invoices and issues, as stored."""
    store = Store.open(database_url)
    found: dict[tuple[str, str, str], date] = {}
    try:
        with store.session() as session:
            for mission in session.scalars(select(Mission)):
                for name in ("start", "end", "contract_signed", "deposit_paid", "paused_until"):
                    if getattr(mission, name) is not None:
                        found["missions", mission.key, name] = getattr(mission, name)
            for invoice in session.scalars(select(Invoice)):
                for name in ("issued", "due", "paid", "promised"):
                    if getattr(invoice, name) is not None:
                        found["invoices", invoice.number, name] = getattr(invoice, name)
            for issue in session.scalars(select(Issue)):
                for name in ("opened", "client_informed", "resolved"):
                    if getattr(issue, name) is not None:
                        found["issues", issue.key, name] = getattr(issue, name)
            for touchpoint in session.scalars(select(Touchpoint)):
                found["touchpoints", touchpoint.key, "at"] = touchpoint.at
    finally:
        store.close()
    return found


@pytest.mark.parametrize("day", LOADING_DAYS, ids=str)
def test_loaded_on_any_day_every_rule_has_something_to_show(
    cli: RunCli, config: Path, database_url: URL, day: date
) -> None:
    result = cli("init", "--demo", "--today", day.isoformat())
    assert result.code == 0, result
    sunday = last_sunday(day)
    assert f"as seen from {sunday:%A} {sunday.day} {sunday:%B %Y}, the latest Sunday" in (
        result.out
    ), "on a Monday, the day before: not this week's"

    # dates in the right weekday, in the loading week's place
    data = demo_data()
    stored = stored_dates(database_url)
    assert len([key for key in stored if key[0] == "touchpoints"]) == len(data["touchpoints"])
    zones = zone_of_mission(data)
    loaded_at = datetime.combine(day, time(10, 0), tzinfo=PARIS)
    for kind, key_name in (("missions", "key"), ("invoices", "number"), ("issues", "key")):
        for record in data[kind]:
            for name, written in record.items():
                if not isinstance(written, date):
                    continue
                where = f"{kind} {record[key_name]} {name}"
                value = stored[kind, record[key_name], name]
                if isinstance(written, datetime):  # the same wall clock in the client's zone
                    assert isinstance(value, datetime)
                    zone = zones[record["mission"]]
                    local = value.astimezone(zone).replace(tzinfo=None)
                    as_written = written.astimezone(zone).replace(tzinfo=None)
                    assert local == as_written + (sunday - REFERENCE_DAY), where
                    assert value <= loaded_at, f"{where}: has not happened yet"
                else:
                    assert value - written == sunday - REFERENCE_DAY, where
                    assert value.weekday() == written.weekday(), where
                    if written > REFERENCE_DAY + timedelta(days=6):  # ahead, whatever the weekday
                        assert value > day, f"{where}: still ahead"
    assert all(at <= loaded_at for key, at in stored.items() if key[0] == "touchpoints")

    # the first plan (30 days from now) shows every rule but the January greetings
    now = loaded_at.isoformat()
    planned = followups(cli, "plan", "--from", now)
    names = set(RULES) - set(MAILBOX_RULES)  # the demo reads no mailbox
    # (the greetings too when the window reaches January)
    assert {item["rule"] for item in planned} | {GREETINGS} == names
    january = date(day.year + 1, 1, 31).isoformat()
    greetings = followups(cli, "plan", "--from", now, "--to", january)
    assert GREETINGS in {item["rule"] for item in greetings}

    # the first pass is gentle: no follow-up already past its grace, no pile of repeats
    first = followups(cli, "tick", "--now", now, "--dry-run")
    assert first, "the first pass has something to do"
    assert {item["state"] for item in first} == {"pending"}
    repeats = Counter((item["rule"], item["mission"], item["channel"]) for item in first)
    assert max(repeats.values()) <= 2, repeats
    assert len(first) <= 12


def test_init_demo_again_keeps_the_dates_it_was_loaded_with(
    cli: RunCli, config: Path, database_url: URL
) -> None:
    assert cli("init", "--demo", "--today", "2027-03-17").code == 0
    loaded = stored_dates(database_url)
    for day in ("2027-03-20", "2027-07-14"):  # the same week, then months later
        again = cli("init", "--demo", "--today", day)
        assert again.code == 0, again
        assert "\n0 changes" in again.out
        assert "already loaded, its dates kept (as seen from Sunday 14 March 2027)" in again.out
        assert stored_dates(database_url) == loaded, "nothing moved, nothing added"
    # `import` reads the file as written
    assert cli("import", DEMO_DATA).code == 0
    written = demo_data()["missions"][0]
    assert stored_dates(database_url)["missions", written["key"], "start"] == written["start"]


def test_init_demo_takes_the_day_from_the_clock_in_the_owners_zone(
    cli: RunCli, config: Path, database_url: URL, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Saturday 23:30 in UTC is already Sunday in Paris: that Sunday is the week's
    monkeypatch.setattr(App, "now", lambda self: datetime(2027, 3, 20, 23, 30, tzinfo=UTC))
    result = cli("init", "--demo")
    assert result.code == 0, result
    assert "as seen from Sunday 21 March 2027" in result.out
    written = demo_data()["missions"][0]
    stored = stored_dates(database_url)["missions", written["key"], "start"]
    assert stored - written["start"] == date(2027, 3, 21) - REFERENCE_DAY


def test_today_goes_with_demo(cli: RunCli, config: Path) -> None:
    result = cli("init", "--today", "2027-03-17")
    assert result.code == 2
    assert "--today goes with --demo" in result.err
    bad = cli("init", "--demo", "--today", "17/03/2027")
    assert bad.code == 2
    assert "expected a date like" in bad.err
    assert "database:" not in bad.out, "stopped before touching the database"


@pytest.mark.parametrize("day", [date(2026, 11, 22), date(2027, 3, 17)], ids=str)
def test_the_first_run_says_each_thing_once(
    cli: RunCli, home: Path, database_url: URL, day: date
) -> None:
    """`init --demo`, then a first real pass with the defaults: one digest, one item a concern."""
    (home / "followupd.toml").write_text(
        MINIMAL_CONFIG.replace('reminders_by_email = "each"\n', ""), encoding="utf-8"
    )
    assert cli("init", "--demo", "--today", day.isoformat()).code == 0
    workday = day if day.weekday() < 5 else day + timedelta(days=7 - day.weekday())
    opening = datetime.combine(workday, time(9, 30))  # the send window opens at 09:00
    first = cli("tick", "--now", opening.isoformat())
    assert first.code == 0, first
    maildir = home / ".local/state/followupd/Maildir/new"
    messages = [
        email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        for path in maildir.iterdir()
    ]
    said = Counter((str(message["To"]), str(message["Subject"])) for message in messages)
    assert said, "the first pass sent something"
    assert max(said.values()) == 1, said
    to_owner = [message for message in messages if "claire@cabinet.example" in message["To"]]
    assert len(to_owner) == 1, [str(message["Subject"]) for message in to_owner]  # the digest
    store = Store.open(database_url)
    try:
        with store.session() as session:
            shown = feed_items(session, opening.replace(tzinfo=PARIS), PARIS)
    finally:
        store.close()
    open_items = Counter(item.uid for item in shown if item.status == CalendarState.OPEN)
    assert open_items
    assert max(open_items.values()) == 1, open_items


def test_the_demo_shows_getting_paid(cli: RunCli, home: Path) -> None:
    """As written: one email for Harborline's two invoices, a part payment with the
    penalties to date, a consumer's promise recalled without penalties, and its call."""
    (home / "followupd.toml").write_text(
        MINIMAL_CONFIG.replace('reminders_by_email = "each"\n', ""), encoding="utf-8"
    )
    assert cli("init", "--demo", "--today", "2026-11-22").code == 0
    for now in ("2026-11-27T21:30", "2026-11-30T09:30", "2026-12-02T09:30"):
        assert cli("tick", "--now", now).code == 0
    maildir = home / ".local/state/followupd/Maildir/new"
    sent: dict[str, list[str]] = {}
    for path in maildir.iterdir():
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        body = message.get_body(("plain",))
        assert body is not None
        text = str(body.get_content()).replace("\r\n", "\n")
        sent.setdefault(str(message["To"]), []).append(f"{message['Subject']}\n{text}")
    (harborline,) = sent["rachel.kim@harborline.example"]
    assert harborline.startswith("2 invoices awaiting payment\n")
    assert "F-2026-041" in harborline and "F-2026-042" in harborline
    assert "Total outstanding: $20,884.80." in harborline
    (lumen,) = sent["karim.benali@atelier-lumen.example"]
    # F-2026-038's last nudge lists F-2026-035, long overdue too, and what is left of each
    assert lumen.startswith("2 factures en attente de règlement\n")
    assert "- F-2026-035 du " in lumen
    assert "dont 1\u202f812,50\xa0€ restant à régler" in lumen
    assert "article L441-10" in lumen and "40,00\xa0€ d'indemnité" in lumen
    (consumer,) = sent["marion.leclerc@example.org"]
    assert "serait réglée au plus tard le 27 novembre 2026" in consumer
    for never in ("L441-10", "D441-5", "pénalités", "indemnité"):
        assert never not in consumer, never
    digests = "\n".join(sent["claire@cabinet.example"])
    assert "- Marion Leclerc : tel:+33639987108\n" in digests, "the name said once"
    assert "règlement de la facture F-2026-039 promis pour le 27 novembre 2026" in digests
