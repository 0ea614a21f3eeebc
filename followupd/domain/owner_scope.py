"""Several owners at run time: whose missions, follow-ups and calendars are whose.

A mission names its owner by key; a follow-up records the owner it was made
for. A missing key (a mission imported without one, every row of a database
from before owners) and a key no longer in the config both mean the first
owner, so that a single-owner database keeps working unchanged after
``[owner]`` becomes ``[[owners]]``, and nothing is left without an owner.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any

from sqlalchemy import ColumnElement, or_, true

from followupd.config.accounts import CaldavAccount, ImapAccount
from followupd.config.owners import Owner, OwnerEntry
from followupd.config.sections import Caldav
from followupd.config.settings import Settings


@dataclass(frozen=True)
class Scope:
    """One owner, or a group of owners evaluated together, and how to tell their rows in a query.

    `entry` is the owner whose options, templates, zone, language and country
    the scope is evaluated with; `members` are the owners it holds (`entry`
    alone unless told), each alike in all of these (`evaluation_scopes`).
    """

    entry: OwnerEntry
    first: bool = True  # it holds the first owner: rows without an owner, or with a key gone
    others: tuple[str, ...] = ()  # the keys of the owners it does not hold; none: all of them
    members: tuple[OwnerEntry, ...] = ()  # none: `entry` alone

    @property
    def key(self) -> str:
        return self.entry.key

    @property
    def owner(self) -> Owner:
        return self.entry.person

    @property
    def alone(self) -> bool:
        """Whether it holds one owner only."""
        return len(self.members) <= 1

    @property
    def keys(self) -> tuple[str, ...]:
        """The keys of the owners it holds."""
        return tuple(member.key for member in self.members) or (self.entry.key,)

    def member(self, key: str | None) -> OwnerEntry:
        """The owner of a row whose owner column is `key`: the first owner for None or a key gone.

        Only asked of rows `holds` lets through.
        """
        return self._by_key.get(key, self.entry)  # type: ignore[arg-type]

    @cached_property
    def _by_key(self) -> dict[str, OwnerEntry]:
        return {member.key: member for member in self.members}

    def holds(self, column: Any) -> ColumnElement[bool]:
        """Whether a row's owner `column` (a key, or NULL) is one of this scope's owners."""
        if not self.others:
            return true()
        if self.first:
            return or_(column.is_(None), column.not_in(self.others))
        if self.alone:
            return column == self.key  # type: ignore[no-any-return]
        return column.in_(self.keys)  # type: ignore[no-any-return]


def scopes(settings: Settings) -> list[Scope]:
    """A scope for each owner, in the config's order."""
    keys = [entry.key for entry in settings.owners]
    return [
        Scope(entry, number == 0, tuple(key for key in keys if key != entry.key))
        for number, entry in enumerate(settings.owners)
    ]


def evaluation_scopes(settings: Settings) -> list[Scope]:
    """The owners in groups that one evaluation serves, in the config's order of their first.

    Owners with the same rule options, templates, zone, language and country
    get the same follow-ups from the same rows, but for their name and email:
    each rule runs once for a group, not once for each of its owners, and
    names each intent's owner from its row (`Evaluation.whose`). The group of
    the first owner holds the rows without an owner, or with a key gone.
    """
    groups: dict[tuple[Any, ...], list[OwnerEntry]] = {}
    for entry in settings.owners:
        groups.setdefault(_alike(entry), []).append(entry)
    keys = [entry.key for entry in settings.owners]
    first = settings.owners[0].key
    found = []
    for members in groups.values():
        held = {member.key for member in members}
        # the first owner stands for the rows of no known owner: it leads its group
        lead = next((member for member in members if member.key == first), members[0])
        others = tuple(key for key in keys if key not in held)
        found.append(Scope(lead, first in held, others, tuple(members)))
    return found


def _alike(entry: OwnerEntry) -> tuple[Any, ...]:
    """What an owner's follow-ups depend on but their name, email, phone and address."""
    overrides = sorted(
        (name, repr(sorted(options.items()))) for name, options in entry.rule_overrides.items()
    )
    return (tuple(overrides), entry.templates, entry.timezone, entry.language, entry.country)


def scope_of(settings: Settings, key: str) -> Scope:
    """The scope of the owner keyed `key` (the first owner's for a key not in the config)."""
    every = scopes(settings)
    return next((scope for scope in every if scope.key == key), every[0])


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


@dataclass(frozen=True)
class SyncedCalendar:
    """A calendar the sync reads: whose missions it describes, and if followupd writes it."""

    name: str
    writes: bool  # the write calendar: tasks completed there are read back
    owner: str | None  # missions described there are this owner's (unless an event says)
    timezone: str  # floating times are read in it


def calendar_sources(settings: Settings) -> list[tuple[CaldavAccount, list[SyncedCalendar]]]:
    """Each CalDAV account to sync, with its calendars, in the config's order.

    ``[caldav] read_calendars`` belong to no owner: a mission event there
    keeps its stored owner unless it names one. An owner's read and write
    calendars give their missions to that owner.
    """
    found: dict[tuple[str, str | None], tuple[CaldavAccount, list[SyncedCalendar]]] = {}

    def add(account: CaldavAccount, calendar: SyncedCalendar) -> None:
        _, calendars = found.setdefault((account.url, account.username), (account, []))
        for number, known in enumerate(calendars):
            if known.name == calendar.name:  # read and written: one calendar
                calendars[number] = replace(known, writes=known.writes or calendar.writes,
                                            owner=known.owner or calendar.owner)  # fmt: skip
                return
        calendars.append(calendar)

    first_zone = settings.owner.timezone
    if settings.caldav is not None:
        for name in settings.caldav.read_calendars:
            add(settings.caldav, SyncedCalendar(name, False, None, first_zone))
    for owner in settings.owners:
        caldav = caldav_of(settings, owner)
        if caldav is None:
            continue
        account, key = owner.caldav or caldav, owner.key if settings.several_owners else None
        for name in caldav.read_calendars:
            add(account, SyncedCalendar(name, False, key, owner.timezone))
        add(account, SyncedCalendar(caldav.write_calendar, True, key, owner.timezone))
    return list(found.values())


def has_calendars(settings: Settings) -> bool:
    """Whether any owner has a CalDAV account: else there is nothing to sync or write."""
    return settings.caldav is not None or any(owner.caldav for owner in settings.owners)


def imap_of(settings: Settings, entry: OwnerEntry) -> ImapAccount | None:
    """The mailbox where an owner's mail is read: their own, else ``[imap]``; None: no mailbox.

    With several owners, ``[imap]`` is a shared mailbox, read for whoever the
    follow-up or contact of a message belongs to; an owner with
    ``[owners.imap]`` has theirs read for them.
    """
    return entry.imap or settings.imap


def mailbox_sources(settings: Settings) -> list[tuple[ImapAccount, str | None]]:
    """Each mailbox to read, once, with the key of the owner it is kept for.

    None stands for ``[imap]``: the single owner's mailbox, or the one several
    owners share; otherwise the key of the owner whose ``[owners.imap]`` it is.
    """
    if not settings.several_owners:
        account = imap_of(settings, settings.owners[0])
        return [] if account is None else [(account, None)]
    found: list[tuple[ImapAccount, str | None]] = []
    if settings.imap is not None:
        found.append((settings.imap, None))
    found += [(owner.imap, owner.key) for owner in settings.owners if owner.imap is not None]
    return found


def has_mailboxes(settings: Settings) -> bool:
    """Whether any mailbox is read: else there are no replies, bounces or sent messages."""
    return bool(mailbox_sources(settings))
