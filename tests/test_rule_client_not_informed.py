"""`client_not_informed` through the engine, on hand-made stores of both engines."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

from followupd.config.settings import Settings
from followupd.domain.business_calendar import BusinessCalendar
from followupd.rules.base import Intent
from followupd.rules.client_not_informed import ClientNotInformed
from followupd.rules.registry import RULES
from followupd.store.db import Store
from followupd.store.updates import mark_issue_informed, resolve_issue
from tests.rulekit import (
    ACME_AND_GLOBEX,
    BSMITH,
    IN_ENGLISH,
    JDUPONT,
    RuleAlone,
    imported,
    loaded_with,
    mission_record,
    outbox,
    owner_settings,
    paris,
)
from tests.rulekit import settings as settings

SUMMARY = "Extraction des données client en retard de deux semaines"
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

[[missions]]
key = "acme-old"
client = "acme"
title = "Ancienne mission"
contact = "jdupont"
start = 2025-01-06
status = "closed"

[[missions]]
key = "acme-legacy"
client = "acme"
title = "Reprise de l'existant"
start = 2025-01-06

[[missions]]
key = "globex-plan"
client = "globex"
title = "Data plan"
contact = "bsmith"
start = 2026-09-01

[[issues]]            # Tuesday; Wednesday 11 November is a French public holiday
key = "late-data"
mission = "acme-audit"
opened = 2026-11-10T10:00:00+01:00
severity = "medium"
summary = "{SUMMARY}"

[[issues]]
key = "told"
mission = "acme-audit"
opened = 2026-11-10T10:00:00+01:00
summary = "Retard de livraison du matériel"
client_informed = 2026-11-10T15:00:00+01:00

[[issues]]
key = "done"
mission = "acme-audit"
opened = 2026-11-10T10:00:00+01:00
summary = "Serveur de test indisponible"
resolved = 2026-11-10T18:00:00+01:00

[[issues]]
key = "old-leak"
mission = "acme-old"
opened = 2026-11-10T10:00:00+01:00
severity = "critical"
summary = "Fuite de données"

[[issues]]            # open and untold for almost two years
key = "legacy-gap"
mission = "acme-legacy"
opened = 2025-01-06T09:30:00+01:00
severity = "low"
summary = "Documentation de l'existant manquante"

[[issues]]            # a Monday; Thursday 26 November is Thanksgiving in the US
key = "gx-outage"
mission = "globex-plan"
opened = 2026-11-23T10:00:00-05:00
severity = "high"
summary = "Warehouse outage"

[[touchpoints]]
mission = "acme-audit"
contact = "jdupont"
kind = "meeting"
at = 2026-11-09T15:00:00+01:00
note = "Calendrier validé"
"""


RULE = RuleAlone(ClientNotInformed, paris(2026, 11, 1), paris(2026, 12, 31))
loaded = loaded_with(DATA)


def reminders(
    store: Store, settings: Settings, start: datetime, end: datetime, issue: str
) -> dict[str, Intent]:
    """The reminders about `issue` due in ``[start, end]``, by key."""
    intents = RULE.planned(store, settings, start, end)
    return {key: intent for key, intent in intents.items() if intent.subject_key == issue}


def days(intents: dict[str, Intent]) -> list[str]:
    return sorted({key.split(":")[2] for key in intents})


def test_the_rule_is_registered_under_its_config_name() -> None:
    assert RULES["client_not_informed"] is ClientNotInformed


def test_the_owner_is_reminded_by_email_and_calendar_then_every_two_working_days(
    loaded: Store, settings: Settings
) -> None:
    intents = reminders(loaded, settings, paris(2026, 11, 1), paris(2026, 11, 20, 23), "late-data")
    # opened Tuesday 10th; the 11th is a holiday: 12th and 13th are the two working days;
    # then Monday 16 and Tuesday 17 (over the weekend), Wednesday 18 and Thursday 19
    assert days(intents) == ["2026-11-13", "2026-11-17", "2026-11-19"]
    email = intents["client_not_informed:late-data:2026-11-13:email"]
    assert (email.rule, email.step, email.subject_key) == (
        "client_not_informed",
        "reminder",
        "late-data",
    )
    assert (email.audience, email.channel, email.recipient) == (
        "owner",
        "email",
        "claire@cabinet.example",
    )
    assert email.language == "fr"
    assert email.due_at == paris(2026, 11, 13, 9, 0)
    assert email.expires_at == paris(2026, 11, 20, 9, 0)
    assert email.subject == f"Prévenir Jeanne Dupont — {SUMMARY}"
    assert email.mission_id is not None
    assert email.contact_id is not None
    task = intents["client_not_informed:late-data:2026-11-13:calendar"]
    assert (task.audience, task.channel, task.recipient) == ("owner", "calendar", None)
    assert (task.due_at, task.subject) == (email.due_at, email.subject)
    again = intents["client_not_informed:late-data:2026-11-17:calendar"]
    assert again.due_at == paris(2026, 11, 17, 9, 0)
    # one calendar item updated in place: its summary is the same at every period, the
    # count is in its description ("Rappel n° 2")
    assert again.subject == email.subject


def test_informed_resolved_or_closed_issues_give_no_reminder(
    loaded: Store, settings: Settings
) -> None:
    intents = RULE.intents(loaded, settings)
    assert {i.subject_key for i in intents} == {"late-data", "legacy-gap", "gx-outage"}


def test_a_us_client_skips_its_own_holidays_too(loaded: Store, settings: Settings) -> None:
    intents = reminders(loaded, settings, paris(2026, 11, 1), paris(2026, 12, 1, 23), "gx-outage")
    # opened Monday 23rd; Tuesday 24 and Wednesday 25; then Thanksgiving: Friday 27, Monday 30
    assert days(intents) == ["2026-11-25", "2026-11-30"]
    first = intents["client_not_informed:gx-outage:2026-11-25:email"]
    assert first.due_at == paris(2026, 11, 25, 9, 0)  # the owner's zone
    assert first.subject == "Prévenir Bob Smith — Warehouse outage"


def test_an_english_speaking_owner_gets_english_reminders(loaded: Store, tmp_path: Path) -> None:
    settings = owner_settings(tmp_path, IN_ENGLISH)
    intents = reminders(loaded, settings, paris(2026, 11, 1), paris(2026, 11, 20, 23), "late-data")
    email = intents["client_not_informed:late-data:2026-11-13:email"]
    assert email.language == "en"
    assert email.subject == f"Tell Jeanne Dupont — {SUMMARY}"
    assert email.due_at == paris(2026, 11, 13, 9, 0)
    again = intents["client_not_informed:late-data:2026-11-19:email"]
    assert again.subject == email.subject
    text = RULE.texts(loaded, settings, paris(2026, 11, 13), paris(2026, 11, 13, 23))
    body = text["client_not_informed:late-data:2026-11-13:email"]
    assert "Tell Jeanne Dupont: tel:+33612345678 or jeanne.dupont@acme.example." in body
    assert "Once the client knows: followupd issue informed late-data" in body


def test_the_reminder_says_who_to_tell_how_and_what_was_last_said(
    loaded: Store, settings: Settings
) -> None:
    rendered = RULE.texts(loaded, settings, paris(2026, 11, 12), paris(2026, 11, 13, 23))
    body = rendered["client_not_informed:late-data:2026-11-13:calendar"]
    assert "ouvert le 10 novembre 2026" in body
    assert f"{SUMMARY} (gravité : moyenne)" in body
    assert "Prévenir Jeanne Dupont : tel:+33612345678 ou jeanne.dupont@acme.example." in body
    assert "Dernier échange : réunion le 9 novembre 2026 : « Calendrier validé »." in body
    assert "Une fois le client informé : followupd issue informed late-data" in body
    (legacy,) = [  # one of two working days
        text
        for key, text in rendered.items()
        if key.startswith("client_not_informed:legacy-gap:") and key.endswith(":email")
    ]
    assert "Aucun contact sur la mission : prévenir ACME SA." in legacy


def test_an_old_issue_gives_only_the_reminders_of_the_window(
    loaded: Store, settings: Settings
) -> None:
    start, end = paris(2026, 11, 16), paris(2026, 11, 22, 23)
    intents = reminders(loaded, settings, start, end, "legacy-gap")
    # the slow way: walk every reminder since the issue was opened
    calendar, countries = BusinessCalendar(settings.business), ("FR",)
    day, expected = calendar.add_working_days(date(2025, 1, 6), 2, countries), []
    while day <= end.date():
        if day >= start.date():
            expected.append(day.isoformat())
        day = calendar.add_working_days(day, 2, countries)
    assert days(intents) == expected
    assert len(intents) == 2 * len(expected)
    # however many reminders went before (or were never sent), none says "still"
    assert {str(i.subject).split(" — ")[0] for i in intents.values()} == {"Prévenir ACME SA"}


def test_a_pass_records_each_reminder_once_and_plan_records_nothing(
    loaded: Store, settings: Settings
) -> None:
    reminders(loaded, settings, paris(2026, 11, 1), paris(2026, 12, 31), "late-data")
    assert outbox(loaded) == {}, "plan changes nothing"
    at = paris(2026, 11, 13, 9, 0)
    first = RULE.pass_at(loaded, settings, at)
    recorded = {row.key: row for row in first.recorded if row.subject_key == "late-data"}
    assert set(recorded) == {
        "client_not_informed:late-data:2026-11-13:email",
        "client_not_informed:late-data:2026-11-13:calendar",
    }
    assert {row.state for row in recorded.values()} == {"pending"}
    second = RULE.pass_at(loaded, settings, at)
    assert second.recorded == []
    assert second.cancelled == {}


def test_informing_the_client_stops_the_reminders_and_cancels_pending_ones(
    loaded: Store, settings: Settings
) -> None:
    RULE.pass_at(loaded, settings, paris(2026, 11, 13, 9, 0))
    with loaded.session() as session:
        mark_issue_informed(session, "late-data", paris(2026, 11, 16, 11, 0))
    report = RULE.pass_at(loaded, settings, paris(2026, 11, 19, 9, 0))
    reason = "client informed of late-data on 2026-11-16"
    assert report.cancelled == {
        "client_not_informed:late-data:2026-11-13:email": reason,
        "client_not_informed:late-data:2026-11-13:calendar": reason,
    }
    rows = outbox(loaded)
    assert rows["client_not_informed:late-data:2026-11-13:email"].state == "cancelled"
    assert {key for key in rows if key.startswith("client_not_informed:late-data:")} == set(
        report.cancelled
    ), "no reminder after the client was informed"


def test_resolving_the_issue_cancels_pending_reminders(loaded: Store, settings: Settings) -> None:
    RULE.pass_at(loaded, settings, paris(2026, 11, 17, 9, 0))
    with loaded.session() as session:
        resolve_issue(session, "late-data", paris(2026, 11, 17, 12, 0))
    report = RULE.pass_at(loaded, settings, paris(2026, 11, 17, 13, 0))
    assert report.cancelled == {
        f"client_not_informed:late-data:2026-11-{day}:{channel}": (
            "issue late-data resolved on 2026-11-17"
        )
        for day in ("13", "17")
        for channel in ("email", "calendar")
    }
    assert not reminders(loaded, settings, paris(2026, 11, 18), paris(2026, 12, 31), "late-data")


def test_closing_the_mission_cancels_pending_reminders(
    loaded: Store, settings: Settings, tmp_path: Path
) -> None:
    RULE.pass_at(loaded, settings, paris(2026, 11, 13, 9, 0))
    closed = mission_record("acme-audit", "Audit du SI", "2026-09-01", 'status = "closed"')
    imported(loaded, tmp_path, closed, name="update.toml")
    report = RULE.pass_at(loaded, settings, paris(2026, 11, 13, 10, 0))
    assert report.cancelled == {
        "client_not_informed:late-data:2026-11-13:email": "mission acme-audit closed",
        "client_not_informed:late-data:2026-11-13:calendar": "mission acme-audit closed",
    }
    after = paris(2026, 11, 13, 10, 0) + timedelta(days=30)
    assert not reminders(loaded, settings, paris(2026, 11, 14), after, "late-data")
