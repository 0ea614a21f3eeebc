"""The words of a formal notice to pay, in French and in English.

Plain text only, no markup: the PDF builder escapes every string it is given. The
tone is the project's (DOMAIN.md): courteous and firm. A professional debtor is
reminded of the late-payment penalties (article L441-10 du Code de commerce) and of
the 40-euro recovery indemnity (article D441-5); a consumer is told of neither.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from babel.dates import format_date
from babel.lists import format_list

from followupd.domain.formal_notice import FormalNotice, Owed
from followupd.templates.loader import LOCALES, helpers

# a date in the invoice table: as French invoices write it; the month spelt out in English,
# where 12/04/2026 reads two ways
SHORT_DATES = {"fr": "dd/MM/yyyy", "en": "MMM d, yyyy"}


@dataclass(frozen=True)
class LetterText:
    """Every piece of text of the letter, in the order the page shows them."""

    title: str  # the document's title (PDF metadata)
    creditor: tuple[str, ...]  # the sender's block, first line the name
    debtor: tuple[str, ...]  # the addressee's block, first line the name
    place_date: str
    registered: str  # "Lettre recommandée avec accusé de réception"
    subject: str  # the object line
    salutation: str
    before_table: str  # what the invoice table follows
    header: tuple[str, ...]  # the invoice table's column names
    rows: tuple[tuple[str, ...], ...]
    total_row: tuple[str, ...]
    due_row: tuple[str, str] | None  # ("Total dû", amount), when not just the unpaid total
    after_table: tuple[str, ...]
    closing: str
    signature: str


class _Format:
    """Dates and amounts as the language writes them (the templates' helpers)."""

    def __init__(self, notice: FormalNotice) -> None:
        self.language = notice.language
        self.currency = notice.currency
        self._helpers = helpers(notice.language)

    def day(self, value: date) -> str:
        """The date in full: "4 décembre 2026", "December 4, 2026"."""
        return str(self._helpers["day"](value))

    def short_day(self, value: date) -> str:
        """The date in a table cell: "04/12/2026", "Dec 4, 2026"."""
        return format_date(value, SHORT_DATES[self.language], locale=LOCALES[self.language])

    def money(self, amount: Decimal) -> str:
        return str(self._helpers["money"](amount, self.currency))

    def listing(self, items: list[str]) -> str:
        """The items joined as the language does: "A, B et C", "A, B, and C"."""
        return format_list(items, locale=LOCALES[self.language])


def letter_text(notice: FormalNotice) -> LetterText:
    """The text of `notice`, in its language."""
    write = _french if notice.language == "fr" else _english
    return write(notice, _Format(notice))


def _lines(text: str | None) -> tuple[str, ...]:
    """The non-blank lines of a postal address."""
    return tuple(line.strip() for line in (text or "").splitlines() if line.strip())


def _table(notice: FormalNotice, fmt: _Format) -> tuple[tuple[tuple[str, ...], ...], list[str]]:
    """The invoice rows and the total row's amounts, with the consumer's columns only."""
    rows = []
    for invoice in notice.invoices:
        owed = notice.owed(invoice)
        row = [
            invoice.number,
            fmt.short_day(invoice.issued),
            fmt.short_day(invoice.due),
            fmt.money(owed.amount),
            fmt.money(owed.unpaid),
            str(invoice.days_late),
        ]
        if not notice.consumer:
            row += [fmt.money(owed.penalties), fmt.money(owed.indemnity)]
        rows.append(tuple(row))
    totals = notice.totals
    total = [fmt.money(totals.amount), fmt.money(totals.unpaid), ""]
    if not notice.consumer:
        total += [fmt.money(totals.penalties), fmt.money(totals.indemnity)]
    return tuple(rows), total


def _demanded(totals: Owed, fmt: _Format, principal: str, penalties: str, indemnity: str) -> str:
    """The sum demanded, with what it is made of when there is more than the unpaid amount."""
    if not totals.penalties and not totals.indemnity:  # always so for a consumer
        return fmt.money(totals.unpaid)
    parts = [principal.format(fmt.money(totals.unpaid))]
    if totals.penalties:
        parts.append(penalties.format(fmt.money(totals.penalties)))
    if totals.indemnity:
        parts.append(indemnity.format(fmt.money(totals.indemnity)))
    return f"{fmt.money(totals.total)} ({fmt.listing(parts)})"


def _french(notice: FormalNotice, fmt: _Format) -> LetterText:
    creditor, debtor, totals = notice.creditor, notice.debtor, notice.totals
    several = len(notice.invoices) > 1
    numbers = fmt.listing([invoice.number for invoice in notice.invoices])
    rows, total = _table(notice, fmt)
    header = ["Facture", "Émise le", "Échéance", "Montant", "Restant dû", "Jours de retard"]
    if not notice.consumer:
        header += ["Pénalités", "Indemnité"]
    despite = ", malgré mes précédentes relances," if notice.reminded else ","
    which = (
        "les factures suivantes restent impayées"
        if several
        else "la facture suivante reste impayée"
    )
    unpaid = f"Sauf erreur de ma part{despite} {which} à ce jour :"
    after = []
    if not notice.consumer:
        after.append(
            "Conformément à l'article L441-10 du Code de commerce, les sommes impayées à "
            "l'échéance sont majorées de plein droit de pénalités de retard, exigibles dès le "
            "lendemain de la date d'échéance sans qu'un rappel soit nécessaire, ainsi que d'une "
            "indemnité forfaitaire pour frais de recouvrement de 40 euros (article D441-5 du "
            "Code de commerce), due pour chaque facture payée en retard. Les pénalités indiquées "
            "sont arrêtées à la date de la présente et courent jusqu'au complet paiement."
        )
    amount = _demanded(
        totals, fmt, "{} en principal", "{} de pénalités de retard", "{} d'indemnité forfaitaire"
    )
    after += [
        f"En conséquence, je vous mets en demeure de me régler la somme de {amount} dans un "
        f"délai de {notice.days_given} jours à compter de la réception de la présente, soit au "
        f"plus tard le {fmt.day(notice.deadline)}.",
        "À défaut de règlement dans ce délai, je me verrai dans l'obligation d'engager une "
        "procédure de recouvrement judiciaire, notamment une injonction de payer, sans autre "
        "avis de ma part.",
        "Je reste disponible pour convenir avec vous d'un règlement amiable : vous pouvez "
        + (f"me joindre au {creditor.phone} ou" if creditor.phone else "m'écrire")
        + f" à {creditor.email}. Si le règlement est intervenu entre-temps, je vous remercie de "
        "ne pas tenir compte de la présente.",
    ]
    return LetterText(
        title=f"Mise en demeure de payer — {debtor.name}",
        creditor=(
            creditor.name,
            *_lines(creditor.address),
            *([f"Tél. : {creditor.phone}"] if creditor.phone else []),
            f"Courriel : {creditor.email}",
        ),
        debtor=(
            debtor.name,
            *([f"À l'attention de {debtor.contact}"] if debtor.contact else []),
            *_lines(debtor.address),
        ),
        place_date=(f"{notice.place}, le " if notice.place else "Le ") + fmt.day(notice.dated),
        registered="Lettre recommandée avec accusé de réception",
        subject=f"Objet : Mise en demeure de payer — facture{'s' if several else ''} n° {numbers}",
        salutation="Madame, Monsieur,",
        before_table=unpaid,
        header=tuple(header),
        rows=rows,
        total_row=("Total", "", "", *total),
        due_row=None if notice.consumer else ("Total dû", fmt.money(totals.total)),
        after_table=tuple(after),
        closing="Je vous prie d'agréer, Madame, Monsieur, l'expression de mes salutations "
        "distinguées.",
        signature=creditor.name,
    )


def _english(notice: FormalNotice, fmt: _Format) -> LetterText:
    creditor, debtor, totals = notice.creditor, notice.debtor, notice.totals
    several = len(notice.invoices) > 1
    numbers = fmt.listing([invoice.number for invoice in notice.invoices])
    rows, total = _table(notice, fmt)
    header = ["Invoice", "Issued", "Due", "Amount", "Unpaid", "Days late"]
    if not notice.consumer:
        header += ["Penalties", "Indemnity"]
    despite = ", despite my earlier reminders," if notice.reminded else ","
    which = "the following invoices remain" if several else "the following invoice remains"
    unpaid = f"According to my records{despite} {which} unpaid:"
    after = []
    if not notice.consumer:
        after.append(
            "Under article L441-10 of the French Commercial Code (Code de commerce), sums unpaid "
            "when due bear late-payment penalties by operation of law, payable from the day "
            "after the due date without any reminder being required, together with a fixed "
            "compensation for recovery costs of 40 euros (article D441-5 of the French "
            "Commercial Code) for each invoice paid late. The penalties shown are calculated to "
            "the date of this letter and continue to accrue until payment in full."
        )
    amount = _demanded(
        totals, fmt, "{} principal", "{} late-payment penalties", "{} fixed recovery compensation"
    )
    after += [
        f"I therefore formally demand payment of {amount} within {notice.days_given} days of "
        f"receipt of this letter, that is by {fmt.day(notice.deadline)} at the latest.",
        "Failing payment within that time, I will have no choice but to start court "
        "proceedings to recover this debt, including an application for an order for payment "
        "(injonction de payer), without further notice.",
        "I remain open to settling this matter amicably: you can "
        + (f"reach me on {creditor.phone} or" if creditor.phone else "write to me")
        + f" at {creditor.email}. If you have paid in the meantime, please disregard this "
        "letter.",
    ]
    return LetterText(
        title=f"Formal final demand — {debtor.name}",
        creditor=(
            creditor.name,
            *_lines(creditor.address),
            *([f"Phone: {creditor.phone}"] if creditor.phone else []),
            f"Email: {creditor.email}",
        ),
        debtor=(
            debtor.name,
            *([f"For the attention of {debtor.contact}"] if debtor.contact else []),
            *_lines(debtor.address),
        ),
        place_date=(f"{notice.place}, " if notice.place else "") + fmt.day(notice.dated),
        registered="Sent by registered post with acknowledgement of receipt",
        subject=f"Formal final demand for payment — letter before action — "
        f"invoice{'s' if several else ''} {numbers}",
        salutation=f"Dear {debtor.contact}," if debtor.contact else "Dear Sir or Madam,",
        before_table=unpaid,
        header=tuple(header),
        rows=rows,
        total_row=("Total", "", "", *total),
        due_row=None if notice.consumer else ("Total due", fmt.money(totals.total)),
        after_table=tuple(after),
        closing="Yours sincerely," if debtor.contact else "Yours faithfully,",
        signature=creditor.name,
    )
