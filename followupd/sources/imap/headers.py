"""What one message's header says, read from the bytes an IMAP server returns for it.

The mailbox source fetches only the fields of HEADER_FIELDS (``BODY.PEEK[HEADER.FIELDS
(...)]``) and reads them here, with no IMAP and no database: who wrote to whom, when,
about what, which messages it answers, and whether a machine wrote it.

Mail in a real mailbox breaks every rule: 8-bit headers in Latin-1 or UTF-8, encoded
words cut in half or in charsets nobody knows, a Date in no known format, a header
given twice, a References line of hundreds of ids. message_facts never raises: what
it cannot read is left empty and named in `problem`, and the rest is still read.

The header block is split with the email package's compat32 policy, which keeps each
field's raw text and never interprets it; each field is then read on purpose, inside
its own guard: structured reading (``policy.default``'s header classes, which decode
RFC 2047 and parse address lists by RFC 5322) where it helps, plain text where it
fails. Reading the whole message with ``policy.default`` would parse lazily on first
access and could raise from any attribute; compat32 returns what was written.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.errors import MessageError
from email.message import Message
from email.parser import BytesHeaderParser
from email.utils import parsedate_to_datetime

from followupd.config.addresses import normalized

# The fields fetched for each message, for BODY.PEEK[HEADER.FIELDS (...)]: what the
# facts are read from, and nothing else (no Received:, no body).
HEADER_FIELDS = (
    "Message-ID",
    "Date",
    "From",
    "To",
    "Cc",
    "Subject",
    "In-Reply-To",
    "References",
    "Content-Type",
    "Auto-Submitted",
    "X-Autoreply",
    "X-Autorespond",
    "Precedence",
    "X-Auto-Response-Suppress",
    "X-MS-Exchange-Inbox-Rules-Loop",
    "X-Failed-Recipients",
)

MAX_HEADER_BYTES = 64 * 1024  # beyond this, a header is junk or an attack: the rest is left
MAX_ADDRESS_FIELD = 8 * 1024  # an address list read at most (the parser is pure Python)
MAX_SUBJECT_FIELD = 8 * 1024  # encoded words take ~7 characters per decoded one at worst
MAX_SUBJECT = 300  # characters kept of the decoded subject
MAX_RECIPIENTS = 100
MAX_ANSWERS = 100  # message-ids kept from In-Reply-To and References
MAX_ID = 250  # characters of one message-id, brackets included
MAX_ADDRESS = 254  # RFC 5321's limit on a forward path, less its brackets

_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_SPACES = re.compile(r"\s+")
_FOLD = re.compile(r"\r?\n(?=[ \t])")
# what RFC 2047 decoding leaves of an encoded word it could not read: the word itself
# (cut short), bytes not in its charset (U+FFFD, or lone surrogates for unknown ones)
_UNDECODED = re.compile(r"=\?|[\ufffd\ud800-\udfff]")
_BRACKETED_ID = re.compile(r"<([^<>]*)>")
# an address email-validator refuses but mail software writes: a host with no dot
# (MAILER-DAEMON@mx1), a special-use domain (.local), kept if plainly local@domain
_PLAIN_ADDRESS = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*")
_LOOSE_ADDRESS = re.compile(r"[^\s<>()\[\],;:\"\\@]+@[^\s<>()\[\],;:\"\\@]+")
# one mailbox of an address list in its everyday form, `Name <a@b>`, `"Name" <a@b>` or
# `a@b`: read without the full RFC 5322 parser, ten times slower; anything else (a
# comment, a group, a quoted comma, an encoded word's commas) goes to that parser
_ADDR = r"[^\s<>()\[\],;:\"\\@]+@[^\s<>()\[\],;:\"\\@]+"
_EVERYDAY_MAILBOX = re.compile(
    rf'\s*(?:(?:"[^"\\]*"\s*|[^"<>()\[\],;:\\@]*)<({_ADDR})>|({_ADDR}))\s*'
)
# a field's first line as the email package takes it (its headerRE): a name, a colon
_EVERYDAY_FIELD = re.compile(r"([\x21-\x39\x3b-\x7e]+):(.*)", re.DOTALL)
_REPORT_TYPE = re.compile(r"""report-type\s*=\s*"?\s*([A-Za-z0-9._-]+)""", re.IGNORECASE)
# the senders of bounces by convention: qmail-send, Postfix, Exim, Sendmail and Gmail
# write From: MAILER-DAEMON@host; Exchange and Hotmail write postmaster@host
_DAEMON = re.compile(r"(?<![A-Za-z0-9.-])mailer-daemon(?![A-Za-z0-9-])", re.IGNORECASE)
_POSTMASTER = re.compile(r"(?<![A-Za-z0-9.-])postmaster@", re.IGNORECASE)
# what a field read by the email package may raise, beyond the defects it records
_READ_ERRORS = (
    MessageError,  # HeaderParseError
    ValueError,
    TypeError,
    LookupError,
    AttributeError,
    RecursionError,
)


@dataclass(frozen=True)
class MessageFacts:
    """What one message's header says; `problem` names what could not be read."""

    message_id: str | None  # <left@right>, as written, whitespace removed
    date: datetime | None  # from Date:, aware, in UTC
    sender: str | None  # From's address, lower case
    recipients: tuple[str, ...]  # To then Cc, lower case, each once
    subject: str  # decoded, one line, at most MAX_SUBJECT characters
    answers: tuple[str, ...]  # In-Reply-To then References, each once
    automatic: bool  # written by a machine: an auto-reply, out-of-office, bulk, a report
    report: bool  # a delivery report (a bounce, or a delay or success notice)
    problem: str | None


def message_facts(header: bytes) -> MessageFacts:
    """The facts of one message's header block (only the header: the body is ignored).

    Never raises: a field that cannot be read is left empty (None, empty) and named
    in `problem`, as in "Date: unreadable".
    """
    problems: list[str] = []
    fields = _fields(header, problems)
    subject_text = _first(fields, "subject")
    subject = _subject(subject_text, problems) if subject_text is not None else ""
    from_text = _first(fields, "from")
    sender = None
    if from_text is not None:
        senders = _addresses(from_text, "From", problems)
        sender = senders[0] if senders else None
        if sender is None and not any(problem.startswith("From:") for problem in problems):
            problems.append("From: no address")
    recipients: list[str] = []
    for name in ("to", "cc"):
        for text in fields.get(name, []):
            recipients += _addresses(text, name.capitalize(), problems)
    report = _is_report(fields, from_text or "")
    return MessageFacts(
        message_id=_message_id(_first(fields, "message-id"), problems),
        date=_date(_first(fields, "date"), problems),
        sender=sender,
        recipients=tuple(_once(recipients))[:MAX_RECIPIENTS],
        subject=subject,
        answers=_answers(fields),
        automatic=report or _is_automatic(fields),
        report=report,
        problem="; ".join(_once(problems)) or None,
    )


def mailbox_address(text: str) -> str | None:
    """An address as followupd compares it (email-validator's form, lower case), or None."""
    text = text.strip()
    if not text or len(text) > MAX_ADDRESS or "@" not in text or _CONTROLS.search(text):
        return None
    try:
        return normalized(text).lower()
    except ValueError:
        return text.lower() if _PLAIN_ADDRESS.fullmatch(text) else None


def clean_text(text: str) -> str:
    """One line of text: no control characters nor lone surrogates, spaces collapsed."""
    return _SPACES.sub(" ", _CONTROLS.sub(" ", text)).strip()


# -- the header block ---------------------------------------------------------------------


def _fields(header: bytes, problems: list[str]) -> dict[str, list[str]]:
    """Each field's values by lower-case name, in order, unfolded, 8-bit text decoded."""
    if len(header) > MAX_HEADER_BYTES:
        header = header[:MAX_HEADER_BYTES]
        problems.append(f"header: longer than {MAX_HEADER_BYTES} bytes, the rest left")
    items = _everyday_items(header)
    if items is None:
        try:
            items = _parsed_items(header)
        except _READ_ERRORS:
            problems.append("header: unreadable")
            return {}
    fields: dict[str, list[str]] = {}
    for name, value in items:
        text = _decoded_8bit(value, name, problems)
        fields.setdefault(name.strip().lower(), []).append(text)
    return fields


def _parsed_items(header: bytes) -> list[tuple[str, str]]:
    """The (name, unfolded value) of each field, as the email package's compat32 splits them."""
    parsed: Message = BytesHeaderParser(policy=policy.compat32).parsebytes(header)
    return [(str(name), _FOLD.sub("", str(value))) for name, value in parsed.raw_items()]


def _everyday_items(header: bytes) -> list[tuple[str, str]] | None:
    """`_parsed_items` of a header in the everyday form, five times quicker; else None.

    Everyday: CRLF line ends only, up to a blank line or the end; each line a
    field (a name of printable characters but the colon, then a colon) or the
    continuation of the one before (a space or tab first).
    """
    text = header.decode("ascii", "surrogateescape")  # as the email package reads bytes
    end = text.find("\r\n\r\n")
    block = text[:end] if end >= 0 else text.removesuffix("\r\n")
    bare = block.replace("\r\n", "")
    if "\r" in bare or "\n" in bare:
        return None  # a lone CR or LF
    items: list[tuple[str, str]] = []
    for line in block.split("\r\n"):
        if line[:1] in (" ", "\t"):
            if not items:
                return None
            name, value = items[-1]
            items[-1] = (name, value + line)
            continue
        field = _EVERYDAY_FIELD.fullmatch(line)
        if field is None:
            return None
        items.append((field[1], field[2].lstrip(" \t")))
    return items


def _decoded_8bit(raw: str, name: str, problems: list[str]) -> str:
    """A raw field's text: 8-bit bytes read as UTF-8 (RFC 6532), else Windows-1252.

    The parser keeps 8-bit bytes as surrogate escapes; Windows-1252 rather than
    Latin-1 because it is what mail clients that wrote raw 8-bit mostly meant.
    """
    if raw.isascii():
        return raw
    data = raw.encode("utf-8", "surrogateescape")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        problems.append(f"{name}: 8-bit text not in UTF-8, read as Windows-1252")
        return data.decode("cp1252", "replace")


def _first(fields: dict[str, list[str]], name: str) -> str | None:
    values = fields.get(name)
    return values[0] if values else None


def _once(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


# -- each fact ----------------------------------------------------------------------------


def _subject(text: str, problems: list[str]) -> str:
    text = text[:MAX_SUBJECT_FIELD]
    try:
        decoded = str(policy.default.header_factory("subject", text))
        if "=?" in text and _UNDECODED.search(decoded):
            problems.append("Subject: broken encoded words, kept as written")
    except _READ_ERRORS:
        problems.append("Subject: unreadable encoded words, kept as written")
        decoded = text
    return clean_text(decoded)[:MAX_SUBJECT].rstrip()


def _addresses(text: str, name: str, problems: list[str]) -> list[str]:
    """The addresses of an address list, in order; the display names are left."""
    if len(text) > MAX_ADDRESS_FIELD:  # cut at a comma, so no address is cut in two
        text = text[: text.rfind(",", 0, MAX_ADDRESS_FIELD) + 1 or MAX_ADDRESS_FIELD]
        problems.append(f"{name}: longer than {MAX_ADDRESS_FIELD} characters, the rest left")
    specs = _everyday_addresses(text)
    if specs is None:
        specs = _parsed_addresses(text, name)
    found = [address for spec in specs if (address := mailbox_address(spec)) is not None]
    if not found and "@" in text:
        found = [a for spec in _LOOSE_ADDRESS.findall(text) if (a := mailbox_address(spec))]
        if not found:
            problems.append(f"{name}: unreadable")
    return found


def _parsed_addresses(text: str, name: str) -> list[str]:
    """The addr-specs of an address list, by RFC 5322's parser; by a loose match if it fails."""
    try:
        parsed = policy.default.header_factory(name.lower(), text)
        return [address.addr_spec for address in getattr(parsed, "addresses", ())]
    except _READ_ERRORS:
        return _LOOSE_ADDRESS.findall(text)


def _everyday_addresses(text: str) -> list[str] | None:
    """The addresses of a list whose every mailbox is in an everyday form; else None."""
    specs = []
    for part in text.split(","):
        if not part.strip():
            continue
        found = _EVERYDAY_MAILBOX.fullmatch(part)
        if found is None:
            return None
        specs.append(found.group(1) or found.group(2))
    return specs


def _message_ids(text: str) -> list[str]:
    """The message-ids of a field, normalized to <...>; junk between them left."""
    inside = _BRACKETED_ID.findall(text)
    if not inside:  # written without brackets by some old or broken mailers
        inside = [token for token in _SPACES.split(text) if "@" in token]
    ids = []
    for candidate in inside:
        bare = "".join(candidate.split()).strip("<>")
        if bare and len(bare) + 2 <= MAX_ID and not _CONTROLS.search(bare):
            ids.append(f"<{bare}>")
    return _once(ids)


def _message_id(text: str | None, problems: list[str]) -> str | None:
    if text is None:
        return None
    ids = _message_ids(text)
    if not ids:
        problems.append("Message-ID: unreadable")
        return None
    return ids[0]


def _answers(fields: dict[str, list[str]]) -> tuple[str, ...]:
    """In-Reply-To's ids, then References' (the thread's first and latest when too many)."""
    replied = _once(i for text in fields.get("in-reply-to", []) for i in _message_ids(text))
    replied = replied[: MAX_ANSWERS // 2]
    references = _once(i for text in fields.get("references", []) for i in _message_ids(text))
    room = MAX_ANSWERS - len(replied)
    if len(references) > room:
        references = references[:1] + references[len(references) - room + 1 :]
    return tuple(_once(replied + references))


def _date(text: str | None, problems: list[str]) -> datetime | None:
    if text is None:
        return None
    try:
        when = parsedate_to_datetime(clean_text(text)[:200])
        # no zone, or -0000 (RFC 5322 3.3: in UTC, local zone unknown): read as UTC
        return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    except (*_READ_ERRORS, OverflowError):
        problems.append("Date: unreadable")
        return None


# -- written by a machine -----------------------------------------------------------------


def _is_automatic(fields: dict[str, list[str]]) -> bool:
    """Whether the header says a program wrote the message, not a person.

    - Auto-Submitted (RFC 3834 section 5) other than "no": "auto-replied" from Gmail's
      vacation responder, Dovecot's and Cyrus's (Fastmail's) Sieve vacation ("auto-
      replied (vacation)"), Zimbra; "auto-generated" from Exchange's out-of-office and
      mailbox rules and from bounces; "auto-notified" from Sieve notify (RFC 5436).
    - X-Autoreply (Gmail's vacation responder writes "yes", as other autoresponders
      do) and X-Autorespond (vacation programs): present at all.
    - Precedence (RFC 3834 section 3.1.8, historic): "auto_reply"; "bulk" and "junk"
      too, as on Gmail's and Dovecot's vacation replies and on mass mailings. Not
      "list": a mailing list relays what a person wrote.
    - Exchange's out-of-office, where it has no Auto-Submitted, carries both
      X-MS-Exchange-Inbox-Rules-Loop (set when a mailbox rule redirects, forwards or
      auto-replies) and X-Auto-Response-Suppress (All or OOF). Neither says it alone:
      X-Auto-Response-Suppress asks the recipient's server not to auto-reply, and
      Outlook writes it on messages people send; the loop header alone is a
      message a rule forwarded.
    - Content-Type multipart/report of any kind: read receipts (RFC 8098) and the
      like; the delivery reports of _is_report count as automatic too.
    """
    for text in fields.get("auto-submitted", []):
        keyword = re.split(r"[\s;(]", text.strip().lower(), maxsplit=1)[0]
        if keyword and keyword != "no":
            return True
    if "x-autoreply" in fields or "x-autorespond" in fields:
        return True
    for text in fields.get("precedence", []):
        if text.strip().lower() in ("auto_reply", "bulk", "junk"):
            return True
    if _media_type(fields) == "multipart/report":  # read receipts (RFC 8098) and the like
        return True
    suppress = " ".join(fields.get("x-auto-response-suppress", [])).lower()
    return "x-ms-exchange-inbox-rules-loop" in fields and ("all" in suppress or "oof" in suppress)


def _is_report(fields: dict[str, list[str]], from_text: str) -> bool:
    """Whether the message reports on the delivery of another (a DSN or a bounce).

    - Content-Type multipart/report with report-type delivery-status (RFC 3464 and
      6522; global-delivery-status, RFC 6533): Postfix, Sendmail, Exim 4.8x+, Gmail,
      Exchange and Hotmail all send these.
    - X-Failed-Recipients: Exim's bounces (and Gmail's), multipart/report or not.
    - From MAILER-DAEMON: the sender of bounces by convention, never a person;
      qmail-send's bounces (text/plain, Subject "failure notice") have nothing else
      to tell them by.
    - From postmaster with a multipart/report of no report-type given.
    """
    content_type = _first(fields, "content-type") or ""
    multipart_report = _media_type(fields) == "multipart/report"
    found = _REPORT_TYPE.search(content_type)
    report_type = found.group(1).lower() if found else None
    if multipart_report and report_type in ("delivery-status", "global-delivery-status"):
        return True
    if "x-failed-recipients" in fields:
        return True
    if _DAEMON.search(from_text):
        return True
    return multipart_report and report_type is None and bool(_POSTMASTER.search(from_text))


def _media_type(fields: dict[str, list[str]]) -> str:
    return (_first(fields, "content-type") or "").split(";", 1)[0].strip().lower()
