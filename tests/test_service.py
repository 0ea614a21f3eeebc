"""`followupd run` end to end: a real daemon process, a real SMTP server and a real Radicale.

The config's send window opens at the next minute in a time zone where it is
daytime now, every day is a working day, and the clients' country has no
public holiday today: so two follow-ups fall due at that opening, a client
email and a task for the owner. They arrive once it has come, not before (how
soon after it is the benchmarks' business, not this test's).
"""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import pytest
from caldav.davclient import DAVClient
from icalendar import Calendar
from sqlalchemy import func, select
from sqlalchemy.engine import URL

from followupd.store.db import Store
from followupd.store.models import FollowUp
from tests.daemon import (
    DISABLED,
    Setting,
    daytime_setting,
    environment,
    followupd,
    get,
    wait_for,
    wait_healthy,
)
from tests.davserver import PASSWORD, PASSWORD_VARIABLE, USER, DavServer
from tests.smtpserver import Recorder, free_port, smtp_server

pytestmark = pytest.mark.slow  # real daemons, one waiting for the next minute


def config_text(setting: Setting, smtp_port: int, dav: DavServer, listen: str) -> str:
    disabled = "".join(f"[rules.{name}]\nenabled = false\n" for name in DISABLED)
    return f"""\
[owner]
name = "Claire Martin"
email = "claire@cabinet.example"
timezone = "{setting.zone.key}"
country = "{setting.country}"

[smtp]
host = "127.0.0.1"
port = {smtp_port}
security = "none"

[caldav]
url = "{dav.url}"
username = "{USER}"
password_env = "{PASSWORD_VARIABLE}"

[feed]
listen = "{listen}"

[business]
send_window = "{setting.opening:%H:%M}-23:59"
working_days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]

{disabled}"""


def data_text(setting: Setting) -> str:
    """Invoice F-1 was due yesterday (nudge 1 today), F-2 is due in 3 days (heads-up today)."""
    yesterday = setting.today - timedelta(days=1)
    in_three = setting.today + timedelta(days=3)
    return f"""\
[[clients]]
key = "acme"
name = "ACME SA"
timezone = "{setting.zone.key}"
country = "{setting.country}"
language = "en"
[[contacts]]
key = "jdupont"
client = "acme"
name = "Jeanne Dupont"
email = "jeanne.dupont@acme.example"
[[missions]]
key = "acme-audit"
client = "acme"
title = "IT audit"
contact = "jdupont"
start = {setting.today - timedelta(days=60)}
contract_signed = {setting.today - timedelta(days=70)}
[[invoices]]
number = "F-1"
mission = "acme-audit"
amount = 100
issued = {setting.today - timedelta(days=31)}
due = {yesterday}
[[invoices]]
number = "F-2"
mission = "acme-audit"
amount = 200
issued = {setting.today - timedelta(days=27)}
due = {in_three}
"""


def remote_uids(dav: DavServer) -> set[str]:
    client: Any = DAVClient(url=dav.url, username=USER, password=PASSWORD)
    with client:
        for calendar in client.principal().calendars():
            if calendar.get_display_name() == "followupd":
                objects = calendar.get_objects_by_sync_token(load_objects=True)
                return {
                    str(part["UID"])
                    for item in objects
                    for part in Calendar.from_ical(item.data).walk("VTODO")
                }
    return set()


def test_the_daemon_delivers_at_the_due_time_survives_a_bad_reload_and_stops_cleanly(
    home: Path, database_url: URL, dav: DavServer
) -> None:
    setting = daytime_setting()
    port = free_port()
    with smtp_server() as (recorder, smtp_port):
        config = home / "followupd.toml"
        config.write_text(config_text(setting, smtp_port, dav, f"127.0.0.1:{port}"), "utf-8")
        (home / "data.toml").write_text(data_text(setting), "utf-8")
        assert followupd(home, "init").returncode == 0
        imported = followupd(home, "import", str(home / "data.toml"))
        assert imported.returncode == 0, imported.stderr
        planned = json.loads(followupd(home, "plan", "--json").stdout)["followups"]
        due = {item["key"]: datetime.fromisoformat(item["due_at"]) for item in planned}
        assert due["invoice_due:F-1:nudge-1"] == setting.opening
        assert due["invoice_due:F-2:heads-up"] == setting.opening

        log = home / "daemon.log"
        with log.open("w", encoding="utf-8") as log_file:
            daemon = subprocess.Popen(
                [sys.executable, "-m", "followupd", "--config", str(config), "run"],
                env=environment(home), stdout=log_file, stderr=subprocess.STDOUT, text=True,
            )  # fmt: skip
        try:
            wait_healthy(daemon, port)
            assert datetime.now(UTC) < setting.opening, "started before the opening"
            assert not received(recorder, "F-1"), "nothing before its due time"

            wait = (setting.opening - datetime.now(UTC)).total_seconds() + 30
            wait_for(lambda: received(recorder, "F-1"), timeout=wait)
            wait_for(lambda: "invoice_due:F-2:heads-up@followupd" in remote_uids(dav), 30, 0.2)
            # the client's email, beside the owner's digest of that morning
            (email,) = [m for m in recorder.messages if "F-1" in str(m["Subject"])]
            assert parsedate_to_datetime(email["Date"]) >= setting.opening, "sent when due"

            config.write_text("[owner\nname = ", "utf-8")  # broken
            daemon.send_signal(signal.SIGHUP)
            wait_for(lambda: "keeping the old one" in log.read_text("utf-8"), timeout=30)
            assert daemon.poll() is None, "a broken config must not stop the daemon"
            assert get(f"http://127.0.0.1:{port}/healthz")[0] == 200
        finally:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(timeout=30)
        output = log.read_text("utf-8")
        assert daemon.returncode == 0, output
        assert "keeping the old one" in output
        assert PASSWORD not in output

    store = Store.open(database_url, create=False)
    try:
        with store.session() as session:
            sending = session.scalar(select(func.count()).where(FollowUp.state == "sending"))
            sent = session.execute(
                select(FollowUp.key, FollowUp.due_at, FollowUp.sent_at).where(
                    FollowUp.state == "sent"
                )
            ).all()
    finally:
        store.close()
    assert sending == 0
    assert {"invoice_due:F-1:nudge-1", "invoice_due:F-2:heads-up"} <= {row.key for row in sent}
    assert all(row.sent_at and row.sent_at >= row.due_at for row in sent), "when due, not before"


def received(recorder: Recorder, number: str) -> bool:
    return any(f"{number}" in str(message["Subject"]) for message in list(recorder.messages))


def parsed(message: bytes) -> dict[str, str]:
    """A message of the notify protocol: newline-separated FIELD=value."""
    return dict(line.split("=", 1) for line in message.decode().splitlines())


def test_the_daemon_speaks_systemds_notify_protocol(tmp_path: Path, home: Path) -> None:
    port = free_port()
    (home / "followupd.toml").write_text(
        '[owner]\nname = "Claire Martin"\nemail = "claire@cabinet.example"\n'
        f'[feed]\nlisten = "127.0.0.1:{port}"\n',
        encoding="utf-8",
    )
    address = str(tmp_path / "notify.sock")
    fields: list[dict[str, str]] = []  # the messages the daemon sent, field by field
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind(address)
        listener.settimeout(30)  # only fails a test that would hang

        def said(field: str) -> int:
            return sum(f.get(field) == "1" for f in fields)

        def receive_until(condition: Callable[[], bool]) -> None:
            while not condition():
                try:
                    fields.append(parsed(listener.recv(4096)))
                except TimeoutError:
                    raise AssertionError(f"nothing more for 30 s, after {fields}") from None

        env = {**environment(home), "NOTIFY_SOCKET": address, "WATCHDOG_USEC": "600000"}
        daemon = subprocess.Popen(
            [sys.executable, "-m", "followupd", "--config", str(home / "followupd.toml"), "run"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        try:
            wait_healthy(daemon, port)
            receive_until(lambda: said("READY") == 1 and said("WATCHDOG") >= 3)  # pinged, again
            daemon.send_signal(signal.SIGHUP)
            receive_until(lambda: said("READY") == 2)
        finally:
            daemon.send_signal(signal.SIGTERM)
            output, _ = daemon.communicate(timeout=30)
        listener.setblocking(False)  # it has exited: all it sent is waiting here
        with contextlib.suppress(BlockingIOError):
            while True:
                fields.append(parsed(listener.recv(4096)))
    assert daemon.returncode == 0, output
    ready = [i for i, f in enumerate(fields) if f.get("READY") == "1"]
    reloading = [i for i, f in enumerate(fields) if f.get("RELOADING") == "1"]
    assert len(ready) == 2 and len(reloading) == 1, fields
    assert ready[0] < reloading[0] < ready[1], "READY, then RELOADING, then READY again"
    assert fields[reloading[0]]["MONOTONIC_USEC"].isdigit()
    assert "pending" in fields[ready[0]]["STATUS"]
    assert {"STOPPING": "1"} in fields
