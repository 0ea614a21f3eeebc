"""Bounces (issue 15): which parts of a delivery report to fetch, and what they say.

The body structures are what imapclient returns: parsed from a FETCH response as
Dovecot writes it, or built from the samples of tests/mail_corpus (tests/imapfetch.py)
and passed through imapclient's own BodyData. The fuzzing at the end mangles the
samples' status parts and gives report_parts structures of any shape.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from imapclient.response_parser import parse_fetch_response
from imapclient.response_types import BodyData

from followupd.channels.email.message import message_id
from followupd.sources.imap.dsn import (
    MAX_DIAGNOSTIC,
    Bounce,
    ReportParts,
    delivery_status,
    report_parts,
)
from followupd.sources.imap.headers import MAX_ID
from tests.imapfetch import crlf, fetched_parts
from tests.test_fuzz import FUZZ, ONE_IN_4, guarded

CORPUS = Path(__file__).parent / "mail_corpus"
NUDGE_1 = message_id("invoice_due:F-042:nudge-1", "cabinet.example")
NUDGE_2 = message_id("invoice_due:F-042:nudge-2", "cabinet.example")
JEAN = "jean.dupond@client.example"


def parts_of(name: str) -> tuple[BodyData, dict[str, bytes]]:
    return fetched_parts(crlf((CORPUS / name).read_bytes()))


def bounce_of(name: str) -> Bounce | None:
    """What the mailbox source would make of a sample: find the parts, fetch, read."""
    structure, sections = parts_of(name)
    parts = report_parts(structure)
    assert parts is not None
    returned = sections[parts.returned] if parts.returned else None
    return delivery_status(sections[parts.status], returned)


BOUNCES = {
    "bounce-postfix.eml": (
        ReportParts(status="2", returned="3"),
        Bounce(
            original_message_id=NUDGE_1,
            recipient=JEAN,
            action="failed",
            status="5.1.1",
            diagnostic=(
                "550 5.1.1 <jean.dupond@client.example>: Recipient address rejected: "
                "User unknown in virtual mailbox table"  # unfolded
            ),
        ),
    ),
    "bounce-exim.eml": (
        ReportParts(status="2", returned="3.HEADER"),  # the whole message came back
        Bounce(NUDGE_1, JEAN, "failed", "5.0.0", "550 No such user here"),
    ),
    "bounce-gmail.eml": (
        ReportParts(status="2", returned="3.HEADER"),  # after a multipart/related part
        Bounce(
            original_message_id=NUDGE_2,
            recipient=JEAN,
            action="failed",
            status="5.1.1",
            diagnostic=(
                "550 5.1.1 <jean.dupond@client.example>: Recipient address rejected: User unknown"
            ),
        ),
    ),
    "bounce-exchange.eml": (
        ReportParts(status="2", returned="3"),
        Bounce(
            original_message_id=NUDGE_1,
            recipient=JEAN,
            action="failed",
            status="5.1.10",
            diagnostic=(
                "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient "
                "jean.dupond@client.example not found by SMTP address lookup"
            ),
        ),
    ),
}


@pytest.mark.parametrize("name", sorted(BOUNCES))
def test_the_bounces_of_each_mta(name: str) -> None:
    structure, _ = parts_of(name)
    parts, bounce = BOUNCES[name]
    assert report_parts(structure) == parts
    assert bounce_of(name) == bounce


def test_a_delay_is_no_bounce() -> None:
    """Postfix's warning: the server still tries (Action: delayed, Status 4.4.1)."""
    structure, sections = parts_of("delay-postfix.eml")
    assert report_parts(structure) == ReportParts(status="2", returned="3")
    assert delivery_status(sections["2"], sections["3"]) is None


@pytest.mark.parametrize(
    "name",
    [
        "bounce-qmail.eml",  # text/plain: nothing to read but prose
        "mdn-read-receipt.eml",  # a multipart/report with no delivery status
        "gmail-reply.eml",
        "apple-mail-reply.eml",
    ],
)
def test_no_delivery_status_to_fetch(name: str) -> None:
    structure, _ = parts_of(name)
    assert report_parts(structure) is None


# A FETCH response as Dovecot 2.3 writes it for bounce-postfix.eml, parsed by imapclient.
DOVECOT_FETCH = (
    b'7 (UID 1042 BODYSTRUCTURE (("text" "plain" ("charset" "utf-8") NIL "Notification" '
    b'"8bit" 561 15 NIL NIL NIL NIL)("message" "delivery-status" NIL NIL "Delivery report" '
    b'"7bit" 552 NIL NIL NIL NIL)("text" "rfc822-headers" ("charset" "us-ascii") NIL '
    b'"Undelivered Message Headers" "8bit" 586 13 NIL NIL NIL NIL) "report" '
    b'("report-type" "delivery-status" "boundary" "4B2C81A0F3.1762761605/mail.cabinet.example")'
    b" NIL NIL NIL))"
)


def test_a_body_structure_as_imapclient_parses_it() -> None:
    structure = parse_fetch_response([DOVECOT_FETCH])[1042][b"BODYSTRUCTURE"]  # by UID
    assert isinstance(structure, BodyData) and structure.is_multipart
    assert report_parts(structure) == ReportParts(status="2", returned="3")
    built, _ = parts_of("bounce-postfix.eml")
    assert report_parts(built) == report_parts(structure)


def test_a_bounce_forwarded_inside_another_message() -> None:
    """A multipart/report as the second part of a multipart/mixed: sections 2.n."""
    report = parts_of("bounce-exim.eml")[0]
    note = (b"text", b"plain", (b"charset", b"utf-8"), None, None, b"7bit", 40, 2)
    mixed = BodyData.create((note, _raw(report), b"mixed", (b"boundary", b"x"), None, None))
    assert report_parts(mixed) == ReportParts(status="2.2", returned="2.3.HEADER")


def _raw(structure: BodyData) -> tuple[object, ...]:
    """A BodyData back in the IMAP grammar's shape (parts inline), to nest it."""
    if not structure.is_multipart:
        return tuple(structure)
    parts = structure[0]
    assert isinstance(parts, list)
    return (*(_raw(part) for part in parts), *structure[1:])


STATUS_ONLY = ReportParts(status="1", returned=None)


@pytest.mark.parametrize(
    ("structure", "expected"),
    [
        (None, None),
        ((), None),
        (b"report", None),
        ((b"text", b"plain", None, None, None, b"7bit", 10, 1), None),
        (([], b"report", None), None),  # a multipart with no parts
        (([(b"text", b"plain")], b"report"), None),  # no delivery status among them
        (([(b"message", b"delivery-status")], b"report"), STATUS_ONLY),  # nothing returned
        (([(b"MESSAGE", b"Global-Delivery-Status")], "REPORT"), STATUS_ONLY),  # RFC 6533
        (
            ([(b"message", b"delivery-status"), (b"message", b"global")], b"report"),
            ReportParts(status="1", returned="2"),  # message/global: fetched whole
        ),
        (([((b"message", b"delivery-status"),)], b"report"), None),  # malformed nesting
        (([[[[[[[[[[[(b"message", b"delivery-status")]]]]]]]]]]], b"report"), None),
        (([(b"message", b"delivery-status", 1)], 7), None),  # a subtype that is no string
    ],
)
def test_body_structures_of_any_shape(structure: object, expected: ReportParts | None) -> None:
    assert report_parts(structure) == expected


# -- the delivery-status part -------------------------------------------------------------

PER_MESSAGE = "Reporting-MTA: dns; mail.cabinet.example\r\n\r\n"


def status_part(*blocks: str) -> bytes:
    return (PER_MESSAGE + "\r\n".join(blocks)).encode()


def test_the_first_failed_recipient_counts() -> None:
    part = status_part(
        "Final-Recipient: rfc822; paul@client.example\r\nAction: delivered\r\nStatus: 2.0.0\r\n",
        "Final-Recipient: rfc822; jeanne@client.example\r\nAction: delayed\r\nStatus: 4.4.1\r\n",
        "Final-Recipient: rfc822;<Jean@Client.example>\r\nAction: FAILED\r\nStatus: 5.2.2\r\n",
        "Final-Recipient: rfc822; marc@client.example\r\nAction: failed\r\nStatus: 5.1.1\r\n",
    )
    assert delivery_status(part, None) == Bounce(
        None, "jean@client.example", "failed", "5.2.2", None
    )


@pytest.mark.parametrize(
    ("fields", "status"),
    [
        ("Action: failed\r\nDiagnostic-Code: smtp; 552 5.2.2 mailbox full", "5.2.2"),
        ("Action: failed\r\nStatus: 5.1.1 (bad destination mailbox)", "5.1.1"),
        ("Action: failed\r\nStatus: 4.4.7", "4.4.7"),  # given up on after retrying
        ("Action: failed\r\nStatus: failed", "5.0.0"),  # no code anywhere: 5.0.0, "other"
        ("Action: failed", "5.0.0"),
    ],
)
def test_the_status_code(fields: str, status: str) -> None:
    found = delivery_status(status_part(f"Final-Recipient: rfc822; {JEAN}\r\n{fields}\r\n"), None)
    assert found is not None and found.status == status and found.recipient == JEAN


@pytest.mark.parametrize(
    "recipient",
    [
        "Original-Recipient: rfc822; jean.dupond@client.example",  # no Final-Recipient
        "Final-Recipient: jean.dupond@client.example",  # no address type
        "Final-Recipient: rfc822; <jean.dupond@client.example>",
        "Final-Recipient: RFC822;\r\n   Jean.Dupond@client.example",  # folded
    ],
)
def test_the_recipient_as_mtas_write_it(recipient: str) -> None:
    found = delivery_status(status_part(f"{recipient}\r\nAction: failed\r\n"), None)
    assert found is not None and found.recipient == JEAN


def test_an_address_in_utf8_with_escapes() -> None:
    """RFC 6533: utf-8 address type, non-ASCII characters as \\x{HHHH}."""
    part = status_part("Final-Recipient: utf-8; ren\\x{E9}e@client.example\r\nAction: failed\r\n")
    found = delivery_status(part, None)
    assert found is not None and found.recipient == "renée@client.example"


def test_a_status_part_in_base64() -> None:
    text = status_part(f"Final-Recipient: rfc822; {JEAN}\r\nAction: failed\r\nStatus: 5.1.1\r\n")
    found = delivery_status(base64.encodebytes(text), None)
    assert found == Bounce(None, JEAN, "failed", "5.1.1", None)


def test_the_diagnostic_is_one_line_without_its_type_and_capped() -> None:
    part = status_part(
        f"Final-Recipient: rfc822; {JEAN}\r\nAction: failed\r\n"
        "Diagnostic-Code: X-Postfix; host mx.client.example said:\x00\x1b 550\r\n\t"
        + "x" * 900
        + "\r\n"
    )
    found = delivery_status(part, None)
    assert found is not None and found.diagnostic is not None
    assert found.diagnostic.startswith("host mx.client.example said: 550 xxx")
    assert len(found.diagnostic) == MAX_DIAGNOSTIC


def test_the_returned_header_names_the_message() -> None:
    part = status_part(f"Final-Recipient: rfc822; {JEAN}\r\nAction: failed\r\n")
    returned = f"From: claire@cabinet.example\r\nMessage-ID:\r\n {NUDGE_1}\r\n\r\n".encode()
    found = delivery_status(part, returned)
    assert found is not None and found.original_message_id == NUDGE_1
    unnamed = delivery_status(part, b"From: claire@cabinet.example\r\n\r\n")
    assert unnamed is not None and unnamed.original_message_id is None


@pytest.mark.parametrize(
    "part",
    [
        b"",
        b"\r\n\r\n",
        b"This is the mail system at host mail.cabinet.example.",
        b"Reporting-MTA: dns; mail.cabinet.example\r\n",
        status_part(f"Final-Recipient: rfc822; {JEAN}\r\nAction: relayed\r\n"),
        status_part(f"Final-Recipient: rfc822; {JEAN}\r\nAction: expanded\r\n"),
        status_part(f"Final-Recipient: rfc822; {JEAN}\r\nStatus: 5.1.1\r\n"),  # no Action
        b"\xff\xfe\x00 not a report",
    ],
)
def test_no_bounce(part: bytes) -> None:
    assert delivery_status(part, None) is None


# -- fuzzing ------------------------------------------------------------------------------

STATUS_SEEDS = [
    (sections[parts.status], sections[parts.returned] if parts.returned else None)
    for name in [*sorted(BOUNCES), "delay-postfix.eml"]
    for sections in [parts_of(name)[1]]
    for parts in [report_parts(parts_of(name)[0])]
    if parts is not None
]
DSN_PIECES = [
    b"Action: failed",
    b"Action: delayed",
    b"Final-Recipient: rfc822; ",
    b"Final-Recipient: utf-8; \\x{D800}\\x{110000}\\x{",
    b"Status: 5.1.1",
    b"Status: 9.9.9999",
    b"Diagnostic-Code: smtp; ",
    b"Message-ID: <",
    b"\r\n",
    b"\r\n\r\n",
    b"\r\n ",
    b"\n",
    b":",
    b";",
    b"<",
    b">",
    b"@",
    b"\x00",
    b"\xe9",
    b"\xc3\xa9",
    b"=?utf-8?q?",
    b"a@b.example",
]


@st.composite
def mangled_reports(draw: st.DrawFn) -> tuple[bytes, bytes | None]:
    """A sample's status part and returned header, changed line by line and byte by byte."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=2000)), draw(st.none() | st.binary(max_size=500))
    status, returned = draw(st.sampled_from(STATUS_SEEDS))
    for _ in range(draw(st.integers(0, 8))):
        target = draw(st.booleans())
        data = status if target or returned is None else returned
        at = draw(st.integers(0, len(data)))
        kind = draw(st.integers(0, 3))
        if kind == 0:
            data = data[:at] + draw(st.sampled_from(DSN_PIECES)) + data[at:]
        elif kind == 1:
            data = data[:at] + draw(st.binary(min_size=1, max_size=6)) + data[at + 1 :]
        elif kind == 2:
            data = data[:at] + data[at + draw(st.integers(1, 200)) :]
        else:  # a piece of great length
            data = data[:at] + draw(st.sampled_from(DSN_PIECES)) * draw(st.integers(50, 5000))
        if target or returned is None:
            status = data
        else:
            returned = data
    if draw(st.integers(0, 9)) == 0:
        status = base64.encodebytes(status)
    return status, returned


def assert_bounce(found: Bounce | None) -> None:
    if found is None:
        return
    assert found.action == "failed"
    assert re.fullmatch(r"[245]\.\d{1,3}\.\d{1,3}", found.status), found.status
    if found.recipient is not None:
        assert found.recipient == found.recipient.lower() and "@" in found.recipient
        assert not re.search(r"[\s\x00-\x1f\x7f]", found.recipient)
    if found.diagnostic is not None:
        assert 0 < len(found.diagnostic) <= MAX_DIAGNOSTIC
        assert not re.search(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]", found.diagnostic)
    if found.original_message_id is not None:
        assert (
            found.original_message_id.startswith("<") and len(found.original_message_id) <= MAX_ID
        )


@pytest.mark.slow  # a few seconds at the default number of examples
@settings(FUZZ)
@example(report=(b"Action: failed\r\n" + b" " * 70_000 + b"x", None))
@example(report=(b"Action: failed\r\nFinal-Recipient: utf-8; \\x{FFFFFF}@b.example\r\n", b""))
@given(report=mangled_reports())
def test_delivery_status_never_raises_and_keeps_its_shape(
    report: tuple[bytes, bytes | None],
) -> None:
    status, returned = report
    found = guarded("delivery_status", lambda: delivery_status(status, returned))
    assert_bounce(found)


ATOMS = st.sampled_from(
    [b"message", b"delivery-status", b"rfc822", b"text", b"rfc822-headers", b"report", b"x"]
)
STRUCTURES = st.recursive(
    st.none() | st.integers() | ATOMS | st.binary(max_size=5) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=5) | st.lists(inner, max_size=5).map(tuple),
    max_leaves=40,
)


REAL_STRUCTURES = [_raw(parts_of(path.name)[0]) for path in sorted(CORPUS.glob("*.eml"))]


@st.composite
def mangled_structures(draw: st.DrawFn) -> object:
    """A sample's body structure with items replaced, dropped or nested anew."""
    if draw(st.integers(0, 3)) == 0:
        return draw(STRUCTURES)
    root: list[object] = [draw(st.sampled_from(REAL_STRUCTURES))]
    for _ in range(draw(st.integers(1, 5))):
        parent: list[object] = root
        index = 0
        while isinstance(parent[index], (list, tuple)) and parent[index] and not draw(ONE_IN_4):
            child = list(parent[index])  # type: ignore[call-overload]
            parent[index] = child
            parent, index = child, draw(st.integers(0, len(child) - 1))
        kind = draw(st.integers(0, 2))
        if kind == 0:
            parent[index] = draw(STRUCTURES)
        elif kind == 1 and len(parent) > 1:
            del parent[index]
        else:
            parent[index] = (parent[index],)
    mangled = _tuples(root[0])
    try:  # as imapclient would hand it over, when it can
        return BodyData.create(mangled) if isinstance(mangled, tuple) else mangled
    except (IndexError, TypeError, UnboundLocalError):
        return mangled


def _tuples(node: object) -> object:
    """Lists made tuples again, as the IMAP parser gives them."""
    if isinstance(node, (list, tuple)):
        return tuple(_tuples(item) for item in node)
    return node


@pytest.mark.slow
@settings(FUZZ)
@given(structure=mangled_structures())
def test_report_parts_never_raises_on_any_structure(structure: object) -> None:
    found = guarded("report_parts", lambda: report_parts(structure))
    if found is not None:
        assert re.fullmatch(r"\d+(\.\d+)*", found.status), found
        assert found.returned is None or re.fullmatch(r"\d+(\.\d+)*(\.HEADER)?", found.returned)
