"""Who a message is with: the contacts behind its addresses, and the missions it is about.

Looked up for a batch of messages in a few queries. An address is a
contact's when it is that contact's `email`, whatever the case. A message
with a contact is about that contact's open missions (those they are the
main contact of, else their client's): those named in its subject, by key,
title or invoice number, when some are; else the active ones. A mailbox
kept for one owner (``[owners.imap]``) is about that owner's missions only;
the shared ``[imap]`` about any owner's.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from followupd.config.settings import Settings
from followupd.domain.states import MissionStatus
from followupd.store.chunks import chunked
from followupd.store.models import Contact, Invoice, Mission


@dataclass(frozen=True)
class Person:
    """A contact, as a message's address names them."""

    id: int
    key: str
    client_id: int
    name: str


@dataclass(frozen=True)
class Concerned:
    """A mission a message is about, and what tells it from the others in a subject."""

    id: int
    key: str
    client_id: int
    contact_id: int | None
    owner: str | None
    status: MissionStatus
    names: tuple[str, ...] = field(default=(), compare=False)  # key, title, invoices; lower case

    def named_in(self, subject: str) -> bool:
        text = subject.casefold()
        return any(name and name in text for name in self.names)


@dataclass
class Correspondents:
    """The contacts of a batch's addresses and the missions of their clients."""

    settings: Settings
    by_email: dict[str, list[Person]]
    by_client: dict[int, list[Concerned]]
    by_id: dict[int, Concerned]
    known: dict[int, Person]  # every contact looked up, by id

    def people(self, addresses: Iterable[str | None]) -> list[Person]:
        """The contacts of `addresses`, each once, by key."""
        found = {p.key: p for a in addresses if a for p in self.by_email.get(a.lower(), [])}
        return [found[key] for key in sorted(found)]

    def missions_of(
        self, people: Sequence[Person], subject: str, mailbox: str | None
    ) -> list[tuple[Concerned, Person]]:
        """The missions a message with `people` about `subject` is about, each with its person."""
        pairs: dict[int, tuple[Concerned, Person]] = {}
        for person in people:
            theirs = [
                mission
                for mission in self.by_client.get(person.client_id, [])
                if self._in_mailbox(mission, mailbox)
            ]
            own = [mission for mission in theirs if mission.contact_id == person.id]
            for mission in own or theirs:
                pairs.setdefault(mission.id, (mission, person))
        named = {key: pair for key, pair in pairs.items() if pair[0].named_in(subject)}
        if named:
            return [named[key] for key in sorted(named)]
        active = [pair for pair in pairs.values() if pair[0].status == MissionStatus.ACTIVE]
        return sorted(active, key=lambda pair: pair[0].key)

    def _in_mailbox(self, mission: Concerned, mailbox: str | None) -> bool:
        return mailbox is None or self.settings.owner_for(mission.owner).key == mailbox


def correspondents(
    session: Session,
    settings: Settings,
    addresses: Iterable[str],
    mission_ids: Iterable[int] = (),
    contact_ids: Iterable[int] = (),
) -> Correspondents:
    """The contacts of `addresses`, the open missions of their clients; missions and
    contacts by id (those of the followupd emails answered)."""
    by_email, known = _people(session, addresses, contact_ids)
    clients = {person.client_id for found in by_email.values() for person in found}
    missions = _missions(session, clients, mission_ids)
    invoices = _invoice_numbers(session, missions)
    by_id = {
        key: replace(mission, names=(*mission.names, *invoices.get(key, [])))
        for key, mission in missions.items()
    }
    by_client: dict[int, list[Concerned]] = {}
    for mission in sorted(by_id.values(), key=lambda found: found.key):
        if mission.status != MissionStatus.CLOSED:
            by_client.setdefault(mission.client_id, []).append(mission)
    return Correspondents(settings, by_email, by_client, by_id, known)


def _people(
    session: Session, addresses: Iterable[str], contact_ids: Iterable[int]
) -> tuple[dict[str, list[Person]], dict[int, Person]]:
    """The contacts of each address (lower case), and every contact found, by id."""
    by_email: dict[str, list[Person]] = {}
    known: dict[int, Person] = {}
    email = func.lower(Contact.email)
    query = select(Contact.id, Contact.key, Contact.client_id, Contact.name, email)
    for emails in chunked(sorted({address.lower() for address in addresses if address})):
        for row in session.execute(query.where(email.in_(emails)).order_by(Contact.key)):
            person = Person(row.id, row.key, row.client_id, row.name)
            by_email.setdefault(row[4], []).append(person)
            known[person.id] = person
    for ids in chunked(sorted(set(contact_ids) - set(known))):
        for row in session.execute(query.where(Contact.id.in_(ids))):
            known[row.id] = Person(row.id, row.key, row.client_id, row.name)
    return by_email, known


def _missions(
    session: Session, clients: Iterable[int], mission_ids: Iterable[int]
) -> dict[int, Concerned]:
    """The open missions of `clients`, and the missions of `mission_ids` whatever their status."""
    query = select(Mission.id, Mission.key, Mission.client_id, Mission.contact_id,
                   Mission.owner, Mission.status, Mission.title)  # fmt: skip
    found: dict[int, Concerned] = {}
    for chunk in chunked(sorted(set(clients))):
        open_ones = query.where(
            Mission.client_id.in_(chunk), Mission.status != MissionStatus.CLOSED
        )
        found.update((row.id, _concerned(row)) for row in session.execute(open_ones))
    for chunk in chunked(sorted(set(mission_ids) - set(found))):
        found.update((row.id, _concerned(row)) for row in session.execute(
            query.where(Mission.id.in_(chunk))
        ))  # fmt: skip
    return found


def _invoice_numbers(session: Session, missions: Iterable[int]) -> dict[int, list[str]]:
    """The invoice numbers of each mission, lower case, in order."""
    numbers: dict[int, list[str]] = {}
    query = select(Invoice.mission_id, Invoice.number).order_by(Invoice.number)
    for chunk in chunked(sorted(missions)):
        for mission_id, number in session.execute(query.where(Invoice.mission_id.in_(chunk))):
            numbers.setdefault(mission_id, []).append(number.casefold())
    return numbers


def _concerned(row: Any) -> Concerned:
    names = (row.key.casefold(), row.title.casefold())
    return Concerned(row.id, row.key, row.client_id, row.contact_id, row.owner, row.status, names)
