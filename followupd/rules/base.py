"""The rule contract: what a rule is given, what it returns, and how it is configured.

A rule looks at the whole store with a few set-based queries and yields the
follow-ups (intents) whose due time falls in a window; the engine records
them. A rule also says, for pending follow-ups it made earlier, which ones
have lost their reason (invoice paid, issue resolved…) so they are cancelled.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar, Generic, TypeVar

from sqlalchemy import ColumnElement, true
from sqlalchemy.orm import Session

from followupd.config.owners import Owner, OwnerEntry
from followupd.config.rule_options import RuleOptions
from followupd.config.settings import Settings
from followupd.domain.business_calendar import BusinessCalendar
from followupd.domain.formal_notice import FormalNotice
from followupd.domain.owner_scope import Scope
from followupd.domain.states import Audience, Channel
from followupd.rules.parties import Party
from followupd.store.outbox.rows import PendingRow
from followupd.templates.loader import LazySubject, Templates

OptionsT = TypeVar("OptionsT", bound=RuleOptions, covariant=True)


@dataclass(frozen=True)
class Intent:
    """A follow-up a rule wants: who gets what, when, through which channel.

    `key` is stable across evaluations (rule, subject record, step, period) and
    is what makes a follow-up happen at most once. `expires_at` ends its grace:
    recorded later than that, it is `expired` and never sent.
    """

    key: str
    rule: str
    step: str
    subject_key: str
    audience: Audience
    channel: Channel
    recipient: str | None
    language: str
    subject: LazySubject | str
    due_at: datetime
    expires_at: datetime
    mission_id: int | None = None
    contact_id: int | None = None
    thread_key: str | None = None
    owner: str | None = None  # the owner's key (`Evaluation.whose`); None: the scope's
    # what it is about whatever the period (`Rule.concern_of`): one calendar item each
    concern: str = ""
    # a letter the owner sends themselves, rendered as a PDF when the follow-up is recorded
    # and attached to its calendar item (the formal notice to pay)
    letter: FormalNotice | None = None


@dataclass(frozen=True)
class Evaluation:
    """What a rule may look at: the store, the settings, the calendar, and a window.

    Rules yield the intents whose `due_at` falls in ``[start, end]``; they never
    read the clock. With several owners, the engine evaluates each group of
    owners alike (`evaluation_scopes`) in turn: a rule then looks only at the
    missions `owns` lets through, takes the zone, language and country of
    `owner`, and writes to and for the owner of each row (`whose`).

    `recorded`, when set, holds keys of the rule's follow-ups already in the
    outbox (the engine's pass, which records only what is new; `plan`, which
    lists everything, leaves it None). A rule may then leave out an intent
    keyed in it, and not read what would only make such intents: recording
    one would change nothing. It must still yield the same new intents.

    `due`, when set, collects keys the rule found due in the window, recorded
    or not, and that its `vanished` would not cancel, the data being what the
    rule just read: the engine's cancellation check leaves them out.
    """

    session: Session
    settings: Settings
    calendar: BusinessCalendar
    templates: Templates
    start: datetime
    end: datetime
    scope: Scope | None = None  # None: the first (or only) owner, and every mission
    recorded: AbstractSet[str] | None = None
    due: set[str] | None = None

    @property
    def owner(self) -> Owner:
        return self.scope.owner if self.scope is not None else self.settings.owner

    def whose(self, key: str | None) -> OwnerEntry:
        """The owner of a row this evaluation owns, whose owner column is `key`."""
        if self.scope is not None:
            return self.scope.member(key)
        return self.settings.owners[0]

    def owns(self, column: Any) -> ColumnElement[bool]:
        """Whether a row whose owner is `column` (``Mission.owner``) is this evaluation's."""
        return self.scope.holds(column) if self.scope is not None else true()


class Rule(ABC, Generic[OptionsT]):
    """One follow-up rule. Subclasses set `name` and are listed in `rules.registry`."""

    name: ClassVar[str]
    # A reminder that repeats, period after period, about one subject: one calendar
    # item for all its periods, updated in place, and one delivery when a catch-up
    # finds several periods due at once.
    repeats: ClassVar[bool] = False

    def __init__(self, options: OptionsT) -> None:
        self.options = options

    def intent(
        self,
        party: Party,
        due_at: datetime,
        *,
        key: str,
        step: str,
        subject_key: str,
        subject: LazySubject | str,
        mission_id: int | None = None,
        contact_id: int | None = None,
        thread_key: str | None = None,
        owner: str | None = None,
    ) -> Intent:
        """An intent of this rule for `party`, due at `due_at`, with this rule's grace.

        `owner` is the key of the owner it is for (`Evaluation.whose`).
        """
        return Intent(
            key=key,
            rule=self.name,
            step=step,
            subject_key=subject_key,
            audience=party.audience,
            channel=party.channel,
            recipient=party.recipient,
            language=party.language,
            subject=subject,
            due_at=due_at,
            expires_at=due_at + self.grace,
            mission_id=mission_id,
            contact_id=contact_id,
            thread_key=thread_key,
            owner=owner,
            concern=self.concern_of(key, subject_key),
        )

    def concern_of(self, key: str, subject_key: str) -> str:
        """What a follow-up is about: ``<rule>:<subject>`` when the rule repeats, else its key."""
        return f"{self.name}:{subject_key}" if self.repeats else key

    @property
    def grace(self) -> timedelta:
        """The longest time after its due time that a follow-up of this rule may still fire."""
        return timedelta(days=self.options.grace_days)

    def for_owner(self, owner: OwnerEntry) -> Rule[OptionsT]:
        """This rule with the owner's ``[owners.rules.NAME]`` options merged in, key by key."""
        override = owner.rule_overrides.get(self.name)
        return type(self)(self.options.model_copy(update=override)) if override else self

    @abstractmethod
    def evaluate(self, evaluation: Evaluation) -> Iterator[Intent]:
        """The intents due in the evaluation's window."""

    @abstractmethod
    def vanished(self, session: Session, pending: Sequence[PendingRow]) -> dict[str, str]:
        """Of this rule's `pending` follow-ups, those whose reason has gone: key -> why."""
