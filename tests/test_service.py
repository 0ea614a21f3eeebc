"""`followupd run` end to end: a real daemon process, a real SMTP server and a real Radicale.

The config's send window opens at the next minute in a time zone where it is
daytime now, every day is a working day, and the clients' country has no
public holiday today: so two follow-ups fall due at that opening, a client
email and a task for the owner. They must arrive within 2 seconds of it.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

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

        daemon = subprocess.Popen(
            [sys.executable, "-m", "followupd", "--config", str(config), "run"],
            env=environment(home), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        try:
            wait_healthy(daemon, port)
            assert datetime.now(UTC) < setting.opening, "started before the opening"
            assert not received(recorder, "F-1"), "nothing before its due time"

            wait = (setting.opening - datetime.now(UTC)).total_seconds() + 10
            email_at = wait_for(lambda: received(recorder, "F-1"), timeout=wait)
            task_at = wait_for(
                lambda: "invoice_due:F-2:heads-up@followupd" in remote_uids(dav), 5, step=0.2
            )
            opening = setting.opening.timestamp()
            print(f"email {email_at - opening:.3f} s, task {task_at - opening:.3f} s after due")
            assert 0 <= email_at - opening <= 2.0, f"email {email_at - opening:.2f} s after"
            assert 0 <= task_at - opening <= 2.0, f"task {task_at - opening:.2f} s after"

            config.write_text("[owner\nname = ", "utf-8")  # broken
            daemon.send_signal(signal.SIGHUP)
            time.sleep(1.0)
            assert daemon.poll() is None, "a broken config must not stop the daemon"
            assert get(f"http://127.0.0.1:{port}/healthz")[0] == 200
        finally:
            daemon.send_signal(signal.SIGTERM)
            output, _ = daemon.communicate(timeout=30)
        assert daemon.returncode == 0, output
        assert "keeping the old one" in output
        assert PASSWORD not in output

    store = Store.open(database_url, create=False)
    try:
        with store.session() as session:
            sending = session.scalar(select(func.count()).where(FollowUp.state == "sending"))
    finally:
        store.close()
    assert sending == 0


def received(recorder: Recorder, number: str) -> bool:
    return any(f"{number}" in str(message["Subject"]) for message in list(recorder.messages))


def test_the_daemon_speaks_systemds_notify_protocol(tmp_path: Path, home: Path) -> None:
    port = free_port()
    (home / "followupd.toml").write_text(
        '[owner]\nname = "Claire Martin"\nemail = "claire@cabinet.example"\n'
        f'[feed]\nlisten = "127.0.0.1:{port}"\n',
        encoding="utf-8",
    )
    address = str(tmp_path / "notify.sock")
    messages: list[str] = []
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind(address)
        listener.settimeout(0.2)

        def drain(until: float) -> None:
            while time.monotonic() < until:
                try:
                    messages.append(listener.recv(4096).decode())
                except TimeoutError:
                    continue

        env = {**environment(home), "NOTIFY_SOCKET": address, "WATCHDOG_USEC": "600000"}
        daemon = subprocess.Popen(
            [sys.executable, "-m", "followupd", "--config", str(home / "followupd.toml"), "run"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        try:
            wait_healthy(daemon, port)
            drain(time.monotonic() + 1.5)
            daemon.send_signal(signal.SIGHUP)
            drain(time.monotonic() + 1.0)
        finally:
            daemon.send_signal(signal.SIGTERM)
            output, _ = daemon.communicate(timeout=30)
        drain(time.monotonic() + 0.5)
    assert daemon.returncode == 0, output
    fields = [dict(line.split("=", 1) for line in m.splitlines()) for m in messages]
    ready = [i for i, f in enumerate(fields) if f.get("READY") == "1"]
    reloading = [i for i, f in enumerate(fields) if f.get("RELOADING") == "1"]
    assert len(ready) == 2 and len(reloading) == 1, messages
    assert ready[0] < reloading[0] < ready[1], "READY, then RELOADING, then READY again"
    assert fields[reloading[0]]["MONOTONIC_USEC"].isdigit()
    assert "pending" in fields[ready[0]]["STATUS"]
    assert sum(f.get("WATCHDOG") == "1" for f in fields) >= 3, "pinged every 0.2 s"
    assert {"STOPPING": "1"} in fields
