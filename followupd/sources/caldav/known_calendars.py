"""What the last sync found of an account's calendars: where they are, by the config's names.

Written after a sync through the caldav library found every calendar of an
account (but a write calendar not made yet) and synced them without a
failure; forgotten after one with a failure (a name two calendars answer
to, say), so that the next sync looks the calendars up through the library
again and says the same. With it, and each calendar's token, a sync lists
the calendars by one plain request and, when the listing says the same,
asks them directly (followupd.sources.caldav.calendar_access).

Kept in ``sync_state``, one row an account (its URL and username), as
``{"home": URL, "calendars": {name: URL or null}}``: `home` is the
collection that holds the calendars, null a write calendar not made yet.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from followupd.config.accounts import CaldavAccount
from followupd.store.models import SyncState
from followupd.store.upserts import insert_of

KNOWN = "caldav-calendars:"  # + the account's URL and username, as a JSON list


@dataclass(frozen=True)
class Known:
    home: str  # the URL of the collection holding the calendars
    calendars: dict[str, str | None]  # name -> URL; None: a write calendar not made yet

    @staticmethod
    def of(calendars: dict[str, str | None]) -> Known | None:
        """What to remember of `calendars`: None unless those found have one parent."""
        parents = {url.rstrip("/").rsplit("/", 1)[0] + "/" for url in calendars.values() if url}
        return Known(parents.pop(), calendars) if len(parents) == 1 else None


def source(account: CaldavAccount) -> str:
    return KNOWN + json.dumps([account.url, account.username])


def recall(session: Session, account: CaldavAccount) -> Known | None:
    """What the last sync found of `account`'s calendars; None when not known."""
    text = session.scalar(select(SyncState.token).where(SyncState.source == source(account)))
    try:
        stored = json.loads(text or "null")
        calendars = {str(name): url and str(url) for name, url in stored["calendars"].items()}
        return Known(str(stored["home"]), calendars)
    except (ValueError, TypeError, KeyError, AttributeError):  # none, or another version's
        return None


def remember(session: Session, account: CaldavAccount, known: Known, at: datetime) -> None:
    """One statement: instances syncing together each write it, neither fails."""
    text = json.dumps({"home": known.home, "calendars": dict(sorted(known.calendars.items()))})
    row = {"source": source(account), "token": text, "updated_at": at}
    upsert = insert_of(session)(SyncState).values(row)
    session.execute(upsert.on_conflict_do_update(index_elements=["source"], set_=row))


def forget(session: Session, account: CaldavAccount) -> None:
    session.execute(delete(SyncState).where(SyncState.source == source(account)))


def forget_all_but(session: Session, accounts: Iterable[CaldavAccount]) -> None:
    """What is known of accounts no longer in the config."""
    kept = [source(account) for account in accounts]
    session.execute(
        delete(SyncState).where(SyncState.source.startswith(KNOWN), SyncState.source.not_in(kept))
    )
