"""The rules of each owner: the same rules, each with the owner's options merged in.

The engine and delivery ask a rule about an outbox row with the options of
the row's owner: `vanished` depends on them (the severities that call for a
phone call, say), and an owner may turn a rule off for their missions only.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence

from sqlalchemy.orm import Session

from followupd.config.rule_options import RuleOptions
from followupd.config.settings import Settings
from followupd.rules.base import Rule
from followupd.store.outbox.rows import PendingRow


class RuleBook:
    """`rules` as each owner of `settings` runs them; with `only_enabled`, those left on."""

    def __init__(
        self, settings: Settings, rules: Iterable[Rule[RuleOptions]], *, only_enabled: bool
    ) -> None:
        self.settings = settings
        self.by_owner: dict[str, dict[str, Rule[RuleOptions]]] = {}
        rules = list(rules)
        for owner in settings.owners:
            merged = (rule.for_owner(owner) for rule in rules)
            self.by_owner[owner.key] = {
                rule.name: rule for rule in merged if rule.options.enabled or not only_enabled
            }

    def rules(self, owner: str | None) -> list[Rule[RuleOptions]]:
        """The rules of the owner keyed `owner` (the first owner for None or a key gone)."""
        return list(self.by_owner[self.settings.owner_for(owner).key].values())

    def vanished(self, session: Session, rows: Sequence[PendingRow]) -> dict[str, str]:
        """Of outbox rows, those whose reason went: key -> why."""
        groups: dict[tuple[str, str], list[PendingRow]] = defaultdict(list)
        for row in rows:
            groups[(self.settings.owner_for(row.owner).key, row.rule)].append(row)
        reasons: dict[str, str] = {}
        for (owner, name), group in groups.items():
            rule = self.by_owner[owner].get(name)
            if rule is not None:
                reasons.update(rule.vanished(session, group))
        return reasons
