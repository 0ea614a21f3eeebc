"""`mission_closeout` through the engine, on hand-made stores of both engines."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from followupd.config.rule_options import MissionCloseoutOptions
from followupd.config.settings import Settings
from followupd.rules.mission_closeout import MissionCloseout
from followupd.rules.registry import RULES
from followupd.store.db import Store
from followupd.store.models import Invoice
from followupd.store.updates import get_mission
from followupd.templates.loader import Templates
from tests.rulekit import (
    ACME_AND_GLOBEX,
    BSMITH,
    IN_ENGLISH,
    JDUPONT,
    RuleAlone,
    loaded_with,
    outbox,
    owner_settings,
    paris,
)
from tests.rulekit import settings as settings

DATA = f"""\
{ACME_AND_GLOBEX}
{JDUPONT}
{BSMITH}
[[missions]]
key = "acme-audit"
client = "acme"
title = "Audit du SI"
contact = "jdupont"
start = 2026-09-01
end = 2026-11-10
deposit_amount = 3000
deposit_paid = 2026-09-03

[[missions]]
key = "globex-plan"
client = "globex"
title = "Data plan"
contact = "bsmith"
status = "closed"
start = 2026-09-01
end = 2026-11-21          # a Saturday
currency = "USD"

[[missions]]
key = "acme-dispute"
client = "acme"
title = "En litige"
status = "disputed"
start = 2026-09-01
end = 2026-10-30

[[missions]]
key = "acme-no-end"
client = "acme"
title = "Close sans date"
contact = "jdupont"
status = "closed"
start = 2026-09-01

[[missions]]
key = "acme-proposal"
client = "acme"
title = "Jamais commencée"
status = "proposed"
start = 2026-09-01
end = 2026-10-15

[[missions]]
key = "acme-later"
client = "acme"
title = "Plus tard"
start = 2026-09-01
end = 2027-03-31

[[invoices]]
number = "F-1"
mission = "acme-audit"
amount = 9000
issued = 2026-10-31       # before the end: not the final invoice
due = 2026-11-30

[[invoices]]
number = "F-2"
mission = "globex-plan"
amount = 5000
issued = 2026-11-21       # on the end date: the final invoice
due = 2026-12-21
"""
BILAN = "mission_closeout:acme-audit:bilan"
FINAL = "mission_closeout:acme-audit:final-invoice"


RULE = RuleAlone(MissionCloseout, paris(2026, 9, 1), paris(2027, 1, 1))
loaded = loaded_with(DATA)


def add_invoice_f3(store: Store, issued: date, due: date) -> None:
    """Invoice F-3 of acme-audit, for 6,000, added to the store."""
    with store.session() as session:
        mission = get_mission(session, "acme-audit")
        session.add(
            Invoice(number="F-3", mission=mission, amount=Decimal(6000), issued=issued, due=due)
        )


def test_the_bilan_and_the_final_invoice_go_to_the_owner_by_email_and_calendar(
    loaded: Store, settings: Settings
) -> None:
    intents = RULE.planned(loaded, settings)
    assert {i.subject_key for i in intents.values()} == {
        "acme-audit",
        "globex-plan",
        "acme-dispute",
    }, "no close-out without an end date, for a proposal, or before the end"
    for step in (BILAN, FINAL):
        email, task = intents[f"{step}:email"], intents[f"{step}:calendar"]
        assert (email.audience, email.channel) == ("owner", "email")
        assert email.recipient == "claire@cabinet.example"
        assert (task.audience, task.channel, task.recipient) == ("owner", "calendar", None)
        for intent in (email, task):
            # ended Tuesday 10 November; the 11th is a holiday
            assert intent.due_at == paris(2026, 11, 12, 9, 0)
            assert intent.language == "fr"
            assert intent.mission_id is not None
            assert intent.contact_id is not None
    assert intents[f"{BILAN}:email"].step == "bilan"
    assert (
        intents[f"{BILAN}:email"].subject == "Planifier le bilan avec Jeanne Dupont — Audit du SI"
    )
    assert intents[f"{FINAL}:calendar"].step == "final-invoice"
    assert (
        intents[f"{FINAL}:calendar"].subject
        == "Émettre la facture finale pour ACME SA — Audit du SI"
    )


def test_a_closed_mission_ending_on_a_saturday_closes_out_on_monday(
    loaded: Store, settings: Settings
) -> None:
    intents = {k: i for k, i in RULE.planned(loaded, settings).items() if "globex-plan" in k}
    assert set(intents) == {
        "mission_closeout:globex-plan:bilan:email",
        "mission_closeout:globex-plan:bilan:calendar",
    }, "invoice F-2, issued on the end date, is the final invoice"
    bilan = intents["mission_closeout:globex-plan:bilan:calendar"]
    assert bilan.due_at == paris(2026, 11, 23, 9, 0)
    assert bilan.subject == "Planifier le bilan avec Bob Smith — Data plan"


def test_a_disputed_mission_without_contact_still_closes_out(
    loaded: Store, settings: Settings
) -> None:
    intents = RULE.planned(loaded, settings)
    bilan = intents["mission_closeout:acme-dispute:bilan:calendar"]
    assert bilan.due_at == paris(2026, 11, 2, 9, 0)  # ended Friday 30 October
    assert bilan.subject == "Planifier le bilan avec ACME SA — En litige"
    assert bilan.contact_id is None


@pytest.mark.parametrize(
    ("working_days", "acme", "globex"),
    [
        (0, paris(2026, 11, 10, 9, 0), paris(2026, 11, 23, 9, 0)),
        (2, paris(2026, 11, 13, 9, 0), paris(2026, 11, 24, 9, 0)),
    ],
)
def test_the_delay_counts_working_days_after_the_end(
    loaded: Store, settings: Settings, working_days: int, acme: datetime, globex: datetime
) -> None:
    options = MissionCloseoutOptions(after_working_days=working_days)
    intents = RULE.planned(loaded, settings, options=options)
    assert intents[f"{BILAN}:calendar"].due_at == acme
    assert intents["mission_closeout:globex-plan:bilan:email"].due_at == globex


def test_an_english_owner_gets_english_reminders(loaded: Store, tmp_path: Path) -> None:
    settings = owner_settings(tmp_path, IN_ENGLISH)
    intents = RULE.planned(loaded, settings)
    assert intents[f"{BILAN}:email"].language == "en"
    assert (
        intents[f"{BILAN}:email"].subject
        == "Schedule the close-out review with Jeanne Dupont — Audit du SI"
    )
    assert intents[f"{FINAL}:email"].subject == "Send the final invoice to ACME SA — Audit du SI"


def test_the_reminders_say_who_to_call_and_what_to_ask(loaded: Store, settings: Settings) -> None:
    templates = Templates()
    with loaded.session() as session:
        mission = get_mission(session, "acme-audit")
        values = {
            "mission": mission,
            "client": mission.client,
            "contact": mission.contact,
            "owner": settings.owner,
        }
        bilan = templates.render("fr", "mission_closeout", "bilan", "text", values)
        assert "s'est terminée le 10 novembre 2026" in bilan
        assert "bon à payer" in bilan
        assert "Appeler Jeanne Dupont : tel:+33612345678" in bilan
        final = templates.render("en", "mission_closeout", "final-invoice", "text", values)
        assert "Send the final invoice (less the deposit of €3,000.00) once" in final
        assert "tel:+33612345678" in final
        dispute = get_mission(session, "acme-dispute")
        values = {
            "mission": dispute,
            "client": dispute.client,
            "contact": None,
            "owner": settings.owner,
        }
        for language in ("fr", "en"):
            for step in ("bilan", "final-invoice"):
                text = templates.render(language, "mission_closeout", step, "text", values)
                assert "En litige" in text


def test_a_pass_records_due_ones_once_and_plan_changes_nothing(
    loaded: Store, settings: Settings
) -> None:
    RULE.planned(loaded, settings)
    assert outbox(loaded) == {}, "plan changes nothing"
    RULE.run(loaded, settings, paris(2026, 1, 5, 9, 0))  # a pass before a long downtime
    at = paris(2026, 11, 12, 9, 0)
    recorded, _ = RULE.run(loaded, settings, at)
    assert set(recorded) == {
        f"{BILAN}:email",
        f"{BILAN}:calendar",
        f"{FINAL}:email",
        f"{FINAL}:calendar",
        "mission_closeout:acme-dispute:bilan:email",
        "mission_closeout:acme-dispute:bilan:calendar",
        "mission_closeout:acme-dispute:final-invoice:email",
        "mission_closeout:acme-dispute:final-invoice:calendar",
    }
    rows = outbox(loaded)
    assert rows[f"{BILAN}:email"].state == "pending"
    assert rows["mission_closeout:acme-dispute:bilan:email"].state == "expired"  # due 2 November
    assert RULE.run(loaded, settings, at) == ([], {}), "a second pass at the same instant"


def test_issuing_the_final_invoice_cancels_its_reminder_not_the_bilan(
    loaded: Store, settings: Settings
) -> None:
    RULE.run(loaded, settings, paris(2026, 11, 12, 9, 0))
    add_invoice_f3(loaded, issued=date(2026, 11, 13), due=date(2026, 12, 13))
    recorded, cancelled = RULE.run(loaded, settings, paris(2026, 11, 16, 9, 0))
    reason = "invoice F-3 of acme-audit issued on 2026-11-13"
    assert cancelled == {f"{FINAL}:email": reason, f"{FINAL}:calendar": reason}
    rows = outbox(loaded)
    assert rows[f"{FINAL}:calendar"].state == "cancelled"
    assert rows[f"{BILAN}:calendar"].state == "pending"
    assert recorded == []


def test_a_final_invoice_issued_before_the_pass_means_no_reminder(
    loaded: Store, settings: Settings
) -> None:
    add_invoice_f3(loaded, issued=date(2026, 11, 10), due=date(2026, 12, 10))
    recorded, _ = RULE.run(loaded, settings, paris(2026, 11, 12, 9, 0))
    assert f"{BILAN}:email" in recorded
    assert not [key for key in recorded if key.startswith(FINAL)]


def test_the_rule_registers_under_its_config_name() -> None:
    assert RULES["mission_closeout"] is MissionCloseout
