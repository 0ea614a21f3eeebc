"""What the benchmarks say about the machine they ran on, and what they see of its processes.

Every benchmark prints one machine line, built here: the CPU, its cores, the
memory, the system, the software that matters for the figures, and the load
average, since other work on the machine stretches every wall time.
"""

from __future__ import annotations

import contextlib
import os
import platform
import socket
import sqlite3
import subprocess
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from tests.pgserver import find_bindir

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def cores() -> str:
    usable = len(os.sched_getaffinity(0))
    return f"{os.cpu_count()} cores ({usable} usable)"


def memory() -> str:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return f"{int(line.split()[1]) / 1024**2:.1f} GiB RAM"
    return "RAM unknown"


def system() -> str:
    """The distribution's name (os-release), the kernel and the architecture."""
    name = platform.system()
    with contextlib.suppress(OSError):
        name = platform.freedesktop_os_release().get("PRETTY_NAME", name)
    return f"{name}, {platform.system()} {platform.release()} {platform.machine()}"


def postgresql() -> str:
    """The version of the PostgreSQL server binaries tests/pgserver.py starts."""
    try:
        binary = find_bindir() / "postgres"
    except RuntimeError:
        return "PostgreSQL not installed"
    done = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False)
    found = done.stdout.strip().removeprefix("postgres (PostgreSQL) ")
    return f"PostgreSQL {found or 'unknown'}"


def packages(*names: str) -> list[str]:
    """'name version' of installed Python distributions."""
    found = []
    for name in names:
        try:
            found.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            found.append(f"{name} not installed")
    return found


def load(before: float | None = None) -> str:
    """The load average now, and the 1-minute one `before` the measurements if given."""
    one, five, fifteen = os.getloadavg()
    if before is None:
        return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f} (1, 5, 15 min)"
    return f"load average (1 min) {before:.2f} before, {one:.2f} after"


def describe(*software: str, load_before: float | None = None) -> str:
    """One line: hardware; system; Python, SQLite and `software`; load average."""
    tools = ", ".join([f"Python {platform.python_version()}",
                       f"SQLite {sqlite3.sqlite_version}", *software])  # fmt: skip
    return f"{cpu_model()}, {cores()}, {memory()}; {system()}; {tools}; {load(load_before)}"


def listening(process: subprocess.Popen[bytes], port: int, timeout: float) -> bool:
    """Wait until 127.0.0.1:port accepts connections; False if `process` exits or time is up."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                return False
            time.sleep(0.05)


def cpu_seconds(pid: int) -> float:
    """utime + stime of a whole process (its threads, live and gone), from /proc; 0 if gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # fields 14 and 15 of proc(5)


def peak_rss_mb() -> float:
    """This process's peak resident memory in MB (VmHWM: unlike ru_maxrss, not inherited
    on fork)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")
