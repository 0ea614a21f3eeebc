"""What several instances on one PostgreSQL database agree on, in SQL.

PostgreSQL advisory locks and NOTIFY do the coordinating; on SQLite (one
user, one machine, one process) every function here is a no-op:

- **announce** new work on the ``followupd`` channel, inside the transaction
  that made it, so listeners hear of it only once it is committed;
- **evaluations run one at a time**: each pass takes a transaction-level
  lock first, so two instances never insert or cancel the same rows in
  different orders (a deadlock), and the second sees what the first recorded;
- **a delivering worker holds a lock named after it**, on a connection of its
  own, for as long as it may have rows in ``sending``. Its process dying
  closes that connection and frees the lock, so the leader can tell a dead
  worker's claims from a live one's and hand them back at once, instead of
  waiting for their leases to expire.
"""

from __future__ import annotations

import os
import secrets
import socket
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session

from followupd.store.models import FollowUp

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
    """This process's name on claims: host and pid, and a random part, since containers
    on one host network can all be pid 1."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


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


def hand_back(session: Session, at: datetime, *where: Any, **values: Any) -> int:
    """Claimed rows matching `where` back to ``pending``, for the next claim; how many.

    One statement for every way a claim is given up: a stopping worker's,
    a dead worker's, an expired lease.
    """
    result = session.execute(
        update(FollowUp)
        .where(FollowUp.state == "sending", *where)
        .values(state="pending", lease_owner=None, lease_expires_at=None, updated_at=at, **values)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0))


def release_orphans(session: Session, at: datetime) -> dict[str, int]:
    """Hand back to ``pending`` the claims of workers that hold no lock: they died.

    Returns how many rows each dead worker left. The attempt stays counted:
    the message may have left before the worker died.
    """
    if not is_postgres(session):
        return {}
    owners = session.scalars(
        select(FollowUp.lease_owner)
        .where(FollowUp.state == "sending", FollowUp.lease_owner.is_not(None))
        .distinct()
    ).all()
    released: dict[str, int] = {}
    for owner in owners:
        assert owner is not None
        # Held until this transaction ends: the worker cannot come back meanwhile.
        lock = func.pg_try_advisory_xact_lock(WORKERS, worker_lock_id(owner))
        free = session.scalar(select(lock))
        if not free:
            continue
        released[owner] = hand_back(session, at, FollowUp.lease_owner == owner)
    if any(released.values()):
        announce(session, DUE)
    return released
