"""A client's promise to pay an invoice by a date, and how the invoice's ladder waits for it.

``followupd invoice promised NUMBER --on DATE`` (or a task completed in the
calendar with the date, `followupd.sources.caldav.promised`) sets the
invoice's `promised`. While the invoice is unpaid, its client nudges wait
until ``[rules.invoice_due] promise_grace_days`` working days (of the
owner's calendar) after the promised date: the pause's end, `until`, as a
client's reply makes them wait (`followupd.rules.replies`).

Then the ladder resumes where it was. The first client step not done before
the pause ended goes at the opening of the send window on `until`, in the
client's zone; the steps after it, and the 30-days-overdue call of
``escalate_by_phone``, come as many days later as that step did: they keep
their spacing, so two steps that fell in the pause never go together. A
step is done when its follow-up finished (sent, cancelled, expired…) before
the pause's end: one the pause moved, and sent at its end, stays the
resumed ladder's first step on every later pass, so the shift stays put.
A later promise starts over from the steps done by then.

The pause is read from the store, never stored apart: a nudge recorded
before the promise, still pending, is held back at delivery until the
moved date too (`followupd.delivery.holds`); it keeps the text it was
recorded with. The steps after the pause are told the promised date
(`promised`), so that their text recalls it. The owner's reminder of a
broken promise lives in `followupd.rules.broken_promises`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import ColumnElement, select, true
from sqlalchemy.orm import Session

from followupd.config.rule_options import InvoiceDueOptions
from followupd.config.settings import Settings
from followupd.domain.business_calendar import BusinessCalendar, zone
from followupd.domain.states import FollowUpState
from followupd.store.chunks import chunked
from followupd.store.models import Client, FollowUp, Invoice, Mission

RULE = "invoice_due"
# a follow-up in these states has not left yet: its step is not done
NOT_DONE = (FollowUpState.PENDING, FollowUpState.SENDING)


@dataclass(frozen=True)
class PromisePause:
    """Invoice `number`'s client promised to pay by `promised`: its client nudges wait.

    `until` is a date: client emails go again from the opening of the send
    window on that day, in the client's zone. The ladder's client steps
    whose nominal date is on or after `first` (the first step not done
    before then) come `shift` later; `first` is None when the pause moves
    no step (every step done, or the next one due after the pause anyway).
    """

    number: str
    promised: date
    until: date
    first: date | None = None
    shift: timedelta = timedelta(0)

    @property
    def reason(self) -> str:
        """Why a client email of the invoice waits, as `outbox show` and `tick --json` say it."""
        return (
            f"promised to pay by {self.promised.isoformat()}: waits until {self.until.isoformat()}"
        )

    def moved(self, nominal: date) -> date:
        """The day a client step of nominal date `nominal` is due, the pause considered."""
        if self.first is not None and nominal >= self.first:
            return nominal + self.shift
        return nominal

    def call_moved(self, nominal: date) -> date:
        """The day the ladder's closing call is due: moved with the steps, never in the pause."""
        if self.first is not None and nominal >= self.first:
            return nominal + self.shift
        return max(nominal, self.until)


def invoice_options(settings: Settings, owner: str | None) -> InvoiceDueOptions:
    """``[rules.invoice_due]`` as the owner keyed `owner` has it."""
    override = settings.owner_for(owner).rule_overrides.get(RULE)
    options = settings.rules.invoice_due
    return options.model_copy(update=override) if override else options


def promise_end(
    settings: Settings, calendar: BusinessCalendar, owner: str | None, promised: date,
    options: InvoiceDueOptions | None = None,
) -> date:  # fmt: skip
    """The day the nudges of an invoice promised for `promised` go again, in the owner's calendar.

    ``promise_grace_days`` working days after the promised date (0: the
    promised date itself, or the next working day).
    """
    grace = (options or invoice_options(settings, owner)).promise_grace_days
    countries = (settings.owner_for(owner).country,)
    return calendar.add_working_days(promised, grace, countries)


def promise_pauses(
    session: Session,
    settings: Settings,
    calendar: BusinessCalendar,
    *,
    owns: ColumnElement[bool] | None = None,
    numbers: Iterable[str] | None = None,
    options: InvoiceDueOptions | None = None,
) -> dict[str, PromisePause]:
    """The pauses of the unpaid invoices with a promise, by number.

    Only the missions `owns` lets through, only `numbers` when given. Each
    mission's owner's ``[rules.invoice_due]`` says the grace and the ladder
    (the client's profile's, if it has one), unless `options` is given (the
    rule's own, already the owner's).
    """
    query = (
        select(
            Invoice.number,
            Invoice.due,
            Invoice.promised,
            Mission.owner,
            Client.timezone,
            Client.country,
            Client.profile,
        )
        .join(Mission, Invoice.mission_id == Mission.id)
        .join(Client, Mission.client_id == Client.id)
        .where(
            owns if owns is not None else true(),
            Invoice.paid.is_(None),
            Invoice.promised.is_not(None),
        )
    )
    if numbers is None:
        rows = list(session.execute(query))
    else:
        rows = []
        for chunk in chunked(sorted(set(numbers))):
            rows += session.execute(query.where(Invoice.number.in_(chunk)))
    if not rows:
        return {}
    finished = _finished_steps(session, [row.number for row in rows])
    pauses: dict[str, PromisePause] = {}
    for row in rows:
        ladder = options or invoice_options(settings, row.owner)
        owner = settings.owner_for(row.owner)
        until = promise_end(settings, calendar, row.owner, row.promised, ladder)
        tz = zone(row.timezone or owner.timezone)
        resumes = calendar.due_at(until, 0, tz, (row.country or owner.country,))
        done = finished.get(row.number, {})
        steps = sorted(
            (step for step in ladder.ladder(row.profile) if step.audience == "client"),
            key=lambda step: step.offset_days,
        )
        first = next(
            (
                row.due + timedelta(days=step.offset_days)
                for step in steps
                if not (step.name in done and done[step.name] < resumes)
            ),
            None,
        )
        if first is None or first >= until:
            pauses[row.number] = PromisePause(row.number, row.promised, until)
        else:
            pauses[row.number] = PromisePause(row.number, row.promised, until, first, until - first)
    return pauses


def _finished_steps(session: Session, numbers: list[str]) -> dict[str, dict[str, datetime]]:
    """For each invoice, when each of its steps' follow-ups finished (left, or stopped)."""
    finished: dict[str, dict[str, datetime]] = {}
    for chunk in chunked(sorted(set(numbers))):
        query = select(
            FollowUp.subject_key, FollowUp.step, FollowUp.sent_at, FollowUp.updated_at
        ).where(
            FollowUp.rule == RULE,
            FollowUp.subject_key.in_(chunk),
            FollowUp.state.not_in(NOT_DONE),
        )
        for number, step, sent_at, updated_at in session.execute(query):
            when = sent_at or updated_at
            steps = finished.setdefault(number, {})
            steps[step] = min(when, steps.get(step, when))
    return finished
