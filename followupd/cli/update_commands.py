"""Quick updates from a terminal: an invoice paid or promised, a problem opened or resolved,
a contact made."""

from __future__ import annotations

from pathlib import Path

import click

from followupd.cli.app import App, pass_app, words
from followupd.cli.letters import formal_notice_file
from followupd.cli.output_file import OutputFile
from followupd.domain.business_calendar import BusinessCalendar
from followupd.domain.states import (
    Severity,
    TouchpointKind,
)
from followupd.rules.promises import promise_end
from followupd.store import updates


@click.group()
def invoice() -> None:
    """Quick updates on invoices."""


@invoice.command("paid")
@click.argument("number")
@click.option("--on", "on", metavar="DATE", help="the day it was paid (default: today)")
@pass_app
def invoice_paid(app: App, number: str, on: str | None) -> None:
    """Record invoice NUMBER as paid in full: its nudges stop."""
    day = app.day(on)
    with app.session() as session:
        paid, previous = updates.mark_invoice_paid(session, number, day)
        was = f" (was {previous})" if previous and previous != day else ""
        click.echo(f"invoice {paid.number}: paid on {day}{was}")


@invoice.command("letter")
@click.argument("number")
@click.option(
    "--out",
    type=OutputFile(),
    help="the PDF file to write (default: its name, in the current directory)",
)
@click.option(
    "--today",
    is_flag=True,
    help="a new letter dated today, from the data as it stands, not the task's",
)
@pass_app
def invoice_letter(app: App, number: str, out: Path | None, today: bool) -> None:
    """Write the formal notice to pay of invoice NUMBER as a PDF, to print and send by
    registered mail: the one of its formal_notice task, else (or with --today) one made
    as of today."""
    with app.session(commit=False) as session:
        letter = formal_notice_file(session, app.settings, number, app.now(), fresh=today)
    path = out if out is not None else Path.cwd() / letter.name
    path.write_bytes(letter.data)
    click.echo(f"invoice {number}: formal notice written to {path} ({letter.source})")


@invoice.command("promised")
@click.argument("number")
@click.option("--on", "on", metavar="DATE", help="the day the client promised to pay by")
@click.option("--clear", is_flag=True, help="withdraw the promise: the nudges go on as before")
@pass_app
def invoice_promised(app: App, number: str, on: str | None, clear: bool) -> None:
    """Record that the client promised to pay invoice NUMBER by DATE: its nudges wait.

    They go again ``[rules.invoice_due] promise_grace_days`` working days after
    DATE (3 by default) if the invoice is still unpaid, recalling the promise,
    and you get a task to call. A DATE already past is taken, with a warning:
    the promise may be broken already. ``--clear`` withdraws a promise.
    """
    if clear == (on is not None):
        raise click.UsageError("give --on DATE, or --clear to withdraw the promise")
    by = None if on is None else app.day(on)
    today = app.day(None)
    with app.session() as session:
        promised, previous = updates.promise_invoice(session, number, by)
        was = f" (was {previous})" if previous and previous != by else ""
        if by is None:
            said = (
                f"promise to pay by {previous} withdrawn" if previous else "no promise to withdraw"
            )
            click.echo(f"invoice {promised.number}: {said}")
            return
        calendar = BusinessCalendar(app.settings.business)
        until = promise_end(app.settings, calendar, promised.mission.owner, by)
        click.echo(
            f"invoice {promised.number}: promised by {by}{was}; its nudges wait until {until}"
        )
    if by < today:
        broken = "broken already" if until <= today else f"broken on {until} if still unpaid"
        click.echo(f"warning: {by} is past: the promise is {broken}", err=True)


@click.group()
def issue() -> None:
    """Open, resolve and mark problems on missions."""


@issue.command("open")
@click.argument("mission")
@click.argument("summary")
@click.option(
    "--severity",
    type=click.Choice(words(Severity)),
    default=Severity.MEDIUM.value,
    show_default=True,
)
@click.option("--key", help="the issue's key (default: MISSION-N)")
@click.option("--at", "at", metavar="TIME", help="when it was found (default: now)")
@pass_app
def issue_open(
    app: App, mission: str, summary: str, severity: str, key: str | None, at: str | None
) -> None:
    """Open a problem on MISSION, described by SUMMARY."""
    opened = app.instant(at)
    with app.session() as session:
        found = updates.open_issue(session, mission, summary, Severity(severity), opened, key)
        click.echo(f"issue {found.key}: opened on {mission} ({severity})")


@issue.command("resolve")
@click.argument("key")
@click.option("--at", "at", metavar="TIME", help="when it was resolved (default: now)")
@pass_app
def issue_resolve(app: App, key: str, at: str | None) -> None:
    """Mark issue KEY resolved: its escalation stops."""
    when = app.instant(at)
    with app.session() as session:
        updates.resolve_issue(session, key, when)
        click.echo(f"issue {key}: resolved at {when.astimezone(app.zone).isoformat()}")


@issue.command("informed")
@click.argument("key")
@click.option("--at", "at", metavar="TIME", help="when the client was told (default: now)")
@pass_app
def issue_informed(app: App, key: str, at: str | None) -> None:
    """Record that the client has been told about issue KEY."""
    when = app.instant(at)
    with app.session() as session:
        updates.mark_issue_informed(session, key, when)
        click.echo(f"issue {key}: client informed at {when.astimezone(app.zone).isoformat()}")


@click.command()
@click.argument("mission")
@click.option("--kind", type=click.Choice(words(TouchpointKind)), required=True)
@click.option("--contact", help="the contact's key")
@click.option("--at", "at", metavar="TIME", help="when it happened (default: now)")
@click.option("--note", help="what was said, shown in later reminders")
@pass_app
def touch(
    app: App, mission: str, kind: str, contact: str | None, at: str | None, note: str | None
) -> None:
    """Record a contact with the client on MISSION (a call, a meeting, a status update…)."""
    when = app.instant(at)
    with app.session() as session:
        _, new = updates.record_touchpoint(
            session, mission, TouchpointKind(kind), when, contact, note
        )
        local = when.astimezone(app.zone).isoformat(timespec="minutes")
        state = "recorded" if new else "already recorded"
        click.echo(f"{kind} on {mission} at {local}: {state}")
