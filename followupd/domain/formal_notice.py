"""What a formal notice to pay says: who writes, to whom, which invoices, by when.

The caller (the ``formal_notice`` rule) computes every figure: the days late, the
penalties to date, the 40-euro indemnity, the deadline. The letter
(followupd.channels.letters) only shows them.

A consumer is owed no late-payment penalties nor the recovery indemnity (they are for
professionals, articles L441-10 and D441-5 of the Code de commerce): for a consumer
notice those amounts are ignored, whatever was passed, so that the letter can never
claim them; `NoticeInvoice.penalties`/`indemnity` stay as given, and `owed()` and
`totals` are what the letter shows.

The indemnity is a sum in euros (D441-5), whatever the invoices' currency: a
letter about invoices in dollars demands their unpaid amount and penalties in
dollars, and the indemnity in euros beside them, never added to them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

LANGUAGES = ("fr", "en")
ZERO = Decimal(0)
INDEMNITY_CURRENCY = "EUR"  # D441-5 sets the recovery indemnity in euros
# what the PDF's file name starts with, in the letter's language
FILE_NAMES = {"fr": "mise-en-demeure", "en": "final-demand"}
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class Creditor:
    """The owner, who signs the letter and sends it."""

    name: str
    email: str
    phone: str | None = None
    address: str | None = None  # postal address, one line per line


@dataclass(frozen=True)
class Debtor:
    """The client the letter is sent to, and the person it is addressed to."""

    name: str
    address: str | None = None  # postal address, one line per line
    contact: str | None = None  # "À l'attention de …"; also the English salutation


@dataclass(frozen=True)
class NoticeInvoice:
    """One unpaid invoice the letter cites, with what it owes to date."""

    number: str
    issued: date
    due: date
    amount: Decimal  # as invoiced
    unpaid: Decimal  # what is left to pay of it
    penalties: Decimal = ZERO  # late-payment penalties to date
    indemnity: Decimal = ZERO  # the fixed recovery indemnity: 40 or 0
    days_late: int = 0
    mission: str | None = None  # what it was for: the mission's title
    contract_rate: Decimal | None = None  # the contract's yearly rate, if one applies


@dataclass(frozen=True)
class Owed:
    """What the letter shows for one invoice (or for all of them)."""

    amount: Decimal
    unpaid: Decimal
    penalties: Decimal
    indemnity: Decimal

    @property
    def total(self) -> Decimal:
        """What is demanded: the unpaid amount, the penalties and the indemnity."""
        return self.unpaid + self.penalties + self.indemnity


@dataclass(frozen=True)
class FormalNotice:
    """A formal notice to pay ("mise en demeure de payer", "formal final demand")."""

    language: str  # "fr" or "en"
    creditor: Creditor
    debtor: Debtor
    dated: date  # the letter's date
    deadline: date  # the last day to pay, 8 to 15 days later as a rule
    invoices: tuple[NoticeInvoice, ...]
    consumer: bool = False  # a consumer is never shown penalties nor the indemnity
    currency: str = "EUR"
    place: str | None = None  # where the letter is written: "Lyon, le 4 décembre 2026"
    reminded: bool = True  # earlier reminders were sent ("malgré mes précédentes relances")
    margin_points: Decimal = Decimal(10)  # over the ECB rate, without a contract rate

    def __post_init__(self) -> None:
        if self.language not in LANGUAGES:
            raise ValueError(f"language {self.language!r}: expected one of {LANGUAGES}")
        if not self.invoices:
            raise ValueError("a formal notice cites at least one invoice")
        if self.deadline <= self.dated:
            raise ValueError(f"deadline {self.deadline} is not after the letter's date")

    @property
    def days_given(self) -> int:
        """The days the debtor is given to pay, from the letter's date to the deadline."""
        return (self.deadline - self.dated).days

    def owed(self, invoice: NoticeInvoice) -> Owed:
        """What the letter shows for `invoice`: without penalties nor indemnity for a consumer."""
        if self.consumer:
            return Owed(invoice.amount, invoice.unpaid, ZERO, ZERO)
        return Owed(invoice.amount, invoice.unpaid, invoice.penalties, invoice.indemnity)

    @property
    def totals(self) -> Owed:
        """The sums over the invoices of what the letter shows."""
        each = [self.owed(invoice) for invoice in self.invoices]
        return Owed(
            amount=sum((owed.amount for owed in each), ZERO),
            unpaid=sum((owed.unpaid for owed in each), ZERO),
            penalties=sum((owed.penalties for owed in each), ZERO),
            indemnity=sum((owed.indemnity for owed in each), ZERO),
        )

    @property
    def missions(self) -> list[str]:
        """The titles of the missions the invoices are for, each once, in the table's order."""
        return list(dict.fromkeys(found.mission for found in self.invoices if found.mission))

    @property
    def contract_rates(self) -> set[Decimal | None]:
        """The contract rates of the invoices: None for one at the ECB rate plus the margin."""
        return {found.contract_rate for found in self.invoices}

    @property
    def indemnity_apart(self) -> bool:
        """Whether the letter states an indemnity its currency cannot add up (not euros)."""
        return self.currency != INDEMNITY_CURRENCY and bool(self.totals.indemnity)

    @property
    def demanded(self) -> Decimal:
        """The sum demanded in the letter's currency: the indemnity too when that is euros."""
        totals = self.totals
        return totals.total - totals.indemnity if self.indemnity_apart else totals.total


def file_name(language: str, number: str) -> str:
    """The PDF's file name for the notice about invoice `number`: safe in any directory.

    ``mise-en-demeure-F-2026-042.pdf``, ``final-demand-F-2026-042.pdf``; a
    character a file name cannot hold (a slash, a space) becomes a hyphen.
    """
    safe = _UNSAFE.sub("-", number).strip(".-") or "invoice"
    return f"{FILE_NAMES.get(language, FILE_NAMES['en'])}-{safe}.pdf"
