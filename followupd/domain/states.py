"""The closed sets of words followupd stores and shows: one StrEnum each, named once.

The database stores their values (its CHECK constraints are built from these
enums, see followupd.store.models), the data file, the command line and the
JSON output use the same words (the README lists them). A member compares
equal to its word, so a row read back as a plain string matches it. Changing
a set means a migration; a value nothing writes is deleted, not kept "just in
case".
"""

from __future__ import annotations

from enum import StrEnum


class FollowUpState(StrEnum):
    """Where a follow-up is in the outbox: pending → sending → an outcome."""

    PENDING = "pending"  # waiting for its due time, or for its next attempt
    SENDING = "sending"  # claimed by a worker, under a lease
    SENT = "sent"
    FAILED = "failed"  # refused for good (a 5xx), or its template failed when recorded
    DEAD = "dead"  # every attempt failed
    CANCELLED = "cancelled"  # its reason went before it left, or cancelled by hand
    EXPIRED = "expired"  # its grace ended before it could leave
    SUPERSEDED = "superseded"  # a later period of its concern was due in the same pass
    DISMISSED = "dismissed"  # the user cancelled or deleted its calendar item


# still to deliver: the feed shows them whatever their age
ACTIVE_STATES = frozenset({FollowUpState.PENDING, FollowUpState.SENDING})
# an outcome, final unless retried by hand: housekeeping deletes them after the retention
FINISHED_STATES = frozenset(FollowUpState) - ACTIVE_STATES
# sent, or still to send: not called off (a letter, a call, a digest line that stands)
STANDING_STATES = ACTIVE_STATES | {FollowUpState.SENT}
# ended without being sent: their reason says why
UNSENT_STATES = FINISHED_STATES - {FollowUpState.SENT}
# failed for good: nothing retries them but `outbox retry`; counted as failed by the status line
FAILED_STATES = frozenset({FollowUpState.FAILED, FollowUpState.DEAD})
# not claimed by any worker yet: `outbox cancel` may still stop it
CANCELLABLE_STATES = frozenset({FollowUpState.PENDING})


class PassAction(StrEnum):
    """What one pass (`tick`) did to a follow-up; its state says where that left it."""

    RECORDED = "recorded"  # due in this pass's window: written to the outbox
    SENT = "sent"  # delivered: an email left, a calendar item was made or moved to it
    RETRYING = "retrying"  # an attempt failed; another comes later
    FAILED = "failed"  # failed for good (refused, every attempt spent, template broken)
    CANCELLED = "cancelled"  # not sent: its reason went, or the user dismissed its concern
    EXPIRED = "expired"  # not sent: its grace ended first
    SUPERSEDED = "superseded"  # not sent: a later period of its concern went instead
    CLOSED = "closed"  # its calendar item was completed or cancelled because its reason went


class Audience(StrEnum):
    """Whom a follow-up is for: the consultant (a task, a reminder) or the client (an email)."""

    OWNER = "owner"
    CLIENT = "client"


class Channel(StrEnum):
    """How a follow-up is delivered; the feed shows the calendar ones, it is no channel."""

    EMAIL = "email"
    CALENDAR = "calendar"


class CalendarState(StrEnum):
    """The CalDAV task or event written for a follow-up: still to do, or closed."""

    OPEN = "open"
    COMPLETED = "completed"  # done in the user's app, or closed by followupd as its reason went
    CANCELLED = "cancelled"  # cancelled in the user's app, or a meeting whose reason went


class MissionStatus(StrEnum):
    PROPOSED = "proposed"
    ACTIVE = "active"
    ON_HOLD = "on_hold"
    DISPUTED = "disputed"
    CLOSED = "closed"


class ClientKind(StrEnum):
    """Whom a client is, in law: a consumer never sees late-payment penalties (L441-10)."""

    BUSINESS = "business"
    CONSUMER = "consumer"


class Severity(StrEnum):
    """How serious an issue is; the escalation rule calls on the most serious ones."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class TouchpointKind(StrEnum):
    """What kind of contact with the client a touchpoint records."""

    STATUS_UPDATE = "status_update"
    CALL = "call"
    MEETING = "meeting"
    VISIT = "visit"
    EMAIL = "email"
    REVIEW = "review"


class CalendarObjectKind(StrEnum):
    """What the CalDAV sync made of an object of a synced calendar."""

    MISSION = "mission"  # an event describing a mission (see sources.caldav.conventions)
    MEETING = "meeting"  # other events: meetings with clients count as touchpoints
    TASK = "task"  # tasks (VTODO): those of followupd tell what the user did with them
    OTHER = "other"  # nothing followupd reads
    SKIPPED = "skipped"  # could not be read: its problem says why


class MailKind(StrEnum):
    """What the mailbox sync made of a message it read (its headers only)."""

    REPLY = "reply"  # from a client: a contact's address, or answering a followupd message
    SENT = "sent"  # from the owner to a contact, in the sent folder
    BOUNCE = "bounce"  # a delivery status notification (RFC 3464) of a followupd message
    AUTOMATIC = "automatic"  # an auto-reply or out-of-office (RFC 3834): no one answered
    OTHER = "other"  # nothing followupd acts on
