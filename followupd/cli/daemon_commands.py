"""`run` and `feed`: the daemon, and where to subscribe to its feed."""

from __future__ import annotations

import logging
import socket

import click

from followupd.channels.feed.tokens import ensure_token
from followupd.cli.app import App, pass_app
from followupd.daemon import logs
from followupd.daemon.service import run_service


@click.command()
@pass_app
def run(app: App) -> None:
    """Run the daemon: sync, evaluate and deliver on schedule, and serve the feed."""
    logs.configure(app.environ, app.debug)
    settings = app.settings  # a config error is reported before anything starts
    log_start = f"config {settings.source}, state in {settings.state_dir}"
    logging.getLogger("followupd").info("starting: %s", log_start)
    code = run_service(app.config_path, app.environ)
    raise click.exceptions.Exit(code)


@click.command()
@click.option("--owner", "owner_key", metavar="KEY", help="only this owner's feed")
@click.option("--url", "show_url", is_flag=True, help="print the subscription URLs")
@pass_app
def feed(app: App, owner_key: str | None, show_url: bool) -> None:
    """The iCalendar feed of your tasks: where to subscribe to it (one per owner)."""
    owners = app.owners(owner_key)
    origin = app.settings.feed.public_url  # behind a TLS proxy: where it serves the feed
    if origin is None:
        address = app.settings.feed.listen
        if app.settings.feed.host in ("0.0.0.0", "::"):  # noqa: S104 (every interface)
            address = f"{socket.gethostname()}:{app.settings.feed.port}"
        origin = f"http://{address}"
    for owner in owners:
        url = f"{origin}/feed/{ensure_token(owner.token_file)}.ics"
        label = f"{owner.key} " if len(owners) > 1 else ""
        if show_url:
            click.echo(f"{label}{url}")
            if url.startswith("http://"):  # webcal:// is fetched in plain http
                click.echo(f"{label}webcal://{url.removeprefix('http://')}")
        elif len(owners) > 1:
            click.echo(f"{owner.key} ({owner.name}): {url}")
        else:
            click.echo(f"The feed is served by `followupd run` on {url}")
    if not show_url:
        click.echo("Subscribe to it in your calendar app; `followupd feed --url` prints the URLs.")
