"""`plan` and `tick`: what would be due, one whole pass (`sync` is in sync_commands)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import click
from sqlalchemy.orm import Session

from followupd.cli import json_output, render
from followupd.cli.app import App, pass_app
from followupd.cli.sync_commands import say_mail_problems
from followupd.domain.owner_scope import has_calendars, has_mailboxes
from followupd.domain.states import FAILED_STATES, FollowUpState, PassAction
from followupd.engine import evaluation
from followupd.errors import (
    EX_CONFIG,
    EX_FOLLOWUPS_FAILED,
    EX_UNAVAILABLE,
)
from followupd.rules.registry import enabled_rules
from followupd.store import live_items
from followupd.store.coordination import worker_name
from followupd.store.outbox import recording
from followupd.store.outbox.orphans import release_orphans

if TYPE_CHECKING:  # importing them would load the CalDAV client stack, SMTP and iCalendar
    from followupd.delivery.deliverer import Deliverer, DeliveryReport
    from followupd.sources.caldav.read_back import ReadBack

PLAN_DAYS = 30


@click.command()
@click.option("--from", "start", metavar="TIME", help="start of the window (default: now)")
@click.option("--to", "end", metavar="TIME", help="end of the window (default: 30 days later)")
@click.option("--json", "as_json", is_flag=True, help='one JSON object: {"now", "followups"}')
@pass_app
def plan(app: App, start: str | None, end: str | None, as_json: bool) -> None:
    """List the follow-ups that become due in a window; changes nothing."""
    begin = app.instant(start)
    finish = app.instant(end) if end else begin + timedelta(days=PLAN_DAYS)
    if finish < begin:
        raise click.BadParameter("--to is before --from")
    rules = enabled_rules(app.settings.rules, app.settings.owners)
    # what it reads and works out lasts till the command ends: never collected (App.lasting)
    with app.session(commit=False) as session, app.lasting():
        intents = evaluation.plan(session, app.settings, rules, begin, finish)
        if as_json:
            followups = json_output.intents_json(session, intents, app.zone, app.settings)
            click.echo(json_output.render(app.now(), app.zone, followups))
        else:
            render.print_intents(intents, app.zone, app.settings)


@click.command(
    epilog=(
        f"Exit status: 0 when the pass went through; {EX_FOLLOWUPS_FAILED} when a follow-up "
        "became failed or dead in it (it will not be tried again: see `followupd outbox "
        f"list`), even if a server was also unreachable; {EX_UNAVAILABLE} when a server "
        "(SMTP, CalDAV, the database) was unreachable and what it concerned waits for a "
        f"retry; {EX_CONFIG} an invalid configuration; 1 anything else."
    )
)
@click.option("--now", "now_text", metavar="TIME", help="run as if the clock read TIME")
@click.option("--dry-run", is_flag=True, help="show what the pass would do; record nothing")
@click.option("--json", "as_json", is_flag=True, help='one JSON object: {"now", "followups"}')
@pass_app
def tick(app: App, now_text: str | None, dry_run: bool, as_json: bool) -> None:
    """One full pass as if the clock read --now: sync the calendars and the mailbox, evaluate,
    deliver."""
    at = app.instant(now_text)
    rules = enabled_rules(app.settings.rules, app.settings.owners)
    unavailable = False
    actions: dict[str, PassAction] = {}
    if has_calendars(app.settings) and not dry_run:
        from followupd.sources.caldav.sync import sync_calendars

        store = app.store()
        try:
            synced = sync_calendars(store, app.settings, at)
        finally:
            store.close()
        for failure in synced.failed:  # what is stored is still worth a pass
            click.echo(f"followupd: {failure}", err=True)
        if any(synced.user.counts):  # the calendar as a remote control: said, as sync says it
            click.echo(f"followupd: {render.user_actions(synced.user)}", err=True)
        unavailable = bool(synced.failed)
        actions.update(read_back_actions(synced.user))
    if has_mailboxes(app.settings) and not dry_run:
        from followupd.sources.imap.sync import sync_mailboxes

        store = app.store()
        try:
            mail = sync_mailboxes(store, app.settings, at, environ=app.environ)
        finally:
            store.close()
        say_mail_problems(mail)  # what is stored is still worth a pass
        if mail.actions.changed:  # the mailbox read: said, as sync says it
            click.echo(f"followupd: in the mailbox: {mail.actions.summary()}", err=True)
        actions.update(dict.fromkeys(mail.actions.bounced, PassAction.FAILED))
        unavailable = unavailable or bool(mail.failed)
    with app.session(commit=not dry_run) as session:
        actions.update(evaluated_actions(evaluation.evaluate(session, app.settings, rules, at)))
        if dry_run:
            print_outcome(session, actions, at, app, as_json)
            return
    store = app.store()
    try:
        with store.session() as session:  # a killed tick's or daemon's claims: now, not in 5 min
            for dead, count in release_orphans(session, at).items():
                click.echo(f"followupd: took back {count} follow-ups claimed by {dead}, "
                           "which died", err=True)  # fmt: skip
        import asyncio  # with Deliverer, SMTP and iCalendar: loaded by `tick`, not `plan`

        from followupd.delivery.deliverer import Deliverer

        worker = worker_name()
        delivered = asyncio.run(deliver(Deliverer(store, app.settings, worker), at))
        actions.update(delivered_actions(delivered))
        with store.session() as session:
            shown = print_outcome(session, actions, at, app, as_json)
    finally:
        store.close()
    failed = [row.key for row in shown if row.state in FAILED_STATES]
    if failed:  # nothing will try them again: a person must look, whatever else happened
        click.echo(f"followupd: {len(failed)} follow-up(s) failed in this pass, see "
                   f"`followupd outbox show KEY`: {', '.join(failed)}", err=True)  # fmt: skip
        raise click.exceptions.Exit(EX_FOLLOWUPS_FAILED)
    if delivered.retrying or unavailable:
        raise click.exceptions.Exit(EX_UNAVAILABLE)


async def deliver(deliverer: Deliverer, at: datetime) -> DeliveryReport:
    """Send what is due, then close the calendar items whose reason went."""
    report = await deliverer.run(at)
    await deliverer.close_vanished(at, report)
    return report


def read_back_actions(did: ReadBack) -> dict[str, PassAction]:
    """The follow-ups whose calendar item the sync found completed or dismissed by the user.

    Their item is closed; a snoozed one is left out: the pass changed nothing
    of it (the stderr line and `outbox list` say it).
    """
    return dict.fromkeys([*did.completed, *did.dismissed], PassAction.CLOSED)


def evaluated_actions(report: evaluation.PassReport) -> dict[str, PassAction]:
    """What the evaluation did, by follow-up key.

    A follow-up of a concern the user dismissed is recorded already ended: the
    pass cancelled it.
    """
    actions = {
        row.key: PassAction.CANCELLED
        if row.state == FollowUpState.DISMISSED
        else PassAction.RECORDED
        for row in report.recorded
    }
    actions.update(dict.fromkeys(report.cancelled, PassAction.CANCELLED))
    actions.update(dict.fromkeys(report.failed, PassAction.FAILED))
    return actions


def delivered_actions(report: DeliveryReport) -> dict[str, PassAction]:
    """What the delivery did, by follow-up key; later steps of the pass win.

    A follow-up only held back (a closed send window, a snooze) is left out:
    the pass changed nothing about it, unless it was recorded in that pass.
    A dismissed one was cancelled by the pass, its state says why.
    """
    actions = dict.fromkeys(report.sent, PassAction.SENT)
    for keys, action in (
        (report.retrying, PassAction.RETRYING),
        (report.failed, PassAction.FAILED),
        (report.dead, PassAction.FAILED),
        (report.cancelled, PassAction.CANCELLED),
        (report.dismissed, PassAction.CANCELLED),
        (report.expired, PassAction.EXPIRED),
        (report.superseded, PassAction.SUPERSEDED),
        (report.closed, PassAction.CLOSED),
    ):
        actions.update(dict.fromkeys(keys, action))
    return actions


def print_outcome(
    session: Session, actions: dict[str, PassAction], at: datetime, app: App, as_json: bool
) -> Sequence[render.Counted]:
    """The follow-ups this pass touched as they stand, as a table or as JSON; and them.

    Past a table's rows, their counts: only the rule and state of each are read.
    """
    if not as_json:
        counted = recording.states(session, sorted(actions))
        if len(counted) > render.TABLE_ROWS:
            render.print_followup_counts(counted, actions)
            return counted
    rows = recording.load(session, sorted(actions))
    items = live_items.of_concerns(session, (row.concern for row in rows))
    calendar_says = {
        row.key: did
        for row in rows
        if (item := items.get(row.concern)) is not None
        and item.followup_key == row.key
        and (did := render.item_said(item, app.zone))
    }
    if as_json:
        shown = json_output.followups_json(
            session, rows, app.zone, app.settings, actions, calendar_says
        )
        click.echo(json_output.render(at, app.zone, shown))
    else:
        render.print_followups(rows, app.zone, app.settings, actions, calendar_says)
    return rows
