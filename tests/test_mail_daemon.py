"""The daemon with a mailbox, in this process against the real Dovecot, on each engine.

A message another client APPENDs is recorded within 5 seconds thanks to the
watcher in IDLE (the timed sync is an hour away), even when it arrives while
a pass is reading the mailbox, and after a reload; /healthz is degraded,
naming the mailbox, while the server cannot be reached, the other passes run
all the same, and the mailbox back is read at once; SIGTERM ends the daemon
promptly, its watchers with it. On a shared PostgreSQL, the leader alone
watches, and the next leader takes over.

The service runs in the test's event loop (`Service.run`, its signal handlers
on this process), on the real clock: its timers are APScheduler's, on the
real clock too.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from imapclient import IMAPClient
from sqlalchemy import select
from sqlalchemy.engine import URL

from followupd.daemon.cluster import HEARTBEAT_SECONDS
from followupd.daemon.service import Service
from followupd.sources.imap import sync, watch
from followupd.sources.imap.connection import open_mailbox
from followupd.sources.imap.sync import MailSyncReport
from followupd.store.db import Store
from followupd.store.models import MailMessage
from tests.conftest import MINIMAL_CONFIG
from tests.daemon import get
from tests.imapserver import PASSWORD, TIMEOUT_SECONDS, ImapServer
from tests.smtpserver import free_port
from tests.test_imap_sync import closed_port, mail
from tests.test_mail_commands import PASSWORD_VARIABLE, imap_section

WAKE_SECONDS = 5.0  # a reply is recorded within 5 s of its arrival
STOP_SECONDS = 5.0  # SIGTERM: the daemon is gone within this, its watchers too
START_SECONDS = 20.0  # the daemon up, its first passes done, its watcher in IDLE
POLL_SECONDS = 0.05
# the watcher tries again 1 s, then 3 s after its first failure (`RETRY_SECONDS`)
RECOVERY_SECONDS = sum(watch.RETRY_SECONDS[:3]) + WAKE_SECONDS
# a standby tries to lead at each heartbeat
TAKE_OVER_SECONDS = HEARTBEAT_SECONDS + WAKE_SECONDS


def clock() -> datetime:
    """The daemon's clock: the real one, as APScheduler's timers are."""
    return datetime.now(UTC)


@dataclass
class IdleSpy:
    """Counts the watchers' IDLE commands (each a watcher ready for news)."""

    idles: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def opener(self, *args: Any, **kwargs: Any) -> IMAPClient:
        client = open_mailbox(*args, **kwargs)
        real = client.idle

        def idle() -> Any:
            answer = real()
            with self.lock:
                self.idles += 1
            return answer

        client.idle = idle
        return client


@pytest.fixture
def idles(monkeypatch: pytest.MonkeyPatch) -> IdleSpy:
    spy = IdleSpy()
    monkeypatch.setattr(watch, "open_mailbox", spy.opener)
    return spy


@pytest.fixture
def user(imap_server: ImapServer, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(PASSWORD_VARIABLE, PASSWORD)
    return imap_server.new_user()


def watcher_threads() -> list[str]:
    return [thread.name for thread in threading.enumerate() if thread.name.startswith("imap-watch")]


@pytest.fixture(autouse=True)
def _no_watcher_left() -> Iterator[None]:
    assert watcher_threads() == [], "a watcher of another test is still running"
    yield
    assert watcher_threads() == []


def daemon_config(home: Path, imap: str) -> tuple[Path, int]:
    """A config reading the mailbox `imap`, timed sync an hour apart; and its /healthz port."""
    port = free_port()
    config = home / "followupd.toml"
    config.write_text(
        MINIMAL_CONFIG
        + f'[feed]\nlisten = "127.0.0.1:{port}"\n'
        + "[service]\nsync_every_seconds = 3600\n"
        + imap,
        encoding="utf-8",
    )
    return config, port


async def until(condition: Callable[[], bool], seconds: float, what: str) -> float:
    """Wait for `condition`, looking every 50 ms; the seconds it took (fails past `seconds`)."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > seconds:
            raise AssertionError(f"{what}: not within {seconds} s")
        await asyncio.sleep(POLL_SECONDS)
    return time.monotonic() - started


@pytest.fixture
def mail_store(database_url: URL) -> Iterator[Store]:
    """The daemon's database, from the test's side."""
    store = Store.open(database_url)
    yield store
    store.close()


def recorded(store: Store, subject: str) -> Callable[[], bool]:
    def found() -> bool:
        with store.session() as session:
            query = select(MailMessage.id).where(MailMessage.subject == subject)
            return session.scalar(query) is not None

    return found


def passed(service: Service, *names: str) -> Callable[[], bool]:
    return lambda: all(name in service.results for name in names)


def running(
    config: Path, scenario: Callable[[Service, asyncio.Task[int]], Awaitable[None]]
) -> None:
    """Run the daemon of `config` with `scenario` beside it; the scenario must stop it."""
    asyncio.run(running_in_loop(config, scenario))


async def running_in_loop(
    config: Path, scenario: Callable[[Service, asyncio.Task[int]], Awaitable[None]]
) -> None:
    service = Service(config, dict(os.environ), clock=clock)
    daemon = asyncio.ensure_future(service.run())
    try:
        # the scheduler starts after the signal handlers are in place
        await until(lambda: service.scheduler.running or daemon.done(), START_SECONDS, "up")
        assert not daemon.done(), daemon.result()
        await scenario(service, daemon)
    finally:
        if not daemon.done():
            service.stop_requested.set()
            await asyncio.wait_for(daemon, TIMEOUT_SECONDS)


async def stop_by_sigterm(daemon: asyncio.Task[int]) -> float:
    """SIGTERM to this process (the daemon's handler takes it); the seconds it took to end."""
    started = time.monotonic()
    os.kill(os.getpid(), signal.SIGTERM)
    assert await asyncio.wait_for(daemon, TIMEOUT_SECONDS) == 0
    return time.monotonic() - started


def test_idle_has_a_new_message_recorded_within_seconds_and_sigterm_ends_the_watchers(
    home: Path, mail_store: Store, imap_server: ImapServer, user: str, idles: IdleSpy
) -> None:
    now = clock()
    imap_server.append(user, "INBOX", mail("Re: Facture F-042", date=now - timedelta(days=1)))
    config, _ = daemon_config(home, imap_section(imap_server, user))
    reply = recorded(mail_store, "Re: Re: Facture F-042")
    first = recorded(mail_store, "Re: Facture F-042")

    async def scenario(service: Service, daemon: asyncio.Task[int]) -> None:
        await until(passed(service, "mail"), START_SECONDS, "the first mailbox sync")
        assert service.results["mail"].ok and first()
        await until(lambda: idles.idles >= 1, START_SECONDS, "the watcher in IDLE")
        assert watcher_threads() == [f"imap-watch {user}@127.0.0.1:{imap_server.imaps_port} INBOX"]

        await asyncio.to_thread(
            imap_server.append, user, "INBOX", mail("Re: Re: Facture F-042", date=clock())
        )
        await until(reply, WAKE_SECONDS, "the new message recorded")

        timer = service.scheduler.get_job("mail")
        assert timer is not None and timer.next_run_time - clock() > timedelta(minutes=55)
        assert await stop_by_sigterm(daemon) < STOP_SECONDS
        assert watcher_threads() == []

    running(config, scenario)


def test_a_message_arriving_while_the_mailbox_is_read_is_read_next(
    home: Path,
    mail_store: Store,
    imap_server: ImapServer,
    user: str,
    idles: IdleSpy,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The watcher's news during a pass: the pass runs again, not an hour later."""
    config, _ = daemon_config(home, imap_section(imap_server, user))
    woken = threading.Event()  # the daemon heard the watcher about the second message
    armed = threading.Event()
    real_sync = sync.sync_mailboxes

    def sync_then_a_second_arrives(*args: Any, **kwargs: Any) -> MailSyncReport:
        report = real_sync(*args, **kwargs)
        if armed.is_set() and report.recorded:  # the pass that read the first message
            armed.clear()
            woken.clear()
            imap_server.append(user, "INBOX", mail("Deuxième réponse", date=clock()))
            assert woken.wait(WAKE_SECONDS), "the watcher did not see the second message"
        return report

    monkeypatch.setattr(sync, "sync_mailboxes", sync_then_a_second_arrives)
    first = recorded(mail_store, "Première réponse")
    second = recorded(mail_store, "Deuxième réponse")

    async def scenario(service: Service, daemon: asyncio.Task[int]) -> None:
        heard = service._mail_arrived

        def mail_arrived() -> None:
            heard()
            woken.set()

        service._mail_arrived = mail_arrived  # type: ignore[method-assign]
        await until(passed(service, "mail"), START_SECONDS, "the first mailbox sync")
        await until(lambda: idles.idles >= 1, START_SECONDS, "the watcher in IDLE")
        armed.set()

        await asyncio.to_thread(
            imap_server.append, user, "INBOX", mail("Première réponse", date=clock())
        )
        await until(first, WAKE_SECONDS, "the first message recorded")
        await until(second, WAKE_SECONDS, "the second message recorded")
        assert not armed.is_set() and service.results["mail"].ok

    running(config, scenario)


def test_healthz_names_the_mailbox_while_it_is_unreachable_and_the_other_passes_run(
    home: Path, imap_server: ImapServer, user: str, idles: IdleSpy
) -> None:
    down = closed_port()
    config, port = daemon_config(home, imap_section(imap_server, user, port=down))

    async def scenario(service: Service, daemon: asyncio.Task[int]) -> None:
        others = ("evaluate", "deliver", "orphans", "housekeeping")
        await until(passed(service, "mail", *others), START_SECONDS, "the first passes")
        status, body, _ = await asyncio.to_thread(get, f"http://127.0.0.1:{port}/healthz")
        said = body.decode()
        assert status == 503, said
        assert f"mail failed: mailbox {user}@127.0.0.1:{down}: connection refused" in said
        assert all(service.results[name].ok for name in others)
        assert PASSWORD not in said
        assert len(watcher_threads()) == 1, "the watcher keeps trying"
        assert idles.idles == 0

        assert await stop_by_sigterm(daemon) < STOP_SECONDS

    running(config, scenario)


def test_a_reload_replaces_the_watchers_and_sigterm_ends_them_all(
    home: Path, mail_store: Store, imap_server: ImapServer, user: str, idles: IdleSpy
) -> None:
    config, _ = daemon_config(home, imap_section(imap_server, user))
    after = recorded(mail_store, "Après le rechargement")

    async def scenario(service: Service, daemon: asyncio.Task[int]) -> None:
        await until(lambda: idles.idles >= 1, START_SECONDS, "the watcher in IDLE")
        await until(passed(service, "mail"), START_SECONDS, "the first mailbox sync")
        os.kill(os.getpid(), signal.SIGHUP)
        await until(lambda: idles.idles >= 2, START_SECONDS, "a new watcher in IDLE")

        await asyncio.to_thread(
            imap_server.append, user, "INBOX", mail("Après le rechargement", date=clock())
        )
        await until(after, WAKE_SECONDS, "the message recorded")
        assert await stop_by_sigterm(daemon) < STOP_SECONDS
        assert watcher_threads() == []

    running(config, scenario)


@dataclass
class Gate:
    """A TCP relay to the IMAP server that hangs up on every client until `up`."""

    target: int
    up: bool = False
    port: int = 0
    server: asyncio.Server | None = None
    pipes: set[asyncio.Task[None]] = field(default_factory=set)

    async def open(self) -> None:
        self.server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        assert self.server is not None
        self.server.close()
        for pipe in self.pipes:
            pipe.cancel()
        await asyncio.gather(*self.pipes, return_exceptions=True)
        await self.server.wait_closed()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.up:  # down: as a server restarting, it closes the connection at once
            writer.close()
            return
        upstream, downstream = await asyncio.open_connection("127.0.0.1", self.target)
        for source, sink in ((reader, downstream), (upstream, writer)):
            pipe = asyncio.ensure_future(self._relay(source, sink))
            self.pipes.add(pipe)
            pipe.add_done_callback(self.pipes.discard)

    @staticmethod
    async def _relay(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        try:
            while data := await source.read(65536):
                sink.write(data)
                await sink.drain()
        except ConnectionError:
            pass
        finally:
            sink.close()


def test_the_mailbox_back_is_read_at_once_and_healthz_is_ok_again(
    home: Path, mail_store: Store, imap_server: ImapServer, user: str
) -> None:
    imap_server.append(user, "INBOX", mail("Pendant la panne", date=clock()))
    came = recorded(mail_store, "Pendant la panne")

    async def main() -> None:
        gate = Gate(imap_server.imaps_port)
        await gate.open()
        config, port = daemon_config(home, imap_section(imap_server, user, port=gate.port))

        async def scenario(service: Service, daemon: asyncio.Task[int]) -> None:
            await until(passed(service, "mail"), START_SECONDS, "the first mailbox sync")
            status, body, _ = await asyncio.to_thread(get, f"http://127.0.0.1:{port}/healthz")
            assert status == 503 and "the server closed the connection" in body.decode()
            assert not came()

            gate.up = True  # the watcher, trying again, wakes the sync: not the hourly timer
            await until(came, RECOVERY_SECONDS, "the message recorded once the server is back")
            await until(lambda: service.health()[0], WAKE_SECONDS, "healthy again")
            status, body, _ = await asyncio.to_thread(get, f"http://127.0.0.1:{port}/healthz")
            assert status == 200, body
            assert await stop_by_sigterm(daemon) < STOP_SECONDS

        try:
            await running_in_loop(config, scenario)
        finally:
            await gate.close()

    asyncio.run(main())


@pytest.mark.parametrize(
    "database_url", [pytest.param("postgresql", marks=pytest.mark.postgresql)], indirect=True
)
def test_only_the_leader_watches_and_the_next_one_takes_over(
    home: Path, mail_store: Store, imap_server: ImapServer, user: str, idles: IdleSpy
) -> None:
    """Two instances on one PostgreSQL database: the mailbox is watched by the leader alone."""
    first_config, _ = daemon_config(home, imap_section(imap_server, user))
    (home / "second").mkdir()
    second_config, _ = daemon_config(home / "second", imap_section(imap_server, user))
    later = recorded(mail_store, "Après le départ du premier")

    async def main() -> None:
        async def first_leads(first: Service, daemon: asyncio.Task[int]) -> None:
            await until(lambda: first.cluster.is_leader, START_SECONDS, "the first leads")
            await until(lambda: idles.idles >= 1, START_SECONDS, "its watcher in IDLE")

            async def second_waits(second: Service, _daemon: asyncio.Task[int]) -> None:
                await until(passed(second, "orphans"), START_SECONDS, "the second up")
                assert not second.cluster.is_leader and second.watchers.threads == []
                assert len(watcher_threads()) == 1

                first.stop_requested.set()
                assert await asyncio.wait_for(daemon, TIMEOUT_SECONDS) == 0
                await until(lambda: second.cluster.is_leader, TAKE_OVER_SECONDS, "it leads")
                await until(lambda: idles.idles >= 2, START_SECONDS, "its watcher in IDLE")
                await asyncio.to_thread(
                    imap_server.append,
                    user,
                    "INBOX",
                    mail("Après le départ du premier", date=clock()),
                )
                await until(later, WAKE_SECONDS, "the message recorded by the second")
                assert len(watcher_threads()) == 1

            await running_in_loop(second_config, second_waits)

        await running_in_loop(first_config, first_leads)

    asyncio.run(main())
