"""Delivery status notifications (RFC 3464): which address failed, why, for which message.

A bounce is a multipart/report (RFC 6522) whose parts are a text for people, a
message/delivery-status part with one block of fields per recipient, and the
returned message (message/rfc822) or its header only (text/rfc822-headers). The
mailbox source reads none of it whole: report_parts finds in the BODYSTRUCTURE
which parts to fetch, and delivery_status reads the status part and the returned
header. Only a recipient whose Action is "failed" makes a bounce: "delayed" says
the server is still trying, "delivered", "relayed" and "expanded" that it is done.
Neither function raises, whatever the server or the sender's MTA wrote.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from followupd.sources.imap.headers import clean_text, mailbox_address, message_facts

MAX_STATUS_BYTES = 64 * 1024  # a status part read at most: a few hundred recipients' blocks
MAX_DIAGNOSTIC = 500  # characters kept of the remote server's answer
MAX_DEPTH = 8  # multiparts nested deeper than this are not searched for the report

STATUS_TYPES = ("message/delivery-status", "message/global-delivery-status")  # RFC 6533
# the returned header, fetched as BODY.PEEK[n]: the part is the header itself
HEADERS_TYPES = ("text/rfc822-headers", "message/global-headers")
# the returned message: its header only, BODY.PEEK[n.HEADER] (IMAP4rev1's part specifier
# applies to message/rfc822 parts; message/global, RFC 6533, is fetched whole as BODY[n])
MESSAGE_TYPES = ("message/rfc822",)
GLOBAL_MESSAGE_TYPES = ("message/global",)

_STATUS_CODE = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_FIELD = re.compile(r"([!-9;-~]+)[ \t]*:(.*)", re.DOTALL)  # RFC 5322 field name, colon
_XTEXT = re.compile(r"\\x\{([0-9A-Fa-f]{1,6})\}")  # RFC 6533's escaped utf-8 addresses
_BASE64 = re.compile(rb"[A-Za-z0-9+/=\s]+")


@dataclass(frozen=True)
class ReportParts:
    """Where a multipart/report keeps its delivery status and the returned header.

    Each is an IMAP section to fetch: BODY.PEEK[<status>] and BODY.PEEK[<returned>]
    (imapclient returns them under b"BODY[<section>]").
    """

    status: str  # the message/delivery-status part: "2", or "1.2" when nested
    returned: str | None  # "3.HEADER" for message/rfc822, "3" for text/rfc822-headers


@dataclass(frozen=True)
class Bounce:
    """The first failed recipient of a delivery status notification."""

    original_message_id: str | None  # the returned message's Message-ID
    recipient: str | None  # Final-Recipient (else Original-Recipient), lower case
    action: str  # "failed"
    status: str  # RFC 3463 code, like "5.1.1"; "5.0.0" when the report gives none
    diagnostic: str | None  # the remote server's answer, like "550 5.1.1 user unknown"


def report_parts(bodystructure: object) -> ReportParts | None:
    """The sections holding the delivery status and the returned header, or None.

    `bodystructure` is what imapclient returns for BODYSTRUCTURE (a BodyData: a
    multipart is ``([part, ...], subtype, params, ...)``, a single part is ``(type,
    subtype, params, id, description, encoding, size, ...)``, strings as bytes); plain
    tuples and lists of the same shape do as well. The first multipart/report found
    counts (a bounce forwarded inside a multipart/mixed is found too); None when
    there is none, or it has no delivery-status part.
    """
    try:
        for section, node in _multiparts(bodystructure, "", 0):
            parts = node[0]
            if _atom(node[1]) == "report" and isinstance(parts, (list, tuple)):
                return _report_of(parts, section)
    except (TypeError, ValueError, IndexError, RecursionError):
        return None
    return None


def delivery_status(status_part: bytes, returned_headers: bytes | None) -> Bounce | None:
    """The bounce a delivery-status part reports: its first failed recipient, or None.

    `status_part` is the message/delivery-status part as fetched, `returned_headers`
    the returned message's header (or None when the report holds none). None when
    no recipient failed (a delay, a success notice) or the part is no DSN at all.
    """
    blocks = _blocks(_decoded(status_part[:MAX_STATUS_BYTES]))
    if not any("action" in block for block in blocks):
        blocks = _blocks(_decoded(_base64_decoded(status_part[:MAX_STATUS_BYTES])))
    for block in blocks:
        action = block.get("action", "").strip().lower().split(" ", 1)[0]
        if action != "failed":
            continue
        diagnostic = _diagnostic(block.get("diagnostic-code", ""))
        return Bounce(
            original_message_id=(
                message_facts(returned_headers).message_id if returned_headers else None
            ),
            recipient=_recipient(block.get("final-recipient"))
            or _recipient(block.get("original-recipient")),
            action=action,
            status=_status(block.get("status", "")) or _status(diagnostic or "") or "5.0.0",
            diagnostic=diagnostic,
        )
    return None


# -- the body structure -------------------------------------------------------------------


def _multiparts(node: object, section: str, depth: int) -> Iterator[tuple[str, Sequence[object]]]:
    """Each multipart in the structure with its section ("" for the message), outer first."""
    if depth > MAX_DEPTH or not isinstance(node, Sequence) or isinstance(node, (bytes, str)):
        return
    if len(node) < 2 or not _is_parts(node[0]):
        return
    yield section, node
    parts = node[0]
    for number, part in enumerate(parts if isinstance(parts, (list, tuple)) else (), start=1):
        yield from _multiparts(part, f"{section}.{number}" if section else str(number), depth + 1)


def _report_of(parts: Sequence[object], section: str) -> ReportParts | None:
    """The status and returned-header sections among a multipart/report's parts."""
    status = returned = None
    for number, part in enumerate(parts, start=1):
        if not isinstance(part, Sequence) or isinstance(part, (bytes, str)) or len(part) < 2:
            continue
        if _is_parts(part[0]):
            continue
        media_type = f"{_atom(part[0])}/{_atom(part[1])}"
        where = f"{section}.{number}" if section else str(number)
        if media_type in STATUS_TYPES and status is None:
            status = where
        elif returned is None and media_type in HEADERS_TYPES + GLOBAL_MESSAGE_TYPES:
            returned = where
        elif returned is None and media_type in MESSAGE_TYPES:
            returned = f"{where}.HEADER"
    return ReportParts(status=status, returned=returned) if status else None


def _is_parts(item: object) -> bool:
    """Whether a structure's first item is its list of parts (so the node is a multipart)."""
    return isinstance(item, (list, tuple))


def _atom(atom: object) -> str:
    """A string of the structure (a media type, a subtype) in lower case; "" if none."""
    if isinstance(atom, bytes):
        return _decoded(atom).strip().lower()
    return atom.strip().lower() if isinstance(atom, str) else ""


def _decoded(data: bytes) -> str:
    """Bytes as text: UTF-8 (RFC 6533 allows it), else Windows-1252."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", "replace")


# -- the delivery-status part -------------------------------------------------------------


def _blocks(text: str) -> list[dict[str, str]]:
    """The blocks of fields (per message, then per recipient), each field's first value."""
    blocks: list[dict[str, str]] = []
    current: dict[str, str] = {}
    last: str | None = None
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if not line.strip():
            if current:
                blocks.append(current)
            current, last = {}, None
        elif line[0] in " \t" and last is not None:  # a folded line continues the field
            current[last] += " " + line.strip()
        elif found := _FIELD.match(line):
            name = found.group(1).lower()
            last = name if name not in current else None  # a repeated field: the first counts
            if last is not None:
                current[last] = found.group(2).strip()
    if current:
        blocks.append(current)
    return blocks


def _base64_decoded(data: bytes) -> bytes:
    """The part decoded from base64 (a Content-Transfer-Encoding some MTAs use), or b""."""
    if not _BASE64.fullmatch(data):
        return b""
    try:
        return base64.b64decode(b"".join(data.split()), validate=True)
    except (binascii.Error, ValueError):
        return b""


def _recipient(field: str | None) -> str | None:
    """The address of ``rfc822; jeanne@b.example`` (or ``utf-8; ...``, RFC 6533)."""
    if not field:
        return None
    kind, _, address = field.partition(";")
    if not address:
        address = kind
    elif kind.strip().lower() == "utf-8":
        address = _XTEXT.sub(lambda found: _character(found.group(1)), address)
    return mailbox_address(address.strip().strip("<>"))


def _character(hex_digits: str) -> str:
    code = int(hex_digits, 16)
    return chr(code) if code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF else "\ufffd"


def _status(text: str) -> str | None:
    found = _STATUS_CODE.search(text)
    return ".".join(found.groups()) if found else None


def _diagnostic(field: str) -> str | None:
    """The remote answer, without its type (``smtp; 550 ...`` gives ``550 ...``)."""
    kind, separator, rest = field.partition(";")
    if separator and re.fullmatch(r"\s*[A-Za-z0-9-]+\s*", kind):
        field = rest
    return clean_text(field)[:MAX_DIAGNOSTIC].rstrip() or None
