"""The FETCH of header fields, its answer read without imapclient's general parser when it can be.

imapclient reads a FETCH answer a byte at a time, in Python: for the header
fields of thousands of messages, most of a first scan's reading goes there,
mostly in the field names the server repeats for every message
(``BODY[HEADER.FIELDS (MESSAGE-ID DATE FROM ...)]``). Servers answer that
FETCH in one everyday shape: per message, ``n (`` then UID, INTERNALDATE,
MODSEQ (with CONDSTORE) and the header fields as a literal, then ``)``.
`read_quickly` reads that shape with regular expressions and gives what
imapclient's `parse_fetch_response` gives for it; an answer with anything
else in it (another item, the header quoted or NIL, an escaped quote) is
left to `parse_fetch_response`, whole.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from imapclient import IMAPClient
from imapclient.datetime_util import parse_to_datetime
from imapclient.imapclient import join_message_ids, seq_to_parenstr_upper
from imapclient.response_parser import parse_fetch_response

# a message's line up to its literal: "12 (UID 40 INTERNALDATE "..." BODY[...] {488}"
_OPENING = re.compile(rb"(\d+) \((.*) \{(\d+)\}", re.DOTALL)
_ITEM = re.compile(
    rb"UID (?P<uid>\d+)"
    rb'|INTERNALDATE "(?P<date>[^"\\]*)"'
    rb"|MODSEQ \((?P<modseq>\d+)\)"
    rb"|(?P<fields>BODY\[HEADER\.FIELDS \([^()\[\]\"\\{}]*\)\])"
)


class _OtherShape(Exception):
    """The answer is not in the everyday shape: imapclient's parser reads it."""


def fetch_header_fields(
    client: IMAPClient, uids: Sequence[int], items: Sequence[str]
) -> dict[int, dict[bytes, Any]]:
    """``UID FETCH`` `items` of `uids`, as `IMAPClient.fetch` does and with its answer.

    Its errors are imapclient's: a NO raises IMAPClientError, a connection
    lost IMAPClientAbortError.
    """
    if not client.use_uid:
        return dict(client.fetch(list(uids), list(items)))
    imap = client._imap
    tag = imap._command("UID", "FETCH", join_message_ids(list(uids)), seq_to_parenstr_upper(items))
    typ, data = imap._command_complete("FETCH", tag)
    client._checkok("fetch", typ, data)
    _, data = imap._untagged_response(typ, data, "FETCH")
    parsed = read_quickly(data, client.normalise_times)
    if parsed is None:
        parsed = parse_fetch_response(data, client.normalise_times, True)
    return {uid: parsed[uid] for uid in uids if uid in parsed}  # unsolicited ones left out


def read_quickly(data: Sequence[Any], normalise_times: bool) -> dict[int, dict[bytes, Any]] | None:
    """imaplib's records of a FETCH answer as `parse_fetch_response` reads them, keyed by
    UID; None: not in the everyday shape (see the module)."""
    found: dict[int, dict[bytes, Any]] = {}
    try:
        records = iter(data)
        for record in records:
            if not (isinstance(record, tuple) and len(record) == 2):
                raise _OtherShape
            head, literal = record
            opening = _OPENING.fullmatch(head) if isinstance(head, bytes) else None
            if opening is None or not isinstance(literal, bytes):
                raise _OtherShape
            if int(opening[3]) != len(literal):
                raise _OtherShape
            message: dict[bytes, Any] = {b"SEQ": int(opening[1])}
            fields = _items(opening[2], message, normalise_times)
            if fields is None:
                raise _OtherShape
            message[fields] = literal
            closing = next(records, None)
            if not isinstance(closing, bytes) or not closing.endswith(b")"):
                raise _OtherShape
            if _items(closing[:-1].lstrip(b" "), message, normalise_times) is not None:
                raise _OtherShape
            uid = message.pop(b"UID", None)
            if uid is None or uid in found:
                raise _OtherShape
            found[uid] = message
    except _OtherShape:
        return None
    return found


def _items(text: bytes, message: dict[bytes, Any], normalise_times: bool) -> bytes | None:
    """Read `text`, items one space apart, into `message`; the header fields' name when
    `text` ends with it (their literal follows), else None."""
    position, fields = 0, None
    while position < len(text):
        if fields is not None:  # the header fields come last: their literal follows
            raise _OtherShape
        if position and text[position : position + 1] != b" ":
            raise _OtherShape
        item = _ITEM.match(text, position + 1 if position else 0)
        if item is None:
            raise _OtherShape
        position = item.end()
        if item["uid"] is not None:
            message[b"UID"] = int(item["uid"])
        elif item["date"] is not None:
            message[b"INTERNALDATE"] = _arrived(item["date"], normalise_times)
        elif item["modseq"] is not None:
            message[b"MODSEQ"] = (int(item["modseq"]),)
        else:
            fields = item["fields"].upper()
    return fields


def _arrived(value: bytes, normalise_times: bool) -> Any:
    """INTERNALDATE as imapclient gives it: None when it cannot be read."""
    try:
        return parse_to_datetime(value, normalise=normalise_times)
    except ValueError:
        return None
