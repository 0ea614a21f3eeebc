"""Mail transactions pipelined where the server offers PIPELINING, one by one where not.

Against aiosmtpd, which offers PIPELINING here when told to (it reads
commands sent together either way): a refused recipient fails its message
alone, a refused sender (421) fails it as worth retrying, and the messages
after it go on the same connection.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from followupd.channels.email.message import Email, build_message
from followupd.channels.email.sender import SmtpSender
from followupd.channels.failure import DeliveryError
from followupd.config.sections import Smtp
from tests.daemon import wait_for
from tests.smtpserver import CountingController, Recorder, free_port


class Picky(Recorder):
    """Offers PIPELINING when `pipelining`; refuses recipients named ``nobody``, and the
    sender ``busy@…`` with a 421."""

    def __init__(self, pipelining: bool) -> None:
        super().__init__()
        self.pipelining = pipelining
        self.offered: list[str] = []

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        if self.pipelining:
            responses.insert(1, "250-PIPELINING")
        self.offered = responses
        return responses

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if address.startswith("busy@"):
            return "421 4.3.2 too busy, try later"
        envelope.mail_from, envelope.mail_options = address, options
        return "250 OK"

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if address.startswith("nobody@"):
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"


@pytest.fixture(params=[True, False], ids=["pipelining", "one-by-one"])
def picky(request: pytest.FixtureRequest) -> Iterator[tuple[Picky, int]]:
    recorder, port = Picky(request.param), free_port()
    controller = CountingController(recorder, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield recorder, port
    finally:
        controller.stop()


def email(key: str, recipient: str, sender: str = "claire@cabinet.example") -> Email:
    at = datetime(2026, 11, 23, 8, tzinfo=UTC)
    return build_message(key=key, sender=f"Claire <{sender}>", recipient=recipient,
                         reply_to="claire@cabinet.example", subject=f"About {key}",
                         body=f"Hello\n.{key}\n", sent_at=at)  # fmt: skip


def test_a_refusal_fails_its_message_alone_on_the_same_connection(
    picky: tuple[Picky, int],
) -> None:
    recorder, port = picky
    smtp = Smtp(host="127.0.0.1", port=port, security="none", rate_per_minute=100000)
    outcomes: dict[str, str] = {}

    async def scenario() -> None:
        async with SmtpSender(smtp) as sender:
            for key, message in [
                ("a", email("a", "j@acme.example")),
                ("refused", email("refused", "nobody@acme.example")),
                ("b", email("b", "k@acme.example")),
                ("busy", email("busy", "j@acme.example", sender="busy@cabinet.example")),
                ("c", email("c", "l@acme.example")),
            ]:
                try:
                    await sender.send(message)
                except DeliveryError as error:
                    outcomes[key] = f"{'permanent' if error.permanent else 'retry'}: {error}"
                else:
                    outcomes[key] = "sent"
            assert sender.link is not None
            assert sender.link.pipelining is recorder.pipelining

    asyncio.run(scenario())
    assert outcomes["a"] == outcomes["b"] == outcomes["c"] == "sent"
    assert outcomes["refused"].startswith("permanent: recipient refused: 550"), outcomes
    assert outcomes["busy"].startswith("retry: SMTP 421"), outcomes
    wait_for(lambda: recorder.sessions == 0, timeout=10)  # closed at the end, server side too
    assert recorder.most_sessions == 1
    received = [(str(m["Subject"]), m.get_body(("plain",))) for m in recorder.messages]
    assert [subject for subject, _ in received] == ["About a", "About b", "About c"]
    for subject, body in received:  # a line that starts with a dot arrives as written
        assert body is not None and f".{subject[-1]}" in body.get_content().splitlines()


class HangsUpAfterData(Picky):
    """Takes the first message, then hangs up before its "250" (or, `silent`, says nothing
    until the client hangs up); accepts the next ones."""

    def __init__(self, pipelining: bool, silent: bool = False) -> None:
        super().__init__(pipelining)
        self.silent = silent
        self.hung_up = False

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        reply = await super().handle_DATA(server, session, envelope)
        if self.hung_up:
            return reply
        self.hung_up = True
        if not self.silent:
            server.transport.close()
        await asyncio.Event().wait()  # cancelled as the connection ends: no reply goes
        return reply


@pytest.mark.parametrize(
    ("pipelining", "silent"),
    [(True, False), (False, False), (True, True)],
    ids=["pipelining", "one-by-one", "no-answer"],
)
def test_a_message_whose_end_went_unanswered_is_not_sent_again_at_once(
    pipelining: bool, silent: bool, caplog: pytest.LogCaptureFixture
) -> None:
    recorder, port = HangsUpAfterData(pipelining, silent), free_port()
    controller = CountingController(recorder, hostname="127.0.0.1", port=port)
    smtp = Smtp(host="127.0.0.1", port=port, security="none", rate_per_minute=100000,
                timeout_seconds=1 if silent else 10)  # fmt: skip
    message = email("doubt", "j@acme.example")

    async def scenario() -> DeliveryError:
        async with SmtpSender(smtp) as sender:
            with pytest.raises(DeliveryError) as failed:
                await sender.send(message)
            assert len(recorder.messages) == 1, "one copy: no retry on a new connection"
            await sender.send(message)  # a later attempt: the documented second copy
        return failed.value

    controller.start()
    try:
        error = asyncio.run(scenario())
    finally:
        controller.stop()
    assert not error.permanent
    assert str(error).startswith("in doubt:") and message.message_id in str(error)
    assert [m["Message-ID"] for m in recorder.messages] == [message.message_id] * 2
    assert [r.levelname for r in caplog.records if message.message_id in r.getMessage()] == [
        "WARNING"
    ]
