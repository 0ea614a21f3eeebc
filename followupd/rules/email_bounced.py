"""``email_bounced``: a client email of followupd bounced; the owner fixes the address.

The mailbox sync records a delivery status notification (RFC 3464) of a
followupd message as a bounce (`MailKind.BOUNCE`) naming the follow-up; that
follow-up is marked `failed` (`followupd.store.outbox.bounces`), and this
rule gives the owner a calendar task, due when the notification came, to
fix the contact's address. One task per contact and address that bounced
(``email_bounced:<contact>:<address digest>``): the next nudges to the same
wrong address bounce too, and make no second task. The task goes once the
contact's address is another one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, aliased

from followupd.config.rule_options import EmailBouncedOptions
from followupd.domain.business_calendar import zone
from followupd.domain.states import Audience, Channel, MailKind
from followupd.rules.base import Evaluation, Intent, Rule
from followupd.rules.parties import to_owner
from followupd.rules.replies import came_at
from followupd.store.chunks import chunked
from followupd.store.models import Client, Contact, FollowUp, MailMessage, Mission
from followupd.store.outbox.rows import PendingRow
from followupd.store.rows import record

STEP = "fix-address"


def address_digest(address: str) -> str:
    """What stands for an address in a key: short, and the same whatever its case."""
    return hashlib.sha256(address.strip().lower().encode("utf-8")).hexdigest()[:12]


class EmailBounced(Rule[EmailBouncedOptions]):
    name = "email_bounced"

    def evaluate(self, evaluation: Evaluation) -> Iterator[Intent]:
        start, end = evaluation.start, evaluation.end
        contact = aliased(Contact)
        query = (
            select(
                record(contact, "contact"),
                record(Client),
                record(Mission),
                FollowUp.recipient,
                FollowUp.subject.label("bounced_subject"),
                FollowUp.sent_at,
                FollowUp.owner.label("bounced_owner"),
                MailMessage.date,
                MailMessage.created_at,
                MailMessage.delivery_status,
                MailMessage.diagnostic,
            )
            .join(FollowUp, FollowUp.key == MailMessage.followup_key)
            .join(contact, FollowUp.contact_id == contact.id)
            .join(Client, contact.client_id == Client.id)
            .outerjoin(Mission, FollowUp.mission_id == Mission.id)
            .where(
                evaluation.owns(FollowUp.owner),
                MailMessage.kind == MailKind.BOUNCE,
                FollowUp.audience == Audience.CLIENT,
                FollowUp.channel == Channel.EMAIL,
                FollowUp.recipient.is_not(None),
                MailMessage.created_at >= start,
                or_(MailMessage.date.is_(None), MailMessage.date >= start),
            )
        )
        tz = zone(evaluation.owner.timezone)
        made: set[str] = set()
        for found in evaluation.session.execute(query):
            who, client, mission = found[0], found[1], found[2]
            bounced = came_at(found.date, found.created_at)
            address = found.recipient or ""
            key = f"{self.name}:{who.key}:{address_digest(address)}"
            if not start <= bounced <= end or key in made:
                continue
            made.add(key)
            entry = evaluation.whose(found.bounced_owner)
            owner = entry.person
            party = to_owner(owner, client.country)
            values = {
                "contact": who,
                "client": client,
                "mission": mission,
                "owner": owner,
                "bounce": {
                    "address": address,
                    "status": found.delivery_status or "",
                    "diagnostic": found.diagnostic or "",
                    "at": bounced.astimezone(tz),
                    "subject": found.bounced_subject,
                },
                "step": STEP,
            }
            yield self.intent(
                party,
                bounced,
                key=key,
                step=STEP,
                subject_key=who.key,
                subject=evaluation.templates.subject(party.language, self.name, STEP, values),
                mission_id=mission.id if mission else None,
                contact_id=who.id,
                owner=entry.key,
            )

    def vanished(self, session: Session, pending: Sequence[PendingRow]) -> dict[str, str]:
        ids = sorted({row.contact_id for row in pending if row.contact_id is not None})
        emails: dict[int, tuple[str, str | None]] = {}
        for chunk in chunked(ids):
            query = select(Contact.id, Contact.name, Contact.email).where(Contact.id.in_(chunk))
            emails.update({row.id: (row.name, row.email) for row in session.execute(query)})
        reasons: dict[str, str] = {}
        for row in pending:
            found = emails.get(row.contact_id) if row.contact_id is not None else None
            if found is None:
                reasons[row.key] = f"contact {row.subject_key} no longer exists"
                continue
            name, email = found
            if not email:
                reasons[row.key] = f"{name} has no email address any more"
            elif address_digest(email) != row.key.rsplit(":", 1)[-1]:
                reasons[row.key] = f"the address of {name} is now {email}"
        return reasons
