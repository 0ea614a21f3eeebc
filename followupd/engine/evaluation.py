"""Evaluation: run every enabled rule at an instant and record the outcome in the outbox.

Recording is idempotent: ``INSERT … ON CONFLICT (key) DO NOTHING``, so two
passes at the same instant, or two instances at once, record each follow-up
once. An intent still within its grace is recorded `pending` (and `late` when
it should have been recorded well before); one past its grace is recorded
`expired` and never sent. Pending follow-ups whose reason has gone are
cancelled with the reason.

A pass looks back over each rule's grace, and further back to the previous
pass when that is older: after a downtime, what fell due while followupd was
down is recorded, pending if still within its grace, expired otherwise. In
steady state a pass only reconsiders the grace period, which keeps it cheap.
Follow-ups that were already past their grace before the previous pass
(historical data imported today, say) are not recorded at all.

A follow-up's message is rendered when it is recorded. One whose template
fails (a user template's mistake, or a message over the size cap) is
recorded `failed` with the template's error, file and line as its reason,
and the pass goes on with the others: a template error is not transient, so
it is not retried; `followupd outbox retry` records it again once the
template is fixed. A letter (`Intent.letter`) is worded then too, and its
data stored with the follow-up (its PDF is made when someone asks for it:
followupd.channels.letters.files); one that cannot be worded fails that
follow-up alone, in the same way.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from followupd.channels.letters.wording import letter_text
from followupd.config.rule_options import RuleOptions
from followupd.config.settings import Settings
from followupd.domain import formal_notice_record
from followupd.domain.business_calendar import BusinessCalendar, zone
from followupd.domain.formal_notice import file_name
from followupd.domain.owner_scope import Scope, evaluation_scopes
from followupd.domain.states import Audience, Channel, FollowUpState
from followupd.engine import collection
from followupd.rules.base import Evaluation, Intent, Rule
from followupd.rules.book import RuleBook
from followupd.sources.caldav import meetings
from followupd.store import live_items
from followupd.store.chunks import batches
from followupd.store.coordination import DUE, announce, one_evaluation_at_a_time
from followupd.store.models import SyncState
from followupd.store.outbox import digests, recording
from followupd.store.outbox.recording import NewFollowUp, Recorded
from followupd.store.outbox.rows import FollowUpRow
from followupd.templates.loader import LazySubject, TemplateProblem, Templates, templates_of

log = logging.getLogger("followupd.engine")

PREVIOUS_EVALUATION = "engine:previous-evaluation"  # its sync_state row
# A follow-up recorded more than this after its due time is marked late.
LATE_AFTER = timedelta(hours=1)


@dataclass
class PassReport:
    """What one evaluation pass changed."""

    at: datetime
    recorded: list[FollowUpRow] = field(default_factory=list)
    cancelled: dict[str, str] = field(default_factory=dict)  # key -> reason
    failed: dict[str, str] = field(default_factory=dict)  # key -> reason: a template failed


def window_start(rule: Rule[RuleOptions], at: datetime, last_pass: datetime | None) -> datetime:
    """Where a pass at `at` starts looking for follow-ups of `rule`."""
    start = at - rule.grace
    return min(start, last_pass) if last_pass is not None else start


def last_pass(session: Session) -> datetime | None:
    token = session.scalar(select(SyncState.token).where(SyncState.source == PREVIOUS_EVALUATION))
    return datetime.fromisoformat(token) if token else None


def _remember_pass(session: Session, at: datetime, previous: datetime | None) -> None:
    """Record `at` as the last pass, never moving it backwards (`tick --now` may go back)."""
    if previous is None:
        session.add(SyncState(source=PREVIOUS_EVALUATION, token=at.isoformat(), updated_at=at))
        session.flush()
    elif at > previous:
        session.execute(
            update(SyncState)
            .where(SyncState.source == PREVIOUS_EVALUATION)
            .values(token=at.isoformat(), updated_at=at)
        )


def evaluate(
    session: Session,
    settings: Settings,
    rules: Sequence[Rule[RuleOptions]],
    at: datetime,
) -> PassReport:
    """One pass at `at`: record what is due, expire what is too old, cancel what has gone.

    Each owner's missions are evaluated with the owner's options and templates;
    owners alike in these are evaluated together (`evaluation_scopes`), each
    follow-up recorded for the owner of its mission. No garbage collection
    while it runs (`collection`).
    """
    with collection.paused():
        return _evaluate(session, settings, rules, at)


def _evaluate(
    session: Session,
    settings: Settings,
    rules: Sequence[Rule[RuleOptions]],
    at: datetime,
) -> PassReport:
    calendar = BusinessCalendar(settings.business)
    book = RuleBook(settings, rules, only_enabled=True)
    report = PassReport(at)
    one_evaluation_at_a_time(session)
    meetings.record_held(session, at)  # the calendar's meetings that ended since the last sync
    previous = last_pass(session)
    first = recording.empty(session)  # a new store's first pass: no cancellation check
    dismissals = live_items.any_dismissed(session)  # else no concern to look up
    due: dict[int, set[str]] = {}  # by rule (its id): keys found due, not to cancel
    shared: dict[Path | None, Templates] = {}  # by owner's directory: each compiled once a pass
    for scope in evaluation_scopes(settings):
        templates = shared.get(scope.entry.templates)
        if templates is None:
            templates = shared[scope.entry.templates] = templates_of(settings, scope.entry)
        recorded: list[FollowUpRow] = []
        for rule in book.rules(scope.key):
            start = window_start(rule, at, previous)
            known = recording.recorded_keys(session, rule.name, start, scope)
            evaluation = Evaluation(
                session, settings, calendar, templates, start, at, scope, recorded=known,
                due=due.setdefault(id(rule), set()),
            )  # fmt: skip
            for intents in batches(rule.evaluate(evaluation)):  # never a whole rule's at once
                recorded += _insert_new(session, scope, intents, known, at, dismissals)
        report.recorded += recorded
        report.recorded += _record_digests(session, calendar, scope, recorded, at)
    for row in report.recorded:
        if row.state == FollowUpState.FAILED:
            log.warning("%s failed: %s", row.key, row.reason)
            report.failed[row.key] = row.reason or ""
    # On an empty outbox, the pending rows now are those the rules have just found due from
    # this pass's data, with nothing sent yet to make one moot: a rule's `vanished` calls none
    # of them gone (tests/test_rules_properties.py), and delivery asks it again before sending.
    if not first:
        report.cancelled = cancel_vanished(session, book, at, due)
    _remember_pass(session, at, previous)
    if report.recorded:
        announce(session, DUE)
    return report


def plan(
    session: Session,
    settings: Settings,
    rules: Sequence[Rule[RuleOptions]],
    start: datetime,
    end: datetime,
) -> list[Intent]:
    """The intents due in ``[start, end]``, recorded or not, with their owners; changes nothing.

    Left out: those of a concern the user dismissed in their calendar, and
    reminders by email to an owner who wants none: they would not go.

    The calendar's meetings that ended by `start` count, as in a pass at
    `start`: the caller rolls the session back. An intent whose template fails
    has, for subject, the template's error.
    """
    meetings.record_held(session, start)
    calendar = BusinessCalendar(settings.business)
    book = RuleBook(settings, rules, only_enabled=True)
    intents: list[Intent] = []
    for scope in evaluation_scopes(settings):
        templates = templates_of(settings, scope.entry)
        evaluation = Evaluation(session, settings, calendar, templates, start, end, scope)
        for rule in book.rules(scope.key):
            intents += (
                replace(intent, owner=scope.member(intent.owner).key)
                for intent in rule.evaluate(evaluation)
            )
    dismissed = live_items.dismissed_concerns(session, (intent.concern for intent in intents))
    by_email = {entry.key: entry.reminders_by_email for entry in settings.owners}
    intents = [
        _shown(intent)
        for intent in intents
        if intent.concern not in dismissed and not _never_by_email(intent, by_email)
    ]
    return sorted(intents, key=lambda intent: (intent.due_at, intent.key))


def _never_by_email(intent: Intent, by_email: Mapping[str, str]) -> bool:
    """A reminder by email to an owner who wants none (`reminders_by_email = "off"`)."""
    return (
        intent.audience == Audience.OWNER
        and intent.channel == Channel.EMAIL
        and by_email.get(intent.owner or "") == "off"
    )


def _shown(intent: Intent) -> Intent:
    """`intent`, or, when its message cannot be rendered, the same with the error as subject."""
    try:
        message(intent)
    except TemplateProblem as problem:
        return replace(intent, subject=f"(not sent: {problem})")
    return intent


def message(intent: Intent) -> tuple[str, str]:
    """The subject and body of `intent`, as recorded and sent; TemplateProblem if they fail."""
    if isinstance(intent.subject, LazySubject):
        return str(intent.subject), intent.subject.text()
    return intent.subject, ""


def cancel_vanished(
    session: Session,
    book: RuleBook,
    at: datetime,
    due: Mapping[int, AbstractSet[str]] | None = None,
) -> dict[str, str]:
    """Cancel the pending follow-ups whose reason has gone; return key -> reason.

    Those a rule has just found due (`due`, by rule: `Evaluation.due`) are not asked about.
    """
    if due and any(due.values()):  # read whole only the rows the rules are asked about
        rows = recording.pending(
            session, lambda key, rule, owner: book.asks(owner, rule, key, due) is not None
        )
    else:
        rows = recording.pending(session)
    cancelled = book.vanished(session, rows, due)
    recording.cancel(session, cancelled, at)
    return cancelled


def _record_digests(
    session: Session,
    calendar: BusinessCalendar,
    scope: Scope,
    recorded: Sequence[FollowUpRow],
    at: datetime,
) -> list[FollowUpRow]:
    """The digests of the scope's owners for the reminders this pass recorded: one a working
    day each, for those who want a digest.

    A reminder goes into the digest at the first opening of the owner's send
    window at or after its due time, on a working day of the owner's country;
    when that digest has gone already (the reminder was recorded later that
    day, say), into the next one.
    """
    due: dict[str, set[datetime]] = {}  # owner key -> the due times of their reminders
    for row in recorded:
        if row.audience == Audience.OWNER and row.state == FollowUpState.PENDING:
            due.setdefault(row.owner or scope.key, set()).add(row.due_at)
    members = [member for member in scope.members or (scope.entry,)
               if member.reminders_by_email == "digest" and member.key in due]  # fmt: skip
    sent = digests.last_sent_each(session, [member.key for member in members])
    rows: list[NewFollowUp] = []
    for member in members:
        tz, countries = zone(member.timezone), (member.country,)
        last = sent.get(member.key)
        openings = set()
        for due_at in due[member.key]:
            opening = calendar.opening_from(due_at, tz, countries)
            if last is not None and opening <= last:
                opening = calendar.opening_from(last, tz, countries, strictly=True)
            openings.add(opening)
        rows += digests.digest_rows(member.key, member.email, member.language,
                                    sorted(openings), at)  # fmt: skip
    keys = recording.insert_new(session, rows) if rows else []
    return recording.load(session, keys) if keys else []


def _row(intent: Intent, owner: str, tz: ZoneInfo, at: datetime) -> NewFollowUp:
    expired = at > intent.expires_at
    subject, body, problem = "", "", None
    try:  # the subject first: kept when only the body fails
        subject = str(intent.subject)
        body = intent.subject.text() if isinstance(intent.subject, LazySubject) else ""
    except TemplateProblem as error:  # this follow-up alone fails; the pass goes on
        problem = str(error)
    letter, attachment_name = None, None
    if intent.letter is not None and not expired and problem is None:
        try:  # its wording now, its PDF when asked for (channels.letters.files)
            letter_text(intent.letter)
            letter = formal_notice_record.dumps(intent.letter)
        except Exception as error:  # a bug or a value the wording chokes on: this one alone
            log.exception("%s: the letter could not be made", intent.key)
            problem = f"the letter could not be made: {error!r}"
        else:
            attachment_name = file_name(intent.letter.language, intent.subject_key)
    if expired:
        state, reason = (
            FollowUpState.EXPIRED,
            f"missed: its grace ended {intent.expires_at.astimezone(tz):%Y-%m-%d %H:%M}",
        )
    elif problem is not None:
        state, reason = FollowUpState.FAILED, problem
    else:
        state, reason = FollowUpState.PENDING, None
    return {
        "key": intent.key,
        "owner": owner,
        "rule": intent.rule,
        "step": intent.step,
        "subject_key": intent.subject_key,
        "concern": intent.concern or intent.key,
        "mission_id": intent.mission_id,
        "contact_id": intent.contact_id,
        "audience": intent.audience,
        "channel": intent.channel,
        "recipient": intent.recipient,
        "language": intent.language,
        "subject": subject,
        "body": body,
        "thread_key": intent.thread_key,
        "due_at": intent.due_at,
        "expires_at": intent.expires_at,
        "late": not expired and at - intent.due_at > LATE_AFTER,
        "state": state,
        "reason": reason,
        "last_error": problem,
        "attachment_name": attachment_name,
        "letter": letter,
        "attempts": 0,
        "created_at": at,
        "updated_at": at,
    }


def _insert_new(
    session: Session,
    scope: Scope,
    intents: list[Intent],
    recorded: set[str],
    at: datetime,
    dismissals: bool,
) -> list[Recorded]:
    """Insert the intents whose key is new; return the rows this call inserted.

    The rule's keys already recorded in the window (`recorded`, read in one
    query) are skipped (the common case: a pass finds most follow-ups already
    there), so only new rows are built and their subjects rendered. The
    insert keeps ON CONFLICT DO NOTHING for the rest: a key recorded with an
    older due time, or by another instance at the same moment. A follow-up of
    a concern the user dismissed in their calendar is recorded dismissed, with
    their reason (looked up only when the user has `dismissals`). The rows
    returned are made from what was inserted, not read back.
    """
    fresh = {intent.key: intent for intent in intents if intent.key not in recorded}
    if not fresh:
        return []
    tz = zone(scope.owner.timezone)
    rows = [_row(intent, intent.owner or scope.key, tz, at) for intent in fresh.values()]
    if dismissals:
        pending = [row for row in rows if row["state"] == FollowUpState.PENDING]
        dismissed = live_items.dismissed_concerns(session, (row["concern"] for row in pending))
        for row in pending:
            if row["concern"] in dismissed:
                row["state"], row["reason"] = FollowUpState.DISMISSED, dismissed[row["concern"]]
    return recording.insert_recorded(session, rows)
