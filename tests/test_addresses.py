"""Email addresses: checked at import and in the config, sent as RFC 6531 says (issue 12, point 10).

The SMTP server is aiosmtpd on loopback, with and without SMTPUTF8, and it
records each envelope as the client gave it.
"""

from __future__ import annotations

import asyncio
import mailbox
import random
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import email_validator
import pytest
from aiosmtpd.controller import Controller
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select, update
from sqlalchemy.engine import URL

from followupd.channels.email.message import message_id
from followupd.config.addresses import (
    COMMON_ADDRESS,
    SPECIAL_USE_DOMAIN_NAMES,
    mailbox_on_the_wire,
    normalized,
    on_the_wire,
    split_mailbox,
)
from followupd.config.load import parse_settings
from followupd.config.settings import Settings
from followupd.delivery.deliverer import Deliverer
from followupd.engine.evaluation import evaluate
from followupd.errors import EX_CONFIG, ConfigError, DataError
from followupd.rules.registry import enabled_rules
from followupd.sources.files.importer import import_files
from followupd.store.db import Store
from followupd.store.models import Contact, FollowUp
from tests.conftest import MINIMAL_CONFIG, RunCli, database_digest
from tests.smtpserver import free_port

PARIS = ZoneInfo("Europe/Paris")
# "victim@evil.example", as an RFC 2047 encoded word: a decoder reads another mailbox
ENCODED = "=?utf-8?b?dmljdGltQGV2aWwuZXhhbXBsZQ==?=@b.example"
IDN = "jeanne@exämple.example"
IDN_ASCII = "jeanne@xn--exmple-cua.example"
UTF8_LOCAL = "josé@exämple.example"


def data(acme_email: str, globex_email: str = "john@globex.example") -> str:
    """Two clients, each with a contact and an invoice due on 30 November 2026."""
    return f"""\
[[clients]]
key = "acme"
name = "ACME SA"
[[clients]]
key = "globex"
name = "Globex"
[[contacts]]
key = "jdupont"
client = "acme"
name = "Jeanne Dupont"
email = "{acme_email}"
[[contacts]]
key = "jsmith"
client = "globex"
name = "John Smith"
email = "{globex_email}"
[[missions]]
key = "acme-audit"
client = "acme"
title = "Audit du SI"
contact = "jdupont"
start = 2026-09-01
contract_signed = 2026-08-25
[[missions]]
key = "globex-crm"
client = "globex"
title = "CRM"
contact = "jsmith"
start = 2026-09-01
contract_signed = 2026-08-25
[[invoices]]
number = "F-1"
mission = "acme-audit"
amount = 1000
issued = 2026-10-31
due = 2026-11-30
[[invoices]]
number = "F-2"
mission = "globex-crm"
amount = 2000
issued = 2026-10-31
due = 2026-11-30
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def stored_emails(store: Store) -> dict[str, str | None]:
    with store.session() as session:
        rows = session.execute(select(Contact.key, Contact.email))
        return dict(rows.all())


# -- at import ----------------------------------------------------------------------------


def test_an_encoded_word_or_a_line_break_is_refused_at_import_naming_record_and_field(
    cli: RunCli, home: Path, store: Store, database_url: URL, tmp_path: Path
) -> None:
    (home / "followupd.toml").write_text(MINIMAL_CONFIG, encoding="utf-8")
    path = write(tmp_path, "bad.toml", data(ENCODED, "john@globex.example\\n"))
    before = database_digest(database_url)
    result = cli("import", path)
    assert result.code == 65, result
    lines = path.read_text(encoding="utf-8").splitlines()
    first = lines.index(f'email = "{ENCODED}"') + 1
    second = lines.index('email = "john@globex.example\\n"') + 1
    assert (
        f"{path}:{first}: contacts[0] (jdupont) email: {ENCODED!r} is not an email address: "
        "the part before the @-sign is an RFC 2047 encoded word" in result.err
    )
    assert (
        f"{path}:{second}: contacts[1] (jsmith) email: 'john@globex.example\\n' "
        "is not an email address: " in result.err
    )
    assert "U+000A" in result.err  # the line break, named
    assert "Traceback" not in result.err
    assert database_digest(database_url) == before


@pytest.mark.parametrize(
    "address",
    [
        "jeanne@acme.example ",  # a space after
        "Jeanne <jeanne@acme.example>",  # a header, not an address
        '"jeanne dupont"@acme.example',  # a quoted local part
        "jeanne@[127.0.0.1]",  # a domain literal
        "jeanne@acme",  # no dot: not a domain on the Internet
        "jeanne@acme.local",  # a special-use name (RFC 6762)
        "=?utf-8?q?jeanne?=@acme.example",  # Q encoding too
    ],
)
def test_addresses_that_are_not_plain_ones_are_refused(
    store: Store, tmp_path: Path, address: str
) -> None:
    path = write(tmp_path, "bad.json", '{"clients": [{"key": "acme", "name": "ACME"}], '
                 '"contacts": [{"key": "j", "client": "acme", "name": "J", '
                 f'"email": "{address.replace(chr(34), chr(92) + chr(34))}"}}]}}')  # fmt: skip
    with pytest.raises(DataError) as caught:
        import_files(store, [path], PARIS)
    [problem] = caught.value.problems
    assert problem.where == "contacts[0] (j) email"
    assert problem.message.startswith(f"{address!r} is not an email address: ")
    assert stored_emails(store) == {}


def test_internationalised_addresses_are_stored_as_email_validator_normalises_them(
    store: Store, tmp_path: Path
) -> None:
    text = data("jeanne@xn--EXMPLE-cua.Example", UTF8_LOCAL)
    report = import_files(store, [write(tmp_path, "idn.toml", text)], PARIS)
    assert report.created["contacts"] == 2
    assert stored_emails(store) == {"jdupont": IDN, "jsmith": UTF8_LOCAL}
    again = import_files(store, [write(tmp_path, "u.toml", data(IDN, UTF8_LOCAL))], PARIS)
    assert again.changes == 0, "the Unicode and the punycode forms are one address"


# -- in the config --------------------------------------------------------------------------


def config_problems(text: str, tmp_path: Path) -> dict[str, tuple[int | None, str]]:
    with pytest.raises(ConfigError) as caught:
        parse_settings(text, tmp_path / "followupd.toml", {"HOME": str(tmp_path)})
    assert caught.value.exit_code == EX_CONFIG
    return {p.where or "": (p.line, p.message) for p in caught.value.problems}


def test_a_bad_owner_email_exits_78_with_line_and_key(cli: RunCli, home: Path) -> None:
    path = home / "followupd.toml"
    path.write_text(f'[owner]\nname = "Claire"\nemail = "{ENCODED}"\n', encoding="utf-8")
    result = cli("check", "--offline", "--config", path)
    assert result.code == 78, result
    assert f"{path}:3: owner.email: {ENCODED!r} is not an email address" in result.err


@pytest.mark.parametrize(
    ("lines", "where", "line"),
    [
        ('[owner]\nname = "C"\nemail = "claire@cabinet.example\\n"\n', "owner.email", 3),
        (
            '[[owners]]\nkey = "c"\nname = "C"\nemail = "c@cabinet.example"\n'
            f'[[owners]]\nkey = "b"\nname = "B"\nemail = "{ENCODED}"\n',
            "owners[1].email",
            8,
        ),
        (
            MINIMAL_CONFIG + f'[smtp]\nhost = "smtp.example.net"\nfrom = "Claire <{ENCODED}>"\n',
            "smtp.from",
            8,
        ),
        (
            MINIMAL_CONFIG + '[smtp]\nhost = "smtp.example.net"\nfrom = "c@cabinet.example "\n',
            "smtp.from",
            8,
        ),
    ],
)
def test_every_address_of_the_config_is_checked(
    tmp_path: Path, lines: str, where: str, line: int
) -> None:
    problems = config_problems(lines, tmp_path)
    assert where in problems, problems
    assert problems[where][0] == line
    assert "is not an email address" in problems[where][1]


def test_config_addresses_may_be_internationalised_and_names_are_free(tmp_path: Path) -> None:
    text = (
        '[owner]\nname = "Hélène Dupré"\nemail = "helene@CABINET-Dupré.example"\n'
        '[smtp]\nhost = "smtp.example.net"\n'
        'from = "Hélène Dupré, Cabinet D. & Associés <helene@cabinet-dupré.example>"\n'
    )
    settings = parse_settings(text, tmp_path / "followupd.toml", {"HOME": str(tmp_path)})
    assert settings.owner.email == "helene@cabinet-dupré.example"
    assert settings.smtp is not None
    assert settings.smtp.sender == (
        "Hélène Dupré, Cabinet D. & Associés <helene@cabinet-dupré.example>"
    )


@pytest.mark.parametrize(
    ("text", "name", "address"),
    [
        ("claire@cabinet.example", "", "claire@cabinet.example"),
        ("Claire Martin <claire@cabinet.example>", "Claire Martin", "claire@cabinet.example"),
        ('"Martin, Claire" <claire@cabinet.example>', "Martin, Claire", "claire@cabinet.example"),
        ("Claire <Cabinet> <claire@CABINET.example>", "Claire <Cabinet>", "claire@cabinet.example"),
        ("<claire@xn--cabinet-dupr-meb.example>", "", "claire@cabinet-dupré.example"),
    ],
)
def test_a_mailbox_is_a_free_name_and_a_checked_address(text: str, name: str, address: str) -> None:
    assert split_mailbox(text) == (name, address)


def test_message_ids_keep_an_ascii_domain_as_written_and_encode_an_idn_one() -> None:
    assert message_id("k", "Cabinet.example").endswith("@Cabinet.example>"), "as before"
    assert message_id("k", "cabinet-dupré.example").endswith("@xn--cabinet-dupr-meb.example>")


# -- at send ---------------------------------------------------------------------------------


@dataclass
class Envelopes:
    """What an SMTP server received: each envelope as the client gave it, and the message."""

    received: list[tuple[str, list[str], list[str], EmailMessage]] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = message_from_bytes(envelope.original_content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        received = (envelope.mail_from, list(envelope.rcpt_tos), list(envelope.mail_options))
        self.received.append((*received, parsed))
        return "250 OK"

    def to(self, address: str) -> list[tuple[str, list[str], list[str], EmailMessage]]:
        return [item for item in self.received if address in item[1]]


@contextmanager
def smtp(smtputf8: bool) -> Iterator[tuple[Envelopes, int]]:
    handler, port = Envelopes(), free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, enable_SMTPUTF8=smtputf8)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


def settings_for(tmp_path: Path, port: int | None) -> Settings:
    server = f'[smtp]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "none"\ntimeout_seconds = 5\n'
    text = MINIMAL_CONFIG + (server if port else "")
    return parse_settings(text, tmp_path / "followupd.toml", {"HOME": str(tmp_path)})


DAY_AFTER_DUE = datetime(2026, 12, 1, 9, tzinfo=PARIS)
NUDGES = ("invoice_due:F-1:nudge-1", "invoice_due:F-2:nudge-1")


def nudge_and_deliver(store: Store, settings: Settings) -> list[str]:
    """Record the first nudge of each invoice, deliver it: the nudges sent (not the heads-ups)."""
    rules = [rule for rule in enabled_rules(settings.rules) if rule.name == "invoice_due"]
    with store.session() as session:
        evaluate(session, settings, rules, DAY_AFTER_DUE)
    deliverer = Deliverer(store, settings, "w1", rng=random.Random(1))
    report = asyncio.run(deliverer.run(DAY_AFTER_DUE))
    return sorted(key for key in report.sent if key in NUDGES)


def states(store: Store) -> dict[str, tuple[str, str | None]]:
    with store.session() as session:
        rows = session.execute(select(FollowUp.key, FollowUp.state, FollowUp.reason))
        return {key: (state, reason) for key, state, reason in rows if key in NUDGES}


def test_an_idn_address_is_imported_and_sent_with_its_ascii_domain(
    store: Store, tmp_path: Path
) -> None:
    import_files(store, [write(tmp_path, "d.toml", data(IDN))], PARIS)
    with smtp(smtputf8=False) as (server, port):
        sent = nudge_and_deliver(store, settings_for(tmp_path, port))
    assert sent == list(NUDGES)
    [(sender, recipients, options, message)] = server.to(IDN_ASCII)
    assert (sender, recipients) == ("claire@cabinet.example", [IDN_ASCII])
    assert "SMTPUTF8" not in options, "no server needs SMTPUTF8 for a domain"
    assert message["To"] == IDN_ASCII
    assert message["To"].isascii() and message["From"].isascii()


def test_a_utf8_local_part_fails_alone_where_the_server_has_no_smtputf8(
    store: Store, tmp_path: Path
) -> None:
    import_files(store, [write(tmp_path, "d.toml", data(UTF8_LOCAL))], PARIS)
    with smtp(smtputf8=False) as (server, port):
        sent = nudge_and_deliver(store, settings_for(tmp_path, port))
    assert sent == ["invoice_due:F-2:nudge-1"], "the other client's nudge goes out"
    assert [recipients for _, recipients, _, _ in server.received] == [["john@globex.example"]]
    state, reason = states(store)["invoice_due:F-1:nudge-1"]
    assert state == "failed", "no retry mends it: the server lacks an extension"
    assert reason == (
        f"{UTF8_LOCAL}: an address not in ASCII before the @-sign needs an SMTP server "
        "that offers SMTPUTF8 (RFC 6531), and this one does not"
    )


def test_a_utf8_local_part_is_sent_with_smtputf8_where_the_server_offers_it(
    store: Store, tmp_path: Path
) -> None:
    import_files(store, [write(tmp_path, "d.toml", data(UTF8_LOCAL))], PARIS)
    with smtp(smtputf8=True) as (server, port):
        sent = nudge_and_deliver(store, settings_for(tmp_path, port))
    assert sent == list(NUDGES)
    [(_, recipients, options, message)] = server.to(UTF8_LOCAL)
    assert recipients == [UTF8_LOCAL]
    assert "SMTPUTF8" in options
    assert message["To"] == UTF8_LOCAL, "the header in UTF-8 (RFC 6532), no encoded word"
    [(_, _, ascii_options, _)] = server.to("john@globex.example")
    assert "SMTPUTF8" not in ascii_options, "only the message that needs it asks for it"


def test_a_utf8_local_part_is_written_to_the_maildir(store: Store, tmp_path: Path) -> None:
    import_files(store, [write(tmp_path, "d.toml", data(UTF8_LOCAL))], PARIS)
    settings = settings_for(tmp_path, None)
    sent = nudge_and_deliver(store, settings)
    assert sent == list(NUDGES)
    box = mailbox.Maildir(settings.state_dir / "Maildir", create=False)
    raw = [box.get_bytes(key) for key in box.iterkeys()]
    assert any(f"To: {UTF8_LOCAL}\r\n".encode() in message for message in raw)


@pytest.mark.parametrize("stored", [ENCODED, "jeanne@acme.example\nBcc: victim@evil.example"])
def test_an_address_stored_before_the_checks_fails_its_follow_up_alone(
    store: Store, tmp_path: Path, stored: str
) -> None:
    """A database from before keeps what it holds; the address is checked again at send."""
    import_files(store, [write(tmp_path, "d.toml", data("jeanne@acme.example"))], PARIS)
    with store.session() as session:
        session.execute(update(Contact).where(Contact.key == "jdupont").values(email=stored))
    with smtp(smtputf8=True) as (server, port):
        sent = nudge_and_deliver(store, settings_for(tmp_path, port))
    assert sent == ["invoice_due:F-2:nudge-1"]
    assert [recipients for _, recipients, _, _ in server.received] == [["john@globex.example"]]
    state, reason = states(store)["invoice_due:F-1:nudge-1"]
    assert state == "failed"
    assert reason is not None and reason.startswith(f"To: {stored!r} is not an email address: ")


@given(address=st.from_regex(COMMON_ADDRESS, fullmatch=True), name=st.sampled_from(["", "Jeanne"]))
@settings(max_examples=300, deadline=None)
def test_a_common_address_is_sent_as_email_validator_would_send_it(address: str, name: str) -> None:
    """Sent without a call to email-validator (issue 17), yet exactly as it would be sent."""
    text = f"{name} <{address}>" if name else address
    try:
        checked_name, checked = split_mailbox(text)
        expected: tuple[str, str] | None = (checked_name, on_the_wire(checked))
    except ValueError:
        expected = None
    try:
        found: tuple[str, str] | None = mailbox_on_the_wire(text)
    except ValueError:
        found = None
    assert found == expected


def validator_normalized(text: str) -> str | None:
    """`text` as email-validator normalises it; None if it refuses it."""
    try:
        found = email_validator.validate_email(text, check_deliverability=False)
    except email_validator.EmailNotValidError:
        return None
    return str(found.normalized)


def normalized_or_none(text: str) -> str | None:
    try:
        return normalized(text)
    except ValueError:
        return None


@given(address=st.from_regex(COMMON_ADDRESS, fullmatch=True))
@settings(max_examples=300, deadline=None)
def test_a_common_address_is_stored_as_email_validator_would_store_it(address: str) -> None:
    """Told without importing email-validator (issue 17: start-up), yet exactly as it says."""
    assert normalized_or_none(address) == validator_normalized(address)


@pytest.mark.parametrize(
    "text",
    ["jeanne@xn--exmple-cua.example", "jeanne@ab--cd.example", "0@00--0.aa", "jeanne@acme.onion",
     "x" * 65 + "@a.example", "jeanne@" + "a" * 250 + ".example", "Jeanne@Acme.Example",
     " jeanne@acme.example"],
)  # fmt: skip
def test_an_address_near_the_common_ones_is_stored_as_email_validator_says(text: str) -> None:
    assert normalized_or_none(text) == validator_normalized(text)


def test_the_special_use_domains_are_email_validators() -> None:
    assert list(SPECIAL_USE_DOMAIN_NAMES) == list(email_validator.SPECIAL_USE_DOMAIN_NAMES)


@pytest.mark.parametrize(
    "text",
    [
        "jeanne@acme.test",
        "Jeanne <jeanne@ACME.example>",
        "a..b@acme.example",
        ENCODED,
        "x" * 65 + "@a.example",
    ],
)
def test_any_other_address_is_checked_again(text: str) -> None:
    try:
        checked_name, checked = split_mailbox(text)
        expected: tuple[str, str] | None = (checked_name, on_the_wire(checked))
    except ValueError:
        expected = None
    try:
        found: tuple[str, str] | None = mailbox_on_the_wire(text)
    except ValueError:
        found = None
    assert found == expected
