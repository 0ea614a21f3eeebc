"""Email messages for follow-ups: headers, threading, text and HTML, as the bytes
sent.

A message is written straight to bytes from a fixed MIME skeleton
(multipart/alternative: the text, then the HTML), not through the email
package's header registry: building one costs tens of microseconds, not
milliseconds, and a delivery pass sends thousands. What the email package gave
is kept: no data field (a name, a subject) can add a header (a line break in
one fails that message); text that is not ASCII goes in RFC 2047 encoded words
in headers and as 8bit UTF-8 bodies (base64 past 998-octet lines); lines end
with CRLF, none longer than 998 octets. The Message-ID is derived from the
follow-up's key, so every attempt at the same follow-up carries the same one,
and the nudges of one invoice thread together through In-Reply-To and
References.

Addresses are checked again here (followupd.config.addresses, cached): one
stored before followupd checked them fails its follow-up alone, with the
reason. They are written with their domain in ASCII; a local part that is not
ASCII makes the message an SMTPUTF8 one (RFC 6531, 6532), its addresses in
UTF-8.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import html
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import format_datetime

from followupd.channels.failure import DeliveryError
from followupd.config.addresses import ascii_domain, mailbox_on_the_wire, needs_smtputf8

_TEL = re.compile(r"tel:(\+?[0-9]{3,20})")
_PARAGRAPHS = re.compile(r"\n\s*\n")
# RFC 5322 allows lines of 998 characters: identifiers stay on one line, unfolded,
# which every client threads on; so do encoded words, as the email package wrote them
_LINE = 998
_ENCODED_WORD = 900
# what a header value may hold as it is: printable ASCII, no "=?" an MUA would decode
_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~ -]*")  # atext and spaces: a bare phrase
_WORD = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]*")  # one atom
_Q_SAFE = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!*+-/"
# each byte (as the character of that number, the bytes read as Latin-1) as "Q" writes it
_Q = {byte: chr(byte) if byte in _Q_SAFE else "_" if byte == 32 else f"={byte:02X}"
      for byte in range(256)}  # fmt: skip
_BREAKS = re.compile(r"[\r\n\x00]")


@dataclass(frozen=True)
class Email:
    """One message as it goes on the wire, with its envelope."""

    sender: str  # the envelope's sender and recipients, as written on the wire
    recipients: tuple[str, ...]
    message_id: str
    smtputf8: bool  # an address is not ASCII before its @-sign (RFC 6531)
    data: bytes  # the whole message, lines ending with CRLF

    def as_bytes(self) -> bytes:
        return self.data


def message_id(key: str, domain: str) -> str:
    """The Message-ID of the follow-up `key`: the same on every retry."""
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:40]
    return f"<{digest}.followupd@{ascii_domain(domain)}>"


@functools.lru_cache(maxsize=256)  # a pass's sender and Reply-To are the same for every email
def mailbox(text: str, header: str = "To") -> tuple[str, str]:
    """``Name <address>`` or a bare address: (the header's value, the address on the wire).

    DeliveryError (permanent) if it holds no valid address, naming the `header`.
    """
    try:
        name, wire = mailbox_on_the_wire(text)
    except ValueError as error:
        raise DeliveryError(f"{header}: {error}", permanent=True) from None
    if not name:
        return wire, wire
    phrase = _phrase(name, header, len(header) + 2)
    last = phrase.rpartition("\r\n")[2] if "\r\n" in phrase else f"{header}: {phrase}"
    if len(last) + len(wire) + 3 > _LINE:  # folded before it
        return f"{phrase}\r\n <{wire}>", wire
    return f"{phrase} <{wire}>", wire


def _phrase(name: str, header: str, used: int) -> str:
    """A display name as RFC 5322 writes it: bare, quoted, or with encoded words."""
    if _BREAKS.search(name):
        raise DeliveryError(f"{header}: a line break in the name {name!r}", permanent=True)
    if _ATOM.fullmatch(name) and "=?" not in name and name.strip() == name and name:
        return name
    if _printable(name) and "=?" not in name:
        return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return _words(name, used, _is_atom)


def _is_atom(word: str) -> bool:
    return _WORD.fullmatch(word) is not None and "=?" not in word


def _printable(text: str) -> bool:
    """Whether `text` is printable ASCII (space to tilde), without a regex's call."""
    return text.isascii() and text.isprintable()


def _is_plain(word: str) -> bool:
    return _printable(word) and "=?" not in word and len(word) < _LINE // 2


def _words(text: str, used: int, plain: Callable[[str], bool]) -> str:
    """Free text as header words: those `plain` takes as they are, each run of the
    others in one RFC 2047 encoded word (their spaces inside, since the space between
    two encoded words is dropped when read), as the email package wrote them; folded
    between words past 998 characters. `used`: the characters before it."""
    tokens: list[str] = []
    run: list[str] = []
    for word in text.split(" "):
        if plain(word):
            if run:
                tokens += _encoded(" ".join(run))
                run = []
            tokens.append(word)
        else:
            run.append(word)
    if run:
        tokens += _encoded(" ".join(run))
    lines, line = [], ""
    for number, token in enumerate(tokens):
        if number and used + len(line) + 1 + len(token) > _LINE and line.strip():
            lines.append(line)
            line, used = token, 1
        else:
            line = f"{line} {token}" if number else token
    lines.append(line)
    return "\r\n ".join(lines)


def _encoded(text: str) -> list[str]:
    """`text` as an RFC 2047 encoded word, "Q" unless base64 is 5 shorter ("Q"
    leaves only letters, digits and !*+-/ as they are, which a display name allows);
    several past 900 characters, split between characters, never inside one's bytes."""
    raw = text.encode("utf-8")
    quoted, base64_length = raw.decode("latin-1").translate(_Q), 4 * ((len(raw) + 2) // 3)
    if len(quoted) + 12 <= _ENCODED_WORD and len(quoted) - base64_length < 5:  # as it did
        return [f"=?utf-8?q?{quoted}?="]
    if base64_length + 12 <= _ENCODED_WORD:
        return [f"=?utf-8?b?{base64.b64encode(raw).decode('ascii')}?="]
    half = len(text) // 2
    return _encoded(text[:half]) + _encoded(text[half:])


def _unstructured(name: str, value: str) -> str:
    """A header line (without its CRLF) holding free text, as it is where it can be."""
    if _BREAKS.search(value):
        raise DeliveryError(f"{name}: a line break in {value!r}", permanent=True)
    if _printable(value) and "=?" not in value and len(name) + 2 + len(value) <= _LINE:
        return f"{name}: {value}"
    return f"{name}: {_words(value, len(name) + 2, _is_plain)}"


def _identifiers(name: str, ids: Sequence[str]) -> str:
    """A header of Message-IDs, on one line, folded between them past 998 characters."""
    if any(not _printable(each) or " " in each for each in ids):
        raise DeliveryError(f"{name}: not a Message-ID among {list(ids)!r}", permanent=True)
    lines, line = [], f"{name}:"
    for each in ids:
        if len(line) + 1 + len(each) > _LINE and line != f"{name}:":
            lines.append(line)
            line = ""
        line += f" {each}"
    lines.append(line)
    return "\r\n".join(lines)


def _body(text: str) -> tuple[str, bytes]:
    """A text part's transfer encoding and its bytes: 7bit, 8bit, or base64 for long lines."""
    raw = text.encode("utf-8")
    lines = raw.splitlines()  # \r, \n and \r\n, as the email package splits them
    if max(map(len, lines), default=0) <= _LINE:
        encoding = "7bit" if raw.isascii() else "8bit"
        return encoding, b"\r\n".join(lines) + b"\r\n"
    encoded = base64.encodebytes(b"\r\n".join(lines) + b"\r\n")
    return "base64", encoded.replace(b"\n", b"\r\n")


def _part(subtype: str, text: str) -> bytes:
    encoding, data = _body(text)
    head = (
        f'Content-Type: text/{subtype}; charset="utf-8"\r\n'
        f"Content-Transfer-Encoding: {encoding}\r\n\r\n"
    )
    return head.encode("ascii") + data


def text_to_html(text: str) -> str:
    """A plain-text body as simple HTML: paragraphs, line breaks, tel: links."""
    # escaping and linking leave the blank lines between paragraphs as they are: once for all
    linked = _TEL.sub(r'<a href="tel:\1">\1</a>', html.escape(text.strip()))
    paragraphs = "\n".join(
        "<p>" + block.replace("\n", "<br>\n") + "</p>" for block in _PARAGRAPHS.split(linked)
    )
    return (
        '<!doctype html>\n<html><body style="font-family: sans-serif">\n'
        f"{paragraphs}\n</body></html>\n"
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
) -> Email:
    """The email for one follow-up.

    `earlier_in_thread` lists the Message-IDs already sent in its thread,
    oldest first: the message replies to the last one and references them all.
    The HTML part is `html` when given (a template's own, the digest's), else
    made from `body`. DeliveryError (permanent) for an address that is not
    one, or a line break in a header's text.
    """
    source, source_address = mailbox(sender, "From")
    target, target_address = mailbox(recipient, "To")
    answer, answer_address = mailbox(reply_to, "Reply-To")
    utf8 = any(map(needs_smtputf8, (source_address, target_address, answer_address)))
    identifier = message_id(key, sender.rsplit("@", 1)[1].rstrip(">"))
    parts = (_part("plain", body), _part("html", text_to_html(body) if html is None else html))
    boundary = _boundary(identifier, parts)
    lines = [
        f"From: {source}",
        f"To: {target}",
        f"Reply-To: {answer}",
        _unstructured("Subject", subject),
        f"Date: {_date(sent_at, sent_at.utcoffset())}",
        f"Message-ID: {identifier}",
        "Auto-Submitted: auto-generated",
    ]
    if earlier_in_thread:
        lines.append(_identifiers("In-Reply-To", earlier_in_thread[-1:]))
        lines.append(_identifiers("References", earlier_in_thread))
    lines += [
        "MIME-Version: 1.0",
        f'Content-Type: multipart/alternative; boundary="{boundary}"',
        _unstructured("Content-Language", language),
        "",
        "",
    ]
    separator = f"--{boundary}\r\n".encode("ascii")
    data = b"".join(
        (
            "\r\n".join(lines).encode("utf-8"),
            separator,
            parts[0],
            b"\r\n",
            separator,
            parts[1],
            b"\r\n",
            f"--{boundary}--\r\n".encode("ascii"),
        )
    )
    return Email(source_address, (target_address,), identifier, utf8, data)


@functools.lru_cache(maxsize=16)  # a pass's messages are all sent at its one instant
def _date(sent_at: datetime, offset: timedelta | None) -> str:
    """The Date header's value; `offset`, sent_at's, in the cache's key: instants equal in
    other zones are written in their own."""
    return format_datetime(sent_at)


def _boundary(identifier: str, parts: Sequence[bytes]) -> str:
    """A MIME boundary found in neither part, the same for the same message."""
    seed = hashlib.sha256(identifier.encode("ascii")).hexdigest()[:24]
    for attempt in range(100):
        boundary = f"=_followupd_{seed}_{attempt}"
        if not any(boundary.encode("ascii") in part for part in parts):
            return boundary
    raise DeliveryError("no MIME boundary found outside the message's text", permanent=True)
