"""Column types that behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, DateTime
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

from followupd.domain.payments import Payment


class UTCDateTime(TypeDecorator[datetime]):
    """An aware datetime, stored in UTC, read back aware in UTC.

    SQLite has no time zone type, so the UTC value is stored without offset
    and the offset restored on the way out. A naive datetime is refused: every
    instant in followupd carries its zone.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: an instant needs a time zone")
        value = value.astimezone(UTC)
        return value if dialect.name == "postgresql" else value.replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Payments(TypeDecorator[tuple[Payment, ...]]):
    """An invoice's part payments, as a JSON list of ``{"on": date, "amount": "decimal"}``.

    The amount is kept as a string: a JSON number would come back a float.
    """

    impl = JSON
    cache_ok = True

    def process_bind_param(self, value: Sequence[Payment] | None, dialect: Dialect) -> Any:
        return [
            {"on": payment.on.isoformat(), "amount": str(payment.amount)}
            for payment in sorted(value or ())
        ]

    def process_result_value(self, value: Any, dialect: Dialect) -> tuple[Payment, ...]:
        return tuple(
            Payment(date.fromisoformat(item["on"]), Decimal(item["amount"])) for item in value or ()
        )
