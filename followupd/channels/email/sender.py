"""Sending emails: over SMTP, or into a Maildir when there is no ``[smtp]``.

A sender is one connection for a delivery pass's sub-batches: it connects
once, sends every message it is given over the same connection (reconnecting
once if the server hung up), and closes; a pass runs up to ``[smtp]
connections`` of them side by side, paced together by one Pacer. Failures are
sorted into transient ones, worth retrying later (4xx answers, disconnects,
timeouts, refused connections) and permanent ones (5xx answers,
authentication), which no retry will mend.

A message's text and end (the "." that ends DATA, the write into a Maildir)
wait for `before_end`, the handover of the pass
(followupd.delivery.handover): until then the server holds an envelope only,
which it drops if the connection ends. Once the end is written, a connection that ends (or a
server that does not answer) leaves the message in doubt: the server may have
accepted it. It is not sent again on a new connection then, but failed as
worth retrying: a later attempt sends it again, with the same Message-ID.
"""

from __future__ import annotations

import asyncio
import logging
import mailbox
import ssl
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Self

import aiosmtplib

from followupd.channels.email.message import Email
from followupd.channels.email.pacing import Pacer
from followupd.channels.email.pipelining import Transactions
from followupd.channels.email.smtp import smtp_client
from followupd.channels.failure import DeliveryError
from followupd.config.addresses import needs_smtputf8
from followupd.config.sections import Smtp

log = logging.getLogger("followupd.channels.email")

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


def in_doubt(message: Email, error: BaseException) -> DeliveryError:
    """A message whose end was written but not answered: logged with its Message-ID,
    failed as worth retrying (a later attempt may send it a second time)."""
    what = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    log.warning(
        "%s: no answer to its end (%s); the server may have accepted it, "
        "and a later attempt sends it again with the same Message-ID",
        message.message_id,
        what,
    )
    reason = f"in doubt: {what} after the end of {message.message_id} was written"
    return DeliveryError(reason, permanent=False)


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
    """Sends messages over one SMTP connection, with a timeout for each part of a message.

    aiosmtplib opens the connection (TLS, login); the messages then go as mail
    transactions pipelined where the server offers it
    (followupd.channels.email.pipelining), each as the bytes it was built
    into, with the envelope made with it, so its headers reach the server
    exactly as made.
    """

    def __init__(
        self, smtp: Smtp, environ: Mapping[str, str] | None = None, pacer: Pacer | None = None
    ) -> None:
        self.smtp = smtp
        self.environ = environ
        self.link: Transactions | None = None
        self.pacer = pacer or Pacer(smtp.rate_per_minute)

    async def _connect(self) -> Transactions:
        if self.link is None or not self.link.is_connected:
            client = smtp_client(self.smtp, self.environ)
            try:
                async with asyncio.timeout(self.smtp.timeout_seconds):
                    await client.connect()
                    if client.is_ehlo_or_helo_needed:  # what the server offers, known once
                        try:
                            await client.ehlo()
                        except aiosmtplib.SMTPHeloError:
                            await client.helo()
                self.link = Transactions(client)
            except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
                client.close()  # a connection that failed half way (TLS, say) is not left open
                raise classify(error) from error
        return self.link

    async def close(self) -> None:
        if self.link is not None:
            await self.link.quit()
        self.link = None

    async def send(self, message: Email, before_end: Gate = at_once) -> None:
        await self.pacer.wait()
        sender, recipients = message.sender, list(message.recipients)
        utf8 = [address for address in (sender, *recipients) if needs_smtputf8(address)]
        for attempt in (1, 2):
            link = await self._connect()
            try:
                await link.send(
                    sender,
                    recipients,
                    message.data,
                    utf8=bool(utf8),
                    before_end=before_end,
                    timeout=self.smtp.timeout_seconds,
                )
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
                if link.end_written:
                    raise in_doubt(message, error) from error
                if attempt == 2:
                    raise classify(error) from error
            except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
                if isinstance(error, TimeoutError | OSError):
                    self._drop()
                    if link.end_written:
                        raise in_doubt(message, error) from error
                raise classify(error) from error
            except BaseException:  # the gate failed, or a stop: the message must not end
                self._drop()
                raise

    def _drop(self) -> None:
        """Forget a connection that broke, closing it so that no socket is left behind."""
        if self.link is not None:
            self.link.close()
        self.link = None


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


def mail_sender(smtp: Smtp | None, state_dir: Path, pacer: Pacer | None = None) -> MailSender:
    """SMTP when configured (paced by `pacer`, shared by a pass's connections), else the
    Maildir under the state directory."""
    if smtp is None:
        return MaildirSender(state_dir / "Maildir")
    return SmtpSender(smtp, pacer=pacer)
