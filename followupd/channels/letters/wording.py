"""The words of a formal notice to pay, in French and in English.

Plain text only, no markup: the PDF builder escapes every string it is given. The
tone is the project's (DOMAIN.md): courteous and firm. A professional debtor is
reminded of the late-payment penalties (article L441-10 du Code de commerce) and of
the 40-euro recovery indemnity (article D441-5); a consumer is told of neither.

One layout (`letter_text`) for both languages; `_Words` holds what differs. Babel is
loaded when a letter is first worded: the evaluation pass imports this module, and most
passes word no letter.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import lru_cache

from followupd.domain.formal_notice import INDEMNITY_CURRENCY, FormalNotice
from followupd.templates.loader import LOCALES, babel_locale, helpers

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
    enclosures: str  # "P.J. : copie des factures"


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
        return _short_day(self.language, value)

    def money(self, amount: Decimal, currency: str | None = None) -> str:
        """`amount` in `currency`, the letter's unless told."""
        return str(self._helpers["money"](amount, currency or self.currency))

    def indemnity(self, amount: Decimal) -> str:
        """The recovery indemnity: in euros, whatever the letter's currency."""
        return self.money(amount, INDEMNITY_CURRENCY)

    def number(self, value: Decimal) -> str:
        """A rate or a count of points: "12,15", "10"."""
        from babel.numbers import format_decimal

        return format_decimal(value, locale=babel_locale(LOCALES[self.language]))

    def listing(self, items: list[str]) -> str:
        """The items joined as the language does: "A, B et C", "A, B, and C"."""
        from babel.lists import format_list

        return format_list(items, locale=babel_locale(LOCALES[self.language]))


@lru_cache(maxsize=8192)
def _short_day(language: str, value: date) -> str:
    """`_Format.short_day`, memoised: a pass's letters cite the same few hundred dates."""
    from babel.dates import format_date

    return format_date(value, SHORT_DATES[language], locale=babel_locale(LOCALES[language]))


@dataclass(frozen=True)
class _Words:
    """What a language says in each place of the letter; ``{}`` fields are filled in."""

    title: str  # {debtor}
    phone: str
    email: str
    attention: str
    place_date: Callable[[str | None, str], str]  # (place, day) -> the line
    registered: str
    subject: str  # {s}: plural mark, {numbers}
    salutation: Callable[[str | None], str]  # the contact's name, if any
    header: tuple[str, ...]
    header_penalties: tuple[str, ...]  # the business' extra columns
    despite: tuple[str, str]  # after earlier reminders, without
    which: tuple[str, str]  # several invoices, one
    about: tuple[str, str]  # several missions, one: {} their quoted titles
    quote: str  # a mission's title quoted: {}
    unpaid: str  # {despite} {which} {about}
    law: str  # {rate}: how the penalties are reckoned
    rate_ecb: str  # {margin}
    rate_contract: str  # {rate}
    rate_mixed: str  # {margin}
    principal: str
    penalties: str
    indemnity: str
    demand: str  # {amount} {days} {deadline}
    court: str
    amicable: str  # {reach} {email}
    reach_phone: str
    reach_write: str
    total: str
    total_due: str
    closing: Callable[[str | None], str]
    enclosures: tuple[str, str]  # several invoices, one


FRENCH = _Words(
    title="Mise en demeure de payer — {debtor}",
    phone="Tél. : {}",
    email="Courriel : {}",
    attention="À l'attention de {}",
    place_date=lambda place, day: (f"{place}, le " if place else "Le ") + day,
    registered="Lettre recommandée avec accusé de réception",
    subject="Objet : Mise en demeure de payer — facture{s} n° {numbers}",
    salutation=lambda contact: "Madame, Monsieur,",
    header=("Facture", "Émise le", "Échéance", "Montant", "Restant dû", "Jours de retard"),
    header_penalties=("Pénalités", "Indemnité"),
    despite=(", malgré mes précédentes relances,", ","),
    which=("les factures suivantes restent impayées", "la facture suivante reste impayée"),
    about=(", au titre des missions {}", ", au titre de la mission {}"),
    quote="« {} »",
    unpaid="Sauf erreur de ma part{despite} {which} à ce jour{about} :",
    law=(
        "Conformément à l'article L441-10 du Code de commerce, les sommes impayées à "
        "l'échéance sont majorées de plein droit de pénalités de retard, exigibles dès le "
        "lendemain de la date d'échéance sans qu'un rappel soit nécessaire, ainsi que d'une "
        "indemnité forfaitaire pour frais de recouvrement de 40 euros (article D441-5 du "
        "Code de commerce), due pour chaque facture payée en retard. Les pénalités, calculées "
        "{rate}, sont arrêtées à la date de la présente et courent jusqu'au complet paiement."
    ),
    rate_ecb=(
        "au taux appliqué par la Banque centrale européenne à son opération de refinancement "
        "la plus récente, majoré de {margin} points de pourcentage"
    ),
    rate_contract="au taux de {rate} % l'an prévu au contrat",
    rate_mixed=(
        "au taux prévu au contrat ou, à défaut, au taux de refinancement de la Banque centrale "
        "européenne majoré de {margin} points de pourcentage"
    ),
    principal="{} en principal",
    penalties="{} de pénalités de retard",
    indemnity="{} d'indemnité forfaitaire",
    demand=(
        "En conséquence, je vous mets en demeure de me régler la somme de {amount} dans un "
        "délai de {days} jours à compter de la réception de la présente."
    ),
    court=(
        "À défaut de règlement dans ce délai, je me verrai dans l'obligation d'engager une "
        "procédure de recouvrement judiciaire, notamment une injonction de payer, sans autre "
        "avis de ma part."
    ),
    amicable=(
        "Je reste disponible pour convenir avec vous d'un règlement amiable : vous pouvez "
        "{reach} à {email}. Si le règlement est intervenu entre-temps, je vous remercie de ne "
        "pas tenir compte de la présente."
    ),
    reach_phone="me joindre au {} ou",
    reach_write="m'écrire",
    total="Total",
    total_due="Total dû",
    closing=lambda contact: (
        "Je vous prie d'agréer, Madame, Monsieur, l'expression de mes salutations distinguées."
    ),
    enclosures=("P.J. : copie des factures", "P.J. : copie de la facture"),
)

ENGLISH = _Words(
    title="Formal final demand — {debtor}",
    phone="Phone: {}",
    email="Email: {}",
    attention="For the attention of {}",
    place_date=lambda place, day: (f"{place}, " if place else "") + day,
    registered="Sent by registered post with acknowledgement of receipt",
    subject="Formal final demand for payment — letter before action — invoice{s} {numbers}",
    salutation=lambda contact: f"Dear {contact}," if contact else "Dear Sir or Madam,",
    header=("Invoice", "Issued", "Due", "Amount", "Unpaid", "Days late"),
    header_penalties=("Penalties", "Indemnity"),
    despite=(", despite my earlier reminders,", ","),
    which=("the following invoices remain", "the following invoice remains"),
    about=(" for the assignments {}", " for the assignment {}"),
    quote="\u201c{}\u201d",
    unpaid="According to my records{despite} {which} unpaid{about}:",
    law=(
        "Under article L441-10 of the French Commercial Code (Code de commerce), sums unpaid "
        "when due bear late-payment penalties by operation of law, payable from the day "
        "after the due date without any reminder being required, together with a fixed "
        "compensation for recovery costs of 40 euros (article D441-5 of the French "
        "Commercial Code) for each invoice paid late. The penalties, calculated {rate}, are "
        "shown to the date of this letter and continue to accrue until payment in full."
    ),
    rate_ecb=(
        "at the rate applied by the European Central Bank to its most recent refinancing "
        "operation plus {margin} percentage points"
    ),
    rate_contract="at the contractual rate of {rate}% a year",
    rate_mixed=(
        "at the contractual rate or, failing that, at the European Central Bank's refinancing "
        "rate plus {margin} percentage points"
    ),
    principal="{} principal",
    penalties="{} late-payment penalties",
    indemnity="{} fixed recovery compensation",
    demand=(
        "I therefore formally demand payment of {amount} within {days} days of receipt of "
        "this letter."
    ),
    court=(
        "Failing payment within that time, I will have no choice but to start court "
        "proceedings to recover this debt, including an application for an order for payment "
        "(injonction de payer), without further notice."
    ),
    amicable=(
        "I remain open to settling this matter amicably: you can {reach} at {email}. If you "
        "have paid in the meantime, please disregard this letter."
    ),
    reach_phone="reach me on {} or",
    reach_write="write to me",
    total="Total",
    total_due="Total due",
    closing=lambda contact: "Yours sincerely," if contact else "Yours faithfully,",
    enclosures=("Enclosures: copies of the invoices", "Enclosure: copy of the invoice"),
)
WORDS = {"fr": FRENCH, "en": ENGLISH}


def letter_text(notice: FormalNotice) -> LetterText:
    """The text of `notice`, in its language."""
    words, fmt = WORDS[notice.language], _Format(notice)
    creditor, debtor = notice.creditor, notice.debtor
    several = len(notice.invoices) > 1
    rows, total = _table(notice, fmt)
    missions = [words.quote.format(title) for title in notice.missions]
    about = words.about[0 if len(missions) > 1 else 1].format(fmt.listing(missions))
    unpaid = words.unpaid.format(
        despite=words.despite[0 if notice.reminded else 1],
        which=words.which[0 if several else 1],
        about=about if missions else "",
    )
    reach = words.reach_phone.format(creditor.phone) if creditor.phone else words.reach_write
    after = [] if notice.consumer else [words.law.format(rate=_rate(notice, fmt, words))]
    after += [
        words.demand.format(amount=_demanded(notice, fmt, words), days=notice.days_given),
        words.court,
        words.amicable.format(reach=reach, email=creditor.email),
    ]
    return LetterText(
        title=words.title.format(debtor=debtor.name),
        creditor=(
            creditor.name,
            *_lines(creditor.address),
            *([words.phone.format(creditor.phone)] if creditor.phone else []),
            words.email.format(creditor.email),
        ),
        debtor=(
            debtor.name,
            *([words.attention.format(debtor.contact)] if debtor.contact else []),
            *_lines(debtor.address),
        ),
        place_date=words.place_date(notice.place, fmt.day(notice.dated)),
        registered=words.registered,
        subject=words.subject.format(
            s="s" if several else "",
            numbers=fmt.listing([invoice.number for invoice in notice.invoices]),
        ),
        salutation=words.salutation(debtor.contact),
        before_table=unpaid,
        header=words.header + (() if notice.consumer else words.header_penalties),
        rows=rows,
        total_row=(words.total, "", "", *total),
        due_row=None if notice.consumer else (words.total_due, _sum_due(notice, fmt)),
        after_table=tuple(after),
        closing=words.closing(debtor.contact),
        signature=creditor.name,
        enclosures=words.enclosures[0 if several else 1],
    )


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
            row += [fmt.money(owed.penalties), fmt.indemnity(owed.indemnity)]
        rows.append(tuple(row))
    totals = notice.totals
    total = [fmt.money(totals.amount), fmt.money(totals.unpaid), ""]
    if not notice.consumer:
        total += [fmt.money(totals.penalties), fmt.indemnity(totals.indemnity)]
    return tuple(rows), total


def _rate(notice: FormalNotice, fmt: _Format, words: _Words) -> str:
    """How the penalties are reckoned: the ECB rate plus the margin, the contract's, or both."""
    rates = notice.contract_rates
    margin = fmt.number(notice.margin_points)
    if rates == {None}:
        return words.rate_ecb.format(margin=margin)
    if len(rates) == 1:
        (rate,) = rates
        assert rate is not None  # the set is not {None}
        return words.rate_contract.format(rate=fmt.number(rate))
    return words.rate_mixed.format(margin=margin)


def _sum_due(notice: FormalNotice, fmt: _Format) -> str:
    """The sum demanded; with the indemnity in euros beside it when the invoices are not."""
    due = fmt.money(notice.demanded)
    return f"{due} + {fmt.indemnity(notice.totals.indemnity)}" if notice.indemnity_apart else due


def _demanded(notice: FormalNotice, fmt: _Format, words: _Words) -> str:
    """The sum demanded, with what it is made of when there is more than the unpaid amount."""
    totals = notice.totals
    if not totals.penalties and not totals.indemnity:  # always so for a consumer
        return fmt.money(totals.unpaid)
    parts = [words.principal.format(fmt.money(totals.unpaid))]
    if totals.penalties:
        parts.append(words.penalties.format(fmt.money(totals.penalties)))
    if totals.indemnity:
        parts.append(words.indemnity.format(fmt.indemnity(totals.indemnity)))
    return f"{_sum_due(notice, fmt)} ({fmt.listing(parts)})"
