"""One client email a day per contact, whatever the rule (followupd.delivery.client_day): the
greetings first, then the email due first, the others on the next working mornings; through
a real SMTP server on both databases, and the choice itself as pure logic."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from followupd.config.load import parse_settings
from followupd.config.settings import Settings
from followupd.delivery.client_day import ANOTHER_TODAY, NUDGE_TODAY, one_a_day
from followupd.delivery.deliverer import Deliverer, DeliveryReport
from followupd.domain.business_calendar import BusinessCalendar
from followupd.engine.evaluation import evaluate
from followupd.rules.registry import enabled_rules
from followupd.store.db import Store
from followupd.store.models import FollowUp
from followupd.store.outbox.client_nudges import SentEmail
from followupd.store.outbox.rows import FollowUpRow
from tests.conftest import MINIMAL_CONFIG, sample_followup
from tests.rulekit import ACME, imported, outbox
from tests.smtpserver import Recorder, smtp_server
from tests.test_client_nudges import settings_for

PARIS = ZoneInfo("Europe/Paris")
GREETINGS = "new_year_greetings:jdupont:2027"
REQUEST = "deposit_due:acme-2027:request"
DEPOSIT_NUDGE = "deposit_due:acme-2027:nudge"
NUDGE_1 = "invoice_due:F-9:nudge-1"
NUDGE_2 = "invoice_due:F-9:nudge-2"
# The contact of ACME had a mission in 2026 (greetings on the first working day of 2027,
# Monday 4 January), has an invoice due on Saturday 2 January (nudges on the 4th and the
# 11th), and a mission starting on the 4th with a deposit (asked on the 4th, nudged on the
# 11th): three client emails the same morning, then two a week later.
DATA = (
    ACME
    + """\
[[missions]]
key = "acme-2027"
client = "acme"
title = "Refonte 2027"
contact = "jdupont"
start = 2027-01-04
contract_signed = 2026-12-15
deposit_amount = 3000

[[invoices]]
number = "F-9"
mission = "acme-audit"
amount = 1200
issued = 2026-12-03
due = 2027-01-02
"""
)
RULES = ("invoice_due", "deposit_due", "new_year_greetings")


def paris(day: int, hour: int = 9) -> datetime:
    return datetime(2027, 1, day, hour, tzinfo=PARIS)


@pytest.fixture
def server() -> Iterator[tuple[Recorder, int]]:
    with smtp_server() as running:
        yield running


def pass_at(store: Store, settings: Settings, at: datetime) -> DeliveryReport:
    """A pass of the three rules at `at`: its report, of the client emails only."""
    rules = [rule for rule in enabled_rules(settings.rules) if rule.name in RULES]
    with store.session() as session:
        evaluate(session, settings, rules, at)
    report = asyncio.run(Deliverer(store, settings, "w1", rng=random.Random(1)).run(at))
    to_client = {key for key, row in outbox(store).items() if row.audience == "client"}
    report.sent = [key for key in report.sent if key in to_client]
    return report


def test_greetings_first_then_one_client_email_a_day_in_due_order(
    store: Store, tmp_path: Path, server: tuple[Recorder, int]
) -> None:
    recorder, port = server
    loaded = imported(store, tmp_path, DATA)
    settings = settings_for(tmp_path, port)

    report = pass_at(loaded, settings, paris(4))
    assert report.sent == [GREETINGS], "the greetings alone, with no money talk beside them"
    assert report.held == {REQUEST: ANOTHER_TODAY, NUDGE_1: ANOTHER_TODAY}
    assert pass_at(loaded, settings, paris(4, hour=15)).sent == [], "the day is taken"

    assert pass_at(loaded, settings, paris(5)).sent == [REQUEST], "due first (then by key)"
    assert pass_at(loaded, settings, paris(6)).sent == [NUDGE_1]
    assert pass_at(loaded, settings, paris(7)).sent == []

    report = pass_at(loaded, settings, paris(11))
    assert report.sent == [DEPOSIT_NUDGE]
    assert report.held == {NUDGE_2: ANOTHER_TODAY}
    assert pass_at(loaded, settings, paris(12)).sent == [NUDGE_2]

    to_contact = [m for m in recorder.messages if "jeanne.dupont@acme.example" in m["To"]]
    assert len({m["Date"] for m in to_contact}) == len(to_contact) == 5, "5 emails, 5 days"
    rows = outbox(loaded)
    assert {rows[key].state for key in (GREETINGS, REQUEST, NUDGE_1, DEPOSIT_NUDGE, NUDGE_2)} == {
        "sent"
    }
    nudge_1, nudge_2 = to_contact[2], to_contact[4]
    assert nudge_2["In-Reply-To"] == nudge_1["Message-ID"], (
        "the invoice's thread, not the deposit's"
    )


# -- the choice, as pure logic ------------------------------------------------------------

SETTINGS = parse_settings(MINIMAL_CONFIG, Path("followupd.toml"), {"HOME": "/nonexistent"})
CALENDAR = BusinessCalendar(SETTINGS.business)
MONDAY = datetime(2027, 1, 4, 9, tzinfo=PARIS)
TUESDAY_OPENING = datetime(2027, 1, 5, 9, tzinfo=PARIS).astimezone(UTC)


def email(key: str, due_at: datetime = MONDAY, contact: int = 1, **fields: object) -> FollowUp:
    row = sample_followup(key, due_at.astimezone(UTC))
    row.rule, row.step = key.split(":")[0], key.split(":")[-1]
    row.contact_id = contact
    for name, value in fields.items():
        setattr(row, name, value)
    return row


def waits(
    rows: list[FollowUp], sent: dict[int, list[SentEmail]] | None = None, grouped: bool = True
) -> dict[str, tuple[datetime, str]]:
    """`grouped`: the owner groups nudges by contact (a thank-you is never grouped)."""

    def grouped_nudge(row: FollowUpRow) -> bool:
        return grouped and row.step != "thank-you"

    return one_a_day(SETTINGS, rows, {}, sent or {}, MONDAY, CALENDAR, grouped_nudge)


def test_the_greetings_go_first_even_when_due_after_a_nudge() -> None:
    rows = [email(NUDGE_1, MONDAY - timedelta(days=3)), email(GREETINGS), email(REQUEST)]
    assert waits(rows) == {NUDGE_1: (TUESDAY_OPENING, ANOTHER_TODAY),
                           REQUEST: (TUESDAY_OPENING, ANOTHER_TODAY)}  # fmt: skip


def test_a_contacts_invoice_emails_leave_together_and_other_contacts_are_not_held() -> None:
    rows = [email(NUDGE_1), email("invoice_due:F-10:nudge-2"), email(REQUEST, contact=2)]
    assert waits(rows) == {}
    rows = [email(REQUEST, MONDAY - timedelta(hours=1)), *rows[:2]]
    assert waits(rows, grouped=False) == {NUDGE_1: (TUESDAY_OPENING, ANOTHER_TODAY),
                                          "invoice_due:F-10:nudge-2":
                                              (TUESDAY_OPENING, ANOTHER_TODAY)}  # fmt: skip


def test_a_day_already_taken_holds_another_kind_and_a_grouped_nudge_not_a_thank_you() -> None:
    went = {1: [SentEmail("deposit_due", REQUEST, "request", None, MONDAY.astimezone(UTC))]}
    assert waits([email(GREETINGS)], went) == {GREETINGS: (TUESDAY_OPENING, ANOTHER_TODAY)}
    nudged = {1: [SentEmail("invoice_due", NUDGE_1, "nudge-1", None, MONDAY.astimezone(UTC))]}
    thank_you = email("invoice_due:F-1:thank-you")
    later = email("invoice_due:F-10:nudge-1")
    assert waits([later, thank_you], nudged) == {later.key: (TUESDAY_OPENING, NUDGE_TODAY)}
    assert waits([later], nudged, grouped=False) == {}, "one email per invoice, as asked"
    yesterday = {1: [SentEmail("deposit_due", REQUEST, "request", None,
                               (MONDAY - timedelta(days=1)).astimezone(UTC))]}  # fmt: skip
    assert waits([email(GREETINGS)], yesterday) == {}


def test_an_email_whose_grace_ends_before_the_next_morning_goes_now() -> None:
    last_chance = email(REQUEST, expires_at=datetime(2027, 1, 4, 23, 59, tzinfo=PARIS))
    assert waits([email(GREETINGS), last_chance]) == {}
    has_time = email(REQUEST, expires_at=datetime(2027, 1, 11, tzinfo=PARIS))
    assert waits([email(GREETINGS), has_time]) == {REQUEST: (TUESDAY_OPENING, ANOTHER_TODAY)}


def test_a_contacts_emails_of_one_rule_go_the_same_day() -> None:
    """Two missions starting together: both deposit requests today, not one a day for weeks."""
    second = email("deposit_due:acme-2028:request")
    assert waits([email(REQUEST), second]) == {}
    went = {1: [SentEmail("deposit_due", REQUEST, "request", None, MONDAY.astimezone(UTC))]}
    assert waits([second], went) == {}
    assert waits([second, email(NUDGE_1)], went) == {NUDGE_1: (TUESDAY_OPENING, ANOTHER_TODAY)}
