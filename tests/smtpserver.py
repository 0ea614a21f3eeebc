"""A real SMTP server for the suite (aiosmtpd), on a free loopback port.

Its answers can be scripted: ``server.refuse(451, times=2)`` makes the next
two messages fail with 451 before it accepts again. It counts its open
sessions: none once every client has gone (a killed one included).
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Recorder:
    messages: list[EmailMessage] = field(default_factory=list)
    refusals: list[int] = field(default_factory=list)
    sessions: int = 0  # open, as the server saw them (see CountingController)
    most_sessions: int = 0  # open at once, at the most
    opened: int = 0  # sessions opened in all

    def refuse(self, code: int, times: int = 1) -> None:
        self.refusals.extend([code] * times)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.refusals:
            code = self.refusals.pop(0)
            return f"{code} {'4.3.0 try again later' if code < 500 else '5.7.1 refused'}"
        parsed = message_from_bytes(envelope.original_content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append(parsed)
        return "250 OK"


class CountedSession(SMTP):
    """aiosmtpd's session, counted in its Recorder's `sessions` while its connection is open."""

    def connection_made(self, transport: Any) -> None:
        self.event_handler.sessions += 1
        self.event_handler.opened += 1
        self.event_handler.most_sessions = max(
            self.event_handler.most_sessions, self.event_handler.sessions
        )
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        super().connection_lost(error)  # no message of this session is recorded after this
        self.event_handler.sessions -= 1


class CountingController(Controller):
    def factory(self) -> SMTP:
        return CountedSession(self.handler, **self.SMTP_kwargs)


@contextmanager
def smtp_server(
    port: int | None = None, handler: Recorder | None = None
) -> Iterator[tuple[Recorder, int]]:
    recorder = handler or Recorder()
    port = port or free_port()
    controller = CountingController(recorder, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield recorder, port
    finally:
        controller.stop()
