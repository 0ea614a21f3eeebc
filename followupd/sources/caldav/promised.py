"""A promise to pay recorded from the calendar: a task about an invoice, done with the date.

The owner calls the client, or reads their reply, and hears "we will pay
by the 18th". Two ways to say so from the calendar app, which the tasks'
descriptions explain:

- a line added to the task's notes (or its title), "promis 18/12" or
  "promised 2026-12-18" (`followupd.domain.promise_note`), then the task
  ticked off: on any task about an invoice (a client's reply about it, its
  heads-up, a broken promise's call, the overdue call);
- for the task of a client's reply about an invoice (``client_replied``):
  its due moved to the promised date and the task ticked off at once.
  A due moved and left open is putting the task off, as for every task
  (the next sync reads it so, and the later completion then promises
  nothing); the line in the notes works whenever the task is done.

The unpaid invoice then gets that date as its promise, as ``followupd
invoice promised`` would set it (`followupd.rules.promises` says what
follows). Lines followupd wrote itself are not read: only what the owner
added.
"""

from __future__ import annotations

import logging
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from followupd.domain.promise_note import promised_in
from followupd.sources.ical.remote_control import ItemSeen
from followupd.store.models import Invoice, LiveItem

log = logging.getLogger("followupd.sources.promised")

# the rules whose tasks may be about an invoice (their subject: its number)
INVOICE_TASKS = ("invoice_due", "escalate_by_phone", "client_replied")
# the task whose due, moved and done at once, is the promised date
MOVED_DUE_TASKS = ("client_replied",)


def promise_from_task(
    session: Session, item: LiveItem, seen: ItemSeen, written_due: datetime, done: datetime
) -> date | None:
    """Record the promise a completed task carries, if any; return its date.

    `written_due` is the due followupd last knew of the task (its own, or the
    user's snooze), `done` when the task was completed.
    """
    if item.rule not in INVOICE_TASKS:
        return None
    invoice = session.scalar(
        select(Invoice).where(
            Invoice.number == item.subject_key, Invoice.mission_id == item.mission_id
        )
    )
    if invoice is None or invoice.paid is not None:
        return None
    day = _written(item, seen, done) or _moved(item, seen, written_due)
    if day is None:
        return None
    invoice.promised = day
    log.info("invoice %s: promised to pay by %s (%s)", invoice.number, day, item.uid)
    return day


def _written(item: LiveItem, seen: ItemSeen, done: datetime) -> date | None:
    """A promise in the lines the owner added to the task's title or notes."""
    if not seen.text:
        return None
    ours = {line.strip() for line in f"{item.summary}\n{item.description}".splitlines()}
    added = [line for line in seen.text.splitlines() if line.strip() not in ours]
    return promised_in("\n".join(added), done.date()) if added else None


def _moved(item: LiveItem, seen: ItemSeen, written_due: datetime) -> date | None:
    """The day a reply's task was moved to, when it was moved and done in one go."""
    if item.rule not in MOVED_DUE_TASKS or seen.due is None or seen.due <= written_due:
        return None
    return seen.due_day
