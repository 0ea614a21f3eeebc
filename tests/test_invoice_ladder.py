"""`invoice_due`'s ladder profiles and their config, on hand-made stores of both engines."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest

from followupd.cli.app import App
from followupd.config.settings import Settings
from followupd.errors import ConfigError
from followupd.rules.invoice_due import InvoiceDue
from followupd.store.db import Store
from tests.conftest import MINIMAL_CONFIG, RunCli
from tests.rulekit import (
    ACME_AND_GLOBEX,
    BSMITH,
    JDUPONT,
    RuleAlone,
    imported,
    outbox,
    owner_settings,
    paris,
)

GENTLE = """\
[rules.invoice_due.profiles.gentle]
steps = [
  { name = "nudge-1", offset_days = 7, audience = "client" },
  { name = "nudge-2", offset_days = 21, audience = "client" },
]
"""
DATA = f"""\
{ACME_AND_GLOBEX}
profile = "gentle"
{JDUPONT}
{BSMITH}
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
RULE = RuleAlone(InvoiceDue, paris(2026, 11, 1), paris(2027, 1, 1))


def steps_of(store: Store, settings: Settings, number: str) -> dict[str, str]:
    """The planned steps of invoice `number`: step -> due day (ISO)."""
    return {
        intent.step: intent.due_at.astimezone(paris(2026, 1, 1).tzinfo).date().isoformat()
        for intent in RULE.intents(store, settings)
        if intent.subject_key == number
    }


def test_a_client_of_a_profile_climbs_its_ladder_the_others_the_rules(
    store: Store, tmp_path: Path
) -> None:
    loaded = imported(store, tmp_path, DATA)
    settings = owner_settings(tmp_path, GENTLE)
    # the profile line follows globex's table in DATA: globex is the gentle one
    assert steps_of(loaded, settings, "F-2") == {"nudge-1": "2026-12-07", "nudge-2": "2026-12-21"}
    assert steps_of(loaded, settings, "F-1") == {
        "heads-up": "2026-11-27",
        "nudge-1": "2026-12-01",
        "nudge-2": "2026-12-08",
        "nudge-3": "2026-12-15",
    }
    RULE.pass_at(loaded, settings, paris(2026, 12, 8, 9, 0))
    rows = outbox(loaded)
    assert "invoice_due:F-2:nudge-1" in rows
    gentle = rows["invoice_due:F-2:nudge-1"]
    assert gentle.subject == "Invoice F-2: due on November 30, 2026"
    assert "Unless I am mistaken, invoice F-2" in gentle.body


def test_an_unknown_profile_climbs_the_rules_steps_and_is_said(
    store: Store, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    loaded = imported(store, tmp_path, DATA.replace('profile = "gentle"', 'profile = "gentel"'))
    settings = owner_settings(tmp_path, GENTLE)
    with caplog.at_level(logging.WARNING, "followupd.rules"):
        report = RULE.pass_at(loaded, settings, paris(2026, 12, 1, 16, 0))
    assert "invoice_due:F-2:nudge-1" in {row.key for row in report.recorded}, "the rule's steps"
    assert (
        "invoice_due: client globex: profile 'gentel' is not in [rules.invoice_due.profiles]: "
        "the rule's own steps are used"
    ) in caplog.messages


def test_check_names_the_clients_of_an_unknown_profile(
    cli: RunCli, home: Path, tmp_path: Path
) -> None:
    config = home / "followupd.toml"
    config.write_text(MINIMAL_CONFIG + GENTLE, encoding="utf-8")
    (home / "data.toml").write_text(DATA.replace('"gentle"', '"gentel"'), encoding="utf-8")
    assert cli("init").code == 0
    assert cli("import", home / "data.toml").code == 0
    result = cli("check")
    shown = " ".join(result.out.split())
    assert (
        "profiles warn client globex: profile 'gentel' is not in "
        "[rules.invoice_due.profiles]: the rule's own steps are used"
    ) in shown, result
    assert result.code == 0, "said, not failed: passes work on with the rule's own steps"
    config.write_text(MINIMAL_CONFIG + GENTLE.replace("gentle", "gentel"), encoding="utf-8")
    assert "profiles warn" not in " ".join(cli("check").out.split())


def test_check_says_a_contract_rate_needs_the_legal_rate_of_the_half_year(
    cli: RunCli, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A mission's own late_payment_rate is floored at 3 times the legal rate: `check`
    says which half-year lacks it, where to find it, and does not fail for it."""
    monkeypatch.setattr(App, "now", lambda self: datetime(2026, 12, 4, 10, tzinfo=UTC))
    (home / "followupd.toml").write_text(MINIMAL_CONFIG, encoding="utf-8")
    data = DATA.replace('title = "Data plan"', 'title = "Data plan"\nlate_payment_rate = 12')
    (home / "data.toml").write_text(data, encoding="utf-8")
    assert cli("init").code == 0
    assert cli("import", home / "data.toml").code == 0
    result = cli("check")
    assert result.code == 0, result
    shown = " ".join(result.out.split())
    assert (
        "late payment warn 1 mission with a late_payment_rate: set [late_payment] legal_rates "
        "for 2026-H2: the rate of 2026-H1 (2.62 %) stands in for it (the taux de l'intérêt "
        "légal"
    ) in shown, shown


@pytest.mark.parametrize(
    ("extra", "line", "where", "says"),
    [
        (
            "[rules.invoice_due.profiles.Gentle]\nsteps = []\n",
            6,
            "rules.invoice_due.profiles.Gentle",
            "should match pattern",
        ),
        (
            GENTLE.replace('"nudge-2"', '"nudge-1"'),
            7,
            "rules.invoice_due.profiles.gentle.steps",
            "step names must be unique, repeated: nudge-1",
        ),
        (
            GENTLE.replace('"nudge-2"', '"thank-you"'),
            7,
            "rules.invoice_due.profiles.gentle.steps",
            "thank-you: the name of another invoice message (its template)",
        ),
        (
            "[rules.invoice_due]\nmin_client_amount = -1\n",
            7,
            "rules.invoice_due.min_client_amount",
            "greater than or equal to 0",
        ),
        (
            '[rules.invoice_due]\nmin_client_amount = "50"\n',
            7,
            "rules.invoice_due.min_client_amount",
            "must be a number",
        ),
    ],
)
def test_config_mistakes_name_the_file_line_and_key(
    tmp_path: Path, extra: str, line: int, where: str, says: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        owner_settings(tmp_path, extra)
    text = str(raised.value)
    assert f"followupd.toml:{line}: {where}" in text, text
    assert says in text, text


def test_the_options_default_and_take_decimals(tmp_path: Path) -> None:
    options = owner_settings(tmp_path).rules.invoice_due
    assert (options.group_by_client, options.thank_you, options.profiles) == (True, False, {})
    assert options.min_client_amount == 0
    taken = owner_settings(tmp_path, "[rules.invoice_due]\nmin_client_amount = 12.5\n")
    assert str(taken.rules.invoice_due.min_client_amount) == "12.5"
