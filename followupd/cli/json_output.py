"""The JSON shape of `plan --json` and `tick --json` (the README, "Commands").

One object ``{"now": T, "followups": [F, ...]}``; times are ISO 8601 with the
offset of the owner's time zone.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from followupd.config.settings import Settings
from followupd.domain.states import FollowUpState, PassAction
from followupd.rules import client_nudges
from followupd.rules.base import Intent
from followupd.store.chunks import chunked
from followupd.store.models import Contact, Mission
from followupd.store.outbox.rows import FollowUpRow


def _keys(
    session: Session, model: type[Mission | Contact], ids: Iterable[int | None]
) -> dict[int, str]:
    wanted = sorted({i for i in ids if i is not None})
    found: dict[int, str] = {}
    for chunk in chunked(wanted):
        for row_id, key in session.execute(select(model.id, model.key).where(model.id.in_(chunk))):
            found[row_id] = key
    return found


def _described(
    session: Session,
    items: Sequence[Intent] | Sequence[FollowUpRow],
    zone: ZoneInfo,
    settings: Settings,
) -> list[dict[str, Any]]:
    """The fields documented for every follow-up, for intents and outbox rows alike.

    `owner` is the key of the owner it is for (the first owner's for rows
    recorded before there were owners).
    """
    missions = _keys(session, Mission, (item.mission_id for item in items))
    contacts = _keys(session, Contact, (item.contact_id for item in items))
    return [
        {
            "key": item.key,
            "concern": item.concern or item.key,
            "rule": item.rule,
            "mission": missions.get(item.mission_id) if item.mission_id else None,
            "contact": contacts.get(item.contact_id) if item.contact_id else None,
            "audience": item.audience,
            "owner": settings.owner_for(item.owner).key,
            "channel": item.channel,
            "recipient": item.recipient,
            "due_at": item.due_at.astimezone(zone).isoformat(),
            "subject": str(item.subject),
        }
        for item in items
    ]


def intents_json(
    session: Session, intents: Sequence[Intent], zone: ZoneInfo, settings: Settings
) -> list[dict[str, Any]]:
    return _described(session, intents, zone, settings)


def followups_json(
    session: Session,
    rows: Sequence[FollowUpRow],
    zone: ZoneInfo,
    settings: Settings,
    actions: Mapping[str, PassAction],
    calendar_says: Mapping[str, str],
) -> list[dict[str, Any]]:
    """As `intents_json`, with each row's state, what the pass did to it, and, when not
    sent or when its calendar item says why it closed or what the user did to it
    (`calendar_says`, by key), the reason."""
    shown = _described(session, rows, zone, settings)
    together = _sent_together(rows)
    for item, row in zip(shown, rows, strict=True):
        if row.key in together:  # a client nudge grouped with other invoices' steps
            item["sent_with"] = together[row.key]
        item["state"] = README_STATES.get(row.state, row.state)
        item["action"] = actions[row.key]
        item["late"] = row.late
        if row.key in calendar_says:
            item["reason"] = calendar_says[row.key]
        elif row.state != FollowUpState.SENT:
            item["reason"] = row.reason or _default_reason(row)
    return shown


def _sent_together(rows: Sequence[FollowUpRow]) -> dict[str, list[str]]:
    """The client nudges sent in one email with others (group_by_client): key -> the others."""
    by_message: dict[str, list[str]] = {}
    for row in rows:
        if row.rule == client_nudges.RULE and row.state == FollowUpState.SENT and row.message_id:
            by_message.setdefault(row.message_id, []).append(row.key)
    return {
        key: sorted(other for other in keys if other != key)
        for keys in by_message.values()
        if len(keys) > 1
        for key in keys
    }


# the README's JSON output names fewer states than the outbox keeps (`followupd
# outbox` shows the precise one): a dead follow-up has failed for good after
# its retries, one being sent is still pending.
README_STATES = {
    FollowUpState.DEAD: FollowUpState.FAILED,
    FollowUpState.SENDING: FollowUpState.PENDING,
}


def _default_reason(row: FollowUpRow) -> str:
    if row.state == FollowUpState.PENDING and row.last_error:
        return f"will retry: {row.last_error}"
    if row.state == FollowUpState.PENDING:
        return "waiting to be delivered"
    return row.last_error or row.state


def render(now: datetime, zone: ZoneInfo, followups: list[dict[str, Any]]) -> str:
    document = {"now": now.astimezone(zone).isoformat(), "followups": followups}
    return json.dumps(document, indent=2, ensure_ascii=False)
