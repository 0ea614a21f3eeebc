"""Email messages for follow-ups: headers, threading, text and HTML.

Every header is set through the standard library's email package with the
SMTP policy, which refuses a value containing a line break: no data field
(a name, a subject) can add a header. The Message-ID is derived from the
follow-up's key, so every attempt at the same follow-up carries the same one,
and the nudges of one invoice thread together through In-Reply-To and
References.

Addresses are checked again here (followupd.config.addresses): one stored before
followupd checked them fails its follow-up alone, with the reason. They are
written with their domain in ASCII; a local part that is not ASCII makes the
message an SMTPUTF8 one (RFC 6531, 6532), with its headers in UTF-8.
"""

from __future__ import annotations

import hashlib
import html
import re
from collections.abc import Sequence
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime

from followupd.channels.failure import DeliveryError
from followupd.config.addresses import ascii_domain, needs_smtputf8, on_the_wire, split_mailbox

_TEL = re.compile(r"tel:(\+?[0-9]{3,20})")
# RFC 5322 allows lines of 998 characters: identifiers stay on one line, unfolded,
# which every client threads on
_POLICY = SMTP.clone(max_line_length=998)
_UTF8_POLICY = _POLICY.clone(utf8=True)  # for an address whose local part is not ASCII


def message_id(key: str, domain: str) -> str:
    """The Message-ID of the follow-up `key`: the same on every retry."""
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:40]
    return f"<{digest}.followupd@{ascii_domain(domain)}>"


def mailbox(text: str, header: str = "To") -> Address:
    """``Name <address>`` or a bare address as a header value that cannot break lines.

    DeliveryError (permanent) if it holds no valid address, naming the `header`.
    """
    try:
        name, address = split_mailbox(text)
        user, domain = on_the_wire(address).rsplit("@", 1)
    except ValueError as error:
        raise DeliveryError(f"{header}: {error}", permanent=True) from None
    return Address(display_name=name, username=user, domain=domain)


def text_to_html(text: str) -> str:
    """A plain-text body as simple HTML: paragraphs, line breaks, tel: links."""
    paragraphs = []
    for block in re.split(r"\n\s*\n", text.strip()):
        escaped = html.escape(block)
        linked = _TEL.sub(r'<a href="tel:\1">\1</a>', escaped)
        paragraphs.append("<p>" + linked.replace("\n", "<br>\n") + "</p>")
    return '<!doctype html>\n<html><body style="font-family: sans-serif">\n' + (
        "\n".join(paragraphs) + "\n</body></html>\n"
    )


def build_message(
    *,
    key: str,
    sender: str,
    recipient: str,
    reply_to: str,
    subject: str,
    body: str,
    sent_at: datetime,
    earlier_in_thread: Sequence[str] = (),
    language: str = "fr",
    html: str | None = None,
) -> EmailMessage:
    """The email for one follow-up.

    `earlier_in_thread` lists the Message-IDs already sent in its thread,
    oldest first: the message replies to the last one and references them all.
    The HTML part is `html` when given (a template's own, the digest's), else
    made from `body`.
    """
    source = mailbox(sender, "From")
    target = mailbox(recipient, "To")
    answer = mailbox(reply_to, "Reply-To")
    utf8 = any(needs_smtputf8(party.addr_spec) for party in (source, target, answer))
    message = EmailMessage(policy=_UTF8_POLICY if utf8 else _POLICY)
    message["From"] = source
    message["To"] = target
    message["Reply-To"] = answer
    message["Subject"] = subject
    message["Date"] = format_datetime(sent_at)
    message["Message-ID"] = message_id(key, sender.rsplit("@", 1)[1].rstrip(">"))
    message["Auto-Submitted"] = "auto-generated"
    if earlier_in_thread:
        message["In-Reply-To"] = earlier_in_thread[-1]
        message["References"] = " ".join(earlier_in_thread)
    message.set_content(body)
    message.add_alternative(text_to_html(body) if html is None else html, subtype="html")
    message["Content-Language"] = language  # after the parts: making them drops Content-*
    return message
