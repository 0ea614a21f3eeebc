"""`sync`: reading the calendars and the mailbox into the store, nothing else.

Apart from `plan` and `tick`, so that it loads neither the rules nor their
templates: a sync after one change is a short command, its start-up most of it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from followupd.cli import render
from followupd.cli.app import App, pass_app
from followupd.domain.owner_scope import has_calendars, has_mailboxes
from followupd.errors import EX_UNAVAILABLE

if TYPE_CHECKING:  # importing it would load the IMAP client
    from followupd.sources.imap.sync import MailSyncReport


@click.command()
@click.option("--now", "now_text", metavar="TIME", help="sync as if the clock read TIME")
@pass_app
def sync(app: App, now_text: str | None) -> None:
    """Read missions, meetings and completed tasks from the calendars, and the mailbox."""
    calendars, mailboxes = has_calendars(app.settings), has_mailboxes(app.settings)
    if not calendars and not mailboxes:
        raise click.UsageError(
            "no [caldav] or [imap] section in the config: there is nothing to sync"
        )
    at = app.instant(now_text)
    failed = False
    store = app.store()
    try:
        if calendars:
            with app.lasting():
                from followupd.sources.caldav.sync import sync_calendars

            with render.sync_progress() as progress:
                report = sync_calendars(store, app.settings, at, progress)
            render.print_sync_report(report)
            failed = bool(report.failed)
        if mailboxes:
            with app.lasting():
                from followupd.sources.imap.sync import sync_mailboxes

            mail = sync_mailboxes(store, app.settings, at, environ=app.environ)
            render.print_mail_report(mail)
            say_mail_problems(mail)
            failed = failed or bool(mail.failed)
    finally:
        store.close()
    if failed:  # what could be synced was; the rest is tried again next time
        raise click.exceptions.Exit(EX_UNAVAILABLE)


def say_mail_problems(report: MailSyncReport) -> None:
    """On stderr: what a mailbox sync could not read (tried again next time).

    A message skipped is not repeated here: the sync logs it as a warning,
    which the command line writes on stderr already.
    """
    for line in report.failed:
        click.echo(f"followupd: {line}", err=True)
