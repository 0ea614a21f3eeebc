"""``[late_payment]``: French late-payment penalties between professionals, and their rates.

The Code de commerce (L441-10 II, D441-5) gives a creditor who is a
professional, dealing with a professional, interest from the day after the
due date and a flat 40 € recovery indemnity per late invoice. The interest
rate is the ECB's main refinancing operations rate plus 10 points, the
reference rate being the one in force on 1 January for the first half-year
and on 1 July for the second; a contract may set another rate, never below
3 times the taux d'intérêt légal (the rate for professional creditors, fixed
by arrêté each half-year). The computation is followupd.domain.late_payment.

Both tables ship with the rates established below; a user's ``ecb_rates`` and
``legal_rates`` are merged over them key by key, so adding the next
half-year is one line. A half-year missing from a table is a warning, not an
error: the latest earlier rate stands in and the result says so.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, field_validator

from followupd.config.types import StrictModel

HALF_YEAR_KEY = re.compile(r"(?P<year>\d{4})-H(?P<half>[12])")

# The ECB's main refinancing operations rate, in percent, in force on 1 January (H1) and
# 1 July (H2). 0 % from 16 March 2016 to 26 July 2022 (0.50 % from 27 July 2022); 2.50 %
# from 21 December 2022; 4.00 % from 21 June 2023 (4.25 % only from 2 August); 4.50 % from
# 20 September 2023 to 11 June 2024; 4.25 % from 12 June to 17 September 2024; 3.15 % from
# 18 December 2024; 2.15 % from 11 June 2025, held on 18 December 2025 and 5 February 2026.
# Sources: the ECB's monetary policy decisions taking effect on those dates (press releases
# and their reports); the 1 January and 1 July rates follow from them.
# 2026-H2 is left out: the rate in force on 1 July 2026 could not be established here.
SHIPPED_ECB_RATES: dict[str, Decimal] = {
    "2020-H1": Decimal("0.00"),
    "2020-H2": Decimal("0.00"),
    "2021-H1": Decimal("0.00"),
    "2021-H2": Decimal("0.00"),
    "2022-H1": Decimal("0.00"),
    "2022-H2": Decimal("0.00"),
    "2023-H1": Decimal("2.50"),
    "2023-H2": Decimal("4.00"),
    "2024-H1": Decimal("4.50"),
    "2024-H2": Decimal("4.25"),
    "2025-H1": Decimal("3.15"),
    "2025-H2": Decimal("2.15"),
    "2026-H1": Decimal("2.15"),
}

# The taux de l'intérêt légal "pour tous les autres cas" (creditors who are not private
# persons), in percent, as fixed by arrêté for each half-year (Code monétaire et financier
# L313-2, D313-1-A); e.g. the arrêté of 15 December 2025 for 2026-H1 (JORF of 26 December
# 2025). 2026-H2 is left out: its arrêté could not be established here.
SHIPPED_LEGAL_RATES: dict[str, Decimal] = {
    "2020-H1": Decimal("0.87"),
    "2020-H2": Decimal("0.84"),
    "2021-H1": Decimal("0.79"),
    "2021-H2": Decimal("0.76"),
    "2022-H1": Decimal("0.76"),
    "2022-H2": Decimal("0.77"),
    "2023-H1": Decimal("2.06"),
    "2023-H2": Decimal("4.22"),
    "2024-H1": Decimal("5.07"),
    "2024-H2": Decimal("4.92"),
    "2025-H1": Decimal("3.71"),
    "2025-H2": Decimal("2.76"),
    "2026-H1": Decimal("2.62"),
}


def _half_year_key(key: str) -> str:
    if not HALF_YEAR_KEY.fullmatch(key):
        raise ValueError(f"{key!r} is not a half-year: write YYYY-H1 or YYYY-H2, like '2026-H2'")
    return key


def _number(value: Any) -> Decimal:
    """A TOML integer or float, as the Decimal its text shows (3.15 stays 3.15)."""
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise ValueError(f"must be a number, like 3.15 (got {value!r})")
    return value if isinstance(value, Decimal) else Decimal(str(value))


def _percent(value: Decimal) -> Decimal:
    if not Decimal(0) <= value <= Decimal(100):
        raise ValueError(f"must be a percentage between 0 and 100 (got {value})")
    return value


def _not_negative(value: Decimal) -> Decimal:
    if value < 0:
        raise ValueError(f"must not be negative (got {value})")
    return value


HalfYearKey = Annotated[str, AfterValidator(_half_year_key)]
Percent = Annotated[Decimal, BeforeValidator(_number), AfterValidator(_percent)]
Amount = Annotated[Decimal, BeforeValidator(_number), AfterValidator(_not_negative)]
RateTableConfig = dict[HalfYearKey, Percent]


class LatePaymentSection(StrictModel):
    """``[late_payment]``: whether penalties are computed, at what rates, with what indemnity."""

    enabled: Literal["auto"] | bool = Field(
        "auto", description='"auto": for owners whose country is FR; true or false forces it'
    )
    margin_points: Percent = Field(Decimal(10), description="points added to the ECB rate")
    indemnity: Amount = Field(Decimal(40), description="flat recovery indemnity per late invoice")
    ecb_rates: RateTableConfig = Field(default_factory=lambda: dict(SHIPPED_ECB_RATES))
    legal_rates: RateTableConfig = Field(default_factory=lambda: dict(SHIPPED_LEGAL_RATES))
    contract_rate: Percent | None = Field(
        None, description="an annual rate set by contract, instead of the ECB rate and margin"
    )

    @field_validator("enabled", mode="plain")
    @classmethod
    def _auto_or_bool(cls, value: Any) -> Literal["auto"] | bool:
        if isinstance(value, bool):
            return value
        if value == "auto":
            return "auto"
        raise ValueError(f'must be "auto", true or false (got {value!r})')

    @field_validator("ecb_rates")
    @classmethod
    def _over_shipped_ecb_rates(cls, rates: dict[str, Decimal]) -> dict[str, Decimal]:
        return dict(sorted({**SHIPPED_ECB_RATES, **rates}.items()))

    @field_validator("legal_rates")
    @classmethod
    def _over_shipped_legal_rates(cls, rates: dict[str, Decimal]) -> dict[str, Decimal]:
        return dict(sorted({**SHIPPED_LEGAL_RATES, **rates}.items()))

    def enabled_for(self, country: str) -> bool:
        """Whether penalties apply to an owner of `country`: French law, for French sellers."""
        if self.enabled == "auto":
            return country.upper() == "FR"
        return self.enabled
