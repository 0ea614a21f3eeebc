"""The rules of each owner: the same rules, each with the owner's options merged in.

The engine and delivery ask a rule about an outbox row with the options of
the row's owner: `vanished` depends on them (the severities that call for a
phone call, say), and an owner may turn a rule off for their missions only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet

from sqlalchemy.orm import Session

from followupd.config.rule_options import RuleOptions
from followupd.config.settings import Settings
from followupd.rules.base import Rule
from followupd.store.outbox.rows import PendingRow


class RuleBook:
    """`rules` as each owner of `settings` runs them; with `only_enabled`, those left on.

    Owners whose options of a rule are the same share one instance of it: a
    question about many owners' rows is asked once per instance.
    """

    def __init__(
        self, settings: Settings, rules: Iterable[Rule[RuleOptions]], *, only_enabled: bool
    ) -> None:
        self.settings = settings
        self.by_owner: dict[str, dict[str, Rule[RuleOptions]]] = {}
        rules = list(rules)
        shared: dict[tuple[str, str], Rule[RuleOptions]] = {}
        for owner in settings.owners:
            mine: dict[str, Rule[RuleOptions]] = {}
            for rule in rules:
                options = (rule.name, repr(sorted(owner.rule_overrides.get(rule.name, {}).items())))
                if options not in shared:
                    shared[options] = rule.for_owner(owner)
                merged = shared[options]
                if merged.options.enabled or not only_enabled:
                    mine[rule.name] = merged
            self.by_owner[owner.key] = mine
        # the rules of a row's owner column (a key gone, or None: the first owner's)
        self._of_row: dict[str | None, dict[str, Rule[RuleOptions]]] = {}

    def rules(self, owner: str | None) -> list[Rule[RuleOptions]]:
        """The rules of the owner keyed `owner` (the first owner for None or a key gone)."""
        return list(self.by_owner[self.settings.owner_for(owner).key].values())

    def asks(
        self,
        owner: str | None,
        rule: str,
        key: str,
        due: Mapping[int, AbstractSet[str]] | None = None,
    ) -> Rule[RuleOptions] | None:
        """The rule `vanished` asks about an outbox row of `owner` and `rule` keyed `key`;
        None when there is none, or when that rule has just found it due (`due`)."""
        if (mine := self._of_row.get(owner)) is None:
            mine = self._of_row[owner] = self.by_owner[self.settings.owner_for(owner).key]
        found = mine.get(rule)
        if found is None or (due is not None and key in due.get(id(found), ())):
            return None
        return found

    def vanished(
        self,
        session: Session,
        rows: Sequence[PendingRow],
        due: Mapping[int, AbstractSet[str]] | None = None,
    ) -> dict[str, str]:
        """Of outbox rows, those whose reason went: key -> why.

        `due`: by rule (its `id`), keys that rule has just found due
        (`Evaluation.due`); a row keyed in it is not asked about when that rule
        is the one its owner's rules would ask.
        """
        groups: dict[int, tuple[Rule[RuleOptions], list[PendingRow]]] = {}
        for row in rows:
            if (rule := self.asks(row.owner, row.rule, row.key, due)) is not None:
                groups.setdefault(id(rule), (rule, []))[1].append(row)
        reasons: dict[str, str] = {}
        for rule, group in groups.values():
            reasons.update(rule.vanished(session, group))
        return reasons
