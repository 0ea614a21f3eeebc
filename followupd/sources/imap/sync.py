"""The mailbox as a source: each folder read incrementally into the store, never changed.

Every mailbox of `mailbox_sources` is opened once a pass; its ``folders``
(INBOX by default) are read as the inbox, and its sent folder as what the
owner sent: ``sent_folder`` when the account names one, else the folder the
server marks ``\\Sent`` (RFC 6154's attribute in LIST, or Gmail's XLIST),
else a folder named "Sent". Folders are EXAMINEd and messages fetched with
BODY.PEEK: the mailbox is left as it was, flags included.

A folder keeps, as mbsync does, its UIDVALIDITY, the highest UID read and,
where the server has CONDSTORE (RFC 7162), its HIGHESTMODSEQ. A pass lists
only the UIDs above the last one read and fetches their header fields in
chunks, each recorded in its own transaction with the folder's new last
UID, so a pass stopped half-way loses nothing and the next one doubles
nothing. When HIGHESTMODSEQ has not moved, or UIDNEXT says no message came,
nothing is fetched at all ("unchanged"). A new UIDVALIDITY (the server
renumbered the folder) starts it over ("rescan"): messages recorded already
are recognised by their fingerprint. On every reading but a folder's
first, messages dated before the retention cut-off are left out:
housekeeping forgets those (``forget_messages``), and a rescan must not
bring them back as new.

A message that cannot be read is skipped with its folder and UID and the
pass goes on; a folder that cannot be read is reported and the others go
on; a mailbox that cannot be reached (down, login refused, TLS not
trusted) is reported and nothing of it changes: the next pass catches up.
What the new messages mean (replies, sent status updates, bounces of
followupd's nudges) is acted on in the transaction that records them
(`followupd.sources.imap.meaning`): a pass killed in between records
neither, and the next one reads them again.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientAbortError, IMAPClientError
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from followupd.config.accounts import ImapAccount
from followupd.config.settings import Settings
from followupd.domain.owner_scope import mailbox_sources
from followupd.domain.states import MailKind
from followupd.sources.imap.connection import (
    CONNECT_TIMEOUT,
    MailboxUnreachable,
    open_mailbox,
    reason,
)
from followupd.sources.imap.meaning import MailActions, act_on_mail
from followupd.sources.imap.messages import FetchedMessage, Skip, read_messages
from followupd.store import mailbox as stored
from followupd.store.chunks import chunked
from followupd.store.db import Store

log = logging.getLogger("followupd.sources.imap")

FETCH_CHUNK = 1000  # UIDs a FETCH asks for: one transaction each (~7 kB of command line)
INBOX, SENT = "inbox", "sent"
# a connection that broke: the mailbox stops for this pass (each folder would fail alike)
_CONNECTION_LOST = (IMAPClientAbortError, OSError, EOFError, ssl.SSLError)


@dataclass
class FolderReport:
    """One folder read in a pass, and how.

    `mode`: "full" (read for the first time), "rescan" (started over: a new
    UIDVALIDITY, or another account), "incremental" (the UIDs above the last
    one read) or "unchanged" (nothing new: nothing fetched).
    """

    mailbox: str  # the account, user@host:port
    folder: str
    role: str  # "inbox" | "sent"
    mode: str
    seen: int = 0  # messages fetched
    recorded: int = 0  # of which recorded now (new to the store)


@dataclass
class MailSyncReport:
    folders: list[FolderReport] = field(default_factory=list)
    recorded: list[int] = field(default_factory=list)  # the ids of the messages recorded now
    failed: list[str] = field(default_factory=list)  # a mailbox or folder not read, and why
    skipped: list[str] = field(default_factory=list)  # "folder UID n: reason"
    # the sent folders read: (mailbox owner key or None, folder), for the messages' reader
    sent_folders: list[tuple[str | None, str]] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)  # worth saying, stops nothing
    actions: MailActions = field(default_factory=MailActions)  # what the new messages meant

    def fail(self, line: str) -> None:
        # said by the caller: `sync` and `tick` on stderr, the daemon as its pass's failure
        log.info("%s", line)
        self.failed.append(line)

    def skip(self, line: str) -> None:
        log.warning("message skipped: %s", line)
        self.skipped.append(line)

    def note(self, line: str) -> None:
        log.info("%s", line)
        self.notices.append(line)


def sync_mailboxes(
    store: Store,
    settings: Settings,
    at: datetime,
    *,
    environ: Mapping[str, str] | None = None,
    timeout: float = CONNECT_TIMEOUT,
) -> MailSyncReport:
    """Read every mailbox's new messages into the store, as of `at`; see the module."""
    report = MailSyncReport()
    keep = timedelta(days=settings.service.retention_days)
    for account, owner in mailbox_sources(settings):
        try:
            client = open_mailbox(account, timeout, environ=environ)
        except MailboxUnreachable as error:
            report.fail(f"{error}; tried again next time")
            continue
        try:
            client.normalise_times = False  # INTERNALDATE aware, as the server wrote it
            _MailboxPass(store, settings, client, account, owner, at, at - keep, report).run()
        except _CONNECTION_LOST as error:
            log.debug("mailbox %s failed", account.account, exc_info=True)
            report.fail(
                f"mailbox {account.account}: {reason(error, timeout)}; tried again next time"
            )
        finally:
            _log_out(client)
    return report


@dataclass
class _MailboxPass:
    """One pass over one mailbox, on an open connection."""

    store: Store
    settings: Settings
    client: IMAPClient
    account: ImapAccount
    owner: str | None
    at: datetime
    cut_off: datetime  # but on a first reading, messages dated before this are left out
    report: MailSyncReport

    def run(self) -> None:
        condstore = enable_condstore(self.client)
        for name, role in folders_to_read(self.client, self.account, self.report):
            if role == SENT:
                self.report.sent_folders.append((self.owner, name))
            self._folder(name, role, condstore)

    def _folder(self, folder: str, role: str, condstore: bool) -> None:
        """One folder; a failure other than the connection's stops this folder only."""
        try:
            self._read_folder(folder, role, condstore)
        except _CONNECTION_LOST:
            raise
        except Exception as error:  # a NO or BAD from the server, an answer not understood
            if isinstance(error, SQLAlchemyError):
                raise
            log.debug("folder %s failed", folder, exc_info=True)
            self.report.fail(
                f"mailbox {self.account.account}: folder {folder!r} not read: "
                f"{reason(error)}; tried again next time"
            )

    def _read_folder(self, folder: str, role: str, condstore: bool) -> None:
        examined = self.client.select_folder(folder, readonly=True)
        uidvalidity = int(examined[b"UIDVALIDITY"])
        uidnext = _number(examined.get(b"UIDNEXT"))
        modseq = _number(examined.get(b"HIGHESTMODSEQ")) if condstore else None
        with self.store.session() as session:
            state = stored.folder_state(session, self.owner, folder)
        over = state is not None and (
            state.uidvalidity != uidvalidity or state.account != self.account.account
        )
        last = state.last_uid if state is not None and not over else 0
        mode = "full" if state is None else "rescan" if over else "incremental"
        done = FolderReport(self.account.account, folder, role, mode)
        self.report.folders.append(done)
        if mode == "incremental" and _nothing_new(state, last, uidnext, modseq):
            done.mode = "unchanged"
            if state is not None and state.highest_modseq != modseq:
                self._save(folder, uidvalidity, last, modseq, reset=False)
            return
        # n:* always matches the folder's last message, even below n (RFC 3501 6.4.8)
        uids = sorted(uid for uid in self.client.search(["UID", f"{last + 1}:*"]) if uid > last)
        reset = over
        for chunk in chunked(uids, FETCH_CHUNK):
            fetched = read_messages(self.client, chunk, self._skipper(folder))
            done.seen += len(fetched)
            kept = [m for m in fetched if mode == "full" or not self._too_old(m)]
            ids = self._record(folder, role, uidvalidity, kept, chunk[-1], reset)
            reset = False
            done.recorded += len(ids)
            self.report.recorded += ids
        # UIDs below UIDNEXT not listed are gone for good: no need to look at them again
        top = max(last, uids[-1] if uids else 0, (uidnext or 1) - 1)
        self._save(folder, uidvalidity, top, modseq, reset=reset)

    def _record(
        self,
        folder: str,
        role: str,
        uidvalidity: int,
        messages: Sequence[FetchedMessage],
        last_uid: int,
        reset: bool,
    ) -> list[int]:
        """Record a chunk, act on what it means, and where the folder's reading got to,
        in one transaction."""
        with self.store.session() as session:
            bounced = _bounced_followups(session, messages)
            rows = [_new_message(message, bounced) for message in messages]
            self._reached(session, folder, uidvalidity, last_uid, None, reset=reset)
            found = stored.record_new_messages(
                session, self.owner, folder, uidvalidity, rows, self.at
            )
            sent = [(self.owner, folder)] if role == SENT else []
            self.report.actions.add(act_on_mail(session, self.settings, found, sent, self.at))
        return [message.id for message in found]

    def _save(
        self, folder: str, uidvalidity: int, last_uid: int, modseq: int | None, *, reset: bool
    ) -> None:
        with self.store.session() as session:
            self._reached(session, folder, uidvalidity, last_uid, modseq, reset=reset)

    def _reached(
        self,
        session: Session,
        folder: str,
        uidvalidity: int,
        last_uid: int,
        modseq: int | None,  # None in the middle of a folder: set once all of it is read
        *,
        reset: bool,
    ) -> None:
        """Where the reading of `folder` got to; with `reset`, started over first."""
        if reset:
            stored.reset_folder(session, self.owner, folder, uidvalidity, self.at)
        stored.save_folder_state(
            session,
            self.owner,
            folder,
            account=self.account.account,
            uidvalidity=uidvalidity,
            last_uid=last_uid,
            highest_modseq=modseq,
            at=self.at,
        )

    def _too_old(self, message: FetchedMessage) -> bool:
        when = message.facts.date or message.arrived
        return when is not None and when.utcoffset() is not None and when < self.cut_off

    def _skipper(self, folder: str) -> Skip:
        def skip(uid: int, why: str) -> None:
            self.report.skip(f"{folder} UID {uid}: {why}")

        return skip


def enable_condstore(client: IMAPClient) -> bool:
    """Whether HIGHESTMODSEQ comes with EXAMINE: CONDSTORE enabled (RFC 7162 3.1)."""
    if not (client.has_capability("CONDSTORE") and client.has_capability("ENABLE")):
        return False
    return b"CONDSTORE" in [bytes(item).upper() for item in client.enable("CONDSTORE")]


def folders_to_read(
    client: IMAPClient, account: ImapAccount, report: MailSyncReport
) -> list[tuple[str, str]]:
    """The folders of `account` to read, each with its role (inbox or sent), as listed.

    A folder named in the config that the server does not have is in
    `report.failed`; no sent folder found is a notice.
    """
    listed = client.list_folders()
    folders = _selectable(listed)
    wanted = [(name, INBOX) for name in account.folders]
    sent = _sent_folder(client, account, listed, folders, report)
    if sent is not None:
        wanted.append((sent, SENT))
    found = []
    for name, role in wanted:
        if name != "INBOX" and name not in folders:
            report.fail(f"mailbox {account.account}: folder {name!r} not found on the server")
        else:
            found.append((name, role))
    return found


def _sent_folder(
    client: IMAPClient,
    account: ImapAccount,
    listed: Sequence[Any],
    folders: set[str],
    report: MailSyncReport,
) -> str | None:
    """The account's `sent_folder`, else the one marked \\Sent, else "Sent"; None: none."""
    if account.sent_folder is not None:
        return account.sent_folder
    marked = _marked_sent(listed)
    if marked is None and client.has_capability("SPECIAL-USE"):
        marked = _marked_sent(_list_special_use(client))
    if marked is None and client.has_capability("XLIST"):
        marked = _marked_sent(client.xlist_folders())
    if marked is None and "Sent" in folders:
        marked = "Sent"
    if marked is None:
        report.note(
            f"mailbox {account.account}: no sent folder (none marked \\Sent, no "
            "'Sent'): set sent_folder to read what you send"
        )
    elif marked in account.folders:
        return None  # read once, as listed in folders
    return marked


def _nothing_new(
    state: stored.FolderState | None, last: int, uidnext: int | None, modseq: int | None
) -> bool:
    """Whether the folder has nothing above `last`: HIGHESTMODSEQ unmoved, or UIDNEXT."""
    if state is None:
        return False
    if modseq is not None and state.highest_modseq == modseq:
        return True
    return uidnext is not None and uidnext <= last + 1


def _bounced_followups(session: Session, messages: Sequence[FetchedMessage]) -> dict[str, str]:
    """The key of the follow-up each Message-ID a bounce names was sent as (the first's)."""
    named = [
        message_id
        for message in messages
        if message.bounce is not None
        for message_id in _bounce_names(message)
    ]
    if not named:
        return {}
    found = stored.followups_by_message_id(session, named)
    return {message_id: rows[0].key for message_id, rows in found.items() if rows}


def _bounce_names(message: FetchedMessage) -> list[str]:
    """The returned message's Message-ID first, then those the report says it answers."""
    first = message.bounce.original_message_id if message.bounce is not None else None
    return [first, *message.facts.answers] if first else list(message.facts.answers)


def _new_message(message: FetchedMessage, bounced: Mapping[str, str]) -> stored.NewMessage:
    facts, bounce = message.facts, message.bounce
    kind, followup_key = MailKind.OTHER, None
    status = diagnostic = None
    if bounce is not None:
        followup_key = next(
            (bounced[name] for name in _bounce_names(message) if name in bounced), None
        )
    if bounce is not None and followup_key is not None:
        kind, status, diagnostic = MailKind.BOUNCE, bounce.status, bounce.diagnostic
    elif facts.automatic:
        kind = MailKind.AUTOMATIC
    return stored.NewMessage(
        uid=message.uid,
        message_id=facts.message_id,
        date=facts.date,
        sender=facts.sender,
        recipients=facts.recipients,
        subject=facts.subject or None,
        answers=facts.answers,
        automatic=facts.automatic,
        report=facts.report,
        problem=facts.problem,
        kind=kind,
        followup_key=followup_key,
        delivery_status=status,
        diagnostic=diagnostic,
    )


def _selectable(listed: Iterable[Any]) -> set[str]:
    """The names of the folders that can be EXAMINEd."""
    names = set()
    for flags, _, name in listed:
        marks = {bytes(flag).lower() for flag in flags}
        if not marks & {b"\\noselect", b"\\nonexistent"}:
            names.add("INBOX" if str(name).upper() == "INBOX" else str(name))
    return names


def _list_special_use(client: IMAPClient) -> list[Any]:
    """LIST "" "*" RETURN (SPECIAL-USE): the attributes a server need not give a plain LIST.

    RFC 6154 section 5.1 lets a server leave the special-use attributes out of
    a plain LIST; asked for, it must give them. imapclient's list_folders
    quotes its arguments and cannot ask, so the command goes through the
    imaplib connection it wraps, and its answer through imapclient's reading
    of LIST. A server that refuses it is read as having marked none.
    """
    try:
        imap = client._imap
        typ, data = imap._simple_command("LIST", '""', '"*"', "RETURN", "(SPECIAL-USE)")
        if typ != "OK":
            return []
        _, data = imap._untagged_response(typ, data, "LIST")
        listed: list[Any] = client._proc_folder_list(data)
    except IMAPClientAbortError:
        raise
    except IMAPClientError as error:
        log.debug("LIST RETURN (SPECIAL-USE) refused: %s", error)
        return []
    return listed


def _marked_sent(listed: Iterable[Any]) -> str | None:
    for flags, _, name in listed:
        if b"\\sent" in {bytes(flag).lower() for flag in flags}:
            return str(name)
    return None


def _number(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _log_out(client: IMAPClient) -> None:
    try:
        client.logout()
    except Exception:  # the connection is broken already: close what is left
        try:
            client.shutdown()
        except Exception:  # nothing more to close
            return
