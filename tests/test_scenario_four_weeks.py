"""Four weeks of a practice: the reminders followupd gives are ones a person can live with.

The demo portfolio, loaded on Monday 23 November 2026 (its dates as written),
and four weeks of a consultant's life with it: issues found and imported,
a contract never signed and another signed late, and what the user does in
their calendar app, in the forms the apps write (tests/remote_control_corpus):
a status update ticked off, two reminders put off to a later date, one
cancelled, one deleted, a client informed by ticking the task.
`followupd tick --json` runs every working day, with a real SMTP server and
a real CalDAV server, reminders by email in the daily digest (the default).
Every day:

- the owner gets at most one email, and no two messages of the day share a subject;
- the calendar on the server, and the feed, hold at most one open item per concern;
- each concern the scenario follows is raised exactly when its rule and what
  the user did say, in the calendar and in the digest, and shows the date
  the user chose. The expectation is worked out here from the data, the
  rules' documented cadences and the user's actions, never from a run;
- what `tick --json` says it did (`action`) agrees with where it left each one.

Two shorter tests after it show what the scenario found still wrong: the first
pass sends a client a deposit request and its nudge at once, and a reminder
back from a snooze is due on the day of its period, not on the day it comes.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import holidays
import pytest
from caldav.davclient import DAVClient
from icalendar import Calendar, Component
from sqlalchemy import select
from sqlalchemy.engine import URL

from followupd.channels.feed.build import build_feed, feed_items
from followupd.store.db import Store
from followupd.store.models import Issue, Mission, Touchpoint
from tests.conftest import RunCli
from tests.davserver import PASSWORD, PASSWORD_VARIABLE, USER, CalendarApp, DavServer
from tests.smtpserver import Recorder, smtp_server

PARIS = ZoneInfo("Europe/Paris")
OWNER = "claire@cabinet.example"
FIRST_DAY = date(2026, 11, 23)  # a Monday: the demo's week, its dates as written
LAST_DAY = FIRST_DAY + timedelta(weeks=4, days=-3)  # the fourth Friday
# Each pass runs at the opening of the send window, when the digest is due: a daily
# pass before it (08:30) holds every client email to a window no pass ever sees, and
# they expire after their grace.
TICK_AT = time(9, 0)
WINDOW_OPENS = time(9, 0)  # [business] send_window's default
# the rules whose reminders repeat: one calendar item per `<rule>:<subject>`
REPEATING = {"contract_missing", "client_not_informed", "status_update_due",
             "checkpoint_meeting", "open_ended_mission"}  # fmt: skip
OPEN = {"NEEDS-ACTION", "IN-PROCESS", "TENTATIVE", "CONFIRMED"}
# what `tick --json` may say a pass did to a follow-up, and the states that leaves it in
ACTIONS = {
    "recorded": {"pending"},
    "sent": {"sent"},
    "retrying": {"pending"},
    "failed": {"failed"},
    "cancelled": {"cancelled", "dismissed"},
    "expired": {"expired"},
    "superseded": {"superseded"},
    "closed": {"sent"},  # its item, delivered before, completed or cancelled: reason went
}

# What is added to the demo over the weeks, with `followupd import`.
DOUBLONS = """\
[[issues]]
key = "crm-doublons"
mission = "lumen-refonte-crm"
opened = 2026-11-26T11:00:00+01:00
severity = "medium"
summary = "Doublons de fiches entre l'ancien CRM et le fichier des ventes"
"""
BUDGET = """\
[[issues]]
key = "dsi-budget-gel"
mission = "lumen-accompagnement-dsi"
opened = 2026-11-30T15:00:00+01:00
severity = "medium"
summary = "Budget 2027 de la DSI gelé en attendant l'arbitrage de la direction"
"""
ENTREPOT = """\
[[missions]]
key = "morvan-entrepot"
client = "transports-morvan"
title = "Étude du futur entrepôt de Sens"
contact = "julien-roux"
start = 2026-12-15
status = "proposed"
currency = "EUR"
"""
ENTREPOT_SIGNED = ENTREPOT + "contract_signed = 2026-12-16\n"


def paris(day: date, at: time = WINDOW_OPENS) -> datetime:
    return datetime.combine(day, at, tzinfo=PARIS)


def working_days() -> list[date]:
    """Monday to Friday from the demo's Friday issue to the scenario's last day.

    No public holiday of France falls in them (checked): working days are
    counted the same for the French clients the issues are about.
    """
    first = date(2026, 11, 20)
    days = [first + timedelta(days=n) for n in range((LAST_DAY - first).days + 1)]
    found = [day for day in days if day.weekday() < 5]
    french = holidays.country_holidays("FR", years=2026)
    assert not [day for day in found if day in french]
    return found


WORKING = working_days()
TICKS = [paris(day, TICK_AT) for day in WORKING if day >= FIRST_DAY]


def every_working(opened: date, after: int = 2, every: int = 2) -> list[datetime]:
    """client_not_informed: `after` working days after the day opened, then every `every`."""
    first = WORKING.index(opened) + after
    return [paris(day) for day in WORKING[first::every]]


def contract_reminders(start: date, *countries: str) -> list[datetime]:
    """contract_missing: from 7 days before the start, then every 7 days."""
    return cadence(start - timedelta(days=14), 7, *countries)


def cadence(anchor: date, every_days: int, *countries: str) -> list[datetime]:
    """anchor + k × every_days (k ≥ 1), each on the next working day of `countries`."""
    off = [holidays.country_holidays(country, years=2026) for country in countries]
    due: list[datetime] = []
    nominal = anchor + timedelta(days=every_days)
    while nominal <= LAST_DAY:
        day = nominal
        while day.weekday() >= 5 or any(day in found for found in off):
            day += timedelta(days=1)
        due.append(paris(day))
        nominal += timedelta(days=every_days)
    return due


@dataclass
class Followed:
    """A concern the scenario follows: when its rule raises it, and what the user did to it."""

    concern: str
    words: str  # what names it in a digest line, lower case
    periods: list[datetime]  # due times of its periods, from its rule
    snoozed: tuple[datetime, datetime] | None = None  # (when, until) the user moved it
    completed: datetime | None = None  # ticked off by the user, raised again next period
    ended: datetime | None = None  # from then on raised no more
    ended_as: str | None = None  # its status on the server after; None: not there
    closed_by_followupd: bool = False  # its reason went: followupd closes its item
    # what the model worked out so far
    upto: datetime | None = None  # periods due up to here were raised
    raised_at: datetime | None = None  # the last pass that raised it
    shown_due: datetime | None = None  # when the period it shows came
    shown_period: datetime | None = None  # that period's own due time
    back: bool = False  # came back from its snooze
    read_back: bool = False  # a pass read what the user did to its item (completed, ended)
    later: dict[datetime, datetime] = field(default_factory=dict)  # periods put off then

    def raises(self, at: datetime) -> datetime | None:
        """Whether the pass at `at` raises it: the due time of the period it raises, if so.

        Back from a snooze, it repeats from the user's date: its next periods
        come as many working days later as the one it comes back with was late.
        """
        due = [p for p in self.periods if self.comes(p) <= at and (self.upto is None
               or self.comes(p) > self.upto)]  # fmt: skip
        if not due or (self.ended is not None and self.ended < at) or self.snoozes(at):
            return None
        latest = max(due)
        if self.snoozed is not None and self.snoozed[0] < at and not self.back:
            self.back = True
            late = WORKING.index(at.date()) - WORKING.index(latest.date())
            self.later = {p: self.working_days_after(p, late) for p in self.periods if p > latest}
        self.upto, self.raised_at = at, at
        self.shown_due, self.shown_period = self.comes(latest), latest
        return latest

    def comes(self, period: datetime) -> datetime:
        """When `period` comes: its due time, or later once back from a snooze."""
        return self.later.get(period, period)

    @staticmethod
    def working_days_after(period: datetime, days: int) -> datetime:
        """`days` working days after `period`; past the scenario's end, after its last pass."""
        index = WORKING.index(period.date()) + days
        return paris(WORKING[index]) if index < len(WORKING) else paris(LAST_DAY) + timedelta(1)

    def closes(self, at: datetime) -> datetime | None:
        """Whether the pass at `at` closes its item: the due of the period it showed, if so.

        Closed by followupd when its reason went; or, once, by the user in their
        app (ticked off, cancelled, deleted), which the pass's sync reads back.
        """
        by_user = self.completed if self.closed_by_followupd else (self.completed or self.ended)
        if by_user is not None and by_user < at and not self.read_back:
            self.read_back = True
            return self.shown_period
        if not self.closed_by_followupd or self.ended is None or not self.ended < at:
            return None
        if self.upto is not None and self.upto > self.ended:
            return None
        self.upto = at  # closed once
        return self.shown_period

    def snoozes(self, at: datetime) -> bool:
        return self.snoozed is not None and self.snoozed[0] < at < self.snoozed[1]

    def quiet(self, at: datetime) -> bool:
        """Whether it must be in no digest at `at`: put off, or ended."""
        return self.snoozes(at) or (self.ended is not None and self.ended < at)

    def on_server(self, at: datetime) -> tuple[str | None, datetime | None]:
        """Its status on the server after the pass at `at`, and its due when open."""
        if self.ended is not None and self.ended < at:
            return self.ended_as, None
        if self.raised_at is None or self.shown_due is None:
            return None, None
        if self.completed is not None and self.raised_at < self.completed < at:
            return "COMPLETED", None
        due = self.shown_due
        if self.snoozed is not None and self.snoozed[0] < at:
            due = max(due, self.snoozed[1])
        return "NEEDS-ACTION", due


def followed() -> dict[str, Followed]:
    """What the scenario follows, and what its rules and the user's actions make of it."""
    concerns = [
        # the demo's issue found on Friday 20 November, put off until Tuesday 1 December,
        # then the client informed by ticking the task on Monday 7 December
        Followed(
            "client_not_informed:crm-export-incomplet",
            "prévenir sophie garnier — reprise des données",
            every_working(date(2026, 11, 20)),
            snoozed=(paris(date(2026, 11, 24), time(10)), paris(date(2026, 12, 1))),
            ended=paris(date(2026, 12, 7), time(17, 20)),
            ended_as="COMPLETED",
        ),
        # found on Thursday 26 November, the client never told
        Followed(
            "client_not_informed:crm-doublons",
            "prévenir sophie garnier — doublons de fiches",
            every_working(date(2026, 11, 26)),
        ),
        # found on Monday 30 November; its task deleted on Wednesday 2 December
        Followed(
            "client_not_informed:dsi-budget-gel",
            "budget 2027 de la dsi gelé",
            every_working(date(2026, 11, 30)),
            ended=paris(date(2026, 12, 2), time(10, 30)),
        ),
        # the demo's proposed mission starting 7 December: from 7 days before, every 7
        # days; cancelled in the calendar on Monday 30 November
        Followed(
            "contract_missing:harborline-ml-roadmap",
            "faire signer le contrat à thomas bernard",
            contract_reminders(date(2026, 12, 7), "FR", "US"),
            ended=paris(date(2026, 11, 30), time(11)),
            ended_as="CANCELLED",
        ),
        # proposed on Monday 30 November to start 15 December, signed on 16 December
        Followed(
            "contract_missing:morvan-entrepot",
            "faire signer le contrat à julien roux",
            contract_reminders(date(2026, 12, 15), "FR"),
            ended=paris(date(2026, 12, 16), time(12)),
            ended_as="COMPLETED",
            closed_by_followupd=True,
        ),
        # weekly, last sent 13 November; the 20 November one ticked off on the 24th at
        # 16:05: the next a full week after that
        Followed(
            "status_update_due:harborline-data-platform",
            "envoyer le point d'avancement à rachel kim",
            cadence(date(2026, 11, 13), 7, "FR", "US")[:1]
            + cadence(date(2026, 11, 24), 7, "FR", "US"),
            completed=paris(date(2026, 11, 24), time(16, 5)),
        ),
        # every 14 days from 13 November; the 27 November one put off to 14 December
        Followed(
            "status_update_due:lumen-refonte-crm",
            "envoyer le point d'avancement à sophie garnier",
            cadence(date(2026, 11, 13), 14, "FR"),
            snoozed=(paris(date(2026, 11, 27), time(10)), paris(date(2026, 12, 14))),
        ),
        # every 14 days from 6 November, left alone
        Followed(
            "status_update_due:lumen-accompagnement-dsi",
            "envoyer le point d'avancement à karim benali",
            cadence(date(2026, 11, 6), 14, "FR"),
        ),
    ]
    return {concern.concern: concern for concern in concerns}


# -- the user's calendar app -------------------------------------------------------------


class Phone:
    """The user's calendar app: it reads followupd's calendar and changes items as apps do."""

    def __init__(self, dav: DavServer) -> None:
        self.app = CalendarApp(dav)
        self.client: Any = DAVClient(url=dav.url, username=USER, password=PASSWORD)

    def objects(self) -> list[tuple[str, Component]]:
        """Every task and event in the calendar followupd writes, with its URL."""
        calendar = self.client.principal().calendar(name="followupd")
        return [
            (str(found.url), part)
            for found in calendar.get_objects_by_sync_token(load_objects=True)
            if found.data is not None  # a deleted object, as a server may list it
            for part in Calendar.from_ical(found.data).walk()
            if part.name in ("VTODO", "VEVENT")
        ]

    def url_of(self, concern: str) -> str:
        (url,) = [url for url, part in self.objects() if str(part["UID"]) == f"{concern}@followupd"]
        return url

    def edit(self, concern: str, change: Callable[[list[str]], list[str]]) -> None:
        """Rewrite the item's lines with `change`, and save it over the version read."""
        url = self.url_of(concern)
        text, etag = self.app.get(url)
        lines = text.replace("\r\n ", "").replace("\r\n", "\n").split("\n")
        body = "\r\n".join(change(lines)).encode()
        headers = {"If-Match": etag, "Content-Type": "text/calendar; charset=utf-8"}
        assert self.app.client.put(url, body, headers).status in (201, 204)

    def delete(self, concern: str) -> None:
        """tasks.org: a task swiped away is deleted on the server."""
        assert self.app.client.delete(self.url_of(concern)).status in (200, 204)


def in_task(lines: list[str], edit: Callable[[str], list[str]]) -> list[str]:
    """`edit` applied to each property of the VTODO itself (not of its alarms)."""
    out: list[str] = []
    inside: list[str] = []  # the components the line is in
    for line in lines:
        if line.startswith("BEGIN:"):
            inside.append(line[6:])
        elif line.startswith("END:"):
            inside.pop()
        elif inside[-1:] == ["VTODO"]:
            out += edit(line)
            continue
        out.append(line)
    return out


def named(line: str, *names: str) -> bool:
    return line.split(":", 1)[0].split(";", 1)[0].upper() in names


def apple_reminders_completed(at: datetime) -> Callable[[list[str]], list[str]]:
    """Apple Reminders: STATUS, COMPLETED in UTC, PERCENT-COMPLETE, its sort order."""
    stamp = f"{at.astimezone(UTC):%Y%m%dT%H%M%SZ}"

    def change(lines: list[str]) -> list[str]:
        def line_of(line: str) -> list[str]:
            if named(line, "STATUS"):
                return ["STATUS:COMPLETED", f"COMPLETED:{stamp}", "PERCENT-COMPLETE:100",
                        f"LAST-MODIFIED:{stamp}", "X-APPLE-SORT-ORDER:786704400"]  # fmt: skip
            return [line]

        return in_task(lines, line_of)

    return change


def apple_reminders_moved(until: datetime) -> Callable[[list[str]], list[str]]:
    """Apple Reminders: DTSTART and DUE moved together in the zone, the alarm with them."""
    local = f"{until.astimezone(PARIS):%Y%m%dT%H%M%S}"
    trigger = f"TRIGGER;VALUE=DATE-TIME:{until.astimezone(UTC):%Y%m%dT%H%M%SZ}"

    def change(lines: list[str]) -> list[str]:
        def line_of(line: str) -> list[str]:
            if named(line, "DUE", "DTSTART"):
                return [f"{line.split(';')[0].split(':')[0]};TZID=Europe/Paris:{local}"]
            return [line]

        moved = in_task(lines, line_of)
        return [trigger if named(line, "TRIGGER") else line for line in moved]

    return change


def todoman_moved(until: datetime) -> Callable[[list[str]], list[str]]:
    """todoman `todo edit --due`: a floating DUE, DTSTART left as it was."""
    local = f"DUE:{until.astimezone(PARIS):%Y%m%dT%H%M%S}"
    return lambda lines: in_task(lines, lambda line: [local] if named(line, "DUE") else [line])


def todoman_done(at: datetime) -> Callable[[list[str]], list[str]]:
    """todoman `todo done`: a floating COMPLETED, PERCENT-COMPLETE:100, no STATUS."""
    stamp = f"{at.astimezone(PARIS):%Y%m%dT%H%M%S}"

    def line_of(line: str) -> list[str]:
        if named(line, "STATUS"):
            return [f"COMPLETED:{stamp}", "PERCENT-COMPLETE:100", "PRIORITY:0"]
        return [line]

    return lambda lines: in_task(lines, line_of)


def evolution_cancelled(lines: list[str]) -> list[str]:
    """Evolution: STATUS:CANCELLED, and an ETag of its own on the item."""

    def line_of(line: str) -> list[str]:
        if named(line, "STATUS"):
            return ["STATUS:CANCELLED", "X-EVOLUTION-CALDAV-ETAG:4430d5d07e255364b5238a5f"]
        return [line]

    return in_task(lines, line_of)


# -- what each day is checked for ------------------------------------------------------------


def concern_of(uid: str) -> str:
    """The concern an item is about, from its UID: `<rule>:<subject>` for repeating reminders."""
    key = uid.removesuffix("@followupd")
    parts = key.split(":")
    return ":".join(parts[:2]) if parts[0] in REPEATING else key


def open_twice(parts: list[Component]) -> list[str]:
    """The concerns with more than one open item among `parts`."""
    found = Counter(
        concern_of(str(part["UID"]))
        for part in parts
        if str(part.get("STATUS", "NEEDS-ACTION")) in OPEN
        and "COMPLETED" not in part  # ownCloud Tasks and todoman complete without STATUS
    )
    return [concern for concern, count in found.items() if count > 1]


def due_of(part: Component) -> datetime:
    found: Any = part["DUE"] if "DUE" in part else part["DTSTART"]
    value = found.dt
    assert isinstance(value, datetime)
    return value if value.tzinfo is not None else value.replace(tzinfo=PARIS)


def status_of(part: Component) -> str:
    if "COMPLETED" in part:
        return "COMPLETED"
    return str(part.get("STATUS", "NEEDS-ACTION"))


def text_of(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert isinstance(body, EmailMessage)
    return str(body.get_content()).lower()


@dataclass
class Day:
    """One working day's pass and what came of it."""

    at: datetime
    followups: list[dict[str, Any]]
    messages: list[EmailMessage]
    calendar: list[Component]
    feed: list[Component]


@pytest.fixture
def smtp() -> Iterator[tuple[Recorder, int]]:
    with smtp_server() as running:
        yield running


class Practice:
    """The consultant's followupd, their calendar app, and what each pass left."""

    def __init__(
        self, cli: RunCli, home: Path, url: URL, dav: DavServer, smtp: tuple[Recorder, int]
    ) -> None:
        self.cli, self.home, self.dav = cli, home, dav
        self.recorder, port = smtp
        self.store = Store.open(url)
        self.phone = Phone(dav)
        (home / "followupd.toml").write_text(
            '[owner]\nname = "Claire Martin"\n'
            f'email = "{OWNER}"\nphone = "+33 6 00 00 00 00"\n'
            'timezone = "Europe/Paris"\nlanguage = "fr"\ncountry = "FR"\n'
            f'[caldav]\nurl = "{dav.url}"\nusername = "{USER}"\n'
            f'password_env = "{PASSWORD_VARIABLE}"\nread_calendars = []\n'
            f'[smtp]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "none"\n',
            encoding="utf-8",
        )

    def start(self) -> None:
        result = self.cli("init", "--demo", "--today", FIRST_DAY.isoformat())
        assert result.code == 0, result
        assert "as seen from Sunday 22 November 2026" in result.out

    def load(self, name: str, text: str) -> None:
        path = self.home / f"{name}.toml"
        path.write_text(text, encoding="utf-8")
        result = self.cli("import", path)
        assert result.code == 0, result

    def tick(self, at: datetime) -> Day:
        seen = len(self.recorder.messages)
        result = self.cli("tick", "--now", at.isoformat(), "--json")
        assert result.code == 0, result
        document = json.loads(result.out)
        assert datetime.fromisoformat(document["now"]) == at
        with self.store.session() as session:
            feed = build_feed(feed_items(session, at, PARIS), PARIS, "followupd").body
        return Day(
            at,
            document["followups"],
            self.recorder.messages[seen:],
            [part for _, part in self.phone.objects()],
            [part for part in Calendar.from_ical(feed).walk() if part.name in ("VTODO", "VEVENT")],
        )

    def touchpoints(self, mission: str, kind: str) -> list[datetime]:
        with self.store.session() as session:
            query = (
                select(Touchpoint.at)
                .join(Mission, Touchpoint.mission_id == Mission.id)
                .where(Mission.key == mission, Touchpoint.kind == kind)
            )
            return sorted(at.astimezone(UTC) for at in session.scalars(query))

    def informed(self, issue: str) -> datetime | None:
        with self.store.session() as session:
            found = session.scalar(select(Issue.client_informed).where(Issue.key == issue))
            return found.astimezone(UTC) if found is not None else None


def the_users_day(practice: Practice, day: date) -> None:
    """What happens after the pass of `day`: data imported, and the user's calendar app."""
    phone = practice.phone
    if day == date(2026, 11, 24):
        phone.edit("status_update_due:harborline-data-platform",
                   apple_reminders_completed(paris(day, time(16, 5))))  # fmt: skip
        phone.edit("client_not_informed:crm-export-incomplet",
                   apple_reminders_moved(paris(date(2026, 12, 1))))  # fmt: skip
    elif day == date(2026, 11, 26):
        practice.load("doublons", DOUBLONS)
    elif day == date(2026, 11, 27):
        phone.edit("status_update_due:lumen-refonte-crm",
                   todoman_moved(paris(date(2026, 12, 14))))  # fmt: skip
    elif day == date(2026, 11, 30):
        phone.edit("contract_missing:harborline-ml-roadmap", evolution_cancelled)
        practice.load("budget", BUDGET)
        practice.load("entrepot", ENTREPOT)
    elif day == date(2026, 12, 2):
        phone.delete("client_not_informed:dsi-budget-gel")
    elif day == date(2026, 12, 7):
        phone.edit("client_not_informed:crm-export-incomplet",
                   todoman_done(paris(day, time(17, 20))))  # fmt: skip
    elif day == date(2026, 12, 16):
        practice.load("entrepot", ENTREPOT_SIGNED)


def check_the_day(day: Day, concerns: dict[str, Followed], first: bool) -> None:
    when = f"{day.at:%a %d %b}"
    # one email a day for the owner, the digest; no subject twice
    mine = [m for m in day.messages if OWNER in str(m["To"])]
    assert len(mine) <= 1, f"{when}: {[str(m['Subject']) for m in mine]}"
    if not first:  # the first pass's catch-up: test_the_first_pass_sends_no_subject_twice
        subjects = Counter(str(m["Subject"]) for m in day.messages)
        assert max(subjects.values(), default=1) == 1, f"{when}: {subjects}"
    digest = text_of(mine[0]) if mine else ""
    # what the pass says it did, consistent with where it left each follow-up
    keys = Counter(f["key"] for f in day.followups)
    assert max(keys.values(), default=1) == 1, f"{when}: a follow-up listed twice"
    for f in day.followups:
        assert f["state"] in ACTIONS[f["action"]], f"{when}: {f['key']} {f['action']} {f}"
    digests = [f for f in day.followups if f["rule"] == "digest" and f["action"] == "sent"]
    assert len(digests) == len(mine), f"{when}: {len(digests)} digests sent, {len(mine)} emails"
    # one open item per concern, in the calendar and in the feed
    assert open_twice(day.calendar) == [], f"{when}: calendar"
    assert open_twice(day.feed) == [], f"{when}: feed"
    uids = Counter(str(part["UID"]) for part in day.calendar)
    assert max(uids.values()) == 1, f"{when}: {uids.most_common(1)}"

    on_server = {concern_of(str(part["UID"])): part for part in day.calendar}
    in_feed = {concern_of(str(part["UID"])): part for part in day.feed}
    for name, concern in concerns.items():
        raised, closed = concern.raises(day.at), concern.closes(day.at)
        items = [f for f in day.followups if f["concern"] == name and f["channel"] == "calendar"]
        for action, due in (("sent", raised), ("closed", closed)):
            touched = [datetime.fromisoformat(f["due_at"]) for f in items if f["action"] == action]
            expected = [] if due is None else [due]
            assert touched == expected, f"{when}: {name} {action}: {touched}, not {expected}"
        if raised is not None:
            assert concern.words in digest, f"{when}: {name} not in the digest:\n{digest}"
        if concern.quiet(day.at):
            assert concern.words not in digest, f"{when}: {name} in the digest:\n{digest}"
        status, due = concern.on_server(day.at)
        part = on_server.get(name)
        assert (status_of(part) if part is not None else None) == status, f"{when}: {name}"
        # (a period put off shows its own due: test_a_reminder_back_from_a_snooze_is_due_...)
        dues = {due, concern.shown_period if concern.shown_period != concern.shown_due else due}
        if part is not None and due is not None:
            assert due_of(part) in dues, f"{when}: {name} shows {due_of(part)}, not {due}"
        fed = in_feed.get(name)
        assert (status_of(fed) in OPEN if fed is not None else False) == (status in OPEN), (
            f"{when}: {name} in the feed"
        )
        if fed is not None and due is not None:
            assert due_of(fed) in dues, f"{when}: {name} in the feed shows {due_of(fed)}"


@pytest.mark.parametrize(
    ("database_url", "dav_kind"),
    [("sqlite", "radicale"), pytest.param("postgresql", "xandikos", marks=pytest.mark.postgresql)],
    indirect=["database_url"],
)
def test_four_weeks_of_reminders_a_person_can_live_with(
    cli: RunCli,
    home: Path,
    database_url: URL,
    dav: DavServer,
    smtp: tuple[Recorder, int],
) -> None:
    practice = Practice(cli, home, database_url, dav, smtp)
    concerns = followed()
    practice.start()
    days: list[Day] = []
    try:
        for at in TICKS:
            day = practice.tick(at)
            check_the_day(day, concerns, first=at == TICKS[0])
            days.append(day)
            the_users_day(practice, at.date())

        # what the status update ticked off on 24 November recorded, at the app's time
        updates = practice.touchpoints("harborline-data-platform", "status_update")
        assert datetime(2026, 11, 24, 15, 5, tzinfo=UTC) in updates
        # the task ticked off on 7 December told the client, at the app's (local) time
        assert practice.informed("crm-export-incomplet") == datetime(
            2026, 12, 7, 16, 20, tzinfo=UTC
        )
    finally:
        practice.store.close()
    # a working practice: a digest most days, and every followed concern raised
    assert sum(1 for day in days if any(OWNER in str(m["To"]) for m in day.messages)) >= 15
    assert all(concern.raised_at is not None for concern in concerns.values())


def test_the_first_pass_sends_no_subject_twice(
    cli: RunCli, home: Path, smtp: tuple[Recorder, int]
) -> None:
    """The demo's first pass: a client gets each message once, not a request and its nudge.

    The deposit of "lumen-refonte-crm" was asked for on the contract's signature
    (Monday 16 November) and its nudge falls a week later: both are due at the
    first pass, on Monday 23 November at 09:00.
    """
    recorder, port = smtp
    (home / "followupd.toml").write_text(
        f'[owner]\nname = "Claire Martin"\nemail = "{OWNER}"\ntimezone = "Europe/Paris"\n'
        f'[smtp]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "none"\n',
        encoding="utf-8",
    )
    assert cli("init", "--demo", "--today", FIRST_DAY.isoformat()).code == 0
    result = cli("tick", "--now", TICKS[0].isoformat(), "--json")
    assert result.code == 0, result
    sent = Counter((str(m["To"]), str(m["Subject"])) for m in recorder.messages)
    assert sent, "the first pass sends"
    assert [message for message, count in sent.items() if count > 1] == []


def test_a_reminder_back_from_a_snooze_is_due_the_day_it_comes(
    cli: RunCli,
    home: Path,
    database_url: URL,
    dav: DavServer,
    smtp: tuple[Recorder, int],
) -> None:
    """Put off to Tuesday, an every-2-working-days reminder comes on Tuesday, then Thursday.

    The item raised on Thursday must be due on Thursday, the day it comes, not
    on the Wednesday of its period: its alarm would ring at once, a day overdue.
    """
    practice = Practice(cli, home, database_url, dav, smtp)
    concern = "client_not_informed:crm-export-incomplet"
    practice.start()
    try:
        for at in TICKS[:9]:  # Monday 23 November to Thursday 3 December
            day = practice.tick(at)
            if at.date() == date(2026, 11, 24):
                practice.phone.edit(concern, apple_reminders_moved(paris(date(2026, 12, 1))))
    finally:
        practice.store.close()
    raised = [f["key"] for f in day.followups if f["concern"] == concern
              and f["action"] == "sent" and f["channel"] == "calendar"]  # fmt: skip
    assert raised == [f"{concern}:2026-12-02:calendar"], "it comes on Thursday"
    (part,) = [part for part in day.calendar if concern_of(str(part["UID"])) == concern]
    assert due_of(part) == day.at, f"due {due_of(part)}, raised {day.at}"
