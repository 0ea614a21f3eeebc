"""Who a follow-up goes to, and so in which time zone, language and holidays.

A client's language, zone and country default to the owner's; a contact's
language to its client's. Reminders to the owner are placed in the owner's
zone, on days that are working days for both the owner and the client.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import NamedTuple
from zoneinfo import ZoneInfo

from followupd.config.owners import Owner
from followupd.domain.business_calendar import zone
from followupd.domain.states import Audience, Channel, MissionStatus
from followupd.rules.promises import PromisePause
from followupd.rules.replies import ReplyPause
from followupd.store.models import Client, Contact, Mission


@dataclass(frozen=True)
class Party:
    audience: Audience
    channel: Channel
    recipient: str | None
    language: str
    tz: ZoneInfo
    countries: tuple[str, ...]


@lru_cache(maxsize=1024)
def to_owner(owner: Owner, client_country: str | None) -> Party:
    countries = tuple(dict.fromkeys((owner.country, client_country or owner.country)))
    return Party(
        Audience.OWNER, Channel.CALENDAR, None, owner.language, zone(owner.timezone), countries
    )


def to_owner_by_email(owner: Owner, client_country: str | None) -> Party:
    """A reminder to the owner that goes by email as well as in the calendar."""
    task = to_owner(owner, client_country)
    return Party(Audience.OWNER, Channel.EMAIL, owner.email, task.language, task.tz, task.countries)


@lru_cache(maxsize=1024)  # the steps of one invoice, the invoices of one contact, in a row
def to_client(
    owner: Owner,
    email: str | None,
    contact_language: str | None,
    client_language: str | None,
    client_timezone: str | None,
    client_country: str | None,
) -> Party:
    return Party(
        Audience.CLIENT,
        Channel.EMAIL,
        email,
        contact_language or client_language or owner.language,
        zone(client_timezone or owner.timezone),
        (client_country or owner.country,),
    )


class Route(NamedTuple):
    """Where one step of a money rule goes, under which key and template, from which day."""

    party: Party
    key: str
    template: str
    nominal: date


def route_money_step(
    owner: Owner, audience: Audience, key: str, step: str, nominal: date, mission: Mission,
    client: Client, contact: Contact | None, replied: ReplyPause | None = None,
    promised: PromisePause | None = None,
) -> Route:  # fmt: skip
    """Route a step of a money rule (invoice, deposit).

    An owner step is a calendar task. A client step is an email to the
    mission's contact, delayed by the mission's pause, and, when it falls
    between the client's reply to a nudge of its subject and the end of the
    wait that reply started (`replied`), moved to that end; it becomes a call
    task for the owner (key suffix ``:call``) while the mission is disputed,
    since money talk in writing hardens a dispute, or when the contact has no
    email. A client step of an invoice the client promised to pay is moved
    past the promise (`promised`, `followupd.rules.promises`).
    """
    if audience == Audience.OWNER:
        return Route(to_owner(owner, client.country), key, step, nominal)
    if mission.status == MissionStatus.DISPUTED or contact is None or not contact.email:
        return Route(to_owner(owner, client.country), f"{key}:call", "call", nominal)
    party = to_client(owner, contact.email, contact.language, client.language,
                      client.timezone, client.country)  # fmt: skip
    if promised is not None:
        nominal = promised.moved(nominal)
    if replied is not None and replied.replied_on <= nominal < replied.until:
        nominal = replied.until
    if mission.paused_until is not None:
        nominal = max(nominal, mission.paused_until)
    return Route(party, key, step, nominal)
