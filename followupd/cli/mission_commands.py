"""`missions` and `show`: the missions as the store holds them."""

from __future__ import annotations

import click

from followupd.cli import render
from followupd.cli.app import App, pass_app, words
from followupd.domain.owner_scope import scope_of
from followupd.domain.states import MissionStatus
from followupd.store.models import Mission
from followupd.store.queries import mission_detail, mission_rows
from followupd.store.updates import not_found


@click.command()
@click.option(
    "--status", type=click.Choice(words(MissionStatus)), help="only missions in this status"
)
@click.option("--client", help="only this client's missions")
@click.option("--owner", "owner_key", metavar="KEY", help="only this owner's missions")
@pass_app
def missions(app: App, status: str | None, client: str | None, owner_key: str | None) -> None:
    """List missions with their open issues and unpaid invoices."""
    scope = scope_of(app.settings, app.owners(owner_key)[0].key) if owner_key else None
    with app.session(commit=False) as session:
        rows = mission_rows(session, MissionStatus(status) if status else None, client, scope)
    render.print_missions(rows, app.shown_owners)


@click.command()
@click.argument("mission")
@pass_app
def show(app: App, mission: str) -> None:
    """Show one mission: client, contact, invoices, issues, touchpoints."""
    with app.session(commit=False) as session:
        found = mission_detail(session, mission)
        if found is None:
            raise not_found(session, Mission.key, mission, f"no mission with key {mission!r}")
        render.print_mission(found, app.zone, app.shown_owners)
