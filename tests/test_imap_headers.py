"""What a message's header says (issue 15): replies, auto-replies and bounces as sent.

Each sample of tests/mail_corpus is read as the mailbox source reads it: only the
fields of HEADER_FIELDS, as an IMAP server returns them (tests/imapfetch.py). The
fuzzing at the end mangles the samples byte by byte, line by line and field by
field: message_facts never raises and what it gives keeps its shape.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from followupd.channels.email.message import message_id
from followupd.config.addresses import normalized
from followupd.sources.imap.headers import (
    HEADER_FIELDS,
    MAX_ANSWERS,
    MAX_HEADER_BYTES,
    MAX_ID,
    MAX_RECIPIENTS,
    MAX_SUBJECT,
    MessageFacts,
    _everyday_addresses,
    _parsed_addresses,
    mailbox_address,
    message_facts,
)
from tests.imapfetch import crlf, header_fields, split_entity
from tests.test_fuzz import FUZZ, guarded

CORPUS = Path(__file__).parent / "mail_corpus"
# the followupd messages the samples answer (the key of each: rule, subject, step)
NUDGE_1 = message_id("invoice_due:F-042:nudge-1", "cabinet.example")
NUDGE_2 = message_id("invoice_due:F-042:nudge-2", "cabinet.example")
DEPOSIT = message_id("deposit_due:lyon-2026:request", "cabinet.example")
OWNER = "claire@cabinet.example"
LATIN_1 = "8-bit text not in UTF-8, read as Windows-1252"


def sample(name: str) -> bytes:
    return (CORPUS / name).read_bytes()


def facts_of(name: str) -> MessageFacts:
    """The facts of a sample, from the fields an IMAP server returns for HEADER_FIELDS."""
    return message_facts(header_fields(crlf(sample(name)), HEADER_FIELDS))


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


EXPECTED = {
    "gmail-reply.eml": MessageFacts(
        message_id="<CAEXaMpLe+0Vq1x2Z9=kT-3rQ_aBcDeFgH4iJkLmN@mail.gmail.com>",
        date=utc(2026, 11, 3, 9, 12, 44),
        sender="jeanne.dupont@gmail.com",
        recipients=(OWNER,),
        subject="Re: Facture F-042 : rappel",
        answers=(NUDGE_1,),
        automatic=False,
        report=False,
        problem=None,
    ),
    "outlook-reply.eml": MessageFacts(
        message_id="<PR3P193MB0891A1B2C3D4E5F6A7B8C9D0E1F2@PR3P193MB0891.EURP193.PROD.OUTLOOK.COM>",
        date=utc(2026, 11, 4, 8, 3, 21),
        sender="pierre.dupont@industrie-client.example",
        recipients=(OWNER, "compta@industrie-client.example"),
        subject="RE: Demande d'acompte - mission Lyon",
        answers=(DEPOSIT,),
        automatic=False,
        report=False,
        problem=None,
    ),
    "apple-mail-reply.eml": MessageFacts(
        message_id="<7B1E5D3C-2F4A-4C8E-9D6B-1A2B3C4D5E6F@icloud.com>",
        date=utc(2026, 11, 5, 17, 41, 7),
        sender="renee.levesque@icloud.com",
        recipients=(OWNER,),
        subject="Re : Contrat de mission – à signer",  # the no-break space is a space
        answers=(NUDGE_2,),
        automatic=False,
        report=False,
        problem=None,
    ),
    "thunderbird-reply.eml": MessageFacts(
        message_id="<5c1e6a0b-9f3d-4d2a-8e7f-0a1b2c3d4e5f@client.example>",
        date=utc(2026, 11, 6, 8, 15, 2),
        sender="paul.bernard@client.example",
        recipients=(OWNER, "jeanne.dupont@gmail.com"),  # Claire@Cabinet.example once
        subject="Re: Acompte mission Lyon",
        answers=(DEPOSIT, "<9a8b7c6d-1e2f-4a3b-8c9d-0e1f2a3b4c5d@client.example>"),
        automatic=False,
        report=False,
        problem=None,
    ),
    "sieve-vacation.eml": MessageFacts(
        message_id="<dovecot-sieve-1762419602-123456-0@mail.client.example>",
        date=utc(2026, 11, 6, 9, 0, 2),
        sender="paul.bernard@client.example",
        recipients=(OWNER,),
        subject="Auto: Facture F-042 : rappel",
        answers=(NUDGE_1,),
        automatic=True,
        report=False,
        problem=None,
    ),
    "gmail-vacation.eml": MessageFacts(
        message_id="<CAEXaMpLeVaCaTi0n+aB1cD2eF3gH4iJ5kL6mN7oP8qR@mail.gmail.com>",
        date=utc(2026, 11, 9, 10, 0, 11),
        sender="jeanne.dupont@gmail.com",
        recipients=(OWNER,),
        subject="Absente jusqu'au 16 novembre",
        answers=(NUDGE_1,),
        automatic=True,
        report=False,
        problem=None,
    ),
    "exchange-out-of-office.eml": MessageFacts(
        message_id="<7c0e4a1d2b3f4e5a9b8c7d6e5f4a3b2c@PR3P193MB0891.EURP193.PROD.OUTLOOK.COM>",
        date=utc(2026, 11, 9, 7, 0, 13),
        sender="pierre.dupont@industrie-client.example",
        recipients=(OWNER,),
        subject="Réponse automatique : Facture F-042 : rappel",
        answers=(NUDGE_1,),
        automatic=True,
        report=False,
        problem=None,
    ),
    "mailing-list.eml": MessageFacts(
        message_id="<b7d1e3f5-2a4c-4e6a-8c0e-2f4a6c8e0a2c@client.example>",
        date=utc(2026, 11, 10, 10, 20),
        sender="paul.bernard@client.example",
        recipients=("projet-lyon@lists.client.example",),
        subject="[projet-lyon] Planning des essais",
        answers=(),
        automatic=False,  # Precedence: list relays what a person wrote
        report=False,
        problem=None,
    ),
    "mdn-read-receipt.eml": MessageFacts(
        message_id="<1d2e3f4a-5b6c-4d7e-8f9a-0b1c2d3e4f5a@client.example>",
        date=utc(2026, 11, 10, 8, 30),
        sender="paul.bernard@client.example",
        recipients=(OWNER,),
        subject="Accusé de réception (affiché) - Facture F-042 : rappel",
        answers=(),
        automatic=True,
        report=False,  # a read receipt is no delivery report
        problem=None,
    ),
    "latin1-8bit-headers.eml": MessageFacts(
        message_id="<20261110140200.1234@client.example>",
        date=utc(2026, 11, 10, 13, 2),
        sender="renee.levesque@client.example",
        recipients=(OWNER,),
        subject="Rép. : relevé d'heures – novembre",  # byte 0x96 is Windows-1252's en dash
        answers=(NUDGE_1,),
        automatic=False,
        report=False,
        problem=f"From: {LATIN_1}; Subject: {LATIN_1}",
    ),
    "broken-encoded-words.eml": MessageFacts(
        message_id="<not-in-brackets@client.example>",
        date=None,
        sender="jeanne.dupont@gmail.com",
        recipients=(OWNER, "paul.bernard@client.example"),
        # adjacent encoded words join (RFC 2047 6.2); bytes not in UTF-8 become U+FFFD
        subject="Facture F-042 — relancerappel \ufffd\ufffd =?utf-8?Q?unterminated",
        answers=(NUDGE_1,),
        automatic=False,
        report=False,
        problem="Subject: broken encoded words, kept as written; Date: unreadable",
    ),
    "bounce-postfix.eml": MessageFacts(
        message_id="<20261110080005.9D1E81A0F4@mail.cabinet.example>",
        date=utc(2026, 11, 10, 8, 0, 5),
        sender="mailer-daemon@mail.cabinet.example",
        recipients=(OWNER,),
        subject="Undelivered Mail Returned to Sender",
        answers=(),
        automatic=True,
        report=True,
        problem=None,
    ),
    "delay-postfix.eml": MessageFacts(
        message_id="<20261110120007.1A2B31A0F5@mail.cabinet.example>",
        date=utc(2026, 11, 10, 12, 0, 7),
        sender="mailer-daemon@mail.cabinet.example",
        recipients=(OWNER,),
        subject="Delayed Mail (still being retried)",
        answers=(),
        automatic=True,
        report=True,  # a report; tests/test_imap_dsn.py shows it is no bounce
        problem=None,
    ),
    "bounce-exim.eml": MessageFacts(
        message_id="<E1tK9xB-000Abc-2Q@mx.cabinet.example>",
        date=utc(2026, 11, 10, 8, 0, 5),
        sender="mailer-daemon@mx.cabinet.example",
        recipients=(OWNER,),
        subject="Mail delivery failed: returning message to sender",
        answers=(),
        automatic=True,
        report=True,
        problem=None,
    ),
    "bounce-gmail.eml": MessageFacts(
        message_id="<6730e8c6.050a0220.58de0.183e.GMR@mx.google.com>",
        date=utc(2026, 11, 10, 8, 0, 6),
        sender="mailer-daemon@googlemail.com",
        recipients=("claire.martin.conseil@gmail.com",),
        subject="Delivery Status Notification (Failure)",
        answers=(NUDGE_2,),
        automatic=True,
        report=True,
        problem=None,
    ),
    "bounce-exchange.eml": MessageFacts(
        message_id="<4f3e2d1c-0b9a-4878-a6b5-c4d3e2f1a0b9@AM0PR07MB1234.eurprd07.prod.outlook.com>",
        date=utc(2026, 11, 10, 8, 0, 5),
        sender="microsoftexchange329e71ec88ae4615bbc36ab6ce41109e@cabinet.example",
        recipients=(OWNER,),
        subject="Undeliverable: Facture F-042 : rappel",
        answers=(NUDGE_1,),
        automatic=True,
        report=True,
        problem=None,
    ),
    "bounce-qmail.eml": MessageFacts(
        message_id=None,  # qmail-send writes none
        date=utc(2026, 11, 10, 8, 0, 5),  # -0000: in UTC, the local zone unknown
        sender="mailer-daemon@mail.client.example",
        recipients=(OWNER,),
        subject="failure notice",
        answers=(),
        automatic=True,
        report=True,  # From MAILER-DAEMON is all there is to tell it by
        problem=None,
    ),
}


def test_every_sample_has_its_expected_facts() -> None:
    assert sorted(EXPECTED) == sorted(path.name for path in CORPUS.glob("*.eml"))


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_the_header_of_each_sample(name: str) -> None:
    assert facts_of(name) == EXPECTED[name]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_the_fetched_fields_say_what_the_whole_header_says(name: str) -> None:
    """HEADER_FIELDS holds every field the facts come from; the line ends do not matter."""
    header, _ = split_entity(sample(name))
    assert message_facts(header) == facts_of(name)
    assert message_facts(crlf(header)) == facts_of(name)


def test_header_fields_are_each_named_once() -> None:
    lower = [name.lower() for name in HEADER_FIELDS]
    assert len(set(lower)) == len(lower)
    assert all(re.fullmatch(r"[A-Za-z0-9-]+", name) for name in HEADER_FIELDS)


# -- automatic or not ---------------------------------------------------------------------


def facts(*lines: str) -> MessageFacts:
    base = ["From: Jeanne Dupont <jeanne.dupont@gmail.com>", f"To: {OWNER}", "Subject: Re: F-042"]
    return message_facts(("\r\n".join([*base, *lines]) + "\r\n\r\n").encode())


@pytest.mark.parametrize(
    "lines",
    [
        ["Auto-Submitted: auto-replied"],
        ["Auto-Submitted: auto-generated"],
        ["Auto-Submitted: auto-notified"],  # Sieve notify, RFC 5436
        ['Auto-submitted: auto-replied; owner-email="jeanne.dupont@gmail.com"'],
        ["Auto-Submitted: AUTO-REPLIED (zimbra; vacation)"],
        ["Auto-Submitted: vacation"],  # not a registered keyword, but not "no"
        ["X-Autoreply: yes"],
        ["X-Autorespond: Out of office"],
        ["Precedence: auto_reply"],
        ["Precedence: bulk"],
        ["Precedence: JUNK"],
        # older Exchange's out-of-office: no Auto-Submitted, the two together
        ["X-Auto-Response-Suppress: All", "X-MS-Exchange-Inbox-Rules-Loop: jeanne@b.example"],
        ["X-Auto-Response-Suppress: DR, OOF", "X-MS-Exchange-Inbox-Rules-Loop: j@b.example"],
        ["Content-Type: multipart/report; report-type=disposition-notification"],
    ],
)
def test_automatic_messages(lines: list[str]) -> None:
    found = facts(*lines)
    assert found.automatic and not found.report


@pytest.mark.parametrize(
    "lines",
    [
        [],
        ["Auto-Submitted: no"],
        ["Auto-Submitted: No (written by Jeanne)"],
        ["Auto-Submitted:"],
        ["Precedence: list"],
        ["Precedence: first-class"],
        # what Outlook writes on messages people send: a request to others, not a sign
        ["X-Auto-Response-Suppress: All"],
        ["X-Auto-Response-Suppress: DR, RN, NRN, OOF, AutoReply"],
        # a message an Exchange inbox rule forwarded or redirected
        ["X-MS-Exchange-Inbox-Rules-Loop: jeanne@b.example"],
        ["X-Auto-Response-Suppress: RN, NRN", "X-MS-Exchange-Inbox-Rules-Loop: j@b.example"],
        ["Content-Type: multipart/mixed; boundary=x"],
    ],
)
def test_messages_a_person_wrote(lines: list[str]) -> None:
    found = facts(*lines)
    assert not found.automatic and not found.report


@pytest.mark.parametrize(
    "lines",
    [
        ["Content-Type: multipart/report; report-type=delivery-status; boundary=x"],
        ['Content-Type: Multipart/Report; boundary="x"; Report-Type="Delivery-Status"'],
        ["Content-Type: multipart/report; report-type=global-delivery-status"],  # RFC 6533
        ["X-Failed-Recipients: jean.dupond@client.example"],  # Exim, even in text/plain
        ["From: MAILER-DAEMON@mx1 (Mail Delivery System)"],
        ["From: Mail Delivery Subsystem <mailer-daemon@googlemail.com>"],
        ["From: postmaster@mail.client.example", "Content-Type: multipart/report; boundary=x"],
    ],
)
def test_delivery_reports(lines: list[str]) -> None:
    found = message_facts(("\r\n".join([*lines, "From: x@b.example"]) + "\r\n\r\n").encode())
    assert found.report and found.automatic


def test_postmaster_writing_plain_text_is_no_report() -> None:
    found = message_facts(b"From: postmaster@client.example\r\nSubject: Votre quota\r\n\r\n")
    assert not found.report and found.sender == "postmaster@client.example"


# -- each field ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("Tue, 10 Nov 2026 09:00:00 +0100", utc(2026, 11, 10, 8)),
        ("10 Nov 2026 08:00:05 -0000", utc(2026, 11, 10, 8, 0, 5)),  # RFC 5322: UTC
        ("Tue, 10 Nov 2026 08:00:05", utc(2026, 11, 10, 8, 0, 5)),  # no zone: read as UTC
        ("Tue, 10 Nov 2026 03:00:00 EST", utc(2026, 11, 10, 8)),  # obsolete zone names
        ("Tue, 10 Nov 26 09:00:00 +0100", utc(2026, 11, 10, 8)),  # two-digit year
        ("Tue,\r\n 10 Nov 2026 09:00:00 +0100 (CET)", utc(2026, 11, 10, 8)),  # folded, comment
        ("Tue, 10 Nov 2026 23:30:00 -1400", utc(2026, 11, 11, 13, 30)),
    ],
)
def test_dates_are_aware_and_in_utc(written: str, expected: datetime) -> None:
    found = message_facts(f"Date: {written}\r\n\r\n".encode())
    assert found.date == expected and found.date.utcoffset() == timedelta(0)
    assert found.problem is None


@pytest.mark.parametrize(
    "written", ["next Tuesday", "", "Tue, 32 Nov 2026 09:00:00 +0100", "99999999999999999999"]
)
def test_an_unreadable_date_is_none_and_said(written: str) -> None:
    found = message_facts(f"Date: {written}\r\nSubject: F-042\r\n\r\n".encode())
    assert found.date is None and found.problem == "Date: unreadable"
    assert found.subject == "F-042"  # the rest is still read


def test_addresses_are_compared_as_the_config_stores_them() -> None:
    """Lower case, and the domain in Unicode like email-validator normalises it."""
    found = facts(
        "Cc: undisclosed-recipients:;",
        "Cc: Équipe: Renée <Renee@XN--EXMPLE-CUA.EXAMPLE>, paul@client.example;",
    )
    assert found.recipients == (OWNER, "renee@exämple.example", "paul@client.example")
    assert normalized("renee@xn--exmple-cua.example") == "renee@exämple.example"
    assert found.problem is None


def test_raw_utf8_headers_are_read_as_utf8() -> None:
    """RFC 6532 allows UTF-8 in headers as is; no problem to report."""
    found = message_facts("From: Renée <renée@exämple.example>\r\nSubject: Relevé\r\n\r\n".encode())
    assert found.sender == "renée@exämple.example"
    assert found.subject == "Relevé" and found.problem is None


def test_the_first_of_a_field_given_twice_counts_but_recipients_add_up() -> None:
    found = facts(
        "From: Paul <paul@client.example>",
        "Date: Tue, 10 Nov 2026 09:00:00 +0100",
        "Date: Wed, 11 Nov 2026 09:00:00 +0100",
        "Message-ID: <first@client.example>",
        "Message-ID: <second@client.example>",
        "To: paul@client.example",
    )
    assert found.sender == "jeanne.dupont@gmail.com"
    assert found.date == utc(2026, 11, 10, 8)
    assert found.message_id == "<first@client.example>"
    assert found.recipients == (OWNER, "paul@client.example")


def test_a_from_without_an_address() -> None:
    found = message_facts(b"From: Jeanne Dupont\r\nTo: nobody\r\n\r\n")
    assert found.sender is None and found.recipients == ()
    assert found.problem == "From: no address"


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("<a@b.example>", "<a@b.example>"),
        ("  <a@b.example> (sent by Jeanne)", "<a@b.example>"),
        ("<CAE+x=y_z@mail.gmail.com\r\n >", "<CAE+x=y_z@mail.gmail.com>"),  # folded inside
        ("a@b.example", "<a@b.example>"),  # some mailers leave the brackets out
        ("<>", None),
        ("no id here", None),
    ],
)
def test_message_ids_are_normalised(written: str, expected: str | None) -> None:
    found = message_facts(f"Message-ID: {written}\r\n\r\n".encode())
    assert found.message_id == expected
    assert (found.problem is None) == (expected is not None)


def test_in_reply_to_comes_first_and_each_id_once() -> None:
    found = facts(
        f"In-Reply-To: {NUDGE_2} (Claire Martin's message of Tue, 10 Nov 2026)",
        f"References: <root@client.example> {NUDGE_1}\r\n\t{NUDGE_2}",
    )
    assert found.answers == (NUDGE_2, "<root@client.example>", NUDGE_1)


def test_a_thread_too_long_keeps_its_root_and_its_latest_ids() -> None:
    ids = [f"<{number}.{number * 7919}@client.example>" for number in range(1000)]
    found = facts("References: " + "\r\n ".join(ids))
    assert len(found.answers) == MAX_ANSWERS
    assert found.answers[0] == ids[0] and found.answers[-1] == ids[-1]
    assert found.answers[1:] == tuple(ids[-(MAX_ANSWERS - 1) :])
    assert found.problem is None


def test_a_huge_header_is_read_up_to_the_cap() -> None:
    header = b"Subject: F-042\r\nTo: " + b"a@b.example, " * 100_000 + b"\r\n\r\n"
    found = message_facts(header)
    assert found.subject == "F-042"
    assert found.recipients == ("a@b.example",)
    assert found.problem is not None and str(MAX_HEADER_BYTES) in found.problem


def test_subjects_are_one_line_without_controls_and_capped() -> None:
    written = "Subject: =?utf-8?q?Facture=09F-042?=\t\x00\x1b[31m rappel\r\n  suite " + "x" * 400
    found = message_facts(f"{written}\r\n\r\n".encode())
    assert found.subject.startswith("Facture F-042 [31m rappel suite xxx")
    assert len(found.subject) == MAX_SUBJECT


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("Jeanne.Dupont@Gmail.COM", "jeanne.dupont@gmail.com"),
        ("MAILER-DAEMON@mx1", "mailer-daemon@mx1"),  # no dot: email-validator refuses it
        ("admin@host.local", "admin@host.local"),  # a special-use name, still an address
        ("jeanne", None),
        ("@b.example", None),
        ("a@b@c.example", None),
        ("a b@c.example", None),
        ("a@b.example\n", "a@b.example"),
        ("a@\x00b.example", None),
        ("x" * 250 + "@b.example", None),
    ],
)
def test_mailbox_address(written: str, expected: str | None) -> None:
    assert mailbox_address(written) == expected


LOCAL = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABC0123456789.+-_'", min_size=1, max_size=12)
DOMAIN = st.lists(st.text(alphabet="abcxyz0123-", min_size=1, max_size=8), min_size=1,
                  max_size=3).map(lambda labels: ".".join([*labels, "example"]))  # fmt: skip
DISPLAY = st.one_of(
    st.just(""),
    st.text(alphabet="Jeanne Dupont-éÉ.'", min_size=1, max_size=20),
    st.text(alphabet="Dupont, Jeanne@<>;:()é", max_size=20).map(lambda name: f'"{name}"'),
    st.sampled_from(["=?utf-8?q?Ren=C3=A9?=", "=?utf-8?b?SmVhbm5l?=", "(comment)", "Group:"]),
)


@st.composite
def address_lists(draw: st.DrawFn) -> str:
    mailboxes = []
    for _ in range(draw(st.integers(1, 4))):
        address = f"{draw(LOCAL)}@{draw(DOMAIN)}"
        display = draw(DISPLAY)
        space = draw(st.sampled_from(["", " ", "  ", "\t"]))
        bare = not display and draw(st.booleans())
        mailboxes.append(address if bare else f"{display}{space}<{address}>")
    return draw(st.sampled_from([",", ", ", " , "])).join(mailboxes)


@given(text=address_lists())
@FUZZ
@example(text='"Dupont, Jeanne" <jeanne@client.example>, bob@x.example')
@example(text="Claire Martin <claire@cabinet.example>, =?utf-8?q?Ren=C3=A9?= <rene@y.example>")
def test_everyday_address_lists_are_read_as_the_full_parser_reads_them(text: str) -> None:
    """The quick reading of everyday mailboxes gives what RFC 5322's parser gives."""
    quick = _everyday_addresses(text)
    if quick is not None:
        assert quick == _parsed_addresses(text, "To")
    everyday = "(" not in text and ":" not in text and '"' not in text
    assert quick is not None or not everyday, "an everyday list read by the slow parser"


# -- fuzzing ------------------------------------------------------------------------------

SEEDS = [header_fields(crlf(sample(name)), HEADER_FIELDS) for name in sorted(EXPECTED)] + [
    split_entity(sample(name))[0] for name in sorted(EXPECTED)
]
PIECES = [
    "=?utf-8?q?",
    "=?utf-8?b?",
    "=?iso-8859-1?q?caf=E9?=",
    "=?x-unknown?q?a?=",
    "?=",
    "=?",
    "<",
    ">",
    "@",
    '"',
    "(",
    ")",
    "\\",
    ",",
    ";",
    ":",
    " ",
    "\t",
    "\r\n",
    "\r\n ",
    "\n",
    "\r",
    "é",
    "\u2028",
    "\x85",
    "\x00",
    "+0100",
    "-0000",
    "Nov",
    "2026",
    "auto-replied",
    "no",
    "multipart/report",
    "report-type=delivery-status",
    "MAILER-DAEMON",
    "a@b.example",
]
FIELD_NAMES = [*HEADER_FIELDS, "X-Other", "from ", "FROM", "Subject "]


@st.composite
def mangled_headers(draw: st.DrawFn) -> bytes:
    """A sample's header changed field by field, line by line and byte by byte."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=2000))
    lines = draw(st.sampled_from(SEEDS)).split(b"\r\n")
    for _ in range(draw(st.integers(0, 6))):
        where = draw(st.integers(0, len(lines)))
        kind = draw(st.integers(0, 5))
        if kind == 0:  # a field written anew, from pieces of what mail holds
            name = draw(st.sampled_from(FIELD_NAMES))
            value = "".join(draw(st.lists(st.sampled_from(PIECES) | st.text(max_size=8))))
            codec = draw(st.sampled_from(["utf-8", "latin-1", "cp1252"]))
            lines.insert(where, f"{name}: {value}".encode(codec, "replace"))
        elif kind == 1 and lines:  # a field given twice
            lines.insert(where, lines[min(where, len(lines) - 1)])
        elif kind == 2 and lines:
            del lines[min(where, len(lines) - 1)]
        elif kind == 3:  # a field of great length
            piece = draw(st.sampled_from(PIECES)).encode("utf-8")
            field = draw(st.sampled_from(FIELD_NAMES)).encode()
            lines.insert(where, field + b": " + piece * draw(st.integers(100, 20_000)))
        elif kind == 4:  # a byte anywhere
            data = b"\r\n".join(lines)
            at = draw(st.integers(0, len(data)))
            data = data[:at] + draw(st.binary(min_size=1, max_size=4)) + data[at:]
            lines = data.split(b"\r\n")
        else:  # lines joined or split
            data = b"\r\n".join(lines)
            at = draw(st.integers(0, len(data)))
            cut = draw(st.sampled_from([b"", b"\r\n", b"\n", b"\r\n\t", b"\r\n\r\n"]))
            lines = (data[:at] + cut + data[at + 1 :]).split(b"\r\n")
    return b"\r\n".join(lines)


def assert_address(address: str) -> None:
    assert address == address.lower() and "@" in address, address
    assert len(address) <= 254 and not re.search(r"[\s\x00-\x1f\x7f]", address), address


def assert_message_id(text: str) -> None:
    assert text.startswith("<") and text.endswith(">") and len(text) <= MAX_ID, text
    assert not re.search(r"[\s<>\x00-\x1f\x7f]", text[1:-1]), text


def assert_shape(found: MessageFacts) -> None:
    """What every MessageFacts holds, whatever the header was."""
    assert isinstance(found, MessageFacts)
    if found.message_id is not None:
        assert_message_id(found.message_id)
    if found.date is not None:
        assert found.date.tzinfo is UTC
    if found.sender is not None:
        assert_address(found.sender)
    assert len(found.recipients) <= MAX_RECIPIENTS
    assert len(set(found.recipients)) == len(found.recipients)
    for address in found.recipients:
        assert_address(address)
    assert len(found.subject) <= MAX_SUBJECT
    assert found.subject == found.subject.strip()
    assert not re.search(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]", found.subject), found.subject
    found.subject.encode("utf-8")  # storable as is
    assert len(found.answers) <= MAX_ANSWERS
    assert len(set(found.answers)) == len(found.answers)
    for answer in found.answers:
        assert_message_id(answer)
    assert not found.report or found.automatic
    assert found.problem is None or (found.problem and "\n" not in found.problem)


@pytest.mark.slow  # a few seconds at the default number of examples
@settings(FUZZ)
@example(header=b"")
@example(header=b"\r\n\r\n")
@example(header=b"From: (((((((((((((((" * 500 + b"\r\n\r\n")
@example(header=b"To: " + b'"' * 7000 + b"\r\n\r\n")
@example(header=b"Subject: " + b"=?utf-8?b?" * 2000 + b"\r\n\r\n")
@example(header=b"Date: Mon, 1 Jan 9999 23:59:59 -1400\r\n\r\n")
@example(header=b"Date: Mon, 1 Jan 0001 00:00:00 +1400\r\n\r\n")
@given(header=mangled_headers())
def test_message_facts_never_raises_and_keeps_its_shape(header: bytes) -> None:
    found = guarded("message_facts", lambda: message_facts(header))
    assert_shape(found)
    assert message_facts(header) == found  # the same facts every time
