"""The options of every rule, as written in ``[rules.NAME]``, with their documented defaults.

They live apart from the rules themselves because they are part of the config
file's schema: the config is validated before any rule runs.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import Literal

from pydantic import Field, StrictBool, StrictInt, field_validator

from followupd.config.types import StrictModel

# the words of followupd.domain.states' Audience and Severity: the config is read below
# the domain layer, so it spells them again (tests/test_states.py keeps them the same)
Audience = Literal["owner", "client"]
Severity = Literal["low", "medium", "high", "critical"]
STEP_NAME = r"^[a-z0-9][a-z0-9-]*$"


class Step(StrictModel):
    """One step of a stepped rule: when, relative to its anchor date, and to whom."""

    name: str = Field(pattern=STEP_NAME, description="part of the follow-up key")
    offset_days: StrictInt = Field(ge=-365, le=365, description="days after the anchor date")
    audience: Audience


class RuleOptions(StrictModel):
    enabled: StrictBool = True
    grace_days: StrictInt = Field(
        7, ge=0, le=366, description="how late a missed follow-up may fire"
    )


class SteppedRuleOptions(RuleOptions):
    steps: tuple[Step, ...]

    @field_validator("steps")
    @classmethod
    def _unique_names(cls, steps: tuple[Step, ...]) -> tuple[Step, ...]:
        names = [step.name for step in steps]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"step names must be unique, repeated: {', '.join(duplicates)}")
        return steps


class InvoiceDueOptions(SteppedRuleOptions):
    steps: tuple[Step, ...] = (
        Step(name="heads-up", offset_days=-3, audience="owner"),
        Step(name="nudge-1", offset_days=1, audience="client"),
        Step(name="nudge-2", offset_days=8, audience="client"),
        Step(name="nudge-3", offset_days=15, audience="client"),
    )
    promise_grace_days: StrictInt = Field(
        3,
        ge=0,
        le=60,
        description="working days after a promised payment date before the nudges go again",
    )


class DepositDueOptions(SteppedRuleOptions):
    steps: tuple[Step, ...] = (
        Step(name="request", offset_days=0, audience="client"),
        Step(name="nudge", offset_days=7, audience="client"),
        Step(name="call", offset_days=15, audience="owner"),
    )


class ContractMissingOptions(RuleOptions):
    days_before_start: StrictInt = Field(7, ge=0, le=365)
    every_days: StrictInt = Field(7, ge=1, le=365)


class EscalateByPhoneOptions(RuleOptions):
    severities: tuple[Severity, ...] = ("high", "critical")
    after_working_days: StrictInt = Field(1, ge=0, le=60)
    invoice_overdue_days: StrictInt = Field(30, ge=1, le=365)


class ClientNotInformedOptions(RuleOptions):
    after_working_days: StrictInt = Field(2, ge=0, le=60)
    every_working_days: StrictInt = Field(2, ge=1, le=60)


# the subjects of status updates the owner sends from their mail client; accents are
# optional (a subject is also matched with its accents taken off), case does not matter
STATUS_UPDATE_SUBJECTS = (
    r"point d['’ ]\s*(?:avancement|[eé]tape)|compte[- ]rendu|status update|progress report"
)


class StatusUpdateDueOptions(RuleOptions):
    every_days: StrictInt = Field(14, ge=1, le=365, description="default cadence of a mission")
    subject_pattern: str = Field(
        STATUS_UPDATE_SUBJECTS,
        description="a sent message whose subject matches it is a status update",
    )

    @field_validator("subject_pattern")
    @classmethod
    def _a_regular_expression(cls, pattern: str) -> str:
        try:
            compiled = _subjects(pattern)
        except re.error as error:
            raise ValueError(f"not a regular expression: {error}") from None
        if compiled.search(""):
            raise ValueError(
                "matches an empty subject: every message sent would count as a status update"
            )
        return pattern

    def is_status_update(self, subject: str) -> bool:
        """Whether `subject` matches `subject_pattern`: anywhere, whatever the case and accents."""
        compiled = _subjects(self.subject_pattern)
        subject = unicodedata.normalize("NFC", subject)
        return bool(compiled.search(subject) or compiled.search(_without_accents(subject)))


@lru_cache(maxsize=32)
def _subjects(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


def _without_accents(text: str) -> str:
    decomposed = unicodedata.normalize("NFD", text)
    return "".join(char for char in decomposed if not unicodedata.combining(char))


class CheckpointMeetingOptions(RuleOptions):
    open_issues: StrictInt = Field(2, ge=1, le=100)
    every_days: StrictInt = Field(30, ge=1, le=365)


class MissionCloseoutOptions(RuleOptions):
    after_working_days: StrictInt = Field(1, ge=0, le=60)


class OpenEndedMissionOptions(RuleOptions):
    max_months: StrictInt = Field(6, ge=1, le=120)
    every_days: StrictInt = Field(90, ge=1, le=730)


class NewYearGreetingsOptions(RuleOptions):
    lookback_months: StrictInt = Field(24, ge=1, le=240)
    last_day: StrictInt = Field(
        31, ge=1, le=31, description="no greetings after this day of January"
    )


class ClientRepliedOptions(RuleOptions):
    """A client answered a nudge: their other nudges of that subject wait, the owner is told.

    Off unless some owner reads a mailbox (``[imap]`` or ``[owners.imap]``):
    `Settings` turns it on then, unless ``enabled`` is written.
    """

    enabled: StrictBool = False
    pause_working_days: StrictInt = Field(
        7, ge=0, le=60, description="how long the remaining client nudges wait after a reply"
    )


class EmailBouncedOptions(RuleOptions):
    """An email of followupd bounced: the owner is asked to fix the contact's address.

    Off unless some owner reads a mailbox, as `ClientRepliedOptions`: only a
    mailbox tells bounces.
    """

    enabled: StrictBool = False


class RulesConfig(StrictModel):
    """``[rules]``: one table per rule; a name not listed here is a config error."""

    invoice_due: InvoiceDueOptions = InvoiceDueOptions()
    deposit_due: DepositDueOptions = DepositDueOptions()
    contract_missing: ContractMissingOptions = ContractMissingOptions()
    escalate_by_phone: EscalateByPhoneOptions = EscalateByPhoneOptions()
    client_not_informed: ClientNotInformedOptions = ClientNotInformedOptions()
    status_update_due: StatusUpdateDueOptions = StatusUpdateDueOptions()
    checkpoint_meeting: CheckpointMeetingOptions = CheckpointMeetingOptions()
    mission_closeout: MissionCloseoutOptions = MissionCloseoutOptions()
    open_ended_mission: OpenEndedMissionOptions = OpenEndedMissionOptions()
    new_year_greetings: NewYearGreetingsOptions = NewYearGreetingsOptions()
    client_replied: ClientRepliedOptions = ClientRepliedOptions()
    email_bounced: EmailBouncedOptions = EmailBouncedOptions()
