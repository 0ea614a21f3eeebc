"""systemd's notification protocol: one datagram to ``$NOTIFY_SOCKET`` per message.

A few lines instead of libsystemd. Outside systemd (no ``$NOTIFY_SOCKET``)
every call does nothing, so the daemon runs the same from a terminal.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Mapping
from contextlib import suppress


class Notifier:
    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        environ = os.environ if environ is None else environ
        address = environ.get("NOTIFY_SOCKET", "")
        if address.startswith("@"):  # an abstract socket
            address = "\0" + address[1:]
        self.address = address or None
        usec = environ.get("WATCHDOG_USEC", "")
        pid = environ.get("WATCHDOG_PID", "")
        mine = not pid or pid == str(os.getpid())
        self.watchdog_seconds = int(usec) / 1_000_000 if usec.isdigit() and mine else None

    @property
    def enabled(self) -> bool:
        """Whether anyone listens: what is only worth computing for systemd can be skipped."""
        return self.address is not None

    def send(self, **fields: str) -> None:
        """Send ``READY=1``-style fields: ``send(READY="1", STATUS="…")``."""
        if self.address is None:
            return
        message = "\n".join(f"{name}={value}" for name, value in fields.items())
        # systemd gone or its socket full: nothing useful to do about it
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock, suppress(OSError):
            sock.sendto(message.encode(), self.address)

    def ready(self, status: str) -> None:
        self.send(READY="1", STATUS=status)

    def status(self, status: str) -> None:
        self.send(STATUS=status)

    def reloading(self) -> None:
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        self.send(RELOADING="1", MONOTONIC_USEC=str(usec))

    def stopping(self) -> None:
        self.send(STOPPING="1")

    def watchdog(self) -> None:
        self.send(WATCHDOG="1")
