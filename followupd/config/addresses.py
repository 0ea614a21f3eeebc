"""Email addresses: checked with email-validator where they come in, sent as RFC 6531 says.

An address from a data file or the config is checked once, offline (no DNS
lookup, ever), and kept in the form email-validator normalises it to: the
domain in Unicode and lower case (``jeanne@exämple.example``, whether it was
written so or as ``xn--exmple-cua.example``), the local part NFC-normalised.
Beside what RFC 5321 and 5322 forbid, an RFC 2047 encoded word in the local
part (``=?utf-8?b?…?=@b.example``) is refused: RFC 2047 section 5 forbids it
there, and mail software that decodes it delivers to another mailbox.

At send time an address is written with its domain in ASCII (punycode), which
every server takes; only a local part that is not ASCII needs a server that
offers SMTPUTF8 (RFC 6531).
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported when an address is not a common one (`_common`): 16 ms
    from email_validator import ValidatedEmail

# =?charset?encoding?text?= (RFC 2047 section 2)
ENCODED_WORD = re.compile(r"=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=")
# email-validator's SPECIAL_USE_DOMAIN_NAMES, which it refuses (tests/test_addresses.py
# compares them), so that a common address is told without importing it
SPECIAL_USE_DOMAIN_NAMES = ("arpa", "invalid", "local", "localhost", "onion", "test")


@lru_cache(maxsize=4096)  # every message checks its sender and Reply-To again: ~0.1 ms each
def checked(text: str) -> ValidatedEmail:
    """`text` as email-validator reads it, or ValueError saying what is wrong with it.

    The result is shared (cached): read it, never change it.
    """
    from email_validator import EmailNotValidError, validate_email

    try:
        found = validate_email(text, check_deliverability=False)
    except EmailNotValidError as error:
        raise ValueError(f"{text!r} is not an email address: {error}") from None
    if ENCODED_WORD.search(found.local_part):
        raise ValueError(
            f"{text!r} is not an email address: the part before the @-sign is an RFC 2047 "
            "encoded word, which mail software would decode into another address"
        )
    return found


def normalized(text: str) -> str:
    """The address as followupd stores it; ValueError if it is not one.

    A common address (`_common`) is stored as written: email-validator
    normalises it to itself (tests/test_addresses.py checks it does).
    """
    if _common(text):
        return text
    return str(checked(text).normalized)


# an address as followupd stores the common ones: ASCII, its domain in lower case; one
# email-validator takes as it is (see _common), so storing or sending it needs no call to it
# (~0.1 ms each, and 16 ms to import it)
COMMON_ADDRESS = re.compile(
    r"[A-Za-z0-9_%+-]+(?:\.[A-Za-z0-9_%+-]+)*@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+"
    r"([a-z]{2,63})",
    re.ASCII,
)


def mailbox_on_the_wire(text: str) -> tuple[str, str]:
    """``Name <address>`` or a bare address: (name, the address as sent); ValueError if bad.

    A common address (ASCII, as followupd stores it) is sent as it is; any
    other is checked again (`split_mailbox`, `on_the_wire`).
    """
    name, address = _split(text)
    if _common(address):
        return name, address
    name, address = split_mailbox(text)
    return name, on_the_wire(address)


def _common(address: str) -> bool:
    """Whether `address` is a common one (COMMON_ADDRESS), which email-validator takes as it is.

    A domain with "--" in it is not: an xn-- label is normalised to Unicode,
    and IDNA refuses other labels with "--" at 3 and 4.
    """
    found = COMMON_ADDRESS.fullmatch(address)
    return (
        found is not None
        and found.group(1) not in SPECIAL_USE_DOMAIN_NAMES
        and len(address) <= 254
        and len(address.partition("@")[0]) <= 64
        and "--" not in address.partition("@")[2]
    )


def _split(text: str) -> tuple[str, str]:
    """(name, address) as written in ``Name <address>`` or a bare address; unchecked."""
    stripped = text.strip()
    if not (stripped.endswith(">") and "<" in stripped):
        return "", text
    name, _, address = stripped[:-1].rpartition("<")
    name = name.strip()
    if len(name) >= 2 and name[0] == name[-1] == '"':
        name = name[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return name, address


def split_mailbox(text: str) -> tuple[str, str]:
    """``Name <address>`` or a bare address: (name, normalised address); ValueError if bad.

    The address is in the last angle brackets; the name is what comes before,
    taken as written (quotes around it removed): accents, dots and commas are
    common in names, and the email package quotes or encodes it when it
    writes the header.
    """
    name, address = _split(text)
    return name, normalized(address)


def on_the_wire(address: str) -> str:
    """How `address` is written in a message and its envelope: ASCII wherever it can be.

    The domain goes in ASCII (punycode), so no server needs SMTPUTF8 for it;
    a local part that is not ASCII stays as it is, and needs SMTPUTF8.
    """
    found = checked(address)
    return str(found.ascii_email or found.normalized)


def ascii_domain(domain: str) -> str:
    """A domain as an ASCII one (punycode); one already ASCII is left exactly as it is."""
    if domain.isascii():
        return domain
    return str(checked(f"postmaster@{domain}").ascii_domain)


def needs_smtputf8(address: str) -> bool:
    """Whether sending to or from `address` (as written on the wire) needs SMTPUTF8."""
    return not address.isascii()
