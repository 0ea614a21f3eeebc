"""`status_update_due` through the engine, on hand-made stores of both engines."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from followupd.config.settings import Settings
from followupd.domain.states import TouchpointKind
from followupd.engine.evaluation import evaluate
from followupd.rules.status_update_due import StatusUpdateDue
from followupd.store.db import Store
from followupd.store.models import FollowUp, Mission
from followupd.store.updates import record_touchpoint
from tests.rulekit import (
    ACME_AND_GLOBEX,
    BSMITH,
    IN_ENGLISH,
    JDUPONT_WITHOUT_PHONE,
    PARIS,
    RuleAlone,
    imported,
    loaded_with,
    mission_record,
    outbox,
    owner_settings,
    paris,
)
from tests.rulekit import settings as settings

DATA = f"""\
{ACME_AND_GLOBEX}
{JDUPONT_WITHOUT_PHONE}
{BSMITH}
# Monday 28 September 2026, no status update yet: the default cadence of 14 days.
[[missions]]
key = "acme-audit"
client = "acme"
title = "Audit du SI"
contact = "jdupont"
start = 2026-09-28

# A weekly cadence; its last status update is late on a Friday in New York,
# already Saturday in Paris, the owner's zone.
[[missions]]
key = "globex-plan"
client = "globex"
title = "Data plan"
contact = "bsmith"
start = 2026-09-14
status_update_every_days = 7

[[touchpoints]]
mission = "globex-plan"
contact = "bsmith"
kind = "status_update"
at = 2026-10-30T19:30:00-04:00

# Over on 20 October: no reminder after that.
[[missions]]
key = "acme-short"
client = "acme"
title = "Revue d'architecture"
start = 2026-09-28
end = 2026-10-20

[[missions]]
key = "acme-proposed"
client = "acme"
title = "Proposition"
start = 2026-09-01
status = "proposed"

[[missions]]
key = "acme-hold"
client = "acme"
title = "En pause"
start = 2026-09-01
status = "on_hold"

[[missions]]
key = "acme-dispute"
client = "acme"
title = "En litige"
start = 2026-09-01
status = "disputed"

[[missions]]
key = "acme-closed"
client = "acme"
title = "Terminée"
start = 2026-09-01
status = "closed"
"""


RULE = RuleAlone(StatusUpdateDue, paris(2026, 10, 1), paris(2026, 11, 30))
loaded = loaded_with(DATA)


def update_mission(store: Store, tmp_path: Path, key: str, extra: str) -> None:
    """Re-import a mission of DATA with `extra` TOML lines (fields left out keep their value)."""
    record = mission_record(key, "Audit du SI", "2026-09-28", extra)
    imported(store, tmp_path, record, name=f"update-{key}.toml")


def test_plan_reminds_the_owner_once_per_cadence_period(loaded: Store, settings: Settings) -> None:
    intents = RULE.intents(loaded, settings, paris(2026, 10, 1), paris(2026, 11, 30))
    acme = [i for i in intents if i.subject_key == "acme-audit"]
    assert [i.key for i in acme] == [
        "status_update_due:acme-audit:2026-10-12",
        "status_update_due:acme-audit:2026-10-26",
        "status_update_due:acme-audit:2026-11-09",
        "status_update_due:acme-audit:2026-11-23",
    ]
    assert [i.due_at for i in acme] == [
        paris(2026, 10, 12, 9, 0),
        paris(2026, 10, 26, 9, 0),
        paris(2026, 11, 9, 9, 0),
        paris(2026, 11, 23, 9, 0),
    ]
    first = acme[0]
    assert (first.audience, first.channel, first.recipient) == ("owner", "calendar", None)
    assert first.language == "fr"
    assert first.subject == "Envoyer le point d'avancement à Jeanne Dupont — Audit du SI"
    assert (first.rule, first.step) == ("status_update_due", "reminder")
    assert first.expires_at == paris(2026, 10, 19, 9, 0)  # grace: 7 days
    with loaded.session() as session:
        mission = session.scalars(select(Mission).where(Mission.key == "acme-audit")).one()
        assert first.mission_id == mission.id
        assert first.contact_id == mission.contact_id
        assert session.scalars(select(FollowUp)).all() == [], "plan changes nothing"


def test_the_monday_after_the_october_change_is_at_nine_paris_time(
    loaded: Store, settings: Settings
) -> None:
    """Last Sunday of October 2026 is the 25th: the Monday reminder is at 09:00 CET."""
    intents = RULE.intents(loaded, settings, paris(2026, 10, 1), paris(2026, 10, 31))
    due = {i.key.rsplit(":", 1)[1]: i.due_at for i in intents if i.subject_key == "acme-audit"}
    assert due["2026-10-12"] == datetime(2026, 10, 12, 7, 0, tzinfo=UTC)  # 09:00 CEST
    assert due["2026-10-26"] == datetime(2026, 10, 26, 8, 0, tzinfo=UTC)  # 09:00 CET
    local = due["2026-10-26"].astimezone(PARIS)
    assert (local.hour, local.minute, local.utcoffset()) == (9, 0, paris(2026, 10, 26).utcoffset())


def test_the_cadence_counts_from_the_last_update_in_the_owners_zone(
    loaded: Store, settings: Settings
) -> None:
    intents = RULE.intents(loaded, settings, paris(2026, 10, 31), paris(2026, 12, 1))
    globex = [i for i in intents if i.subject_key == "globex-plan"]
    # 30 October 19:30 in New York is Saturday 31 October in Paris: + 7 days is
    # Saturday 7 November, so Monday 9; then 14 (Saturday) so 16, 21 so 23, 28 so 30.
    assert [i.key.rsplit(":", 1)[1] for i in globex] == [
        "2026-11-07",
        "2026-11-14",
        "2026-11-21",
        "2026-11-28",
    ]
    assert [i.due_at for i in globex] == [
        paris(2026, 11, 9, 9, 0),
        paris(2026, 11, 16, 9, 0),
        paris(2026, 11, 23, 9, 0),
        paris(2026, 11, 30, 9, 0),
    ]
    # a reminder to the owner: the owner's zone and language, not the client's
    assert {(i.audience, i.channel, i.recipient, i.language) for i in globex} == {
        ("owner", "calendar", None, "fr")
    }
    assert globex[0].subject == "Envoyer le point d'avancement à Bob Smith — Data plan"


def test_an_english_owner_gets_english_reminders(loaded: Store, tmp_path: Path) -> None:
    english = owner_settings(tmp_path, IN_ENGLISH)
    intents = RULE.intents(loaded, english, paris(2026, 10, 1), paris(2026, 10, 15))
    (first,) = [i for i in intents if i.subject_key == "acme-audit"]
    assert first.language == "en"
    assert first.subject == "Send the status update to Jeanne Dupont — Audit du SI"


def test_only_active_missions_and_never_after_their_end(loaded: Store, settings: Settings) -> None:
    intents = RULE.intents(loaded, settings, paris(2026, 9, 1), paris(2027, 1, 31))
    assert {i.subject_key for i in intents} == {"acme-audit", "globex-plan", "acme-short"}
    short = [i.key for i in intents if i.subject_key == "acme-short"]
    assert short == ["status_update_due:acme-short:2026-10-12"]  # 26 October is after its end


def test_evaluating_twice_adds_nothing(loaded: Store, settings: Settings) -> None:
    RULE.pass_at(loaded, settings, paris(2026, 1, 5, 9, 0))  # a pass before a long downtime
    at = paris(2026, 10, 26, 9, 0)
    first = RULE.pass_at(loaded, settings, at)
    states = {row.key: row.state for row in first.recorded if row.subject_key == "acme-audit"}
    assert states == {
        "status_update_due:acme-audit:2026-10-12": "expired",  # grace ended on the 19th
        "status_update_due:acme-audit:2026-10-26": "pending",
    }
    second = RULE.pass_at(loaded, settings, at)
    assert second.recorded == []
    assert second.cancelled == {}


def test_a_status_update_cancels_the_pending_reminder_and_restarts_the_cadence(
    loaded: Store, settings: Settings
) -> None:
    RULE.pass_at(loaded, settings, paris(2026, 10, 12, 9, 0))
    key = "status_update_due:acme-audit:2026-10-12"
    assert outbox(loaded)[key].state == "pending"
    with loaded.session() as session:
        record_touchpoint(
            session, "acme-audit", TouchpointKind.STATUS_UPDATE, paris(2026, 10, 13, 11, 0)
        )
    report = RULE.pass_at(loaded, settings, paris(2026, 10, 14, 9, 0))
    assert report.cancelled == {key: "status update sent on 2026-10-13"}
    assert outbox(loaded)[key].state == "cancelled"
    intents = RULE.intents(loaded, settings, paris(2026, 10, 14), paris(2026, 11, 30))
    assert [i.key for i in intents if i.subject_key == "acme-audit"] == [
        "status_update_due:acme-audit:2026-10-27",
        "status_update_due:acme-audit:2026-11-10",
        "status_update_due:acme-audit:2026-11-24",
    ]


def test_a_reminder_still_on_schedule_is_kept(loaded: Store, settings: Settings) -> None:
    """A status update on the day of the previous reminder: the next one still falls due."""
    with loaded.session() as session:
        record_touchpoint(
            session, "acme-audit", TouchpointKind.STATUS_UPDATE, paris(2026, 10, 12, 23, 30)
        )
        evaluate(session, settings, RULE.rules(settings), paris(2026, 10, 26, 9, 0))
    report = RULE.pass_at(loaded, settings, paris(2026, 10, 26, 10, 0))
    assert report.cancelled == {}
    assert outbox(loaded)["status_update_due:acme-audit:2026-10-26"].state == "pending"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ('status = "closed"', "mission acme-audit is closed"),
        ('status = "on_hold"', "mission acme-audit is on hold"),
        ('status = "disputed"', "mission acme-audit is disputed"),
        ("end = 2026-10-20", "mission acme-audit ends on 2026-10-20"),
        ("status_update_every_days = 30", "schedule changed: every 30 days from 2026-09-28"),
    ],
)
def test_a_reminder_whose_reason_has_gone_is_cancelled(
    loaded: Store, settings: Settings, tmp_path: Path, change: str, reason: str
) -> None:
    key = "status_update_due:acme-audit:2026-10-26"
    RULE.pass_at(loaded, settings, paris(2026, 10, 26, 9, 0))
    assert outbox(loaded)[key].state == "pending"
    update_mission(loaded, tmp_path, "acme-audit", change)
    report = RULE.pass_at(loaded, settings, paris(2026, 10, 27, 9, 0))
    assert report.cancelled == {key: reason}
    rows = outbox(loaded)
    assert rows[key].state == "cancelled"
    assert rows[key].reason == reason
    assert [row.key for row in report.recorded] == []


def test_a_mission_that_no_longer_exists_cancels_its_reminders(
    loaded: Store, settings: Settings
) -> None:
    ghost = FollowUp(key="status_update_due:gone:2026-10-26", subject_key="gone")
    with loaded.session() as session:
        reasons = RULE.built(settings).vanished(session, [ghost])
    assert reasons == {ghost.key: "mission gone no longer exists"}


def test_a_late_update_near_midnight_keeps_the_reminder_on_its_schedule(
    loaded: Store, settings: Settings
) -> None:
    """00:30 in Paris is still the day before in UTC: the owner's date is the anchor."""
    with loaded.session() as session:
        record_touchpoint(
            session, "acme-audit", TouchpointKind.STATUS_UPDATE, paris(2026, 10, 13, 0, 30)
        )
    intents = RULE.intents(loaded, settings, paris(2026, 10, 14), paris(2026, 10, 31))
    assert [i.key for i in intents if i.subject_key == "acme-audit"] == [
        "status_update_due:acme-audit:2026-10-27"
    ]
    RULE.pass_at(loaded, settings, paris(2026, 10, 27, 9, 0))
    report = RULE.pass_at(loaded, settings, paris(2026, 10, 27, 10, 0))
    assert report.cancelled == {}
    assert outbox(loaded)["status_update_due:acme-audit:2026-10-27"].state == "pending"
