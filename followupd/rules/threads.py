"""The email threads of the money rules, and how many emails each thread already holds.

The nudges of one invoice share a thread, and so do the deposit emails of one
mission. A message that says "despite my previous messages" must be true:
after a first start, or a downtime, the earlier steps may never have been
sent (a catch-up records only what is still within its grace). So the money
rules give their templates `earlier_emails`, the emails of the thread the
client was actually sent. With ``[rules.invoice_due] group_by_client``,
delivery threads every invoice email to a contact together, whatever the
invoice (followupd.delivery.client_nudges); `earlier_emails` still counts the
emails that named the invoice.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy.orm import Session

from followupd.store.outbox.claim import sent_in_threads


def invoice_thread(number: str) -> str:
    """The thread of the client emails about invoice `number`."""
    return f"invoice:{number}"


def deposit_thread(mission_key: str) -> str:
    """The thread of the client emails about the deposit of mission `mission_key`."""
    return f"deposit:{mission_key}"


def emails_sent(session: Session, threads: Iterable[str]) -> dict[str, int]:
    """How many emails of each of `threads` were sent (a thread with none is left out)."""
    wanted = sorted(set(threads))
    return {thread: len(keys) for thread, keys in sent_in_threads(session, wanted).items()}
