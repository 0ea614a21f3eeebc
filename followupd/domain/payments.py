"""What a client paid of an invoice: partial payments, and what is left to pay on a day.

An invoice's ``paid`` date says it was paid in full; before that, ``payments``
lists the part payments received (data file: ``payments = [{ on = …, amount = … }]``).
Late-payment penalties run on what is left unpaid, from the day after each payment.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal


@dataclass(frozen=True, order=True)
class Payment:
    """A part payment received on `on`."""

    on: date
    amount: Decimal


def unpaid_on(amount: Decimal, payments: Iterable[Payment], day: date) -> Decimal:
    """What is left to pay of `amount` at the end of `day`: never below zero."""
    received = sum((payment.amount for payment in payments if payment.on <= day), Decimal(0))
    return max(amount - received, Decimal(0))


def settled_payments(
    amount: Decimal, payments: Iterable[Payment], paid: date | None
) -> tuple[Payment, ...]:
    """The part payments, and, for an invoice paid in full on `paid`, the payment of the rest."""
    received = tuple(sorted(payments))
    if paid is None:
        return received
    rest = unpaid_on(amount, received, paid)
    return received if rest == 0 else tuple(sorted((*received, Payment(paid, rest))))
