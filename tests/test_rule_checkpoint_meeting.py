"""`checkpoint_meeting` through the engine, on hand-made stores of both engines."""

from __future__ import annotations

from pathlib import Path

from followupd.config.settings import Settings
from followupd.domain.states import TouchpointKind
from followupd.rules.base import Intent
from followupd.rules.checkpoint_meeting import CheckpointMeeting
from followupd.rules.registry import RULES
from followupd.store.db import Store
from followupd.store.updates import record_touchpoint, resolve_issue
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

DATA = f"""\
{ACME_AND_GLOBEX}
{JDUPONT}
{BSMITH}
[[missions]]          # never met: every 30 days from the start
key = "acme-audit"
client = "acme"
title = "Audit du SI"
contact = "jdupont"
start = 2026-09-01

[[missions]]          # met on 12 October: 30 days later is 11 November, a holiday
key = "acme-train"
client = "acme"
title = "Formation"
contact = "jdupont"
start = 2026-09-01

[[missions]]          # visited on 2 November, but issues pile up from the 14th
key = "acme-build"
client = "acme"
title = "Refonte du site"
contact = "jdupont"
start = 2026-09-01

[[missions]]          # never met, and its second open issue opened on a period day
key = "acme-both"
client = "acme"
title = "Migration"
contact = "jdupont"
start = 2026-09-01

[[missions]]
key = "acme-hold"
client = "acme"
title = "En attente"
start = 2026-09-01
status = "on_hold"

[[missions]]
key = "acme-done"
client = "acme"
title = "Terminée"
start = 2026-09-01
status = "closed"

[[missions]]          # met on 27 October: 30 days later is Thanksgiving in the US
key = "globex-plan"
client = "globex"
title = "Data plan"
contact = "bsmith"
start = 2026-09-01

[[touchpoints]]
mission = "acme-train"
contact = "jdupont"
kind = "meeting"
at = 2026-10-12T14:00:00+02:00

[[touchpoints]]       # not a meeting: does not count
mission = "acme-train"
kind = "call"
at = 2026-11-02T14:00:00+01:00

[[touchpoints]]
mission = "acme-build"
kind = "visit"
at = 2026-11-02T10:00:00+01:00

[[touchpoints]]
mission = "globex-plan"
kind = "meeting"
at = 2026-10-27T10:00:00-04:00

[[issues]]
key = "b0"
mission = "acme-build"
opened = 2026-10-01T10:00:00+02:00
summary = "Maquettes en retard"
resolved = 2026-10-10T10:00:00+02:00

[[issues]]
key = "b1"
mission = "acme-build"
opened = 2026-11-05T10:00:00+01:00
summary = "Hébergeur injoignable"

[[issues]]            # a Saturday
key = "b2"
mission = "acme-build"
opened = 2026-11-14T10:00:00+01:00
summary = "Contenus non fournis"

[[issues]]
key = "m1"
mission = "acme-both"
opened = 2026-09-15T10:00:00+02:00
summary = "Export incomplet"

[[issues]]            # Saturday 31 October, the mission's second period day
key = "m2"
mission = "acme-both"
opened = 2026-10-31T10:00:00+01:00
summary = "Droits d'accès manquants"

[[issues]]
key = "h1"
mission = "acme-hold"
opened = 2026-10-01T10:00:00+02:00
summary = "Budget gelé"

[[issues]]
key = "h2"
mission = "acme-hold"
opened = 2026-10-02T10:00:00+02:00
summary = "Sponsor parti"
"""


RULE = RuleAlone(CheckpointMeeting, paris(2026, 10, 1), paris(2026, 12, 31))
loaded = loaded_with(DATA)


def of(intents: dict[str, Intent], mission: str) -> dict[str, Intent]:
    """The intents of one mission, by period day."""
    return {i.key.rsplit(":", 1)[1]: i for i in intents.values() if i.subject_key == mission}


def set_status(store: Store, tmp_path: Path, mission: str, title: str, status: str) -> None:
    record = mission_record(mission, title, "2026-09-01", f'status = "{status}"')
    imported(store, tmp_path, record, name="update.toml")


def test_the_rule_is_registered_under_its_config_name() -> None:
    assert RULES["checkpoint_meeting"] is CheckpointMeeting


def test_thirty_days_without_a_meeting_call_for_one_each_period(
    loaded: Store, settings: Settings
) -> None:
    intents = RULE.planned(loaded, settings)
    audit = of(intents, "acme-audit")
    assert list(audit) == ["2026-10-01", "2026-10-31", "2026-11-30", "2026-12-30"]
    first = audit["2026-10-01"]
    assert first.key == "checkpoint_meeting:acme-audit:2026-10-01"
    assert (first.rule, first.step, first.subject_key) == (
        "checkpoint_meeting",
        "no-meeting",
        "acme-audit",
    )
    assert (first.audience, first.channel, first.recipient) == ("owner", "calendar", None)
    assert first.language == "fr"
    assert first.subject == "Planifier une réunion avec Jeanne Dupont — Audit du SI"
    assert first.due_at == paris(2026, 10, 1, 9, 0)
    assert first.expires_at == paris(2026, 10, 8, 9, 0)
    assert first.mission_id is not None
    assert first.contact_id is not None
    # Saturday 31 October, then Sunday 1 November, All Saints' Day: Monday
    assert audit["2026-10-31"].due_at == paris(2026, 11, 2, 9, 0)
    # 30 days after the meeting of 12 October is Armistice Day: Thursday
    train = of(intents, "acme-train")
    assert list(train) == ["2026-11-11", "2026-12-11"]
    assert train["2026-11-11"].due_at == paris(2026, 11, 12, 9, 0)
    # a US client: Thanksgiving skipped, in the owner's zone
    globex = of(intents, "globex-plan")
    assert globex["2026-11-26"].due_at == paris(2026, 11, 27, 9, 0)
    assert globex["2026-11-26"].subject == "Planifier une réunion avec Bob Smith — Data plan"
    # a mission on hold or closed gets none, however many problems it has
    assert not of(intents, "acme-hold")
    assert not of(intents, "acme-done")


def test_open_issues_piling_up_call_for_one_from_the_day_they_reach_the_threshold(
    loaded: Store, settings: Settings
) -> None:
    build = of(RULE.planned(loaded, settings), "acme-build")
    # b0 is resolved; b2, the second open issue, was opened on Saturday the 14th
    # One reminder per 30 days: the visit's 30 days (2 December) fall in the pile's
    # period, so they give no reminder of their own.
    assert list(build) == ["2026-11-14", "2026-12-14"]
    assert build["2026-11-14"].step == "open-issues"
    assert build["2026-11-14"].due_at == paris(2026, 11, 16, 9, 0)
    assert build["2026-12-14"].step == "open-issues"
    assert build["2026-12-14"].due_at == paris(2026, 12, 14, 9, 0)


def test_both_triggers_on_the_same_day_give_one_reminder(loaded: Store, settings: Settings) -> None:
    both = of(RULE.planned(loaded, settings), "acme-both")
    assert list(both) == ["2026-10-01", "2026-10-31", "2026-11-30", "2026-12-30"]
    assert [i.step for i in both.values()] == [
        "no-meeting",
        "open-issues",
        "open-issues",
        "open-issues",
    ]
    text = RULE.texts(loaded, settings)["checkpoint_meeting:acme-both:2026-10-31"]
    assert "- 2 problèmes restent ouverts ;" in text
    assert (
        "- aucune réunion ni visite depuis le début de la mission, le 1er septembre 2026." in text
    )


def test_the_task_says_why_and_who_to_call(loaded: Store, settings: Settings) -> None:
    rendered = RULE.texts(loaded, settings)
    build = rendered["checkpoint_meeting:acme-build:2026-11-14"]
    assert (
        "La mission « Refonte du site » (ACME SA) a besoin d'une réunion de mise au point" in build
    )
    assert "- 2 problèmes restent ouverts ;" in build
    assert "- dernière réunion ou visite le 2 novembre 2026." in build
    assert (
        "Proposer une date à Jeanne Dupont : tel:+33612345678 ou jeanne.dupont@acme.example."
        in build
    )
    train = rendered["checkpoint_meeting:acme-train:2026-11-11"]
    assert "problèmes ouverts" not in train
    assert "- dernière réunion ou visite le 12 octobre 2026." in train


def test_an_english_speaking_owner_gets_english_tasks(loaded: Store, tmp_path: Path) -> None:
    settings = owner_settings(tmp_path, IN_ENGLISH)
    intents = RULE.planned(loaded, settings)
    task = intents["checkpoint_meeting:acme-build:2026-11-14"]
    assert task.language == "en"
    assert task.subject == "Schedule a checkpoint meeting with Jeanne Dupont — Refonte du site"
    assert task.due_at == paris(2026, 11, 16, 9, 0)
    text = RULE.texts(loaded, settings)["checkpoint_meeting:acme-build:2026-11-14"]
    assert "- 2 problems are still open;" in text
    assert "- last meeting or visit on November 2, 2026." in text
    assert "Offer a date to Jeanne Dupont: tel:+33612345678 or jeanne.dupont@acme.example." in text


def test_a_pass_records_each_reminder_once_and_plan_records_nothing(
    loaded: Store, settings: Settings
) -> None:
    RULE.planned(loaded, settings)
    assert outbox(loaded) == {}, "plan changes nothing"
    RULE.pass_at(loaded, settings, paris(2026, 10, 10, 9, 0))  # a pass before a downtime
    at = paris(2026, 11, 16, 9, 0)
    first = RULE.pass_at(loaded, settings, at)
    recorded = {row.key: row.state for row in first.recorded}
    assert recorded["checkpoint_meeting:acme-build:2026-11-14"] == "pending"
    assert recorded["checkpoint_meeting:acme-train:2026-11-11"] == "pending"  # due 12th
    assert recorded["checkpoint_meeting:acme-audit:2026-10-31"] == "expired"  # due 2nd
    assert "checkpoint_meeting:acme-audit:2026-10-01" not in recorded  # long gone
    second = RULE.pass_at(loaded, settings, at)
    assert second.recorded == []
    assert second.cancelled == {}


def test_a_meeting_held_cancels_the_pending_reminder_and_restarts_the_count(
    loaded: Store, settings: Settings
) -> None:
    RULE.pass_at(loaded, settings, paris(2026, 11, 12, 9, 0))
    assert outbox(loaded)["checkpoint_meeting:acme-train:2026-11-11"].state == "pending"
    with loaded.session() as session:
        record_touchpoint(session, "acme-train", TouchpointKind.MEETING, paris(2026, 11, 13, 10, 0))
    report = RULE.pass_at(loaded, settings, paris(2026, 11, 13, 11, 0))
    reason = "meeting held on 2026-11-13"
    assert report.cancelled == {"checkpoint_meeting:acme-train:2026-11-11": reason}
    row = outbox(loaded)["checkpoint_meeting:acme-train:2026-11-11"]
    assert (row.state, row.reason) == ("cancelled", reason)
    assert list(of(RULE.planned(loaded, settings), "acme-train")) == ["2026-12-13"]


def test_a_visit_before_the_period_does_not_answer_it_one_after_does(
    loaded: Store, settings: Settings
) -> None:
    RULE.pass_at(loaded, settings, paris(2026, 11, 16, 9, 0))
    with loaded.session() as session:
        record_touchpoint(session, "acme-build", TouchpointKind.VISIT, paris(2026, 11, 13, 10, 0))
    report = RULE.pass_at(loaded, settings, paris(2026, 11, 16, 10, 0))
    assert report.cancelled == {}
    with loaded.session() as session:
        record_touchpoint(session, "acme-build", TouchpointKind.VISIT, paris(2026, 11, 17, 10, 0))
    report = RULE.pass_at(loaded, settings, paris(2026, 11, 17, 11, 0))
    assert report.cancelled == {
        "checkpoint_meeting:acme-build:2026-11-14": "visit held on 2026-11-17"
    }


def test_a_period_whose_meeting_already_took_place_is_not_recorded(
    loaded: Store, settings: Settings
) -> None:
    with loaded.session() as session:
        record_touchpoint(session, "acme-build", TouchpointKind.MEETING, paris(2026, 11, 17, 10, 0))
    report = RULE.pass_at(loaded, settings, paris(2026, 11, 20, 9, 0))
    assert not [row.key for row in report.recorded if row.subject_key == "acme-build"]
    assert "checkpoint_meeting:acme-build:2026-12-14" in RULE.planned(loaded, settings)


def test_closing_or_holding_the_mission_cancels_pending_reminders(
    loaded: Store, settings: Settings, tmp_path: Path
) -> None:
    RULE.pass_at(loaded, settings, paris(2026, 11, 16, 9, 0))
    set_status(loaded, tmp_path, "acme-train", "Formation", "closed")
    set_status(loaded, tmp_path, "acme-build", "Refonte du site", "on_hold")
    report = RULE.pass_at(loaded, settings, paris(2026, 11, 16, 10, 0))
    assert report.cancelled == {
        "checkpoint_meeting:acme-train:2026-11-11": "mission acme-train no longer active (closed)",
        "checkpoint_meeting:acme-build:2026-11-14": (
            "mission acme-build no longer active (on_hold)"
        ),
    }
    intents = RULE.planned(loaded, settings)
    assert not of(intents, "acme-train")
    assert not of(intents, "acme-build")


def test_no_reminder_after_the_missions_end_and_an_earlier_end_cancels_one(
    loaded: Store, settings: Settings, tmp_path: Path
) -> None:
    """Past its end date a mission is closed out (the bilan): no more checkpoints, even
    while it is still marked active."""
    ending = mission_record("acme-audit", "Audit du SI", "2026-09-01", "end = 2026-11-30")
    imported(loaded, tmp_path, ending, name="update.toml")
    assert list(of(RULE.planned(loaded, settings), "acme-audit")) == [
        "2026-10-01",
        "2026-10-31",
        "2026-11-30",
    ], "up to the end day, not the period of 30 December"
    RULE.pass_at(loaded, settings, paris(2026, 11, 2, 9, 0))
    ended = mission_record("acme-audit", "Audit du SI", "2026-09-01", "end = 2026-10-30")
    imported(loaded, tmp_path, ended, name="update.toml")
    report = RULE.pass_at(loaded, settings, paris(2026, 11, 2, 10, 0))
    assert report.cancelled == {
        "checkpoint_meeting:acme-audit:2026-10-31": "mission acme-audit ends on 2026-10-30"
    }
    assert list(of(RULE.planned(loaded, settings), "acme-audit")) == ["2026-10-01"]


def test_resolving_an_issue_ends_the_pile(loaded: Store, settings: Settings) -> None:
    with loaded.session() as session:
        resolve_issue(session, "b1", paris(2026, 11, 20, 17, 0))
    build = of(RULE.planned(loaded, settings), "acme-build")
    assert list(build) == ["2026-12-02"]
    assert build["2026-12-02"].step == "no-meeting"
