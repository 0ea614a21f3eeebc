"""`followupd.config`: finding, reading and validating the config (README, "Configuration")."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import time
from pathlib import Path

import pytest

from followupd.config import discovery
from followupd.config.accounts import Secret
from followupd.config.discovery import config_candidates, find_config, state_directory
from followupd.config.load import load_settings, parse_settings
from followupd.config.rule_options import RulesConfig, Step
from followupd.config.sections import Business, Caldav
from followupd.config.settings import MAILBOX_RULES, Settings
from followupd.errors import EX_CONFIG, ConfigError, Problem
from tests.conftest import RunCli

EXAMPLE = Path(discovery.__file__).parents[1] / "resources" / "followupd.example.toml"
OWNER = """\
[owner]
name = "Claire Martin"
email = "claire@cabinet.example"
"""
SECRET_VALUE = "zq-Sekr3t-9f41-do-not-print"


def _settings(text: str, tmp_path: Path, environ: Mapping[str, str] | None = None) -> Settings:
    env = {"HOME": str(tmp_path)} if environ is None else environ
    return parse_settings(text, tmp_path / "followupd.toml", env)


def _problems(text: str, tmp_path: Path, environ: Mapping[str, str] | None = None) -> list[Problem]:
    with pytest.raises(ConfigError) as caught:
        _settings(text, tmp_path, environ)
    assert caught.value.exit_code == EX_CONFIG
    return caught.value.problems


def _problem_at(problems: list[Problem], where: str) -> Problem:
    found = [problem for problem in problems if problem.where == where]
    assert found, f"no problem at {where!r} in {[str(p) for p in problems]}"
    return found[0]


# -- the acceptance test: every problem of a file, at once, with line and key path -------

BROKEN_CONFIG = """\
[owner]
name = "Claire Martin"
email = "claire@cabinet.example"

[smtp]
host = "smtp.example.net"
port = "587"

[business]
sned_window = "09:00-18:00"
send_window = 9
this line is not toml

[rules.invoice_due]
steps = [
  { name = "heads-up", offset_days = -3, audience = "owner" },
  { name = "nudge-1", offset_days = 1, audience = "client" },
  { name = "nudge-2", offset_days = "8", audience = "client" },
]
"""


def test_check_lists_every_problem_with_line_and_key_path(home: Path, cli: RunCli) -> None:
    path = home / "broken.toml"
    path.write_text(BROKEN_CONFIG, encoding="utf-8")
    result = cli("check", "--offline", "--config", path)
    assert result.code == 78, result
    err = result.err
    assert "invalid configuration" in err
    expected = [
        f"{path}:7: smtp.port: ",
        f"{path}:10: business.sned_window: unknown key 'sned_window'",
        f"{path}:11: business.send_window: ",
        f"{path}:12: TOML syntax error",
        f"{path}:18: rules.invoice_due.steps[2].offset_days: ",
    ]
    positions = []
    for start in expected:
        assert start in err, f"{start!r} not in:\n{err}"
        positions.append(err.index(start))
    assert positions == sorted(positions), "problems are listed in line order"
    assert "did you mean 'send_window'?" in err
    sned_line = next(line for line in err.splitlines() if "sned_window" in line)
    assert "did you mean 'send_window'" in sned_line
    port_line = next(line for line in err.splitlines() if "smtp.port" in line)
    assert "integer" in port_line
    assert "Traceback" not in err


def test_config_option_before_the_subcommand(home: Path, cli: RunCli) -> None:
    path = home / "broken.toml"
    path.write_text(OWNER + "[business]\nsend_window = 9\n", encoding="utf-8")
    result = cli("--config", path, "check", "--offline")
    assert result.code == 78, result
    assert f"{path}:5: business.send_window: " in result.err


def test_problems_carry_file_line_and_path(tmp_path: Path) -> None:
    problems = _problems(BROKEN_CONFIG, tmp_path)
    assert all(problem.file == tmp_path / "followupd.toml" for problem in problems)
    step = _problem_at(problems, "rules.invoice_due.steps[2].offset_days")
    assert step.line == 18
    assert _problem_at(problems, "smtp.port").line == 7
    assert _problem_at(problems, "business.send_window").line == 11
    syntax = [problem for problem in problems if problem.where is None]
    assert [problem.line for problem in syntax] == [12]


def test_missing_required_key_names_the_owner_line(tmp_path: Path) -> None:
    text = '# my config\n\n[owner]\nname = "Claire Martin"\n'
    problem = _problem_at(_problems(text, tmp_path), "owner.email")
    assert problem.line == 3
    assert "missing" in problem.message
    assert str(problem) == f"{tmp_path / 'followupd.toml'}:3: owner.email: {problem.message}"


def test_missing_owner_section(tmp_path: Path) -> None:
    problem = _problem_at(_problems('[business]\nsend_window = "09:00-18:00"\n', tmp_path), "owner")
    assert "missing" in problem.message


def test_unknown_rule_name_suggests_the_closest(tmp_path: Path) -> None:
    text = OWNER + "\n[rules.invoic_due]\nenabled = false\n"
    problem = _problem_at(_problems(text, tmp_path), "rules.invoic_due")
    assert problem.line == 5
    assert "unknown key 'invoic_due'" in problem.message
    assert "did you mean 'invoice_due'?" in problem.message


def test_unknown_section_lists_known_keys(tmp_path: Path) -> None:
    text = OWNER + "\n[mailserver]\nhost = 'x'\n"
    problem = _problem_at(_problems(text, tmp_path), "mailserver")
    assert problem.line == 5
    assert "unknown key 'mailserver'" in problem.message
    for known in ("business", "caldav", "database", "feed", "owner", "rules", "smtp"):
        assert known in problem.message


def test_unknown_key_inside_a_step_suggests_the_field(tmp_path: Path) -> None:
    text = OWNER + (
        "[rules.deposit_due]\n"
        "steps = [\n"
        '  { name = "request", offset_days = 0, audience = "client" },\n'
        '  { name = "call", ofset_days = 15, audience = "owner" },\n'
        "]\n"
    )
    problems = _problems(text, tmp_path)
    unknown = _problem_at(problems, "rules.deposit_due.steps[1].ofset_days")
    assert unknown.line == 7
    assert "did you mean 'offset_days'?" in unknown.message
    missing = _problem_at(problems, "rules.deposit_due.steps[1].offset_days")
    assert missing.line == 7


def test_strict_types_are_not_coerced(tmp_path: Path) -> None:
    text = OWNER + '[rules.invoice_due]\nenabled = "yes"\ngrace_days = 2.5\n'
    problems = _problems(text, tmp_path)
    assert _problem_at(problems, "rules.invoice_due.enabled").line == 5
    assert _problem_at(problems, "rules.invoice_due.grace_days").line == 6


# -- defaults (README, "Configuration") ----------------------------------------------------


def test_example_config_loads_with_the_spec_defaults(tmp_path: Path) -> None:
    settings = load_settings(EXAMPLE, {"HOME": str(tmp_path)})
    state = tmp_path / ".local" / "state" / "followupd"
    assert settings.source == EXAMPLE
    assert settings.state_dir == state

    owner = settings.owner
    assert (owner.name, owner.email) == ("Claire Martin", "claire@cabinet.example")
    assert owner.phone is None
    assert (owner.timezone, owner.language, owner.country) == ("Europe/Paris", "fr", "FR")

    assert settings.database.url == f"sqlite:///{state / 'followupd.db'}"
    assert settings.database.is_sqlite
    assert not settings.database.has_password
    assert settings.smtp is None
    assert settings.caldav is None
    assert settings.feed.listen == "127.0.0.1:8731"
    assert (settings.feed.host, settings.feed.port) == ("127.0.0.1", 8731)
    assert settings.feed.token_file == state / "feed.token"

    business = settings.business
    assert business.send_window == "09:00-18:00"
    assert business.window == (time(9, 0), time(18, 0))
    assert business.working_days == ("mon", "tue", "wed", "thu", "fri")
    assert business.weekday_numbers == frozenset({0, 1, 2, 3, 4})

    assert settings.imap is None
    rules = settings.rules
    # on by default only when a mailbox is read, and there is none
    assert [name for name, options in rules if not options.enabled] == list(MAILBOX_RULES)
    # a formal notice is a letter: still worth sending weeks after its day
    assert all(options.grace_days == 7 for name, options in rules if name != "formal_notice")
    assert rules.formal_notice.grace_days == 30
    assert [name for name, _ in rules] == [
        "invoice_due",
        "deposit_due",
        "contract_missing",
        "escalate_by_phone",
        "client_not_informed",
        "status_update_due",
        "checkpoint_meeting",
        "mission_closeout",
        "open_ended_mission",
        "new_year_greetings",
        "limitation_alert",
        "formal_notice",
        "client_replied",
        "email_bounced",
    ]
    assert rules.invoice_due.payment_terms_check == "warn"
    assert rules.invoice_due.end_of_month_terms is False
    assert rules.limitation_alert.months_ahead == 6
    assert (rules.formal_notice.after_days, rules.formal_notice.deadline_days) == (45, 8)
    assert [(s.offset_days, s.audience) for s in rules.invoice_due.steps] == [
        (-3, "owner"),
        (1, "client"),
        (8, "client"),
        (15, "client"),
    ]
    assert [s.name for s in rules.invoice_due.steps][1:] == ["nudge-1", "nudge-2", "nudge-3"]
    assert [(s.offset_days, s.audience) for s in rules.deposit_due.steps] == [
        (0, "client"),
        (7, "client"),
        (15, "owner"),
    ]
    assert (rules.contract_missing.days_before_start, rules.contract_missing.every_days) == (7, 7)
    escalate = rules.escalate_by_phone
    assert escalate.severities == ("high", "critical")
    assert escalate.after_working_days == 1
    assert escalate.invoice_overdue_days == 30
    informed = rules.client_not_informed
    assert (informed.after_working_days, informed.every_working_days) == (2, 2)
    assert rules.status_update_due.every_days == 14
    assert (rules.checkpoint_meeting.open_issues, rules.checkpoint_meeting.every_days) == (2, 30)
    assert rules.mission_closeout.after_working_days == 1
    assert (rules.open_ended_mission.max_months, rules.open_ended_mission.every_days) == (6, 90)
    greetings = rules.new_year_greetings
    assert (greetings.lookback_months, greetings.last_day) == (24, 31)
    assert rules.client_replied.pause_working_days == 7
    assert rules.status_update_due.is_status_update("Point d'avancement - semaine 49")


def test_minimal_config_equals_the_example(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path)}
    minimal = _settings(OWNER, tmp_path, env)
    example = load_settings(EXAMPLE, env)
    assert minimal.rules == example.rules == RulesConfig()
    assert minimal.business == example.business == Business()
    assert minimal.feed == example.feed
    assert minimal.database == example.database


_COMMENTED = re.compile(r"^# (?P<line>\S.*)$")
_HEADER = re.compile(r"^\[(?P<name>[a-z_.]+)\](\s+#.*)?$")
_KEY = re.compile(r"^(?P<key>[a-z_]+) = \S")


def _uncommented_variants(text: str) -> tuple[list[str], int]:
    """The example with every commented option and table header uncommented.

    A key shown twice in one table (alternatives, like the two database URLs)
    gives one variant per alternative.
    """
    lines = text.split("\n")
    table = ""
    in_array = False
    seen: dict[tuple[str, str], list[int]] = {}
    uncommented = 0
    for number, line in enumerate(lines):
        match = _COMMENTED.match(line)
        body = match.group("line") if match else None
        if in_array:
            assert line.startswith("# "), f"array left open at line {number + 1}"
            lines[number] = line.removeprefix("# ")
            uncommented += 1
            in_array = lines[number].strip() != "]"
            continue
        header = _HEADER.match(body or line)
        if header:
            table = header.group("name")
            if body is not None:
                lines[number] = body
                uncommented += 1
            continue
        key = _KEY.match(body or "")
        if body is not None and key:
            lines[number] = body
            uncommented += 1
            seen.setdefault((table, key.group("key")), []).append(number)
            in_array = body.rstrip().endswith("[")
    alternatives = [numbers for numbers in seen.values() if len(numbers) > 1]
    count = max((len(numbers) for numbers in alternatives), default=1)
    variants = []
    for index in range(count):
        variant = list(lines)
        for numbers in alternatives:
            for position, number in enumerate(numbers):
                if position != min(index, len(numbers) - 1):
                    variant[number] = "# " + variant[number]
        variants.append("\n".join(variant))
    return variants, uncommented


def test_every_commented_option_of_the_example_is_a_real_option(tmp_path: Path) -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    variants, uncommented = _uncommented_variants(text)
    assert uncommented > 50, "the example documents its options as commented lines"
    assert len(variants) == 2, "the two database URLs are alternatives"
    env = {"HOME": str(tmp_path)}
    defaults = load_settings(EXAMPLE, env)
    (tmp_path / "templates").mkdir()  # the example's [templates] directory, next to the file
    urls = set()
    for variant in variants:
        headers = ("[smtp]", "[caldav]", "[imap]", "[rules.invoice_due]",
                   "[rules.client_replied]", "[rules.email_bounced]")  # fmt: skip
        for header in headers:
            assert f"\n{header}" in variant
        settings = parse_settings(variant, tmp_path / "followupd.toml", env)
        assert settings.templates.directory == tmp_path / "templates"
        urls.add(settings.database.url)
        # the values shown are the defaults; with [imap], the mailbox's rules are on
        assert settings.rules.client_replied.enabled and settings.rules.email_bounced.enabled
        on = {
            name: getattr(defaults.rules, name).model_copy(update={"enabled": True})
            for name in MAILBOX_RULES
        }
        assert settings.rules == defaults.rules.model_copy(update=on)
        assert settings.business == defaults.business
        assert settings.feed.public_url == "https://calendar.example.net"  # no default
        assert settings.feed.model_copy(update={"public_url": None}) == defaults.feed
        assert settings.owner.phone == "+33 6 00 00 00 00"
        assert settings.owner.address == "12 rue des Lilas\n69003 Lyon"
        assert settings.owner.model_copy(update={"phone": None, "address": None}) == (
            defaults.owner
        )
        smtp = settings.smtp
        assert smtp is not None
        assert (smtp.host, smtp.port, smtp.security) == ("smtp.example.net", 587, "starttls")
        assert smtp.timeout_seconds == 60
        assert smtp.sender == "Claire Martin <claire@cabinet.example>"
        assert smtp.password_file == Path("/run/credentials/followupd.service/smtp")
        caldav = settings.caldav
        assert caldav is not None
        assert caldav.url == "https://dav.example.net/"
        assert caldav.read_calendars == ("Missions", "Rendez-vous")
        assert caldav.write_calendar == Caldav.model_fields["write_calendar"].default
        assert settings.database.password_file == Path(
            "/run/credentials/followupd.service/database"
        )
        imap = settings.imap
        assert imap is not None
        assert (imap.url, imap.effective_security, imap.port) == (
            "imaps://imap.example.net/",
            "tls",
            993,
        )
        assert imap.folders == ("INBOX",) and imap.sent_folder == "Sent"
        assert imap.password_file == Path("/run/credentials/followupd.service/imap")
    assert urls == {
        defaults.database.url,
        "postgresql+psycopg://followupd@db.example.net/followupd",
    }


# -- where things are (README, "Configuration") --------------------------------------------


def _write(path: Path, text: str = OWNER) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def etc_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Stands in for /etc/followupd/config.toml, so that the host's /etc plays no part."""
    etc = tmp_path / "etc" / "followupd" / "config.toml"
    real = discovery.config_candidates

    def candidates(environ: Mapping[str, str], cwd: Path) -> list[Path]:
        found = real(environ, cwd)
        assert found[-1] == Path("/etc/followupd/config.toml")
        return [*found[:-1], etc]

    monkeypatch.setattr(discovery, "config_candidates", candidates)
    return etc


def test_config_candidates_order(tmp_path: Path) -> None:
    cwd, home, xdg = tmp_path / "cwd", tmp_path / "home", tmp_path / "xdg"
    assert config_candidates({"HOME": str(home), "XDG_CONFIG_HOME": str(xdg)}, cwd) == [
        cwd / "followupd.toml",
        xdg / "followupd" / "config.toml",
        Path("/etc/followupd/config.toml"),
    ]
    assert config_candidates({"HOME": str(home)}, cwd) == [
        cwd / "followupd.toml",
        home / ".config" / "followupd" / "config.toml",
        Path("/etc/followupd/config.toml"),
    ]


def test_find_config_order(tmp_path: Path, etc_config: Path) -> None:
    cwd, home, xdg = tmp_path / "cwd", tmp_path / "home", tmp_path / "xdg"
    cwd.mkdir()
    env: dict[str, str] = {"HOME": str(home)}

    _write(etc_config)
    assert find_config(None, env, cwd) == etc_config

    home_file = _write(home / ".config" / "followupd" / "config.toml")
    assert find_config(None, env, cwd) == home_file

    env["XDG_CONFIG_HOME"] = str(xdg)
    xdg_file = _write(xdg / "followupd" / "config.toml")
    assert find_config(None, env, cwd) == xdg_file

    cwd_file = _write(cwd / "followupd.toml")
    assert find_config(None, env, cwd) == cwd_file

    env["FOLLOWUPD_CONFIG"] = str(tmp_path / "from-env.toml")  # taken even if absent
    assert find_config(None, env, cwd) == tmp_path / "from-env.toml"

    explicit = tmp_path / "explicit.toml"
    assert find_config(explicit, env, cwd) == explicit


def test_find_config_nothing_found(tmp_path: Path, etc_config: Path) -> None:
    env = {"HOME": str(tmp_path / "home")}
    with pytest.raises(ConfigError) as caught:
        find_config(None, env, tmp_path)
    message = str(caught.value)
    assert "no config file found" in message
    assert "followupd init" in message
    assert str(tmp_path / "followupd.toml") in message
    assert str(tmp_path / "home" / ".config" / "followupd" / "config.toml") in message
    assert str(etc_config) in message


def test_cli_finds_config_in_cwd_and_env(
    home: Path, cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write(home / "followupd.toml", OWNER.replace("Claire Martin", "Claire Cwd"))
    result = cli("check", "--offline")
    assert result.code == 0, result
    assert "Claire Cwd" in result.out

    other = _write(home / "elsewhere" / "c.toml", OWNER.replace("Claire Martin", "Claire Env"))
    monkeypatch.setenv("FOLLOWUPD_CONFIG", str(other))
    result = cli("check", "--offline")
    assert result.code == 0, result
    assert "Claire Env" in result.out


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"STATE_DIRECTORY": "/srv/followupd"}, "/srv/followupd"),
        ({"STATE_DIRECTORY": "/srv/one:/srv/two", "XDG_STATE_HOME": "/x"}, "/srv/one"),
        ({"XDG_STATE_HOME": "/xdg/state", "HOME": "/home/c"}, "/xdg/state/followupd"),
        ({"HOME": "/home/c"}, "/home/c/.local/state/followupd"),
        ({"HOME": "/home/c", "STATE_DIRECTORY": "", "XDG_STATE_HOME": ""}, None),
    ],
)
def test_state_directory(environ: dict[str, str], expected: str | None) -> None:
    fallback = "/home/c/.local/state/followupd"
    assert state_directory(environ) == Path(expected or fallback)


def test_relative_paths_go_under_the_state_directory(tmp_path: Path) -> None:
    env = {"STATE_DIRECTORY": "/srv/state:/srv/other", "HOME": str(tmp_path)}
    text = OWNER + '[database]\nurl = "sqlite:///data/f.db"\n[feed]\ntoken_file = "t/feed.token"\n'
    settings = _settings(text, tmp_path, env)
    assert settings.state_dir == Path("/srv/state")
    assert settings.database.url == "sqlite:////srv/state/data/f.db"
    assert settings.feed.token_file == Path("/srv/state/t/feed.token")
    defaults = _settings(OWNER, tmp_path, env)
    assert defaults.database.url == "sqlite:////srv/state/followupd.db"
    assert defaults.feed.token_file == Path("/srv/state/feed.token")


def test_absolute_paths_are_kept(tmp_path: Path) -> None:
    text = OWNER + (
        '[database]\nurl = "sqlite:////var/lib/f/f.db"\n[feed]\ntoken_file = "/run/f/token"\n'
    )
    settings = _settings(text, tmp_path, {"STATE_DIRECTORY": "/srv/state"})
    assert settings.database.url == "sqlite:////var/lib/f/f.db"
    assert settings.feed.token_file == Path("/run/f/token")


def test_relative_password_file_is_next_to_the_config(tmp_path: Path) -> None:
    text = OWNER + (
        '[database]\npassword_env = "DB_PW"\n'
        '[smtp]\nhost = "smtp.example.net"\nusername = "c"\npassword_file = "secrets/smtp"\n'
        '[caldav]\nurl = "https://dav.example.net/"\nusername = "c"\n'
        'password_file = "/abs/caldav"\n'
    )
    config_file = tmp_path / "conf" / "followupd.toml"
    settings = parse_settings(text, config_file, {"HOME": str(tmp_path)})
    assert settings.smtp is not None
    assert settings.smtp.password_file == tmp_path / "conf" / "secrets" / "smtp"
    assert settings.caldav is not None
    assert settings.caldav.password_file == Path("/abs/caldav")
    assert settings.database.password_env == "DB_PW"


def test_relative_password_file_with_a_relative_config_path(home: Path) -> None:
    text = OWNER + '[smtp]\nhost = "smtp.example.net"\nusername = "c"\npassword_file = "pw"\n'
    settings = parse_settings(text, Path("followupd.toml"), {"HOME": str(home)})
    assert settings.smtp is not None
    assert settings.smtp.password_file == home / "pw"
    assert settings.smtp.password_file.is_absolute()


def test_postgresql_url_gets_the_psycopg_driver(tmp_path: Path) -> None:
    text = OWNER + '[database]\nurl = "postgresql://followupd@db.example.net:5433/followupd"\n'
    settings = _settings(text, tmp_path)
    assert settings.database.url == "postgresql+psycopg://followupd@db.example.net:5433/followupd"
    assert not settings.database.is_sqlite
    text = OWNER + '[database]\nurl = "postgresql+psycopg://f@db/f"\n'
    assert _settings(text, tmp_path).database.url == "postgresql+psycopg://f@db/f"


def test_database_password_comes_from_its_secret(tmp_path: Path) -> None:
    text = OWNER + '[database]\nurl = "postgresql://f@db/f"\npassword_env = "DB_PW"\n'
    settings = _settings(text, tmp_path)
    url = settings.database.sqlalchemy_url({"DB_PW": SECRET_VALUE})
    assert url.password == SECRET_VALUE
    assert url.drivername == "postgresql+psycopg"
    assert SECRET_VALUE not in settings.database.url


def test_password_in_database_url_is_refused(tmp_path: Path) -> None:
    text = OWNER + f'[database]\nurl = "postgresql://f:{SECRET_VALUE}@db/f"\n'
    with pytest.raises(ConfigError) as caught:
        _settings(text, tmp_path)
    problem = _problem_at(caught.value.problems, "database.url")
    assert problem.line == 5
    assert "password_file or password_env" in problem.message
    assert SECRET_VALUE not in str(caught.value)


@pytest.mark.parametrize("url", ["mysql://f@db/f", "not a url", "sqlite+pysqlite"])
def test_unsupported_database_url(tmp_path: Path, url: str) -> None:
    text = OWNER + f'[database]\nurl = "{url}"\n'
    problem = _problem_at(_problems(text, tmp_path), "database.url")
    assert problem.line == 5
    assert "sqlite" in problem.message


def test_the_database_url_may_come_from_the_environment(tmp_path: Path) -> None:
    environ = {"HOME": str(tmp_path), "FOLLOWUPD_DATABASE_URL": "postgresql://f@db.example/f"}
    text = OWNER + '[database]\npassword_env = "DB_PW"\n'
    settings = parse_settings(text, tmp_path / "followupd.toml", environ)
    assert settings.database.url == "postgresql+psycopg://f@db.example/f"
    assert settings.database.sqlalchemy_url({"DB_PW": SECRET_VALUE}).password == SECRET_VALUE
    assert parse_settings(OWNER, tmp_path / "f.toml", environ).database.url.startswith("postgres")
    text = OWNER + '[database]\nurl = "sqlite:///mine.db"\n'  # the file wins
    assert parse_settings(text, tmp_path / "f.toml", environ).database.is_sqlite


def test_a_bad_database_url_in_the_environment_is_named_as_such(tmp_path: Path) -> None:
    environ = {"HOME": str(tmp_path), "FOLLOWUPD_DATABASE_URL": "mysql://f@db/f"}
    with pytest.raises(ConfigError) as caught:
        parse_settings(OWNER, tmp_path / "followupd.toml", environ)
    (problem,) = caught.value.problems
    assert problem.where == "$FOLLOWUPD_DATABASE_URL (for database.url)"
    assert problem.line is None
    assert "only sqlite:/// and postgresql:// URLs" in problem.message


# -- secrets -----------------------------------------------------------------------------


def test_password_file_and_env_together_is_an_error(tmp_path: Path) -> None:
    text = OWNER + (
        '[smtp]\nhost = "smtp.example.net"\nusername = "c"\n'
        'password_file = "/run/pw"\npassword_env = "SMTP_PW"\n'
    )
    problem = _problem_at(_problems(text, tmp_path), "smtp")
    assert problem.line == 4
    assert "not both" in problem.message


def test_a_password_needs_a_username(tmp_path: Path) -> None:
    text = OWNER + '[smtp]\nhost = "smtp.example.net"\npassword_env = "SMTP_PW"\n'
    problem = _problem_at(_problems(text, tmp_path), "smtp")
    assert "username" in problem.message


def test_secret_reveal_reads_file_and_environment(tmp_path: Path) -> None:
    secret_file = tmp_path / "pw"
    secret_file.write_text(SECRET_VALUE + "\n", encoding="utf-8")
    assert Secret("smtp.password", secret_file, None).reveal({}) == SECRET_VALUE
    from_env = Secret("smtp.password", None, "SMTP_PW")
    assert from_env.reveal({"SMTP_PW": SECRET_VALUE}) == SECRET_VALUE
    assert Secret("smtp.password", None, None).reveal({}) is None


def test_secret_read_at_reveal_time_not_at_load(tmp_path: Path) -> None:
    text = OWNER + '[smtp]\nhost = "smtp.example.net"\nusername = "c"\npassword_file = "pw"\n'
    settings = _settings(text, tmp_path)  # the file does not exist yet: loading is fine
    assert settings.smtp is not None
    secret = settings.smtp.password("smtp")
    (tmp_path / "pw").write_text(SECRET_VALUE, encoding="utf-8")
    assert secret.reveal({}) == SECRET_VALUE
    (tmp_path / "pw").write_text("changed\n", encoding="utf-8")
    assert secret.reveal({}) == "changed"


def test_missing_secret_file_is_a_config_error(tmp_path: Path) -> None:
    secret = Secret("smtp.password", tmp_path / "absent", None)
    with pytest.raises(ConfigError) as caught:
        secret.reveal({})
    problem = caught.value.problems[0]
    assert problem.where == "smtp.password"
    assert problem.file == tmp_path / "absent"
    assert "smtp.password" in str(caught.value)
    assert caught.value.exit_code == EX_CONFIG


def test_unset_secret_variable_is_a_config_error() -> None:
    secret = Secret("smtp.password", None, "FOLLOWUPD_TEST_UNSET_PW")
    with pytest.raises(ConfigError) as caught:
        secret.reveal({"OTHER": "x"})
    problem = caught.value.problems[0]
    assert problem.where == "smtp.password"
    assert "FOLLOWUPD_TEST_UNSET_PW" in str(caught.value)
    assert "not set" in problem.message


def test_secret_value_is_never_in_repr(tmp_path: Path) -> None:
    secret_file = tmp_path / "pw"
    secret_file.write_text(SECRET_VALUE, encoding="utf-8")
    text = OWNER + '[smtp]\nhost = "smtp.example.net"\nusername = "c"\npassword_file = "pw"\n'
    settings = _settings(text, tmp_path)
    assert settings.smtp is not None
    secret = settings.smtp.password("smtp")
    assert secret.reveal({}) == SECRET_VALUE
    assert SECRET_VALUE not in repr(secret)
    assert SECRET_VALUE not in secret.describe()
    assert repr(secret) == f"<secret smtp.password: from file {secret_file}>"
    assert SECRET_VALUE not in repr(settings)
    env_secret = Secret("caldav.password", None, "CALDAV_PW")
    assert env_secret.reveal({"CALDAV_PW": SECRET_VALUE}) == SECRET_VALUE
    assert repr(env_secret) == "<secret caldav.password: from $CALDAV_PW>"


def test_secret_value_is_never_in_a_config_error(tmp_path: Path) -> None:
    text = OWNER + (
        f'[smtp]\nhost = "smtp.example.net"\nusername = "c"\npassword = "{SECRET_VALUE}"\n'
        f'[database]\nurl = "postgresql://u:{SECRET_VALUE}@db/f"\n'
    )
    with pytest.raises(ConfigError) as caught:
        _settings(text, tmp_path)
    problem = _problem_at(caught.value.problems, "smtp.password")
    assert problem.line == 7
    assert "password_" in problem.message  # points at password_file / password_env
    assert _problem_at(caught.value.problems, "database.url").line == 9
    assert SECRET_VALUE not in str(caught.value)
    assert all(SECRET_VALUE not in repr(p) for p in caught.value.problems)


def test_check_offline_never_prints_the_secret(home: Path, cli: RunCli) -> None:
    (home / "smtp.pw").write_text(SECRET_VALUE + "\n", encoding="utf-8")
    path = _write(
        home / "followupd.toml",
        OWNER + '[smtp]\nhost = "smtp.example.net"\nusername = "c"\npassword_file = "smtp.pw"\n',
    )
    result = cli("check", "--offline", "--config", path)
    assert result.code == 0, result
    assert "smtp password" in result.out
    assert "readable" in result.out
    assert str(home / "smtp.pw") in result.out
    assert SECRET_VALUE not in result.out
    assert SECRET_VALUE not in result.err


def test_check_offline_with_password_env(
    home: Path, cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FOLLOWUPD_TEST_CALDAV_PW", SECRET_VALUE)
    path = _write(
        home / "followupd.toml",
        OWNER + '[caldav]\nurl = "https://dav.example.net/"\nusername = "c"\n'
        'password_env = "FOLLOWUPD_TEST_CALDAV_PW"\n',
    )
    result = cli("check", "--offline", "--config", path)
    assert result.code == 0, result
    assert "$FOLLOWUPD_TEST_CALDAV_PW" in result.out
    assert SECRET_VALUE not in result.out + result.err


def test_check_offline_reports_an_unreadable_secret(home: Path, cli: RunCli) -> None:
    path = _write(
        home / "followupd.toml",
        OWNER + '[smtp]\nhost = "smtp.example.net"\nusername = "c"\npassword_file = "absent"\n',
    )
    result = cli("check", "--offline", "--config", path)
    assert result.code == 78, result
    assert "smtp password" in result.out
    assert "FAILED" in result.out


# -- security and sanity validations ------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://dav.example.net/",
        "http://192.168.1.10:5232/",
        "http://localhost.example.net/",
        "ftp://dav.example.net/",
        "dav.example.net",
    ],
)
def test_caldav_plain_http_to_a_remote_host_is_refused(tmp_path: Path, url: str) -> None:
    text = OWNER + f'[caldav]\nurl = "{url}"\n'
    problem = _problem_at(_problems(text, tmp_path), "caldav.url")
    assert problem.line == 5
    assert "https" in problem.message


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:5232/",
        "http://127.0.0.2/dav/",
        "http://[::1]:5232/",
        "http://localhost:5232/",
        "http://LOCALHOST/",
        "https://dav.example.net/",
        "https://192.168.1.10/",
    ],
)
def test_caldav_url_allowed(tmp_path: Path, url: str) -> None:
    settings = _settings(OWNER + f'[caldav]\nurl = "{url}"\n', tmp_path)
    assert settings.caldav is not None
    assert settings.caldav.url == url


def test_smtp_password_without_tls_to_a_remote_host_is_refused(tmp_path: Path) -> None:
    text = OWNER + (
        '[smtp]\nhost = "smtp.example.net"\nsecurity = "none"\n'
        'username = "c"\npassword_env = "SMTP_PW"\n'
    )
    problem = _problem_at(_problems(text, tmp_path), "smtp")
    assert problem.line == 4
    assert "TLS" in problem.message


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost"])
def test_smtp_password_without_tls_on_loopback_is_allowed(tmp_path: Path, host: str) -> None:
    text = OWNER + (
        f'[smtp]\nhost = "{host}"\nsecurity = "none"\nusername = "c"\npassword_env = "P"\n'
    )
    smtp = _settings(text, tmp_path).smtp
    assert smtp is not None
    assert (smtp.security, smtp.effective_port) == ("none", 25)


def test_smtp_without_password_and_tls_is_allowed(tmp_path: Path) -> None:
    text = OWNER + '[smtp]\nhost = "relay.example.net"\nsecurity = "none"\n'
    smtp = _settings(text, tmp_path).smtp
    assert smtp is not None
    assert not smtp.has_password


@pytest.mark.parametrize(("security", "port"), [("starttls", 587), ("tls", 465), ("none", 25)])
def test_smtp_default_port_follows_security(tmp_path: Path, security: str, port: int) -> None:
    text = OWNER + f'[smtp]\nhost = "smtp.example.net"\nsecurity = "{security}"\n'
    smtp = _settings(text, tmp_path).smtp
    assert smtp is not None
    assert smtp.port is None
    assert smtp.effective_port == port


def test_smtp_security_must_be_known(tmp_path: Path) -> None:
    text = OWNER + '[smtp]\nhost = "smtp.example.net"\nsecurity = "ssl"\n'
    problem = _problem_at(_problems(text, tmp_path), "smtp.security")
    assert problem.line == 6
    assert "starttls" in problem.message


@pytest.mark.parametrize(
    "sender",
    [
        "Claire <claire@cabinet.example>\\r\\nBcc: victim@evil.example",
        "claire@cabinet.example\\nBcc: victim@evil.example",
        "Claire <claire@cabinet.example>\\r",
    ],
)
def test_smtp_from_with_line_breaks_is_refused(tmp_path: Path, sender: str) -> None:
    text = OWNER + f'[smtp]\nhost = "smtp.example.net"\nfrom = "{sender}"\n'
    problem = _problem_at(_problems(text, tmp_path), "smtp.from")
    assert problem.line == 6
    assert "line breaks" in problem.message


def test_smtp_from_must_hold_an_address(tmp_path: Path) -> None:
    text = OWNER + '[smtp]\nhost = "smtp.example.net"\nfrom = "Claire Martin"\n'
    assert _problem_at(_problems(text, tmp_path), "smtp.from").line == 6
    good = OWNER + '[smtp]\nhost = "smtp.example.net"\nfrom = "Claire <c@cabinet.example>"\n'
    smtp = _settings(good, tmp_path).smtp
    assert smtp is not None
    assert smtp.sender == "Claire <c@cabinet.example>"


def test_owner_name_with_a_line_break_is_refused(tmp_path: Path) -> None:
    text = '[owner]\nname = "Claire\\nBcc: x@evil.example"\nemail = "c@cabinet.example"\n'
    problem = _problem_at(_problems(text, tmp_path), "owner.name")
    assert problem.line == 2


def test_bad_owner_email(tmp_path: Path) -> None:
    text = '[owner]\nname = "Claire"\nemail = "claire at cabinet"\n'
    problem = _problem_at(_problems(text, tmp_path), "owner.email")
    assert problem.line == 3
    assert "email address" in problem.message


def test_bad_time_zone(tmp_path: Path) -> None:
    problem = _problem_at(
        _problems(OWNER + 'timezone = "Mars/Olympus"\n', tmp_path), "owner.timezone"
    )
    assert problem.line == 4
    assert "unknown time zone 'Mars/Olympus'" in problem.message


def test_bad_country_and_language(tmp_path: Path) -> None:
    problems = _problems(OWNER + 'country = "ZZ"\nlanguage = "de"\n', tmp_path)
    country = _problem_at(problems, "owner.country")
    assert country.line == 4
    assert "unknown country 'ZZ'" in country.message
    assert _problem_at(problems, "owner.language").line == 5


@pytest.mark.parametrize("choice", ["digest", "each", "off"])
def test_how_reminders_reach_the_owner_by_email(tmp_path: Path, choice: str) -> None:
    assert _settings(OWNER, tmp_path).owner.reminders_by_email == "digest", "the default"
    settings = _settings(OWNER + f'reminders_by_email = "{choice}"\n', tmp_path)
    assert settings.owner.reminders_by_email == choice
    assert settings.owners[0].reminders_by_email == choice


def test_an_unknown_reminders_by_email_lists_the_accepted_values(tmp_path: Path) -> None:
    text = OWNER + 'language = "en"\nreminders_by_email = "weekly"\n'
    problem = _problem_at(_problems(text, tmp_path), "owner.reminders_by_email")
    assert problem.file == tmp_path / "followupd.toml"
    assert problem.line == text.splitlines().index('reminders_by_email = "weekly"') + 1
    assert "'weekly'" in problem.message
    for accepted in ("digest", "each", "off"):
        assert repr(accepted) in problem.message
    assert "owner.reminders_by_email" in str(problem)


def test_country_is_upper_cased(tmp_path: Path) -> None:
    settings = _settings(OWNER + 'country = "be"\ntimezone = "Europe/Brussels"\n', tmp_path)
    assert settings.owner.country == "BE"
    assert settings.owner.timezone == "Europe/Brussels"


@pytest.mark.parametrize(
    ("window", "message"),
    [
        ("18:00-09:00", "open before it closes"),
        ("09:00-09:00", "open before it closes"),
        ("9:00-18:00", "HH:MM-HH:MM"),
        ("09:00-25:00", "HH:MM-HH:MM"),
        ("09:00 18:00", "HH:MM-HH:MM"),
    ],
)
def test_bad_send_window(tmp_path: Path, window: str, message: str) -> None:
    text = OWNER + f'[business]\nsend_window = "{window}"\n'
    problem = _problem_at(_problems(text, tmp_path), "business.send_window")
    assert problem.line == 5
    assert message in problem.message


def test_send_window_until_midnight(tmp_path: Path) -> None:
    text = OWNER + '[business]\nsend_window = "08:30-24:00"\n'
    assert _settings(text, tmp_path).business.window == (time(8, 30), time.max)


def test_working_days(tmp_path: Path) -> None:
    twice = _problems(OWNER + '[business]\nworking_days = ["mon", "tue", "mon"]\n', tmp_path)
    problem = _problem_at(twice, "business.working_days")
    assert problem.line == 5
    assert "twice" in problem.message
    unknown = _problems(OWNER + '[business]\nworking_days = ["mon", "monday"]\n', tmp_path)
    assert _problem_at(unknown, "business.working_days[1]").line == 5
    empty = _problems(OWNER + "[business]\nworking_days = []\n", tmp_path)
    assert "at least one" in _problem_at(empty, "business.working_days").message
    text = OWNER + '[business]\nworking_days = ["sun", "sat"]\n'
    assert _settings(text, tmp_path).business.weekday_numbers == frozenset({5, 6})


def test_duplicate_step_names(tmp_path: Path) -> None:
    text = OWNER + (
        "[rules.invoice_due]\n"
        "steps = [\n"
        '  { name = "nudge", offset_days = 1, audience = "client" },\n'
        '  { name = "nudge", offset_days = 8, audience = "client" },\n'
        "]\n"
    )
    problem = _problem_at(_problems(text, tmp_path), "rules.invoice_due.steps")
    assert problem.line == 5
    assert "unique" in problem.message
    assert "nudge" in problem.message


def test_bad_step_fields(tmp_path: Path) -> None:
    text = OWNER + (
        "[rules.deposit_due]\n"
        "steps = [\n"
        '  { name = "Request 1", offset_days = 0, audience = "client" },\n'
        '  { name = "nudge", offset_days = 400, audience = "everyone" },\n'
        "]\n"
    )
    problems = _problems(text, tmp_path)
    assert _problem_at(problems, "rules.deposit_due.steps[0].name").line == 6
    assert _problem_at(problems, "rules.deposit_due.steps[1].offset_days").line == 7
    assert _problem_at(problems, "rules.deposit_due.steps[1].audience").line == 7


def test_custom_steps_and_disabled_rule(tmp_path: Path) -> None:
    text = OWNER + (
        "[rules.invoice_due]\n"
        "grace_days = 3\n"
        'steps = [{ name = "only", offset_days = 5, audience = "client" }]\n'
        "[rules.new_year_greetings]\n"
        "enabled = false\n"
    )
    rules = _settings(text, tmp_path).rules
    assert rules.invoice_due.steps == (Step(name="only", offset_days=5, audience="client"),)
    assert rules.invoice_due.grace_days == 3
    assert not rules.new_year_greetings.enabled
    assert rules.deposit_due == RulesConfig().deposit_due


@pytest.mark.parametrize("listen", ["8731", "127.0.0.1:0", "127.0.0.1:70000", "::1:8731"])
def test_bad_feed_listen(tmp_path: Path, listen: str) -> None:
    text = OWNER + f'[feed]\nlisten = "{listen}"\n'
    problem = _problem_at(_problems(text, tmp_path), "feed.listen")
    assert problem.line == 5
    assert "HOST:PORT" in problem.message


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("https://calendar.example.net", "https://calendar.example.net"),
        ("HTTPS://Calendar.Example.net/", "https://calendar.example.net"),
        ("https://example.net:8443", "https://example.net:8443"),
        ("http://[2001:db8::1]:8080", "http://[2001:db8::1]:8080"),
    ],
)
def test_feed_public_url_is_kept_as_an_origin(tmp_path: Path, given: str, kept: str) -> None:
    feed = _settings(OWNER + f'[feed]\npublic_url = "{given}"\n', tmp_path).feed
    assert feed.public_url == kept


def test_feed_public_url_is_unset_by_default(tmp_path: Path) -> None:
    assert _settings(OWNER, tmp_path).feed.public_url is None


@pytest.mark.parametrize(
    "given",
    [
        "calendar.example.net",  # no scheme
        "ftp://calendar.example.net",
        "webcal://calendar.example.net",
        "https://",
        "https:///feed",
        "https://calendar.example.net/followupd",  # a path: the routes are at the root
        "https://calendar.example.net/?x=1",
        "https://calendar.example.net#top",
        "https://user:secret@calendar.example.net",
        "https://calendar.example.net:0",
        "https://calendar.example.net:70000",
        "https://calendar example.net",
        "",
    ],
)
def test_bad_feed_public_url(tmp_path: Path, given: str) -> None:
    text = OWNER + f'[feed]\nlisten = "127.0.0.1:8731"\npublic_url = "{given}"\n'
    problem = _problem_at(_problems(text, tmp_path), "feed.public_url")
    assert problem.line == 6
    assert "https://calendar.example.net" in problem.message
    assert "secret" not in problem.message


def test_feed_public_url_is_a_string(tmp_path: Path) -> None:
    problem = _problem_at(
        _problems(OWNER + "[feed]\npublic_url = 443\n", tmp_path), "feed.public_url"
    )
    assert problem.line == 5


def test_feed_listen_ipv6(tmp_path: Path) -> None:
    feed = _settings(OWNER + '[feed]\nlisten = "[::1]:9000"\n', tmp_path).feed
    assert (feed.host, feed.port) == ("::1", 9000)


def test_settings_are_frozen(tmp_path: Path) -> None:
    settings = _settings(OWNER, tmp_path)
    with pytest.raises(ValueError, match="frozen"):
        settings.owner.name = "Someone"  # type: ignore[misc]


def test_load_settings_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(tmp_path / "absent.toml", {"HOME": str(tmp_path)})
    assert caught.value.problems[0].file == tmp_path / "absent.toml"
    assert "followupd init" in str(caught.value)


def test_load_settings_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(OWNER.replace("Claire", "Cl\xe9a").encode("latin-1"))
    with pytest.raises(ConfigError) as caught:
        load_settings(path, {"HOME": str(tmp_path)})
    assert caught.value.problems[0].file == path
    assert "cannot read" in str(caught.value)


def test_an_owner_phone_that_is_no_number_names_its_line(tmp_path: Path) -> None:
    problem = _problem_at(_problems(OWNER + 'phone = "ask Claire"\n', tmp_path), "owner.phone")
    assert problem.line == 4
    assert "expected a phone number like '+33 6 12 34 56 78'" in problem.message


# -- the command line on a valid config ---------------------------------------------------


def test_check_offline_on_a_valid_config(home: Path, cli: RunCli) -> None:
    path = _write(home / "followupd.toml", OWNER + 'phone = "+33 6 00 00 00 00"\n')
    result = cli("check", "--offline", "--config", path)
    assert result.code == 0, result
    assert "Claire Martin <claire@cabinet.example>" in result.out
    assert "Europe/Paris" in result.out
    assert "09:00-18:00" in result.out
    assert "config is valid" in result.out
    assert str(home / ".local" / "state" / "followupd") in result.out
    assert result.err == ""


def test_check_offline_on_the_example_config(home: Path, cli: RunCli) -> None:
    result = cli("check", "--offline", "--config", EXAMPLE)
    assert result.code == 0, result
    assert "Claire Martin <claire@cabinet.example>" in result.out
    assert "invoice_due" in result.out


# -- regressions: dotted keys, escaped quotes in multi-line strings ----------------------


def test_unknown_rule_written_as_a_dotted_key_has_a_line(tmp_path: Path) -> None:
    text = "rules.invoic_due.enabled = true\n" + OWNER
    problem = _problem_at(_problems(text, tmp_path), "rules.invoic_due")
    assert "did you mean 'invoice_due'?" in problem.message
    assert problem.line == 1


def test_valid_multi_line_string_with_escaped_quotes(home: Path, cli: RunCli) -> None:
    path = _write(
        home / "followupd.toml",
        '[owner]\nname = """Claire \\""" \'\'\' M"""\nemail = "c@cabinet.example"\n',
    )
    result = cli("check", "--offline", "--config", path)
    assert result.code == 0, result
    assert "Claire \"\"\" ''' M" in result.out


def test_check_offline_names_the_variable_of_a_secret_that_is_not_set(
    home: Path, cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FOLLOWUPD_TEST_UNSET_PW", raising=False)
    path = _write(
        home / "followupd.toml",
        OWNER + '[caldav]\nurl = "https://dav.example.net/"\nusername = "c"\n'
        'password_env = "FOLLOWUPD_TEST_UNSET_PW"\n',
    )
    result = cli("check", "--offline", "--config", path)
    assert result.code == 78, result
    said = " ".join(result.out.split())
    assert "caldav password FAILED $FOLLOWUPD_TEST_UNSET_PW" in said, result.out
    assert "environment variable is not set" in said


# -- a table declared twice -----------------------------------------------------------------


def test_table_declared_twice_is_the_only_problem(home: Path, cli: RunCli) -> None:
    """The starter config with a [business] appended: its keys are not blamed on [database]."""
    starter = EXAMPLE.read_text(encoding="utf-8")
    first = starter.splitlines().index("[business]") + 1
    text = starter.rstrip("\n") + '\n[business]\nsend_window = "08:00-18:00"\nsned = 1\n'
    header = len(starter.rstrip("\n").splitlines()) + 1
    path = _write(home / "followupd.toml", text)
    result = cli("check", "--offline", "--config", path)
    assert result.code == 78, result
    problems = [line.strip() for line in result.err.splitlines() if str(path) in line]
    assert problems == [
        f"{path}:{header}: TOML syntax error: Cannot declare [business] twice; "
        f"declared first at line {first}; add the keys there"
    ], result.err
