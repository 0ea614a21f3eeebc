"""The command line as a user drives it: init, import, quick updates, views, errors."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.engine import URL, make_url

from followupd.store.db import Store
from tests.conftest import MINIMAL_CONFIG, RunCli, database_digest, schema_revision

DEMO = Path(__file__).parent.parent / "config" / "demo.toml"


@pytest.fixture
def config(home: Path) -> Path:
    """A config file in the working directory, with its database under HOME's state dir."""
    path = home / "followupd.toml"
    path.write_text(MINIMAL_CONFIG, encoding="utf-8")
    return path


@pytest.fixture
def demo(cli: RunCli, config: Path) -> Path:
    """An initialised store holding the demo data."""
    result = cli("init", "--demo", "--today", "2026-11-22")
    assert result.code == 0, result
    return config


def state_db(home: Path) -> Path:
    return home / ".local" / "state" / "followupd" / "followupd.db"


def test_init_writes_a_starter_config_and_the_database(
    cli: RunCli, home: Path, database_url: URL
) -> None:
    result = cli("init")
    assert result.code == 0, result
    written = home / ".config" / "followupd" / "config.toml"
    assert written.is_file()
    assert f"wrote a starter config to {written}" in result.out
    head = Store.open(make_url("sqlite://")).head_revision()
    assert f"schema none -> {head}" in result.out
    assert schema_revision(database_url) == head
    if database_url.get_backend_name() == "sqlite":  # the default place, private
        assert state_db(home).is_file()
        assert oct(state_db(home).parent.stat().st_mode & 0o777) == "0o700"

    again = cli("init")
    assert again.code == 0, again
    assert "exists, left as it is" in again.out
    assert "up to date" in again.out
    assert cli("missions").code == 0


def test_init_demo_then_missions_lists_every_status(cli: RunCli, demo: Path) -> None:
    result = cli("missions")
    assert result.code == 0, result
    for status in ("proposed", "active", "on_hold", "disputed", "closed"):
        assert status in result.out
    assert "morvan-tms" in result.out


def test_importing_the_demo_twice_reports_zero_changes(cli: RunCli, demo: Path) -> None:
    result = cli("import", DEMO)
    assert result.code == 0, result
    assert result.out.strip().endswith("0 changes")


def test_bad_data_file_exits_65_listing_both_problems(
    cli: RunCli, demo: Path, database_url: URL, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        '[[invoices]]\nnumber = "F-9"\nmission = "no-such-mission"\namount = 10\n'
        "issued = 2026-13-01\ndue = 2026-12-01\n",
        encoding="utf-8",
    )
    before = database_digest(database_url)
    result = cli("import", bad)
    assert result.code == 65, result
    assert "nothing was imported (2 problems)" in result.err
    assert f"{bad}:3: invoices[0] (F-9) mission: refers to mission 'no-such-mission'" in result.err
    assert f"{bad}:5: issued: invalid date 2026-13-01: month must be in 1..12" in result.err
    assert database_digest(database_url) == before


def test_config_errors_exit_78_with_lines(cli: RunCli, config: Path) -> None:
    config.write_text(MINIMAL_CONFIG + "[business]\nsend_window = 9\n", encoding="utf-8")
    result = cli("missions")
    assert result.code == 78, result
    assert f"{config}:7: business.send_window: Input should be a valid string" in result.err


def test_no_config_anywhere_says_how_to_start(cli: RunCli, home: Path) -> None:
    result = cli("missions")
    assert result.code == 78
    assert "run `followupd init`" in result.err


def test_commands_before_init_ask_for_it(cli: RunCli, config: Path, database_url: URL) -> None:
    result = cli("missions")
    assert result.code == 1
    on_sqlite = database_url.get_backend_name() == "sqlite"
    assert ("there is no database at" if on_sqlite else "has no followupd schema") in result.err
    assert "run `followupd init`" in result.err
    assert "Traceback" not in result.err
    check = cli("check")
    assert check.code == 69
    assert "run `followupd init`" in check.out
    assert not state_db(config.parent).exists(), "only init may create the database"
    assert database_url.get_backend_name() == "sqlite" or schema_revision(database_url) is None


def test_global_options_before_or_after_the_subcommand(
    cli: RunCli, demo: Path, tmp_path: Path
) -> None:
    moved = tmp_path / "elsewhere.toml"
    moved.write_text(demo.read_text(encoding="utf-8"), encoding="utf-8")
    demo.unlink()
    assert cli("--config", moved, "missions").code == 0
    assert cli("missions", "--config", moved).code == 0
    assert cli("missions", f"--config={moved}").code == 0
    plain = cli("show", "nope", "--config", moved)
    assert plain.code == 1
    assert plain.err.strip() == "followupd: no mission with key 'nope'"
    debug = cli("show", "nope", "--debug", "--config", moved)
    assert "Traceback" in debug.err


def test_show_prints_a_mission_with_its_records(cli: RunCli, demo: Path) -> None:
    result = cli("show", "lumen-refonte-crm")
    assert result.code == 0, result
    for expected in ("Atelier Lumen", "Sophie Garnier", "F-2026-045", "crm-export-incomplet"):
        assert expected in result.out
    short = cli("show", "Lumen-Refonte")
    assert short.code == 1
    assert "no mission with key 'Lumen-Refonte'; did you mean 'lumen-refonte-crm'?" in short.err
    many = cli("show", "lumen").err
    assert many.count("'lumen-") == 3 and many.endswith(" (among others)?\n"), many


def test_invoice_paid(cli: RunCli, demo: Path) -> None:
    result = cli("invoice", "paid", "F-2026-041", "--on", "2026-11-24")
    assert result.code == 0, result
    assert "invoice F-2026-041: paid on 2026-11-24" in result.out
    assert "2026-11-24" in cli("show", "harborline-data-platform").out
    missing = cli("invoice", "paid", "F-0000")
    assert missing.code == 1
    assert "no invoice numbered 'F-0000'" in missing.err
    assert "did you mean" not in missing.err, "nothing like it"
    lower = cli("invoice", "paid", "f-2026-041")
    assert lower.code == 1
    assert "no invoice numbered 'f-2026-041'; did you mean 'F-2026-041'?" in lower.err
    bad_date = cli("invoice", "paid", "F-2026-041", "--on", "yesterday")
    assert bad_date.code == 2
    assert "expected a date" in bad_date.err


def test_issue_lifecycle(cli: RunCli, demo: Path) -> None:
    opened = cli("issue", "open", "lumen-refonte-crm", "Serveur de recette indisponible",
                 "--severity", "critical", "--at", "2026-11-23T10:00")  # fmt: skip
    assert opened.code == 0, opened
    assert "issue lumen-refonte-crm-3: opened" in opened.out
    informed = cli("issue", "informed", "lumen-refonte-crm-3", "--at", "2026-11-23T11:00")
    assert "client informed at 2026-11-23T11:00:00+01:00" in informed.out
    resolved = cli("issue", "resolve", "lumen-refonte-crm-3", "--at", "2026-11-24")
    assert "resolved at 2026-11-24T00:00:00+01:00" in resolved.out
    shown = cli("show", "lumen-refonte-crm").out
    assert "2026-11-23 10:00" in shown
    assert "2026-11-24 00:00" in shown
    two_lines = cli("issue", "open", "lumen-refonte-crm", "a\nb")
    assert two_lines.code == 1
    assert "one non-empty line" in two_lines.err


def test_touch_records_once(cli: RunCli, demo: Path) -> None:
    args = ("touch", "lumen-refonte-crm", "--kind", "call", "--contact", "sophie-garnier",
            "--at", "2026-11-23T15:30", "--note", "Export relancé")  # fmt: skip
    first = cli(*args)
    assert first.code == 0, first
    assert "recorded" in first.out and "already" not in first.out
    assert "already recorded" in cli(*args).out
    assert "Export relancé" in cli("show", "lumen-refonte-crm").out
    wrong = cli("touch", "lumen-refonte-crm", "--kind", "call", "--contact", "rachel-kim")
    assert wrong.code == 1
    assert "is not a contact of 'atelier-lumen'" in wrong.err


def test_unreachable_database_exits_69(cli: RunCli, config: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config.write_text(
        MINIMAL_CONFIG + f'[database]\nurl = "postgresql://u@127.0.0.1:{port}/db"\n',
        encoding="utf-8",
    )
    result = cli("missions")
    assert result.code == 69, result
    assert "cannot reach the database postgresql+psycopg://u@127.0.0.1" in result.err
    check = cli("check")
    assert check.code == 69
    assert "FAILED" in check.out


@pytest.mark.slow
def test_python_dash_m_runs_the_same_command_line(tmp_path: Path) -> None:
    env = {**os.environ, "HOME": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "followupd", "--help"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    for command in ("init", "check", "import", "invoice", "issue", "touch", "missions", "show"):
        assert command in result.stdout
