"""Who the follow-ups are for: ``[owner]``, or ``[[owners]]`` for an agency.

The single ``[owner]`` table is one consultant. ``[[owners]]`` lists several,
each with a unique `key` that missions name (``owner = "bob"``), the same
fields as ``[owner]``, and what may differ from one consultant to the next:
a templates directory, rule options (``[owners.rules.NAME]``, merged over
``[rules.NAME]`` key by key), calendars, an own CalDAV account, the feed
token file, and a mailbox of their own (``[owners.imap]``). Defaults that
depend on other sections (the token file, the write calendar) are filled in
by `Settings` (followupd.config.settings).
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from followupd.config.accounts import CaldavAccount, ImapAccount
from followupd.config.rule_options import RulesConfig
from followupd.config.types import (
    Country,
    Directory,
    Email,
    Language,
    Lines,
    OwnerKey,
    Phone,
    SingleLine,
    StatePath,
    StrictModel,
    TimeZoneName,
)

# How reminders reach the owner by email: one digest a working day, one email each, none.
RemindersByEmail = Literal["digest", "each", "off"]

# The key the single [owner] form gets: what its follow-ups record as their owner.
SINGLE_OWNER_KEY = "owner"


class Owner(StrictModel):
    """``[owner]``: the consultant who receives the internal reminders."""

    name: SingleLine
    email: Email
    phone: Phone | None = None
    address: Lines | None = None  # postal: the sender's block of a formal notice to pay
    timezone: TimeZoneName = "Europe/Paris"
    language: Language = "fr"
    country: Country = "FR"
    reminders_by_email: RemindersByEmail = "digest"


class OwnerEntry(Owner):
    """One table of ``[[owners]]``: a consultant, and what is theirs only."""

    key: OwnerKey
    templates: Directory | None = None
    rules: RulesConfig = RulesConfig()
    read_calendars: tuple[SingleLine, ...] = ()
    write_calendar: SingleLine | None = None
    caldav: CaldavAccount | None = None
    imap: ImapAccount | None = None  # their own mailbox: read for them alone
    feed_token_file: StatePath | None = None

    @classmethod
    def single(cls, owner: Owner) -> OwnerEntry:
        """The one owner of the ``[owner]`` form, with nothing of its own.

        What the file left out takes its default, as in `owner`, without being
        validated again (the country's, say, would load the holidays registry).
        """
        return cls(key=SINGLE_OWNER_KEY, **owner.model_dump(exclude_unset=True))

    @property
    def token_file(self) -> Path:
        """The feed token file; `Settings` gives every owner one."""
        if self.feed_token_file is None:
            raise ValueError(f"owner {self.key!r} has no feed token file yet")
        return self.feed_token_file

    @cached_property
    def person(self) -> Owner:
        """The consultant alone: what rules, templates and messages use (cheap to hash).

        Its fields are this entry's, validated as `Owner`'s already: not again.
        """
        return Owner.model_construct(**{name: getattr(self, name) for name in Owner.model_fields})

    @cached_property
    def rule_overrides(self) -> dict[str, dict[str, Any]]:
        """The options written in ``[owners.rules.NAME]``, by rule name: only those."""
        overrides: dict[str, dict[str, Any]] = {}
        for name in self.rules.model_fields_set:
            options = getattr(self.rules, name)
            overrides[name] = {field: getattr(options, field) for field in options.model_fields_set}
        return overrides
