"""Logging in to a mailbox: TLS verified, the password sent only inside TLS, errors in one line.

``imaps://`` speaks TLS from the first byte; ``imap://`` asks for STARTTLS
before anything else, and a server that does not offer it is refused
rather than spoken to in clear; only ``security = "none"`` on loopback (the
config allows nothing else) logs in without TLS. The certificate is checked
against ``ca_file`` when the account names one, else the system's CAs, and
the host name is checked as a browser would.

The password is read when the connection needs it and goes nowhere but the
LOGIN command: imapclient's own log redacts that line, and every reason
given here is written from the exception's kind, never from the command.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Mapping

from imapclient import IMAPClient
from imapclient.exceptions import CapabilityError, IMAPClientError, LoginError

from followupd.config.accounts import ImapAccount, is_loopback
from followupd.errors import ConfigError

CONNECT_TIMEOUT = 30.0


class MailboxUnreachable(Exception):
    """A mailbox could not be opened; the message is one line: which mailbox, and why."""


def open_mailbox(
    account: ImapAccount,
    timeout: float = CONNECT_TIMEOUT,
    *,
    environ: Mapping[str, str] | None = None,
) -> IMAPClient:
    """A client logged in to `account`'s mailbox, over TLS unless the account says plain.

    Raises MailboxUnreachable, naming the account (``user@host:port``) and the
    reason: connection refused, no answer, TLS refused or not trusted, login
    refused, no password.
    """
    password = _password(account, environ)
    security = account.effective_security
    if security == "none" and not is_loopback(account.host):
        raise _unreachable(account, "IMAP without TLS is only allowed on loopback")
    context = None if security == "none" else _tls_context(account)
    try:
        client = IMAPClient(
            account.host,
            port=account.port,
            ssl=security == "tls",
            ssl_context=context,
            timeout=timeout,
        )
    except Exception as error:  # socket, TLS and greeting errors alike
        raise _unreachable(account, reason(error, timeout)) from None
    try:
        if security == "starttls":
            try:
                client.starttls(context)
            except CapabilityError:
                raise _unreachable(account, "the server does not offer STARTTLS") from None
        client.login(account.username, password)
    except MailboxUnreachable:
        _close(client)
        raise
    except LoginError as error:
        _close(client)
        said = _scrubbed(_server_text(error), password)
        raise _unreachable(account, f"login refused: {said}") from None
    except Exception as error:
        _close(client)
        raise _unreachable(account, _scrubbed(reason(error, timeout), password)) from None
    return client


def reason(error: BaseException, timeout: float | None = None) -> str:
    """Why a connection failed, in a few words a user can act on."""
    if isinstance(error, ssl.SSLCertVerificationError):
        detail = error.verify_message or "not trusted"
        return f"the server's TLS certificate is refused: {detail}"
    if isinstance(error, ssl.SSLEOFError | ssl.SSLZeroReturnError):  # hung up mid-handshake
        return "the server closed the connection"
    if isinstance(error, ssl.SSLError):
        return f"TLS failed: {error.reason or type(error).__name__}"
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(error, TimeoutError | socket.timeout):
        return f"no answer within {timeout:g} s" if timeout else "no answer in time"
    if isinstance(error, socket.gaierror):
        return f"cannot find the host: {error.strerror or error}"
    if isinstance(error, EOFError | ConnectionError) or (
        isinstance(error, IMAPClientError) and "EOF" in str(error)
    ):
        return "the server closed the connection"
    if isinstance(error, OSError):
        return f"cannot connect: {error.strerror or type(error).__name__}"
    if isinstance(error, IMAPClientError):
        return f"the server said: {_server_text(error)}"
    return f"{type(error).__name__}: {_one_line(str(error))}"


def _password(account: ImapAccount, environ: Mapping[str, str] | None) -> str:
    try:
        password = account.password("imap").reveal(environ)
    except ConfigError as error:
        problem = error.problems[0] if error.problems else None
        said = f"{problem.file}: {problem.message}" if problem else "unreadable"
        raise _unreachable(account, f"no password: {said}") from None
    if not password:
        raise _unreachable(account, "no password: set password_file or password_env")
    return password


def _tls_context(account: ImapAccount) -> ssl.SSLContext:
    if account.ca_file is None:
        return ssl.create_default_context()
    try:
        return ssl.create_default_context(cafile=str(account.ca_file))
    except (OSError, ssl.SSLError) as error:
        detail = getattr(error, "strerror", None) or type(error).__name__
        raise _unreachable(account, f"cannot read ca_file {account.ca_file}: {detail}") from None


def _unreachable(account: ImapAccount, why: str) -> MailboxUnreachable:
    return MailboxUnreachable(f"mailbox {account.account}: {why}")


def _server_text(error: BaseException) -> str:
    """The server's words in an imapclient error: ``b'[AUTHENTICATIONFAILED] ...'`` unquoted."""
    text = str(error)
    for prefix in ("b'", 'b"'):
        start = text.find(prefix)
        if start >= 0 and text.endswith(prefix[1]):
            text = text[:start] + text[start + 2 : -1]
    return _one_line(text) or type(error).__name__


def _one_line(text: str) -> str:
    return " ".join(text.split())[:300]


def _scrubbed(text: str, secret: str) -> str:
    """`text` with the password masked, should a server ever echo it."""
    return text.replace(secret, "***") if secret else text


def _close(client: IMAPClient) -> None:
    try:
        client.shutdown()
    except Exception:  # closing a broken connection: nothing more to do
        return
