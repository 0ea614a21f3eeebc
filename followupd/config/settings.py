"""The whole config file as one validated object, and what holds across its sections."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Self

from pydantic import (
    Field,
    PrivateAttr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from followupd.config.accounts import ImapAccount
from followupd.config.late_payment import LatePaymentSection
from followupd.config.owners import Owner, OwnerEntry
from followupd.config.rule_options import RulesConfig
from followupd.config.sections import (
    DEFAULT_WRITE_CALENDAR,
    Business,
    Caldav,
    Database,
    FeedSection,
    ServiceSection,
    Smtp,
    TemplatesSection,
)
from followupd.config.toml_positions import KeyPath
from followupd.config.types import StrictModel

BOTH_FORMS = object()  # stands for [owner] when [[owners]] is there too
# the rules that act on what a mailbox tells (replies, bounces): off without one
MAILBOX_RULES = ("client_replied", "email_bounced")


class Settings(StrictModel):
    """The whole config file, validated."""

    # [owner] is required, and None only where [[owners]] stands in for it
    owner_tables: tuple[OwnerEntry, ...] = Field((), alias="owners", min_length=1)
    owner_table: Owner | None = Field(alias="owner")
    database: Database = Database()
    smtp: Smtp | None = None
    caldav: Caldav | None = None
    imap: ImapAccount | None = None
    feed: FeedSection = FeedSection()
    service: ServiceSection = ServiceSection()
    business: Business = Business()
    templates: TemplatesSection = TemplatesSection()
    rules: RulesConfig = RulesConfig()
    late_payment: LatePaymentSection = LatePaymentSection()

    @model_validator(mode="before")
    @classmethod
    def _every_section(cls, data: Any) -> Any:
        """Absent sections are validated too, so their relative paths are anchored.

        ``[owner]`` is required unless ``[[owners]]`` stands in for it; both
        at once is an error reported at ``[owner]``.
        """
        if isinstance(data, dict):
            data = {"database": {}, "feed": {}, "business": {}, **data}
            if "owners" in data:
                data["owner"] = BOTH_FORMS if "owner" in data else None
        return data

    @model_validator(mode="before")
    @classmethod
    def _mailbox_rules_with_a_mailbox(cls, data: Any) -> Any:
        """`MAILBOX_RULES` are on by default only where a mailbox is read.

        Some owner reads one when there is ``[imap]`` or an ``[owners.imap]``;
        an ``enabled`` written in the file is kept as written.
        """
        if not isinstance(data, dict):
            return data
        owners = data.get("owners")
        own = isinstance(owners, list) and any(
            isinstance(owner, dict) and "imap" in owner for owner in owners
        )
        rules = data.get("rules", {})
        if not ("imap" in data or own) or not isinstance(rules, dict):
            return data
        turned_on = dict(rules)
        for name in MAILBOX_RULES:
            options = rules.get(name, {})
            if isinstance(options, dict) and "enabled" not in options:
                turned_on[name] = {**options, "enabled": True}
        return {**data, "rules": turned_on}

    @field_validator("owner_table", mode="before")
    @classmethod
    def _one_form(cls, owner: Any) -> Any:
        if owner is BOTH_FORMS:
            raise ValueError(
                "[owner] and [[owners]] cannot be used together: "
                "move this owner into [[owners]], with a key"
            )
        return owner

    @model_validator(mode="after")
    def _resolve_owners(self, info: ValidationInfo) -> Self:
        """Every owner with the defaults of other sections filled in.

        The first owner inherits what the single-owner form has (``[feed]
        token_file``, ``[caldav] write_calendar``), so moving from ``[owner]``
        to ``[[owners]]`` keeps the feed address and the calendar; the others
        get ``feed-KEY.token`` and, on the shared account, ``WRITE-KEY``.
        """
        state_dir = Path((info.context or {}).get("state_dir") or ".")
        base = self.caldav.write_calendar if self.caldav else DEFAULT_WRITE_CALENDAR
        entries = self.owner_tables
        if self.owner_table is not None:
            entries = (OwnerEntry.single(self.owner_table),)
        resolved = []
        for number, entry in enumerate(entries):
            first, own_account = number == 0, entry.caldav is not None
            token = self.feed.token_file if first else state_dir / f"feed-{entry.key}.token"
            calendar = base if first or own_account else f"{base}-{entry.key}"
            resolved.append(entry.model_copy(update={
                "feed_token_file": entry.feed_token_file or token,
                "write_calendar": entry.write_calendar or calendar,
            }))  # fmt: skip
        self._owners = tuple(resolved)
        self._owner_keys = {}
        for entry in reversed(self._owners):  # a key given twice (refused later): the first
            self._owner_keys[entry.key] = entry
        return self

    def owner_problems(self) -> list[tuple[KeyPath, str]]:
        """What no single table shows: a key, token file, read calendar or mailbox used twice."""
        problems: list[tuple[KeyPath, str]] = []
        taken: dict[tuple[str, object], int] = {}
        if self.imap is not None:  # [imap] is read already, for no owner in particular
            taken[("imap", self.imap.account)] = -1
        for number, entry in enumerate(self._owners if self.owner_tables else ()):
            account = entry.caldav or self.caldav
            if entry.read_calendars and account is None:
                where: KeyPath = ("owners", number, "read_calendars")
                problems.append((where, "no CalDAV account: add [caldav], or [owners.caldav]"))
            server = (account.url, account.username) if account else None
            claims: list[tuple[str, object, str]] = [
                ("key", entry.key, f"key {entry.key!r} is taken"),
                ("feed_token_file", entry.feed_token_file, f"{entry.feed_token_file} is used"),
            ]
            claims += [("read_calendars", (server, name), f"calendar {name!r} is read")
                       for name in entry.read_calendars]  # fmt: skip
            if entry.imap is not None:
                claims.append(("imap", entry.imap.account, f"mailbox {entry.imap.account} is read"))
            for field, value, what in claims:
                earlier = taken.setdefault((field, value), number)
                if earlier != number:
                    by = "[imap]" if earlier < 0 else f"owners[{earlier}]"
                    message = f"{what} by {by} already: each owner needs their own"
                    problems.append((("owners", number, field), message))
        return problems

    _owners: tuple[OwnerEntry, ...] = PrivateAttr(default=())
    _owner_keys: dict[str, OwnerEntry] = PrivateAttr(default_factory=dict)  # `owner_for`'s
    _source: Path = PrivateAttr(default=Path("<memory>"))
    _state_dir: Path = PrivateAttr(default=Path())

    @property
    def owners(self) -> tuple[OwnerEntry, ...]:
        """Every owner, in the config's order; ``[owner]`` gives one, keyed "owner"."""
        return self._owners

    @property
    def owner(self) -> Owner:
        """The first owner: the only one of ``[owner]``, and that of missions naming none."""
        return self._owners[0].person

    @property
    def several_owners(self) -> bool:
        return len(self._owners) > 1

    def owner_for(self, key: str | None) -> OwnerEntry:
        """The owner keyed `key`; the first owner for None, or for a key no longer here."""
        # read from pydantic's dict of private attributes: each `self._x` goes through
        # BaseModel.__getattr__ (~2 us), and delivery asks six times a message
        private = self.__pydantic_private__
        assert private is not None
        first: OwnerEntry = private["_owners"][0]
        return private["_owner_keys"].get(key, first) if key is not None else first

    @property
    def source(self) -> Path:
        return self._source

    @property
    def state_dir(self) -> Path:
        return self._state_dir
