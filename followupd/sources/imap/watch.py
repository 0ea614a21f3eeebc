"""Watching a folder for new mail, for the daemon: IDLE (RFC 2177), else NOOP now and then.

`watch_inbox` runs in a thread of its own and only says "something came":
the daemon's `wake` starts a sync pass, which reads what is new. The folder
is EXAMINEd, as the sync does, so watching changes nothing either.

IDLE is issued again every `idle_seconds`, under the 29 minutes after which
RFC 2177 lets a server drop a client that stays idle. The server's answers
are read a second at a time, so that `stop` is seen within about a second.
A connection lost (the server restarted, the network gone) is opened again
after a wait that grows to a minute, and `wake` is called once it is back:
mail may have come meanwhile.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from collections.abc import Callable, Mapping, Sequence

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError

from followupd.config.accounts import ImapAccount
from followupd.sources.imap.connection import MailboxUnreachable, open_mailbox, reason

log = logging.getLogger("followupd.sources.imap")

IDLE_SECONDS = 1500.0  # 25 minutes: IDLE again before RFC 2177's 29
CHECK_SECONDS = 1.0  # the longest a wait on the server's answers lasts: how soon stop is seen
POLL_SECONDS = 60.0  # NOOP this often on a server without IDLE
RETRY_SECONDS = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0)  # waits after each failure in a row
_NEWS = (b"EXISTS", b"RECENT")


class _ConnectionLost(Exception):
    """The server said BYE, or the connection turned out closed."""


def watch_inbox(
    account: ImapAccount,
    folder: str,
    wake: Callable[[], None],
    stop: threading.Event,
    idle_seconds: float = IDLE_SECONDS,
    *,
    poll_seconds: float = POLL_SECONDS,
    environ: Mapping[str, str] | None = None,
) -> None:
    """Call `wake` whenever mail arrives in `folder`, until `stop` is set; see the module."""
    failures = 0
    while not stop.is_set():
        try:
            client = open_mailbox(account, environ=environ)
        except MailboxUnreachable as error:
            failures = _wait_after(f"{error}", failures, stop)
            continue
        try:
            client.select_folder(folder, readonly=True)
            if failures:
                log.info("watching %s in %s again", folder, account.account)
                wake()  # mail may have come while the connection was down
            failures = 0
            if client.has_capability("IDLE"):
                _idle(client, wake, stop, idle_seconds)
            else:
                _poll(client, wake, stop, poll_seconds)
        except (_ConnectionLost, IMAPClientError, OSError, EOFError, ssl.SSLError) as error:
            why = "the server closed the connection" if isinstance(error, _ConnectionLost) else None
            line = f"mailbox {account.account}: watching {folder!r} stopped: {why or reason(error)}"
            failures = _wait_after(line, failures, stop)
        finally:
            _close(client)


def _idle(
    client: IMAPClient, wake: Callable[[], None], stop: threading.Event, idle_seconds: float
) -> None:
    """IDLE until `stop`, again every `idle_seconds`; raises _ConnectionLost if it is."""
    while not stop.is_set():
        client.idle()
        started = time.monotonic()
        while not stop.is_set() and time.monotonic() - started < idle_seconds:
            asked = time.monotonic()
            responses = client.idle_check(timeout=CHECK_SECONDS)
            _look(responses, wake)
            if not responses and time.monotonic() - asked < CHECK_SECONDS / 2:
                # readable, yet nothing read: the connection may be closed; DONE will say
                break
        _, responses = client.idle_done()
        _look(responses, wake)


def _poll(
    client: IMAPClient, wake: Callable[[], None], stop: threading.Event, poll_seconds: float
) -> None:
    while not stop.wait(poll_seconds):
        _, responses = client.noop()
        _look(responses, wake)


def _look(responses: Sequence[object], wake: Callable[[], None]) -> None:
    """Wake on EXISTS or RECENT; a BYE means the server is closing the connection."""
    news = False
    for response in responses:
        if not isinstance(response, tuple) or not response:
            continue
        if response[0] == b"BYE":
            raise _ConnectionLost
        news = news or (len(response) > 1 and response[1] in _NEWS)
    if news:
        wake()


def _wait_after(line: str, failures: int, stop: threading.Event) -> int:
    """Wait before trying again (returning early on `stop`); return the failures so far."""
    delay = RETRY_SECONDS[min(failures, len(RETRY_SECONDS) - 1)]
    log.warning("%s; trying again in %g s", line, delay)
    stop.wait(delay)
    return failures + 1


def _close(client: IMAPClient) -> None:
    try:
        client.logout()
    except Exception:  # broken already: close what is left
        try:
            client.shutdown()
        except Exception:  # nothing more to close
            return
