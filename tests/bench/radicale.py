"""Radicale for the benchmarks: a server in its own process, its storage written beforehand.

The server runs as a subprocess (``python -m radicale --config FILE``, on a
free 127.0.0.1 port, HTTP basic auth of a plain htpasswd file) rather than in
the benchmark's process as the test suite runs it: in-process, its request
handling would share the benchmark's CPU and GIL with what is measured
beside it. As a subprocess it costs every client the same.

The objects are written straight into Radicale's filesystem storage before
the server starts (one ``.ics`` file each, and the ``.Radicale.props`` that
makes the folder a calendar): thousands of single PUTs would take Radicale
far longer than anything measured. Its first request over a collection then
parses every object and fills its item cache, work a server that had
received the objects by PUTs would have done at upload time.
"""

from __future__ import annotations

import base64
import http.client
import json
import subprocess
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.bench import machine
from tests.smtpserver import free_port

USER = "claire"
PASSWORD = "bench-dav-4242"  # a throwaway server's password


def write_calendar(
    root: Path, collection: str, name: str, objects: Iterable[tuple[str, bytes]]
) -> Path:
    """A calendar `collection` of USER, displayed as `name`, holding `objects` (file name, bytes).

    Returns the calendar's folder in Radicale's multifilesystem layout under `root`.
    """
    calendar = root / "collections" / "collection-root" / USER / collection
    calendar.mkdir(parents=True)
    props = {"C:supported-calendar-component-set": "VEVENT,VTODO", "D:displayname": name,
             "tag": "VCALENDAR"}  # fmt: skip
    (calendar / ".Radicale.props").write_text(json.dumps(props, sort_keys=True))
    for href, text in objects:
        (calendar / href).write_bytes(text)
    return calendar


def configure(root: Path, port: int) -> Path:
    """Radicale's config file (and its users file) for `root`/collections on 127.0.0.1:port."""
    (root / "users").write_text(f"{USER}:{PASSWORD}\n")
    config = root / "radicale.conf"
    config.write_text(
        f"[server]\nhosts = 127.0.0.1:{port}\n"
        f"[auth]\ntype = htpasswd\nhtpasswd_filename = {root / 'users'}\n"
        "htpasswd_encryption = plain\ndelay = 0\n"
        "[rights]\ntype = owner_only\n"
        f"[storage]\nfilesystem_folder = {root / 'collections'}\n"
        "[web]\ntype = none\n"
        "[logging]\nlevel = warning\nmask_passwords = True\n"
    )
    return config


def verify_storage(root: Path) -> None:
    """``radicale --verify-storage``: it reads every object and fills the caches, without fsync.

    What a first request over a collection would do, item cache and history,
    an order of magnitude faster on a disk, since the server syncs every
    cache file it writes and the verification does not.
    """
    config = configure(root, free_port())
    command = [sys.executable, "-m", "radicale", "--config", str(config), "--verify-storage"]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"radicale --verify-storage failed:\n{done.stderr[-2000:]}")


class Radicale:
    """``python -m radicale`` on 127.0.0.1:port, serving `root`/collections."""

    def __init__(self, root: Path, port: int) -> None:
        self.port = port
        self.log_path = root / "radicale.log"
        self.log = self.log_path.open("wb")
        command = [sys.executable, "-m", "radicale", "--config", str(configure(root, port))]
        self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT)
        if not machine.listening(self.process, port, timeout=20):
            self.stop()
            raise RuntimeError(f"Radicale did not start:\n{self.log_path.read_text()[-2000:]}")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()  # this process's child, by its PID
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


@contextmanager
def radicale(root: Path) -> Iterator[Radicale]:
    server = Radicale(root, free_port())
    try:
        yield server
    finally:
        server.stop()


class Client:
    """Plain HTTP to the server as USER, as a calendar app sends it (http.client uses no proxy)."""

    def __init__(self, port: int) -> None:
        self.port = port
        token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        self.auth = {"Authorization": f"Basic {token}"}

    def request(
        self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=600)
        try:
            connection.request(method, path, body=body, headers={**self.auth, **(headers or {})})
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            connection.close()
