"""What an IMAP server returns for a stored message, computed from its bytes, for tests.

`header_fields` is BODY.PEEK[HEADER.FIELDS (...)] (RFC 3501 6.4.5: the named fields
as written, folding kept, lines ending in CRLF, then an empty line); `fetched_parts`
is BODYSTRUCTURE, as imapclient returns it (a BodyData), and the sections a reader
asks for by number: BODY[n] (a part's body; for message/rfc822 the message it holds)
and BODY[n.HEADER] (the header of the message a message/rfc822 part holds). The
reading of MIME here is the least that serves the corpus: boundaries, content types;
the real server's output for one message is pinned in tests/test_imap_dsn.py.
"""

from __future__ import annotations

import re
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import compat32

from imapclient.response_types import BodyData

_LINE_END = re.compile(rb"\r?\n")
_BLANK_LINE = re.compile(rb"\r?\n\r?\n")


def crlf(data: bytes) -> bytes:
    """Lines ending in CRLF, as IMAP sends them."""
    return _LINE_END.sub(b"\r\n", data)


def split_entity(data: bytes) -> tuple[bytes, bytes]:
    """(header with its closing empty line, body) of a message or a MIME part."""
    if data.startswith((b"\n", b"\r\n")):  # no header at all
        return b"", data.split(b"\n", 1)[1]
    found = _BLANK_LINE.search(data)
    if found is None:
        return data, b""
    return data[: found.end()], data[found.end() :]


def header_fields(message: bytes, names: tuple[str, ...]) -> bytes:
    """BODY.PEEK[HEADER.FIELDS (names)] of `message`: those fields as written, in order."""
    header, _ = split_entity(message)
    wanted = {name.lower() for name in names}
    kept: list[bytes] = []
    keeping = False
    for line in _LINE_END.split(header):
        if line[:1] in (b" ", b"\t"):
            if keeping:
                kept.append(line)
            continue
        name = line.split(b":", 1)[0].strip().decode("ascii", "replace").lower()
        keeping = bool(line) and name in wanted
        if keeping:
            kept.append(line)
    return b"".join(line + b"\r\n" for line in kept) + b"\r\n"


def fetched_parts(message: bytes) -> tuple[BodyData, dict[str, bytes]]:
    """BODYSTRUCTURE of `message` as imapclient gives it, and its sections by name."""
    sections: dict[str, bytes] = {}
    structure = _structure(message, "", sections)
    return BodyData.create(structure), sections


def _content_type(header: bytes) -> Message:
    return BytesHeaderParser(policy=compat32).parsebytes(header)


def _structure(entity: bytes, section: str, sections: dict[str, bytes]) -> tuple[object, ...]:
    """The raw BODYSTRUCTURE of one entity (parts inline, as the IMAP grammar has it)."""
    header, body = split_entity(entity)
    parsed = _content_type(header)
    maintype = parsed.get_content_maintype().encode()
    subtype = parsed.get_content_subtype().encode()
    encoding = str(parsed.get("Content-Transfer-Encoding", "7bit")).encode()
    if maintype == b"multipart":
        boundary = str(parsed.get_boundary()).encode()
        parts = []
        for number, part in enumerate(_parts(body, boundary), start=1):
            where = f"{section}.{number}" if section else str(number)
            parts.append(_structure(part, where, sections))
        return (*parts, subtype, (b"BOUNDARY", boundary), None, None, None)
    sections[section or "1"] = body
    lines = body.count(b"\n")
    if (maintype, subtype) == (b"message", b"rfc822"):
        inner_header, _ = split_entity(body)
        sections[f"{section}.HEADER"] = inner_header
        inner = _structure(body, f"{section}.1", {})
        return (maintype, subtype, None, None, None, encoding, len(body), None, inner, lines)
    params = tuple(
        item
        for key, value in (parsed.get_params(header="content-type") or [])[1:]
        for item in (key.encode(), str(value).encode())
    )
    extension = (None, None, None, None)
    if maintype == b"text":
        return (
            maintype,
            subtype,
            params or None,
            None,
            None,
            encoding,
            len(body),
            lines,
            *extension,
        )
    return (maintype, subtype, params or None, None, None, encoding, len(body), *extension)


def _parts(body: bytes, boundary: bytes) -> list[bytes]:
    """The parts between the boundary lines of a multipart body (RFC 2046 5.1.1)."""
    delimiter = re.compile(rb"(?:^|\r?\n)--" + re.escape(boundary) + rb"(--)?[ \t]*(?:\r?\n|$)")
    parts: list[bytes] = []
    start = None
    for found in delimiter.finditer(body):
        if start is not None:
            parts.append(body[start : found.start()])
        if found.group(1):  # the close delimiter
            return parts
        start = found.end()
    return parts
