"""The header fields' FETCH read quickly: what imapclient's parser reads, or left to it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from imapclient.response_parser import parse_fetch_response

from followupd.sources.imap import header_fetch
from followupd.sources.imap.header_fetch import fetch_header_fields, read_quickly
from followupd.sources.imap.messages import HEADERS_FETCH
from tests.imapserver import ImapServer

CORPUS = Path(__file__).parent / "mail_corpus"
FIELDS = b"BODY[HEADER.FIELDS (MESSAGE-ID DATE FROM)]"
HEADER = b"Message-ID: <a@b.example>\r\nDate: Mon, 23 Nov 2026 09:00:00 +0100\r\n\r\n"
DATE = b'INTERNALDATE "23-Nov-2026 09:00:00 +0100"'


def literal(seq: int, items: bytes, header: bytes = HEADER) -> tuple[bytes, bytes]:
    return (b"%d (%s %s {%d}" % (seq, items, FIELDS, len(header)), header)


def as_imapclient_reads(data: list[Any], normalise_times: bool) -> dict[int, Any]:
    return dict(parse_fetch_response(data, normalise_times, True))


EVERYDAY = {
    "Dovecot's order": [literal(1, b"UID 7 " + DATE), b")", literal(2, b"UID 9 " + DATE), b")"],
    "items after the header": [
        (b"3 (UID 11 %s {%d}" % (FIELDS, len(HEADER)), HEADER),
        b" " + DATE + b" MODSEQ (42))",
    ],
    "with CONDSTORE's MODSEQ": [literal(1, b"MODSEQ (5) UID 7 " + DATE), b")"],
    "a date not understood": [literal(1, b'UID 7 INTERNALDATE "not a date"'), b")"],
    "an empty header": [literal(1, b"UID 7 " + DATE, b""), b")"],
    "no message": [],
}


@pytest.mark.parametrize("normalise_times", [False, True])
@pytest.mark.parametrize("data", EVERYDAY.values(), ids=EVERYDAY.keys())
def test_the_everyday_shape_is_read_as_imapclient_reads_it(
    data: list[Any], normalise_times: bool
) -> None:
    quick = read_quickly(data, normalise_times)
    assert quick is not None
    assert quick == as_imapclient_reads(data, normalise_times)


OTHER_SHAPES = {
    "no FETCH answer (every message expunged)": [None],
    "FLAGS besides": [literal(1, b"UID 7 FLAGS (\\Seen) " + DATE), b")"],
    "the header as a quoted string": [b'1 (UID 7 %s "")' % FIELDS],
    "the header NIL": [b"1 (UID 7 %s NIL)" % FIELDS],
    "an escaped quote in the date": [literal(1, b'UID 7 INTERNALDATE "2\\"3"'), b")"],
    "no UID": [literal(1, DATE), b")"],
    "a literal shorter than said": [(b"1 (UID 7 %s {999}" % FIELDS, HEADER), b")"],
    "the same UID twice": [literal(1, b"UID 7"), b")", literal(2, b"UID 7"), b")"],
    "lower-case items": [literal(1, b"uid 7 " + DATE), b")"],
    "no closing parenthesis": [literal(1, b"UID 7 " + DATE), b""],
    "two spaces": [literal(1, b"UID 7  " + DATE), b")"],
}


@pytest.mark.parametrize("data", OTHER_SHAPES.values(), ids=OTHER_SHAPES.keys())
def test_any_other_shape_is_left_to_imapclient(data: list[Any]) -> None:
    assert read_quickly(data, False) is None


def test_the_fetch_answers_as_imapclients_and_reads_real_servers_quickly(
    imap_server_any: ImapServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = imap_server_any
    user = server.new_user()
    mails = [path.read_bytes() for path in sorted(CORPUS.glob("*.eml"))]
    server.append_many(user, "INBOX", mails)
    with server.connect(user) as client:
        if client.has_capability("CONDSTORE"):
            client.enable("CONDSTORE")
        client.normalise_times = False
        client.select_folder("INBOX", readonly=True)
        uids = client.search("ALL")
        general = client.fetch(uids, list(HEADERS_FETCH))

        def unused(*args: object) -> None:
            raise AssertionError("the answer was not read quickly")

        monkeypatch.setattr(header_fetch, "parse_fetch_response", unused)
        quick = fetch_header_fields(client, uids, HEADERS_FETCH)
    assert len(quick) == len(mails) > 0
    assert quick == dict(general)
