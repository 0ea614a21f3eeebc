"""What several instances on one PostgreSQL database agree on, in SQL.

PostgreSQL advisory locks and NOTIFY do the coordinating; on SQLite (one
user, one machine) every function here but `is_dead` is a no-op:

- **announce** new work on the ``followupd`` channel, inside the transaction
  that made it, so listeners hear of it only once it is committed;
- **evaluations run one at a time**: each pass takes a transaction-level
  lock first, so two instances never insert or cancel the same rows in
  different orders (a deadlock), and the second sees what the first recorded;
- **a delivering worker holds a lock named after it**, on a connection of its
  own, for as long as it may have rows in ``sending``. Its process dying
  closes that connection and frees the lock, so the leader can tell a dead
  worker's claims from a live one's and hand them back at once, instead of
  waiting for their leases to expire. On SQLite, where the daemon and a
  `tick` share one machine, a worker is dead when its process is: the worker's
  name says which process it was (`worker_name`, `died_here`).
"""

from __future__ import annotations

import hashlib
import os
import secrets
import socket
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

CHANNEL = "followupd"
DUE = "due"  # follow-ups became deliverable: deliver now
CHANGED = "changed"  # missions, invoices, issues… changed: evaluate now

# Advisory lock keys are two int4s: a namespace of ours, then the lock.
NAMESPACE = 0x0F011093  # "followupd", roughly
LEADER = 1
EVALUATION = 2
MIGRATION = 3
WORKERS = 0x0F011094  # the namespace of per-worker locks


def is_postgres(bind: Session | Engine) -> bool:
    engine = bind.get_bind() if isinstance(bind, Session) else bind
    return engine.dialect.name == "postgresql"


def announce(session: Session, topic: str) -> None:
    """Tell every listening instance about `topic` when this transaction commits."""
    if is_postgres(session):
        session.execute(select(func.pg_notify(CHANNEL, topic)))


def one_evaluation_at_a_time(session: Session) -> None:
    """Wait for any other instance's evaluation to commit; held until this one does."""
    if is_postgres(session):
        session.execute(select(func.pg_advisory_xact_lock(NAMESPACE, EVALUATION)))


def worker_name() -> str:
    """This process's name on claims: ``host:pid:random:space``.

    The random part tells apart processes of one pid (containers on one host
    network can all be pid 1); `space` is where that pid means this process
    (`pid_space`), so that a pid is only ever looked up where it was taken.
    """
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}:{pid_space()}"


@cache
def pid_space() -> str:
    """Where a pid names the same process: this boot of this kernel, this PID namespace.

    Eight hex digits of a digest of the kernel's boot id and the PID
    namespace's inode. Two containers may share a host name (a host network)
    and not their pids; a machine's pids start over at each boot. What cannot
    be read (no /proc, or /proc/sys hidden by a sandbox) counts as empty.
    """
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text(encoding="ascii").strip()
    except OSError:
        boot = ""
    try:
        namespace = str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        namespace = ""
    return hashlib.sha256(f"{boot}/{namespace}".encode()).hexdigest()[:8]


def died_here(worker: str) -> bool:
    """Whether `worker` provably died: it ran here (same host, same `pid_space`) and its
    process is gone.

    Never true for a worker of another machine or container, nor for a name
    without a pid space (an older version's): those keep their claims until
    their leases expire. A pid in use again, by anyone, counts as alive.
    """
    parts = worker.split(":")
    if len(parts) != 4:
        return False
    host, pid, _, space = parts
    if host != socket.gethostname() or space != pid_space() or not pid.isdigit():
        return False
    number = int(pid)
    if number <= 0 or number == os.getpid():  # 0 would signal our own process group
        return False
    try:
        os.kill(number, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return True
    except PermissionError:  # it exists, another user's
        return False
    return False


def worker_lock_id(worker: str) -> int:
    """The int4 that names `worker`'s lock (a collision only delays a release)."""
    value = zlib.crc32(worker.encode())
    return value - 2**32 if value >= 2**31 else value


@contextmanager
def alive(engine: Engine, worker: str) -> Iterator[None]:
    """Hold `worker`'s lock for the block, on a connection kept for it."""
    if not is_postgres(engine):
        yield
        return
    key = worker_lock_id(worker)
    with engine.connect() as connection:
        # Only the leader's check ever holds it, for an instant; never wait forever.
        connection.execute(select(func.set_config("lock_timeout", "10s", True)))
        connection.execute(select(func.pg_advisory_lock(WORKERS, key)))
        connection.commit()
        try:
            yield
        finally:
            try:
                connection.execute(select(func.pg_advisory_unlock(WORKERS, key)))
                connection.commit()
            except Exception:  # the connection is gone, and the lock with it
                connection.invalidate()


def is_dead(session: Session, worker: str) -> bool:
    """Whether `worker` provably died: nobody holds its lock (PostgreSQL), or its
    process on this machine is gone (SQLite)."""
    if is_postgres(session):
        # Held until this transaction ends: the worker cannot come back meanwhile.
        lock = func.pg_try_advisory_xact_lock(WORKERS, worker_lock_id(worker))
        return bool(session.scalar(select(lock)))
    # A SQLite transaction holds the write lock from its start (store.db): no
    # claim can change under this one.
    return died_here(worker)
