"""``client_replied``: the client answered a nudge; the owner reads and answers them.

A reply the mailbox sync recorded (`MailKind.REPLY`) that answers a client
email of `invoice_due` or `deposit_due` gives the owner a calendar task, due
when the reply came (its Date, no later than when it was read), keyed by
the subject and the message: ``client_replied:<invoice or mission>:<message>``.
Meanwhile the subject's other client emails wait (`followupd.rules.replies`).

The task carries the message's subject, sender and date (in the owner's
zone), never its body: followupd reads headers only. It does not go when
its subject does (an invoice paid since, say): a client who wrote
"paid yesterday" still expects an answer. Its mission gone, it goes.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, aliased

from followupd.config.rule_options import ClientRepliedOptions
from followupd.domain.business_calendar import zone
from followupd.domain.states import Audience, Channel, MailKind
from followupd.rules.base import Evaluation, Intent, Rule
from followupd.rules.parties import to_owner
from followupd.rules.replies import MONEY_RULES, came_at
from followupd.store.chunks import chunked
from followupd.store.models import Client, Contact, FollowUp, MailMessage, Mission
from followupd.store.outbox.rows import PendingRow
from followupd.store.rows import record

STEP = "read-and-answer"
# the part of a message's fingerprint in a key: enough to tell replies of one subject apart
FINGERPRINT = 16


class ClientReplied(Rule[ClientRepliedOptions]):
    name = "client_replied"

    def evaluate(self, evaluation: Evaluation) -> Iterator[Intent]:
        start, end = evaluation.start, evaluation.end
        contact = aliased(Contact)
        query = (
            select(
                record(Mission),
                record(Client),
                record(contact, "contact"),
                FollowUp.rule,
                FollowUp.subject_key,
                FollowUp.step,
                MailMessage.fingerprint,
                MailMessage.date,
                MailMessage.created_at,
                MailMessage.sender,
                MailMessage.subject,
            )
            .join(FollowUp, FollowUp.key == MailMessage.followup_key)
            .join(Mission, FollowUp.mission_id == Mission.id)
            .join(Client, Mission.client_id == Client.id)
            .outerjoin(contact, FollowUp.contact_id == contact.id)
            .where(
                evaluation.owns(Mission.owner),
                MailMessage.kind == MailKind.REPLY,
                FollowUp.audience == Audience.CLIENT,
                FollowUp.channel == Channel.EMAIL,
                FollowUp.rule.in_(MONEY_RULES),
                MailMessage.created_at >= start,
                or_(MailMessage.date.is_(None), MailMessage.date >= start),
            )
        )
        tz = zone(evaluation.owner.timezone)
        for found in evaluation.session.execute(query):
            mission, client, who = found[0], found[1], found[2]
            entry = evaluation.whose(mission.owner)
            owner = entry.person
            replied = came_at(found.date, found.created_at)
            if not start <= replied <= end:
                continue
            party = to_owner(owner, client.country)
            values = {
                "mission": mission,
                "client": client,
                "contact": who,
                "owner": owner,
                "answered": {"rule": found.rule, "subject": found.subject_key, "step": found.step},
                "reply": {
                    "subject": found.subject or "",
                    "sender": found.sender or "",
                    "at": replied.astimezone(tz),
                },
                "step": STEP,
            }
            yield self.intent(
                party,
                replied,
                key=f"{self.name}:{found.subject_key}:{found.fingerprint[:FINGERPRINT]}",
                step=STEP,
                subject_key=found.subject_key,
                subject=evaluation.templates.subject(party.language, self.name, STEP, values),
                mission_id=mission.id,
                contact_id=who.id if who else None,
                owner=entry.key,
            )

    def vanished(self, session: Session, pending: Sequence[PendingRow]) -> dict[str, str]:
        ids = sorted({row.mission_id for row in pending if row.mission_id is not None})
        there: set[int] = set()
        for chunk in chunked(ids):
            there.update(session.scalars(select(Mission.id).where(Mission.id.in_(chunk))))
        return {
            row.key: f"the mission of {row.subject_key} no longer exists"
            for row in pending
            if row.mission_id is None or row.mission_id not in there
        }
