"""Who a follow-up goes to, and so in which time zone, language and holidays.

A client's language, zone and country default to the owner's; a contact's
language to its client's. Reminders to the owner are placed in the owner's
zone, on days that are working days for both the owner and the client.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from zoneinfo import ZoneInfo

from followupd.clock import zone
from followupd.config import Owner


@dataclass(frozen=True)
class Party:
    audience: str  # owner | client
    channel: str  # email | calendar
    recipient: str | None
    language: str
    tz: ZoneInfo
    countries: tuple[str, ...]


@lru_cache(maxsize=1024)
def to_owner(owner: Owner, client_country: str | None) -> Party:
    countries = tuple(dict.fromkeys((owner.country, client_country or owner.country)))
    return Party("owner", "calendar", None, owner.language, zone(owner.timezone), countries)


def to_owner_by_email(owner: Owner, client_country: str | None) -> Party:
    """A reminder to the owner that goes by email as well as in the calendar."""
    task = to_owner(owner, client_country)
    return Party("owner", "email", owner.email, task.language, task.tz, task.countries)


def to_client(
    owner: Owner,
    email: str | None,
    contact_language: str | None,
    client_language: str | None,
    client_timezone: str | None,
    client_country: str | None,
) -> Party:
    return Party(
        "client",
        "email",
        email,
        contact_language or client_language or owner.language,
        zone(client_timezone or owner.timezone),
        (client_country or owner.country,),
    )
