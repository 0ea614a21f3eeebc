"""The registry of rules: each listed once, by the name of its ``[rules.NAME]`` options."""

from __future__ import annotations

from pathlib import Path

import pytest

from followupd.config.rule_options import RulesConfig
from followupd.config.settings import MAILBOX_RULES
from followupd.rules.invoice_due import InvoiceDue
from followupd.rules.registry import RULES, SHIPPED, RegistryError, enabled_rules, registry
from tests.rulekit import owner_settings


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
    # those a mailbox feeds are off without one (Settings turns them on with one)
    assert {rule.name for rule in enabled_rules(RulesConfig())} == set(RULES) - set(MAILBOX_RULES)


def test_a_disabled_rule_does_not_run(tmp_path: Path) -> None:
    settings = owner_settings(tmp_path, "[rules.invoice_due]\nenabled = false\n")
    assert "invoice_due" not in {rule.name for rule in enabled_rules(settings.rules)}
