"""The owner's daily digest, delivered: whole `tick` passes, a real SMTP server, both engines.

Missions without a signed contract give the owner a reminder by email (and a
calendar item) a week each (``contract_missing``, from 7 days before the
start), on days the tests choose by the start date. What the message says
is tested in tests/test_digest_message.py; here, when it goes, to whom,
what it carries, and what becomes of the reminders it carries.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.engine import URL
from sqlalchemy.exc import OperationalError

from followupd.channels.feed.build import feed_items
from followupd.errors import EX_UNAVAILABLE
from followupd.store import live_items
from followupd.store.db import Store
from followupd.store.models import FollowUp
from followupd.store.outbox import digests
from tests.conftest import RunCli
from tests.rulekit import BOB_IN_MONTREAL, CLAIRE, JDUPONT, PARIS
from tests.smtpserver import Recorder, smtp_server

CLAIRE_ADDRESS = "claire@cabinet.example"
JEANNE_ADDRESS = "jeanne.dupont@acme.example"
OWNER = f'[owner]\nname = "Claire Martin"\nemail = "{CLAIRE_ADDRESS}"\n'  # digest: the default
ACME = '[[clients]]\nkey = "acme"\nname = "ACME SA"\n' + JDUPONT


def missions(*rows: tuple[str, str, str], owner: str | None = None) -> str:
    """Proposed missions of ACME without a contract, each (key, title, start)."""
    whose = f'owner = "{owner}"\n' if owner else ""
    return "".join(
        f'[[missions]]\nkey = "{key}"\nclient = "acme"\ntitle = "{title}"\n'
        f'contact = "jdupont"\nstart = {start}\nstatus = "proposed"\n{whose}'
        for key, title, start in rows
    )


# first reminders: Monday 7, Tuesday 8, Saturday 12 and Sunday 13 December 2026
AUDIT = ("audit", "Audit du SI", "2026-12-14")
CRM = ("crm", "Refonte du CRM", "2026-12-15")
SITE = ("site", "Nouveau site", "2026-12-19")
PAIE = ("paie", "Migration de la paie", "2026-12-20")
LATE = ("late", "Mission tardive", "2026-12-14")  # imported on Monday 7, after the digest
FRIDAY = ("vendredi", "Formation", "2026-12-11")  # Friday 4


def paris(day: int, hour: int = 9, minute: int = 0) -> datetime:
    return datetime(2026, 12, day, hour, minute, tzinfo=PARIS)


@pytest.fixture
def smtp() -> Iterator[tuple[Recorder, int]]:
    with smtp_server() as running:
        yield running


def set_up(cli: RunCli, home: Path, port: int, config: str, data: str) -> None:
    smtp = f'[smtp]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "none"\n'
    (home / "followupd.toml").write_text(smtp + config, encoding="utf-8")
    import_data(cli, home, data)


def import_data(cli: RunCli, home: Path, data: str, name: str = "data.toml") -> None:
    (home / name).write_text(data, encoding="utf-8")
    for command in (("init",), ("import", home / name)):
        result = cli(*command)
        assert result.code == 0, result


def tick(cli: RunCli, at: datetime) -> None:
    result = cli("tick", "--now", at.isoformat())
    assert result.code == 0, result


def outbox(url: URL) -> dict[str, FollowUp]:
    store = Store.open(url, create=False)
    try:
        with store.session() as session:
            return {row.key: row for row in session.scalars(select(FollowUp))}
    finally:
        store.close()


def to(recorder: Recorder, address: str) -> list[EmailMessage]:
    return [message for message in recorder.messages if message["To"] == address]


def text(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


def reminder(mission: tuple[str, str, str], nominal: str) -> str:
    """The key of a mission's contract reminder by email of the nominal day."""
    return f"contract_missing:{mission[0]}:2026-12-{nominal}:email"


def titles_in(message: EmailMessage, *shown: tuple[str, str, str]) -> bool:
    """Whether the digest lists the missions `shown` and no other of this module's."""
    body = text(message)
    others = {AUDIT, CRM, SITE, PAIE, LATE, FRIDAY} - set(shown)
    return all(m[1] in body for m in shown) and not any(m[1] in body for m in others)


def test_one_digest_a_working_day_at_the_window_opening(
    cli: RunCli, home: Path, database_url: URL, smtp: tuple[Recorder, int]
) -> None:
    recorder, port = smtp
    set_up(cli, home, port, OWNER, ACME + missions(AUDIT, CRM, SITE, PAIE))

    tick(cli, paris(7, 8, 59))
    assert recorder.messages == [], "before the window opens: nothing due, nothing sent"
    assert not any(key.startswith("digest:") for key in outbox(database_url))

    tick(cli, paris(7, 9))
    tick(cli, paris(7, 14))  # the same day again: nothing more
    (monday,) = recorder.messages
    assert monday["To"] == CLAIRE_ADDRESS
    assert titles_in(monday, AUDIT)
    rows = outbox(database_url)
    digest = rows["digest:owner:2026-12-07"]
    assert (digest.state, digest.message_id) == ("sent", monday["Message-ID"])
    assert digest.subject == str(monday["Subject"]), "kept for outbox show and tick"
    assert digest.body and digest.body.strip() in text(monday).replace("\r\n", "\n")
    carried = rows[reminder(AUDIT, "07")]
    action, _, about = carried.subject.partition(" — ")
    assert about == AUDIT[1] and f"- {action}\r\n" in text(monday), "the heading names the mission"
    assert (carried.state, carried.reason) == ("sent", "in the digest of 2026-12-07")
    assert carried.message_id == monday["Message-ID"], "it went as the digest"
    shown = cli("outbox", "show", reminder(AUDIT, "07"))
    assert shown.code == 0, shown
    assert "sent: in the digest of 2026-12-07" in shown.out
    assert monday["Message-ID"] in shown.out

    tick(cli, paris(8, 9, 30))  # Tuesday: what fell due since Monday's only
    (tuesday,) = recorder.messages[1:]
    assert titles_in(tuesday, CRM)
    assert outbox(database_url)[reminder(CRM, "08")].message_id == tuesday["Message-ID"]

    for weekend in (paris(12, 9), paris(12, 18), paris(13, 10)):
        tick(cli, weekend)
    assert len(recorder.messages) == 2, "no digest on a weekend"
    assert not any(key.startswith("digest:owner:2026-12-1") for key in outbox(database_url))

    tick(cli, paris(14, 9))  # Monday: the weekend's reminders, and Monday's
    (next_monday,) = recorder.messages[2:]
    assert titles_in(next_monday, AUDIT, SITE, PAIE)
    rows = outbox(database_url)
    carried_keys = {key for key, row in rows.items() if row.message_id == next_monday["Message-ID"]}
    assert carried_keys == {
        "digest:owner:2026-12-14",
        reminder(AUDIT, "14"), reminder(SITE, "12"), reminder(PAIE, "13"),
    }  # fmt: skip
    ids = [message["Message-ID"] for message in recorder.messages]
    assert len(set(ids)) == 3, "a Message-ID a day"


def test_a_reminder_recorded_after_the_days_digest_goes_in_the_next_one(
    cli: RunCli, home: Path, database_url: URL, smtp: tuple[Recorder, int]
) -> None:
    """A mission imported at 11:00 is a week from its start: its reminder was due at 09:00.

    The day's digest has gone: the reminder waits for the next working day's,
    which it makes if nothing else does, and goes in it.
    """
    recorder, port = smtp
    set_up(cli, home, port, OWNER, ACME + missions(AUDIT))
    tick(cli, paris(7, 9))
    import_data(cli, home, missions(LATE), "later.toml")
    tick(cli, paris(7, 11))
    tick(cli, paris(8, 8, 59))
    (monday,) = recorder.messages
    assert titles_in(monday, AUDIT)
    assert outbox(database_url)[reminder(LATE, "07")].state == "pending"

    tick(cli, paris(8, 9))
    (tuesday,) = recorder.messages[1:]
    assert titles_in(tuesday, LATE)
    carried = outbox(database_url)[reminder(LATE, "07")]
    assert (carried.state, carried.reason) == ("sent", "in the digest of 2026-12-08")
    assert carried.message_id == tuesday["Message-ID"]


def test_a_missed_digest_waits_for_the_next_opening_and_goes_in_that_days(
    cli: RunCli, home: Path, database_url: URL, smtp: tuple[Recorder, int]
) -> None:
    """followupd was down on Friday: Friday's digest goes neither on the weekend nor before
    Monday's window opens, and then as one digest with Monday's reminders."""
    recorder, port = smtp
    set_up(cli, home, port, OWNER, ACME + missions(AUDIT, FRIDAY))
    for at in (paris(5, 10), paris(6, 20), paris(7, 8, 59)):
        tick(cli, at)
    assert recorder.messages == []
    assert outbox(database_url)["digest:owner:2026-12-04"].state == "pending"

    tick(cli, paris(7, 9))
    (monday,) = recorder.messages
    assert titles_in(monday, FRIDAY, AUDIT)
    rows = outbox(database_url)
    assert (rows["digest:owner:2026-12-04"].state, rows["digest:owner:2026-12-04"].reason) == (
        "superseded", "superseded by digest:owner:2026-12-07"
    )  # fmt: skip
    assert rows[reminder(FRIDAY, "04")].message_id == monday["Message-ID"]


def test_a_holiday_sends_no_digest_and_the_next_working_day_carries_it(
    cli: RunCli, home: Path, database_url: URL, smtp: tuple[Recorder, int]
) -> None:
    recorder, port = smtp
    christmas = ("noel", "Inventaire", "2027-01-01")  # first reminder: Friday 25 December
    set_up(cli, home, port, OWNER, ACME + missions(christmas))
    for at in (paris(24, 9), paris(25, 9), paris(25, 17), paris(26, 9)):
        tick(cli, at)
    assert recorder.messages == [], "Christmas is a holiday in France, then the weekend"
    tick(cli, paris(28, 9))
    (digest,) = recorder.messages
    assert christmas[1] in text(digest)
    rows = outbox(database_url)
    assert rows["digest:owner:2026-12-28"].message_id == digest["Message-ID"]
    assert rows[reminder(christmas, "25")].message_id == digest["Message-ID"]


def test_nothing_due_no_digest_and_client_emails_go_on_their_own(
    cli: RunCli, home: Path, database_url: URL, smtp: tuple[Recorder, int]
) -> None:
    recorder, port = smtp
    invoice = (
        '[[invoices]]\nnumber = "F-1"\nmission = "crm"\namount = 1200\n'
        "issued = 2026-11-07\ndue = 2026-12-07\n"
    )  # heads-up to the owner on Friday 4, the first nudge to Jeanne on Tuesday 8
    set_up(cli, home, port, OWNER, ACME + missions(CRM) + invoice)
    tick(cli, paris(4, 9))
    (friday,) = recorder.messages
    heads_up = outbox(database_url)["invoice_due:F-1:heads-up"]
    assert heads_up.subject in text(friday), "calendar reminders are listed too"

    tick(cli, paris(7, 9))
    tick(cli, paris(7, 12))
    assert len(recorder.messages) == 1, "nothing fell due on Monday: no digest at all"
    assert "digest:owner:2026-12-07" not in outbox(database_url)

    tick(cli, paris(8, 9))
    (nudge,) = to(recorder, JEANNE_ADDRESS)
    (friday_again, tuesday) = to(recorder, CLAIRE_ADDRESS)
    assert friday_again is friday
    rows = outbox(database_url)
    client_email = rows["invoice_due:F-1:nudge-1"]
    assert (client_email.state, client_email.reason) == ("sent", None)
    assert client_email.message_id == nudge["Message-ID"] != tuesday["Message-ID"]
    assert str(nudge["Subject"]) == client_email.subject
    assert client_email.subject not in text(tuesday)
    assert titles_in(tuesday, CRM)


def test_a_digest_sent_again_after_a_crash_keeps_its_message_id(
    cli: RunCli,
    home: Path,
    database_url: URL,
    smtp: tuple[Recorder, int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The server accepted the digest, then the database went before the outcome was recorded.

    The outcome and the marking of the reminders it carries are one transaction:
    the failure rolls both back, as a crash at that instant would. The next pass
    sends the same digest again, under the same Message-ID, so a mail client
    shows it once.
    """
    recorder, port = smtp
    set_up(cli, home, port, OWNER, ACME + missions(AUDIT))
    mark_sent = digests.mark_sent

    def database_gone(*args: object, **kwargs: object) -> None:
        monkeypatch.setattr(digests, "mark_sent", mark_sent)
        raise OperationalError("UPDATE followups", {}, ConnectionError("connection lost"))

    monkeypatch.setattr(digests, "mark_sent", database_gone)
    crashed = cli("tick", "--now", paris(7, 9).isoformat())
    assert crashed.code == EX_UNAVAILABLE, crashed
    (first,) = recorder.messages
    rows = outbox(database_url)
    assert rows["digest:owner:2026-12-07"].state == "pending"
    assert rows[reminder(AUDIT, "07")].state == "pending"

    tick(cli, paris(7, 9, 1))
    (_, again) = recorder.messages
    assert again["Message-ID"] == first["Message-ID"]
    assert text(again) == text(first)
    rows = outbox(database_url)
    assert rows["digest:owner:2026-12-07"].message_id == first["Message-ID"]
    carried = rows[reminder(AUDIT, "07")]
    assert (carried.state, carried.message_id) == ("sent", first["Message-ID"])


def test_each_owner_gets_a_digest_of_their_own_in_their_language_at_their_opening(
    cli: RunCli, home: Path, database_url: URL, smtp: tuple[Recorder, int]
) -> None:
    recorder, port = smtp
    config = CLAIRE + BOB_IN_MONTREAL  # Claire: French, in Paris; Bob: English, in Montreal
    bobs = ("bob-erp", "ERP rollout", "2026-12-14")
    set_up(cli, home, port, config, ACME + missions(AUDIT) + missions(bobs, owner="bob"))
    tick(cli, paris(7, 9))
    tick(cli, paris(7, 14, 59))  # 08:59 in Montreal
    (claire,) = recorder.messages
    assert (claire["To"], claire["Content-Language"]) == (CLAIRE_ADDRESS, "fr")
    assert text(claire).startswith("1 rappel pour le lundi")
    assert titles_in(claire, AUDIT)

    tick(cli, paris(7, 15))  # 09:00 in Montreal
    (bob,) = recorder.messages[1:]
    assert (bob["To"], bob["Content-Language"]) == ("bob@cabinet.example", "en")
    assert text(bob).startswith("1 reminder for Monday")
    assert bobs[1] in text(bob) and AUDIT[1] not in text(bob)
    assert bob["Message-ID"] != claire["Message-ID"], "the owner is in the Message-ID"
    rows = outbox(database_url)
    assert rows["digest:claire:2026-12-07"].message_id == claire["Message-ID"]
    assert rows["digest:bob:2026-12-07"].message_id == bob["Message-ID"]


def test_each_sends_every_reminder_on_its_own_and_records_no_digest(
    cli: RunCli, home: Path, database_url: URL, smtp: tuple[Recorder, int]
) -> None:
    recorder, port = smtp
    second = ("audit-2", "Audit de sécurité", "2026-12-14")  # due with AUDIT
    config = OWNER + 'reminders_by_email = "each"\n'
    set_up(cli, home, port, config, ACME + missions(AUDIT, second))
    tick(cli, paris(7, 9))
    rows = outbox(database_url)
    assert not any(row.rule == "digest" for row in rows.values())
    emails = [rows[reminder(mission, "07")] for mission in (AUDIT, second)]
    assert sorted(str(m["Subject"]) for m in to(recorder, CLAIRE_ADDRESS)) == sorted(
        row.subject for row in emails
    )
    assert len(recorder.messages) == 2
    assert all(row.state == "sent" and row.reason is None for row in emails)
    assert {row.message_id for row in emails} == {m["Message-ID"] for m in recorder.messages}


def test_off_sends_no_owner_email_and_keeps_the_calendar_items(
    cli: RunCli, home: Path, database_url: URL, smtp: tuple[Recorder, int]
) -> None:
    recorder, port = smtp
    set_up(cli, home, port, OWNER + 'reminders_by_email = "off"\n', ACME + missions(AUDIT))
    tick(cli, paris(7, 9))
    tick(cli, paris(8, 9))
    assert recorder.messages == []
    rows = outbox(database_url)
    assert not any(row.rule == "digest" for row in rows.values())
    email = rows[reminder(AUDIT, "07")]
    assert (email.state, email.reason) == (
        "cancelled",
        'not sent: reminders_by_email = "off" (in your calendar only)',
    )
    task = rows["contract_missing:audit:2026-12-07:calendar"]
    assert (task.state, task.reason) == ("sent", "in the feed")
    store = Store.open(database_url, create=False)
    try:
        with store.session() as session:
            items = feed_items(session, paris(8, 9), PARIS)
    finally:
        store.close()
    assert [(item.uid, item.key) for item in items] == [
        ("contract_missing:audit@followupd", task.key)
    ]


def put_off(url: URL, concern: str, until: datetime, at: datetime) -> None:
    """What a sync records when the owner moved the concern's calendar item to `until`."""
    store = Store.open(url, create=False)
    try:
        with store.session() as session:
            live_items.snoozed_by_user(
                live_items.of_concerns(session, [concern])[concern], until, at
            )
    finally:
        store.close()


def test_a_reminder_put_off_in_the_calendar_comes_in_the_digest_of_the_users_date(
    cli: RunCli, home: Path, database_url: URL, smtp: tuple[Recorder, int]
) -> None:
    recorder, port = smtp
    set_up(cli, home, port, OWNER, ACME + missions(AUDIT))
    tick(cli, paris(7, 9))
    (first,) = recorder.messages
    concern = outbox(database_url)[reminder(AUDIT, "07")].concern
    put_off(database_url, concern, paris(23, 9), paris(8, 18))  # to Wednesday 23 December
    for day in (14, 15, 18, 21, 22):  # its next two reminders wait; no digest goes for them
        tick(cli, paris(day, 9, 30))
    assert recorder.messages == [first]
    rows = outbox(database_url)
    assert rows[reminder(AUDIT, "21")].state == "pending"
    assert rows[reminder(AUDIT, "14")].state == "expired"  # a week of grace, put off longer

    tick(cli, paris(23, 9, 30))  # the owner's date: a digest of its own carries it
    (_, wednesday) = recorder.messages
    assert wednesday["To"] == CLAIRE_ADDRESS
    assert titles_in(wednesday, AUDIT)
    carried = outbox(database_url)[reminder(AUDIT, "21")]
    assert (carried.state, carried.reason) == ("sent", "in the digest of 2026-12-23")
    assert carried.message_id == wednesday["Message-ID"]
    tick(cli, paris(24, 9, 30))
    assert len(recorder.messages) == 2, "said once"


CLOSING = (
    '[[missions]]\nkey = "bilan"\nclient = "acme"\ntitle = "Audit terminé"\n'
    'contact = "jdupont"\nstart = 2026-10-01\nend = 2026-12-04\nstatus = "active"\n'
    "contract_signed = 2026-09-20\n"
)


def test_a_reminder_by_email_and_in_the_calendar_is_one_line(
    cli: RunCli, home: Path, database_url: URL, smtp: tuple[Recorder, int]
) -> None:
    recorder, port = smtp
    set_up(cli, home, port, OWNER, ACME + CLOSING)
    tick(cli, paris(7, 9))
    (monday,) = to(recorder, CLAIRE_ADDRESS)
    body = text(monday).lower()
    assert body.count("planifier le bilan avec jeanne dupont") == 1, body
    rows = outbox(database_url)
    twins = [row for key, row in rows.items() if key.startswith("mission_closeout:bilan:bilan:")]
    assert {row.channel for row in twins} == {"calendar", "email"}
    assert all(row.state == "sent" for row in twins)


def test_a_reminder_done_in_the_calendar_is_not_in_the_next_digest(
    cli: RunCli, home: Path, database_url: URL, smtp: tuple[Recorder, int]
) -> None:
    """One email each on Monday; the digest from Tuesday on, looking back a week."""
    recorder, port = smtp
    set_up(cli, home, port, OWNER + 'reminders_by_email = "each"\n', ACME + missions(AUDIT, CRM))
    tick(cli, paris(7, 9))
    (monday,) = to(recorder, CLAIRE_ADDRESS)
    assert AUDIT[1] in text(monday)
    concern = outbox(database_url)[reminder(AUDIT, "07")].concern
    store = Store.open(database_url, create=False)
    try:
        with store.session() as session:
            done = live_items.of_concerns(session, [concern])[concern]
            live_items.completed_by_user(done, paris(7, 15), paris(7, 18))
    finally:
        store.close()
    config = home / "followupd.toml"
    config.write_text(config.read_text("utf-8").replace('reminders_by_email = "each"\n', ""))
    tick(cli, paris(8, 9))
    (_, tuesday) = to(recorder, CLAIRE_ADDRESS)
    assert titles_in(tuesday, CRM), "the audit's reminder was done in the calendar on Monday"
