"""The receivables' arithmetic, worked by hand: aging buckets, countback DSO, days to pay.

Dates sit on month ends (28 February, 31 March, 31 December), part payments
are deducted on the day they are received, and two currencies are never added.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from followupd.domain.payments import Payment
from followupd.domain.receivables import (
    Bucket,
    InvoiceFacts,
    aging,
    aging_by_currency,
    bucket_of,
    countback_dso,
    payment_delays,
    receivables,
    year_before,
)

D = Decimal


def invoice(
    number: str,
    amount: str,
    issued: date,
    due: date,
    *,
    client: str = "acme",
    currency: str = "EUR",
    paid: date | None = None,
    payments: tuple[Payment, ...] = (),
) -> InvoiceFacts:
    name = client.upper()
    return InvoiceFacts(number, client, name, currency, D(amount), issued, due, paid, payments)


@pytest.mark.parametrize(
    ("days", "bucket"),
    [(-12, Bucket.NOT_DUE), (0, Bucket.NOT_DUE), (1, Bucket.DAYS_1_30), (30, Bucket.DAYS_1_30),
     (31, Bucket.DAYS_31_60), (60, Bucket.DAYS_31_60), (61, Bucket.DAYS_61_90),
     (90, Bucket.DAYS_61_90), (91, Bucket.OVER_90), (400, Bucket.OVER_90)],
)  # fmt: skip
def test_the_buckets_edges(days: int, bucket: Bucket) -> None:
    assert bucket_of(days) == bucket


END_OF_MARCH = date(2026, 3, 31)
# on 31 March 2026 (as the comments count)
AGED = [
    # due today: 0 days past due, not due yet
    invoice("A", "1000", date(2026, 3, 1), END_OF_MARCH),
    # due 28 February: 31 days past due; 500 received today counts, 200 tomorrow does not
    invoice("B", "2000", date(2026, 1, 29), date(2026, 2, 28),
            payments=(Payment(END_OF_MARCH, D(500)), Payment(date(2026, 4, 1), D(200)))),
    # due 31 December: 31 + 28 + 31 = 90 days, the last day of 61-90
    invoice("C", "700", date(2025, 12, 1), date(2025, 12, 31)),
    # due 30 December: 91 days
    invoice("D", "300", date(2025, 11, 30), date(2025, 12, 30)),
    # another currency, due 1 March: 30 days
    invoice("E", "5000", date(2026, 2, 1), date(2026, 3, 1), currency="USD"),
    # paid in full today: no longer open
    invoice("F", "400", date(2026, 2, 1), date(2026, 3, 1), paid=END_OF_MARCH),
    # paid in full tomorrow: open today
    invoice("G", "250", date(2026, 2, 2), date(2026, 3, 2), paid=date(2026, 4, 1)),
    # issued tomorrow: not there yet
    invoice("H", "900", date(2026, 4, 1), date(2026, 5, 1)),
    # its part payments add up to the amount though `paid` was never set: nothing left
    invoice("I", "100", date(2026, 2, 1), date(2026, 3, 1),
            payments=(Payment(date(2026, 3, 10), D(60)), Payment(date(2026, 3, 15), D(40)))),
]  # fmt: skip


def test_aging_on_a_month_end_with_part_payments_in_two_currencies() -> None:
    by_currency = aging_by_currency(AGED, END_OF_MARCH)
    assert list(by_currency) == ["EUR", "USD"]
    eur, usd = by_currency["EUR"], by_currency["USD"]
    assert eur.amounts == {
        Bucket.NOT_DUE: D(1000),
        Bucket.DAYS_1_30: D(250),  # G, due 2 March: 29 days
        Bucket.DAYS_31_60: D(1500),  # B: 2000 - 500
        Bucket.DAYS_61_90: D(700),
        Bucket.OVER_90: D(300),
    }
    assert (eur.unpaid, eur.open_invoices, eur.overdue_invoices) == (D(3750), 5, 4)
    assert usd.amounts[Bucket.DAYS_1_30] == D(5000)
    assert (usd.unpaid, usd.open_invoices, usd.overdue_invoices) == (D(5000), 1, 1)


def test_the_next_day_moves_the_buckets_and_the_payments() -> None:
    first_of_april = END_OF_MARCH + timedelta(days=1)
    eur = aging_by_currency(AGED, first_of_april)["EUR"]
    assert eur.amounts == {
        Bucket.NOT_DUE: D(900),  # H, issued today
        Bucket.DAYS_1_30: D(1000),  # A: 1 day
        Bucket.DAYS_31_60: D(1300),  # B: 32 days, 200 more received; G paid in full today
        Bucket.DAYS_61_90: D(0),
        Bucket.OVER_90: D(1000),  # C at 91 days, D at 92
    }


def test_nothing_open_has_no_currency() -> None:
    paid = invoice("P", "10", date(2026, 1, 1), date(2026, 1, 31), paid=date(2026, 2, 1))
    assert aging_by_currency([paid], END_OF_MARCH) == {}
    assert aging([paid], END_OF_MARCH).unpaid == 0


def test_the_countback_of_the_docstring() -> None:
    """25,000 outstanding on 10 March: March's 10 days (8,000), February's 28 (12,000),
    then 5,000 of January's 10,000: 31 / 2 days. 10 + 28 + 15.5."""
    sales = [
        (date(2026, 3, 2), D(3000)),
        (date(2026, 3, 10), D(5000)),
        (date(2026, 3, 11), D(99000)),  # after the day: not a sale yet
        (date(2026, 2, 28), D(12000)),
        (date(2026, 1, 1), D(4000)),
        (date(2026, 1, 31), D(6000)),
        (date(2025, 12, 15), D(50000)),  # never reached
    ]
    assert countback_dso(D(25000), sales, date(2026, 3, 10)) == D("53.5")


def test_the_countback_from_a_month_end_through_a_month_without_sales() -> None:
    """On 31 May, 3,000 outstanding: May's 31 days (1,000 sold), April's 30 (none),
    then 2,000 of March's 3,000: 31 × 2/3 = 20.67. 31 + 30 + 20.7."""
    sales = [(date(2026, 5, 31), D(1000)), (date(2026, 3, 1), D(3000))]
    assert countback_dso(D(3000), sales, date(2026, 5, 31)) == D("81.7")


def test_the_countback_in_february_and_a_month_consumed_exactly() -> None:
    # 28 February: February's 28 days hold 2,000 of 3,000, January's 2,000 the rest half
    sales = [(date(2026, 2, 27), D(2000)), (date(2026, 1, 5), D(2000))]
    assert countback_dso(D(3000), sales, date(2026, 2, 28)) == D("43.5")
    # a leap year's February counts 29
    leap = [(date(2028, 2, 29), D(2000)), (date(2028, 1, 5), D(2000))]
    assert countback_dso(D(3000), leap, date(2028, 2, 29)) == D("44.5")
    # the receivables are exactly January's sales: its 31 days, no more
    assert countback_dso(D(1000), [(date(2026, 1, 2), D(1000))], date(2026, 1, 31)) == D(31)


def test_the_countback_with_nothing_outstanding_or_sales_running_out() -> None:
    assert countback_dso(D(0), [(date(2026, 1, 2), D(1000))], date(2026, 1, 31)) == 0
    assert countback_dso(D(500), [], date(2026, 1, 31)) == 0
    # sales missing (not given): the walk stops at the earliest month given
    assert countback_dso(D(5000), [(date(2025, 12, 2), D(1000))], date(2026, 1, 10)) == D(41)


def test_days_to_pay_over_the_twelve_months_to_the_day() -> None:
    day = date(2026, 12, 5)
    paid = [
        invoice("P1", "1", date(2026, 10, 31), date(2026, 11, 30), paid=day),  # 35 days, 5 late
        invoice("P2", "1", date(2025, 10, 31), date(2025, 11, 30),
                paid=date(2025, 12, 6)),  # 36 days, 6 late: the first day of the twelve months
        invoice("P3", "1", date(2026, 6, 1), date(2026, 7, 1),
                paid=date(2026, 6, 20)),  # 19 days, paid early: 0 late
        invoice("P4", "1", date(2025, 10, 1), date(2025, 11, 1),
                paid=date(2025, 12, 5)),  # a year ago: out
        invoice("P5", "1", date(2026, 11, 1), date(2026, 12, 1),
                paid=date(2026, 12, 6)),  # tomorrow: out
        invoice("O", "1", date(2026, 11, 1), date(2026, 12, 1)),  # open: out
    ]  # fmt: skip
    delays = payment_delays(paid, day)
    assert delays.paid_invoices == 3
    assert delays.days_to_pay == D("30.0")  # (35 + 36 + 19) / 3
    assert delays.days_late == D("3.7")  # (5 + 6 + 0) / 3
    nothing = payment_delays(paid[-1:], day)
    assert (nothing.paid_invoices, nothing.days_to_pay, nothing.days_late) == (0, None, None)


def test_a_year_before_a_29th_of_february_is_the_28th() -> None:
    assert year_before(date(2028, 2, 29)) == date(2027, 2, 28)
    assert year_before(date(2026, 12, 31)) == date(2025, 12, 31)


def test_the_report_per_client_and_per_currency() -> None:
    day = END_OF_MARCH
    facts = [
        *AGED,
        invoice("K1", "600", date(2026, 3, 5), date(2026, 4, 4), client="kiwi"),
        invoice("K2", "100", date(2026, 1, 2), date(2026, 2, 1), client="kiwi",
                paid=date(2026, 2, 11)),  # 40 days to pay, 10 late
        invoice("L1", "80", date(2025, 6, 1), date(2025, 7, 1), client="lime",
                paid=date(2025, 7, 1)),  # paid in the twelve months, nothing open: a row
        invoice("U1", "70", date(2025, 1, 1), date(2025, 2, 1), client="umbra",
                paid=date(2025, 2, 1)),  # paid before the twelve months: no row
        invoice("Y1", "2000", date(2026, 3, 20), date(2026, 4, 19), client="kiwi",
                currency="USD"),
    ]  # fmt: skip
    report = receivables(facts, day)
    rows = [(row.client, row.currency, row.aging.unpaid) for row in report.clients]
    assert rows == [
        ("acme", "EUR", D(3750)),
        ("kiwi", "EUR", D(600)),
        ("lime", "EUR", D(0)),
        ("acme", "USD", D(5000)),
        ("kiwi", "USD", D(2000)),
    ]
    eur, usd = report.currencies
    assert (eur.currency, eur.aging.unpaid, eur.aging.open_invoices) == ("EUR", D(4350), 6)
    assert eur.aging.amounts[Bucket.NOT_DUE] == D(1600)
    assert (usd.currency, usd.aging.unpaid, usd.aging.overdue_invoices) == ("USD", D(7000), 1)
    # USD on 31 March: 7,000 outstanding; March's 31 days hold 2,000 (Y1) -> 5,000 left;
    # February's 28 hold E's 5,000 exactly
    assert usd.dso == D(59)
    # EUR: 4,350 outstanding; March sold A 1,000 + K1 600 -> 31 days, 2,750 left;
    # February sold F 400 + G 250 + I 100 = 750 -> 28 days, 2,000 left; January sold B 2,000
    # (and K2 100): 31 × 2,000 / 2,100 = 29.5
    assert eur.dso == D("88.5")
    kiwi = next(row for row in report.clients if row.client == "kiwi" and row.currency == "EUR")
    assert (kiwi.delays.paid_invoices, kiwi.delays.days_to_pay, kiwi.delays.days_late) == (
        1, D(40), D(10),
    )  # fmt: skip
    # every currency's paid invoices: F (58 days, 30 late), K2 (40, 10), L1 (30, 0)
    assert report.delays.paid_invoices == 3
    assert (report.delays.days_to_pay, report.delays.days_late) == (D("42.7"), D("13.3"))
    assert (report.open_invoices, report.overdue_invoices) == (8, 5)


money = st.decimals(min_value=1, max_value=100000, places=2)
days = st.dates(min_value=date(2024, 1, 1), max_value=date(2026, 12, 31))


@st.composite
def invoices(draw: st.DrawFn) -> InvoiceFacts:
    issued = draw(days)
    due = issued + timedelta(days=draw(st.integers(0, 90)))
    amount = draw(money)
    paid = draw(st.none() | st.dates(min_value=issued, max_value=date(2027, 6, 30)))
    part = draw(st.none() | st.decimals(min_value=D("0.01"), max_value=amount, places=2))
    on = issued + timedelta(days=draw(st.integers(0, 200)))
    return invoice(
        f"N{draw(st.integers(0, 10**6))}", str(amount), issued, due,
        client=draw(st.sampled_from(["acme", "kiwi", "lime"])),
        currency=draw(st.sampled_from(["EUR", "USD"])),
        paid=paid, payments=() if part is None else (Payment(on, part),),
    )  # fmt: skip


@settings(derandomize=True, max_examples=200, deadline=None)
@given(st.lists(invoices(), max_size=30), days)
def test_the_clients_add_up_to_their_currencys_total(facts: list[InvoiceFacts], day: date) -> None:
    report = receivables(facts, day)
    for total in report.currencies:
        rows = [row for row in report.clients if row.currency == total.currency]
        for bucket in Bucket:
            assert (
                sum((row.aging.amounts[bucket] for row in rows), D(0))
                == total.aging.amounts[bucket]
            )
        assert sum(row.aging.open_invoices for row in rows) == total.aging.open_invoices
        # the countback never reaches further back than the oldest sale's month
        oldest = min(i.issued for i in facts if i.currency == total.currency and i.issued <= day)
        assert 0 <= total.dso <= (day - oldest.replace(day=1)).days + 1
        if total.aging.unpaid == 0:
            assert total.dso == 0
