"""Email messages: headers, deterministic Message-ID, threading, no header injection."""

from __future__ import annotations

from datetime import UTC, datetime
from email import message_from_bytes, policy

import pytest

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
