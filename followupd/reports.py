"""The JSON shape of `plan --json` and `tick --json` (SPEC.md section 1).

One object ``{"now": T, "followups": [F, ...]}``; times are ISO 8601 with the
offset of the owner's time zone.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from followupd.rules.base import Intent
from followupd.store.chunks import chunked
from followupd.store.models import Contact, FollowUp, Mission


def _keys(
    session: Session, model: type[Mission | Contact], ids: Iterable[int | None]
) -> dict[int, str]:
    wanted = sorted({i for i in ids if i is not None})
    found: dict[int, str] = {}
    for chunk in chunked(wanted):
        for row_id, key in session.execute(select(model.id, model.key).where(model.id.in_(chunk))):
            found[row_id] = key
    return found


def intents_json(
    session: Session, intents: Sequence[Intent], zone: ZoneInfo
) -> list[dict[str, Any]]:
    missions = _keys(session, Mission, (i.mission_id for i in intents))
    contacts = _keys(session, Contact, (i.contact_id for i in intents))
    return [
        {
            "key": intent.key,
            "rule": intent.rule,
            "mission": missions.get(intent.mission_id) if intent.mission_id else None,
            "contact": contacts.get(intent.contact_id) if intent.contact_id else None,
            "audience": intent.audience,
            "channel": intent.channel,
            "recipient": intent.recipient,
            "due_at": intent.due_at.astimezone(zone).isoformat(),
            "subject": str(intent.subject),
        }
        for intent in intents
    ]


def followups_json(
    session: Session, rows: Sequence[FollowUp], zone: ZoneInfo
) -> list[dict[str, Any]]:
    missions = _keys(session, Mission, (row.mission_id for row in rows))
    contacts = _keys(session, Contact, (row.contact_id for row in rows))
    shown = []
    for row in rows:
        item: dict[str, Any] = {
            "key": row.key,
            "rule": row.rule,
            "mission": missions.get(row.mission_id) if row.mission_id else None,
            "contact": contacts.get(row.contact_id) if row.contact_id else None,
            "audience": row.audience,
            "channel": row.channel,
            "recipient": row.recipient,
            "due_at": row.due_at.astimezone(zone).isoformat(),
            "subject": row.subject,
            "state": SPEC_STATES.get(row.state, row.state),
            "late": row.late,
        }
        if row.state != "sent":
            item["reason"] = row.reason or _default_reason(row)
        shown.append(item)
    return shown


# SPEC.md section 1 names six states; the outbox's finer ones map onto them
# (`followupd outbox` shows the precise state): a dead follow-up has failed for
# good after its retries, one being sent is still pending.
SPEC_STATES = {"dead": "failed", "sending": "pending"}


def _default_reason(row: FollowUp) -> str:
    if row.state == "pending" and row.last_error:
        return f"will retry: {row.last_error}"
    if row.state == "pending":
        return "waiting to be delivered"
    return row.last_error or row.state


def render(now: datetime, zone: ZoneInfo, followups: list[dict[str, Any]]) -> str:
    document = {"now": now.astimezone(zone).isoformat(), "followups": followups}
    return json.dumps(document, indent=2, ensure_ascii=False)
