"""Late-payment penalties (followupd.domain.late_payment) and ``[late_payment]``.

Every figure below is worked by hand in the comments: principal × annual rate
× days / 365, the slices added exactly, the total rounded once to the cent
(half up). Days late run from the day after the due date to `as_of`, both
included.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from followupd.cli.checks import late_payment_checks
from followupd.config.late_payment import (
    SHIPPED_ECB_RATES,
    SHIPPED_LEGAL_RATES,
    LatePaymentSection,
)
from followupd.config.load import load_settings, parse_settings
from followupd.config.settings import Settings
from followupd.domain.late_payment import (
    HalfYear,
    LatePayment,
    MissingRate,
    RateTable,
    ecb_table,
    legal_table,
    penalties,
    penalties_under,
    rate_warnings,
)
from followupd.domain.payments import Payment, settled_payments
from followupd.errors import ConfigError, Problem
from tests.test_config import EXAMPLE, OWNER

D = Decimal
ECB = ecb_table(LatePaymentSection())
LEGAL = legal_table(LatePaymentSection())


def _late(
    amount: str,
    due: date,
    as_of: date,
    payments: tuple[Payment, ...] = (),
    *,
    contract_rate: Decimal | None = None,
    legal_rates: RateTable | None = None,
    consumer: bool = False,
) -> LatePayment:
    """`penalties` with the shipped ECB rates and the default margin and indemnity."""
    return penalties(
        D(amount),
        due,
        payments,
        as_of,
        table=ECB,
        contract_rate=contract_rate,
        legal_rates=legal_rates,
        consumer=consumer,
    )


# -- (a) the plain case ------------------------------------------------------------------


def test_ten_thousand_euros_sixty_days_late_in_2025_h1() -> None:
    # due 2025-03-31, nothing paid, as of 2025-05-30:
    #   late days: 1 April .. 30 May = 30 + 30 = 60
    #   rate: ECB on 1 January 2025, 3.15 %, + 10 points = 13.15 %
    #   10,000 × 13.15 % × 60 / 365 = 78,900 / 365 = 216.1643835… -> 216.16
    #   owed: 10,000 + 216.16 + 40 (indemnity) = 10,256.16
    late = _late("10000", date(2025, 3, 31), date(2025, 5, 30))
    assert late.days_late == 60
    assert late.interest == D("216.16")
    assert late.indemnity == D(40)
    assert late.unpaid == D(10000)
    assert late.penalties == D("256.16")
    assert late.total_owed == D("10256.16")
    (only,) = late.slices
    assert (only.first_day, only.last_day, only.days) == (date(2025, 4, 1), date(2025, 5, 30), 60)
    assert (only.principal, only.rate) == (D(10000), D("13.15"))
    assert only.amount == D(78900) / D(365)  # exact: rounding is for the total only
    assert not late.uses_stale_rate and late.floored == ()


# -- (b) across 1 July: the H1 rate, then the H2 rate --------------------------------------


def test_a_late_period_across_1_july_takes_each_half_years_rate() -> None:
    # due 2025-06-15, as of 2025-07-15:
    #   16 June .. 30 June = 15 days at 3.15 + 10 = 13.15 % (ECB on 1 January 2025)
    #   1 July .. 15 July  = 15 days at 2.15 + 10 = 12.15 % (ECB on 1 July 2025)
    #   10,000 × 15 × (13.15 + 12.15) % / 365 = 37,950 / 365 = 103.9726… -> 103.97
    late = _late("10000", date(2025, 6, 15), date(2025, 7, 15))
    assert late.days_late == 30
    assert [(s.first_day, s.last_day, s.rate) for s in late.slices] == [
        (date(2025, 6, 16), date(2025, 6, 30), D("13.15")),
        (date(2025, 7, 1), date(2025, 7, 15), D("12.15")),
    ]
    assert late.interest == D("103.97")


def test_the_total_is_rounded_once_not_slice_by_slice() -> None:
    # the same dates on 1,000 €:
    #   H1: 1,000 × 13.15 % × 15 / 365 = 197.25 / 365 = 5.4041…
    #   H2: 1,000 × 12.15 % × 15 / 365 = 182.25 / 365 = 4.9931…
    #   together: 379.50 / 365 = 1.03972… × 10 = 10.3972… -> 10.40
    #   slice by slice it would be 5.40 + 4.99 = 10.39: a cent lost
    late = _late("1000", date(2025, 6, 15), date(2025, 7, 15))
    assert late.interest == D("10.40")
    assert [round(s.amount, 2) for s in late.slices] == [D("5.40"), D("4.99")]


def test_a_late_period_across_1_january_too() -> None:
    # due 2024-12-20, as of 2025-01-10:
    #   21 .. 31 December 2024 = 11 days at 4.25 + 10 = 14.25 % (ECB on 1 July 2024)
    #   1 .. 10 January 2025   = 10 days at 3.15 + 10 = 13.15 % (ECB on 1 January 2025)
    #   (5,000 × 11 × 14.25 % + 5,000 × 10 × 13.15 %) / 365
    #   = (7,837.50 + 6,575) / 365 = 14,412.50 / 365 = 39.4863… -> 39.49
    late = _late("5000", date(2024, 12, 20), date(2025, 1, 10))
    assert [(s.days, s.rate) for s in late.slices] == [(11, D("14.25")), (10, D("13.15"))]
    assert late.interest == D("39.49")


# -- (c) partial payments ------------------------------------------------------------------


def test_a_partial_payment_reduces_the_principal_from_the_next_day() -> None:
    # due 2025-03-31, 4,000 paid on 2025-04-20, as of 2025-05-30, 13.15 % throughout:
    #   1 April .. 20 April = 20 days on 10,000 (the payment day still counts in full)
    #   21 April .. 30 May  = 10 + 30 = 40 days on 6,000
    #   (10,000 × 20 + 6,000 × 40) × 13.15 % / 365 = 440,000 × 0.1315 / 365
    #   = 57,860 / 365 = 158.5205… -> 158.52
    #   owed: 6,000 + 158.52 + 40 = 6,198.52
    paid = (Payment(date(2025, 4, 20), D(4000)),)
    late = _late("10000", date(2025, 3, 31), date(2025, 5, 30), paid)
    assert [(s.first_day, s.last_day, s.principal) for s in late.slices] == [
        (date(2025, 4, 1), date(2025, 4, 20), D(10000)),
        (date(2025, 4, 21), date(2025, 5, 30), D(6000)),
    ]
    assert (late.days_late, late.interest, late.unpaid) == (60, D("158.52"), D(6000))
    assert late.total_owed == D("6198.52")


def test_paid_in_full_late_counts_up_to_the_payment_day() -> None:
    # A published worked example (Les Echos Publishing, 2018): 15,000 € due on 15 April,
    # paid on 15 May, at a contract rate of 15 %: penalties "du 16 avril au 15 mai",
    #   15,000 × 15 % × 30 / 365 = 67,500 / 365 = 184.9315… -> 184.93
    # (the legal rate here only sets the floor, far below 15 %)
    legal = RateTable("legal_rates", {HalfYear(2018, 1): D("0.89")})
    paid = settled_payments(D(15000), (), paid=date(2018, 5, 15))
    assert paid == (Payment(date(2018, 5, 15), D(15000)),)
    late = _late(
        "15000", date(2018, 4, 15), date(2018, 6, 30), paid, contract_rate=D(15), legal_rates=legal
    )
    assert late.days_late == 30
    assert late.interest == D("184.93")
    assert (late.unpaid, late.indemnity) == (D(0), D(40))  # the indemnity is owed all the same
    assert late.total_owed == D("224.93")


def test_payments_before_the_due_date_and_after_as_of() -> None:
    # 3,000 paid on 2025-03-01 (before the due date): 7,000 is late from the first day;
    # 7,000 paid on 2025-06-10 is not known on 2025-04-30 (as_of) and is left out:
    #   1 .. 30 April = 30 days on 7,000 at 13.15 %
    #   7,000 × 30 × 13.15 % / 365 = 27,615 / 365 = 75.6575… -> 75.66
    paid = (Payment(date(2025, 6, 10), D(7000)), Payment(date(2025, 3, 1), D(3000)))
    late = _late("10000", date(2025, 3, 31), date(2025, 4, 30), paid)
    assert (late.unpaid, late.days_late, late.interest) == (D(7000), 30, D("75.66"))


def test_an_overpayment_leaves_nothing_unpaid() -> None:
    # 10,000 due 2025-03-31, 10,500 paid on 2025-04-02:
    #   1 .. 2 April = 2 days on 10,000: 10,000 × 2 × 13.15 % / 365 = 2,630 / 365 = 7.2054… -> 7.21
    paid = (Payment(date(2025, 4, 2), D(10500)),)
    late = _late("10000", date(2025, 3, 31), date(2025, 5, 30), paid)
    assert (late.unpaid, late.days_late, late.interest) == (D(0), 2, D("7.21"))


# -- (d) a leap year, with 365 days all the same ---------------------------------------------


def test_a_leap_year_still_divides_by_365() -> None:
    # due 2024-02-15, as of 2024-03-15: 16 .. 29 February (29 February included) = 14 days,
    # 1 .. 15 March = 15 days: 29 days at 4.50 + 10 = 14.50 % (ECB on 1 January 2024)
    #   10,000 × 29 × 14.50 % / 365 = 42,050 / 365 = 115.2054… -> 115.21
    #   (with 366: 42,050 / 366 = 114.89; the convention is 365, see the module)
    late = _late("10000", date(2024, 2, 15), date(2024, 3, 15))
    assert late.days_late == 29
    assert late.interest == D("115.21")


# -- (e), (f) nothing owed -----------------------------------------------------------------


def test_a_consumer_never_owes_penalties_nor_the_indemnity() -> None:
    late = _late("10000", date(2025, 3, 31), date(2025, 5, 30), consumer=True)
    assert (late.interest, late.indemnity, late.slices) == (D(0), D(0), ())
    assert late.days_late == 60  # how late it is stays known
    assert late.total_owed == D(10000)


def test_paid_on_the_due_date_is_not_late() -> None:
    paid = (Payment(date(2025, 3, 31), D(10000)),)
    late = _late("10000", date(2025, 3, 31), date(2025, 5, 30), paid)
    assert late == LatePayment(D(0), 0, D(0), D(0))
    assert late.total_owed == D(0)


def test_the_due_date_itself_is_not_late_the_next_day_is() -> None:
    assert _late("10000", date(2025, 3, 31), date(2025, 3, 31)).days_late == 0
    assert _late("10000", date(2025, 3, 31), date(2025, 3, 1)).penalties == D(0)
    # one day: 10,000 × 13.15 % / 365 = 1,315 / 365 = 3.6027… -> 3.60, and the 40 €
    next_day = _late("10000", date(2025, 3, 31), date(2025, 4, 1))
    assert (next_day.days_late, next_day.interest, next_day.indemnity) == (1, D("3.60"), D(40))


# -- (g) a contract rate, and its floor ----------------------------------------------------


def test_a_contract_rate_above_the_floor_is_used_as_it_is() -> None:
    # 2025-H2: floor = 3 × 2.76 % (legal rate) = 8.28 %; the contract says 12 %:
    #   1 .. 30 October 2025 = 30 days: 10,000 × 30 × 12 % / 365 = 36,000 / 365 = 98.6301… -> 98.63
    late = _late(
        "10000", date(2025, 9, 30), date(2025, 10, 30), contract_rate=D(12), legal_rates=LEGAL
    )
    assert [s.rate for s in late.slices] == [D(12)]
    assert (late.interest, late.floored) == (D("98.63"), ())


def test_a_contract_rate_below_the_floor_is_raised_to_it_and_says_so() -> None:
    # the contract says 6 %, below 3 × 2.76 = 8.28 %: 8.28 % applies
    #   10,000 × 30 × 8.28 % / 365 = 24,840 / 365 = 68.0547… -> 68.05
    late = _late(
        "10000", date(2025, 9, 30), date(2025, 10, 30), contract_rate=D(6), legal_rates=LEGAL
    )
    assert [s.rate for s in late.slices] == [D("8.28")]
    assert late.interest == D("68.05")
    assert late.floored == (HalfYear(2025, 2),)


def test_the_floor_moves_with_the_half_year() -> None:
    # 9 % from 2025-06-20 to 2025-07-10: above 3 × 2.76 = 8.28 (H2), below 3 × 3.71 = 11.13 (H1)
    #   21 .. 30 June = 10 days at 11.13 %; 1 .. 10 July = 10 days at 9 %
    #   10,000 × 10 × (11.13 + 9) % / 365 = 20,130 / 365 = 55.1506… -> 55.15
    late = _late(
        "10000", date(2025, 6, 20), date(2025, 7, 10), contract_rate=D(9), legal_rates=LEGAL
    )
    assert [s.rate for s in late.slices] == [D("11.13"), D(9)]
    assert late.interest == D("55.15")
    assert late.floored == (HalfYear(2025, 1),)


def test_the_floor_binds_a_contract_rate_not_the_default_rate() -> None:
    # 2024-H1: the default 4.50 + 10 = 14.50 % is below 3 × 5.07 = 15.21 %, and stays 14.50 %
    late = _late("10000", date(2024, 3, 31), date(2024, 4, 30), legal_rates=LEGAL)
    assert [s.rate for s in late.slices] == [D("14.50")]


def test_a_contract_rate_needs_the_legal_rates() -> None:
    with pytest.raises(ValueError, match="legal rates"):
        _late("10000", date(2025, 9, 30), date(2025, 10, 30), contract_rate=D(12))


# -- (h) a half-year missing from the table ------------------------------------------------


def test_a_missing_half_year_takes_the_latest_earlier_rate_and_is_flagged() -> None:
    # 2026-H2 is not shipped: 2026-H1's 2.15 % stands in, 12.15 %; 1 .. 31 August 2026:
    #   10,000 × 31 × 12.15 % / 365 = 37,665 / 365 = 103.1917… -> 103.19
    late = _late("10000", date(2026, 7, 31), date(2026, 8, 31))
    assert late.interest == D("103.19")
    assert late.uses_stale_rate
    (stale,) = late.stale
    assert (stale.half_year, stale.found_for, stale.percent) == (
        HalfYear(2026, 2),
        HalfYear(2026, 1),
        D("2.15"),
    )
    assert stale.warning().startswith("set [late_payment] ecb_rates for 2026-H2")


def test_a_day_before_any_rate_is_a_clear_error() -> None:
    with pytest.raises(MissingRate, match=r"ecb_rates for 2019-H2 or any half-year before it"):
        _late("10000", date(2019, 9, 30), date(2019, 10, 30))


def test_half_years() -> None:
    assert HalfYear.of(date(2025, 6, 30)) == HalfYear(2025, 1)
    assert HalfYear.of(date(2025, 7, 1)) == HalfYear.parse("2025-H2")
    assert str(HalfYear(2026, 2)) == "2026-H2"
    assert HalfYear(2025, 2).next_first_day == date(2026, 1, 1)
    assert HalfYear(2025, 2) < HalfYear(2026, 1)
    with pytest.raises(ValueError, match="not a half-year"):
        HalfYear.parse("2025-H3")


def test_a_payment_is_a_positive_amount() -> None:
    with pytest.raises(ValueError, match="positive"):
        _late("10000", date(2025, 3, 31), date(2025, 5, 30), (Payment(date(2025, 4, 1), D(0)),))


def test_an_invoice_paid_in_full_after_part_payments() -> None:
    # 10,000 due 2025-03-31: 4,000 on 2025-04-20, then "paid" on 2025-05-10 (the other 6,000):
    #   1 .. 20 April = 20 days on 10,000; 21 April .. 10 May = 10 + 10 = 20 days on 6,000
    #   (10,000 × 20 + 6,000 × 20) × 13.15 % / 365 = 320,000 × 0.1315 / 365
    #   = 42,080 / 365 = 115.2876… -> 115.29
    part = (Payment(date(2025, 4, 20), D(4000)),)
    payments = settled_payments(D(10000), part, paid=date(2025, 5, 10))
    assert payments == (*part, Payment(date(2025, 5, 10), D(6000)))
    assert settled_payments(D(10000), part, paid=None) == part
    late = _late("10000", date(2025, 3, 31), date(2025, 12, 31), payments)
    assert (late.unpaid, late.days_late, late.interest) == (D(0), 40, D("115.29"))
    assert late.total_owed == D("155.29")


# -- the config section ----------------------------------------------------------------------


def _settings(text: str, tmp_path: Path) -> Settings:
    return parse_settings(OWNER + text, tmp_path / "followupd.toml", {"HOME": str(tmp_path)})


def _problems(text: str, tmp_path: Path) -> dict[str, Problem]:
    with pytest.raises(ConfigError) as caught:
        _settings(text, tmp_path)
    return {problem.where or "": problem for problem in caught.value.problems}


def test_the_shipped_defaults(tmp_path: Path) -> None:
    section = _settings("", tmp_path).late_payment
    assert section == LatePaymentSection()
    assert (section.enabled, section.margin_points, section.indemnity) == ("auto", D(10), D(40))
    assert section.contract_rate is None
    # the ECB's main refinancing rate in force on each 1 January and 1 July
    assert {key: str(rate) for key, rate in section.ecb_rates.items()} == {
        "2020-H1": "0.00", "2020-H2": "0.00", "2021-H1": "0.00", "2021-H2": "0.00",
        "2022-H1": "0.00", "2022-H2": "0.00", "2023-H1": "2.50", "2023-H2": "4.00",
        "2024-H1": "4.50", "2024-H2": "4.25", "2025-H1": "3.15", "2025-H2": "2.15",
        "2026-H1": "2.15",
    }  # fmt: skip
    assert section.legal_rates == SHIPPED_LEGAL_RATES
    assert (section.legal_rates["2025-H2"], section.legal_rates["2026-H1"]) == (
        D("2.76"),
        D("2.62"),
    )


def test_auto_means_french_owners(tmp_path: Path) -> None:
    auto = LatePaymentSection()
    assert auto.enabled_for("FR") and not auto.enabled_for("BE")
    forced = _settings("[late_payment]\nenabled = true\n", tmp_path).late_payment
    assert forced.enabled_for("BE")
    off = _settings("[late_payment]\nenabled = false\n", tmp_path).late_payment
    assert not off.enabled_for("FR")


def test_a_users_rates_are_merged_over_the_shipped_ones(tmp_path: Path) -> None:
    text = """\
[late_payment]
margin_points = 10
indemnity = 40.0
contract_rate = 12.5
ecb_rates = { "2025-H2" = 2.40, "2026-H2" = 2 }

[late_payment.legal_rates]
"2026-H2" = 2.50
"""
    section = _settings(text, tmp_path).late_payment
    assert section.ecb_rates == {**SHIPPED_ECB_RATES, "2025-H2": D("2.4"), "2026-H2": D(2)}
    assert section.legal_rates == {**SHIPPED_LEGAL_RATES, "2026-H2": D("2.5")}
    assert section.contract_rate == D("12.5")
    # and the new half-year is no longer stale
    late = _late("10000", date(2026, 7, 31), date(2026, 8, 31))
    assert late.uses_stale_rate
    assert not penalties_under(
        section.model_copy(update={"contract_rate": None}),
        D(10000),
        date(2026, 7, 31),
        [],
        date(2026, 8, 31),
    ).uses_stale_rate


def test_a_bad_half_year_key_is_named_with_its_line(tmp_path: Path) -> None:
    text = """\
[late_payment]
ecb_rates = { "2026-H3" = 2.0 }

[late_payment.legal_rates]
"2026-2" = 2.5
"""
    problems = _problems(text, tmp_path)
    bad = problems["late_payment.ecb_rates.2026-H3"]
    assert bad.line == 5  # OWNER takes three lines
    assert "'2026-H3' is not a half-year: write YYYY-H1 or YYYY-H2" in bad.message
    assert problems["late_payment.legal_rates.2026-2"].line == 8


def test_a_bad_rate_is_named_with_its_key(tmp_path: Path) -> None:
    text = """\
[late_payment]
ecb_rates = { "2025-H1" = 150, "2025-H2" = "2.15", "2026-H1" = true }
margin_points = -1
indemnity = -40
contract_rate = 101
enabled = "yes"
"""
    problems = _problems(text, tmp_path)
    assert "between 0 and 100 (got 150)" in problems["late_payment.ecb_rates.2025-H1"].message
    assert "must be a number" in problems["late_payment.ecb_rates.2025-H2"].message
    assert "must be a number" in problems["late_payment.ecb_rates.2026-H1"].message
    assert "between 0 and 100" in problems["late_payment.margin_points"].message
    assert "must not be negative" in problems["late_payment.indemnity"].message
    assert "between 0 and 100" in problems["late_payment.contract_rate"].message
    assert 'must be "auto", true or false' in problems["late_payment.enabled"].message
    assert problems["late_payment.enabled"].line == 9


def test_an_unknown_key_suggests_the_closest(tmp_path: Path) -> None:
    problems = _problems("[late_payment]\nmargin_point = 8\n", tmp_path)
    message = problems["late_payment.margin_point"].message
    assert message == "unknown key 'margin_point'; did you mean 'margin_points'?"


def test_the_examples_late_payment_block_shows_real_options_and_defaults(tmp_path: Path) -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    block = re.search(r"^# \[late_payment\]\n(?:#.*\n)*", text, re.MULTILINE)
    assert block is not None
    options = [
        line.removeprefix("# ")
        for line in block.group().splitlines()
        if re.match(r"# (\[late_payment\]|[a-z_]+ = )", line)
    ]
    assert [line.split(" ")[0] for line in options[1:]] == [
        "enabled", "margin_points", "indemnity", "ecb_rates", "legal_rates", "contract_rate",
    ]  # fmt: skip
    section = _settings("\n".join(options) + "\n", tmp_path).late_payment
    assert section.contract_rate == D(12)
    assert section.model_copy(update={"contract_rate": None}) == LatePaymentSection()
    assert load_settings(EXAMPLE, {"HOME": str(tmp_path)}).late_payment == LatePaymentSection()


def test_penalties_under_the_section() -> None:
    section = LatePaymentSection(margin_points=D(8), indemnity=D(0))
    # 10,000 × 60 × (3.15 + 8) % / 365 = 66,900 / 365 = 183.2876… -> 183.29
    late = penalties_under(section, D(10000), date(2025, 3, 31), [], date(2025, 5, 30))
    assert (late.interest, late.indemnity) == (D("183.29"), D(0))
    # the section's contract rate: 10,000 × 60 × 20 % / 365 = 120,000 / 365 = 328.7671… -> 328.77
    with_terms = section.model_copy(update={"contract_rate": D(20)})
    theirs = penalties_under(with_terms, D(10000), date(2025, 3, 31), [], date(2025, 5, 30))
    assert theirs.interest == D("328.77")
    # a client's own wins over it (12 %, above 2025-H1's floor of 3 × 3.71 = 11.13 %):
    #   10,000 × 60 × 12 % / 365 = 72,000 / 365 = 197.2602… -> 197.26
    mine = penalties_under(
        with_terms, D(10000), date(2025, 3, 31), [], date(2025, 5, 30), contract_rate=D(12)
    )
    assert (mine.interest, mine.floored) == (D("197.26"), ())


def test_what_check_says() -> None:
    shipped = LatePaymentSection()
    assert rate_warnings(shipped, date(2026, 3, 1)) == []
    assert rate_warnings(shipped, date(2026, 12, 5)) == [
        "set [late_payment] ecb_rates for 2026-H2: the rate of 2026-H1 (2.15 %) stands in for it "
        "(the ECB's main refinancing operations rate on 1 January or 1 July: ecb.europa.eu, key "
        "ECB interest rates)"
    ]
    low = LatePaymentSection(contract_rate=D(7))
    assert rate_warnings(low, date(2026, 3, 1)) == [
        "[late_payment] contract_rate 7 % is below the floor of 2026-H1, "
        "3 × the legal rate 2.62 % = 7.86 %: the floor is applied"
    ]
    assert rate_warnings(LatePaymentSection(contract_rate=D(10)), date(2026, 9, 1)) == [
        "set [late_payment] legal_rates for 2026-H2: the rate of 2026-H1 (2.62 %) stands in for it "
        "(the taux de l'intérêt légal, 'tous les autres cas', of the arrêté in the Journal "
        "officiel of late December or June)"
    ]
    assert "2019-H1 or any half-year before it" in rate_warnings(shipped, date(2019, 1, 1))[0]


# -- properties ------------------------------------------------------------------------------

amounts = st.decimals(min_value=D("0.01"), max_value=D(1_000_000), places=2)
dues = st.dates(min_value=date(2020, 1, 1), max_value=date(2026, 12, 31))
payments = st.lists(
    st.builds(
        lambda offset, amount: (offset, amount),
        st.integers(min_value=-30, max_value=400),
        st.decimals(min_value=D("0.01"), max_value=D(500_000), places=2),
    ),
    max_size=4,
)


def _payments(due: date, offsets: list[tuple[int, Decimal]]) -> list[Payment]:
    return [Payment(due + timedelta(days=offset), amount) for offset, amount in offsets]


@settings(derandomize=True, max_examples=200, deadline=None)
@given(amounts, dues, payments, st.integers(0, 500), st.integers(0, 200), st.booleans())
def test_penalties_grow_with_time_and_are_never_negative(
    amount: Decimal,
    due: date,
    offsets: list[tuple[int, Decimal]],
    days: int,
    more: int,
    consumer: bool,
) -> None:
    paid = _payments(due, offsets)
    as_of = due + timedelta(days=days)
    earlier = penalties(amount, due, paid, as_of, table=ECB, consumer=consumer)
    later = penalties(amount, due, paid, as_of + timedelta(days=more), table=ECB, consumer=consumer)
    assert D(0) <= earlier.interest <= later.interest
    assert D(0) <= earlier.penalties <= later.penalties
    assert earlier.days_late <= later.days_late
    assert D(0) <= later.unpaid <= earlier.unpaid <= amount
    assert sum(s.days for s in earlier.slices) == (0 if consumer else earlier.days_late)
    assert all(s.principal > 0 and s.amount > 0 for s in earlier.slices)


@settings(derandomize=True, max_examples=200, deadline=None)
@given(amounts, dues, payments, payments, st.integers(0, 500))
def test_a_payment_never_increases_the_penalties(
    amount: Decimal,
    due: date,
    offsets: list[tuple[int, Decimal]],
    extra: list[tuple[int, Decimal]],
    days: int,
) -> None:
    as_of = due + timedelta(days=days)
    before = penalties(amount, due, _payments(due, offsets), as_of, table=ECB)
    after = penalties(amount, due, _payments(due, offsets + extra), as_of, table=ECB)
    assert after.interest <= before.interest
    assert after.penalties <= before.penalties
    assert after.unpaid <= before.unpaid


def test_check_says_which_half_year_lacks_a_rate(tmp_path: Path) -> None:
    settings = _settings("", tmp_path)  # a French owner: [late_payment] applies
    [known] = late_payment_checks(settings, date(2026, 3, 2))
    assert (known.ok, known.detail) == (True, "rates known for 2026-H1")
    [stale] = late_payment_checks(settings, date(2026, 12, 4))
    assert stale.ok, "a missing half-year is said, not failed: the rate before stands in"
    assert stale.warning
    assert "set [late_payment] ecb_rates for 2026-H2" in stale.detail
    assert "ecb.europa.eu" in stale.detail, "where to find it"
    given = _settings('\n[late_payment]\necb_rates = { "2026-H2" = 2.15 }\n', tmp_path)
    assert late_payment_checks(given, date(2026, 12, 4))[0].detail == "rates known for 2026-H2"
    off = _settings("\n[late_payment]\nenabled = false\n", tmp_path)
    assert late_payment_checks(off, date(2026, 12, 4)) == []
