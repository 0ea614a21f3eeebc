"""`open_ended_mission` through the engine, on hand-made stores of both engines."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import select

from followupd.config.load import parse_settings
from followupd.config.settings import Settings
from followupd.domain.months import add_months
from followupd.rules.base import Intent
from followupd.rules.open_ended_mission import OpenEndedMission
from followupd.store.db import Store
from followupd.store.models import FollowUp, Mission
from tests.conftest import MINIMAL_CONFIG
from tests.rulekit import (
    ACME_AND_GLOBEX,
    IN_ENGLISH,
    JDUPONT,
    RuleAlone,
    imported,
    loaded_with,
    outbox,
    owner_settings,
    paris,
)
from tests.rulekit import settings as settings

DATA = f"""\
{ACME_AND_GLOBEX}
{JDUPONT}
# No deliverable and no end date: to be framed by Tuesday 13 October 2026.
[[missions]]
key = "acme-conseil"
client = "acme"
title = "Accompagnement de la DSI"
contact = "jdupont"
start = 2026-04-13
deliverables = false

# No deliverable, planned for a year: over 6 months from Sunday 5 July 2026.
[[missions]]
key = "acme-long"
client = "acme"
title = "Conseil à l'année"
start = 2026-01-05
end = 2026-12-31
deliverables = false

# Exactly 6 months: not over.
[[missions]]
key = "acme-six-mois"
client = "acme"
title = "Six mois"
start = 2026-03-02
end = 2026-09-02
deliverables = false

[[missions]]
key = "acme-livrables"
client = "acme"
title = "Avec livrables"
start = 2026-01-05

[[missions]]
key = "acme-proposed"
client = "acme"
title = "Proposée"
start = 2026-01-05
deliverables = false
status = "proposed"

[[missions]]
key = "acme-hold"
client = "acme"
title = "En pause"
start = 2026-01-05
deliverables = false
status = "on_hold"

[[missions]]
key = "acme-dispute"
client = "acme"
title = "En litige"
start = 2026-01-05
deliverables = false
status = "disputed"

[[missions]]
key = "acme-closed"
client = "acme"
title = "Terminée"
start = 2026-01-05
deliverables = false
status = "closed"

# 31 August + 6 months is 28 February 2027, a Sunday.
[[missions]]
key = "globex-advice"
client = "globex"
title = "Advisory"
start = 2026-08-31
deliverables = false
"""


RULE = RuleAlone(OpenEndedMission, paris(2026, 1, 1), paris(2027, 3, 31))
loaded = loaded_with(DATA)


def update_mission(store: Store, tmp_path: Path, extra: str) -> None:
    """Re-import acme-conseil with `extra` TOML lines (fields left out keep their value)."""
    start = "" if extra.startswith("start") else "start = 2026-04-13\n"
    record = (
        '[[missions]]\nkey = "acme-conseil"\nclient = "acme"\n'
        f'title = "Accompagnement de la DSI"\n{start}{extra}\n'
    )
    imported(store, tmp_path, record, name="update.toml")


def test_months_are_calendar_months_clamped_to_the_months_end() -> None:
    assert add_months(date(2026, 4, 13), 6) == date(2026, 10, 13)
    assert add_months(date(2026, 8, 31), 6) == date(2027, 2, 28)
    assert add_months(date(2027, 8, 31), 6) == date(2028, 2, 29)
    assert add_months(date(2026, 3, 31), -1) == date(2026, 2, 28)
    assert add_months(date(2027, 1, 1), -24) == date(2025, 1, 1)


def test_plan_emails_the_owner_at_the_limit_then_every_90_days(
    loaded: Store, settings: Settings
) -> None:
    intents = RULE.intents(loaded, settings, paris(2026, 1, 1), paris(2027, 3, 31))
    by_mission: dict[str, list[Intent]] = {}
    for intent in intents:
        by_mission.setdefault(intent.subject_key, []).append(intent)
    assert set(by_mission) == {"acme-conseil", "acme-long", "globex-advice"}

    conseil = by_mission["acme-conseil"]
    assert [i.key for i in conseil] == [
        "open_ended_mission:acme-conseil:2026-10-13",
        "open_ended_mission:acme-conseil:2027-01-11",
    ]
    assert [i.due_at for i in conseil] == [paris(2026, 10, 13, 9, 0), paris(2027, 1, 11, 9, 0)]
    first = conseil[0]
    assert (first.audience, first.channel) == ("owner", "email")
    assert first.recipient == "claire@cabinet.example"
    assert first.language == "fr"
    assert first.subject == "Cadrer la mission avec Jeanne Dupont — Accompagnement de la DSI"
    assert (first.rule, first.step) == ("open_ended_mission", "reminder")
    assert first.expires_at == paris(2026, 10, 20, 9, 0)
    with loaded.session() as session:
        mission = session.scalars(select(Mission).where(Mission.key == "acme-conseil")).one()
        assert (first.mission_id, first.contact_id) == (mission.id, mission.contact_id)
        assert session.scalars(select(FollowUp)).all() == [], "plan changes nothing"

    # 5 July and 3 October 2026 are weekend days; 1 January 2027 is after its end
    long = by_mission["acme-long"]
    assert [i.key.rsplit(":", 1)[1] for i in long] == ["2026-07-05", "2026-10-03"]
    assert [i.due_at for i in long] == [paris(2026, 7, 6, 9, 0), paris(2026, 10, 5, 9, 0)]

    # a US client: still the owner's email, zone and language
    (advice,) = by_mission["globex-advice"]
    assert advice.key == "open_ended_mission:globex-advice:2027-02-28"
    assert advice.due_at == paris(2027, 3, 1, 9, 0)
    assert (advice.recipient, advice.language) == ("claire@cabinet.example", "fr")
    assert advice.subject == "Cadrer la mission avec Globex Inc. — Advisory"


def test_an_english_owner_gets_english_reminders(loaded: Store, tmp_path: Path) -> None:
    english = owner_settings(tmp_path, IN_ENGLISH)
    intents = RULE.intents(loaded, english, paris(2026, 10, 1), paris(2026, 10, 31))
    (intent,) = [i for i in intents if i.subject_key == "acme-conseil"]
    assert intent.language == "en"
    assert intent.subject == "Frame the mission with Jeanne Dupont — Accompagnement de la DSI"


def test_an_owner_who_wants_no_reminder_by_email_gets_it_in_the_calendar(
    loaded: Store, tmp_path: Path
) -> None:
    """With `reminders_by_email = "off"` the reminder would reach no one: it is a calendar
    item instead, under the same key (switching the option repeats no period)."""
    text = MINIMAL_CONFIG.replace('reminders_by_email = "each"', 'reminders_by_email = "off"')
    quiet = parse_settings(text, tmp_path / "followupd.toml", {"HOME": str(tmp_path)})
    intents = RULE.intents(loaded, quiet, paris(2026, 10, 1), paris(2026, 10, 31))
    (intent,) = [i for i in intents if i.subject_key == "acme-conseil"]
    assert intent.key == "open_ended_mission:acme-conseil:2026-10-13"
    assert (intent.audience, intent.channel) == ("owner", "calendar")
    RULE.pass_at(loaded, quiet, paris(2026, 10, 13, 10, 0))
    recorded = outbox(loaded)["open_ended_mission:acme-conseil:2026-10-13"]
    assert (recorded.channel, recorded.state) == ("calendar", "pending")


def test_options_set_the_limit_and_the_period(loaded: Store, tmp_path: Path) -> None:
    custom = owner_settings(
        tmp_path, "[rules.open_ended_mission]\nmax_months = 3\nevery_days = 30\n"
    )
    intents = RULE.intents(loaded, custom, paris(2026, 7, 1), paris(2026, 9, 30))
    assert [i.key for i in intents if i.subject_key == "acme-conseil"] == [
        "open_ended_mission:acme-conseil:2026-07-13",
        "open_ended_mission:acme-conseil:2026-08-12",
        "open_ended_mission:acme-conseil:2026-09-11",
    ]
    # three months: now the six-month mission is over the limit too
    assert "acme-six-mois" in {i.subject_key for i in intents}


def test_evaluating_twice_adds_nothing(loaded: Store, settings: Settings) -> None:
    RULE.pass_at(loaded, settings, paris(2026, 9, 6, 9, 0))  # a pass before a long downtime
    at = paris(2026, 10, 13, 9, 0)
    first = RULE.pass_at(loaded, settings, at)
    assert {row.key: row.state for row in first.recorded} == {
        "open_ended_mission:acme-conseil:2026-10-13": "pending",
        "open_ended_mission:acme-long:2026-10-03": "expired",  # due 5 October, grace 7 days
    }
    second = RULE.pass_at(loaded, settings, at)
    assert second.recorded == []
    assert second.cancelled == {}


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ("deliverables = true", "mission acme-conseil now has deliverables"),
        ("end = 2026-10-13", "mission acme-conseil now ends on 2026-10-13, within 6 months"),
        ('status = "closed"', "mission acme-conseil is closed"),
        ('status = "on_hold"', "mission acme-conseil is on hold"),
        ("start = 2026-04-20", "mission acme-conseil now starts on 2026-04-20"),
    ],
)
def test_a_reminder_whose_reason_has_gone_is_cancelled(
    loaded: Store, settings: Settings, tmp_path: Path, change: str, reason: str
) -> None:
    key = "open_ended_mission:acme-conseil:2026-10-13"
    RULE.pass_at(loaded, settings, paris(2026, 10, 13, 9, 0))
    assert outbox(loaded)[key].state == "pending"
    update_mission(loaded, tmp_path, change)
    report = RULE.pass_at(loaded, settings, paris(2026, 10, 14, 9, 0))
    assert report.cancelled == {key: reason}
    row = outbox(loaded)[key]
    assert (row.state, row.reason) == ("cancelled", reason)
    assert [row.key for row in report.recorded] == []


def test_an_end_date_beyond_the_limit_keeps_the_reminder(
    loaded: Store, settings: Settings, tmp_path: Path
) -> None:
    RULE.pass_at(loaded, settings, paris(2026, 10, 13, 9, 0))
    update_mission(loaded, tmp_path, "end = 2027-06-30")
    report = RULE.pass_at(loaded, settings, paris(2026, 10, 14, 9, 0))
    assert report.cancelled == {}
    assert outbox(loaded)["open_ended_mission:acme-conseil:2026-10-13"].state == "pending"


def test_a_mission_that_no_longer_exists_cancels_its_reminders(
    loaded: Store, settings: Settings
) -> None:
    ghost = FollowUp(key="open_ended_mission:gone:2026-10-13", subject_key="gone")
    with loaded.session() as session:
        reasons = RULE.built(settings).vanished(session, [ghost])
    assert reasons == {ghost.key: "mission gone no longer exists"}
