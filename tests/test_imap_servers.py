"""What the mailbox sync relies on, shown on each real IMAP server the suite runs.

Every test here runs on Dovecot and on Cyrus (`imap_server_any`), through imapclient, with
the harnesses' shared interface; where the two differ in a way a client must allow for,
the test says so and pins each one's behaviour.
"""

from __future__ import annotations

import contextlib
import ssl
import threading
import time
from email.message import EmailMessage
from email.policy import SMTP
from typing import cast

import pytest
from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError, LoginError
from imapclient.imap_utf7 import decode as decode_folder_name
from imapclient.response_parser import parse_response

from tests.imapserver import (
    DRAFTS_FOLDER,
    JUNK_FOLDER,
    PASSWORD,
    SENT_FOLDER,
    SPECIAL_USE,
    TIMEOUT_SECONDS,
    TRASH_FOLDER,
    ImapServer,
    make_certificate_authority,
)
from tests.imapserver_cyrus import CyrusServer

HEADERS = "BODY.PEEK[HEADER.FIELDS (MESSAGE-ID SUBJECT)]"
FETCHED_HEADERS = b"BODY[HEADER.FIELDS (MESSAGE-ID SUBJECT)]"  # as the server names it
SPECIAL_USE_ATTRIBUTES = {b"\\Sent", b"\\Drafts", b"\\Trash", b"\\Junk"}


def message(subject: str) -> bytes:
    mail = EmailMessage(policy=SMTP)
    mail["From"] = "Jeanne Dupont <jeanne@acme.example>"
    mail["To"] = "Claire Martin <claire@cabinet.example>"
    mail["Subject"] = subject
    mail["Message-ID"] = f"<{subject.replace(' ', '-')}@acme.example>"
    mail.set_content("Bonjour, voici la facture.")
    return mail.as_bytes()


def is_cyrus(server: ImapServer) -> bool:
    return isinstance(server, CyrusServer)


def list_attributes(client: IMAPClient, *command: str) -> dict[str, set[bytes]]:
    """Each folder's attributes from an extended LIST (RFC 5258), as the server sends them."""
    client._imap.untagged_responses.pop("LIST", None)
    typ, data = client._imap.xatom("LIST", *command)
    assert typ == "OK", data
    listed: dict[str, set[bytes]] = {}
    for line in client._imap.untagged_responses.pop("LIST", []):
        attributes, _, name = parse_response([line])[:3]
        folder = decode_folder_name(name if isinstance(name, bytes) else str(name).encode())
        listed[folder] = set(attributes)
    return listed


def flags_and_ids(
    server: ImapServer, user: str, folder: str
) -> dict[int, tuple[set[bytes], bytes]]:
    """UID -> (flags but \\Recent, Message-ID line), read on a fresh read-only connection."""
    with server.connect(user) as client:
        client.select_folder(folder, readonly=True)
        fetched = client.fetch(client.search(), ["FLAGS", HEADERS])
    return {
        uid: (
            set(data[b"FLAGS"]) - {b"\\Recent"},
            next(line for line in data[FETCHED_HEADERS].splitlines() if b"Message-ID" in line),
        )
        for uid, data in fetched.items()
    }


@pytest.mark.parametrize("starttls", [False, True], ids=["imaps", "starttls"])
def test_tls_is_verified_against_the_harness_ca(
    imap_server_any: ImapServer, starttls: bool
) -> None:
    with imap_server_any.connect(starttls=starttls) as client:
        sock = client.socket()
        assert isinstance(sock, ssl.SSLSocket)
        assert sock.version() in {"TLSv1.2", "TLSv1.3"}
        certificate = sock.getpeercert()
        assert certificate is not None
        issuer = cast(tuple[tuple[tuple[str, str], ...], ...], certificate["issuer"])
        assert issuer == ((("commonName", "followupd test CA"),),)
        assert {b"IDLE", b"CONDSTORE", b"SPECIAL-USE"} <= set(client.capabilities())


def test_a_certificate_from_another_ca_is_refused_on_both_ports(
    imap_server_any: ImapServer, tmp_path_factory: pytest.TempPathFactory
) -> None:
    other_ca = make_certificate_authority(tmp_path_factory.mktemp("other-ca"), "Another CA")
    wrong = ssl.create_default_context(cafile=str(other_ca))
    server = imap_server_any
    with pytest.raises(ssl.SSLCertVerificationError, match="unable to get local issuer"):
        IMAPClient(server.host, port=server.imaps_port, ssl_context=wrong, timeout=5)
    plain = IMAPClient(server.host, port=server.imap_port, ssl=False, timeout=5)
    try:
        assert b"STARTTLS" in plain.capabilities()
        with pytest.raises(ssl.SSLCertVerificationError, match="unable to get local issuer"):
            plain.starttls(wrong)
    finally:
        with contextlib.suppress(OSError):  # the failed handshake closed the socket
            plain.shutdown()


def test_login_takes_the_password_and_refuses_another(imap_server_any: ImapServer) -> None:
    user = imap_server_any.new_user()
    with pytest.raises(LoginError):
        imap_server_any.connect(user, "not-the-password")
    with imap_server_any.connect(user, PASSWORD) as client:
        assert client.select_folder("INBOX", readonly=True)[b"EXISTS"] == 0


def test_login_in_clear_before_starttls_differs_on_loopback(imap_server_any: ImapServer) -> None:
    """Dovecot counts 127.0.0.1 as secure and takes a clear-text LOGIN; Cyrus never does.

    So a client must choose TLS itself (STARTTLS first), not wait to be refused.
    """
    user = imap_server_any.new_user()
    plain = IMAPClient(imap_server_any.host, port=imap_server_any.imap_port, ssl=False, timeout=5)
    try:
        advertised = b"LOGINDISABLED" in plain.capabilities()
        if is_cyrus(imap_server_any):
            assert advertised
            with pytest.raises(LoginError, match="under a layer"):
                plain.login(user, PASSWORD)
        else:
            assert not advertised
            assert b"Logged in" in plain.login(user, PASSWORD)
    finally:
        plain.shutdown()


def test_list_return_special_use_finds_the_sent_folder_by_its_attribute(
    imap_server_any: ImapServer,
) -> None:
    user = imap_server_any.new_user()
    with imap_server_any.connect(user) as client:
        everything = list_attributes(client, '""', '"*"', "RETURN", "(SPECIAL-USE)")
        special_only = list_attributes(client, "(SPECIAL-USE)", '""', '"*"')
    assert set(everything) == {"INBOX", *SPECIAL_USE}
    for folder, use in SPECIAL_USE.items():
        assert everything[folder] & SPECIAL_USE_ATTRIBUTES == {use.encode()}
    assert everything["INBOX"] & SPECIAL_USE_ATTRIBUTES == set()
    assert set(special_only) == {SENT_FOLDER, DRAFTS_FOLDER, TRASH_FOLDER, JUNK_FOLDER}
    # Cyrus adds \HasNoChildren though only SPECIAL-USE was asked for; Dovecot does not
    assert (b"\\HasNoChildren" in everything[SENT_FOLDER]) == is_cyrus(imap_server_any)


def test_cyrus_autocreation_writes_special_use_in_lower_case(cyrus_server: CyrusServer) -> None:
    """Cyrus's own autocreate (``xlist-sent``) names the attribute ``\\sent``: a client must
    compare attributes without case (RFC 3501 flags), as imapclient's find_special_folder
    does not."""
    user = ImapServer.new_user(cyrus_server, "autocreated")  # no SETMETADATA: Cyrus's own
    with cyrus_server.connect(user) as client:
        listed = list_attributes(client, '""', '"*"', "RETURN", "(SPECIAL-USE)")
    assert b"\\sent" in listed[SENT_FOLDER]
    assert b"\\Sent" not in listed[SENT_FOLDER]
    found = {
        folder
        for folder, attributes in listed.items()
        if b"\\sent" in {attribute.lower() for attribute in attributes}
    }
    assert found == {SENT_FOLDER}


def test_examine_is_read_only_and_a_fetch_changes_no_flag(imap_server_any: ImapServer) -> None:
    user = imap_server_any.new_user()
    uid = imap_server_any.append(user, "INBOX", message("Re F-042"), flags=["\\Flagged"])
    with imap_server_any.connect(user) as client:
        assert b"READ-ONLY" in client.select_folder("INBOX", readonly=True)
        fetched = client.fetch([uid], [HEADERS, "BODY[TEXT]"])[uid]  # even without PEEK
        assert b"Subject: Re F-042" in fetched[FETCHED_HEADERS]
        # a STORE under EXAMINE: Cyrus answers NO, Dovecot OK, and neither changes a flag
        if is_cyrus(imap_server_any):
            with pytest.raises(IMAPClientError, match="Permission denied"):
                client.add_flags([uid], [b"\\Answered"])
        else:
            client.add_flags([uid], [b"\\Answered"])
    assert flags_and_ids(imap_server_any, user, "INBOX")[uid][0] == {b"\\Flagged"}


def test_condstore_reports_highestmodseq_and_what_changed_since(
    imap_server_any: ImapServer,
) -> None:
    user = imap_server_any.new_user()
    old = imap_server_any.append(user, "INBOX", message("Point d'avancement"))
    with imap_server_any.connect(user) as client:
        selected = client.select_folder("INBOX", readonly=True)
        # Cyrus reports HIGHESTMODSEQ on every SELECT; Dovecot once CONDSTORE is enabled
        assert (b"HIGHESTMODSEQ" in selected) == is_cyrus(imap_server_any)
        client.unselect_folder()
        assert client.enable("CONDSTORE") == [b"CONDSTORE"]
        before = client.folder_status("INBOX", ["HIGHESTMODSEQ"])[b"HIGHESTMODSEQ"]
        new = imap_server_any.append(user, "INBOX", message("Re Point d'avancement"))
        after = client.folder_status("INBOX", ["HIGHESTMODSEQ"])[b"HIGHESTMODSEQ"]
        assert after > before
        assert client.select_folder("INBOX", readonly=True)[b"HIGHESTMODSEQ"] == after
        changed = client.fetch([old, new], ["UID"], [f"CHANGEDSINCE {before}"])
    assert new > old
    assert set(changed) == {new}


def test_uidnext_and_uidvalidity_agree_with_appenduid(imap_server_any: ImapServer) -> None:
    user = imap_server_any.new_user()
    uids = [imap_server_any.append(user, SENT_FOLDER, message(f"Envoi {n}")) for n in range(3)]
    with imap_server_any.connect(user) as client:
        status = client.folder_status(SENT_FOLDER, ["MESSAGES", "UIDNEXT", "UIDVALIDITY"])
        selected = client.select_folder(SENT_FOLDER, readonly=True)
        response = client.append(SENT_FOLDER, message("Envoi 3"))
    assert uids == sorted(uids) and len(set(uids)) == 3
    assert status[b"MESSAGES"] == 3
    assert status[b"UIDNEXT"] == selected[b"UIDNEXT"] == uids[-1] + 1
    assert status[b"UIDVALIDITY"] == selected[b"UIDVALIDITY"] > 0
    assert f"[APPENDUID {status[b'UIDVALIDITY']} {uids[-1] + 1}]".encode() in response


def test_idle_wakes_on_an_append_from_another_connection(imap_server_any: ImapServer) -> None:
    """The watcher waits in IDLE on its own thread; the test waits for it to see EXISTS."""
    user = imap_server_any.new_user()
    woke = threading.Event()
    responses: list[tuple[object, ...]] = []
    with imap_server_any.connect(user) as watcher:
        assert watcher.select_folder("INBOX", readonly=True)[b"EXISTS"] == 0
        watcher.idle()  # returns once the server answered "+ idling"
        deadline = time.monotonic() + TIMEOUT_SECONDS

        def watch() -> None:
            while (1, b"EXISTS") not in responses and time.monotonic() < deadline:
                responses.extend(watcher.idle_check(timeout=deadline - time.monotonic()))
            woke.set()

        thread = threading.Thread(target=watch, name="idle-watcher")
        thread.start()
        imap_server_any.append(user, "INBOX", message("Re relance"))
        assert woke.wait(TIMEOUT_SECONDS)
        thread.join(TIMEOUT_SECONDS)
        watcher.idle_done()
    assert (1, b"EXISTS") in responses  # woken by the server, not by the deadline


@pytest.mark.parametrize("folder", ["INBOX", SENT_FOLDER])
def test_renumber_changes_uidvalidity_and_keeps_messages_and_flags(
    imap_server_any: ImapServer, folder: str
) -> None:
    user = imap_server_any.new_user()
    for n in range(3):
        flags = ["\\Flagged", "\\Seen"] if n == 1 else []
        imap_server_any.append(user, folder, message(f"Devis {n}"), flags=flags)
    with imap_server_any.connect(user) as client:
        first = client.folder_status(folder, ["UIDVALIDITY"])[b"UIDVALIDITY"]
    before = flags_and_ids(imap_server_any, user, folder)

    second = imap_server_any.renumber(user, folder)
    third = imap_server_any.renumber(user, folder)  # at once again: still a new value

    with imap_server_any.connect(user) as client:
        status = client.folder_status(folder, ["UIDVALIDITY", "MESSAGES"])
    assert first < second < third == status[b"UIDVALIDITY"]
    assert status[b"MESSAGES"] == 3
    assert flags_and_ids(imap_server_any, user, folder) == before  # UIDs kept, on both


def test_a_folder_made_again_has_a_new_uidvalidity_and_uids_from_one(
    imap_server_any: ImapServer,
) -> None:
    user = imap_server_any.new_user()
    with imap_server_any.connect(user) as client:
        client.create_folder("Projets")
    first_uid = imap_server_any.append(user, "Projets", message("Devis"))
    with imap_server_any.connect(user) as client:
        first = client.folder_status("Projets", ["UIDVALIDITY"])[b"UIDVALIDITY"]
        client.delete_folder("Projets")
        client.create_folder("Projets")
    again_uid = imap_server_any.append(user, "Projets", message("Devis"))
    with imap_server_any.connect(user) as client:
        again = client.folder_status("Projets", ["UIDVALIDITY"])[b"UIDVALIDITY"]
    assert again > first
    assert again_uid == first_uid == 1  # only UIDVALIDITY tells the two messages apart


def test_each_user_has_a_mailbox_of_their_own(imap_server_any: ImapServer) -> None:
    mine, theirs = imap_server_any.new_user(), imap_server_any.new_user()
    imap_server_any.append(mine, "INBOX", message("Facture"))
    with imap_server_any.connect(theirs) as client:
        assert client.select_folder("INBOX", readonly=True)[b"EXISTS"] == 0
    with imap_server_any.connect(mine) as client:
        assert client.select_folder("INBOX", readonly=True)[b"EXISTS"] == 1


def test_append_many_fills_a_folder_over_one_connection(imap_server_any: ImapServer) -> None:
    user = imap_server_any.new_user()
    imap_server_any.append_many(user, SENT_FOLDER, (message(f"Envoi {n}") for n in range(120)))
    with imap_server_any.connect(user) as client:
        status = client.folder_status(SENT_FOLDER, ["MESSAGES", "UIDNEXT"])
    assert status == {b"MESSAGES": 120, b"UIDNEXT": 121}
