"""Reading the messages of the folder selected: header facts by UID, a bounce's report parts.

Only BODY.PEEK is fetched (the folder is EXAMINEd besides), so nothing is
marked \\Seen. Each message gives its header fields (`HEADER_FIELDS`) and
INTERNALDATE; a message whose header says it is a delivery report gives its
BODYSTRUCTURE too, then the delivery-status part and the returned header,
each cut at `MAX_PART_BYTES`: never a body, never an attachment.

The header fields' answer is read by `header_fetch`, quicker than
imapclient reads it. A FETCH the server refuses (NO) or imapclient cannot parse fails for all the
UIDs it asked for: the UIDs are split in halves and fetched again until the
message at fault is alone, and skipped with the reason. A message gone since
the UIDs were listed (expunged by another client) is absent from the answer
and left out silently.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientAbortError, IMAPClientError

from followupd.sources.imap.dsn import Bounce, delivery_status, report_parts
from followupd.sources.imap.header_fetch import fetch_header_fields
from followupd.sources.imap.headers import HEADER_FIELDS, MessageFacts, message_facts

HEADERS_ITEM = f"BODY.PEEK[HEADER.FIELDS ({' '.join(HEADER_FIELDS).upper()})]"
HEADERS_FETCH = (HEADERS_ITEM, "INTERNALDATE")  # what a message is read by
HEADERS_KEY = b"BODY[HEADER.FIELDS"  # how the server names what HEADERS_ITEM asked for
MAX_PART_BYTES = 64 * 1024  # of a report's status part and returned header (what dsn reads)
# what a FETCH raises that is about the messages asked for, not the connection
_UNREADABLE = (IMAPClientError, ValueError, TypeError, IndexError, KeyError, AttributeError)

Skip = Callable[[int, str], None]  # told (UID, reason) for each message left out


@dataclass(frozen=True)
class FetchedMessage:
    """One message's header facts as read, and what its report says if it is a bounce."""

    uid: int
    facts: MessageFacts
    arrived: datetime | None  # INTERNALDATE: when the server got it
    bounce: Bounce | None = None


def read_messages(client: IMAPClient, uids: Sequence[int], skip: Skip) -> list[FetchedMessage]:
    """The messages of `uids` in the selected folder, in UID order; those unreadable skipped."""
    fetched = fetch_each(client, uids, HEADERS_FETCH, skip)
    found: list[FetchedMessage] = []
    for uid in sorted(fetched):
        data = fetched[uid]
        header = _item(data, HEADERS_KEY)
        if not isinstance(header, bytes):
            skip(uid, "the server gave no header for it")
            continue
        facts = message_facts(header)
        if facts.message_id is None and facts.date is None and facts.sender is None:
            skip(uid, f"no Message-ID, Date or From could be read ({facts.problem or 'none'})")
            continue
        arrived = data.get(b"INTERNALDATE")
        found.append(FetchedMessage(uid, facts, arrived if isinstance(arrived, datetime) else None))
    reports = [message.uid for message in found if message.facts.report]
    bounces = _bounces(client, reports, skip) if reports else {}
    return [
        FetchedMessage(m.uid, m.facts, m.arrived, bounces.get(m.uid)) if m.uid in bounces else m
        for m in found
    ]


def fetch_each(
    client: IMAPClient, uids: Sequence[int], items: Sequence[str], skip: Skip
) -> dict[int, Mapping[bytes, Any]]:
    """FETCH `items` of `uids`; a failure is narrowed down by halves to the UIDs at fault.

    A lost connection is no message's fault: IMAPClientAbortError and OSError
    are raised as they come.
    """
    if not uids:
        return {}
    try:
        answer: Mapping[int, Mapping[bytes, Any]] = (
            fetch_header_fields(client, uids, items)
            if tuple(items) == HEADERS_FETCH
            else client.fetch(list(uids), list(items))
        )
    except IMAPClientAbortError:
        raise
    except _UNREADABLE as error:
        if len(uids) == 1:
            skip(uids[0], f"its FETCH failed: {_error_line(error)}")
            return {}
        half = len(uids) // 2
        return fetch_each(client, uids[:half], items, skip) | fetch_each(
            client, uids[half:], items, skip
        )
    return {uid: data for uid, data in answer.items() if isinstance(data, Mapping)}


def _bounces(client: IMAPClient, uids: Sequence[int], skip: Skip) -> dict[int, Bounce]:
    """The bounces among delivery reports: their structure, then two small parts each."""
    structures = fetch_each(client, uids, ["BODYSTRUCTURE"], skip)
    found: dict[int, Bounce] = {}
    for uid in sorted(structures):
        parts = report_parts(structures[uid].get(b"BODYSTRUCTURE"))
        if parts is None:  # a report in prose (qmail), or no delivery status in it
            continue
        sections = [parts.status] + ([parts.returned] if parts.returned else [])
        items = [f"BODY.PEEK[{section}]<0.{MAX_PART_BYTES}>" for section in sections]
        data = fetch_each(client, [uid], items, skip).get(uid)
        if data is None:
            continue
        status = _item(data, f"BODY[{parts.status}]".encode())
        returned = _item(data, f"BODY[{parts.returned}]".encode()) if parts.returned else None
        if not isinstance(status, bytes):
            continue
        bounce = delivery_status(status, returned if isinstance(returned, bytes) else None)
        if bounce is not None:
            found[uid] = bounce
    return found


def _item(data: Mapping[bytes, Any], prefix: bytes) -> object:
    """The value whose key starts with `prefix`: ``BODY[2]<0>`` for ``BODY[2]``, say."""
    for key, value in data.items():
        if isinstance(key, bytes) and key.upper().startswith(prefix.upper()):
            rest = key[len(prefix) :]
            if not rest or prefix.endswith(b"FIELDS") or rest.startswith(b"<"):
                return value
    return None


def _error_line(error: BaseException) -> str:
    return " ".join(str(error).split())[:200] or type(error).__name__
