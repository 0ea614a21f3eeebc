"""The receivables on the daemon's ``/metrics``, on each engine.

``followupd_receivables{currency,bucket}`` (every bucket of every currency with
an open invoice, zeros included) and ``followupd_receivables_overdue_invoices``,
read from the store at each scrape, as of the day the service's clock gives.
"""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import event, select

from followupd.daemon.metrics import Metrics
from followupd.daemon.service import Service
from followupd.sources.files.importer import import_files
from followupd.store.db import Store
from tests.conftest import MINIMAL_CONFIG, RunCli
from tests.daemon import DISABLED, get
from tests.rulekit import PARIS
from tests.smtpserver import free_port
from tests.test_mail_daemon import running
from tests.test_report_cli import DATA

Samples = dict[tuple[str, ...], float]


def receivables_of(text: str) -> tuple[Samples, float | None]:
    """The receivables gauge by (currency, bucket), and the overdue invoices, of a scrape."""
    amounts: Samples = {}
    overdue = None
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "followupd_receivables":
                amounts[sample.labels["currency"], sample.labels["bucket"]] = sample.value
            elif sample.name == "followupd_receivables_overdue_invoices":
                overdue = sample.value
    return amounts, overdue


def test_the_gauges_on_a_day(store: Store, tmp_path: Path) -> None:
    data = tmp_path / "data.toml"
    data.write_text(DATA.replace('owner = "claire"\n', "").replace('owner = "bob"\n', ""), "utf-8")
    import_files(store, [data], PARIS)
    days = iter([date(2026, 12, 5), date(2026, 12, 16)])
    metrics = Metrics(lambda: store, lambda: next(days))
    amounts, overdue = receivables_of(metrics.render().decode())
    assert amounts == {
        ("EUR", "not_due"): 5000.0,  # F-2
        ("EUR", "1_30"): 0.0,
        ("EUR", "31_60"): 0.0,
        ("EUR", "61_90"): 10000.0,  # F-1, less the 2,000 received
        ("EUR", "over_90"): 4000.0,  # I-1
        ("USD", "not_due"): 0.0,
        ("USD", "1_30"): 8000.0,  # U-1
        ("USD", "31_60"): 0.0,
        ("USD", "61_90"): 0.0,
        ("USD", "over_90"): 0.0,
    }
    assert overdue == 3
    # eleven days later: F-2 is a day late, F-1 at 77 days, U-1 at 27
    amounts, overdue = receivables_of(metrics.render().decode())
    assert (amounts["EUR", "not_due"], amounts["EUR", "1_30"]) == (0.0, 5000.0)
    assert overdue == 4


def test_a_scrape_reads_the_receivables_in_one_statement(store: Store) -> None:
    statements: list[str] = []

    def counted(*args: object) -> None:
        statements.append(str(args[2]))

    metrics = Metrics(lambda: store, lambda: date(2026, 12, 5))
    with store.session() as session:
        session.execute(select(1))  # the pool's first connection, out of the count
    event.listen(store.engine, "before_cursor_execute", counted)
    try:
        shown = metrics.render().decode()
    finally:
        event.remove(store.engine, "before_cursor_execute", counted)
    assert len([text for text in statements if "FROM invoices" in text]) == 1, statements
    assert "followupd_receivables_overdue_invoices 0.0" in shown
    assert "followupd_receivables{" not in shown, "no currency without an open invoice"


def test_the_daemon_serves_them_at_metrics(home: Path, cli: RunCli) -> None:
    port = free_port()
    disabled = "".join(f"[rules.{name}]\nenabled = false\n" for name in DISABLED)
    config = home / "followupd.toml"
    config.write_text(
        MINIMAL_CONFIG
        + f'[feed]\nlisten = "127.0.0.1:{port}"\n'
        + disabled
        + "[rules.invoice_due]\nenabled = false\n",
        encoding="utf-8",
    )
    today = datetime.now(ZoneInfo("Europe/Paris")).date()  # the owner's zone, the default
    data = home / "data.toml"
    data.write_text(
        '[[clients]]\nkey = "acme"\nname = "ACME SA"\n'
        '[[missions]]\nkey = "eu"\nclient = "acme"\ntitle = "EU"\nstart = 2026-01-01\n'
        '[[missions]]\nkey = "us"\nclient = "acme"\ntitle = "US"\nstart = 2026-01-01\n'
        'currency = "USD"\n'
        + invoice("E-1", "eu", 1000, today - timedelta(days=75), today - timedelta(days=45))
        + invoice("E-2", "eu", 500, today - timedelta(days=20), today + timedelta(days=10))
        + invoice("U-1", "us", 300, today - timedelta(days=130), today - timedelta(days=100)),
        encoding="utf-8",
    )
    assert cli("init").code == 0
    assert cli("import", data).code == 0

    async def scenario(service: Service, _daemon: asyncio.Task[int]) -> None:
        assert service.today() == today or service.today() == today + timedelta(days=1)
        url = f"http://127.0.0.1:{port}/metrics"
        status, body, headers = await asyncio.to_thread(get, url)
        assert status == 200 and headers["Content-Type"].startswith("text/plain")
        amounts, overdue = receivables_of(body.decode())
        # 45 and 100 days past due: the same buckets should the day turn during the test
        assert amounts == {
            ("EUR", "not_due"): 500.0,
            ("EUR", "1_30"): 0.0,
            ("EUR", "31_60"): 1000.0,
            ("EUR", "61_90"): 0.0,
            ("EUR", "over_90"): 0.0,
            ("USD", "not_due"): 0.0,
            ("USD", "1_30"): 0.0,
            ("USD", "31_60"): 0.0,
            ("USD", "61_90"): 0.0,
            ("USD", "over_90"): 300.0,
        }
        assert overdue == 2
        service.stop_requested.set()

    running(config, scenario)


def invoice(number: str, mission: str, amount: int, issued: date, due: date) -> str:
    return (
        f'[[invoices]]\nnumber = "{number}"\nmission = "{mission}"\namount = {amount}\n'
        f"issued = {issued}\ndue = {due}\n"
    )
