"""`followupd run` for the benchmarks: its environment, its start, and HTTP to it.

The daemon is started as `followupd run` in a subprocess, as a user starts it,
and counted as ready once ``GET /healthz`` answers 200 and names every
startup pass: what is measured afterwards is the daemon at rest, not its
start-up.
"""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

STARTUP_PASSES = ("deliver", "evaluate", "housekeeping")  # sync returns at once without [caldav]
TIMEOUT = 900.0  # for startup: a large store takes seconds, a busy machine more
# systemd's variables, which would make the daemon talk to the service manager of this shell
SYSTEMD = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "JOURNAL_STREAM")


def environment(workdir: Path) -> dict[str, str]:
    """This process's environment for a daemon whose state lives in `workdir`/state."""
    state = workdir / "state"
    state.mkdir(exist_ok=True)
    environ = {
        name: value
        for name, value in os.environ.items()
        if name not in (*SYSTEMD, "FOLLOWUPD_CONFIG", "FOLLOWUPD_DATABASE_URL")  # the user's
    }
    return environ | {"STATE_DIRECTORY": str(state), "HOME": str(workdir)}


def get(
    port: int, path: str, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    """GET http://127.0.0.1:port/path: status, headers, body."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def wait_ready(daemon: subprocess.Popen[bytes], port: int, log: Path) -> None:
    """/healthz answers 200 and names every startup pass: they have all run once."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        if daemon.poll() is not None:
            sys.exit(f"followupd run exited with {daemon.returncode}:\n{log.read_text()}")
        try:
            status, _, body = get(port, "/healthz")
        except OSError:  # not listening yet
            status, body = 0, b""
        if status == 503:
            sys.exit(f"followupd run is unhealthy: {body.decode()}{log.read_text()}")
        if status == 200 and all(name.encode() in body for name in STARTUP_PASSES):
            return
        time.sleep(0.2)
    sys.exit(f"followupd run not ready after {TIMEOUT:.0f} s:\n{log.read_text()}")


@contextmanager
def running(
    config: Path, environ: dict[str, str], port: int, log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """`followupd run` with `config`, once ready; killed on the way out if still running."""
    command = [sys.executable, "-m", "followupd", "--config", str(config), "run"]
    with log.open("wb") as output:
        daemon = subprocess.Popen(
            command, env=environ, cwd=config.parent, stdout=output, stderr=subprocess.STDOUT
        )
    try:
        wait_ready(daemon, port, log)
        yield daemon
    finally:
        if daemon.poll() is None:  # interrupted, or left running: leave nothing behind
            daemon.kill()
            daemon.wait()
