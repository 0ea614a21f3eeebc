"""The records of a data file (the README, "Importing data"), validated one by one.

TOML gives dates and datetimes as such; JSON gives ISO strings. Both are
accepted, nothing else is: a number is never read as a date. A datetime
without an offset is read in the owner's time zone, passed as the validation
context ``{"zone": ZoneInfo}``.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, ClassVar, Self
from zoneinfo import ZoneInfo

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    StrictBool,
    StrictInt,
    ValidationInfo,
    model_validator,
)

from followupd.config.types import (
    Country,
    Email,
    Language,
    OwnerKey,
    Phone,
    SingleLine,
    Slug,
    StrictModel,
    TimeZoneName,
)
from followupd.domain.identity import touchpoint_key
from followupd.domain.payments import Payment
from followupd.domain.states import ClientKind, MissionStatus, Severity, TouchpointKind
from followupd.sources.files.instants import parse_instant

_DATE_SHAPED = re.compile(r"\d{4}-\d{2}-\d{2}")


def _day(value: Any) -> Any:
    if isinstance(value, datetime):
        raise ValueError("expected a date without a time, like 2026-09-01")
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError as error:
            if _DATE_SHAPED.fullmatch(value):  # 2026-13-01: say which figure is wrong
                raise ValueError(f"invalid date {value}: {error}") from None
    raise ValueError(f"expected a date like 2026-09-01 (got {value!r})")


def _instant(value: Any, info: ValidationInfo) -> Any:
    zone = (info.context or {}).get("zone") or ZoneInfo("UTC")
    return parse_instant(value, zone)


def _amount(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise ValueError(f"expected an amount like 12000.00 (got {value!r})")
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"expected an amount like 12000.00 (got {value!r})") from None
    if not amount.is_finite():
        raise ValueError("expected a finite amount")
    return amount


def _text(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("is not valid Unicode (a lone surrogate)") from None
    return value


Day = Annotated[date, BeforeValidator(_day)]
Instant = Annotated[datetime, BeforeValidator(_instant)]
Amount = Annotated[Decimal, BeforeValidator(_amount), Field(ge=0, max_digits=14, decimal_places=2)]
InvoiceNumber = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]*$", max_length=120)]
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$")]


class Record(StrictModel):
    """A data file record. `natural_key` names the field that identifies it."""

    natural_key: ClassVar[str] = "key"
    references: ClassVar[dict[str, str]] = {}  # field -> kind of record it names

    def identity(self) -> str:
        return str(getattr(self, self.natural_key))

    def stored(self, field_name: str) -> Any:
        """The value of `field_name` as its column holds it."""
        return getattr(self, field_name)


Name = Annotated[SingleLine, Field(max_length=200)]


class ClientRecord(Record):
    key: Slug
    name: Name
    language: Language | None = None
    timezone: TimeZoneName | None = None
    country: Country | None = None
    kind: ClientKind = ClientKind.BUSINESS
    profile: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=40)] | None = None
    address: Annotated[str, AfterValidator(_text), Field(max_length=1000)] | None = None


class ContactRecord(Record):
    references: ClassVar[dict[str, str]] = {"client": "clients"}

    key: Slug
    client: Slug
    name: Name
    email: Annotated[Email, Field(max_length=320)] | None = None
    phone: Phone | None = None
    language: Language | None = None
    greetings: StrictBool = True


class MissionRecord(Record):
    references: ClassVar[dict[str, str]] = {"client": "clients", "contact": "contacts"}

    key: Slug
    client: Slug
    title: Annotated[SingleLine, Field(max_length=300)]
    contact: Slug | None = None
    start: Day
    end: Day | None = None
    status: MissionStatus = MissionStatus.ACTIVE
    contract_signed: Day | None = None
    deposit_amount: Amount | None = None
    deposit_paid: Day | None = None
    currency: Currency = "EUR"
    status_update_every_days: StrictInt | None = Field(None, ge=1, le=365)
    deliverables: StrictBool = True
    paused_until: Day | None = None
    # the contract's late-payment rate, percent a year (L441-10: at least 3 x the legal rate)
    late_payment_rate: Annotated[Decimal, Field(ge=0, le=100, decimal_places=3)] | None = None
    owner: OwnerKey | None = None  # an [[owners]] key; None: the first owner

    @model_validator(mode="after")
    def _ends_after_start(self) -> Self:
        if self.end is not None and self.end < self.start:
            raise ValueError(f"end ({self.end}) is before start ({self.start})")
        return self


class PaymentRecord(StrictModel):
    """A part payment of an invoice: ``{ on = 2026-12-01, amount = 4000 }``."""

    on: Day
    amount: Annotated[
        Decimal, BeforeValidator(_amount), Field(gt=0, max_digits=14, decimal_places=2)
    ]


class InvoiceRecord(Record):
    natural_key: ClassVar[str] = "number"
    references: ClassVar[dict[str, str]] = {"mission": "missions"}

    number: InvoiceNumber
    mission: Slug
    amount: Amount
    issued: Day
    due: Day
    paid: Day | None = None  # paid in full
    payments: tuple[PaymentRecord, ...] = ()  # part payments before that
    promised: Day | None = None  # the client promised to pay by then

    @model_validator(mode="after")
    def _due_after_issue(self) -> Self:
        if self.due < self.issued:
            raise ValueError(f"due ({self.due}) is before issued ({self.issued})")
        return self

    @model_validator(mode="after")
    def _payments_within_amount(self) -> Self:
        received = sum((payment.amount for payment in self.payments), Decimal(0))
        if received > self.amount:
            raise ValueError(f"payments add up to {received}, more than the amount {self.amount}")
        return self

    def stored(self, field_name: str) -> Any:
        if field_name == "payments":
            return tuple(sorted(Payment(item.on, item.amount) for item in self.payments))
        return super().stored(field_name)


class IssueRecord(Record):
    references: ClassVar[dict[str, str]] = {"mission": "missions"}

    key: Slug
    mission: Slug
    opened: Instant
    severity: Severity = Severity.MEDIUM
    summary: SingleLine
    client_informed: Instant | None = None
    resolved: Instant | None = None


class TouchpointRecord(Record):
    references: ClassVar[dict[str, str]] = {"mission": "missions", "contact": "contacts"}

    mission: Slug
    contact: Slug | None = None
    kind: TouchpointKind
    at: Instant
    note: Annotated[str, AfterValidator(_text)] | None = None

    def identity(self) -> str:
        return touchpoint_key(self.mission, self.kind, self.at, self.contact)


RECORD_KINDS: dict[str, type[Record]] = {
    "clients": ClientRecord,
    "contacts": ContactRecord,
    "missions": MissionRecord,
    "invoices": InvoiceRecord,
    "issues": IssueRecord,
    "touchpoints": TouchpointRecord,
}
