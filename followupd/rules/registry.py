"""The rules that ship with followupd, listed here by hand, and the ones a config enables.

The list is explicit so that every rule is found by reading this module, and
so that no import order decides which rules run: a rule module that is not
listed here never runs, however it is imported. Each rule's name is its
``[rules.NAME]`` table; a name taken twice, or one without options, is refused
when the registry is built, that is when this module is imported.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from followupd.config.owners import OwnerEntry
from followupd.config.rule_options import RuleOptions, RulesConfig
from followupd.rules.base import Rule
from followupd.rules.checkpoint_meeting import CheckpointMeeting
from followupd.rules.client_not_informed import ClientNotInformed
from followupd.rules.client_replied import ClientReplied
from followupd.rules.contract_missing import ContractMissing
from followupd.rules.deposit_due import DepositDue
from followupd.rules.email_bounced import EmailBounced
from followupd.rules.escalate_by_phone import EscalateByPhone
from followupd.rules.invoice_due import InvoiceDue
from followupd.rules.limitation_alert import LimitationAlert
from followupd.rules.mission_closeout import MissionCloseout
from followupd.rules.new_year_greetings import NewYearGreetings
from followupd.rules.open_ended_mission import OpenEndedMission
from followupd.rules.status_update_due import StatusUpdateDue

RuleClass = type[Rule[RuleOptions]]

SHIPPED: tuple[RuleClass, ...] = (
    InvoiceDue,
    DepositDue,
    ContractMissing,
    EscalateByPhone,
    ClientNotInformed,
    StatusUpdateDue,
    CheckpointMeeting,
    MissionCloseout,
    OpenEndedMission,
    NewYearGreetings,
    LimitationAlert,
    ClientReplied,
    EmailBounced,
)  # fmt: skip


class RegistryError(Exception):
    """Two rules claim one name, or a rule has no ``[rules.NAME]`` options."""


def registry(classes: Iterable[RuleClass]) -> dict[str, RuleClass]:
    """`classes` by their config name, in name order; refused if a name is taken twice."""
    found: dict[str, RuleClass] = {}
    for cls in classes:
        if cls.name in found:
            raise RegistryError(f"rule {cls.name!r} is listed twice")
        if cls.name not in RulesConfig.model_fields:
            raise RegistryError(f"rule {cls.name!r} has no [rules.{cls.name}] options")
        found[cls.name] = cls
    return dict(sorted(found.items()))


RULES = registry(SHIPPED)


def enabled_rules(
    config: RulesConfig, owners: Sequence[OwnerEntry] = ()
) -> list[Rule[RuleOptions]]:
    """An instance of every shipped rule that the config, or one of `owners`, enables.

    Each has the ``[rules]`` options; `Rule.for_owner` merges in an owner's.
    """
    rules = []
    for name, cls in RULES.items():
        options: RuleOptions = getattr(config, name)
        by_owner = [owner.rule_overrides.get(name, {}).get("enabled") for owner in owners]
        if options.enabled or True in by_owner:
            rules.append(cls(options))
    return rules
