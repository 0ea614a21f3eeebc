"""The mailbox sync against a real Dovecot, into a real store on each engine.

A pass reads only what is new (nothing at all when the folder did not
change), never changes the mailbox, records each message once whatever the
server renumbers, makes bounces of followupd's nudges and auto-replies out,
and goes on past a malformed message, a missing folder or a mailbox down.
"""

from __future__ import annotations

import hashlib
import logging
import socket
import ssl
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path
from typing import Any

import pytest
from imapclient import IMAPClient
from imapclient.exceptions import ProtocolError
from sqlalchemy import select

from followupd.channels.email.message import message_id
from followupd.config.settings import Settings
from followupd.domain.states import MailKind
from followupd.sources.imap import messages as imap_messages
from followupd.sources.imap import sync
from followupd.sources.imap.connection import MailboxUnreachable, open_mailbox
from followupd.sources.imap.header_fetch import fetch_header_fields
from followupd.sources.imap.sync import FolderReport, MailSyncReport, sync_mailboxes
from followupd.store.db import Store
from followupd.store.mailbox import folder_state
from followupd.store.models import FollowUp, MailMessage
from tests.conftest import sample_followup
from tests.imapserver import PASSWORD, SENT_FOLDER, ImapServer, make_certificate_authority
from tests.test_config import _settings as parse

NOW = datetime(2026, 11, 10, 16, 0, tzinfo=UTC)
CORPUS = Path(__file__).parent / "mail_corpus"
NUDGE_1 = message_id("invoice_due:F-042:nudge-1", "cabinet.example")
OWNER = '[owner]\nname = "Claire Martin"\nemail = "claire@cabinet.example"\n'


def mail(
    subject: str,
    *,
    sender: str = "Jeanne Dupont <jeanne@client.example>",
    date: datetime = NOW - timedelta(hours=2),
    **fields: str,
) -> bytes:
    made = EmailMessage(policy=SMTP)
    made["From"] = sender
    made["To"] = "Claire Martin <claire@cabinet.example>"
    made["Subject"] = subject
    made["Date"] = date
    made["Message-ID"] = f"<{hashlib.sha1(f'{subject}{date}'.encode()).hexdigest()}@client.example>"
    for name, value in fields.items():
        made[name.replace("_", "-")] = value
    made.set_content("Bonjour,\n\nle corps n'est jamais lu.\n")
    return made.as_bytes()


def nudge_sent_as(sent_as: str) -> FollowUp:
    """invoice_due:F-042:nudge-1, sent with the Message-ID `sent_as`."""
    nudge = sample_followup("invoice_due:F-042:nudge-1", NOW - timedelta(days=1))
    nudge.message_id = sent_as
    return nudge


def corpus(name: str) -> bytes:
    return (CORPUS / name).read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def settings_for(
    server: ImapServer, user: str, tmp_path: Path, *lines: str, url: str | None = None
) -> Settings:
    """A config reading `user`'s mailbox on `server` over TLS, its password in a file."""
    secret = tmp_path / "imap-password"
    secret.write_text(PASSWORD + "\n", encoding="utf-8")
    text = (
        OWNER
        + "[imap]\n"
        + f'url = "{url or f"imaps://{server.host}:{server.imaps_port}/"}"\n'
        + f'username = "{user}"\npassword_file = "{secret}"\nca_file = "{server.ca_file}"\n'
        + "".join(f"{line}\n" for line in lines)
    )
    return parse(text, tmp_path)


@dataclass
class FetchSpy:
    """Counts the FETCH commands of the sync's connections; can make some fail."""

    calls: list[tuple[list[int], list[str]]] = field(default_factory=list)
    fail: Callable[[list[int]], BaseException | None] = lambda _uids: None

    @property
    def header_fetches(self) -> list[list[int]]:
        return [uids for uids, items in self.calls if any("HEADER.FIELDS" in i for i in items)]

    def opener(self, *args: Any, **kwargs: Any) -> IMAPClient:
        client = open_mailbox(*args, **kwargs)
        real = client.fetch

        def fetch(messages: Sequence[int], data: Sequence[str], modifiers: Any = None) -> Any:
            self.calls.append((list(messages), list(data)))
            error = self.fail(list(messages))
            if error is not None:
                raise error
            return real(messages, data, modifiers)

        client.fetch = fetch
        return client

    def header_fetch(self, client: IMAPClient, uids: Sequence[int], items: Sequence[str]) -> Any:
        """The header fields' FETCH, which goes round `IMAPClient.fetch`'s parser."""
        self.calls.append((list(uids), list(items)))
        error = self.fail(list(uids))
        if error is not None:
            raise error
        return fetch_header_fields(client, uids, items)


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> FetchSpy:
    watching = FetchSpy()
    monkeypatch.setattr(sync, "open_mailbox", watching.opener)
    monkeypatch.setattr(imap_messages, "fetch_header_fields", watching.header_fetch)
    return watching


@pytest.fixture
def imap_server(imap_server_any: ImapServer) -> ImapServer:
    """Every test here runs on each IMAP server of the suite (Dovecot, Cyrus)."""
    return imap_server_any


@pytest.fixture
def user(imap_server: ImapServer) -> str:
    return imap_server.new_user()


def rows(store: Store) -> list[MailMessage]:
    with store.session() as session:
        return list(session.scalars(select(MailMessage).order_by(MailMessage.id)))


def by_subject(store: Store) -> dict[str | None, MailMessage]:
    return {row.subject: row for row in rows(store)}


def folder(report: MailSyncReport, name: str) -> FolderReport:
    return next(done for done in report.folders if done.folder == name)


def flags(server: ImapServer, user: str, name: str) -> dict[int, tuple[bytes, ...]]:
    with server.connect(user) as client:
        client.select_folder(name, readonly=True)
        fetched = client.fetch(client.search("ALL"), ["FLAGS"])
        return {uid: data[b"FLAGS"] for uid, data in fetched.items()}


# -- incremental ---------------------------------------------------------------------------


def test_a_first_pass_reads_everything_then_only_what_is_new(
    imap_server: ImapServer, user: str, store: Store, tmp_path: Path, spy: FetchSpy
) -> None:
    imap_server.append(user, "INBOX", mail("Re: Facture F-042", In_Reply_To=NUDGE_1))
    imap_server.append(user, "INBOX", corpus("gmail-vacation.eml"))
    imap_server.append(
        user, SENT_FOLDER, mail("Point d'avancement", sender="claire@cabinet.example")
    )
    config = settings_for(imap_server, user, tmp_path)

    first = sync_mailboxes(store, config, NOW)

    assert not first.failed and not first.skipped
    assert [(d.folder, d.role, d.mode, d.seen, d.recorded) for d in first.folders] == [
        ("INBOX", "inbox", "full", 2, 2),
        (SENT_FOLDER, "sent", "full", 1, 1),  # found by \Sent, not by its name
    ]
    assert first.sent_folders == [(None, SENT_FOLDER)]
    assert first.recorded == [row.id for row in rows(store)]
    recorded = by_subject(store)
    reply = recorded["Re: Facture F-042"]
    assert (reply.folder, reply.sender, reply.kind) == ("INBOX", "jeanne@client.example", "other")
    assert reply.answers == NUDGE_1 and reply.recipients == "claire@cabinet.example"
    assert reply.date is not None and reply.date.replace(tzinfo=UTC) == NOW - timedelta(hours=2)
    vacation = next(row for row in recorded.values() if row.automatic)
    assert vacation.kind == MailKind.AUTOMATIC and vacation.folder == "INBOX"
    assert recorded["Point d'avancement"].folder == SENT_FOLDER
    assert len(spy.header_fetches) == 2  # one per folder

    spy.calls.clear()
    second = sync_mailboxes(store, config, NOW + timedelta(minutes=5))
    assert [(d.mode, d.seen, d.recorded) for d in second.folders] == [("unchanged", 0, 0)] * 2
    assert spy.calls == [] and second.recorded == []

    new_uid = imap_server.append(user, "INBOX", mail("Re: Re: Facture F-042"))
    third = sync_mailboxes(store, config, NOW + timedelta(minutes=10))
    assert [(d.mode, d.seen, d.recorded) for d in third.folders] == [
        ("incremental", 1, 1),
        ("unchanged", 0, 0),
    ]
    assert spy.header_fetches == [[new_uid]]
    assert len(rows(store)) == 4 and third.recorded == [rows(store)[-1].id]


def test_the_mailbox_is_left_as_it_was(
    imap_server: ImapServer, user: str, store: Store, tmp_path: Path
) -> None:
    for number in range(3):
        imap_server.append(user, "INBOX", mail(f"Relance {number}"))
    imap_server.append(user, "INBOX", corpus("bounce-postfix.eml"))  # its parts are fetched
    with store.session() as session:
        session.add(nudge_sent_as(NUDGE_1))
    before = flags(imap_server, user, "INBOX")
    with imap_server.connect(user) as client:
        status_before = client.folder_status("INBOX", ["MESSAGES", "UIDNEXT", "UIDVALIDITY"])

    report = sync_mailboxes(store, settings_for(imap_server, user, tmp_path), NOW)

    assert folder(report, "INBOX").recorded == 4
    assert any(row.kind == MailKind.BOUNCE for row in rows(store))
    assert flags(imap_server, user, "INBOX") == before  # \Seen set on none
    assert all(b"\\Seen" not in marks for marks in before.values())
    with imap_server.connect(user) as client:
        assert client.folder_status("INBOX", ["MESSAGES", "UIDNEXT", "UIDVALIDITY"]) == (
            status_before
        )


def test_a_big_folder_is_read_in_chunks_each_committed(
    imap_server: ImapServer,
    user: str,
    store: Store,
    tmp_path: Path,
    spy: FetchSpy,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sync, "FETCH_CHUNK", 40)
    imap_server.append_many(user, "INBOX", (mail(f"Envoi {n}") for n in range(100)))
    config = settings_for(imap_server, user, tmp_path, f'sent_folder = "{SENT_FOLDER}"')
    spy.fail = lambda uids: OSError(104, "Connection reset by peer") if 81 in uids else None

    broken = sync_mailboxes(store, config, NOW)

    assert [len(uids) for uids in spy.header_fetches] == [40, 40, 20]
    assert broken.failed == [
        f"mailbox {user}@127.0.0.1:{imap_server.imaps_port}: the server closed the "
        "connection; tried again next time"
    ]
    with store.session() as session:
        state = folder_state(session, None, "INBOX")
    assert state is not None and state.last_uid == 80 and state.highest_modseq is None
    assert len(rows(store)) == 80 == len(broken.recorded)

    spy.fail, spy.calls = (lambda _uids: None), []
    caught_up = sync_mailboxes(store, config, NOW + timedelta(minutes=1))
    assert folder(caught_up, "INBOX").mode == "incremental"
    assert spy.header_fetches == [list(range(81, 101))]
    subjects = [row.subject or "" for row in rows(store)]
    assert sorted(subjects) == sorted(f"Envoi {n}" for n in range(100))  # none twice


def test_a_new_uidvalidity_reads_the_folder_again_without_doubling(
    imap_server: ImapServer, user: str, store: Store, tmp_path: Path
) -> None:
    old = mail("Devis 2024", date=NOW - timedelta(days=700))
    kept = [mail("Devis"), mail("Bon de commande")]
    with imap_server.connect(user) as client:
        client.create_folder("Projets")
    for message in kept:
        imap_server.append(user, "Projets", message)
    config = settings_for(imap_server, user, tmp_path, 'folders = ["Projets"]')
    first = sync_mailboxes(store, config, NOW)
    with store.session() as session:
        before = folder_state(session, None, "Projets")
    assert folder(first, "Projets").recorded == 2 and before is not None

    with imap_server.connect(user) as client:  # Dovecot renumbers a folder made again
        client.delete_folder("Projets")
        client.create_folder("Projets")
    for message in [old, *kept, mail("Facture")]:
        imap_server.append(user, "Projets", message)
    again = sync_mailboxes(store, config, NOW + timedelta(hours=1))

    done = folder(again, "Projets")
    assert (done.mode, done.seen, done.recorded) == ("rescan", 4, 1)
    with store.session() as session:
        after = folder_state(session, None, "Projets")
    assert after is not None and after.uidvalidity != before.uidvalidity and after.last_uid == 4
    assert sorted(row.subject or "" for row in rows(store)) == [
        "Bon de commande",
        "Devis",
        "Facture",  # "Devis 2024" is older than the retention: left out on a rescan
    ]


# -- what a message is ---------------------------------------------------------------------


def test_bounces_auto_replies_and_the_rest(
    imap_server: ImapServer, user: str, store: Store, tmp_path: Path
) -> None:
    with store.session() as session:  # the nudge bounce-postfix and bounce-exim return
        session.add(nudge_sent_as(NUDGE_1))
    names = [
        "bounce-postfix.eml",
        "bounce-exim.eml",
        "bounce-gmail.eml",  # of nudge-2, which followupd never sent here
        "delay-postfix.eml",
        "bounce-qmail.eml",
        "gmail-vacation.eml",
        "sieve-vacation.eml",
        "exchange-out-of-office.eml",
        "gmail-reply.eml",
        "mailing-list.eml",
    ]
    uids = {imap_server.append(user, "INBOX", corpus(name)): name for name in names}

    report = sync_mailboxes(store, settings_for(imap_server, user, tmp_path), NOW)

    assert folder(report, "INBOX").recorded == len(names) and not report.skipped
    kinds = {uids[row.uid]: row for row in rows(store)}
    postfix, exim = kinds["bounce-postfix.eml"], kinds["bounce-exim.eml"]
    assert (postfix.kind, postfix.followup_key) == (MailKind.BOUNCE, "invoice_due:F-042:nudge-1")
    assert (postfix.delivery_status, postfix.diagnostic) == (
        "5.1.1",
        "550 5.1.1 <jean.dupond@client.example>: Recipient address rejected: "
        "User unknown in virtual mailbox table",
    )
    assert (exim.kind, exim.delivery_status, exim.diagnostic) == (
        MailKind.BOUNCE,
        "5.0.0",
        "550 No such user here",
    )
    automatic = {name for name, row in kinds.items() if row.kind == MailKind.AUTOMATIC}
    assert automatic == {
        "bounce-gmail.eml",
        "delay-postfix.eml",
        "bounce-qmail.eml",
        "gmail-vacation.eml",
        "sieve-vacation.eml",
        "exchange-out-of-office.eml",
    }
    # read in the transaction that records it: a person's answer to a followupd message
    assert kinds["gmail-reply.eml"].kind == MailKind.REPLY
    assert kinds["mailing-list.eml"].kind == MailKind.OTHER
    assert all(row.delivery_status is None for row in kinds.values() if row.kind != "bounce")


def test_malformed_messages_never_stop_the_pass(
    imap_server: ImapServer,
    user: str,
    store: Store,
    tmp_path: Path,
    spy: FetchSpy,
    caplog: pytest.LogCaptureFixture,
) -> None:
    junk = b"X-Junk: \xff\xfe\r\nX-Other: nothing a reader wants\r\n\r\nno header facts\r\n"
    latin = imap_server.append(user, "INBOX", corpus("latin1-8bit-headers.eml"))
    broken = imap_server.append(user, "INBOX", corpus("broken-encoded-words.eml"))
    unreadable = imap_server.append(user, "INBOX", junk)
    unparsed = imap_server.append(user, "INBOX", mail("La réponse que le client ne lit pas"))
    fine = imap_server.append(user, "INBOX", mail("Re: devis"))
    spy.fail = lambda uids: ProtocolError("unexpected EOF") if unparsed in uids else None

    with caplog.at_level(logging.WARNING, "followupd.sources.imap"):
        report = sync_mailboxes(store, settings_for(imap_server, user, tmp_path), NOW)

    assert sorted(report.skipped) == [
        f"INBOX UID {unreadable}: no Message-ID, Date or From could be read (none)",
        f"INBOX UID {unparsed}: its FETCH failed: unexpected EOF",
    ]
    assert all(line in caplog.text for line in report.skipped)
    recorded = {row.uid: row for row in rows(store)}
    assert sorted(recorded) == [latin, broken, fine]
    assert "Windows-1252" in (recorded[latin].problem or "")
    assert "Date: unreadable" in (recorded[broken].problem or "")
    assert recorded[fine].problem is None
    with store.session() as session:
        state = folder_state(session, None, "INBOX")
    assert state is not None and state.last_uid == fine  # the skipped are not read again


# -- failures ------------------------------------------------------------------------------


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_a_mailbox_down_changes_nothing_and_the_next_pass_catches_up(
    imap_server: ImapServer, user: str, store: Store, tmp_path: Path
) -> None:
    imap_server.append(user, "INBOX", mail("Re: Facture F-042"))
    port = closed_port()
    down = settings_for(imap_server, user, tmp_path, url=f"imaps://127.0.0.1:{port}/")

    report = sync_mailboxes(store, down, NOW)

    assert report.failed == [
        f"mailbox {user}@127.0.0.1:{port}: connection refused; tried again next time"
    ]
    assert report.folders == [] and rows(store) == []
    with store.session() as session:
        assert folder_state(session, None, "INBOX") is None
    back = sync_mailboxes(store, settings_for(imap_server, user, tmp_path), NOW)
    assert not back.failed and folder(back, "INBOX").recorded == 1


def test_one_mailbox_refused_the_others_read(
    imap_server: ImapServer, store: Store, tmp_path: Path
) -> None:
    claire, bob = imap_server.new_user(), imap_server.new_user()
    imap_server.append(claire, "INBOX", mail("Pour Claire"))
    imap_server.append(bob, "INBOX", mail("Pour Bob"))
    (tmp_path / "right").write_text(PASSWORD, encoding="utf-8")
    (tmp_path / "wrong").write_text("not-the-password", encoding="utf-8")
    url = f"imaps://{imap_server.host}:{imap_server.imaps_port}/"

    def owner(key: str, user: str, secret: str) -> str:
        return (
            f'[[owners]]\nkey = "{key}"\nname = "{key}"\nemail = "{key}@cabinet.example"\n'
            f'[owners.imap]\nurl = "{url}"\nusername = "{user}"\n'
            f'password_file = "{tmp_path / secret}"\nca_file = "{imap_server.ca_file}"\n'
        )

    config = parse(owner("bob", bob, "wrong") + owner("claire", claire, "right"), tmp_path)
    report = sync_mailboxes(store, config, NOW)

    assert len(report.failed) == 1
    assert report.failed[0].startswith(f"mailbox {bob}@127.0.0.1:{imap_server.imaps_port}:")
    assert "login refused" in report.failed[0] and "not-the-password" not in report.failed[0]
    assert [(row.owner, row.subject) for row in rows(store)] == [("claire", "Pour Claire")]
    assert report.sent_folders == [("claire", SENT_FOLDER)]


def test_a_missing_folder_fails_alone(
    imap_server: ImapServer, user: str, store: Store, tmp_path: Path
) -> None:
    imap_server.append(user, "INBOX", mail("Re: planning"))
    with imap_server.connect(user) as client:
        client.create_folder("Sent")
    config = settings_for(
        imap_server, user, tmp_path, 'folders = ["INBOX", "Clients"]', 'sent_folder = "Sent"'
    )

    report = sync_mailboxes(store, config, NOW)

    assert report.failed == [
        f"mailbox {user}@127.0.0.1:{imap_server.imaps_port}: folder 'Clients' not found on "
        "the server"
    ]
    assert [(d.folder, d.role, d.recorded) for d in report.folders] == [
        ("INBOX", "inbox", 1),
        ("Sent", "sent", 0),  # the folder named, not the one marked \Sent
    ]
    assert report.sent_folders == [(None, "Sent")]


def test_the_sent_folder_is_asked_for_when_a_plain_list_leaves_its_attribute_out(
    imap_server: ImapServer,
    user: str,
    store: Store,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """RFC 6154 lets a plain LIST leave \\Sent out: LIST RETURN (SPECIAL-USE) must give it."""
    imap_server.append(user, SENT_FOLDER, mail("Point d'avancement"))

    def plain_list_without_attributes(*args: Any, **kwargs: Any) -> IMAPClient:
        client = open_mailbox(*args, **kwargs)
        listed = client.list_folders

        def list_folders(*how: Any) -> list[tuple[Any, ...]]:
            return [
                (tuple(f for f in flags if f.lower() != b"\\sent"), separator, name)
                for flags, separator, name in listed(*how)
            ]

        client.list_folders = list_folders
        assert all(b"\\Sent" not in flags for flags, _, _ in client.list_folders())
        return client

    monkeypatch.setattr(sync, "open_mailbox", plain_list_without_attributes)
    report = sync_mailboxes(store, settings_for(imap_server, user, tmp_path), NOW)

    assert report.sent_folders == [(None, SENT_FOLDER)]
    assert folder(report, SENT_FOLDER).recorded == 1


# -- the connection ------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["imaps", "imap"])
def test_tls_verified_from_the_first_byte_or_after_starttls(
    imap_server: ImapServer, user: str, tmp_path: Path, scheme: str
) -> None:
    port = imap_server.imaps_port if scheme == "imaps" else imap_server.imap_port
    url = f"{scheme}://{imap_server.host}:{port}/"
    account = settings_for(imap_server, user, tmp_path, url=url).imap
    assert account is not None
    with open_mailbox(account, timeout=10) as client:
        sock = client.socket()
        assert isinstance(sock, ssl.SSLSocket) and sock.version() in {"TLSv1.2", "TLSv1.3"}
        assert client.select_folder("INBOX", readonly=True)[b"EXISTS"] == 0


@pytest.fixture(scope="module")
def other_ca(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_certificate_authority(tmp_path_factory.mktemp("other-ca"), "Another CA")


@pytest.mark.parametrize("scheme", ["imaps", "imap"])
def test_a_certificate_not_trusted_is_a_clear_failure(
    imap_server: ImapServer, user: str, tmp_path: Path, other_ca: Path, scheme: str
) -> None:
    port = imap_server.imaps_port if scheme == "imaps" else imap_server.imap_port
    config = settings_for(imap_server, user, tmp_path, url=f"{scheme}://127.0.0.1:{port}/")
    assert config.imap is not None
    account = config.imap.model_copy(update={"ca_file": other_ca})
    with pytest.raises(MailboxUnreachable) as caught:
        open_mailbox(account, timeout=10)
    assert str(caught.value) == (
        f"mailbox {user}@127.0.0.1:{port}: the server's TLS certificate is refused: "
        "unable to get local issuer certificate"
    )


def test_a_server_hanging_up_during_the_handshake_closed_the_connection(
    imap_server: ImapServer, user: str, tmp_path: Path
) -> None:
    """A server restarting takes the connection and closes it, here after the client's TLS
    hello: TLS meets an unexpected EOF, and the user reads that the server closed it."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        url = f"imaps://127.0.0.1:{port}/"
        config = settings_for(imap_server, user, tmp_path, url=url)
        assert config.imap is not None

        def hang_up_after_the_hello() -> None:  # TLS then reads an EOF where it awaits an answer
            connection = listener.accept()[0]
            connection.recv(4096)
            connection.close()

        hang_up = threading.Thread(target=hang_up_after_the_hello)
        hang_up.start()
        with pytest.raises(MailboxUnreachable) as caught:
            open_mailbox(config.imap, timeout=10)
        hang_up.join()
    assert str(caught.value) == f"mailbox {user}@127.0.0.1:{port}: the server closed the connection"


def test_login_refused_and_no_password_never_show_it(
    imap_server: ImapServer, user: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = settings_for(imap_server, user, tmp_path)
    assert config.imap is not None
    where = f"mailbox {user}@127.0.0.1:{imap_server.imaps_port}"
    wrong = tmp_path / "wrong"
    wrong.write_text("zq-Wr0ng-do-not-print", encoding="utf-8")
    missing = config.imap.model_copy(update={"password_file": None, "password_env": "IMAP_PW"})
    empty = tmp_path / "empty"
    empty.write_text("", encoding="utf-8")
    with caplog.at_level(logging.DEBUG):
        with pytest.raises(MailboxUnreachable) as refused:
            open_mailbox(config.imap.model_copy(update={"password_file": wrong}), timeout=10)
        with pytest.raises(MailboxUnreachable) as unset:
            open_mailbox(missing, timeout=10, environ={})
        with pytest.raises(MailboxUnreachable) as blank:
            open_mailbox(config.imap.model_copy(update={"password_file": empty}), timeout=10)
        with open_mailbox(config.imap, timeout=10) as client:
            client.noop()
    said = {  # each server's words after NO, as it wrote them
        "Dovecot": "[AUTHENTICATIONFAILED] Authentication failed.",
        "Cyrus": "Login failed: authentication failure",
    }
    assert str(refused.value) in {f"{where}: login refused: {words}" for words in said.values()}
    assert str(unset.value) == f"{where}: no password: $IMAP_PW: environment variable is not set"
    assert str(blank.value) == f"{where}: no password: set password_file or password_env"
    assert "LOGIN" in caplog.text  # imapclient logged its commands: redacted
    assert PASSWORD not in caplog.text and "zq-Wr0ng" not in caplog.text


def test_a_server_not_listening_is_refused_in_one_line(tmp_path: Path) -> None:
    user = "claire"
    secret = tmp_path / "secret"
    secret.write_text(PASSWORD, encoding="utf-8")
    port = closed_port()
    text = OWNER + (
        f'[imap]\nurl = "imap://127.0.0.1:{port}/"\nsecurity = "none"\n'
        f'username = "{user}"\npassword_file = "{secret}"\n'
    )
    account = parse(text, tmp_path).imap
    assert account is not None
    with pytest.raises(MailboxUnreachable, match=rf"^mailbox {user}@127.0.0.1:{port}: "):
        open_mailbox(account, timeout=5)
