"""`followupd report` on each engine: the query, the table, the JSON, the chart (PNG, SVG).

Two owners: Claire's ACME mission in euros, Bob's Initech mission in euros and
Globex mission in dollars. On 5 December 2026:
- F-1, 12,000 due 30 September, 2,000 received 15 October: 10,000 at 66 days;
- F-2, 5,000 due 15 December: not due; F-3, 3,000 issued 1 October, due
  31 October, paid 10 November: 40 days to pay, 10 late;
- I-1, 4,000 due 31 July: 127 days; U-1, $8,000 due 19 November: 16 days.
EUR DSO, countback: 19,000 outstanding; December's 5 days (no sales), November's
30 (5,000: 14,000 left), October's 31 (3,000: 11,000 left), September's 30
(none), then 11,000 of August's 12,000: 31 × 11/12 = 28.4; 124.4 days.
USD: 5 + 30 (none in November) + October's 31 holding U-1 whole: 66 days.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import event, select

from followupd.cli.report_chart import bars, draw
from followupd.config.load import load_settings
from followupd.domain.owner_scope import scope_of
from followupd.domain.payments import Payment
from followupd.domain.receivables import InvoiceFacts, receivables
from followupd.sources.files.importer import import_files
from followupd.store.db import Store
from followupd.store.receivables import invoice_facts
from tests.conftest import RunCli
from tests.rulekit import BOB, CLAIRE, PARIS

DAY = "2026-12-05"
DATA = """\
[[clients]]
key = "acme"
name = "ACME SA"
[[clients]]
key = "globex"
name = "Globex Corporation"
[[clients]]
key = "initech"
name = "Initech"
[[missions]]
key = "acme-audit"
client = "acme"
title = "Audit"
start = 2026-01-01
owner = "claire"
[[missions]]
key = "globex-us"
client = "globex"
title = "US rollout"
start = 2026-01-01
currency = "USD"
owner = "bob"
[[missions]]
key = "initech-a"
client = "initech"
title = "Audit"
start = 2026-01-01
owner = "bob"
[[invoices]]
number = "F-1"
mission = "acme-audit"
amount = 12000
issued = 2026-08-31
due = 2026-09-30
payments = [{ on = 2026-10-15, amount = 2000 }]
[[invoices]]
number = "F-2"
mission = "acme-audit"
amount = 5000
issued = 2026-11-15
due = 2026-12-15
[[invoices]]
number = "F-3"
mission = "acme-audit"
amount = 3000
issued = 2026-10-01
due = 2026-10-31
paid = 2026-11-10
[[invoices]]
number = "U-1"
mission = "globex-us"
amount = 8000
issued = 2026-10-20
due = 2026-11-19
[[invoices]]
number = "I-1"
mission = "initech-a"
amount = 4000
issued = 2026-07-01
due = 2026-07-31
[[invoices]]
number = "OLD"
mission = "initech-a"
amount = 999
issued = 2025-01-01
due = 2025-01-31
paid = 2025-02-01
"""
OWNERS = CLAIRE + BOB


@pytest.fixture
def config(home: Path, cli: RunCli) -> Path:
    path = home / "followupd.toml"
    path.write_text(OWNERS, encoding="utf-8")
    assert cli("init").code == 0
    data = home / "data.toml"
    data.write_text(DATA, encoding="utf-8")
    imported = cli("import", data)
    assert imported.code == 0, imported
    return path


def report(cli: RunCli, *args: str | Path) -> dict[str, Any]:
    result = cli("report", "--as-of", DAY, "--json", *args)
    assert result.code == 0, result
    document: dict[str, Any] = json.loads(result.out)
    return document


def test_the_json_per_client_and_per_currency(config: Path, cli: RunCli) -> None:
    shown = report(cli)
    assert (shown["as_of"], shown["owner"]) == (DAY, None)
    assert shown["buckets"] == ["not_due", "1_30", "31_60", "61_90", "over_90"]
    eur, usd = shown["currencies"]
    assert eur == {
        "currency": "EUR",
        "unpaid": "19000.00",
        "buckets": {
            "not_due": "5000.00",
            "1_30": "0.00",
            "31_60": "0.00",
            "61_90": "10000.00",
            "over_90": "4000.00",
        },
        "open_invoices": 3,
        "overdue_invoices": 2,
        "dso_days": 124.4,
        "paid_invoices": 1,
        "days_to_pay": 40.0,
        "days_late": 10.0,
    }
    assert (usd["currency"], usd["unpaid"], usd["buckets"]["1_30"]) == ("USD", "8000.00", "8000.00")
    assert (usd["dso_days"], usd["paid_invoices"], usd["days_to_pay"]) == (66.0, 0, None)
    rows = [(row["client"], row["currency"], row["unpaid"]) for row in shown["clients"]]
    assert rows == [("acme", "EUR", "15000.00"), ("initech", "EUR", "4000.00"),
                    ("globex", "USD", "8000.00")]  # fmt: skip
    acme = shown["clients"][0]
    assert acme["name"] == "ACME SA"
    assert acme["buckets"]["61_90"] == "10000.00", "F-1 less its part payment"
    assert (acme["open_invoices"], acme["overdue_invoices"], acme["days_to_pay"]) == (2, 1, 40.0)
    assert "dso_days" not in acme
    assert shown["overall"] == {"open_invoices": 4, "overdue_invoices": 3, "paid_invoices": 1,
                                "days_to_pay": 40.0, "days_late": 10.0}  # fmt: skip


def test_the_table_has_a_row_per_client_and_a_total_per_currency(config: Path, cli: RunCli) -> None:
    result = cli("report", "--as-of", DAY)
    assert result.code == 0, result
    lines = result.out.splitlines()
    assert lines[0].strip() == f"receivables on {DAY}, by days past due"
    header = lines[1].split()
    assert header[:4] == ["client", "┃", "currency", "┃"]
    assert "DSO" in header and "1–30" in header
    cells = {line.split()[0] + " " + line.split()[2]: line for line in lines[3:] if "│" in line}
    assert list(cells) == ["acme EUR", "initech EUR", "total EUR", "globex USD", "total USD"]
    assert _words(cells["acme EUR"]) == [
        "acme", "EUR", "5,000.00", "10,000.00", "15,000.00", "2", "40.0", "10.0",
    ]  # fmt: skip
    assert _words(cells["total EUR"])[-3:] == ["40.0", "10.0", "124.4"]
    assert "19,000.00" in cells["total EUR"]
    assert _words(cells["total USD"]) == ["total", "USD", "8,000.00", "8,000.00", "1", "66.0"]
    assert f"1 invoice paid in the 12 months to {DAY}: in 40.0 days on average" in result.out


def _words(line: str) -> list[str]:
    return [word for word in line.split() if word != "│"]


def test_owner_keeps_to_that_owners_missions(config: Path, cli: RunCli) -> None:
    bob = report(cli, "--owner", "bob")
    assert bob["owner"] == "bob"
    assert [row["client"] for row in bob["clients"]] == ["initech", "globex"]
    eur = bob["currencies"][0]
    # 4,000 outstanding: 5 + 30 + 31 + 30 + 31 days without sales, then July's 31 hold I-1
    assert (eur["unpaid"], eur["dso_days"], eur["paid_invoices"]) == ("4000.00", 158.0, 0)
    claire = report(cli, "--owner", "claire")
    assert [row["client"] for row in claire["clients"]] == ["acme"]
    # 15,000: 5 + 30 (5,000) + 31 (3,000) + 30, then 7,000 of August's 12,000: 18.1
    assert claire["currencies"][0]["dso_days"] == 114.1
    unknown = cli("report", "--owner", "nobody")
    assert unknown.code == 2
    assert "no owner 'nobody' in the config (owners: claire, bob)" in unknown.err


def test_the_day_before_anything_was_issued(config: Path, cli: RunCli) -> None:
    shown = json.loads(cli("report", "--as-of", "2024-12-31", "--json").out)
    assert (shown["currencies"], shown["clients"]) == ([], [])
    assert shown["overall"]["days_to_pay"] is None
    result = cli("report", "--as-of", "2024-12-31")
    assert result.out.strip() == (
        "nothing unpaid on 2024-12-31, and nothing paid in the 12 months before"
    )
    wrong = cli("report", "--as-of", "5 December")
    assert wrong.code == 2
    assert "expected a date like 2026-11-30" in wrong.err


def test_the_png_and_the_svg(config: Path, cli: RunCli, home: Path) -> None:
    png, svg = home / "aging.png", home / "aging.svg"
    result = cli("report", "--as-of", DAY, "--png", png, "--svg", svg)
    assert result.code == 0, result
    assert "total" in result.out
    assert f"chart written to {png}" in result.err
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(png) as image:
        image.verify()
    with Image.open(png) as image:
        assert image.format == "PNG"
        width, height = image.size
        assert width == 1080 and 400 < height < 800  # 9 inches at 120 dpi; two currencies
        assert len(image.getcolors(maxcolors=1 << 16) or []) > 10, "drawn, not blank"
    text = svg.read_text("utf-8")
    assert text.startswith("<?xml") and "<svg" in text
    for words in ("Receivables by days past due on 2026-12-05", "ACME SA", "Initech",
                  "Globex Corporation", "unpaid (EUR)", "unpaid (USD)", "&gt; 90 days",
                  "days past due", "client"):  # fmt: skip
        assert words in text, words
    assert "<dc:date>" not in text
    again = home / "again.svg"
    assert cli("report", "--as-of", DAY, "--json", "--svg", again).code == 0
    assert again.read_bytes() == svg.read_bytes(), "the same report, the same file"


def test_the_chart_of_one_owner_says_whose(config: Path, cli: RunCli, home: Path) -> None:
    svg = home / "bob.svg"
    assert cli("report", "--as-of", DAY, "--owner", "bob", "--svg", svg).code == 0
    text = svg.read_text("utf-8")
    assert "on 2026-12-05, owner bob" in text
    assert "Initech" in text and "ACME SA" not in text


def test_without_matplotlib_a_chart_names_the_extra(
    config: Path, cli: RunCli, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib: ImportError
    png = home / "aging.png"
    result = cli("report", "--as-of", DAY, "--png", png)
    assert result.code == 1
    assert result.err.strip() == (
        "followupd: a chart needs matplotlib, which is not installed: "
        "pip install 'followupd[charts]'"
    )
    assert result.out == "" and not png.exists()
    assert cli("report", "--as-of", DAY).code == 0, "the table needs no matplotlib"


def test_a_chart_into_a_missing_directory_is_a_usage_error(
    config: Path, cli: RunCli, home: Path
) -> None:
    png = home / "charts" / "aging.png"
    result = cli("report", "--as-of", DAY, "--png", png)
    assert result.code == 2
    assert f"the directory '{png.parent}' does not exist" in result.err
    assert result.out == "", "said before the report"


def test_no_other_command_loads_matplotlib() -> None:
    code = (
        "import sys\n"
        "from followupd.cli.main import main\n"
        "import followupd.daemon.service\n"
        "try:\n"
        "    main(['--version'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('matplotlib' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)  # fmt: skip
    assert result.stdout.splitlines()[-1] == "False"


def test_the_query_is_set_based_and_owner_scoped(store: Store, tmp_path: Path) -> None:
    settings_path = tmp_path / "followupd.toml"
    settings_path.write_text(OWNERS, encoding="utf-8")
    settings = load_settings(settings_path, {"HOME": str(tmp_path)})
    data = tmp_path / "data.toml"
    data.write_text(DATA, encoding="utf-8")
    import_files(store, [data], PARIS, ("claire", "bob"))
    statements: list[str] = []

    def counted(*args: object) -> None:
        statements.append(str(args[2]))

    day = date(2026, 12, 5)
    with store.session() as session:
        session.execute(select(1))  # the connection's own first statements, out of the count
        event.listen(store.engine, "before_cursor_execute", counted)
        try:
            every = invoice_facts(session, day)
            history = len(statements)
            statements.clear()
            open_only = invoice_facts(session, day, history=False)
            opened = len(statements)
            bobs = invoice_facts(session, day, scope_of(settings, "bob"))
        finally:
            event.remove(store.engine, "before_cursor_execute", counted)
    assert (history, opened) == (2, 1), "the oldest open invoice's date, then the rows"
    # OLD was paid in full before the twelve months and before the oldest open invoice
    assert {facts.number for facts in every} == {"F-1", "F-2", "F-3", "U-1", "I-1"}
    assert {facts.number for facts in open_only} == {"F-1", "F-2", "U-1", "I-1"}
    assert {facts.number for facts in bobs} == {"U-1", "I-1"}
    f1 = next(facts for facts in every if facts.number == "F-1")
    assert (f1.client, f1.client_name, f1.currency, f1.amount) == (
        "acme", "ACME SA", "EUR", Decimal(12000),
    )  # fmt: skip
    assert f1.payments == (Payment(date(2026, 10, 15), Decimal(2000)),)
    assert f1.unpaid_on(day) == Decimal(10000)


def test_past_the_top_clients_the_others_share_a_bar(tmp_path: Path) -> None:
    day = date(2026, 12, 5)
    facts = [
        InvoiceFacts(
            f"N-{n}",
            f"c{n:02}",
            f"Client {n:02}",
            "EUR",
            Decimal(100 * (n + 1)),
            date(2026, 11, 1),
            date(2026, 11, 20) + timedelta(days=n % 2 * 20),
        )
        for n in range(11)
    ]
    shown = bars(receivables(facts, day).clients)
    assert [bar.label for bar in shown] == [
        *(f"Client {n:02}" for n in range(10, 2, -1)),
        "3 other clients",
    ]
    # clients 0, 1 and 2: 100 and 300 due 20 November (15 days), 200 not due till 10 December
    assert shown[-1].amounts == [Decimal(200), Decimal(400), 0, 0, 0]
    assert [bar.label for bar in bars(receivables(facts[2:], day).clients)][-1] == "Client 02"
    png = tmp_path / "eleven.png"
    draw(receivables(facts, day), png, "png", None)
    with Image.open(png) as image:
        assert image.size[1] > 500, "room for nine bars"
