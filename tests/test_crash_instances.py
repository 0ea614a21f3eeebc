"""Three instances delivering from one outbox, killed with SIGKILL again and again.

900 client emails fall due at once. Three `followupd tick` processes run side
by side on one database (PostgreSQL, or SQLite's file shared by processes),
sharing the work through their claims, against one SMTP server on loopback
(in this process, so it outlives them). In each round the three are killed
one after another, each once a random number more messages have arrived and
at a random instant within a message's round trip; the next round's three
start a minute later and take back the dead ones' claims at once. A last
round runs to the end.

The promise checked: every follow-up arrives, and a kill sends at most one
message twice per killed instance, with the same Message-ID: an instance
ends a message only once the one its server accepted before is recorded
(followupd.delivery.handover), across all its connections.
"""

from __future__ import annotations

import functools
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import URL

from followupd.channels.email.message import message_id
from followupd.delivery.deliverer import LEASE
from followupd.store.db import Store
from followupd.store.models import FollowUp
from tests.conftest import RunCli
from tests.daemon import wait_for
from tests.smtpserver import CountingController, Recorder, free_port
from tests.test_crash import FIRST_TICK, RESTART_STEP, config_text, data_text, received_ids

pytestmark = pytest.mark.slow

INSTANCES = 3
ROUNDS = 3
INVOICES = 900
MESSAGES_BEFORE_KILL = (5, 40)  # more messages arrived before each kill
SEED = int(os.environ.get("CRASH_SEED", "17"))
PROCESS_TIMEOUT = 60.0


@dataclass
class Killed:
    """One instance killed mid-send, and the messages it left accepted but not recorded."""

    round: int
    pid: int
    ports: set[int]  # its SMTP connections' local ports, just before the kill
    unrecorded: set[str]


class ByConnection(Recorder):
    """Also notes which connection (the client's port) each message came on."""

    def __init__(self) -> None:
        super().__init__()
        self.arrivals: list[tuple[int, str]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        answer = await super().handle_DATA(server, session, envelope)
        self.arrivals.append((session.peer[1], str(self.messages[-1]["Message-ID"])))
        return answer


def smtp_ports(pid: int, server: int) -> set[int]:
    """The local ports of process `pid`'s connections to the SMTP server's port `server`."""
    inodes = set()
    with suppress(OSError):
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with suppress(OSError):
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[len("socket:[") : -1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with suppress(OSError), open(table, encoding="ascii") as lines:
            for line in list(lines)[1:]:
                fields = line.split()
                remote = int(fields[2].rsplit(":", 1)[1], 16)
                if fields[9] in inodes and remote == server:
                    ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def past_start(processes: list[subprocess.Popen[str]], server: int) -> bool:
    """Whether every process ended or is connected to the SMTP server: past its start,
    where it took back the claims of the instances dead by then."""
    return all(p.poll() is not None or smtp_ports(p.pid, server) for p in processes)


def tick(config: Path, now: datetime, log: Path) -> subprocess.Popen[str]:
    with log.open("a") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "followupd", "--config", str(config),
             "tick", "--now", now.isoformat(), "--json"],
            stdout=subprocess.DEVNULL, stderr=err, text=True, env=dict(os.environ),
        )  # fmt: skip


def unrecorded_by(database_url: URL, pid: int, arrived: set[str]) -> set[str]:
    """The Message-IDs in `arrived` whose rows the process `pid` still has claimed.

    `arrived`: the messages that came on its connections (the same message may
    have come before from an instance killed earlier, whose claim it took back).
    """
    store = Store.open(database_url, create=False)
    try:
        with store.session() as session:
            keys = session.scalars(
                select(FollowUp.key).where(
                    FollowUp.state == "sending",
                    FollowUp.lease_owner.startswith(f"{socket.gethostname()}:{pid}:"),
                )
            )
            return {message_id(key, "cabinet.example") for key in keys} & arrived
    finally:
        store.close()


def wait_for_more(recorder: Recorder, more: int, processes: list[subprocess.Popen[str]]) -> bool:
    """Wait until `more` messages arrived beyond those now; False if every process ended."""
    wanted = len(recorder.messages) + more
    deadline = time.monotonic() + PROCESS_TIMEOUT
    while len(recorder.messages) < wanted:
        if all(process.poll() is not None for process in processes):
            return False
        assert time.monotonic() < deadline, "too slow to deliver"
        time.sleep(0.0005)
    return True


def test_instances_killed_mid_delivery_send_at_most_one_message_twice_each(
    cli: RunCli, home: Path, database_url: URL
) -> None:
    rng = random.Random(SEED)
    started = time.monotonic()
    log = home / "ticks.log"
    killed: list[Killed] = []
    recorder, port = ByConnection(), free_port()
    controller = CountingController(recorder, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        config = home / "followupd.toml"
        config.write_text(config_text(port), encoding="utf-8")
        data = home / "data.toml"
        data.write_text(data_text(INVOICES), encoding="utf-8")
        assert (result := cli("--config", config, "init")).code == 0, result
        assert (result := cli("--config", config, "import", data)).code == 0, result

        assert RESTART_STEP * (ROUNDS + 1) < LEASE, "claims come back by death, not by lease"
        now = FIRST_TICK
        for number in range(ROUNDS):
            processes = [tick(config, now, log) for _ in range(INSTANCES)]
            # none killed before all are past their start: a claim of an instance killed in
            # this round is taken back in the next one, not by one of its fellows
            all_past_start = functools.partial(past_start, processes, port)
            wait_for(all_past_start, PROCESS_TIMEOUT, step=0.001)
            for process in processes:
                if not wait_for_more(recorder, rng.randint(*MESSAGES_BEFORE_KILL), processes):
                    break
                time.sleep(rng.uniform(0, 0.004))  # somewhere within a message's round trip
                if process.poll() is None:
                    ports = smtp_ports(process.pid, port)
                    os.kill(process.pid, signal.SIGKILL)
                    process.wait(timeout=PROCESS_TIMEOUT)
                    assert process.returncode == -signal.SIGKILL
                    killed.append(Killed(number, process.pid, ports, set()))
            for process in processes:  # those that ended before their kill
                process.kill()
                process.wait(timeout=PROCESS_TIMEOUT)
            # every message whose end was sent has landed once the server saw them all go
            _settle(recorder)
            for each in killed:
                if each.round == number:
                    arrived = {mid for port, mid in recorder.arrivals if port in each.ports}
                    each.unrecorded = unrecorded_by(database_url, each.pid, arrived)
            now += RESTART_STEP
        final = [tick(config, now, log) for _ in range(INSTANCES)]
        for process in final:
            assert process.wait(timeout=PROCESS_TIMEOUT * 2) == 0, log.read_text()
        _settle(recorder)
        ids = received_ids(recorder)
    finally:
        controller.stop()

    store = Store.open(database_url, create=False)
    try:
        with store.session() as session:
            by_state = select(FollowUp.state, func.count()).group_by(FollowUp.state)
            states: dict[str, int] = dict(session.execute(by_state).all())
            expected = {message_id(key, "cabinet.example")
                        for key in session.scalars(select(FollowUp.key))}  # fmt: skip
    finally:
        store.close()
    counts = Counter(ids)
    duplicated = {mid: n for mid, n in counts.items() if n > 1}
    in_flight = {mid for each in killed for mid in each.unrecorded}
    summary = (
        f"seed {SEED}: {len(killed)} instances killed mid-send; {len(ids)} messages received, "
        f"{len(counts)} distinct, {len(ids) - len(counts)} duplicate(s); "
        f"unrecorded at each kill: {[len(each.unrecorded) for each in killed]}; "
        f"{time.monotonic() - started:.1f} s"
    )
    print(summary)
    stderr = log.read_text()
    assert len(killed) >= ROUNDS * 2, summary  # the kills landed mid-send
    assert states == {"sent": INVOICES}, f"{states}\n{summary}"
    assert set(counts) == expected, summary
    assert all(len(each.unrecorded) <= 1 for each in killed), summary
    assert len(ids) - len(counts) <= len(killed), summary
    assert set(duplicated) <= in_flight, summary
    for mid, times in duplicated.items():  # once, and once more for each kill it was in flight
        assert times <= 1 + sum(mid in each.unrecorded for each in killed), summary
    assert "which died" in stderr, "the dead instances' claims were taken back at once"
    assert "Traceback" not in stderr, stderr


def _settle(recorder: Recorder) -> None:
    wait_for(lambda: not recorder.sessions, 30, step=0.01)  # the SMTP server's sessions closed
