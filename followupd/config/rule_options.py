"""The options of every rule, as written in ``[rules.NAME]``, with their documented defaults.

They live apart from the rules themselves because they are part of the config
file's schema: the config is validated before any rule runs.
"""

from __future__ import annotations

import re
import unicodedata
from decimal import Decimal
from functools import lru_cache
from typing import Annotated, Literal

from pydantic import (
    Field,
    StrictBool,
    StrictInt,
    StringConstraints,
    field_validator,
    model_validator,
)

from followupd.config.types import StrictModel

# the words of followupd.domain.states' Audience and Severity: the config is read below
# the domain layer, so it spells them again (tests/test_states.py keeps them the same)
Audience = Literal["owner", "client"]
Severity = Literal["low", "medium", "high", "critical"]
STEP_NAME = r"^[a-z0-9][a-z0-9-]*$"
# a ladder profile's name: what a client's `profile` says, and fits its column
ProfileName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$")]


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


def _unique_names(steps: tuple[Step, ...]) -> tuple[Step, ...]:
    names = [step.name for step in steps]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"step names must be unique, repeated: {', '.join(duplicates)}")
    return steps


class SteppedRuleOptions(RuleOptions):
    steps: tuple[Step, ...]

    @field_validator("steps")
    @classmethod
    def _unique_steps(cls, steps: tuple[Step, ...]) -> tuple[Step, ...]:
        return _unique_names(steps)


# the templates of invoice_due that are not steps: a step of that name would take them
INVOICE_TEMPLATES = frozenset({"call", "grouped", "small-amount", "thank-you"})


def _no_invoice_template(steps: tuple[Step, ...]) -> tuple[Step, ...]:
    taken = sorted({step.name for step in steps} & INVOICE_TEMPLATES)
    if taken:
        raise ValueError(
            f"{', '.join(taken)}: the name of another invoice message (its template); "
            "choose another step name"
        )
    return steps


class LadderProfile(StrictModel):
    """``[rules.invoice_due.profiles.NAME]``: the ladder of the clients whose profile is NAME."""

    steps: tuple[Step, ...]

    @field_validator("steps")
    @classmethod
    def _unique_steps(cls, steps: tuple[Step, ...]) -> tuple[Step, ...]:
        return _no_invoice_template(_unique_names(steps))


# What `followupd import` does with an invoice due beyond the legal cap on payment terms
# (France, between professionals: L441-10 I; followupd.domain.payment_terms)
PaymentTermsCheck = Literal["warn", "error", "off"]


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
    group_by_client: StrictBool = Field(
        True, description="one email a day per contact, listing every invoice at a step"
    )
    thank_you: StrictBool = Field(
        False, description="a thank-you email when an invoice nudged by email is paid"
    )
    min_client_amount: Decimal = Field(
        Decimal(0),
        ge=0,
        allow_inf_nan=False,
        description="below this unpaid amount (the mission's currency), an owner task, no email",
    )
    payment_terms_check: PaymentTermsCheck = Field(
        "warn",
        description="an invoice due beyond the legal cap is imported with a warning (warn), "
        "refused (error), or not checked (off)",
    )
    end_of_month_terms: StrictBool = Field(
        False,
        description='your contracts expressly agree "45 jours fin de mois": the cap is '
        "that date when later than 60 days from the issue date",
    )
    profiles: dict[ProfileName, LadderProfile] = Field(
        default_factory=dict, description="other ladders, chosen by a client's `profile`"
    )

    @field_validator("steps")
    @classmethod
    def _not_another_message(cls, steps: tuple[Step, ...]) -> tuple[Step, ...]:
        return _no_invoice_template(steps)

    @field_validator("min_client_amount", mode="before")
    @classmethod
    def _a_number(cls, value: object) -> object:
        if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
            raise ValueError("must be a number (an amount in the mission's currency)")
        return Decimal(str(value))

    def ladder(self, profile: str | None) -> tuple[Step, ...]:
        """The steps of a client of `profile`: its profile's, else the rule's own."""
        found = self.profiles.get(profile) if profile else None
        return found.steps if found is not None else self.steps

    def ladders(self) -> list[tuple[Step, ...]]:
        """Every ladder: the rule's own steps, then each profile's."""
        return [self.steps, *(profile.steps for profile in self.profiles.values())]


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


class LimitationAlertOptions(RuleOptions):
    """An unpaid invoice nears the end of its limitation period: one task to the owner.

    Its grace is not `grace_days`: an alert missed while followupd was down
    fires until the limit itself, as greetings do until their last day.
    """

    months_ahead: StrictInt = Field(
        6, ge=1, le=12, description="how many months before the limit the owner is alerted"
    )


class FormalNoticeOptions(RuleOptions):
    """An invoice still unpaid well after the call: the owner gets the formal notice to send."""

    after_days: StrictInt = Field(
        45, ge=1, le=365, description="days past due (after escalate_by_phone's call at 30)"
    )
    deadline_days: StrictInt = Field(
        8, ge=8, le=15, description="days the client is given to pay, from the letter's receipt"
    )
    cite_after_days: StrictInt = Field(
        30,
        ge=1,
        le=365,
        description="the client's other invoices this late go in the same letter, and get none"
        " of their own",
    )
    grace_days: StrictInt = Field(
        30, ge=0, le=366, description="how late a missed formal notice may still be raised"
    )

    @model_validator(mode="after")
    def _cite_before_the_letter(self) -> FormalNoticeOptions:
        if self.cite_after_days > self.after_days:
            raise ValueError(
                f"cite_after_days ({self.cite_after_days}) is after after_days "
                f"({self.after_days}): a letter cites at least its own invoice"
            )
        return self


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
    limitation_alert: LimitationAlertOptions = LimitationAlertOptions()
    formal_notice: FormalNoticeOptions = FormalNoticeOptions()
    client_replied: ClientRepliedOptions = ClientRepliedOptions()
    email_bounced: EmailBouncedOptions = EmailBouncedOptions()
