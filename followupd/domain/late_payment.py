"""Late-payment penalties between professionals under French law, computed exactly.

What the Code de commerce says, and how it is read here:

- L441-10 II: interest runs from the day after the due date, without any
  reminder: the due date itself is not late, the first late day is due + 1.
  The default rate is the ECB's main refinancing operations rate plus 10
  points; the reference rate of the first half-year is the one in force on
  1 January, that of the second the one in force on 1 July. A late period
  across 1 July (or 1 January) is priced in slices: the days before at the
  rate of their half-year, the days after at the next one's.
- A contract may set another rate, never below 3 times the taux d'intérêt
  légal of professional creditors. A contract rate below that floor is
  raised to it, half-year by half-year, and the result says so
  (`LatePayment.floored`): the floor is the least the law lets the contract
  say, so claiming it never claims more than is owed. It cannot be refused
  when the config is read: the floor moves every half-year, and a rate
  valid today may be below an earlier half-year's floor. The floor binds a
  contract rate only: in 2024-H1 the default rate (4.50 + 10 = 14.50 %) was
  below 3 × 5.07 = 15.21 %, and stayed the default.
- D441-5: a flat 40 € indemnity for recovery costs per invoice paid late
  (in euros, whatever the invoice's currency).
- Only between professionals: a consumer client never owes either.

Interest is simple, per invoice, on the principal still unpaid: each payment
reduces it from the day after its date (the day a payment arrives still
counts at the old principal, as practitioners count "du 16 avril au 15 mai"
for an invoice due on 15 April and paid on 15 May). The amount of a slice is
principal × rate × days / 365; the slices are added exactly and the sum is
rounded once, to the cent, half up.

The year counts 365 days, in leap years too. No text of the Code fixes the
divisor. The usual French practice (the formula "montant × taux × jours /
365" of guides and chartered accountants' examples) is 365, and so is the
Banque de France's answer to a question put to Service-Public.fr on the
legal interest (January 2019, as quoted by the asker on a public forum):
365 "que l'année soit ou non bissextile". A few practitioners divide a leap
year's days by 366; the difference is 1/366 of the interest, about 0.27 %.

Splitting at 1 July follows the text of L441-10, which names a reference
rate per half-year; the interest of public contracts differs (the rate of
the half-year in which interest started runs to the end) and is not this.

Nothing here reads the clock: `as_of` is the day the penalties are counted to.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from typing import Literal

from followupd.config.late_payment import HALF_YEAR_KEY, LatePaymentSection
from followupd.domain.payments import Payment, unpaid_on

DAYS_IN_YEAR = 365  # in leap years too: see the module's docstring
FLOOR_FACTOR = 3  # a contract rate is at least this many times the legal rate
CENT = Decimal("0.01")
ZERO = Decimal(0)


# where a user finds the rate of a half-year, for `check` to say
WHERE_TO_FIND = {
    "ecb_rates": "the ECB's main refinancing operations rate on 1 January or 1 July: "
    "ecb.europa.eu, key ECB interest rates",
    "legal_rates": "the taux de l'intérêt légal, 'tous les autres cas', of the arrêté "
    "in the Journal officiel of late December or June",
}


@dataclass(frozen=True, order=True)
class HalfYear:
    """January to June (half 1) or July to December (half 2) of a year."""

    year: int
    half: Literal[1, 2]

    @classmethod
    def of(cls, day: date) -> HalfYear:
        return cls(day.year, 1 if day.month <= 6 else 2)

    @classmethod
    def parse(cls, text: str) -> HalfYear:
        """``"2025-H2"`` -> ``HalfYear(2025, 2)``."""
        match = HALF_YEAR_KEY.fullmatch(text)
        if match is None:
            raise ValueError(f"{text!r} is not a half-year such as '2026-H2'")
        return cls(int(match["year"]), 1 if match["half"] == "1" else 2)

    def __str__(self) -> str:
        return f"{self.year}-H{self.half}"

    @property
    def first_day(self) -> date:
        return date(self.year, 1 if self.half == 1 else 7, 1)

    @property
    def next_first_day(self) -> date:
        """The first day of the half-year after this one."""
        return date(self.year, 7, 1) if self.half == 1 else date(self.year + 1, 1, 1)


class MissingRate(ValueError):
    """A table has no rate for a half-year, nor for any half-year before it."""


@dataclass(frozen=True)
class Rate:
    """The rate a table gives for `half_year`: its own, or the latest earlier one (stale)."""

    table: str  # the config key of the table: "ecb_rates" or "legal_rates"
    half_year: HalfYear
    percent: Decimal
    found_for: HalfYear

    @property
    def stale(self) -> bool:
        return self.found_for != self.half_year

    def warning(self) -> str:
        """What `check` tells about a stale rate, and where to find the one to set."""
        return (
            f"set [late_payment] {self.table} for {self.half_year}: "
            f"the rate of {self.found_for} ({self.percent} %) stands in for it "
            f"({WHERE_TO_FIND.get(self.table, 'see the README, Getting paid')})"
        )


@dataclass(frozen=True)
class RateTable:
    """Annual rates in percent by half-year (the ECB's, or the legal rates)."""

    name: str
    rates: Mapping[HalfYear, Decimal] = field(hash=False)

    @classmethod
    def from_config(cls, name: str, rates: Mapping[str, Decimal]) -> RateTable:
        return cls(name, {HalfYear.parse(key): value for key, value in rates.items()})

    def lookup(self, half_year: HalfYear) -> Rate:
        """The rate of `half_year`, else of the latest half-year before it (marked stale)."""
        earlier = [known for known in self.rates if known <= half_year]
        if not earlier:
            raise MissingRate(
                f"no rate in [late_payment] {self.name} for {half_year} or any half-year "
                "before it: add it to the config"
            )
        found = max(earlier)
        return Rate(self.name, half_year, self.rates[found], found)

    def on(self, day: date) -> Rate:
        """The rate for the half-year containing `day`."""
        return self.lookup(HalfYear.of(day))


def ecb_table(section: LatePaymentSection) -> RateTable:
    return _table("ecb_rates", tuple(section.ecb_rates.items()))


def legal_table(section: LatePaymentSection) -> RateTable:
    return _table("legal_rates", tuple(section.legal_rates.items()))


@lru_cache(maxsize=16)
def _table(name: str, rates: tuple[tuple[str, Decimal], ...]) -> RateTable:
    """A table of the config's rates, parsed once: a pass asks for it for every late invoice."""
    return RateTable.from_config(name, dict(rates))


@dataclass(frozen=True)
class Slice:
    """Days late at one principal and one rate: a line of the working a letter can show."""

    first_day: date
    last_day: date  # inclusive
    principal: Decimal
    rate: Decimal  # annual, in percent
    amount: Decimal  # exact: round only the total (`LatePayment.interest`)

    @property
    def days(self) -> int:
        return (self.last_day - self.first_day).days + 1


@dataclass(frozen=True)
class LatePayment:
    """What an invoice owes for being late, as of a day."""

    unpaid: Decimal  # principal still unpaid on `as_of`
    days_late: int  # days on which some principal was late, up to `as_of`
    interest: Decimal  # to the cent, half up, rounded once
    indemnity: Decimal  # the flat recovery indemnity, or 0
    slices: tuple[Slice, ...] = ()
    stale: tuple[Rate, ...] = ()  # rates that stood in for a half-year missing from a table
    floored: tuple[HalfYear, ...] = ()  # where a contract rate was raised to the floor

    @property
    def penalties(self) -> Decimal:
        """Interest and indemnity: what lateness adds to the invoice."""
        return self.interest + self.indemnity

    @property
    def total_owed(self) -> Decimal:
        """The unpaid principal and the penalties."""
        return self.unpaid + self.penalties

    @property
    def uses_stale_rate(self) -> bool:
        return bool(self.stale)


def penalties(
    amount: Decimal,
    due: date,
    payments: Iterable[Payment],
    as_of: date,
    *,
    table: RateTable,
    margin_points: Decimal = Decimal(10),
    contract_rate: Decimal | None = None,
    legal_rates: RateTable | None = None,
    consumer: bool = False,
    indemnity: Decimal = Decimal(40),
) -> LatePayment:
    """The penalties of an invoice of `amount` due on `due`, counted to `as_of` inclusive.

    `payments` are the part payments and, for an invoice paid in full, the
    payment of the rest (`settled_payments`); those after `as_of` are not
    known yet and are left out. Without a
    `contract_rate`, each half-year's rate is `table`'s rate plus
    `margin_points`; with one, the contract rate raised to 3 × `legal_rates`
    where it is below. A consumer client owes nothing (`days_late` still
    says how late the invoice is). Raises `MissingRate` when a table has
    nothing for a late day's half-year or earlier.
    """
    received = sorted(p for p in payments if p.on <= as_of)
    if any(p.amount <= 0 for p in received):
        raise ValueError("a payment is a positive amount")
    unpaid = unpaid_on(amount, received, as_of)
    periods = _late_periods(amount, due, received, as_of)
    days_late = sum((last - first).days + 1 for first, last, _ in periods)
    if consumer or days_late == 0:
        return LatePayment(unpaid, days_late, ZERO, ZERO)
    if contract_rate is not None and legal_rates is None:
        raise ValueError("a contract rate needs the legal rates, for its floor")
    slices, stale, floored = [], [], []
    for first, last, principal in periods:
        reference = table if contract_rate is None else legal_rates
        assert reference is not None  # checked above
        rate = reference.on(first)
        if rate.stale and rate not in stale:
            stale.append(rate)
        if contract_rate is None:
            annual = rate.percent + margin_points
        else:
            annual = max(contract_rate, FLOOR_FACTOR * rate.percent)
            if annual > contract_rate and rate.half_year not in floored:
                floored.append(rate.half_year)
        days = (last - first).days + 1
        exact = principal * annual * days / (100 * DAYS_IN_YEAR)
        slices.append(Slice(first, last, principal, annual, exact))
    interest = sum((s.amount for s in slices), ZERO).quantize(CENT, rounding=ROUND_HALF_UP)
    return LatePayment(
        unpaid, days_late, interest, indemnity, tuple(slices), tuple(stale), tuple(floored)
    )


def _late_periods(
    amount: Decimal, due: date, received: list[Payment], as_of: date
) -> list[tuple[date, date, Decimal]]:
    """The late days from due + 1 to `as_of`, cut where the principal or the half-year changes.

    Each period is (first day, last day inclusive, principal); the list stops
    where the principal is paid off.
    """
    first_late = due + timedelta(days=1)
    cuts = {p.on + timedelta(days=1) for p in received}
    day = first_late
    while (day := HalfYear.of(day).next_first_day) <= as_of:
        cuts.add(day)
    starts = sorted(cut for cut in cuts if first_late < cut <= as_of)
    periods = []
    for start, end in zip([first_late, *starts], [*starts, as_of + timedelta(days=1)], strict=True):
        if start > as_of:
            break
        principal = amount - sum((p.amount for p in received if p.on < start), ZERO)
        if principal <= 0:
            break
        periods.append((start, end - timedelta(days=1), principal))
    return periods


def penalties_under(
    section: LatePaymentSection,
    amount: Decimal,
    due: date,
    payments: Iterable[Payment],
    as_of: date,
    *,
    consumer: bool = False,
    contract_rate: Decimal | None = None,
) -> LatePayment:
    """`penalties` with the rates, margin, indemnity and contract rate of ``[late_payment]``.

    `contract_rate`, when given (a client's own terms), wins over the section's.
    """
    return penalties(
        amount,
        due,
        payments,
        as_of,
        table=ecb_table(section),
        margin_points=section.margin_points,
        contract_rate=contract_rate if contract_rate is not None else section.contract_rate,
        legal_rates=legal_table(section),
        consumer=consumer,
        indemnity=section.indemnity,
    )


def rate_warnings(section: LatePaymentSection, today: date) -> list[str]:
    """What `check` should say about ``[late_payment]`` on `today`.

    The table the penalties of today use (the ECB rates, or the legal rates
    with a contract rate) lacks the current half-year; a contract rate is
    below the current floor.
    """
    now = HalfYear.of(today)
    table = ecb_table(section) if section.contract_rate is None else legal_table(section)
    try:
        rate = table.lookup(now)
    except MissingRate as error:
        return [str(error)]
    warnings = [rate.warning()] if rate.stale else []
    floor = FLOOR_FACTOR * rate.percent
    if section.contract_rate is not None and section.contract_rate < floor:
        warnings.append(
            f"[late_payment] contract_rate {section.contract_rate} % is below the floor of "
            f"{now}, 3 × the legal rate {rate.percent} % = {floor} %: the floor is applied"
        )
    return warnings
