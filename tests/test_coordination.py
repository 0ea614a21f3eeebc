"""Several instances on one database: worker locks, notices, leadership (real PostgreSQL).

On SQLite the same calls must be harmless no-ops: one process, one worker.
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
import subprocess
import sys
from collections.abc import Callable, Coroutine, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import create_engine, select, text

from followupd.config.load import parse_settings
from followupd.daemon.cluster import Cluster
from followupd.delivery.deliverer import BATCH, SUB_BATCH, Deliverer, claim
from followupd.domain.states import FollowUpState
from followupd.store.coordination import (
    CHANGED,
    DUE,
    LEADER,
    NAMESPACE,
    WORKERS,
    alive,
    announce,
    died_here,
    is_postgres,
    pid_space,
    worker_lock_id,
    worker_name,
)
from followupd.store.db import Store
from followupd.store.models import FollowUp
from followupd.store.outbox.orphans import release_orphans
from tests.conftest import MINIMAL_CONFIG, fresh_postgres_database, sample_followup
from tests.rulekit import ACME, imported
from tests.smtpserver import Recorder, free_port

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def claimed(store: Store, key: str, worker: str) -> None:
    with store.session() as session:
        row = sample_followup(key, NOW)
        row.state, row.lease_owner, row.lease_expires_at = FollowUpState.SENDING, worker, NOW
        session.add(row)


def state_of(store: Store, key: str) -> tuple[str, str | None]:
    with store.session() as session:
        row = session.execute(
            select(FollowUp.state, FollowUp.lease_owner).where(FollowUp.key == key)
        ).one()
    return row.state, row.lease_owner


def ended_pid() -> int:
    """The pid of a process that has ended, and been waited for: nobody's now."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def here(pid: int, space: str | None = None) -> str:
    """A worker's name as `worker_name` makes it on this machine, for `pid`."""
    return f"{socket.gethostname()}:{pid}:a1b2c3:{space or pid_space()}"


def test_worker_names_say_where_their_pid_means_something() -> None:
    host, pid, random_part, space = worker_name().split(":")
    assert (host, pid, space) == (socket.gethostname(), str(os.getpid()), pid_space())
    assert re.fullmatch(r"[0-9a-f]{6}", random_part) and re.fullmatch(r"[0-9a-f]{8}", space)
    assert worker_name() != worker_name()
    assert not died_here(worker_name()), "we are alive"
    assert died_here(here(ended_pid()))
    assert not died_here(here(os.getppid())), "our parent is alive"
    assert not died_here(here(1)), "pid 1 is always someone"


def test_a_dead_workers_claims_are_handed_back_and_a_live_ones_are_kept(store: Store) -> None:
    gone = ended_pid()
    other_space = "0" * 8 if pid_space() != "0" * 8 else "f" * 8
    workers = {
        "k-live": "host:1",  # holds its lock (PostgreSQL)
        "k-dead": "host:2",  # holds none
        "k-gone-here": here(gone),  # a process of this machine that ended
        "k-running-here": here(os.getppid()),
        "k-other-host": f"elsewhere.example:{gone}:a1b2c3:{pid_space()}",
        "k-other-container": here(gone, other_space),
    }
    for key, worker in workers.items():
        claimed(store, key, worker)
    with alive(store.engine, "host:1"), store.session() as session:
        released = release_orphans(session, NOW)
    if is_postgres(store.engine):  # the lock decides, wherever the worker ran
        dead = {"k-dead", "k-gone-here", "k-running-here", "k-other-host", "k-other-container"}
    else:  # a process of this machine, this boot, this PID namespace, that is gone
        dead = {"k-gone-here"}
    assert released == {workers[key]: 1 for key in dead}
    for key, worker in workers.items():
        assert state_of(store, key) == (("pending", None) if key in dead else ("sending", worker))
    with store.session() as session:  # host:1 has stopped holding its lock: gone on PostgreSQL
        again = release_orphans(session, NOW)
    assert again == ({"host:1": 1} if is_postgres(store.engine) else {})


def test_a_claim_takes_one_batch_even_when_more_is_due(store: Store) -> None:
    """On PostgreSQL, the batch's rows are chosen once (see `claim`), not once a row."""
    with store.session() as session:
        for n in range(BATCH + 50):
            session.add(sample_followup(f"k{n:04d}", NOW - timedelta(minutes=1)))
    with store.session() as session:
        first = claim(session, NOW, "host:1", ["email"])
    with store.session() as session:
        second = claim(session, NOW, "host:2", ["email"])
    assert [row.key for row in first] == [f"k{n:04d}" for n in range(BATCH)]
    assert [row.key for row in second] == [f"k{n:04d}" for n in range(BATCH, BATCH + 50)]


async def until(condition: Callable[[], bool], seconds: float = 30) -> None:
    """Wait for `condition`; `seconds` only fails a test that would hang."""
    deadline = asyncio.get_running_loop().time() + seconds
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not within {seconds} s")
        await asyncio.sleep(0.02)


# what a coordination connection runs after its LISTEN, whenever it does not lead
LOCK_ATTEMPTS = text(
    "SELECT pid, query_start FROM pg_stat_activity "
    "WHERE application_name = 'followupd coordination' AND datname = current_database() "
    "AND query LIKE 'SELECT pg_try_advisory_lock(%'"
)
LEADER_PID = text(
    "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
    "AND classid = :space AND objid = :key AND objsubid = 2"
)


def lock_attempts(store: Store) -> set[tuple[int, datetime]]:
    """The last lock attempt of each coordination connection (its server pid, when it began),
    as the server saw it: a connection has run its LISTEN once it has one."""
    with store.engine.connect() as connection:
        return {(row.pid, row.query_start) for row in connection.execute(LOCK_ATTEMPTS)}


def tried_and_failed(store: Store) -> Callable[[], bool]:
    """Whether a connection that does not lead has made a second lock attempt since
    the first call: it then has the answer to the one before, and did not lead."""
    seen: set[tuple[int, datetime]] = set()

    def twice() -> bool:
        with store.engine.connect() as connection:
            leader = connection.scalar(LEADER_PID, {"space": NAMESPACE, "key": LEADER})
        seen.update(attempt for attempt in lock_attempts(store) if attempt[0] != leader)
        return len(seen) >= 2

    return twice


class Member:
    """A `Cluster` as the daemon runs it, recording what it is told."""

    def __init__(self, store: Store) -> None:
        self.notices: list[str] = []
        self.changes: list[bool] = []
        self.cluster = Cluster(
            store.engine,
            on_leadership=self.changes.append,
            on_notice=self.notices.append,
            heartbeat=0.1,
        )
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.ensure_future(self.cluster.run())

    async def stop(self) -> None:
        assert self.task is not None
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


def in_loop(test: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(test())


@pytest.fixture
def postgres_store(postgres_url: str) -> Iterator[Store]:
    """Leadership and notices are PostgreSQL's; on SQLite the daemon runs alone (`Solo`)."""
    opened = Store.open(fresh_postgres_database(postgres_url))
    opened.upgrade()
    yield opened
    opened.close()


@pytest.mark.postgresql
def test_one_instance_leads_and_another_takes_over_when_it_goes(postgres_store: Store) -> None:

    async def scenario() -> None:
        first, second = Member(postgres_store), Member(postgres_store)
        first.start()
        await until(lambda: first.cluster.is_leader)
        second.start()
        await until(tried_and_failed(postgres_store))  # it tried, and must not lead
        assert not second.cluster.is_leader and second.changes == []
        await first.stop()
        await until(lambda: second.cluster.is_leader)
        assert first.changes == [True, False] and second.changes == [True]
        await second.stop()

    in_loop(scenario)


@pytest.mark.postgresql
def test_notices_are_heard_once_committed_and_never_when_rolled_back(postgres_store: Store) -> None:

    async def scenario() -> None:
        members = [Member(postgres_store), Member(postgres_store)]
        for member in members:
            member.start()
        await until(lambda: any(m.cluster.is_leader for m in members))
        await until(lambda: len(lock_attempts(postgres_store)) == 2)  # both are listening
        with postgres_store.sessions() as session:
            announce(session, CHANGED)
            session.rollback()
        with postgres_store.session() as session:
            announce(session, DUE)
        with postgres_store.session() as session:  # heard after all those committed before
            announce(session, "last")
        await until(lambda: all(m.notices[-1:] == ["last"] for m in members))
        assert [m.notices for m in members] == [[DUE, "last"], [DUE, "last"]]
        for member in members:
            await member.stop()

    in_loop(scenario)


@pytest.mark.postgresql
def test_a_dropped_coordination_connection_is_made_again(postgres_store: Store) -> None:
    admin = create_engine(postgres_store.engine.url, isolation_level="AUTOCOMMIT")

    async def scenario() -> None:
        member = Member(postgres_store)
        member.start()
        await until(lambda: member.cluster.is_leader)
        with admin.connect() as connection:
            ended = connection.scalar(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE application_name = 'followupd coordination' "
                    "AND datname = current_database()"
                )
            )
        assert ended == 1
        await until(lambda: not member.cluster.is_leader)
        await until(lambda: member.cluster.is_leader)  # reconnected, leads again
        with postgres_store.session() as session:
            announce(session, DUE)
        await until(lambda: member.notices == [DUE])  # and listens again
        await member.stop()

    try:
        in_loop(scenario)
    finally:
        admin.dispose()


CLAIMED = SUB_BATCH + 3  # a sub-batch, and some of the next: none goes after the first


class TakenForDead(Recorder):
    """An SMTP server during whose first message the worker's lock connection drops,
    and the leader, seeing no lock, hands the worker's claims back."""

    LOCK = "locktype = 'advisory' AND classid = :space AND objid = CAST(:key AS oid) AND granted"

    def __init__(self, store: Store, worker: str) -> None:
        super().__init__()
        self.store, self.worker = store, worker
        self.lock = {"space": WORKERS, "key": worker_lock_id(worker) % 2**32}

    def locked(self) -> bool:
        with self.store.engine.connect() as connection:
            return bool(
                connection.scalar(
                    text(f"SELECT count(*) FROM pg_locks WHERE {self.LOCK}"), self.lock
                )
            )

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if not self.messages:
            with self.store.engine.connect() as connection:
                connection.execute(
                    text(f"SELECT pg_terminate_backend(pid) FROM pg_locks WHERE {self.LOCK}"),
                    self.lock,
                )
                connection.commit()
            await until(lambda: not self.locked())  # the backend ends after it is signalled
            with self.store.session() as session:
                assert release_orphans(session, NOW) == {self.worker: CLAIMED}
        return await super().handle_DATA(server, session, envelope)


@pytest.mark.postgresql
def test_claims_handed_back_mid_batch_are_not_sent_by_their_old_worker(
    postgres_store: Store, tmp_path: Path
) -> None:
    invoice = '[[invoices]]\nnumber = "F-1"\nmission = "acme-audit"\namount = 10\n'
    imported(postgres_store, tmp_path, ACME + invoice + "issued = 2026-10-01\ndue = 2026-11-01\n")
    for n in range(CLAIMED):
        with postgres_store.session() as session:
            row = sample_followup(f"k{n:02d}", NOW - timedelta(minutes=1))
            session.add(row)
    recorder = TakenForDead(postgres_store, "host:1")
    port = free_port()
    controller = Controller(recorder, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        text_ = MINIMAL_CONFIG + f'[smtp]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "none"\n'
        text_ += "connections = 1\n"
        settings = parse_settings(text_, tmp_path / "f.toml", {"HOME": str(tmp_path)})
        report = asyncio.run(Deliverer(postgres_store, settings, "host:1").run(NOW))
    finally:
        controller.stop()
    assert len(recorder.messages) == 1, "only the message in flight when the lock went"
    assert report.sent == [], "its outcome is not ours to record any more"
    for n in range(CLAIMED):  # for the next claim; the first message will arrive a second time
        assert state_of(postgres_store, f"k{n:02d}") == ("pending", None)
