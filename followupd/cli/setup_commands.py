"""`init`, `check` and `import`: set followupd up, see that it can work, give it data."""

from __future__ import annotations

import shutil
from pathlib import Path

import click

from followupd.cli import render
from followupd.cli.app import App, pass_app
from followupd.cli.checks import late_payment_checks, offline_checks, online_checks
from followupd.config.discovery import config_path_for_init
from followupd.errors import (
    EX_CONFIG,
    EX_UNAVAILABLE,
)
from followupd.sources.files.demo import load_demo
from followupd.sources.files.importer import import_files
from followupd.sources.files.payment_terms import terms_policies
from followupd.store.db import describe

RESOURCES = Path(__file__).parents[1] / "resources"
EXAMPLE_CONFIG = RESOURCES / "followupd.example.toml"


@click.command()
@click.option("--demo", is_flag=True, help="also load the demo clients and missions")
@click.option(
    "--today",
    metavar="DATE",
    help="with --demo: move the demo's dates to the week of DATE (default: today)",
)
@pass_app
def init(app: App, demo: bool, today: str | None) -> None:
    """Write a starter config if there is none, and create or upgrade the database."""
    if today is not None and not demo:
        raise click.UsageError("--today goes with --demo")
    day = app.day(today) if today is not None else None  # a bad DATE stops init at once
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
            loaded = load_demo(store, day or app.day(None), app.zone, app.owner_keys)
            render.print_import_report(loaded.report)
            render.print_demo_dates(loaded)
    finally:
        store.close()


@click.command()
@click.option("--offline", is_flag=True, help="validate the config only; reach no service")
@pass_app
def check(app: App, offline: bool) -> None:
    """Validate the config; without --offline, also reach the database, SMTP and CalDAV."""
    settings = app.settings
    render.print_settings(settings)
    today = app.day(None)
    checks = offline_checks(settings, app.environ) + late_payment_checks(settings, today)
    config_ok = all(check.ok for check in checks)
    if not offline:
        checks += online_checks(settings, app.environ, today)
    render.print_checks(checks, offline=offline)
    if not config_ok:  # a secret that cannot be read is a config problem
        raise click.exceptions.Exit(EX_CONFIG)
    if not all(check.ok for check in checks):
        raise click.exceptions.Exit(EX_UNAVAILABLE)


@click.command("import")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@pass_app
def import_(app: App, files: tuple[Path, ...]) -> None:
    """Upsert clients, contacts, missions, invoices, issues and touchpoints from data files."""
    store = app.store()
    terms = terms_policies(app.settings)
    try:
        render.print_import_report(
            import_files(store, files, app.zone, app.owner_keys, terms=terms)
        )
    finally:
        store.close()
