"""The quick updates a user makes from a terminal: paid, promised, resolved, informed, touched.

Each takes the instant or day it records as a parameter; the command line
supplies "now" when the user gives none.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from followupd.domain.identity import touchpoint_key
from followupd.domain.states import Severity, TouchpointKind
from followupd.errors import FollowupdError, NotFound
from followupd.store.models import Contact, Invoice, Issue, Mission, Touchpoint


def not_found(
    session: Session, column: InstrumentedAttribute[str], wanted: str, message: str
) -> NotFound:
    """NotFound with `message`, and what the user may have meant: the value of `column`
    that is `wanted` but for case, else the first three that contain it, whatever the case
    (``f-2026-042`` for ``F-2026-042``, ``lumen`` for ``lumen-site``). Asked only when a
    lookup failed."""
    same = session.scalars(
        select(column).where(func.lower(column) == wanted.lower()).limit(1)
    ).all()
    near = (
        same
        or session.scalars(
            select(column)
            .where(func.lower(column).contains(wanted.lower(), autoescape=True))
            .order_by(column)
            .limit(4)
        ).all()
    )
    if near:
        names = [repr(value) for value in near[:3]]
        listed = " or ".join(names) if len(names) < 3 else f"{names[0]}, {names[1]} or {names[2]}"
        message += f"; did you mean {listed}{' (among others)' if len(near) > 3 else ''}?"
    return NotFound(message)


def _get_by(session: Session, model: type[Mission | Issue | Contact], key: str) -> object:
    row = session.scalar(select(model).where(model.key == key))
    if row is None:
        noun = model.__tablename__.removesuffix("s")
        raise not_found(session, model.key, key, f"no {noun} with key {key!r}")
    return row


def get_mission(session: Session, key: str) -> Mission:
    row = _get_by(session, Mission, key)
    assert isinstance(row, Mission)
    return row


def get_issue(session: Session, key: str) -> Issue:
    row = _get_by(session, Issue, key)
    assert isinstance(row, Issue)
    return row


def mark_invoice_paid(session: Session, number: str, on: date) -> tuple[Invoice, date | None]:
    """Record the invoice as paid in full on `on`; return it and the previous date."""
    invoice = session.scalar(select(Invoice).where(Invoice.number == number))
    if invoice is None:
        raise not_found(session, Invoice.number, number, f"no invoice numbered {number!r}")
    previous = invoice.paid
    invoice.paid = on
    return invoice, previous


def promise_invoice(session: Session, number: str, by: date | None) -> tuple[Invoice, date | None]:
    """Record the client's promise to pay the invoice by `by` (None: withdrawn).

    Return the invoice and the promise it had. A paid invoice takes no promise.
    """
    invoice = session.scalar(select(Invoice).where(Invoice.number == number))
    if invoice is None:
        raise not_found(session, Invoice.number, number, f"no invoice numbered {number!r}")
    if by is not None and invoice.paid is not None:
        raise FollowupdError(
            f"invoice {number} was paid on {invoice.paid}: there is no payment left to promise"
        )
    previous = invoice.promised
    invoice.promised = by
    return invoice, previous


def open_issue(
    session: Session,
    mission_key: str,
    summary: str,
    severity: Severity,
    at: datetime,
    key: str | None = None,
) -> Issue:
    """Open a problem on a mission; without `key`, one is made from the mission's."""
    mission = get_mission(session, mission_key)
    if not summary.strip() or any(char in summary for char in "\r\n"):
        raise FollowupdError("the summary must be one non-empty line")
    if key is None:
        count = session.scalar(select(func.count()).where(Issue.mission_id == mission.id)) or 0
        key = f"{mission.key}-{count + 1}"
        while session.scalar(select(Issue.id).where(Issue.key == key)) is not None:
            count += 1
            key = f"{mission.key}-{count + 1}"
    elif session.scalar(select(Issue.id).where(Issue.key == key)) is not None:
        raise FollowupdError(f"an issue with key {key!r} already exists")
    issue = Issue(key=key, mission=mission, opened=at, severity=severity, summary=summary.strip())
    session.add(issue)
    return issue


def resolve_issue(session: Session, key: str, at: datetime) -> Issue:
    issue = get_issue(session, key)
    issue.resolved = at
    return issue


def mark_issue_informed(session: Session, key: str, at: datetime) -> Issue:
    issue = get_issue(session, key)
    issue.client_informed = at
    return issue


def record_touchpoint(
    session: Session,
    mission_key: str,
    kind: TouchpointKind,
    at: datetime,
    contact_key: str | None = None,
    note: str | None = None,
) -> tuple[Touchpoint, bool]:
    """Record a contact with the client; return it and whether it is new."""
    mission = get_mission(session, mission_key)
    contact = None
    if contact_key is not None:
        found = _get_by(session, Contact, contact_key)
        assert isinstance(found, Contact)
        if found.client_id != mission.client_id:
            raise FollowupdError(
                f"contact {contact_key!r} is not a contact of {mission.client.key!r}, "
                f"the client of mission {mission_key!r}"
            )
        contact = found
    key = touchpoint_key(mission.key, kind, at, contact_key)
    existing = session.scalar(select(Touchpoint).where(Touchpoint.key == key))
    if existing is not None:
        if note is not None:
            existing.note = note
        return existing, False
    touchpoint = Touchpoint(key=key, mission=mission, contact=contact, kind=kind, at=at, note=note)
    session.add(touchpoint)
    return touchpoint, True
