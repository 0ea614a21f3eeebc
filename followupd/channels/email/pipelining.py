"""Mail transactions on a connection aiosmtplib opened, pipelined where the server offers it.

aiosmtplib connects, says EHLO, starts TLS and logs in; then `Transactions`
takes the connection over for the messages. With PIPELINING (RFC 2920), a
message costs two writes: MAIL FROM, RCPT TO and DATA together, then the
message and its end; without it, each command waits for its reply, as
aiosmtplib's own. (aiosmtplib reads one reply per command written, and drops
what arrives before it waits: it cannot read the replies to commands sent
together.) Failures are raised as aiosmtplib's exceptions, so that they are
sorted as before (followupd.channels.email.sender.classify).
"""

from __future__ import annotations

import asyncio
import re
from collections import deque
from collections.abc import Awaitable, Callable, Sequence

import aiosmtplib

_STUFFED = re.compile(rb"(?m)^\.")  # a line that starts with a dot gets another (RFC 5321)
_LONGEST_REPLY = 64 * 1024


class Replies(asyncio.Protocol):
    """The server's replies, parsed as they come, read in order."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.lines: list[bytes] = []  # the lines of a multi-line reply read so far
        self.replies: deque[tuple[int, str]] = deque()
        self.waiter: asyncio.Future[None] | None = None
        self.lost: aiosmtplib.SMTPServerDisconnected | None = None

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (end := self.buffer.find(b"\n")) >= 0:
            line = bytes(self.buffer[: end + 1])
            del self.buffer[: end + 1]
            self.lines.append(line)
            if line[3:4] != b"-":  # the last line of the reply
                self._reply(self.lines)
                self.lines = []
        if len(self.buffer) > _LONGEST_REPLY:
            self._end(aiosmtplib.SMTPServerDisconnected("a reply too long"))
        self._wake()

    def _reply(self, lines: list[bytes]) -> None:
        try:
            code = int(lines[0][:3])
        except ValueError:
            code = -1  # not SMTP: fails whatever waits for it
        text = "\n".join(line[4:].strip().decode("utf-8", "replace") for line in lines)
        self.replies.append((code, text))

    def connection_lost(self, exc: Exception | None) -> None:
        self._end(aiosmtplib.SMTPServerDisconnected("Connection lost"))

    def eof_received(self) -> bool:
        self._end(aiosmtplib.SMTPServerDisconnected("Unexpected EOF received"))
        return False

    def _end(self, error: aiosmtplib.SMTPServerDisconnected) -> None:
        if self.lost is None:
            self.lost = error
        self._wake()

    def _wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    async def reply(self) -> tuple[int, str]:
        """The next reply: (code, text); SMTPServerDisconnected once the connection ended."""
        while not self.replies:
            if self.lost is not None:
                raise self.lost
            self.waiter = asyncio.get_running_loop().create_future()
            await self.waiter
        return self.replies.popleft()


class Transactions:
    """Mail transactions on `client`'s connection, once it is open (and secured, and logged in).

    The connection is this object's from then on: `quit` or `close` ends it.
    `end_written` says whether the last message's end (its ".") was written:
    a connection that fails after it leaves the message in doubt (the server
    may have accepted it before it hung up), and it must not go again at once.
    """

    def __init__(self, client: aiosmtplib.SMTP) -> None:
        protocol = client.protocol
        transport = protocol.transport if protocol is not None else None
        if transport is None or transport.is_closing():
            raise aiosmtplib.SMTPServerDisconnected("Connection lost")
        self.pipelining = client.supports_extension("pipelining")
        self.size = client.supports_extension("size")
        self.smtputf8 = client.supports_extension("smtputf8")
        self.replies = Replies()
        self.end_written = False
        transport.set_protocol(self.replies)
        self.transport: asyncio.WriteTransport = transport  # type: ignore[assignment]

    @property
    def is_connected(self) -> bool:
        return self.replies.lost is None and not self.transport.is_closing()

    def _write(self, data: bytes) -> None:
        if not self.is_connected:
            raise self.replies.lost or aiosmtplib.SMTPServerDisconnected("Connection lost")
        self.transport.write(data)

    async def send(
        self,
        sender: str,
        recipients: Sequence[str],
        data: bytes,
        *,
        utf8: bool,
        before_end: Callable[[], Awaitable[None]],
        timeout: float,
    ) -> None:
        """One message; `before_end` awaited once the server waits for its text, outside the
        `timeout` of each part; then the text and its end go in one write.

        A refusal (of the sender, of every recipient, of DATA) resets the
        envelope (RSET) and raises; a message refused by some recipients
        only goes to the others.
        """
        self.end_written = False
        if utf8 and not self.smtputf8:
            raise aiosmtplib.SMTPNotSupported("SMTPUTF8 is not supported by this server")
        encoding = "utf-8" if utf8 else "ascii"
        options = (f" SIZE={len(data)}" if self.size else "") + (" SMTPUTF8" if utf8 else "")
        commands = [f"MAIL FROM:<{sender}>{options}\r\n".encode(encoding)]
        commands += [f"RCPT TO:<{each}>\r\n".encode(encoding) for each in recipients]
        commands.append(b"DATA\r\n")
        if any(b"\r" in command[:-2] or b"\n" in command[:-2] for command in commands):
            raise ValueError("a line break in an address")
        try:
            async with asyncio.timeout(timeout):
                await self._envelope(sender, recipients, commands)
        except (aiosmtplib.SMTPResponseException, aiosmtplib.SMTPRecipientsRefused):
            await self._reset(timeout)
            raise
        stuffed = _STUFFED.sub(b"..", data)
        await before_end()
        async with asyncio.timeout(timeout):
            self._write(stuffed + b".\r\n")  # `data` ends with a line break
            self.end_written = True
            code, text = await self.replies.reply()
        if code != aiosmtplib.SMTPStatus.completed:
            raise aiosmtplib.SMTPDataError(code, text)

    async def _envelope(
        self, sender: str, recipients: Sequence[str], commands: list[bytes]
    ) -> None:
        """MAIL, RCPT and DATA, together or one by one: until the server waits for the data."""
        if self.pipelining:
            self._write(b"".join(commands))
            replies = [await self.replies.reply() for _ in commands]
        else:
            replies = []
            for command in commands:
                self._write(command)
                replies.append(await self.replies.reply())
                if command.startswith(b"MAIL") and replies[-1][0] != 250:
                    break  # no envelope: nothing more to say
                last_rcpt = command.startswith(b"RCPT") and len(replies) == len(commands) - 1
                if last_rcpt and all(code not in (250, 251) for code, _ in replies[1:]):
                    break  # no recipient: no DATA
        (mail_code, mail_text), *rest = replies
        if mail_code != aiosmtplib.SMTPStatus.completed:
            raise aiosmtplib.SMTPSenderRefused(mail_code, mail_text, sender)
        refused = [
            aiosmtplib.SMTPRecipientRefused(code, text, recipient)
            for recipient, (code, text) in zip(recipients, rest, strict=False)
            if code not in (250, 251)
        ]
        data_reply = rest[len(recipients)] if len(rest) > len(recipients) else None
        if len(refused) == len(recipients):
            if data_reply is not None and data_reply[0] == aiosmtplib.SMTPStatus.start_input:
                self._write(b".\r\n")  # a server that took DATA all the same: an empty end
                await self.replies.reply()
            raise aiosmtplib.SMTPRecipientsRefused(refused)
        if data_reply is None or data_reply[0] != aiosmtplib.SMTPStatus.start_input:
            code, text = data_reply or (-1, "no reply to DATA")
            raise aiosmtplib.SMTPDataError(code, text)

    async def _reset(self, timeout: float) -> None:
        """RSET after a refusal; a failure of it is not the message's."""
        try:
            async with asyncio.timeout(timeout):
                self._write(b"RSET\r\n")
                await self.replies.reply()
        except (aiosmtplib.SMTPException, OSError, TimeoutError):
            self.close()

    async def quit(self, timeout: float = 5) -> None:
        try:
            async with asyncio.timeout(timeout):
                self._write(b"QUIT\r\n")
                await self.replies.reply()
        except (aiosmtplib.SMTPException, OSError, TimeoutError):
            pass
        finally:
            self.close()

    def close(self) -> None:
        self.transport.close()
