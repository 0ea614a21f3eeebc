"""The command line: the `followupd` group, its global options, and how a command ends.

Each command lives in the module of its kind (setup, updates, passes, the
daemon, the outbox, missions); the clock is read in followupd.cli.app.

``--config`` and ``--debug`` are accepted before or after the subcommand.
Errors are one clear line (or one list, for files) with the exit code the
README's Commands section documents (followupd.errors); a traceback only with
``--debug``.
"""

from __future__ import annotations

import logging
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

import click
from sqlalchemy.exc import OperationalError

from followupd import __version__
from followupd.cli import (
    daemon_commands,
    mission_commands,
    outbox_commands,
    pass_commands,
    report_commands,
    setup_commands,
    update_commands,
)
from followupd.cli.app import App
from followupd.daemon import logs
from followupd.errors import EX_UNAVAILABLE, FollowupdError


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


for command in (
    setup_commands.init,
    setup_commands.check,
    setup_commands.import_,
    update_commands.invoice,
    update_commands.issue,
    update_commands.touch,
    pass_commands.plan,
    daemon_commands.run,
    daemon_commands.feed,
    pass_commands.sync,
    pass_commands.tick,
    outbox_commands.outbox,
    mission_commands.missions,
    mission_commands.show,
    report_commands.report,
):
    cli.add_command(command)
