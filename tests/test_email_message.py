"""Email messages: headers, deterministic Message-ID, threading, no header injection."""

from __future__ import annotations

from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.utils import format_datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from followupd.channels.email.message import build_message, message_id, text_to_html
from followupd.channels.failure import DeliveryError

SENT = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def build(**changes: object) -> bytes:
    fields: dict[str, object] = {
        "key": "invoice_due:F-1:nudge-2",
        "sender": "Claire Martin <claire@cabinet.example>",
        "recipient": "jeanne.dupont@acme.example",
        "reply_to": "claire@cabinet.example",
        "subject": "Facture F-1 : échéance du 30 novembre 2026",
        "body": "Bonjour Jeanne Dupont,\n\nAppelez-moi : tel:+33600000000.\n\nClaire",
        "sent_at": SENT,
        "earlier_in_thread": [message_id("invoice_due:F-1:nudge-1", "cabinet.example")],
    }
    fields.update(changes)
    return build_message(**fields).as_bytes()  # type: ignore[arg-type]


def test_headers_and_parts() -> None:
    parsed = message_from_bytes(build(), policy=policy.default)
    assert parsed["From"] == "Claire Martin <claire@cabinet.example>"
    assert parsed["To"] == "jeanne.dupont@acme.example"
    assert parsed["Reply-To"] == "claire@cabinet.example"
    assert parsed["Subject"] == "Facture F-1 : échéance du 30 novembre 2026"
    assert parsed["Date"] == "Tue, 01 Dec 2026 08:00:00 +0000"
    assert parsed["Message-ID"] == message_id("invoice_due:F-1:nudge-2", "cabinet.example")
    first = message_id("invoice_due:F-1:nudge-1", "cabinet.example")
    assert parsed["In-Reply-To"] == first
    assert parsed["References"] == first
    assert parsed.get_content_type() == "multipart/alternative"
    text = parsed.get_body(("plain",))
    html = parsed.get_body(("html",))
    assert text is not None and "Bonjour Jeanne Dupont" in text.get_content()
    assert html is not None and '<a href="tel:+33600000000">' in html.get_content()


@pytest.mark.parametrize("language", ["fr", "en"])
def test_the_message_says_its_language(language: str) -> None:
    parsed = message_from_bytes(build(language=language), policy=policy.default)
    assert parsed["Content-Language"] == language


def test_message_ids_are_stable_and_distinct() -> None:
    first = message_id("invoice_due:F-1:nudge-1", "cabinet.example")
    assert first == message_id("invoice_due:F-1:nudge-1", "cabinet.example")
    assert first != message_id("invoice_due:F-1:nudge-2", "cabinet.example")
    assert first.startswith("<") and first.endswith("@cabinet.example>")


@pytest.mark.parametrize(
    "change",
    [
        {"subject": "Facture\r\nBcc: victim@example.com"},
        {"sender": "Claire\r\nBcc: victim@example.com <claire@cabinet.example>"},
        {"recipient": "jeanne@acme.example\nBcc: victim@example.com"},
    ],
)
def test_no_header_can_be_injected(change: dict[str, str]) -> None:
    try:
        raw = build(**change)
    except (ValueError, DeliveryError):
        return  # refused: fine
    parsed = message_from_bytes(raw, policy=policy.default)
    assert parsed["Bcc"] is None
    assert b"\nBcc:" not in raw


def test_html_escapes_the_text() -> None:
    page = text_to_html("a <b> & c\n\nsecond")
    assert "a &lt;b&gt; &amp; c" in page
    assert page.count("<p>") == 2


def test_an_html_part_of_its_own_is_sent_as_given() -> None:
    page = '<!doctype html>\n<html><body><h3>À appeler</h3><a href="tel:+336">x</a></body></html>\n'
    parsed = message_from_bytes(build(html=page), policy=policy.default)
    text, html = parsed.get_body(("plain",)), parsed.get_body(("html",))
    assert text is not None and "Bonjour Jeanne Dupont" in text.get_content()
    assert html is not None and html.get_content().splitlines() == page.splitlines()
    made = message_from_bytes(build(), policy=policy.default).get_body(("html",))
    assert made is not None and "<h3>" not in made.get_content(), "made from the text otherwise"


# written straight to bytes (issue 17): whatever the text, a mail reader reads back what
# was given, and every line stays within RFC 5322's 998 octets
HEADER_TEXT = st.text(
    # no space but the ASCII one: the email package's reader folds the others into it
    st.characters(exclude_categories=("Cs", "Cc", "Zs", "Zl", "Zp"), include_characters=" "),
    min_size=1,
    max_size=300,
).filter(lambda text: text.strip() == text and "  " not in text)
BODY_TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=3000)


@given(subject=HEADER_TEXT, name=HEADER_TEXT, body=BODY_TEXT)
@settings(max_examples=200, deadline=None)
def test_any_text_reads_back_as_given(subject: str, name: str, body: str) -> None:
    raw = build(subject=subject, recipient=f"{name} <jeanne@acme.example>", body=body)
    parsed = message_from_bytes(raw, policy=policy.default)
    assert parsed["Subject"] == subject
    assert parsed["To"].addresses[0].display_name == name
    assert parsed["To"].addresses[0].addr_spec == "jeanne@acme.example"
    text = parsed.get_body(("plain",))
    assert text is not None
    assert text.get_content().splitlines() == body.encode().decode().splitlines() or (
        # the email package splits on \r and \n only, as the bytes on the wire do
        text.get_content().replace("\r\n", "\n").split("\n")[:-1]
        == body.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    )
    for line in raw.split(b"\r\n"):
        assert len(line) <= 998
    assert b"\n" not in raw.replace(b"\r\n", b""), "every line ends with CRLF"


def test_a_line_longer_than_998_octets_goes_in_base64() -> None:
    body = "é" * 1000 + "\nfin"
    raw = build(body=body)
    parsed = message_from_bytes(raw, policy=policy.default)
    text = parsed.get_body(("plain",))
    assert text is not None and text["Content-Transfer-Encoding"] == "base64"
    # base64 carries text in its canonical form, lines ending with CRLF (RFC 2045)
    assert text.get_content().replace("\r\n", "\n") == body + "\n"


def test_a_long_thread_is_folded_between_its_message_ids() -> None:
    earlier = [message_id(f"invoice_due:F-1:nudge-{n}", "cabinet.example") for n in range(40)]
    raw = build(earlier_in_thread=earlier)
    parsed = message_from_bytes(raw, policy=policy.default)
    assert parsed["References"].split() == earlier
    assert parsed["In-Reply-To"] == earlier[-1]
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998


def test_a_line_break_in_a_subject_fails_that_message() -> None:
    with pytest.raises(DeliveryError, match="line break") as raised:
        build(subject="Facture\nBcc: victim@example.com")
    assert raised.value.permanent


def test_ascii_text_stays_readable_and_only_other_words_are_encoded() -> None:
    raw = build(subject="Facture F-1 : échéance du 30 novembre")
    assert b"Subject: Facture F-1 : =?utf-8?q?=C3=A9ch=C3=A9ance?= du 30 novembre\r\n" in raw
    assert b"From: Claire Martin <claire@cabinet.example>\r\n" in raw
    assert build(recipient="Dupont, Jeanne <j@acme.example>").count(b'To: "Dupont, Jeanne"') == 1


def test_the_date_is_written_in_the_zone_it_is_given_in() -> None:
    """The Date header of equal instants in other zones: each its own (its value is kept
    for the instants a pass sends at, zone included)."""
    paris = SENT.astimezone(ZoneInfo("Europe/Paris"))
    assert paris == SENT
    for sent_at in (SENT, paris, SENT, paris):
        date = message_from_bytes(build(sent_at=sent_at), policy=policy.default)["Date"]
        assert str(date) == format_datetime(sent_at)
