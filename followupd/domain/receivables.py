"""Where the money stands on a day: what clients owe, how late, and how fast they pay.

Three measures, the ones accounts-receivable tools show (``followupd report``,
the daemon's ``/metrics``):

- **aging**: what is left to pay of each invoice open on the day (part
  payments deducted, `unpaid_on`), in buckets of days past its due date;
- **days sales outstanding** by the countback method (`countback_dso`);
- **days to pay**: over the invoices paid in full in the twelve months to the
  day, the mean of paid − issued, and of paid − due (days late, never below 0).

Amounts of different currencies are never added: every total is per currency.
Everything is computed from plain facts (`InvoiceFacts`) and a day; the store
gathers the facts (followupd.store.receivables).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum

from followupd.domain.payments import Payment, unpaid_on

ZERO = Decimal(0)
DAYS = Decimal("0.1")  # days are given to a tenth


class Bucket(StrEnum):
    """How late an open invoice is, in days past its due date on the day."""

    NOT_DUE = "not_due"
    DAYS_1_30 = "1_30"
    DAYS_31_60 = "31_60"
    DAYS_61_90 = "61_90"
    OVER_90 = "over_90"

    @property
    def label(self) -> str:
        return BUCKET_LABELS[self]


BUCKET_LABELS = {
    Bucket.NOT_DUE: "not due",
    Bucket.DAYS_1_30: "1–30 days",
    Bucket.DAYS_31_60: "31–60 days",
    Bucket.DAYS_61_90: "61–90 days",
    Bucket.OVER_90: "> 90 days",
}


def bucket_of(days_past_due: int) -> Bucket:
    """The bucket of an invoice `days_past_due` days past due (0 or less: not due yet)."""
    if days_past_due <= 0:
        return Bucket.NOT_DUE
    if days_past_due <= 30:
        return Bucket.DAYS_1_30
    if days_past_due <= 60:
        return Bucket.DAYS_31_60
    if days_past_due <= 90:
        return Bucket.DAYS_61_90
    return Bucket.OVER_90


@dataclass(frozen=True)
class InvoiceFacts:
    """What the report needs to know of an invoice, its client and its mission's currency."""

    number: str
    client: str  # the client's key
    client_name: str
    currency: str
    amount: Decimal
    issued: date
    due: date
    paid: date | None = None  # paid in full on that day
    payments: tuple[Payment, ...] = ()

    def unpaid_on(self, day: date) -> Decimal:
        """What was left to pay at the end of `day`: nothing before it was issued, or once paid."""
        if self.issued > day or (self.paid is not None and self.paid <= day):
            return ZERO
        return unpaid_on(self.amount, self.payments, day)


@dataclass(frozen=True)
class Aging:
    """What is unpaid on a day, by bucket (every bucket, zeros included), in one currency."""

    amounts: Mapping[Bucket, Decimal]
    open_invoices: int
    overdue_invoices: int  # open and past due

    @property
    def unpaid(self) -> Decimal:
        return sum(self.amounts.values(), ZERO)


def aging(invoices: Iterable[InvoiceFacts], day: date) -> Aging:
    """The aging of `invoices` (all of one currency) at the end of `day`."""
    amounts = dict.fromkeys(Bucket, ZERO)
    open_invoices = overdue = 0
    for invoice in invoices:
        unpaid = invoice.unpaid_on(day)
        if unpaid <= 0:
            continue
        bucket = bucket_of((day - invoice.due).days)
        amounts[bucket] += unpaid
        open_invoices += 1
        overdue += bucket != Bucket.NOT_DUE
    return Aging(amounts, open_invoices, overdue)


def aging_by_currency(invoices: Iterable[InvoiceFacts], day: date) -> dict[str, Aging]:
    """The aging of each currency that has an invoice open on `day`."""
    found = {currency: aging(group, day) for currency, group in _by_currency(invoices).items()}
    return {currency: shown for currency, shown in sorted(found.items()) if shown.open_invoices}


def countback_dso(
    outstanding: Decimal, sales: Iterable[tuple[date, Decimal]], day: date
) -> Decimal:
    """Days sales outstanding on `day` by the countback method, to a tenth of a day.

    `outstanding` is what is unpaid at the end of `day`; `sales` are the
    invoices of the same currency as (issued, amount). Walk back month by
    month from the month of `day`, whose days are counted up to `day` only:
    while the receivables left exceed the month's sales, the whole month is
    counted and its sales taken off; in the month where they do not, count
    the fraction of its days the receivables left make of its sales. A month
    without sales counts whole.

    Worked example, on 2026-03-10 with 25,000 outstanding, and sales of 8,000
    from 1 to 10 March, 12,000 in February, 10,000 in January:
    March counts 10 days (25,000 − 8,000 = 17,000 left), February 28
    (17,000 − 12,000 = 5,000 left), and January 31 × 5,000 / 10,000 = 15.5:
    DSO = 10 + 28 + 15.5 = 53.5 days. Unlike receivables / sales × days, it
    does not move when sales of an old month were large: only the recent
    months that hold the receivables count.

    Receivables come from these sales, so the walk ends within them; should
    the sales run out first (sales not given), it stops at the earliest month
    given, with the days counted so far.
    """
    if outstanding <= 0:
        return ZERO
    by_month: dict[date, Decimal] = defaultdict(lambda: ZERO)
    for issued, amount in sales:
        if issued <= day:
            by_month[issued.replace(day=1)] += amount
    if not by_month:
        return ZERO
    earliest = min(by_month)
    left, counted = outstanding, ZERO
    first, last = day.replace(day=1), day
    while True:
        length = (last - first).days + 1
        sold = by_month.get(first, ZERO)
        if sold >= left:
            counted += length * left / sold
            break
        counted += length
        left -= sold
        if first <= earliest:
            break
        last = first - timedelta(days=1)
        first = last.replace(day=1)
    return counted.quantize(DAYS, ROUND_HALF_UP)


def year_before(day: date) -> date:
    """The same day a year earlier (28 February for a 29th)."""
    return day.replace(year=day.year - 1, day=min(day.day, 28) if day.month == 2 else day.day)


@dataclass(frozen=True)
class PaymentDelays:
    """How fast invoices paid in full in the twelve months to a day were paid."""

    paid_invoices: int
    days_to_pay: Decimal | None  # mean of paid − issued; None: nothing paid
    days_late: Decimal | None  # mean of paid − due, an early payment counting 0


def payment_delays(invoices: Iterable[InvoiceFacts], day: date) -> PaymentDelays:
    """The delays of `invoices` paid in full after `year_before(day)` and by `day`."""
    start = year_before(day)
    paid = [(i.paid, i) for i in invoices if i.paid is not None and start < i.paid <= day]
    if not paid:
        return PaymentDelays(0, None, None)
    to_pay = [(on - invoice.issued).days for on, invoice in paid]
    late = [max((on - invoice.due).days, 0) for on, invoice in paid]
    return PaymentDelays(len(paid), _mean(to_pay), _mean(late))


def _mean(days: Sequence[int]) -> Decimal:
    return (Decimal(sum(days)) / len(days)).quantize(DAYS, ROUND_HALF_UP)


@dataclass(frozen=True)
class ClientReceivables:
    """A client's invoices in one currency: the aging and the delays."""

    client: str
    name: str
    currency: str
    aging: Aging
    delays: PaymentDelays


@dataclass(frozen=True)
class CurrencyReceivables:
    """The total of a currency: the aging of all its clients, DSO and delays."""

    currency: str
    aging: Aging
    dso: Decimal  # days, countback method
    delays: PaymentDelays


@dataclass(frozen=True)
class Receivables:
    """The report on a day: a row per client and currency, a total per currency.

    `clients` are in currency order, largest unpaid first; a client is there
    when it has an invoice open on the day or paid in the twelve months to it.
    `delays` are over every currency (days add up where amounts do not).
    """

    day: date
    clients: tuple[ClientReceivables, ...]
    currencies: tuple[CurrencyReceivables, ...]
    delays: PaymentDelays

    @property
    def open_invoices(self) -> int:
        return sum(total.aging.open_invoices for total in self.currencies)

    @property
    def overdue_invoices(self) -> int:
        return sum(total.aging.overdue_invoices for total in self.currencies)


def receivables(invoices: Iterable[InvoiceFacts], day: date) -> Receivables:
    """The report at the end of `day` on `invoices` (any superset of the ones that count)."""
    every = [invoice for invoice in invoices if invoice.issued <= day]
    clients: list[ClientReceivables] = []
    currencies: list[CurrencyReceivables] = []
    for currency, group in sorted(_by_currency(every).items()):
        rows: dict[str, list[InvoiceFacts]] = defaultdict(list)
        for invoice in group:
            rows[invoice.client].append(invoice)
        shown = [
            ClientReceivables(
                key, held[0].client_name, currency, aging(held, day), payment_delays(held, day)
            )
            for key, held in rows.items()
        ]
        shown = [row for row in shown if row.aging.open_invoices or row.delays.paid_invoices]
        if not shown:
            continue
        clients += sorted(shown, key=lambda row: (-row.aging.unpaid, row.client))
        total = aging(group, day)
        dso = countback_dso(total.unpaid, ((i.issued, i.amount) for i in group), day)
        currencies.append(CurrencyReceivables(currency, total, dso, payment_delays(group, day)))
    return Receivables(day, tuple(clients), tuple(currencies), payment_delays(every, day))


def _by_currency(invoices: Iterable[InvoiceFacts]) -> dict[str, list[InvoiceFacts]]:
    grouped: dict[str, list[InvoiceFacts]] = defaultdict(list)
    for invoice in invoices:
        grouped[invoice.currency].append(invoice)
    return grouped
