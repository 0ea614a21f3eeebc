"""The command line: parse, call, print (the clock is read in followupd.cli.app).

``--config`` and ``--debug`` are accepted before or after the subcommand.
Errors are one clear line (or one list, for files) with the exit code the
README's Commands section documents (followupd.errors); a traceback only with
``--debug``.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import socket
import sys
import traceback
from collections.abc import Sequence
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path

import click
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from followupd import __version__
from followupd.channels.feed.tokens import ensure_token
from followupd.cli import json_output, render
from followupd.cli import outbox as outbox_ops
from followupd.cli.app import App
from followupd.cli.checks import offline_checks, online_checks
from followupd.config.discovery import config_path_for_init
from followupd.daemon import logs
from followupd.daemon.service import run_service
from followupd.delivery.deliverer import Deliverer, DeliveryReport
from followupd.domain.owner_scope import has_calendars, scope_of
from followupd.domain.states import (
    FAILED_STATES,
    FollowUpState,
    MissionStatus,
    Severity,
    TouchpointKind,
)
from followupd.engine import evaluation
from followupd.errors import (
    EX_CONFIG,
    EX_FOLLOWUPS_FAILED,
    EX_UNAVAILABLE,
    FollowupdError,
    NotFound,
)
from followupd.rules.registry import enabled_rules
from followupd.sources.files.importer import import_files
from followupd.store import updates
from followupd.store.coordination import release_orphans, worker_name
from followupd.store.db import describe
from followupd.store.outbox import lookup, recording
from followupd.store.outbox.rows import FollowUpRow
from followupd.store.queries import mission_detail, mission_rows

RESOURCES = Path(__file__).parents[1] / "resources"
EXAMPLE_CONFIG = RESOURCES / "followupd.example.toml"
DEMO_DATA = RESOURCES / "demo.toml"
PLAN_DAYS = 30


pass_app = click.make_pass_decorator(App)


def words(names: type[StrEnum]) -> list[str]:
    """The words of a closed set as click choices (click would offer an enum's member names)."""
    return [name.value for name in names]


def _split_global_options(args: Sequence[str]) -> tuple[Path | None, bool, list[str]]:
    """Take ``--config PATH`` and ``--debug`` from anywhere before a ``--``."""
    config: Path | None = None
    debug = False
    rest: list[str] = []
    items = iter(args)
    for arg in items:
        if arg == "--":
            rest.append(arg)
            rest.extend(items)
            break
        if arg == "--debug":
            debug = True
        elif arg == "--config":
            value = next(items, None)
            if value is None:
                raise click.UsageError("--config needs a path")
            config = Path(value)
        elif arg.startswith("--config="):
            config = Path(arg.removeprefix("--config="))
        else:
            rest.append(arg)
    return config, debug, rest


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    try:
        config, debug, rest = _split_global_options(args)
        logging.basicConfig(
            level=logging.DEBUG if debug else logging.WARNING,
            format="%(name)s: %(levelname)s: %(message)s" if debug else "followupd: %(message)s",
        )
        logs.route_libraries(debug)
        code = cli.main(
            args=rest,
            prog_name="followupd",
            obj=App(config_option=config, debug=debug),
            standalone_mode=False,
        )
    except click.ClickException as error:
        error.show()
        code = error.exit_code
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        code = 1
    except FollowupdError as error:
        _report(error, debug)
        code = error.exit_code
    except OperationalError as error:
        _report(error, debug, f"database unreachable: {str(error.orig).strip().splitlines()[0]}")
        code = EX_UNAVAILABLE
    except Exception as error:
        hint = "" if debug else " (run with --debug for the traceback)"
        _report(error, debug, f"unexpected error: {type(error).__name__}: {error}{hint}")
        code = 1
    sys.exit(code if isinstance(code, int) else 0)


def _report(error: BaseException, debug: bool, message: str | None = None) -> None:
    if debug:
        traceback.print_exception(error)
    click.echo(f"followupd: {message or error}", err=True)


@click.group(
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog="--config PATH and --debug may also follow the subcommand.",
)
@click.option("--config", "config_option", type=click.Path(path_type=Path), help="config file")
@click.option("--debug", is_flag=True, help="show tracebacks and debug logs")
@click.version_option(__version__, prog_name="followupd")
def cli(config_option: Path | None, debug: bool) -> None:
    """Follows up client missions so that no invoice, deposit, problem or greeting slips through."""


# -- setting up -------------------------------------------------------------------------


@cli.command()
@click.option("--demo", is_flag=True, help="also load the demo clients and missions")
@pass_app
def init(app: App, demo: bool) -> None:
    """Write a starter config if there is none, and create or upgrade the database."""
    path = config_path_for_init(app.config_option, app.environ, Path.cwd())
    if path.exists():
        click.echo(f"config: {path} (exists, left as it is)")
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(EXAMPLE_CONFIG, path)
        click.echo(f"config: wrote a starter config to {path}; edit [owner] to make it yours")
    app.config_option = path
    settings = app.settings
    settings.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    store = app.store(migrate=True)
    try:
        before, after = store.upgrade()
        where = describe(store.engine.url)
        if before == after:
            click.echo(f"database: {where} (schema {after}, up to date)")
        else:
            click.echo(f"database: {where} (schema {before or 'none'} -> {after})")
        if demo:
            report = import_files(store, [DEMO_DATA], app.zone, app.owner_keys)
            render.print_import_report(report)
    finally:
        store.close()


@cli.command()
@click.option("--offline", is_flag=True, help="validate the config only; reach no service")
@pass_app
def check(app: App, offline: bool) -> None:
    """Validate the config; without --offline, also reach the database, SMTP and CalDAV."""
    settings = app.settings
    render.print_settings(settings)
    checks = offline_checks(settings, app.environ)
    config_ok = all(check.ok for check in checks)
    if not offline:
        checks += online_checks(settings, app.environ)
    render.print_checks(checks)
    if not config_ok:  # a secret that cannot be read is a config problem
        raise click.exceptions.Exit(EX_CONFIG)
    if not all(check.ok for check in checks):
        raise click.exceptions.Exit(EX_UNAVAILABLE)


@cli.command("import")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@pass_app
def import_(app: App, files: tuple[Path, ...]) -> None:
    """Upsert clients, contacts, missions, invoices, issues and touchpoints from data files."""
    store = app.store()
    try:
        render.print_import_report(import_files(store, files, app.zone, app.owner_keys))
    finally:
        store.close()


# -- quick updates ----------------------------------------------------------------------


@cli.group()
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


@cli.group()
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


@cli.command()
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


# -- follow-ups -------------------------------------------------------------------------


@cli.command()
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
    with app.session(commit=False) as session:
        intents = evaluation.plan(session, app.settings, rules, begin, finish)
        if as_json:
            followups = json_output.intents_json(session, intents, app.zone, app.settings)
            click.echo(json_output.render(app.now(), app.zone, followups))
        else:
            render.print_intents(intents, app.zone, app.shown_owners)


@cli.command()
@pass_app
def run(app: App) -> None:
    """Run the daemon: sync, evaluate and deliver on schedule, and serve the feed."""
    logs.configure(app.environ, app.debug)
    settings = app.settings  # a config error is reported before anything starts
    log_start = f"config {settings.source}, state in {settings.state_dir}"
    logging.getLogger("followupd").info("starting: %s", log_start)
    code = run_service(app.config_path, app.environ)
    raise click.exceptions.Exit(code)


@cli.command()
@click.option("--owner", "owner_key", metavar="KEY", help="only this owner's feed")
@click.option("--url", "show_url", is_flag=True, help="print the subscription URLs")
@pass_app
def feed(app: App, owner_key: str | None, show_url: bool) -> None:
    """The iCalendar feed of your tasks: where to subscribe to it (one per owner)."""
    owners = app.owners(owner_key)
    address = app.settings.feed.listen
    if app.settings.feed.host in ("0.0.0.0", "::"):  # noqa: S104 (every interface: this machine)
        address = f"{socket.gethostname()}:{app.settings.feed.port}"
    for owner in owners:
        path = f"/feed/{ensure_token(owner.token_file)}.ics"
        label = f"{owner.key} " if len(owners) > 1 else ""
        if show_url:
            click.echo(f"{label}http://{address}{path}")
            click.echo(f"{label}webcal://{address}{path}")
        elif len(owners) > 1:
            click.echo(f"{owner.key} ({owner.name}): http://{address}{path}")
        else:
            click.echo(f"The feed is served by `followupd run` on http://{address}{path}")
    if not show_url:
        click.echo("Subscribe to it in your calendar app; `followupd feed --url` prints the URLs.")


@cli.command()
@click.option("--now", "now_text", metavar="TIME", help="sync as if the clock read TIME")
@pass_app
def sync(app: App, now_text: str | None) -> None:
    """Read missions, meetings and completed tasks from the CalDAV calendars."""
    if not has_calendars(app.settings):
        raise click.UsageError("no [caldav] section in the config: there is no calendar to sync")
    from followupd.sources.caldav.sync import sync_calendars

    at = app.instant(now_text)
    store = app.store()
    try:
        with render.sync_progress() as progress:
            report = sync_calendars(store, app.settings, at, progress)
    finally:
        store.close()
    render.print_sync_report(report)
    if report.failed:  # what could be synced was; the rest is tried again next time
        raise click.exceptions.Exit(EX_UNAVAILABLE)


@cli.command(
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
    """One full pass as if the clock read --now: sync the calendars, evaluate, deliver."""
    at = app.instant(now_text)
    rules = enabled_rules(app.settings.rules, app.settings.owners)
    unavailable = False
    if has_calendars(app.settings) and not dry_run:
        from followupd.sources.caldav.sync import sync_calendars

        store = app.store()
        try:
            synced = sync_calendars(store, app.settings, at)
        finally:
            store.close()
        for failure in synced.failed:  # what is stored is still worth a pass
            click.echo(f"followupd: {failure}", err=True)
        unavailable = bool(synced.failed)
    with app.session(commit=not dry_run) as session:
        report = evaluation.evaluate(session, app.settings, rules, at)
        touched = {row.key for row in report.recorded} | set(report.cancelled)
        if dry_run:
            print_outcome(session, sorted(touched), at, app, as_json)
            return
    store = app.store()
    try:
        with store.session() as session:  # a killed tick's or daemon's claims: now, not in 5 min
            for dead, count in release_orphans(session, at).items():
                click.echo(f"followupd: took back {count} follow-ups claimed by {dead}, "
                           "which died", err=True)  # fmt: skip
        worker = worker_name()
        delivered = asyncio.run(deliver(Deliverer(store, app.settings, worker), at))
        with store.session() as session:
            keys = sorted(touched | set(delivered.keys))
            shown = print_outcome(session, keys, at, app, as_json)
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


def print_outcome(
    session: Session, keys: list[str], at: datetime, app: App, as_json: bool
) -> list[FollowUpRow]:
    """The follow-ups with these keys as they stand, as a table or as JSON; and them."""
    rows = recording.load(session, keys)
    if as_json:
        shown = json_output.followups_json(session, rows, app.zone, app.settings)
        click.echo(json_output.render(at, app.zone, shown))
    else:
        render.print_followups(rows, app.zone, app.shown_owners)
    return rows


@cli.group()
def outbox() -> None:
    """Look at recorded follow-ups: states, attempts, errors; retry or cancel one."""


@outbox.command("list")
@click.option("--state", "states", multiple=True, type=click.Choice(words(FollowUpState)))
@click.option("--rule", help="only this rule's follow-ups")
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
@pass_app
def outbox_list(app: App, states: tuple[str, ...], rule: str | None, limit: int) -> None:
    """The most recent follow-ups, newest first."""
    with app.session(commit=False) as session:
        rows = lookup.listing(session, states, rule, limit)
        render.print_outbox(rows, app.zone, app.shown_owners, filtered=bool(states or rule))


@outbox.command("show")
@click.argument("ident", metavar="ID")
@pass_app
def outbox_show(app: App, ident: str) -> None:
    """Everything about one follow-up (ID: its number or its key)."""
    with app.session(commit=False) as session:
        found = lookup.find(session, ident)
        render.print_followup(found, app.zone, app.shown_owners)


@outbox.command("retry")
@click.argument("ident", metavar="ID")
@pass_app
def outbox_retry(app: App, ident: str) -> None:
    """Try a failed or dead follow-up again, on the next pass."""
    with app.session() as session:
        row, what = outbox_ops.retry(session, ident, app.now())
        click.echo(f"follow-up {row.id} ({row.key}): {what}")


@outbox.command("cancel")
@click.argument("ident", metavar="ID")
@pass_app
def outbox_cancel(app: App, ident: str) -> None:
    """Cancel a follow-up that has not gone yet."""
    with app.session() as session:
        row = outbox_ops.cancel(session, ident, app.now())
        click.echo(f"follow-up {row.id} ({row.key}): cancelled")


# -- views ------------------------------------------------------------------------------


@cli.command()
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


@cli.command()
@click.argument("mission")
@pass_app
def show(app: App, mission: str) -> None:
    """Show one mission: client, contact, invoices, issues, touchpoints."""
    with app.session(commit=False) as session:
        found = mission_detail(session, mission)
        if found is None:
            raise NotFound(f"no mission with key {mission!r}")
        render.print_mission(found, app.zone, app.shown_owners)
