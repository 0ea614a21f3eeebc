"""The daemon's watch on a folder, against a real Dovecot: IDLE wakes it, stop ends it.

Each test runs `watch_inbox` in a thread and waits on events with a
timeout: the watcher says when it is idling (a spy on its connection), and
`wake` sets an event.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from imapclient import IMAPClient

from followupd.config.accounts import ImapAccount
from followupd.sources.imap import watch
from followupd.sources.imap.connection import open_mailbox
from followupd.sources.imap.watch import watch_inbox
from tests.imapserver import TIMEOUT_SECONDS, ImapServer
from tests.test_imap_sync import mail, settings_for

WAKE_SECONDS = 5.0  # a reply is acted on within 5 s of its arrival
STOP_SECONDS = 2.5


@dataclass
class Watching:
    """A watcher running in a thread, and what it did."""

    woken: threading.Event = field(default_factory=threading.Event)
    idling: threading.Event = field(default_factory=threading.Event)  # set on each IDLE
    stop: threading.Event = field(default_factory=threading.Event)
    tried: threading.Event = field(default_factory=threading.Event)  # set on each attempt
    connections: int = 0
    thread: threading.Thread | None = None

    def opener(self, *args: Any, **kwargs: Any) -> IMAPClient:
        self.tried.set()
        client = open_mailbox(*args, **kwargs)
        self.connections += 1
        real = client.idle

        def idle() -> Any:
            answer = real()
            self.idling.set()
            return answer

        client.idle = idle
        return client

    def start(self, account: ImapAccount, folder: str, **options: Any) -> None:
        self.thread = threading.Thread(
            target=watch_inbox,
            args=(account, folder, self.woken.set, self.stop),
            kwargs=options,
            daemon=True,
        )
        self.thread.start()

    def stopped_within(self, seconds: float) -> float:
        """Set stop; the seconds the watcher took to return (fails if it did not)."""
        assert self.thread is not None
        started = time.monotonic()
        self.stop.set()
        self.thread.join(seconds)
        assert not self.thread.is_alive()
        return time.monotonic() - started


@pytest.fixture
def watching(monkeypatch: pytest.MonkeyPatch) -> Iterator[Watching]:
    running = Watching()
    monkeypatch.setattr(watch, "open_mailbox", running.opener)
    yield running
    running.stop.set()
    if running.thread is not None:
        running.thread.join(TIMEOUT_SECONDS)


def account_of(server: ImapServer, user: str, tmp_path: Path) -> ImapAccount:
    account = settings_for(server, user, tmp_path).imap
    assert account is not None
    return account


def test_an_append_wakes_the_watcher_and_stop_ends_it(
    imap_server_any: ImapServer, tmp_path: Path, watching: Watching
) -> None:
    user = imap_server_any.new_user()
    watching.start(account_of(imap_server_any, user, tmp_path), "INBOX")
    assert watching.idling.wait(TIMEOUT_SECONDS)
    assert not watching.woken.is_set()

    imap_server_any.append(user, "INBOX", mail("Re: Facture F-042"))

    assert watching.woken.wait(WAKE_SECONDS)
    assert watching.stopped_within(STOP_SECONDS) < STOP_SECONDS
    assert watching.connections == 1


def test_idle_is_issued_again_after_idle_seconds(
    imap_server_any: ImapServer, tmp_path: Path, watching: Watching
) -> None:
    user = imap_server_any.new_user()
    watching.start(account_of(imap_server_any, user, tmp_path), "INBOX", idle_seconds=0.5)
    assert watching.idling.wait(TIMEOUT_SECONDS)
    watching.idling.clear()
    assert watching.idling.wait(TIMEOUT_SECONDS)  # DONE, then IDLE again on one connection
    imap_server_any.append(user, "INBOX", mail("Re: relance"))
    assert watching.woken.wait(WAKE_SECONDS)
    watching.stopped_within(STOP_SECONDS)
    assert watching.connections == 1


def test_a_connection_lost_is_opened_again_and_wakes(
    imap_server: ImapServer, tmp_path: Path, watching: Watching
) -> None:
    user = imap_server.new_user()
    watching.start(account_of(imap_server, user, tmp_path), "INBOX")
    assert watching.idling.wait(TIMEOUT_SECONDS)
    watching.idling.clear()

    kicked = subprocess.run(
        ["doveadm", "-c", str(imap_server.workdir / "dovecot.conf"), "kick", user],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_SECONDS,
        check=False,
    )

    assert kicked.returncode == 0, kicked.stderr
    assert watching.woken.wait(WAKE_SECONDS)  # back after the first wait (1 s), and says so
    assert watching.idling.wait(TIMEOUT_SECONDS)
    assert watching.connections == 2
    watching.stopped_within(STOP_SECONDS)


def test_a_server_without_idle_is_polled(
    imap_server_any: ImapServer, tmp_path: Path, watching: Watching, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = imap_server_any.new_user()
    polled = threading.Event()
    opener = watching.opener

    def without_idle(*args: Any, **kwargs: Any) -> IMAPClient:
        client = opener(*args, **kwargs)
        client.has_capability = lambda name: name.upper() != "IDLE"
        real = client.noop

        def noop() -> Any:
            polled.set()
            return real()

        client.noop = noop
        return client

    monkeypatch.setattr(watch, "open_mailbox", without_idle)
    watching.start(account_of(imap_server_any, user, tmp_path), "INBOX", poll_seconds=0.2)
    assert polled.wait(TIMEOUT_SECONDS)
    imap_server_any.append(user, "INBOX", mail("Re: relance"))
    assert watching.woken.wait(WAKE_SECONDS)
    assert not watching.idling.is_set()
    watching.stopped_within(STOP_SECONDS)


def test_a_server_down_is_retried_until_stop(tmp_path: Path, watching: Watching) -> None:
    secret = tmp_path / "secret"
    secret.write_text("x", encoding="utf-8")
    account = ImapAccount.model_validate(
        {
            "url": "imap://127.0.0.1:1/",
            "security": "none",
            "username": "claire",
            "password_file": secret,
        }
    )
    watching.start(account, "INBOX")
    assert watching.tried.wait(TIMEOUT_SECONDS)
    watching.tried.clear()
    assert watching.tried.wait(TIMEOUT_SECONDS)  # again, after a wait
    assert watching.stopped_within(STOP_SECONDS) < STOP_SECONDS
    assert watching.connections == 0 and not watching.woken.is_set()
