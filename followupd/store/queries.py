"""Read-only views of the store for the command line: missions and one mission."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased, selectinload

from followupd.domain.owner_scope import Scope
from followupd.domain.states import MissionStatus
from followupd.store.models import Client, Contact, Invoice, Issue, Mission


@dataclass(frozen=True)
class MissionRow:
    key: str
    client: str
    title: str
    status: MissionStatus
    start: date
    end: date | None
    contact: str | None
    open_issues: int
    unpaid_invoices: int
    owner: str | None = None  # the key stored; None: the first owner


def mission_rows(
    session: Session,
    status: MissionStatus | None = None,
    client: str | None = None,
    owner: Scope | None = None,
) -> list[MissionRow]:
    """Every mission with its counts of open issues and unpaid invoices, in one query."""
    open_issues = (
        select(func.count(Issue.id))
        .where(Issue.mission_id == Mission.id, Issue.resolved.is_(None))
        .scalar_subquery()
    )
    unpaid = (
        select(func.count(Invoice.id))
        .where(Invoice.mission_id == Mission.id, Invoice.paid.is_(None))
        .scalar_subquery()
    )
    contact = aliased(Contact)
    query = (
        select(
            Mission.key,
            Client.key,
            Mission.title,
            Mission.status,
            Mission.start,
            Mission.end,
            contact.name,
            open_issues,
            unpaid,
            Mission.owner,
        )
        .join(Client, Mission.client_id == Client.id)
        .outerjoin(contact, Mission.contact_id == contact.id)
        .order_by(Mission.start, Mission.key)
    )
    if status is not None:
        query = query.where(Mission.status == status)
    if client is not None:
        query = query.where(Client.key == client)
    if owner is not None:
        query = query.where(owner.holds(Mission.owner))
    return [MissionRow(*row) for row in session.execute(query)]


def mission_detail(session: Session, key: str) -> Mission | None:
    """A mission with its client, contact, invoices, issues and touchpoints loaded."""
    return session.scalar(
        select(Mission)
        .where(Mission.key == key)
        .options(
            selectinload(Mission.client),
            selectinload(Mission.contact),
            selectinload(Mission.invoices),
            selectinload(Mission.issues),
            selectinload(Mission.touchpoints),
        )
    )
