"""What delivery reads of the client emails sent to a contact: its threads, its day.

With ``group_by_client``, the client emails of ``invoice_due`` to one contact
are one email thread (those of `sent_to_contacts` of that rule, oldest first),
and at most one client email a day goes to a contact, whatever the rule (the
`sent_at`s tell when the last went).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import select
from sqlalchemy.orm import Session

from followupd.domain.states import Audience, Channel, FollowUpState
from followupd.store.chunks import chunked
from followupd.store.models import FollowUp


class SentEmail(NamedTuple):
    rule: str
    key: str
    step: str
    message_id: str | None
    sent_at: datetime | None


def sent_to_contacts(session: Session, contact_ids: Sequence[int]) -> dict[int, list[SentEmail]]:
    """The client emails sent to each of `contact_ids`, oldest first.

    Only the contacts are asked of the database, the rest is sorted out here: with
    another condition SQLite (no statistics) would rather walk the index of every
    sent row, or of the rule's, which grow with the retention, than the contacts'.
    """
    found: dict[int, list[SentEmail]] = {}
    wanted = [Audience.CLIENT, Channel.EMAIL, FollowUpState.SENT]  # audience, channel, state
    for chunk in chunked(sorted(set(contact_ids))):
        query = (
            select(
                FollowUp.contact_id,
                FollowUp.key,
                FollowUp.step,
                FollowUp.message_id,
                FollowUp.sent_at,
                FollowUp.rule,
                FollowUp.audience,
                FollowUp.channel,
                FollowUp.state,
            )
            .where(FollowUp.contact_id.in_(chunk))
            .order_by(FollowUp.sent_at, FollowUp.due_at, FollowUp.key)
        )
        for contact_id, key, step, message_id, sent_at, rule, *kind in session.execute(query):
            if kind == wanted:
                found.setdefault(contact_id or 0, []).append(
                    SentEmail(rule, key, step, message_id, sent_at)
                )
    return found
