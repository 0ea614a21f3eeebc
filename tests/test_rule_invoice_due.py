"""`invoice_due` through the engine, on hand-made stores of both engines."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from followupd.config.load import parse_settings
from followupd.config.rule_options import RuleOptions, RulesConfig
from followupd.config.settings import Settings
from followupd.engine.evaluation import evaluate, plan
from followupd.rules.base import Rule
from followupd.rules.invoice_due import InvoiceDue
from followupd.rules.registry import RULES, SHIPPED, RegistryError, enabled_rules, registry
from followupd.sources.files.importer import import_files
from followupd.store.db import Store
from followupd.store.models import FollowUp
from followupd.store.updates import mark_invoice_paid
from tests.conftest import MINIMAL_CONFIG
from tests.rulekit import PARIS, outbox, paris

NEW_YORK = ZoneInfo("America/New_York")
DATA = """\
[[clients]]
key = "acme"
name = "ACME SA"
language = "fr"
timezone = "Europe/Paris"
country = "FR"

[[clients]]
key = "globex"
name = "Globex Inc."
language = "en"
timezone = "America/New_York"
country = "US"

[[contacts]]
key = "jdupont"
client = "acme"
name = "Jeanne Dupont"
email = "jeanne.dupont@acme.example"
phone = "+33 6 12 34 56 78"

[[contacts]]
key = "bsmith"
client = "globex"
name = "Bob Smith"
email = "bob@globex.example"

[[missions]]
key = "acme-audit"
client = "acme"
title = "Audit du SI"
contact = "jdupont"
start = 2026-09-01

[[missions]]
key = "globex-plan"
client = "globex"
title = "Data plan"
contact = "bsmith"
start = 2026-09-01
currency = "USD"

[[invoices]]
number = "F-1"
mission = "acme-audit"
amount = 12000.00
issued = 2026-10-31
due = 2026-11-30

[[invoices]]
number = "F-2"
mission = "globex-plan"
amount = 5000
issued = 2026-10-31
due = 2026-11-30
"""


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return parse_settings(MINIMAL_CONFIG, tmp_path / "followupd.toml", {"HOME": str(tmp_path)})


@pytest.fixture
def loaded(store: Store, tmp_path: Path) -> Store:
    path = tmp_path / "data.toml"
    path.write_text(DATA, encoding="utf-8")
    import_files(store, [path], PARIS)
    return store


def rules(settings: Settings) -> list[Rule[RuleOptions]]:
    return [rule for rule in enabled_rules(settings.rules) if rule.name == "invoice_due"]


def test_plan_lists_every_step_with_its_audience_channel_and_time(
    loaded: Store, settings: Settings
) -> None:
    with loaded.session() as session:
        intents = plan(session, settings, rules(settings), paris(2026, 11, 1), paris(2027, 1, 1))
    acme = {i.step: i for i in intents if i.subject_key == "F-1"}
    assert set(acme) == {"heads-up", "nudge-1", "nudge-2", "nudge-3"}
    heads_up = acme["heads-up"]
    assert (heads_up.audience, heads_up.channel, heads_up.recipient) == ("owner", "calendar", None)
    assert heads_up.due_at == paris(2026, 11, 27, 9, 0)  # Friday, due - 3 days
    assert heads_up.subject == "Échéance le 30 novembre 2026 : facture F-1 (ACME SA)"
    nudge = acme["nudge-1"]
    assert (nudge.audience, nudge.channel) == ("client", "email")
    assert nudge.recipient == "jeanne.dupont@acme.example"
    assert nudge.language == "fr"
    assert nudge.due_at == paris(2026, 12, 1, 9, 0)
    assert acme["nudge-2"].due_at == paris(2026, 12, 8, 9, 0)
    assert acme["nudge-3"].due_at == paris(2026, 12, 15, 9, 0)
    assert {i.thread_key for i in acme.values() if i.audience == "client"} == {"invoice:F-1"}
    assert nudge.key == "invoice_due:F-1:nudge-1"

    globex = {i.step: i for i in intents if i.subject_key == "F-2"}
    assert globex["nudge-1"].language == "en"
    assert globex["nudge-1"].subject == "Invoice F-2: due on November 30, 2026"
    assert globex["nudge-1"].due_at == datetime(2026, 12, 1, 9, 0, tzinfo=NEW_YORK)
    # the owner's heads-up about the US invoice is in the owner's zone and language
    assert globex["heads-up"].due_at == paris(2026, 11, 27, 9, 0)
    assert globex["heads-up"].language == "fr"
    with loaded.session() as session:
        assert session.scalars(select(FollowUp)).all() == [], "plan changes nothing"


def test_a_pass_records_due_ones_once_and_expires_the_too_old(
    loaded: Store, settings: Settings
) -> None:
    with loaded.session() as session:  # a pass before a long downtime
        evaluate(session, settings, rules(settings), paris(2026, 11, 1, 9, 0))
    at = paris(2026, 12, 15, 9, 0)
    with loaded.session() as session:
        first = evaluate(session, settings, rules(settings), at)
    acme = {row.step: row for row in first.recorded if row.subject_key == "F-1"}
    assert set(acme) == {"heads-up", "nudge-1", "nudge-2", "nudge-3"}
    assert acme["heads-up"].state == "expired"  # due 27/11, grace 7 days
    assert acme["nudge-1"].state == "expired"
    assert acme["nudge-2"].state == "pending"  # due 8/12, grace ends exactly now
    assert acme["nudge-2"].late
    assert acme["nudge-3"].state == "pending"
    assert not acme["nudge-3"].late
    with loaded.session() as session:
        second = evaluate(session, settings, rules(settings), at)
    assert second.recorded == []


def test_paying_stops_the_nudges_and_cancels_pending_ones(
    loaded: Store, settings: Settings
) -> None:
    with loaded.session() as session:
        evaluate(session, settings, rules(settings), paris(2026, 12, 1, 9, 0))
    assert outbox(loaded)["invoice_due:F-1:nudge-1"].state == "pending"
    with loaded.session() as session:
        mark_invoice_paid(session, "F-1", paris(2026, 12, 2).date())
    with loaded.session() as session:
        report = evaluate(session, settings, rules(settings), paris(2026, 12, 20, 9, 0))
    assert report.cancelled["invoice_due:F-1:nudge-1"] == "invoice F-1 paid on 2026-12-02"
    rows = outbox(loaded)
    assert rows["invoice_due:F-1:nudge-1"].state == "cancelled"
    assert not any(key.startswith("invoice_due:F-1:nudge-2") for key in rows)


def test_a_dispute_turns_client_nudges_into_owner_calls(
    loaded: Store, settings: Settings, tmp_path: Path
) -> None:
    with loaded.session() as session:
        evaluate(session, settings, rules(settings), paris(2026, 12, 1, 9, 0))
    disputed = tmp_path / "disputed.toml"
    disputed.write_text(
        '[[missions]]\nkey = "acme-audit"\nclient = "acme"\ntitle = "Audit du SI"\n'
        'start = 2026-09-01\nstatus = "disputed"\n',
        encoding="utf-8",
    )
    import_files(loaded, [disputed], PARIS)
    with loaded.session() as session:
        report = evaluate(session, settings, rules(settings), paris(2026, 12, 8, 9, 0))
    rows = outbox(loaded)
    assert rows["invoice_due:F-1:nudge-1"].state == "cancelled"
    call = rows["invoice_due:F-1:nudge-1:call"]
    assert (call.audience, call.channel, call.recipient) == ("owner", "calendar", None)
    assert call.subject == "Appeler Jeanne Dupont : facture F-1 impayée"
    assert "invoice_due:F-1:nudge-2:call" in {row.key for row in report.recorded}
    assert "invoice_due:F-1:nudge-2" not in rows


def test_a_pause_delays_client_nudges_until_it_ends(
    loaded: Store, settings: Settings, tmp_path: Path
) -> None:
    paused = tmp_path / "paused.toml"
    paused.write_text(
        '[[missions]]\nkey = "acme-audit"\nclient = "acme"\ntitle = "Audit du SI"\n'
        "start = 2026-09-01\npaused_until = 2026-12-10\n",
        encoding="utf-8",
    )
    import_files(loaded, [paused], PARIS)
    with loaded.session() as session:
        intents = plan(session, settings, rules(settings), paris(2026, 11, 1), paris(2027, 1, 1))
    acme = {i.step: i.due_at for i in intents if i.subject_key == "F-1"}
    assert acme["heads-up"] == paris(2026, 11, 27, 9, 0)  # the owner is not paused
    assert acme["nudge-1"] == paris(2026, 12, 10, 9, 0)
    assert acme["nudge-2"] == paris(2026, 12, 10, 9, 0)
    assert acme["nudge-3"] == paris(2026, 12, 15, 9, 0)


def test_rules_are_listed_once_by_their_config_name() -> None:
    assert RULES["invoice_due"] is InvoiceDue
    with pytest.raises(RegistryError, match="'invoice_due' is listed twice"):
        registry([InvoiceDue, InvoiceDue])

    class Unknown(InvoiceDue):
        name = "no_such_rule"

    with pytest.raises(RegistryError, match=r"no \[rules.no_such_rule\] options"):
        registry([Unknown])


def test_every_rule_options_table_has_its_rule() -> None:
    """Each ``[rules.NAME]`` a user may write runs a rule: none is accepted and then ignored."""
    assert set(RULES) == set(RulesConfig.model_fields)
    assert set(RULES) == {cls.name for cls in SHIPPED}
    assert {rule.name for rule in enabled_rules(RulesConfig())} == set(RULES)


def test_a_disabled_rule_does_not_run(tmp_path: Path) -> None:
    settings = parse_settings(
        MINIMAL_CONFIG + "[rules.invoice_due]\nenabled = false\n",
        tmp_path / "followupd.toml",
        {"HOME": str(tmp_path)},
    )
    assert "invoice_due" not in {rule.name for rule in enabled_rules(settings.rules)}
