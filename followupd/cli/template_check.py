"""`check --offline`, the templates: render every user template once against sample data.

A mistake in a user template otherwise shows only when a follow-up needs
it, days later, as that follow-up's failure. The samples are real
follow-ups: the demo portfolio (`followupd init --demo`), in a throwaway
SQLite database, evaluated by every rule with the config's rule options
over the years its dates span, gives one follow-up for each rule, step and
case the rules have (a first nudge, a second, a call when the mission is
disputed…), with the very values a pass gives templates; a money message
is also rendered as if one, then two, emails of its thread had gone before
(the samples send nothing, and a later nudge reads differently from a first
one), and an invoice's messages after a promise to pay not kept. Invoice emails
the demo's dates do not lead to are added: a nudge listing several invoices
(group_by_client), a thank-you, and the owner's task for an amount below
`min_client_amount`. Each is rendered
in each language with each owner's templates; every user template it
reaches that fails is listed once, with its file and line. The owner's daily
digest is rendered too, with a few sample reminders (a call, two reminders of
one mission, one of no mission), and a client's reply to a nudge and a
bounce of it, as a mailbox sync records them. A user file no
sample reaches (a file that templates include, a step no rule has) is
compiled, so that its syntax errors show too.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import TemplateSyntaxError
from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from followupd.channels.email.digest import (
    DIGEST_STEP,
    DIGEST_TEMPLATE,
    DigestLine,
    LastSaid,
    digest_values,
)
from followupd.config.settings import Settings
from followupd.domain.business_calendar import BusinessCalendar
from followupd.domain.items import PROMISE_BROKEN
from followupd.domain.states import Audience, Channel, FollowUpState, MailKind
from followupd.rules import client_nudges
from followupd.rules.base import Evaluation
from followupd.rules.invoice_due import SMALL_AMOUNT, THANK_YOU
from followupd.rules.registry import RULES
from followupd.sources.files.importer import import_files
from followupd.store.db import Store
from followupd.store.models import Base, Contact, FollowUp, Invoice, MailMessage, Mission
from followupd.templates.loader import LOCALES, LazySubject, TemplateProblem, Templates

SAMPLE_DATA = Path(__file__).parents[1] / "resources" / "demo.toml"
# how many emails of its thread went before a money message, in the samples
EARLIER_EMAILS = (0, 1, 2)
# the years the demo's dates span, with the follow-ups they lead to (its invoices of 2025
# to the greetings of January 2027 and the repeats after them)
SAMPLE_START = datetime(2025, 1, 1, tzinfo=UTC)
SAMPLE_END = datetime(2028, 1, 1, tzinfo=UTC)
BLOCKS = ("subject", "text")  # what a follow-up renders
DIGEST_BLOCKS = ("subject", "text", "html")
DIGEST_DAY = date(2026, 12, 7)  # a Monday: the digest day of the sample reminders
MAIL_SAMPLES_AT = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)  # a nudge, a reply and a bounce
PROMISED = date(2026, 12, 10)  # the date a client promised to pay by, in the samples


@dataclass(frozen=True)
class Sample:
    """The values of one follow-up, and the template it is rendered with."""

    rule: str
    step: str  # the step its template is looked up by
    values: Mapping[str, Any]
    blocks: tuple[str, ...] = BLOCKS

    @property
    def case(self) -> str:
        if self.rule == DIGEST_TEMPLATE:
            return "the digest"
        shown = self.values.get("step", self.step)  # invoice_due's "call" for nudge-2, say
        return f"{self.rule} {shown}"


@dataclass(frozen=True)
class Finding:
    """A user template that fails: where, why, and with which sample."""

    file: str
    line: int | None
    error: str
    case: str = ""  # "invoice_due nudge-2 in fr"; empty for a syntax error

    @property
    def detail(self) -> str:
        """As `check` shows it: "line 3: the error (rendering invoice_due nudge-2 in fr)"."""
        where = f"line {self.line}: " if self.line else ""
        case = f" (rendering {self.case})" if self.case else ""
        return f"{where}{self.error}{case}"


@dataclass
class TemplateReport:
    directories: list[Path] = field(default_factory=list)
    files: int = 0
    findings: list[Finding] = field(default_factory=list)


def check_templates(settings: Settings) -> TemplateReport:
    """Every user template rendered once with sample data (none without user directories)."""
    report = TemplateReport()
    every = _user_directories(settings)
    if not every:
        return report
    findings: dict[tuple[str, int | None, str], Finding] = {}
    samples = _samples(settings)
    for dirs in every:
        templates = Templates(*dirs)
        reached: set[Path] = set()
        for sample in samples:
            for language in LOCALES:
                for found in _render(templates, dirs, sample, language, reached):
                    findings.setdefault((found.file, found.line, found.error), found)
        for path, name in _files(dirs):
            wrong = None if path in reached else _compile(templates, path, name)
            if wrong is not None:
                findings.setdefault((wrong.file, wrong.line, wrong.error), wrong)
    report.directories = list(dict.fromkeys(path for dirs in every for path in dirs))
    report.files = len({path for dirs in every for path, _ in _files(dirs)})
    report.findings = list(findings.values())
    return report


def _user_directories(settings: Settings) -> list[tuple[Path, ...]]:
    """Each owner's template directories, first found first, without repeats."""
    found: dict[tuple[Path, ...], None] = {}
    for entry in settings.owners:
        dirs = tuple(path for path in (entry.templates, settings.templates.directory) if path)
        if dirs:
            found[dirs] = None
    return list(found)


def _samples(settings: Settings) -> list[Sample]:
    """One follow-up for each rule, template step and case, from the demo portfolio."""
    found: dict[tuple[str, str, str], Sample] = {}
    calendar = BusinessCalendar(settings.business)
    owners = [entry.key for entry in settings.owners]
    with tempfile.TemporaryDirectory(prefix="followupd-samples-") as scratch:
        store = Store.open(make_url(f"sqlite:///{Path(scratch) / 'samples.db'}"))
        try:
            Base.metadata.create_all(store.engine)
            import_files(store, [SAMPLE_DATA], ZoneInfo(settings.owner.timezone), owners)
            with store.session() as session:
                _record_mail(session)
            with store.session() as session:
                evaluation = Evaluation(
                    session, settings, calendar, Templates(), SAMPLE_START, SAMPLE_END
                )
                for name, rule_class in sorted(RULES.items()):
                    rule = rule_class(getattr(settings.rules, name))
                    for entry in settings.owners:  # an owner may have steps of their own
                        for intent in rule.for_owner(entry).evaluate(evaluation):
                            if isinstance(intent.subject, LazySubject):
                                rule_name, step, values = intent.subject.source
                                sample = Sample(rule_name, step, values)
                                found.setdefault((rule_name, step, sample.case), sample)
        finally:
            store.close()
    every = [
        variant
        for sample in [*found.values(), *_invoice_samples(settings, list(found.values()))]
        for promised in _after_a_promise(sample)
        for variant in _after_earlier_emails(promised)
    ]
    return [*every, _digest_sample(settings)]


def _invoice_samples(settings: Settings, found: list[Sample]) -> list[Sample]:
    """The invoice emails the demo's dates do not reach: a nudge listing several invoices (at
    each level of firmness), a thank-you, and the task for an amount too small to nudge."""
    grouped = client_nudges.sample_values(settings.owner)
    samples = [
        Sample(client_nudges.RULE, client_nudges.GROUPED, {**grouped, "level": level})
        for level in (1, 2, 3)
    ]
    nudge = next((s for s in found if s.rule == client_nudges.RULE and "unpaid" in s.values), None)
    if nudge is not None:
        values = {**nudge.values, "minimum": nudge.values["unpaid"] + 1}
        samples += [
            Sample(client_nudges.RULE, THANK_YOU, {**values, "step": THANK_YOU}),
            Sample(client_nudges.RULE, SMALL_AMOUNT, {**values, "step": SMALL_AMOUNT}),
        ]
    return samples


def _record_mail(session: Session) -> None:
    """A client's reply to a nudge of the demo, and a bounce of it, as a mailbox sync records
    them: the samples of the rules a mailbox feeds (`client_replied`, `email_bounced`)."""
    query = (
        select(Invoice.number, Mission.id, Mission.owner, Contact.id, Contact.email)
        .join(Mission, Invoice.mission_id == Mission.id)
        .join(Contact, Mission.contact_id == Contact.id)
        .where(Contact.email.is_not(None))
        .order_by(Invoice.number)
        .limit(1)
    )
    found = session.execute(query).first()
    if found is None:
        return
    number, mission, owner, contact, email = found
    key = f"invoice_due:{number}:nudge-1"
    session.add(FollowUp(
        key=key, rule="invoice_due", step="nudge-1", subject_key=number, concern=key,
        mission_id=mission, contact_id=contact, audience=Audience.CLIENT, owner=owner,
        channel=Channel.EMAIL, recipient=email, language="fr", subject=f"Facture {number}",
        due_at=MAIL_SAMPLES_AT, state=FollowUpState.SENT, sent_at=MAIL_SAMPLES_AT,
        created_at=MAIL_SAMPLES_AT, updated_at=MAIL_SAMPLES_AT,
    ))  # fmt: skip
    later = MAIL_SAMPLES_AT + timedelta(days=1)
    for uid, kind in enumerate((MailKind.REPLY, MailKind.BOUNCE), 1):
        session.add(MailMessage(
            folder="INBOX", uidvalidity=1, uid=uid, fingerprint=f"sample-{kind}", date=later,
            sender=email, recipients="", subject=f"Re: Facture {number}", answers="",
            kind=kind, followup_key=key, delivery_status="5.1.1",
            diagnostic=f"550 5.1.1 <{email}>: user unknown", created_at=later,
        ))  # fmt: skip


def _after_earlier_emails(sample: Sample) -> list[Sample]:
    """`sample`, and, for a message told how many emails went before it, each such count."""
    if "earlier_emails" not in sample.values:
        return [sample]
    return [
        replace(sample, values={**sample.values, "earlier_emails": count})
        for count in EARLIER_EMAILS
    ]


def _after_a_promise(sample: Sample) -> list[Sample]:
    """`sample`, and, for an invoice's message told of a promise to pay, one after a promise
    not kept, with the owner's call task it gives (the demo promises nothing)."""
    if sample.values.get("promised", False) is not None or sample.rule != "invoice_due":
        return [sample]
    promised = {**sample.values, "promised": PROMISED}
    broken = Sample(sample.rule, PROMISE_BROKEN, {**promised, "step": PROMISE_BROKEN})
    return [sample, replace(sample, values=promised), broken]


def _digest_sample(settings: Settings) -> Sample:
    """The owner's digest for a Monday: a call, two reminders of a mission, one of none."""
    zone = ZoneInfo(settings.owner.timezone)

    def at(day: int, hour: int) -> datetime:
        return datetime(2026, 12, day, hour, tzinfo=zone)

    def reminder(key: str, summary: str, due_at: datetime, **fields: Any) -> DigestLine:
        rule, step = key.split(":")[0], key.split(":")[-1]
        return DigestLine(key, rule, step, step == "call", summary, due_at, **fields)

    audit = {"mission_key": "acme-audit", "mission_title": "Audit du SI", "client_name": "ACME SA"}
    lines = [
        reminder(
            "escalate_by_phone:I-1:call",
            "Appeler Jeanne Dupont — serveur de recette indisponible",
            at(7, 9),
            contact_name="Jeanne Dupont",
            contact_phone="+33 6 12 34 56 78",
            last_said=LastSaid("call", at(2, 15), "Correctif promis pour vendredi"),
            **audit,
        ),
        reminder(
            "invoice_due:F-1:heads-up",
            "Prévenir Jeanne Dupont — facture F-1 à échéance le 10 décembre 2026",
            at(4, 9),
            **audit,
        ),
        reminder(
            "status_update_due:acme-audit:default",
            "Envoyer le point d'avancement à Jeanne Dupont — Audit du SI",
            at(7, 9),
            **audit,
        ),
        reminder("new_year_greetings:jdupont:default", "Vœux à Jeanne Dupont", at(7, 9)),
    ]
    values = digest_values(settings.owner, DIGEST_DAY, lines)
    return Sample(DIGEST_TEMPLATE, DIGEST_STEP, values, DIGEST_BLOCKS)


def _render(
    templates: Templates, dirs: tuple[Path, ...], sample: Sample, language: str, reached: set[Path]
) -> Iterator[Finding]:
    """Render `sample` in `language` if a user template of `dirs` is the one it uses."""
    try:
        template = templates.template(language, sample.rule, sample.step)
    except TemplateProblem as problem:  # a syntax error
        yield Finding(problem.file, problem.line, problem.detail)
        return
    except LookupError:  # no template for it in this language at all
        return
    path = Path(template.filename or "")
    if not any(path.is_relative_to(directory) for directory in dirs):
        return  # a shipped template
    reached.add(path)
    for block in sample.blocks:
        try:
            templates.render(language, sample.rule, sample.step, block, sample.values)
        except TemplateProblem as problem:
            case = f"{sample.case} in {language}"
            yield Finding(problem.file, problem.line, problem.detail, case)
            return


def _files(dirs: tuple[Path, ...]) -> Iterator[tuple[Path, str]]:
    """Every template file in `dirs`, with the name it is loaded by."""
    for directory in dirs:
        for path in sorted(directory.rglob("*.j2")):
            yield path, path.relative_to(directory).as_posix()


def _compile(templates: Templates, path: Path, name: str) -> Finding | None:
    """A syntax error in the file at `path`, if there is one."""
    try:
        templates.env.parse(path.read_text(encoding="utf-8"), name, str(path))
    except TemplateSyntaxError as error:
        return Finding(str(path), error.lineno, error.message or str(error))
    except (OSError, UnicodeDecodeError) as error:
        return Finding(str(path), None, f"cannot be read: {error}")
    return None
