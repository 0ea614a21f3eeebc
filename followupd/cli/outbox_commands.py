"""`followupd outbox`: look at recorded follow-ups and act on them by hand."""

from __future__ import annotations

import click

from followupd.cli import render
from followupd.cli.app import App, pass_app, words
from followupd.domain.states import FollowUpState
from followupd.store import live_items
from followupd.store.outbox import by_hand, lookup


@click.group(invoke_without_command=True)
@click.pass_context
def outbox(context: click.Context) -> None:
    """Look at recorded follow-ups: states, attempts, errors; retry or cancel one.

    Alone, `outbox` lists them as `outbox list` does.
    """
    if context.invoked_subcommand is None:
        context.invoke(outbox_list)


@outbox.command("list")
@click.option("--state", "states", multiple=True, type=click.Choice(words(FollowUpState)))
@click.option("--rule", help="only this rule's follow-ups")
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
@pass_app
def outbox_list(app: App, states: tuple[str, ...], rule: str | None, limit: int) -> None:
    """The most recent follow-ups, newest first."""
    with app.session(commit=False) as session:
        rows = lookup.listing(session, states, rule, limit)
        items = live_items.of_concerns(session, (row.concern for row in rows))
        render.print_outbox(rows, app.zone, app.settings, bool(states or rule), items)


@outbox.command("show")
@click.argument("ident", metavar="ID")
@pass_app
def outbox_show(app: App, ident: str) -> None:
    """Everything about one follow-up (ID: its number or its key)."""
    with app.session(commit=False) as session:
        found = lookup.find(session, ident)
        item = live_items.of_concerns(session, [found.concern]).get(found.concern)
        render.print_followup(found, app.zone, app.settings, item)


@outbox.command("retry")
@click.argument("ident", metavar="ID")
@pass_app
def outbox_retry(app: App, ident: str) -> None:
    """Try a failed or dead follow-up again, on the next pass."""
    with app.session() as session:
        row, what = by_hand.retry(session, ident, app.now(), app.zone)
        click.echo(f"follow-up {row.id} ({row.key}): {what}")


@outbox.command("cancel")
@click.argument("ident", metavar="ID")
@pass_app
def outbox_cancel(app: App, ident: str) -> None:
    """Cancel a follow-up that has not gone yet."""
    with app.session() as session:
        row = by_hand.cancel(session, ident, app.now())
        click.echo(f"follow-up {row.id} ({row.key}): cancelled")
