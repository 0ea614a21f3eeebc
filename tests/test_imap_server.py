"""The throwaway Dovecot does what the mailbox source relies on, seen through imapclient."""

from __future__ import annotations

import contextlib
import ssl
import time
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from email.policy import SMTP
from typing import cast

import pytest
from imapclient import IMAPClient
from imapclient.exceptions import LoginError
from imapclient.imapclient import SENT

from tests.imapserver import (
    SENT_FOLDER,
    TIMEOUT_SECONDS,
    ImapServer,
    make_certificate_authority,
)

HEADER_FIELDS = "BODY.PEEK[HEADER.FIELDS (FROM SUBJECT MESSAGE-ID)]"
FETCHED_HEADERS = b"BODY[HEADER.FIELDS (FROM SUBJECT MESSAGE-ID)]"  # as the server names it


def message(subject: str, body: str = "Bonjour, voici la facture.") -> bytes:
    mail = EmailMessage(policy=SMTP)
    mail["From"] = "Jeanne Dupont <jeanne@acme.example>"
    mail["To"] = "Claire Martin <claire@cabinet.example>"
    mail["Subject"] = subject
    mail["Message-ID"] = f"<{subject.replace(' ', '-')}@acme.example>"
    mail["X-Mailer"] = "Thunderbird"
    mail.set_content(body)
    return mail.as_bytes()


def flags_of(server: ImapServer, user: str, folder: str, uid: int) -> tuple[bytes, ...]:
    """FLAGS of one message, read on a fresh read-only connection."""
    with server.connect(user) as client:
        client.select_folder(folder, readonly=True)
        flags: tuple[bytes, ...] = client.fetch([uid], ["FLAGS"])[uid][b"FLAGS"]
        return flags


@pytest.mark.parametrize("starttls", [False, True], ids=["imaps", "starttls"])
def test_login_is_over_tls_verified_against_the_harness_ca(
    imap_server: ImapServer, starttls: bool
) -> None:
    with imap_server.connect(starttls=starttls) as client:
        sock = client.socket()
        assert isinstance(sock, ssl.SSLSocket)
        assert sock.version() in {"TLSv1.2", "TLSv1.3"}
        certificate = sock.getpeercert()
        assert certificate is not None
        issuer = cast(tuple[tuple[tuple[str, str], ...], ...], certificate["issuer"])
        assert issuer == ((("commonName", "followupd test CA"),),)
        assert b"IDLE" in client.capabilities()


def test_a_certificate_from_another_ca_is_refused(
    imap_server: ImapServer, tmp_path_factory: pytest.TempPathFactory
) -> None:
    other_ca = make_certificate_authority(tmp_path_factory.mktemp("other-ca"), "Another CA")
    wrong = ssl.create_default_context(cafile=str(other_ca))
    with pytest.raises(ssl.SSLCertVerificationError, match="unable to get local issuer"):
        IMAPClient(imap_server.host, port=imap_server.imaps_port, ssl_context=wrong, timeout=5)
    plain = IMAPClient(imap_server.host, port=imap_server.imap_port, ssl=False, timeout=5)
    try:
        assert b"STARTTLS" in plain.capabilities()
        with pytest.raises(ssl.SSLCertVerificationError):
            plain.starttls(ssl.create_default_context())  # the system's CAs: no test CA
    finally:
        with contextlib.suppress(OSError):  # the failed handshake closed the socket
            plain.shutdown()


def test_examine_and_peek_read_headers_and_leave_seen_unset(imap_server: ImapServer) -> None:
    user = imap_server.new_user()
    arrived = datetime(2026, 11, 30, 9, 15, tzinfo=timezone(timedelta(hours=1)))
    uid = imap_server.append(user, "INBOX", message("Re F-042"), flags=["\\Flagged"], date=arrived)
    with imap_server.connect(user) as client:
        client.normalise_times = False
        assert b"READ-ONLY" in client.select_folder("INBOX", readonly=True)
        fetched = client.fetch([uid], [HEADER_FIELDS, "INTERNALDATE"])[uid]
    headers = fetched[FETCHED_HEADERS]
    assert b"Subject: Re F-042\r\n" in headers
    assert b"Message-ID: <Re-F-042@acme.example>\r\n" in headers
    assert b"X-Mailer" not in headers  # only the fields asked for
    assert b"facture" not in headers  # never the body
    assert fetched[b"INTERNALDATE"] == arrived
    assert set(flags_of(imap_server, user, "INBOX", uid)) >= {b"\\Flagged"}
    assert b"\\Seen" not in flags_of(imap_server, user, "INBOX", uid)

    # the same fetch without PEEK in a read-write SELECT marks it: what the check would see
    with imap_server.connect(user) as client:
        client.select_folder("INBOX")
        client.fetch([uid], [HEADER_FIELDS.replace(".PEEK", "")])
    assert b"\\Seen" in flags_of(imap_server, user, "INBOX", uid)


def test_special_use_names_the_sent_folder_whatever_its_name(imap_server: ImapServer) -> None:
    user = imap_server.new_user()
    with imap_server.connect(user) as client:
        assert b"SPECIAL-USE" in client.capabilities()
        client.create_folder("Sent")  # the usual name, without the attribute
        listed = {name: flags for flags, _, name in client.list_folders()}
        assert b"\\Sent" in listed[SENT_FOLDER]
        assert b"\\Sent" not in listed["Sent"]
        assert client.find_special_folder(SENT) == SENT_FOLDER
        assert client.folder_status(SENT_FOLDER, ["MESSAGES"])[b"MESSAGES"] == 0


def test_condstore_highestmodseq_moves_with_an_append(imap_server: ImapServer) -> None:
    user = imap_server.new_user()
    old = imap_server.append(user, "INBOX", message("Point d'avancement"))
    with imap_server.connect(user) as client:
        assert b"CONDSTORE" in client.capabilities()
        assert client.enable("CONDSTORE") == [b"CONDSTORE"]
        before = client.folder_status("INBOX", ["HIGHESTMODSEQ"])[b"HIGHESTMODSEQ"]
        new = imap_server.append(user, "INBOX", message("Re Point d'avancement"))
        after = client.folder_status("INBOX", ["HIGHESTMODSEQ"])[b"HIGHESTMODSEQ"]
        assert after > before
        assert client.select_folder("INBOX", readonly=True)[b"HIGHESTMODSEQ"] == after
        changed = client.fetch([old, new], ["UID"], [f"CHANGEDSINCE {before}"])
    assert new > old
    assert set(changed) == {new}


def test_idle_wakes_on_an_append_from_another_connection(imap_server: ImapServer) -> None:
    user = imap_server.new_user()
    with imap_server.connect(user) as watcher:
        assert watcher.select_folder("INBOX", readonly=True)[b"EXISTS"] == 0
        watcher.idle()
        imap_server.append(user, "INBOX", message("Re relance"))
        started = time.monotonic()
        deadline = started + TIMEOUT_SECONDS
        responses: list[tuple[object, ...]] = []
        while (1, b"EXISTS") not in responses and time.monotonic() < deadline:
            responses += watcher.idle_check(timeout=deadline - time.monotonic())
        woke_after = time.monotonic() - started
        watcher.idle_done()
    assert (1, b"EXISTS") in responses
    assert woke_after < 5  # what the daemon promises for a reply


def test_uidvalidity_changes_when_a_folder_is_made_again(imap_server: ImapServer) -> None:
    user = imap_server.new_user()
    with imap_server.connect(user) as client:
        client.create_folder("Projets")
    first_uid = imap_server.append(user, "Projets", message("Devis"))
    with imap_server.connect(user) as client:
        first = client.select_folder("Projets", readonly=True)[b"UIDVALIDITY"]
        client.unselect_folder()
        client.delete_folder("Projets")
        client.create_folder("Projets")
    again_uid = imap_server.append(user, "Projets", message("Devis"))
    with imap_server.connect(user) as client:
        again = client.select_folder("Projets", readonly=True)[b"UIDVALIDITY"]
    assert again != first
    assert again_uid == first_uid == 1  # UIDs start over: only UIDVALIDITY tells them apart


def test_each_user_has_a_mailbox_of_their_own(imap_server: ImapServer) -> None:
    mine, theirs = imap_server.new_user(), imap_server.new_user()
    with pytest.raises(LoginError):
        imap_server.connect(mine, "not-the-password")
    imap_server.append(mine, "INBOX", message("Facture"))
    with imap_server.connect(theirs) as client:
        assert client.select_folder("INBOX", readonly=True)[b"EXISTS"] == 0
    with imap_server.connect(mine) as client:
        assert client.select_folder("INBOX", readonly=True)[b"EXISTS"] == 1


def test_append_many_fills_a_folder_over_one_connection(imap_server: ImapServer) -> None:
    user = imap_server.new_user()
    imap_server.append_many(user, SENT_FOLDER, (message(f"Envoi {n}") for n in range(1203)))
    with imap_server.connect(user) as client:
        status = client.folder_status(SENT_FOLDER, ["MESSAGES", "UIDNEXT"])
    assert status == {b"MESSAGES": 1203, b"UIDNEXT": 1204}
