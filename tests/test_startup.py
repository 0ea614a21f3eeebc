"""Start-up: what a command loads, and the shortcuts that keep it quick (tests/bench/startup.py).

`followupd --version` loads none of the libraries of the commands, and `plan`
none of those of delivery, sync, letters, charts or migrations. The figures
are the benchmark's; these tests check the causes, which a stray import at
the top of a module would bring back.
"""

from __future__ import annotations

import gc
import subprocess
import sys
from pathlib import Path

import click
import holidays
import pytest
from holidays.registry import EntityLoader
from sqlalchemy.engine import URL
from sqlalchemy.exc import OperationalError

import followupd
from followupd.cli.main import COMMANDS, LazyGroup, _database_unreachable, cli
from followupd.config.types import _countries
from followupd.domain.business_calendar import _holidays_of
from followupd.errors import EX_UNAVAILABLE
from followupd.templates.compiled import CompiledTemplates
from followupd.templates.loader import Templates
from tests.conftest import MINIMAL_CONFIG, RunCli
from tests.smtpserver import free_port

# what any command but the one that needs it must not import
LIBRARIES = ("sqlalchemy", "pydantic", "jinja2", "babel", "holidays", "rich", "icalendar",
             "email_validator", "alembic", "reportlab", "caldav", "niquests", "aiosmtplib",
             "aiohttp", "imapclient", "matplotlib", "apscheduler")  # fmt: skip
# what `plan` needs none of: migrations, letters, charts, SMTP, CalDAV, IMAP, the daemon
NOT_FOR_PLAN = ("alembic", "reportlab", "matplotlib", "aiosmtplib", "caldav", "niquests",
                "imapclient", "aiohttp", "apscheduler", "followupd.delivery",
                "followupd.daemon.service", "followupd.cli.checks",
                "holidays.countries",
                # no calendar to read: not its reader
                "icalendar", "recurring_ical_events", "followupd.sources.ical.read",
                # no data file to read, no address the config writes unusually
                "followupd.sources.files.records", "email_validator",
                # into a pipe: its table laid out by cli/plain_table, as rich would
                "rich",
                # no calendar description written in HTML to read (sources/caldav/html_text)
                "html.parser")  # fmt: skip


def loaded_by(argv: list[str], cwd: Path | None = None, status: int = 0) -> tuple[str, set[str]]:
    """Run followupd's main(argv) in a new process: what it printed, and the modules it loaded.

    It must end with exit status `status`.
    """
    code = (
        "import sys\n"
        "from followupd.cli.main import main\n"
        "try:\n"
        f"    main({argv!r})\n"
        "except SystemExit as exit_:\n"
        f"    assert (exit_.code or 0) == {status}, exit_.code\n"
        "print('\\0'.join(sorted(sys.modules)), file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, cwd=cwd
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout, set(done.stderr.strip().splitlines()[-1].split("\0"))


def under(modules: set[str], packages: tuple[str, ...]) -> list[str]:
    """The `packages` of which `modules` holds the package itself or one of its modules."""
    return [
        name for name in packages if any(m == name or m.startswith(f"{name}.") for m in modules)
    ]


def test_version_loads_no_library_of_the_commands() -> None:
    said, modules = loaded_by(["--version"])
    assert said == f"followupd, version {followupd.__version__}\n"
    assert under(modules, LIBRARIES) == []
    assert not [
        name for name in modules if name.startswith("followupd.cli.") and "commands" in name
    ]


def test_plan_loads_neither_delivery_nor_migrations_nor_every_country(
    cli: RunCli, home: Path, database_url: URL
) -> None:
    config = home / "followupd.toml"
    config.write_text(MINIMAL_CONFIG, encoding="utf-8")
    assert cli("init", "--demo", "--today", "2026-11-22").code == 0
    said, modules = loaded_by(["plan", "--from", "2026-11-23T09:00"], cwd=home)
    assert "invoice_due" in said, "the demo's plan, as plan prints it"
    assert under(modules, NOT_FOR_PLAN) == []
    if database_url.get_backend_name() == "sqlite":
        assert "sqlalchemy.dialects.postgresql" not in modules, "a store on SQLite: not its dialect"
    assert "holidays.countries.france" not in modules  # read from its file, not imported


def test_a_tick_that_renders_nothing_new_loads_neither_jinja2_nor_babel(
    cli: RunCli, home: Path
) -> None:
    """The templates' sandbox is made when a template is first looked up: a tick after one
    that recorded and sent what was due has nothing to render."""
    (home / "followupd.toml").write_text(MINIMAL_CONFIG, encoding="utf-8")
    assert cli("init", "--demo", "--today", "2026-11-22").code == 0
    argv = ["tick", "--now", "2026-11-23T09:00"]
    first = cli(*argv)
    assert first.code == 0 and "invoice_due" in first.out, "the first tick recorded the demo's"
    said, modules = loaded_by(argv, cwd=home)
    assert "invoice_due" not in said, "nothing new: the second tick recorded nothing"
    assert under(modules, ("jinja2", "babel", "followupd.templates.sandbox")) == []


def test_sync_loads_neither_the_rules_nor_their_templates(
    cli: RunCli, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sync is a short command: what evaluates and renders is not loaded for it."""
    monkeypatch.setenv("FOLLOWUPD_TEST_PASSWORD", "secret")
    (home / "followupd.toml").write_text(
        MINIMAL_CONFIG + f'[caldav]\nurl = "http://127.0.0.1:{free_port()}/"\n'
        'username = "claire"\npassword_env = "FOLLOWUPD_TEST_PASSWORD"\n'
        'read_calendars = ["Missions"]\n',
        encoding="utf-8",
    )
    assert cli("init").code == 0
    argv = ["sync", "--now", "2026-11-23T09:00"]
    said, modules = loaded_by(argv, cwd=home, status=EX_UNAVAILABLE)
    assert "missions: 0 created" in said, "the sync ran (its server is not there)"
    # nor what the config would load for a country or an address it does not name, nor rich
    # for its report into a pipe (render.print_sync_report)
    unneeded = ("jinja2", "babel", "followupd.rules", "followupd.engine", "holidays",
                "email_validator", "rich", "html.parser")  # fmt: skip
    assert under(modules, unneeded) == []


def test_main_inside_a_longer_process_leaves_its_garbage_collector_alone(cli: RunCli) -> None:
    assert cli("--version").code == 0
    assert gc.isenabled() and gc.get_freeze_count() == 0


def test_every_command_is_found_by_its_name() -> None:
    context = click.Context(cli)
    assert isinstance(cli, LazyGroup)
    assert cli.list_commands(context) == sorted(COMMANDS)
    for name in COMMANDS:
        command = cli.get_command(context, name)
        assert command is not None and command.name == name
    assert cli.get_command(context, "nosuch") is None


def test_a_database_unreachable_is_said_in_one_line() -> None:
    error = OperationalError("SELECT 1", {}, Exception("connection refused\n\tIs it running?"))
    assert _database_unreachable(error) == "connection refused"
    assert _database_unreachable(ValueError("no")) is None


def test_the_country_codes_are_those_holidays_lists() -> None:
    assert _countries() == frozenset(holidays.list_supported_countries())


def test_each_country_has_the_holidays_country_holidays_gives() -> None:
    for code in sorted(EntityLoader.get_country_codes(include_aliases=True)):
        assert set(_holidays_of(code)(years=2027)) == set(
            holidays.country_holidays(code, years=2027)
        ), code


@pytest.fixture
def template(tmp_path: Path) -> Path:
    """A user's template for invoice_due's first nudge, in a templates directory of its own."""
    path = tmp_path / "templates" / "en" / "invoice_due" / "nudge-1.j2"
    path.parent.mkdir(parents=True)
    path.write_text("{% block subject %}Invoice {{ number }}{% endblock %}")
    return path


def subject(template: Path, cache: Path) -> str:
    """The subject `template` renders, through a new Templates with its compiled ones in `cache`."""
    templates = Templates(template.parents[2])
    templates.env.bytecode_cache = CompiledTemplates(cache)
    return templates.render("en", "invoice_due", "nudge-1", "subject", {"number": 7})


def test_compiled_templates_render_the_same_and_follow_their_source(
    template: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    assert subject(template, cache) == "Invoice 7"
    kept = list(cache.iterdir())
    assert len(kept) == 1, "the compiled template is kept"
    assert subject(template, cache) == "Invoice 7"
    template.write_text("{% block subject %}Facture {{ number }}{% endblock %}")
    assert subject(template, cache) == "Facture 7", "a changed template is compiled again"


def test_a_cache_that_cannot_be_written_is_no_cache(template: Path, tmp_path: Path) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    assert subject(template, blocked / "cache") == "Invoice 7"


def test_the_cache_never_makes_the_state_directory(template: Path, tmp_path: Path) -> None:
    """`init` makes it private (0700); a cache making it first would leave it open."""
    state = tmp_path / "state"
    assert subject(template, state / "template-cache") == "Invoice 7"
    assert not state.exists()


def test_a_sandboxs_and_a_plain_compilation_of_one_file_are_kept_apart(tmp_path: Path) -> None:
    """A user template including a shipped one has the sandbox compile the shipped file, which
    the shipped templates' environment compiles too, to other code: one file each, so that
    neither loads the other's (a plain compilation run in the sandbox would escape it)."""
    user = tmp_path / "templates"
    child = user / "en" / "invoice_due" / "nudge-1.j2"
    child.parent.mkdir(parents=True)
    child.write_text(
        '{% block subject %}{% include "en/new_year_greetings/default.j2" %}{% endblock %}', "utf-8"
    )
    cache = tmp_path / "cache"
    values = {"year": 2027, "contact": {"name": "Jo"}, "owner": {"name": "Claire"}}
    rendered = []
    for _ in range(2):  # compiled, then loaded from the files
        templates = Templates(user)
        templates.env.bytecode_cache = templates.shipped.bytecode_cache = CompiledTemplates(cache)
        included = str(templates.subject("en", "invoice_due", "nudge-1", values))
        shipped = str(templates.subject("en", "new_year_greetings", "default", values))
        assert templates.template("en", "invoice_due", "nudge-1").environment.sandboxed
        assert not templates.template("en", "new_year_greetings", "x").environment.sandboxed
        rendered.append((included, shipped))
    assert rendered[0] == rendered[1]
    assert rendered[0][1] == "Best wishes for 2027"
    assert rendered[0][0].startswith(rendered[0][1])
    assert len(list(cache.iterdir())) == 3, "the child, and the shipped file once each way"
