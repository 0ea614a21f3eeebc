"""One email for the client nudges of several invoices: what it lists, and how it reads.

With ``[rules.invoice_due] group_by_client`` (the default), the client
nudges of one contact that leave together go as one email (see
followupd.delivery.client_nudges for when they leave together). That email is
rendered with the template ``invoice_due/grouped.j2``; this module gives it
its values: each invoice (number, issue date, amount, what is left unpaid
after part payments, days late, its step), the unpaid total per currency,
and the firmest step among them (`level`: 1 for a ladder's first client
step, 2 for its second…), so that one invoice at its last step makes the
whole email read firm. A single invoice keeps the email of its own step.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from followupd.config.owners import Owner
from followupd.rules.invoice_due import OwedToDate
from followupd.templates.loader import Templates

RULE = "invoice_due"
GROUPED = "grouped"  # the template of an email listing several invoices


@dataclass(frozen=True)
class NudgeLine:
    """One invoice of a grouped nudge, as its template lists it."""

    key: str  # the follow-up it carries: ``invoice_due:<number>:<step>``
    number: str
    issued: date
    due: date
    amount: Decimal
    unpaid: Decimal  # after part payments, on the day it is sent
    currency: str
    days_late: int
    step: str
    level: int  # its step among its ladder's client steps: 1 for the first
    mission_title: str
    penalties: OwedToDate | None = None  # followupd.rules.invoice_due.penalties_owed


@dataclass(frozen=True)
class Total:
    currency: str
    unpaid: Decimal


def totals(lines: Sequence[NudgeLine]) -> list[Total]:
    """What is left unpaid, per currency, in the order the currencies first come."""
    sums: dict[str, Decimal] = {}
    for line in lines:
        sums[line.currency] = sums.get(line.currency, Decimal(0)) + line.unpaid
    return [Total(currency, unpaid) for currency, unpaid in sums.items()]


def firmest(lines: Sequence[NudgeLine]) -> NudgeLine:
    """The line whose step is the furthest up its ladder (the latest due, on a tie)."""
    return max(lines, key=lambda line: (line.level, line.days_late, line.number))


def grouped_values(
    lines: Sequence[NudgeLine],
    *,
    contact: object | None,
    client: object,
    owner: Owner,
    earlier_emails: int,
) -> dict[str, Any]:
    """The values of ``invoice_due/grouped.j2`` for `lines` (sorted by due date here)."""
    ordered = sorted(lines, key=lambda line: (line.due, line.number))
    top = firmest(ordered)
    return {
        "invoices": ordered,
        "totals": totals(ordered),
        "count": len(ordered),
        "step": top.step,
        "level": top.level,
        "contact": contact,
        "client": client,
        "owner": owner,
        "earlier_emails": earlier_emails,
    }


def grouped_message(
    templates: Templates, language: str, values: Mapping[str, Any]
) -> tuple[str, str]:
    """The subject and body of a grouped nudge; TemplateProblem if its template fails."""
    subject = templates.subject(language, RULE, GROUPED, values)
    return str(subject), subject.text()


@dataclass(frozen=True)
class _Named:
    """A contact or client as a sample: what the templates read of them."""

    name: str
    phone: str | None = None
    email: str | None = None


def sample_values(owner: Owner) -> dict[str, Any]:
    """Values of a grouped nudge for `followupd check`: three invoices, one partly paid."""

    def line(number: str, step: str, level: int, due: date, **more: Any) -> NudgeLine:
        amount = more.pop("amount", Decimal("4800.00"))
        return NudgeLine(
            key=f"{RULE}:{number}:{step}", number=number, issued=date(2026, 10, 1), due=due,
            amount=amount, unpaid=more.pop("unpaid", amount), currency=more.pop("currency", "EUR"),
            days_late=(date(2026, 12, 7) - due).days, step=step, level=level,
            mission_title="Audit du SI", **more,
        )  # fmt: skip

    lines = [
        line(
            "F-040",
            "nudge-3",
            3,
            date(2026, 11, 20),
            penalties=OwedToDate(Decimal("215.42"), Decimal(40), 45),
        ),
        line("F-041", "nudge-2", 2, date(2026, 11, 27), unpaid=Decimal("1800.00")),
        line("F-042", "nudge-1", 1, date(2026, 12, 4), amount=Decimal(950), currency="USD"),
    ]
    return grouped_values(
        lines,
        contact=_Named("Jeanne Dupont", "+33 6 12 34 56 78", "jeanne.dupont@acme.example"),
        client=_Named("ACME SA"),
        owner=owner,
        earlier_emails=2,
    )
