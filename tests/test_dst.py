"""Daylight-saving changes, through `plan` and `evaluate` with every rule, on both engines.

A follow-up is due at 09:00, the opening of the send window, in its
recipient's zone (README, "What it does"): a client email in the client's zone, a
reminder to the owner in the owner's (Europe/Paris). The cases sit around
the changes of 2026-2027:

- Europe/Paris: Sunday 25 October 2026 (CEST, UTC+2, to CET, UTC+1) and Sunday
  28 March 2027 (CET to CEST), which is also Easter Sunday: Easter Monday
  29 March is a French public holiday;
- America/New_York: Sunday 1 November 2026 (EDT, UTC-4, to EST, UTC-5) and
  Sunday 14 March 2027 (EST to EDT). Between 14 and 28 March 2027 New York
  has changed and Paris has not: the two are five hours apart, not six.

Every expected instant is written in UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from followupd.config.rule_options import RuleOptions
from followupd.config.settings import Settings
from followupd.engine.evaluation import evaluate, plan
from followupd.rules.base import Intent, Rule
from followupd.rules.registry import enabled_rules
from followupd.store.db import Store
from followupd.store.models import FollowUp
from tests.rulekit import ACME_AND_GLOBEX, BSMITH_WITH_PHONE, JDUPONT, NEW_YORK, PARIS, loaded_with
from tests.rulekit import settings as settings

DATA = (
    ACME_AND_GLOBEX
    + JDUPONT
    + BSMITH_WITH_PHONE
    + """\
# a status update is due every 3 days
[[missions]]
key = "acme-autumn"
client = "acme"
title = "Audit du SI"
contact = "jdupont"
start = 2026-09-01
end = 2026-12-18
contract_signed = 2026-08-25
status_update_every_days = 3

[[missions]]
key = "acme-spring"
client = "acme"
title = "Plan de continuité"
contact = "jdupont"
start = 2027-01-04
end = 2027-06-30
contract_signed = 2026-12-15
status_update_every_days = 3

[[missions]]
key = "globex-autumn"
client = "globex"
title = "Data plan"
contact = "bsmith"
start = 2026-09-01
end = 2026-12-18
contract_signed = 2026-08-25
currency = "USD"

[[missions]]
key = "globex-spring"
client = "globex"
title = "Migration plan"
contact = "bsmith"
start = 2027-01-04
end = 2027-06-30
contract_signed = 2026-12-15
currency = "USD"
status_update_every_days = 3

# starts on the Monday after New York's spring change, deposit unpaid
[[missions]]
key = "globex-pilot"
client = "globex"
title = "Pilot"
contact = "bsmith"
start = 2027-03-15
end = 2027-05-28
contract_signed = 2027-03-08
deposit_amount = 5000
currency = "USD"

# due on a Thursday (nudge on the Friday before a change) and on the Sunday
# of the change (nudge on the Monday after)
[[invoices]]
number = "F-2026-101"
mission = "acme-autumn"
amount = 1000
issued = 2026-09-22
due = 2026-10-22

[[invoices]]
number = "F-2026-102"
mission = "acme-autumn"
amount = 1000
issued = 2026-09-25
due = 2026-10-25

[[invoices]]
number = "F-2027-201"
mission = "acme-spring"
amount = 1000
issued = 2027-02-25
due = 2027-03-25

[[invoices]]
number = "F-2027-202"
mission = "acme-spring"
amount = 1000
issued = 2027-02-28
due = 2027-03-28

[[invoices]]
number = "F-2026-111"
mission = "globex-autumn"
amount = 1000
issued = 2026-09-29
due = 2026-10-29

[[invoices]]
number = "F-2026-112"
mission = "globex-autumn"
amount = 1000
issued = 2026-10-01
due = 2026-11-01

[[invoices]]
number = "F-2027-211"
mission = "globex-spring"
amount = 1000
issued = 2027-02-11
due = 2027-03-11

[[invoices]]
number = "F-2027-212"
mission = "globex-spring"
amount = 1000
issued = 2027-02-14
due = 2027-03-14

# high issues opened on a Friday afternoon: the call waits for the next working day
[[issues]]
key = "acme-autumn-late"
mission = "acme-autumn"
opened = 2026-10-23T15:00:00+02:00
severity = "high"
summary = "Extraction en retard"

[[issues]]
key = "acme-spring-late"
mission = "acme-spring"
opened = 2027-03-26T15:00:00+01:00
severity = "high"
summary = "Recette bloquée"

[[issues]]
key = "globex-autumn-late"
mission = "globex-autumn"
opened = 2026-10-30T10:00:00-04:00
severity = "critical"
summary = "Pipeline down"
client_informed = 2026-10-30T11:00:00-04:00

[[issues]]
key = "globex-spring-late"
mission = "globex-spring"
opened = 2027-03-12T10:00:00-05:00
severity = "high"
summary = "Warehouse access revoked"
client_informed = 2027-03-12T11:00:00-05:00

[[touchpoints]]
mission = "acme-autumn"
contact = "jdupont"
kind = "status_update"
at = 2026-10-20T17:00:00+02:00

[[touchpoints]]
mission = "acme-spring"
contact = "jdupont"
kind = "status_update"
at = 2027-03-23T17:00:00+01:00

# Wednesday 10 March, 18:00 in Paris: the cadence counts from the owner's day
[[touchpoints]]
mission = "globex-spring"
contact = "bsmith"
kind = "status_update"
at = 2027-03-10T12:00:00-05:00
"""
)


def utc(year: int, month: int, day: int, hour: int) -> datetime:
    return datetime(year, month, day, hour, tzinfo=UTC)


# key -> (due at, in UTC; the zone it must read 09:00 in)
PARIS_AUTUMN = {
    # Thursday 22 October, still CEST
    "invoice_due:F-2026-102:heads-up": (utc(2026, 10, 22, 7), PARIS),
    # Friday 23 October, CEST: the Friday before the change
    "invoice_due:F-2026-101:nudge-1": (utc(2026, 10, 23, 7), PARIS),
    "status_update_due:acme-autumn:2026-10-23": (utc(2026, 10, 23, 7), PARIS),
    # Monday 26 October, CET: the Monday after
    "invoice_due:F-2026-102:nudge-1": (utc(2026, 10, 26, 8), PARIS),
    "status_update_due:acme-autumn:2026-10-26": (utc(2026, 10, 26, 8), PARIS),
    "escalate_by_phone:acme-autumn-late:call": (utc(2026, 10, 26, 8), PARIS),
    # opened on Friday, two working days later: Tuesday 27 October
    "client_not_informed:acme-autumn-late:2026-10-27:email": (utc(2026, 10, 27, 8), PARIS),
    "client_not_informed:acme-autumn-late:2026-10-27:calendar": (utc(2026, 10, 27, 8), PARIS),
    # due the Sunday of the change + 8 days: Monday 2 November (1 November, a
    # holiday, is a Sunday)
    "invoice_due:F-2026-102:nudge-2": (utc(2026, 11, 2, 8), PARIS),
}
PARIS_SPRING = {
    # Thursday 25 and Friday 26 March, still CET
    "invoice_due:F-2027-202:heads-up": (utc(2027, 3, 25, 8), PARIS),
    "invoice_due:F-2027-201:nudge-1": (utc(2027, 3, 26, 8), PARIS),
    "status_update_due:acme-spring:2027-03-26": (utc(2027, 3, 26, 8), PARIS),
    # Monday 29 March is Easter Monday: Tuesday 30 March, CEST
    "invoice_due:F-2027-202:nudge-1": (utc(2027, 3, 30, 7), PARIS),
    "status_update_due:acme-spring:2027-03-29": (utc(2027, 3, 30, 7), PARIS),
    "escalate_by_phone:acme-spring-late:call": (utc(2027, 3, 30, 7), PARIS),
    # opened on Friday 26: Tuesday 30 is the first working day after, Wednesday the second
    "client_not_informed:acme-spring-late:2027-03-31:email": (utc(2027, 3, 31, 7), PARIS),
    "client_not_informed:acme-spring-late:2027-03-31:calendar": (utc(2027, 3, 31, 7), PARIS),
}
NEW_YORK_AUTUMN = {
    # the owner's heads-up is in Paris, which changed on 25 October: CET
    "invoice_due:F-2026-112:heads-up": (utc(2026, 10, 29, 8), PARIS),
    # Friday 30 October, New York still on EDT
    "invoice_due:F-2026-111:nudge-1": (utc(2026, 10, 30, 13), NEW_YORK),
    # Monday 2 November, EST
    "invoice_due:F-2026-112:nudge-1": (utc(2026, 11, 2, 14), NEW_YORK),
    # opened Friday 30 October at 15:00 in Paris: the owner calls on Monday, 09:00 in Paris
    "escalate_by_phone:globex-autumn-late:call": (utc(2026, 11, 2, 8), PARIS),
}
NEW_YORK_SPRING = {
    "invoice_due:F-2027-212:heads-up": (utc(2027, 3, 11, 8), PARIS),
    # Friday 12 March, EST
    "invoice_due:F-2027-211:nudge-1": (utc(2027, 3, 12, 14), NEW_YORK),
    # Monday 15 March, EDT (Paris still on CET)
    "invoice_due:F-2027-212:nudge-1": (utc(2027, 3, 15, 13), NEW_YORK),
    "deposit_due:globex-pilot:request": (utc(2027, 3, 15, 13), NEW_YORK),
    "escalate_by_phone:globex-spring-late:call": (utc(2027, 3, 15, 8), PARIS),
    # the period of Saturday 13 March moves to Monday 15 March, in Paris
    "status_update_due:globex-spring:2027-03-13": (utc(2027, 3, 15, 8), PARIS),
    "invoice_due:F-2027-212:nudge-2": (utc(2027, 3, 22, 13), NEW_YORK),
    "deposit_due:globex-pilot:nudge": (utc(2027, 3, 22, 13), NEW_YORK),
    # the call task is the owner's: Tuesday 30 March, Paris now on CEST
    "deposit_due:globex-pilot:call": (utc(2027, 3, 30, 7), PARIS),
}
EXPECTED = {**PARIS_AUTUMN, **PARIS_SPRING, **NEW_YORK_AUTUMN, **NEW_YORK_SPRING}
AUTUMN = (datetime(2026, 10, 1, tzinfo=PARIS), datetime(2026, 11, 30, tzinfo=PARIS))
SPRING = (datetime(2027, 3, 1, tzinfo=PARIS), datetime(2027, 4, 30, tzinfo=PARIS))


loaded = loaded_with(DATA)


def every_rule(settings: Settings) -> list[Rule[RuleOptions]]:
    rules = enabled_rules(settings.rules)
    assert len(rules) == 11
    return rules


def planned(store: Store, settings: Settings) -> dict[str, Intent]:
    with store.session() as session:
        intents = [
            intent
            for window in (AUTUMN, SPRING)
            for intent in plan(session, settings, every_rule(settings), *window)
        ]
    return {intent.key: intent for intent in intents}


def test_the_expectations_are_nine_oclock_local() -> None:
    """The table itself: every instant is 09:00 in its zone, in the right offset."""
    offsets = {PARIS: {timedelta(hours=1), timedelta(hours=2)},
               NEW_YORK: {timedelta(hours=-5), timedelta(hours=-4)}}  # fmt: skip
    for key, (due, tz) in EXPECTED.items():
        local = due.astimezone(tz)
        assert (local.hour, local.minute) == (9, 0), key
        assert local.utcoffset() in offsets[tz], key


@pytest.mark.parametrize(
    "expected",
    [PARIS_AUTUMN, PARIS_SPRING, NEW_YORK_AUTUMN, NEW_YORK_SPRING],
    ids=["paris-autumn", "paris-spring", "new-york-autumn", "new-york-spring"],
)
def test_plan_puts_followups_at_nine_local_across_the_change(
    loaded: Store, settings: Settings, expected: dict[str, tuple[datetime, ZoneInfo]]
) -> None:
    intents = planned(loaded, settings)
    assert {key: intents[key].due_at for key in expected if key in intents} == {
        key: due for key, (due, _tz) in expected.items()
    }
    recipients = {"acme": "jeanne.dupont@acme.example", "globex": "bob@globex.example"}
    for key, (_due, tz) in expected.items():
        intent = intents[key]
        if intent.audience == "client":
            client = "globex" if tz == NEW_YORK else "acme"
            assert (intent.channel, intent.recipient) == ("email", recipients[client]), key
        else:
            assert tz == PARIS, f"{key}: a reminder to the owner is in the owner's zone"


def test_new_york_is_five_hours_behind_paris_between_the_two_spring_changes(
    loaded: Store, settings: Settings
) -> None:
    intents = planned(loaded, settings)
    call = intents["escalate_by_phone:globex-spring-late:call"]  # 09:00 in Paris
    nudge = intents["invoice_due:F-2027-212:nudge-1"]  # 09:00 in New York, same Monday
    assert nudge.due_at - call.due_at == timedelta(hours=5)
    autumn_call = intents["escalate_by_phone:globex-autumn-late:call"]
    autumn_nudge = intents["invoice_due:F-2026-112:nudge-1"]
    assert autumn_nudge.due_at - autumn_call.due_at == timedelta(hours=6)


@pytest.mark.slow
def test_a_pass_records_each_followup_at_its_opening_not_an_hour_off(
    loaded: Store, settings: Settings
) -> None:
    """Passes one minute before and at each due time: recorded at the second, pending."""
    rules = every_rule(settings)
    for due in sorted({due for due, _tz in EXPECTED.values()}):
        keys = {key for key, (when, _tz) in EXPECTED.items() if when == due}
        with loaded.session() as session:
            early = evaluate(session, settings, rules, due - timedelta(minutes=1))
        assert keys.isdisjoint(row.key for row in early.recorded), due
        with loaded.session() as session:
            on_time = evaluate(session, settings, rules, due)
        recorded = {row.key: row for row in on_time.recorded}
        assert keys <= set(recorded), (due, keys - set(recorded))
        for key in keys:
            assert recorded[key].due_at == due
            assert recorded[key].state == "pending"
            assert not recorded[key].late
    with loaded.session() as session:
        stored = dict(session.execute(select(FollowUp.key, FollowUp.due_at)).all())
    assert {key: stored[key] for key in EXPECTED} == {
        key: due for key, (due, _tz) in EXPECTED.items()
    }
