"""Sending emails: over SMTP, or into a Maildir when there is no ``[smtp]``.

A sender is one connection for a delivery pass's sub-batches: it connects
once, sends every message it is given over the same connection (reconnecting
once if the server hung up), and closes; a pass runs up to ``[smtp]
connections`` of them side by side, paced together by one Pacer. Failures are
sorted into transient ones, worth retrying later (4xx answers, disconnects,
timeouts, refused connections) and permanent ones (5xx answers,
authentication), which no retry will mend.

A message's end (the "." that ends DATA, the write into a Maildir) waits
for `before_end`, the handover of the pass (followupd.delivery.handover):
until then the server holds an unfinished message, which it drops if the
connection ends.
"""

from __future__ import annotations

import asyncio
import mailbox
import re
import ssl
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping
from contextlib import suppress
from pathlib import Path
from types import TracebackType
from typing import Self

import aiosmtplib
from aiosmtplib.protocol import SMTPProtocol

from followupd.channels.email.message import Email
from followupd.channels.email.pacing import Pacer
from followupd.channels.email.smtp import smtp_client
from followupd.channels.failure import DeliveryError
from followupd.config.addresses import needs_smtputf8
from followupd.config.sections import Smtp

Gate = Callable[[], Awaitable[None]]  # awaited right before a message ends


async def at_once() -> None:
    """The gate of a message that waits for nothing."""


def classify(error: BaseException) -> DeliveryError:
    """An SMTP failure as a DeliveryError: 5xx, authentication and TLS are permanent.

    A certificate that is not trusted, or a server that does not offer the
    STARTTLS the config asks for, is a configuration problem: the message is
    never sent in clear, and retrying would not help until the config changes.
    """
    if isinstance(error, ssl.SSLCertVerificationError):
        return DeliveryError(f"TLS certificate not trusted: {error.verify_message}", permanent=True)
    if type(error) is aiosmtplib.SMTPException and "STARTTLS" in str(error):
        return DeliveryError(f"refusing to send in clear: {error}", permanent=True)
    if isinstance(error, aiosmtplib.SMTPRecipientsRefused):
        codes = [refused.code for refused in error.recipients]
        permanent = all(500 <= code < 600 for code in codes)
        details = "; ".join(f"{r.code} {r.message}" for r in error.recipients)
        return DeliveryError(f"recipient refused: {details}", permanent=permanent)
    if isinstance(error, aiosmtplib.SMTPAuthenticationError):
        return DeliveryError(f"authentication failed: {error.code} {error.message}", permanent=True)
    if isinstance(error, aiosmtplib.SMTPResponseException):
        permanent = 500 <= error.code < 600
        return DeliveryError(f"SMTP {error.code} {error.message}", permanent=permanent)
    if isinstance(error, aiosmtplib.SMTPNotSupported):
        # e.g. STARTTLS required by the config but not offered: never downgrade
        return DeliveryError(f"SMTP server: {error}", permanent=True)
    return DeliveryError(f"{type(error).__name__}: {error}", permanent=False)


class MailSender(ABC):
    """Hands messages over, used as ``async with``; `close` ends its connection."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        return None

    @abstractmethod
    async def send(self, message: Email, before_end: Gate = at_once) -> None:
        """Hand one message over, or raise DeliveryError; `before_end` is awaited right
        before the message ends (what it raises, the message does not end)."""


class SmtpSender(MailSender):
    """Sends messages over one SMTP connection, with a timeout for each whole message.

    The message goes as the bytes it was built into, with the envelope made
    with it, so its headers reach the server exactly as made.
    """

    def __init__(
        self, smtp: Smtp, environ: Mapping[str, str] | None = None, pacer: Pacer | None = None
    ) -> None:
        self.smtp = smtp
        self.environ = environ
        self.client: aiosmtplib.SMTP | None = None
        self.pacer = pacer or Pacer(smtp.rate_per_minute)

    async def _connect(self) -> aiosmtplib.SMTP:
        if self.client is None or not self.client.is_connected:
            client = smtp_client(self.smtp, self.environ)
            try:
                async with asyncio.timeout(self.smtp.timeout_seconds):
                    await client.connect()
            except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
                client.close()  # a connection that failed half way (TLS, say) is not left open
                raise classify(error) from error
            self.client = client
        return self.client

    async def close(self) -> None:
        if self.client is not None and self.client.is_connected:
            try:
                async with asyncio.timeout(5):
                    await self.client.quit()
            except (aiosmtplib.SMTPException, OSError, TimeoutError):
                self.client.close()
        self.client = None

    async def send(self, message: Email, before_end: Gate = at_once) -> None:
        await self.pacer.wait()
        sender, recipients = message.sender, list(message.recipients)
        utf8 = [address for address in (sender, *recipients) if needs_smtputf8(address)]
        options = ["SMTPUTF8"] if utf8 else []  # RFC 6531: aiosmtplib checks the server has it
        for attempt in (1, 2):
            client = await self._connect()
            try:
                await self._transaction(client, message, options, before_end)
                return
            except aiosmtplib.SMTPNotSupported as error:
                if not utf8:
                    raise classify(error) from error
                reason = (
                    f"{', '.join(utf8)}: an address not in ASCII before the @-sign needs an "
                    "SMTP server that offers SMTPUTF8 (RFC 6531), and this one does not"
                )
                raise DeliveryError(reason, permanent=True) from error
            except aiosmtplib.SMTPServerDisconnected as error:
                self._drop()
                if attempt == 2:
                    raise classify(error) from error
            except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
                if isinstance(error, TimeoutError | OSError):
                    self._drop()
                raise classify(error) from error
            except BaseException:  # the gate failed, or a stop: the message must not end
                self._drop()
                raise

    async def _transaction(
        self, client: aiosmtplib.SMTP, message: Email, options: list[str], before_end: Gate
    ) -> None:
        """MAIL, RCPT, DATA and the message, then `before_end`, then its end: the "." line.

        Each part within the timeout; the wait for `before_end` outside it. A
        refusal resets the envelope (RSET), as aiosmtplib's sendmail does.
        """
        timeout = self.smtp.timeout_seconds
        try:
            async with asyncio.timeout(timeout):
                if client.is_ehlo_or_helo_needed:  # what the server offers, known once
                    try:
                        await client.ehlo()
                    except aiosmtplib.SMTPHeloError:
                        await client.helo()
                if options and not client.supports_extension("smtputf8"):
                    raise aiosmtplib.SMTPNotSupported("SMTPUTF8 is not supported by this server")
                size = [f"SIZE={len(message.data)}"] if client.supports_extension("size") else []
                encoding = "utf-8" if options else "ascii"
                await client.mail(message.sender, options=size + options, encoding=encoding)
                for recipient in message.recipients:
                    try:
                        await client.rcpt(recipient, encoding=encoding)
                    except aiosmtplib.SMTPRecipientRefused as refused:
                        raise aiosmtplib.SMTPRecipientsRefused([refused]) from refused
                protocol = _protocol(client)
                protocol.write(b"DATA\r\n")
                start = await protocol.read_response()
                if start.code != aiosmtplib.SMTPStatus.start_input:
                    raise aiosmtplib.SMTPDataError(start.code, start.message)
                protocol.write(_STUFFED.sub(b"..", message.data))
        except (aiosmtplib.SMTPResponseException, aiosmtplib.SMTPRecipientsRefused):
            with suppress(aiosmtplib.SMTPException, OSError, TimeoutError):
                async with asyncio.timeout(timeout):
                    await client.rset()
            raise
        await before_end()
        async with asyncio.timeout(timeout):
            protocol = _protocol(client)
            protocol.write(b".\r\n")
            done = await protocol.read_response()
        if done.code != aiosmtplib.SMTPStatus.completed:
            raise aiosmtplib.SMTPDataError(done.code, done.message)

    def _drop(self) -> None:
        """Forget a connection that broke, closing it so that no socket is left behind."""
        if self.client is not None:
            self.client.close()
        self.client = None


class MaildirSender(MailSender):
    """Writes each message into a Maildir (``new/``), where any mail client reads it."""

    def __init__(self, path: Path) -> None:
        self.path = path

    async def send(self, message: Email, before_end: Gate = at_once) -> None:
        await before_end()
        try:
            await asyncio.to_thread(self._write, message)
        except OSError as error:
            raise DeliveryError(f"cannot write to {self.path}: {error}", permanent=False) from error

    def _write(self, message: Email) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        box = mailbox.Maildir(self.path, create=True)
        box.add(message.data)


_STUFFED = re.compile(rb"(?m)^\.")  # a line that starts with a dot gets another (RFC 5321)


def _protocol(client: aiosmtplib.SMTP) -> SMTPProtocol:
    if client.protocol is None:
        raise aiosmtplib.SMTPServerDisconnected("Connection lost")
    return client.protocol


def mail_sender(smtp: Smtp | None, state_dir: Path, pacer: Pacer | None = None) -> MailSender:
    """SMTP when configured (paced by `pacer`, shared by a pass's connections), else the
    Maildir under the state directory."""
    if smtp is None:
        return MaildirSender(state_dir / "Maildir")
    return SmtpSender(smtp, pacer=pacer)
