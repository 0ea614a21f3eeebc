"""`followupd import` checks payment terms against the legal cap (L441-10 I), on both engines.

An invoice due beyond it is imported with a warning naming the file, the record and
the line; with ``payment_terms_check = "error"`` the import is refused. Only a French
owner (the seller's law) and a business client are concerned.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.engine import URL

from followupd.config.load import parse_settings
from followupd.config.settings import Settings
from followupd.errors import DataError
from followupd.sources.files.importer import ImportReport, import_files
from followupd.sources.files.payment_terms import TermsPolicy, terms_policies
from followupd.store.db import Store
from followupd.store.models import Invoice
from tests.conftest import MINIMAL_CONFIG, RunCli, database_digest
from tests.rulekit import BOB_IN_MONTREAL, CLAIRE, PARIS, owner_settings

DEMO = Path(__file__).parent.parent / "config" / "demo.toml"
CLIENT = """\
[[clients]]
key = "acme"
name = "ACME SA"
"""
MISSION = """\
[[missions]]
key = "acme-audit"
client = "acme"
title = "Audit du SI"
start = 2026-09-01
"""


def invoice(number: str, issued: str, due: str, mission: str = "acme-audit") -> str:
    return (
        f'[[invoices]]\nnumber = "{number}"\nmission = "{mission}"\namount = 1200.00\n'
        f"issued = {issued}\ndue = {due}\n"
    )


# F-1: 60 days to the day; F-2: 91 days; F-3: 45 days end of month (agreed or not)
INVOICES = (
    invoice("F-1", "2026-10-01", "2026-11-30")
    + invoice("F-2", "2026-10-01", "2026-12-31")
    + invoice("F-3", "2026-01-15", "2026-03-31")
)
DATA = CLIENT + MISSION + INVOICES


def write(tmp_path: Path, text: str, name: str = "data.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def line_of(text: str, needle: str, after: str) -> int:
    """The 1-based line of the first `needle` after the line holding `after`."""
    lines = text.splitlines()
    start = next(number for number, line in enumerate(lines) if after in line)
    return (
        next(number for number, line in enumerate(lines) if number > start and needle in line) + 1
    )


def run_import(
    store: Store, path: Path, settings: Settings, owners: tuple[str, ...] = ("owner",)
) -> ImportReport:
    return import_files(store, [path], PARIS, owners, terms=terms_policies(settings))


def numbers(store: Store) -> set[str]:
    with store.session() as session:
        return set(session.scalars(select(Invoice.number)))


def test_an_invoice_beyond_sixty_days_is_imported_with_a_located_warning(
    store: Store, tmp_path: Path
) -> None:
    path = write(tmp_path, DATA)
    report = run_import(store, path, owner_settings(tmp_path))
    assert numbers(store) == {"F-1", "F-2", "F-3"}, "imported all the same"
    assert [str(warning) for warning in report.warnings] == [
        f"{path}:{line_of(DATA, 'due', 'F-2')}: invoices[1] (F-2) due: 2026-12-31 is 31 days "
        "beyond the legal cap on payment terms between professionals (L441-10 I C. com.): at "
        "most 60 days from the issue date, issued on 2026-10-01, so 2026-11-30 at the latest",
        f"{path}:{line_of(DATA, 'due', 'F-3')}: invoices[2] (F-3) due: 2026-03-31 is 15 days "
        "beyond the legal cap on payment terms between professionals (L441-10 I C. com.): at "
        "most 60 days from the issue date, issued on 2026-01-15, so 2026-03-16 at the latest; "
        'within "45 jours fin de mois", which a contract may expressly agree '
        "([rules.invoice_due] end_of_month_terms = true)",
    ]


def test_agreed_end_of_month_terms_allow_45_days_end_of_month(store: Store, tmp_path: Path) -> None:
    settings = owner_settings(tmp_path, "[rules.invoice_due]\nend_of_month_terms = true\n")
    report = run_import(store, write(tmp_path, DATA), settings)
    assert [warning.where for warning in report.warnings] == ["invoices[1] (F-2) due"]
    assert "or 45 days end of month" in report.warnings[0].message


def test_with_error_the_import_is_refused_and_nothing_written(store: Store, tmp_path: Path) -> None:
    settings = owner_settings(tmp_path, '[rules.invoice_due]\npayment_terms_check = "error"\n')
    path = write(tmp_path, DATA)
    with pytest.raises(DataError) as caught:
        run_import(store, path, settings)
    assert [problem.where for problem in caught.value.problems] == [
        "invoices[1] (F-2) due",
        "invoices[2] (F-3) due",
    ]
    assert caught.value.problems[0].line == line_of(DATA, "due", "F-2")
    assert numbers(store) == set()


def test_off_checks_nothing(store: Store, tmp_path: Path) -> None:
    settings = owner_settings(tmp_path, '[rules.invoice_due]\npayment_terms_check = "off"\n')
    assert run_import(store, write(tmp_path, DATA), settings).warnings == []
    assert numbers(store) == {"F-1", "F-2", "F-3"}


def test_a_consumer_client_is_not_under_the_cap(store: Store, tmp_path: Path) -> None:
    consumer = CLIENT + 'kind = "consumer"\n' + MISSION + INVOICES
    settings = owner_settings(tmp_path, '[rules.invoice_due]\npayment_terms_check = "error"\n')
    assert run_import(store, write(tmp_path, consumer), settings).warnings == []
    assert numbers(store) == {"F-1", "F-2", "F-3"}


def test_an_owner_outside_france_is_not_under_french_law(store: Store, tmp_path: Path) -> None:
    settings = owner_settings(tmp_path, 'country = "BE"\n')
    assert run_import(store, write(tmp_path, DATA), settings).warnings == []


def test_the_client_and_the_mission_stored_earlier_decide(store: Store, tmp_path: Path) -> None:
    settings = owner_settings(tmp_path)
    consumer = CLIENT + 'kind = "consumer"\n' + MISSION
    run_import(store, write(tmp_path, consumer, "first.toml"), settings)
    later = invoice("F-2", "2026-10-01", "2026-12-31")
    assert run_import(store, write(tmp_path, later, "later.toml"), settings).warnings == []
    # the client named again without its kind stays a consumer
    again = CLIENT + invoice("F-4", "2026-10-01", "2026-12-31")
    assert run_import(store, write(tmp_path, again, "again.toml"), settings).warnings == []
    # made a business: the same invoice is now beyond the cap
    business = CLIENT + 'kind = "business"\n' + invoice("F-5", "2026-10-01", "2026-12-31")
    report = run_import(store, write(tmp_path, business, "business.toml"), settings)
    assert [warning.where for warning in report.warnings] == ["invoices[0] (F-5) due"]


def agency(tmp_path: Path, extra: str = "") -> Settings:
    """Claire in Paris and Bob in Montreal; `extra` after Bob's table."""
    text = CLAIRE + BOB_IN_MONTREAL + extra
    return parse_settings(text, tmp_path / "followupd.toml", {"HOME": str(tmp_path)})


def test_each_owner_by_their_country_and_their_own_options(store: Store, tmp_path: Path) -> None:
    settings = agency(tmp_path)
    assert terms_policies(settings) == {
        "claire": TermsPolicy("warn", False, "FR"),
        "bob": TermsPolicy("warn", False, "CA"),
    }
    data = (
        CLIENT
        + MISSION  # no owner: the first, Claire
        + MISSION.replace("acme-audit", "acme-bob") + 'owner = "bob"\n'
        + invoice("F-2", "2026-10-01", "2026-12-31")
        + invoice("B-2", "2026-10-01", "2026-12-31", mission="acme-bob")
    )  # fmt: skip
    report = run_import(store, write(tmp_path, data), settings, ("claire", "bob"))
    assert [warning.where for warning in report.warnings] == ["invoices[0] (F-2) due"]

    strict = agency(tmp_path, '[owners.rules.invoice_due]\npayment_terms_check = "error"\n')
    assert terms_policies(strict)["bob"].check == "error"
    assert terms_policies(strict)["claire"].check == "warn"


def test_the_demo_is_within_the_cap(store: Store, tmp_path: Path) -> None:
    settings = owner_settings(tmp_path, '[rules.invoice_due]\npayment_terms_check = "error"\n')
    assert run_import(store, DEMO, settings).warnings == []


def test_no_policy_no_check(store: Store, tmp_path: Path) -> None:
    assert import_files(store, [write(tmp_path, DATA)], PARIS).warnings == []


# -- the command line ---------------------------------------------------------------------


@pytest.fixture
def config(home: Path) -> Path:
    path = home / "followupd.toml"
    path.write_text(MINIMAL_CONFIG, encoding="utf-8")
    return path


def test_import_warns_on_stderr_and_exits_0(cli: RunCli, config: Path, tmp_path: Path) -> None:
    assert cli("init").code == 0
    path = write(tmp_path, DATA)
    result = cli("import", path)
    assert result.code == 0, result
    assert "invoices │ 3" in result.out and "5 changes" in result.out
    assert "followupd: imported with 2 warnings:" in result.err
    due_line = line_of(DATA, "due", "F-2")
    assert f"  warning: {path}:{due_line}: invoices[1] (F-2) due: 2026-12-31 is 31 days" in (
        result.err
    )
    shown = cli("show", "acme-audit")
    assert "F-2" in shown.out


def test_import_with_error_exits_65_and_imports_nothing(
    cli: RunCli, config: Path, tmp_path: Path, database_url: URL
) -> None:
    config.write_text(
        MINIMAL_CONFIG + '[rules.invoice_due]\npayment_terms_check = "error"\n', encoding="utf-8"
    )
    assert cli("init").code == 0
    before = database_digest(database_url)
    path = write(tmp_path, DATA)
    result = cli("import", path)
    assert result.code == 65, result
    assert "invalid data, nothing was imported (2 problems):" in result.err
    assert f"{path}:{line_of(DATA, 'due', 'F-2')}: invoices[1] (F-2) due: 2026-12-31" in result.err
    assert database_digest(database_url) == before
