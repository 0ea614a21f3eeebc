"""`invoice letter`: the formal notice to pay of an invoice, as a PDF file.

The one the ``formal_notice`` rule recorded with the owner's task, the
latest; when none was recorded yet (or with ``--today``), one made now, as of today in the
owner's zone, by the rule's own code (`letter_for`), with the owner's
options (``[owners.rules.formal_notice]`` over ``[rules.formal_notice]``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from followupd.channels.letters import formal_notice_pdf
from followupd.channels.letters.files import file_bytes
from followupd.config.rule_options import FormalNoticeOptions
from followupd.config.settings import Settings
from followupd.domain.formal_notice import file_name
from followupd.domain.owner_scope import scope_of
from followupd.domain.states import MissionStatus
from followupd.errors import FollowupdError
from followupd.rules.formal_notice import FormalNoticeRule, Parties, letter_for
from followupd.store.attachments import latest
from followupd.store.models import Client, Contact, Invoice, Mission
from followupd.store.updates import not_found


@dataclass(frozen=True)
class LetterFile:
    name: str
    data: bytes
    source: str  # what it is: the recorded follow-up, or made today


def formal_notice_file(
    session: Session, settings: Settings, number: str, now: datetime, *, fresh: bool = False
) -> LetterFile:
    """The PDF of invoice `number`'s formal notice: the one recorded, else (or when `fresh`:
    after a dispute, a credit note) one made as of `now`.

    Raises NotFound for an unknown invoice, FollowupdError for a paid one, one
    of a disputed mission, or one with nothing to claim yet.
    """
    contact = aliased(Contact)
    found = session.execute(
        select(Invoice, Mission, Client, contact)
        .join(Mission, Invoice.mission_id == Mission.id)
        .join(Client, Mission.client_id == Client.id)
        .outerjoin(contact, Mission.contact_id == contact.id)
        .where(Invoice.number == number)
    ).first()
    if found is None:
        raise not_found(session, Invoice.number, number, f"no invoice numbered {number!r}")
    invoice, mission, client, who = found
    if invoice.paid is not None:
        raise FollowupdError(f"invoice {number} was paid on {invoice.paid}: no formal notice")
    if mission.status == MissionStatus.DISPUTED:  # as the rule: a dispute is for talking
        raise FollowupdError(
            f"invoice {number}: mission {mission.key} is disputed, no formal notice while it"
            " is; once settled, update the data file, then --today makes one as of today"
        )
    recorded = None if fresh else latest(session, FormalNoticeRule.name, number)
    if recorded is not None:
        key, stored = recorded
        try:
            data = file_bytes(stored)
        except Exception as error:  # say why, rather than a letter made as of another day
            raise FollowupdError(
                f"the formal notice recorded with the task {key} could not be made: {error!r}"
                " (--today makes one as of today)"
            ) from error
        return LetterFile(stored.name, data, f"recorded with the task {key}")
    entry = settings.owner_for(mission.owner)
    scope = scope_of(settings, entry.key)
    rule = FormalNoticeRule(settings.rules.formal_notice).for_owner(entry)
    options: FormalNoticeOptions = rule.options
    today: date = now.astimezone(ZoneInfo(entry.timezone)).date()
    if invoice.due >= today:
        raise FollowupdError(f"invoice {number} is due on {invoice.due}: it is not late yet")
    letter = letter_for(session, settings, scope.owner, scope.holds(Mission.owner), options,
                        Parties(invoice, mission, client, who), today)  # fmt: skip
    if letter is None:
        raise FollowupdError(f"invoice {number}: nothing is left to pay")
    return LetterFile(
        file_name(letter.language, number), formal_notice_pdf(letter), f"made as of {today}"
    )
