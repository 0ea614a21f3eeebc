"""The command line: the `followupd` group, its global options, and how a command ends.

Each command lives in the module of its kind (setup, updates, passes, the
daemon, the outbox, missions), imported only when that command runs (COMMANDS):
`followupd --version` loads neither the database layer nor the templates, and
`plan` not the daemon. The clock is read in followupd.cli.app.

``--config`` and ``--debug`` are accepted before or after the subcommand.
Errors are one clear line (or one list, for files) with the exit code the
README's Commands section documents (followupd.errors); a traceback only with
``--debug``.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

import click

from followupd import __version__
from followupd.cli import collector
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
    """Run the command `argv`; None: this process's own command line, which ends here."""
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
            obj=App(config_option=config, debug=debug, own_process=argv is None),
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
    except Exception as error:
        if (unreachable := _database_unreachable(error)) is not None:
            _report(error, debug, f"database unreachable: {unreachable}")
            code = EX_UNAVAILABLE
        else:
            hint = "" if debug else " (run with --debug for the traceback)"
            _report(error, debug, f"unexpected error: {type(error).__name__}: {error}{hint}")
            code = 1
    if argv is None:
        collector.before_exit()
    sys.exit(code if isinstance(code, int) else 0)


def _database_unreachable(error: Exception) -> str | None:
    """Why the database could not be reached, if `error` is SQLAlchemy's OperationalError.

    Looked up in sys.modules rather than imported: a command that raised it has
    loaded SQLAlchemy, and one that did not (`--version`) need not load it.
    """
    exceptions = sys.modules.get("sqlalchemy.exc")
    if exceptions is None or not isinstance(error, exceptions.OperationalError):
        return None
    return str(getattr(error, "orig", error)).strip().splitlines()[0]


def _report(error: BaseException, debug: bool, message: str | None = None) -> None:
    if debug:
        traceback.print_exception(error)
    click.echo(f"followupd: {message or error}", err=True)


# Each command, by name: "module of followupd.cli:its function", imported when it runs.
COMMANDS = {
    "init": "setup_commands:init",
    "check": "setup_commands:check",
    "import": "setup_commands:import_",
    "invoice": "update_commands:invoice",
    "issue": "update_commands:issue",
    "touch": "update_commands:touch",
    "plan": "pass_commands:plan",
    "run": "daemon_commands:run",
    "feed": "daemon_commands:feed",
    "sync": "sync_commands:sync",
    "tick": "pass_commands:tick",
    "outbox": "outbox_commands:outbox",
    "missions": "mission_commands:missions",
    "show": "mission_commands:show",
    "report": "report_commands:report",
}


class LazyGroup(click.Group):
    """A group whose commands are imported from COMMANDS when click asks for one by name.

    Only `followupd --help` (which lists every command's short help) loads them all.
    """

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module, name = COMMANDS[cmd_name].split(":")
        app = ctx.find_object(App)
        with collector.lasting() if app and app.own_process else contextlib.nullcontext():
            command = getattr(importlib.import_module(f"followupd.cli.{module}"), name)
        if not isinstance(command, click.Command):
            raise TypeError(f"COMMANDS[{cmd_name!r}] is not a click command")
        return command


@click.group(
    cls=LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog="--config PATH and --debug may also follow the subcommand.",
)
@click.option("--config", "config_option", type=click.Path(path_type=Path), help="config file")
@click.option("--debug", is_flag=True, help="show tracebacks and debug logs")
@click.version_option(__version__, prog_name="followupd")
def cli(config_option: Path | None, debug: bool) -> None:
    """Follows up client missions so that no invoice, deposit, problem or greeting slips through."""
