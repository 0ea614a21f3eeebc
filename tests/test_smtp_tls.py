"""SMTP security is honoured strictly: certificates verified, STARTTLS never skipped."""

from __future__ import annotations

import asyncio
import os
import ssl
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from aiosmtpd.controller import Controller

from followupd.channels.email.smtp import smtp_client
from followupd.config.load import parse_settings
from followupd.config.sections import Smtp
from followupd.config.settings import Settings
from followupd.delivery.deliverer import Deliverer
from followupd.engine.evaluation import evaluate
from followupd.rules.registry import enabled_rules
from followupd.sources.files.importer import import_files
from followupd.store.db import Store
from tests.conftest import MINIMAL_CONFIG
from tests.davserver import self_signed
from tests.rulekit import outbox, paris
from tests.smtpserver import Recorder, free_port

DATA = """\
[[clients]]
key = "acme"
name = "ACME SA"
[[contacts]]
key = "j"
client = "acme"
name = "Jeanne Dupont"
email = "j@acme.example"
[[missions]]
key = "m"
client = "acme"
title = "Audit"
contact = "j"
start = 2026-09-01
contract_signed = 2026-08-25
[[invoices]]
number = "F-1"
mission = "m"
amount = 100
issued = 2026-10-31
due = 2026-11-30
"""
NUDGE = "invoice_due:F-1:nudge-1"


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, made with openssl."""
    cert, key = self_signed(tmp_path_factory.mktemp("tls"))
    return key, cert


def server(tls: tuple[Path, Path] | None) -> tuple[Controller, Recorder, int]:
    recorder, port = Recorder(), free_port()
    context = None
    if tls is not None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(tls[1]), str(tls[0]))
    controller = Controller(recorder, hostname="127.0.0.1", port=port, tls_context=context)
    controller.start()
    return controller, recorder, port


@pytest.fixture
def loaded(store: Store, tmp_path: Path) -> Store:
    path = tmp_path / "data.toml"
    path.write_text(DATA, encoding="utf-8")
    import_files(store, [path], ZoneInfo("Europe/Paris"))
    return store


def attempt(store: Store, tmp_path: Path, port: int, extra: str = "") -> None:
    settings: Settings = parse_settings(
        MINIMAL_CONFIG
        + f'[smtp]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "starttls"\n'
        + f"timeout_seconds = 5\n{extra}",
        tmp_path / "followupd.toml",
        {"HOME": str(tmp_path)},
    )
    at = paris(2026, 12, 1, 9, 0)
    with store.session() as session:
        evaluate(session, settings, [r for r in enabled_rules(settings.rules)
                                     if r.name == "invoice_due"], at)  # fmt: skip
    asyncio.run(Deliverer(store, settings, "w").run(at))


def test_an_untrusted_certificate_sends_nothing(
    loaded: Store, tmp_path: Path, certificate: tuple[Path, Path]
) -> None:
    controller, recorder, port = server(certificate)
    try:
        attempt(loaded, tmp_path, port)
    finally:
        controller.stop()
    row = outbox(loaded)[NUDGE]
    assert row.state == "failed"
    assert row.last_error is not None
    assert row.last_error.startswith("TLS certificate not trusted")
    assert recorder.messages == []


def test_a_trusted_private_certificate_delivers(
    loaded: Store, tmp_path: Path, certificate: tuple[Path, Path]
) -> None:
    controller, recorder, port = server(certificate)
    try:
        attempt(loaded, tmp_path, port, f'ca_file = "{certificate[1]}"\n')
    finally:
        controller.stop()
    assert outbox(loaded)[NUDGE].state == "sent"
    assert len(recorder.messages) == 1


def test_no_starttls_means_no_plain_text_fallback(loaded: Store, tmp_path: Path) -> None:
    controller, recorder, port = server(None)
    try:
        attempt(loaded, tmp_path, port)
    finally:
        controller.stop()
    row = outbox(loaded)[NUDGE]
    assert row.state == "failed"
    assert row.last_error is not None
    assert row.last_error.startswith("refusing to send in clear")
    assert recorder.messages == []


def test_the_tls_context_is_made_once_and_again_when_the_ca_file_changes(
    tmp_path: Path, certificate: tuple[Path, Path]
) -> None:
    """Loading the trusted certificates costs milliseconds: not once per connection."""
    ca_file = tmp_path / "ca.pem"
    ca_file.write_bytes(certificate[1].read_bytes())
    smtp = Smtp(host="127.0.0.1", security="starttls", ca_file=ca_file)
    first = smtp_client(smtp).tls_context
    assert first is not None and smtp_client(smtp).tls_context is first
    ca_file.write_bytes(certificate[1].read_bytes())
    os.utime(ca_file, ns=(1, 1))  # a new file in its place
    assert smtp_client(smtp).tls_context is not first
    assert smtp_client(Smtp(host="127.0.0.1", security="none")).tls_context is None
