"""`contract_missing` through the engine, on hand-made stores of both engines."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from followupd.config.settings import Settings
from followupd.rules.contract_missing import ContractMissing
from followupd.rules.registry import RULES
from followupd.store.db import Store
from followupd.store.updates import get_mission
from followupd.templates.loader import Templates
from tests.rulekit import (
    ACME_AND_GLOBEX,
    BSMITH,
    IN_ENGLISH,
    JDUPONT,
    RuleAlone,
    change_mission,
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
status = "proposed"
start = 2026-11-18
deposit_amount = 3000

[[missions]]
key = "globex-plan"
client = "globex"
title = "Data plan"
contact = "bsmith"
start = 2026-09-14

[[missions]]
key = "acme-signed"
client = "acme"
title = "Signée"
start = 2026-11-18
contract_signed = 2026-11-02

[[missions]]
key = "acme-hold"
client = "acme"
title = "En attente"
status = "on_hold"
start = 2026-11-18

[[missions]]
key = "acme-dispute"
client = "acme"
title = "En litige"
status = "disputed"
start = 2026-11-18

[[missions]]
key = "acme-closed"
client = "acme"
title = "Terminée"
status = "closed"
start = 2026-11-18
"""
KEY = "contract_missing:acme-audit:2026-11-11"


RULE = RuleAlone(ContractMissing, paris(2026, 8, 1), paris(2026, 12, 1))
loaded = loaded_with(DATA)


def test_the_first_reminder_goes_to_the_owner_by_email_and_calendar(
    loaded: Store, settings: Settings
) -> None:
    intents = RULE.planned(loaded, settings)
    assert {i.subject_key for i in intents.values()} == {"acme-audit", "globex-plan"}, (
        "signed, on hold, disputed and closed missions get nothing"
    )
    email, task = intents[f"{KEY}:email"], intents[f"{KEY}:calendar"]
    assert (email.audience, email.channel) == ("owner", "email")
    assert email.recipient == "claire@cabinet.example"
    assert (task.audience, task.channel, task.recipient) == ("owner", "calendar", None)
    for intent in (email, task):
        assert intent.language == "fr"
        # start - 7 days is 11 November, a holiday
        assert intent.due_at == paris(2026, 11, 12, 9, 0)
        assert intent.subject == "Faire signer le contrat à Jeanne Dupont — Audit du SI"
        assert intent.subject_key == "acme-audit"
        assert intent.contact_id is not None
        assert intent.mission_id is not None
        assert intent.thread_key is None


def test_reminders_repeat_every_week_while_unsigned(loaded: Store, settings: Settings) -> None:
    dates = sorted(
        {
            i.key.split(":")[2]
            for i in RULE.planned(loaded, settings).values()
            if "acme-audit" in i.key
        }
    )
    assert dates == ["2026-11-11", "2026-11-18", "2026-11-25"]
    intents = RULE.planned(loaded, settings)
    assert intents["contract_missing:acme-audit:2026-11-18:email"].due_at == paris(
        2026, 11, 18, 9, 0
    )
    assert intents["contract_missing:acme-audit:2026-11-25:calendar"].due_at == paris(
        2026, 11, 25, 9, 0
    )


def test_owner_reminders_skip_the_clients_holidays_too(loaded: Store, settings: Settings) -> None:
    intents = RULE.planned(loaded, settings)
    first = intents["contract_missing:globex-plan:2026-09-07:calendar"]
    # Monday 7 September is Labor Day in the US: nobody to call at Globex
    assert first.due_at == paris(2026, 9, 8, 9, 0)
    assert first.language == "fr"
    assert first.subject == "Faire signer le contrat à Bob Smith — Data plan"
    # the mission started on 14 September; it goes on every week while unsigned
    columbus_day = intents["contract_missing:globex-plan:2026-10-12:email"]
    assert columbus_day.due_at == paris(2026, 10, 13, 9, 0)
    assert "contract_missing:globex-plan:2026-11-30:email" in intents


def test_an_english_owner_gets_english_reminders(loaded: Store, tmp_path: Path) -> None:
    settings = owner_settings(tmp_path, IN_ENGLISH)
    intent = RULE.planned(loaded, settings)[f"{KEY}:email"]
    assert intent.language == "en"
    assert intent.subject == "Get the contract signed by Jeanne Dupont — Audit du SI"


def test_the_reminder_says_who_to_call(loaded: Store, settings: Settings) -> None:
    templates = Templates()
    with loaded.session() as session:
        for key in ("acme-audit", "globex-plan"):
            mission = get_mission(session, key)
            values = {
                "mission": mission,
                "client": mission.client,
                "contact": mission.contact,
                "owner": settings.owner,
                "step": "reminder",
            }
            french = templates.render("fr", "contract_missing", "reminder", "text", values)
            english = templates.render("en", "contract_missing", "reminder", "text", values)
            if key == "acme-audit":
                assert "début le 18 novembre 2026" in french
                assert "Appeler Jeanne Dupont : tel:+33612345678" in french
                assert "Call Jeanne Dupont: tel:+33612345678" in english
            else:
                assert "Écrire à Bob Smith : bob@globex.example" in french
                assert "starting on September 14, 2026" in english


def test_a_pass_records_due_ones_once_and_plan_changes_nothing(
    loaded: Store, settings: Settings
) -> None:
    RULE.planned(loaded, settings)
    assert outbox(loaded) == {}, "plan changes nothing"
    RULE.run(loaded, settings, paris(2026, 1, 5, 9, 0))  # a pass before a long downtime
    at = paris(2026, 11, 12, 9, 0)
    recorded, _ = RULE.run(loaded, settings, at)
    assert {f"{KEY}:email", f"{KEY}:calendar"} <= set(recorded)
    rows = outbox(loaded)
    assert rows[f"{KEY}:email"].state == "pending"
    assert rows["contract_missing:globex-plan:2026-11-09:email"].state == "pending"
    assert rows["contract_missing:globex-plan:2026-10-26:email"].state == "expired"
    assert RULE.run(loaded, settings, at) == ([], {}), "a second pass at the same instant"


def test_signing_stops_the_reminders_and_cancels_pending_ones(
    loaded: Store, settings: Settings
) -> None:
    RULE.run(loaded, settings, paris(2026, 11, 12, 9, 0))
    change_mission(loaded, "acme-audit", contract_signed=date(2026, 11, 13))
    recorded, cancelled = RULE.run(loaded, settings, paris(2026, 11, 30, 9, 0))
    reason = "contract of acme-audit signed on 2026-11-13"
    assert cancelled == {f"{KEY}:email": reason, f"{KEY}:calendar": reason}
    assert outbox(loaded)[f"{KEY}:calendar"].state == "cancelled"
    assert not [key for key in recorded if "acme-audit" in key]
    assert "contract_missing:globex-plan:2026-11-30:email" in recorded


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        ("closed", "mission acme-audit closed"),
        ("on_hold", "mission acme-audit put on hold"),
        ("disputed", "mission acme-audit disputed"),
    ],
)
def test_a_mission_no_longer_proposed_or_active_stops_the_reminders(
    loaded: Store, settings: Settings, status: str, reason: str
) -> None:
    RULE.run(loaded, settings, paris(2026, 11, 12, 9, 0))
    change_mission(loaded, "acme-audit", status=status)
    recorded, cancelled = RULE.run(loaded, settings, paris(2026, 11, 18, 9, 0))
    assert cancelled == {f"{KEY}:email": reason, f"{KEY}:calendar": reason}
    assert not [key for key in recorded if "acme-audit" in key]


def test_active_missions_are_reminded_too(loaded: Store, settings: Settings) -> None:
    change_mission(loaded, "acme-audit", status="active")
    assert f"{KEY}:email" in RULE.planned(loaded, settings)


def test_the_rule_registers_under_its_config_name() -> None:
    assert RULES["contract_missing"] is ContractMissing
