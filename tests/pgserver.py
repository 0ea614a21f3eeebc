"""A throwaway PostgreSQL server for the test suite.

followupd's storage layer is tested against a real PostgreSQL server, not SQLite or mocks,
so that SQL, locking and transaction behaviour are the ones production sees.  Each test run
gets a private cluster: created with ``initdb`` in a fresh temporary directory, listening
only on 127.0.0.1 on a free port (plus a Unix socket inside that directory), and stopped and
deleted afterwards.  Nothing is shared with any system cluster.

Set ``FOLLOWUPD_TEST_PG_URL`` to a SQLAlchemy URL to use an existing database instead.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shlex
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

ENV_URL = "FOLLOWUPD_TEST_PG_URL"
DBNAME = "followupd_test"
SUPERUSER = "postgres"
HOST = "127.0.0.1"  # loopback only, never a routable address

_NOT_FOUND = (
    "PostgreSQL server binaries not found: install Debian's `postgresql` package "
    "(tests/run does) or set FOLLOWUPD_TEST_PG_URL"
)


def _version_key(bindir: Path) -> tuple[int, ...]:
    """Sort key for /usr/lib/postgresql/<version>/bin: "15" -> (15,), "9.6" -> (9, 6)."""
    try:
        return tuple(int(part) for part in bindir.parent.name.split("."))
    except ValueError:
        return (-1,)


def find_bindir() -> Path:
    """Return the directory holding ``initdb`` and ``pg_ctl``.

    Debian keeps the server binaries in /usr/lib/postgresql/<version>/bin, which is not on
    PATH (and ``pg_config --bindir`` may name a client-only directory), so look there first.
    """
    candidates = [Path(p).parent for p in glob.glob("/usr/lib/postgresql/*/bin/initdb")]
    candidates = [d for d in candidates if (d / "pg_ctl").is_file()]
    if candidates:
        return max(candidates, key=_version_key)
    initdb = shutil.which("initdb")
    if initdb is not None:
        bindir = Path(initdb).resolve().parent
        if (bindir / "pg_ctl").is_file():
            return bindir
    raise RuntimeError(_NOT_FOUND)


def _free_port() -> int:
    """Ask the kernel for a currently unused TCP port on the loopback interface."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _clean_env() -> dict[str, str]:
    """The environment minus libpq/server PG* variables that could redirect our commands."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PG")}


def _log_tail(log: Path, lines: int = 30) -> str:
    try:
        text = log.read_text(errors="replace")
    except OSError as exc:
        return f"(no server log at {log}: {exc})"
    return "\n".join(text.splitlines()[-lines:])


def _run(cmd: Sequence[str], *, cwd: Path | None = None, check: bool = True) -> None:
    """Run a command quietly; on failure raise RuntimeError carrying its output."""
    proc = subprocess.run(
        cmd,
        cwd=cwd,
        env=_clean_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    if check and proc.returncode != 0:
        raise RuntimeError(
            f"{shlex.join(cmd)} failed with exit status {proc.returncode}:\n"
            f"{proc.stdout}{proc.stderr}"
        )


class _Cluster:
    """Runs the cluster's commands, as the ``postgres`` user when we are root."""

    def __init__(self, bindir: Path, workdir: Path, as_postgres: bool) -> None:
        self.bindir = bindir
        self.workdir = workdir
        self.datadir = workdir / "data"
        self.log = self.datadir / "log"
        self.prefix = ["runuser", "-u", SUPERUSER, "--"] if as_postgres else []

    def run(self, tool: str, args: Sequence[str], *, check: bool = True) -> None:
        # cwd: the caller's cwd may not be readable by the postgres user.
        _run([*self.prefix, str(self.bindir / tool), *args], cwd=self.workdir, check=check)


def _make_workdir() -> tuple[Path, bool]:
    """Create the temp dir; when root, hand it to the ``postgres`` user (initdb refuses root)."""
    workdir = Path(tempfile.mkdtemp(prefix="followupd-pg-"))
    if os.geteuid() != 0:
        return workdir, False
    try:
        pw = pwd.getpwnam(SUPERUSER)
    except KeyError:
        shutil.rmtree(workdir, ignore_errors=True)
        raise RuntimeError(
            "running as root, but there is no `postgres` user to run the server as: "
            "install Debian's `postgresql` package (tests/run does) or set " + ENV_URL
        ) from None
    if shutil.which("runuser") is None:
        shutil.rmtree(workdir, ignore_errors=True)
        raise RuntimeError("running as root, but `runuser` (util-linux) is not available")
    os.chown(workdir, pw.pw_uid, pw.pw_gid)
    return workdir, True


@contextlib.contextmanager
def throwaway_postgres() -> Iterator[str]:
    """Yield a SQLAlchemy URL for an empty database on a private, throwaway server.

    If ``FOLLOWUPD_TEST_PG_URL`` is set (non-empty), yield it unchanged and start nothing.
    """
    url = os.environ.get(ENV_URL)
    if url:
        yield url
        return

    bindir = find_bindir()
    workdir, as_postgres = _make_workdir()
    cluster = _Cluster(bindir, workdir, as_postgres)
    started = False
    try:
        cluster.run(
            "initdb",
            [
                "-D",
                str(cluster.datadir),
                "--auth=trust",
                f"--username={SUPERUSER}",
                "--encoding=UTF8",
                "--no-locale",
            ],
        )
        port = _free_port()
        server_opts = " ".join(
            [
                f"-p {port}",
                f"-k {shlex.quote(str(cluster.datadir))}",
                f"-c listen_addresses={HOST}",
                # Durability is pointless for a throwaway cluster; skip the fsyncs.
                "-c fsync=off",
                "-c full_page_writes=off",
                "-c synchronous_commit=off",
            ]
        )
        started = True  # from here on a postmaster may exist, so always try to stop it
        datadir, log = str(cluster.datadir), str(cluster.log)
        try:
            cluster.run(
                "pg_ctl", ["-D", datadir, "-w", "-t", "60", "-l", log, "-o", server_opts, "start"]
            )
        except RuntimeError as exc:
            raise RuntimeError(
                f"{exc}\n--- tail of server log {cluster.log} ---\n{_log_tail(cluster.log)}"
            ) from None
        # createdb is a client: it connects over TCP with trust auth, so no runuser needed.
        _run(
            [
                str(bindir / "createdb"),
                "-h",
                HOST,
                "-p",
                str(port),
                "-U",
                SUPERUSER,
                "--maintenance-db=postgres",
                DBNAME,
            ]
        )
        yield f"postgresql+psycopg://{SUPERUSER}@{HOST}:{port}/{DBNAME}"
    finally:
        try:
            if started:
                cluster.run(
                    "pg_ctl", ["-D", str(cluster.datadir), "-m", "immediate", "stop"], check=False
                )
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
