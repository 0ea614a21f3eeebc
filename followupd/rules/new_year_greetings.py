"""``new_year_greetings``: every January, a personal greeting to each client contact.

A greeting is a person-to-person gesture, apart from the contract (source 000):
it goes to every contact with ``greetings = true`` and an email address, of a
client that had a mission within the last ``lookback_months`` (24) months,
whatever the mission's status: disputed, on hold, closed and proposed
missions count, and neither a dispute nor ``paused_until`` holds it back. A
mission counts for the greetings of year Y when it started on or before 1
January Y and has no end date or ended on or after 1 January Y minus
``lookback_months`` months.

One greeting per contact and year, however many missions: the key is
``new_year_greetings:<contact>:<year>``. It is due on the first working day of
January in the client's country, at the opening of the send window in the
client's zone, in the contact's language (else the client's, else the
owner's). It expires at the end of January ``last_day`` (31) in the client's
zone, so a greeting missed in January is never sent in February; in a year
where the first working day comes after ``last_day``, there is none.

With several owners, the greeting comes from the owner of the client's most
recent mission (the latest start) among those that count: the consultant the
client knows best now.

The templates get the contact and the client (rows of their tables' columns,
by the ORM attribute names: in January a pass loads every contact), the owner
and the year, and no mission or invoice: a greeting never talks about money.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ScalarSelect, or_, select
from sqlalchemy.orm import Session

from followupd.config.rule_options import NewYearGreetingsOptions
from followupd.rules.base import Evaluation, Intent, Rule
from followupd.rules.parties import to_client
from followupd.store.chunks import chunked
from followupd.store.models import Client, Contact, Mission
from followupd.store.outbox.rows import PendingRow

STEP = "greetings"


def months_before_new_year(year: int, months: int) -> date:
    """1 January `year` minus `months` calendar months."""
    back_year, back_month = divmod(year * 12 - months, 12)
    return date(back_year, back_month + 1, 1)


def greeting_years(start: datetime, end: datetime) -> list[int]:
    """The years whose greetings may fall in ``[start, end]``, in any time zone."""
    first, last = (start - timedelta(days=1)).date(), (end + timedelta(days=1)).date()
    return [
        year
        for year in range(first.year, last.year + 2)
        if first <= date(year, 1, 31) and date(year, 1, 1) <= last
    ]


def latest_owner(client_id: Any, counts: tuple[Any, ...]) -> ScalarSelect[str | None]:
    """The owner of the client's most recent mission among those that count (correlated)."""
    return (
        select(Mission.owner)
        .where(Mission.client_id == client_id, *counts)
        .order_by(Mission.start.desc(), Mission.id.desc())
        .limit(1)
        .scalar_subquery()
    )


class NewYearGreetings(Rule[NewYearGreetingsOptions]):
    name = "new_year_greetings"

    def evaluate(self, evaluation: Evaluation) -> Iterator[Intent]:
        for year in greeting_years(evaluation.start, evaluation.end):
            yield from self._greetings(evaluation, year)

    def _greetings(self, evaluation: Evaluation, year: int) -> Iterator[Intent]:
        new_year = date(year, 1, 1)
        since = months_before_new_year(year, self.options.lookback_months)
        counts = (Mission.start <= new_year, or_(Mission.end.is_(None), Mission.end >= since))
        had_mission = select(Mission.client_id).where(*counts).distinct().subquery()
        session = evaluation.session
        # Plain rows (the tables' columns, by name) rather than ORM objects: in
        # January this is every contact of the store, and rows cost far less.
        latest = latest_owner(Client.id, counts)
        clients = {
            client.id: client
            for client in session.execute(
                select(*Client.__table__.c, latest.label("greeting_owner"))
                .join(had_mission, had_mission.c.client_id == Client.id)
                .where(evaluation.owns(latest))
            )
        }
        if not clients:
            return
        contacts = session.execute(
            select(*Contact.__table__.c)
            .join(had_mission, had_mission.c.client_id == Contact.client_id)
            .where(
                Contact.greetings.is_(True),
                Contact.email.is_not(None),
                Contact.email != "",
                evaluation.owns(latest_owner(Contact.client_id, counts)),
            )
        )
        templates = evaluation.templates
        last_day = date(year, 1, self.options.last_day)
        when: dict[tuple[ZoneInfo, tuple[str, ...]], tuple[datetime, datetime] | None] = {}
        for contact in contacts:
            client = clients[contact.client_id]
            entry = evaluation.whose(client.greeting_owner)
            owner = entry.person
            party = to_client(owner, contact.email, contact.language, client.language,
                              client.timezone, client.country)  # fmt: skip
            place = (party.tz, party.countries)
            if place not in when:
                when[place] = self._due(evaluation, new_year, last_day, *place)
            due = when[place]
            if due is None:
                continue
            due_at, expires_at = due
            values = {"contact": contact, "client": client, "owner": owner, "year": year}
            key = f"{self.name}:{contact.key}:{year}"
            yield Intent(
                key=key,
                rule=self.name,
                step=STEP,
                subject_key=contact.key,
                audience=party.audience,
                channel=party.channel,
                recipient=party.recipient,
                language=party.language,
                subject=templates.subject(party.language, self.name, STEP, values),
                due_at=due_at,
                expires_at=expires_at,
                contact_id=contact.id,
                owner=entry.key,
                concern=self.concern_of(key, contact.key),
            )

    @staticmethod
    def _due(
        evaluation: Evaluation,
        new_year: date,
        last_day: date,
        tz: ZoneInfo,
        countries: tuple[str, ...],
    ) -> tuple[datetime, datetime] | None:
        """When greetings to `tz` and `countries` are due and expire, if in the window."""
        due_at = evaluation.calendar.due_at(new_year, 0, tz, countries)
        expires_at = datetime.combine(last_day, time(23, 59, 59), tzinfo=tz).astimezone(UTC)
        if not evaluation.start <= due_at <= evaluation.end or due_at > expires_at:
            return None
        return due_at, expires_at

    @property
    def grace(self) -> timedelta:
        """Greetings may go out until January's last_day, whenever they were due."""
        return timedelta(days=self.options.last_day)

    def vanished(self, session: Session, pending: Sequence[PendingRow]) -> dict[str, str]:
        keys = sorted({row.subject_key for row in pending})
        state: dict[str, tuple[bool, str | None]] = {}
        for chunk in chunked(keys):
            for key, greetings, email in session.execute(
                select(Contact.key, Contact.greetings, Contact.email).where(Contact.key.in_(chunk))
            ):
                state[key] = (greetings, email)
        reasons: dict[str, str] = {}
        for row in pending:
            found = state.get(row.subject_key)
            if found is None:
                reasons[row.key] = f"contact {row.subject_key} no longer exists"
            elif not found[0]:
                reasons[row.key] = f"contact {row.subject_key} asked for no greetings"
            elif not found[1]:
                reasons[row.key] = f"contact {row.subject_key} has no email address"
        return reasons
