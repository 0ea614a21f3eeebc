"""Several owners at run time: whose missions, follow-ups and calendars are whose.

A mission names its owner by key; a follow-up records the owner it was made
for. A missing key (a mission imported without one, every row of a database
from before owners) and a key no longer in the config both mean the first
owner, so that a single-owner database keeps working unchanged after
``[owner]`` becomes ``[[owners]]``, and nothing is left without an owner.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, or_, true

from followupd.config import Caldav, Settings
from followupd.people import Owner, OwnerEntry
from followupd.templates import Templates


@dataclass(frozen=True)
class Scope:
    """One owner, and how to tell their rows in a query."""

    entry: OwnerEntry
    first: bool = True
    others: tuple[str, ...] = ()  # the other owners' keys; none: the only owner

    @property
    def key(self) -> str:
        return self.entry.key

    @property
    def owner(self) -> Owner:
        return self.entry.person

    def holds(self, column: Any) -> ColumnElement[bool]:
        """Whether a row's owner `column` (a key, or NULL) is this owner's."""
        if not self.others:
            return true()
        if self.first:
            return or_(column.is_(None), column.not_in(self.others))
        return column == self.key  # type: ignore[no-any-return]


def scopes(settings: Settings) -> list[Scope]:
    """A scope for each owner, in the config's order."""
    keys = [entry.key for entry in settings.owners]
    return [
        Scope(entry, number == 0, tuple(key for key in keys if key != entry.key))
        for number, entry in enumerate(settings.owners)
    ]


def scope_of(settings: Settings, key: str) -> Scope:
    """The scope of the owner keyed `key` (the first owner's for a key not in the config)."""
    every = scopes(settings)
    return next((scope for scope in every if scope.key == key), every[0])


def templates_of(settings: Settings, entry: OwnerEntry) -> Templates:
    """The owner's templates directory first, then ``[templates]``, then the shipped ones."""
    return Templates(entry.templates, settings.templates.directory)


def caldav_of(settings: Settings, entry: OwnerEntry) -> Caldav | None:
    """The CalDAV account and calendars of an owner; None: their items live in the feed only.

    With one owner this is ``[caldav]`` itself. With several, an owner reads
    their own `read_calendars` (``[caldav] read_calendars`` belong to no one)
    and writes into their `write_calendar`, on their own account or the shared one.
    """
    if not settings.several_owners:
        return settings.caldav
    account = entry.caldav or settings.caldav
    if account is None:
        return None
    fields = {name: getattr(account, name) for name in type(account).model_fields}
    fields |= {"read_calendars": entry.read_calendars, "write_calendar": entry.write_calendar}
    return Caldav.model_validate(fields)


def has_calendars(settings: Settings) -> bool:
    """Whether any owner has a CalDAV account: else there is nothing to sync or write."""
    return settings.caldav is not None or any(owner.caldav for owner in settings.owners)
