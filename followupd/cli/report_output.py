"""How `followupd report` shows the receivables: a table, or one JSON object.

Amounts in JSON are strings ("1200.50"), exact as stored (a JSON number
would be read back a float); days are numbers, to a tenth, null when nothing
was paid in the twelve months.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from followupd.cli.render import _table, console
from followupd.domain.receivables import (
    Aging,
    Bucket,
    PaymentDelays,
    Receivables,
)

JSON_FIELDS = """\
\b
--json prints one object:
  as_of             the day, YYYY-MM-DD
  owner             the --owner key, or null (every owner)
  buckets           the bucket names, in order: not_due, 1_30, 31_60,
                    61_90, over_90 (days past due on as_of)
  currencies        a total per currency, each with currency, unpaid,
                    buckets {name: amount}, open_invoices,
                    overdue_invoices, dso_days (countback), paid_invoices,
                    days_to_pay, days_late
  clients           a row per client and currency (an invoice open on
                    as_of, or paid in full in the 12 months to it),
                    largest unpaid first: client (key), name, and the
                    fields of a total but dso_days
  overall           open_invoices, overdue_invoices, paid_invoices,
                    days_to_pay, days_late over every currency
\b
Amounts are strings ("1200.50"); days are numbers to a tenth, null when no
invoice was paid in full in the 12 months to as_of (days_to_pay: paid - issued;
days_late: paid - due, 0 when paid early).
"""


def receivables_json(report: Receivables, owner: str | None) -> str:
    document = {
        "as_of": report.day.isoformat(),
        "owner": owner,
        "buckets": [bucket.value for bucket in Bucket],
        "currencies": [
            {
                "currency": total.currency,
                **_aging(total.aging),
                "dso_days": _days(total.dso),
                **_delays(total.delays),
            }
            for total in report.currencies
        ],
        "clients": [
            {
                "client": row.client,
                "name": row.name,
                "currency": row.currency,
                **_aging(row.aging),
                **_delays(row.delays),
            }
            for row in report.clients
        ],
        "overall": {
            "open_invoices": report.open_invoices,
            "overdue_invoices": report.overdue_invoices,
            **_delays(report.delays),
        },
    }
    return json.dumps(document, indent=2, ensure_ascii=False)


def _aging(aging: Aging) -> dict[str, Any]:
    return {
        "unpaid": _amount(aging.unpaid),
        "buckets": {bucket.value: _amount(aging.amounts[bucket]) for bucket in Bucket},
        "open_invoices": aging.open_invoices,
        "overdue_invoices": aging.overdue_invoices,
    }


def _delays(delays: PaymentDelays) -> dict[str, Any]:
    return {
        "paid_invoices": delays.paid_invoices,
        "days_to_pay": _days(delays.days_to_pay),
        "days_late": _days(delays.days_late),
    }


def _amount(amount: Decimal) -> str:
    return f"{amount:.2f}"


def _days(days: Decimal | None) -> float | None:
    return None if days is None else float(days)


def print_receivables(report: Receivables) -> None:
    """A row per client and currency, then the currency's total with its DSO."""
    out = console()
    if not report.currencies:
        out.print(f"nothing unpaid on {report.day}, and nothing paid in the 12 months before")
        return
    columns = [bucket.label.removesuffix(" days") for bucket in Bucket]
    table = _table(
        "client", "currency", *columns, "unpaid", "open", "days to pay", "days late", "DSO",
        title=f"receivables on {report.day}, by days past due",
    )  # fmt: skip
    for column in table.columns[2:]:
        column.justify = "right"
    for total in report.currencies:
        rows = [row for row in report.clients if row.currency == total.currency]
        for row in rows:
            table.add_row(row.client, row.currency, *_cells(row.aging, row.delays), "")
        table.add_row(
            "total", total.currency, *_cells(total.aging, total.delays),
            f"{total.dso:.1f}", end_section=True,
        )  # fmt: skip
    out.print(table)
    delays = report.delays
    if delays.paid_invoices:
        out.print(
            f"{delays.paid_invoices} invoice{'s' if delays.paid_invoices != 1 else ''} paid in "
            f"the 12 months to {report.day}: in {delays.days_to_pay:.1f} days on average, "
            f"{delays.days_late:.1f} days late"
        )
    out.print("DSO: days sales outstanding, countback method (see `followupd report --help`)")


def _cells(aging: Aging, delays: PaymentDelays) -> list[str]:
    buckets = [_shown(aging.amounts[bucket]) for bucket in Bucket]
    to_pay = "" if delays.days_to_pay is None else f"{delays.days_to_pay:.1f}"
    late = "" if delays.days_late is None else f"{delays.days_late:.1f}"
    return [*buckets, f"{aging.unpaid:,.2f}", str(aging.open_invoices or ""), to_pay, late]


def _shown(amount: Decimal) -> str:
    return f"{amount:,.2f}" if amount else ""
