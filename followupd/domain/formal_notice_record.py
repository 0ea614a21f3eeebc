"""A formal notice as the outbox keeps it: its data frozen as of evaluation, as JSON.

The PDF is made from this record when someone needs its bytes (the calendar
writer, the feed's file route, `invoice letter`), not when the follow-up is
recorded: making a PDF costs tens of milliseconds, reading this back a few
microseconds. The record holds every figure the rule computed, so the letter
made later says what it said on the day of evaluation, and the same record
always gives the same letter.

Decimals are written as strings (their exponent kept: ``"12000.00"`` stays
``Decimal("12000.00")``, never a float), dates in ISO 8601. `VERSION` names
the layout: a record of another version is refused, never half-read.
"""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from typing import Any

from followupd.domain.formal_notice import Creditor, Debtor, FormalNotice, NoticeInvoice

VERSION = 1


def dumps(notice: FormalNotice) -> str:
    """The record of `notice`: compact JSON, its keys in a fixed order."""
    creditor, debtor = notice.creditor, notice.debtor
    record = {
        "version": VERSION,
        "language": notice.language,
        "creditor": [creditor.name, creditor.email, creditor.phone, creditor.address],
        "debtor": [debtor.name, debtor.address, debtor.contact],
        "dated": notice.dated.isoformat(),
        "deadline": notice.deadline.isoformat(),
        "invoices": [_invoice(invoice) for invoice in notice.invoices],
        "consumer": notice.consumer,
        "currency": notice.currency,
        "place": notice.place,
        "reminded": notice.reminded,
        "margin_points": str(notice.margin_points),
    }
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"))


def loads(text: str) -> FormalNotice:
    """The notice of a record `dumps` wrote; ValueError for anything else."""
    try:
        record = json.loads(text)
        if record.get("version") != VERSION:
            raise ValueError(f"a formal notice record of version {record.get('version')!r}")
        name, email, phone, address = record["creditor"]
        debtor_name, debtor_address, contact = record["debtor"]
        return FormalNotice(
            language=record["language"],
            creditor=Creditor(name, email, phone, address),
            debtor=Debtor(debtor_name, debtor_address, contact),
            dated=date.fromisoformat(record["dated"]),
            deadline=date.fromisoformat(record["deadline"]),
            invoices=tuple(_notice_invoice(each) for each in record["invoices"]),
            consumer=record["consumer"],
            currency=record["currency"],
            place=record["place"],
            reminded=record["reminded"],
            margin_points=Decimal(record["margin_points"]),
        )
    except (KeyError, TypeError, AttributeError, ArithmeticError) as error:
        raise ValueError(f"not a formal notice record: {error!r}") from error


def _invoice(invoice: NoticeInvoice) -> list[Any]:
    rate = invoice.contract_rate
    return [
        invoice.number,
        invoice.issued.isoformat(),
        invoice.due.isoformat(),
        str(invoice.amount),
        str(invoice.unpaid),
        str(invoice.penalties),
        str(invoice.indemnity),
        invoice.days_late,
        invoice.mission,
        None if rate is None else str(rate),
    ]


def _notice_invoice(fields: list[Any]) -> NoticeInvoice:
    number, issued, due, amount, unpaid, penalties, indemnity, days_late, mission, rate = fields
    return NoticeInvoice(
        number=number,
        issued=date.fromisoformat(issued),
        due=date.fromisoformat(due),
        amount=Decimal(amount),
        unpaid=Decimal(unpaid),
        penalties=Decimal(penalties),
        indemnity=Decimal(indemnity),
        days_late=days_late,
        mission=mission,
        contract_rate=None if rate is None else Decimal(rate),
    )
