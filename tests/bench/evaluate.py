"""Benchmark: one full evaluation pass over a large store. Prints figures; asserts nothing.

    python tests/bench/evaluate.py [--missions 100000] [--url URL | --postgresql]

Builds, in a temp dir removed afterwards, a store of MISSIONS missions, 3 invoices and
2 contacts per mission, with issues and touchpoints, spread over three years;
then runs one `evaluate` of every enabled rule in a fresh process and reports
its wall and CPU time (the process's own: on PostgreSQL the server's is not
in it), the follow-ups it recorded, and the process's peak memory. Then the
same in another fresh process, which finds nothing new. Both keep compiled
templates in the temp dir, as every command does in its state directory: the
first pass compiles and writes them, as a first `tick` does; the second reads
them, as any later command or a restarted daemon does.
On PostgreSQL the tables are analyzed after the build, as autovacuum would
have done by then. Only loopback or local databases are used.
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select, text
from sqlalchemy.engine import make_url

from followupd.config.load import parse_settings
from followupd.engine.evaluation import evaluate
from followupd.rules.registry import enabled_rules
from followupd.store.db import Store
from followupd.store.models import (
    Client,
    Contact,
    FollowUp,
    Invoice,
    Issue,
    Mission,
    Touchpoint,
)
from followupd.templates import cache_place
from tests.bench import harness, machine
from tests.bench.machine import peak_rss_mb
from tests.pgserver import throwaway_postgres

AT = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)  # Monday 09:00 in Paris
TODAY = AT.date()
CONFIG = '[owner]\nname = "Claire Martin"\nemail = "claire@cabinet.example"\n'
COUNTRIES = [("FR", "Europe/Paris", "fr"), ("BE", "Europe/Brussels", "fr"),
             ("US", "America/New_York", "en"), ("GB", "Europe/London", "en")]  # fmt: skip
BATCH = 5000


def build(store: Store, missions: int, today: date = TODAY, seed: int = 7) -> None:
    """A store shaped like a real agency's, seen on `today`.

    Three years of missions: those starting after today are proposed, those that
    ended are closed (a few disputed or on hold), ongoing ones mostly active.
    Old invoices are paid, recent ones mostly; old issues are resolved and the
    client was told; active missions have recent status updates and meetings.
    Enough remains overdue, unsigned, uninformed and unmet for every rule to
    have work.
    """
    rng = random.Random(seed)
    clients = missions // 2
    with store.session() as session:
        rows: list[dict[str, Any]] = []
        for n in range(clients):
            country, zone, language = COUNTRIES[n % len(COUNTRIES)]
            rows.append({"id": n + 1, "key": f"c{n}", "name": f"Client {n}",
                         "language": language, "timezone": zone, "country": country})  # fmt: skip
        _insert(session, Client, rows)
        rows = []
        for n in range(clients * 4):
            rows.append({"id": n + 1, "key": f"p{n}", "client_id": n // 4 + 1,
                         "name": f"Contact {n}", "email": f"p{n}@client.example",
                         "phone": "+33 6 00 00 00 00", "greetings": n % 7 != 0})  # fmt: skip
        _insert(session, Contact, rows)
        mission_rows, invoice_rows, issue_rows, touch_rows = [], [], [], []
        for n in range(missions):
            client = n % clients + 1
            start = date(2024, 1, 1) + timedelta(days=rng.randrange(0, 1110))
            deliverables = rng.random() > 0.1
            end = (
                None
                if not deliverables and rng.random() < 0.5
                else start + timedelta(days=rng.randrange(30, 300))
            )
            status = _status(rng, start, end, today)
            signed = rng.random() < (0.4 if status == "proposed" else 0.98)
            deposit = rng.random() < 0.3
            mission_rows.append({
                "id": n + 1, "key": f"m{n}", "client_id": client, "title": f"Mission {n}",
                "contact_id": (client - 1) * 4 + 1 + n % 4, "start": start, "end": end,
                "status": status, "currency": "EUR", "deliverables": deliverables,
                "contract_signed": start - timedelta(days=5) if signed else None,
                "deposit_amount": Decimal(1000) if deposit else None,
                "deposit_paid": start + timedelta(days=3)
                if deposit and start < today - timedelta(days=10) and rng.random() < 0.95
                else None,
            })  # fmt: skip
            for k in range(3):
                issued = start + timedelta(days=30 * (k + 1))
                due = issued + timedelta(days=30)
                settled = 0.99 if due < today - timedelta(days=60) else 0.8 if due < today else 0
                paid = due + timedelta(days=rng.randrange(-5, 20))
                invoice_rows.append({"mission_id": n + 1, "number": f"F{n}-{k}",
                                     "amount": Decimal("1200.00"), "issued": issued, "due": due,
                                     "paid": paid if rng.random() < settled else None})  # fmt: skip
            if rng.random() < 0.2 and start < today:
                opened = _instant(start) + timedelta(days=rng.randrange(1, 120))
                old = opened < _instant(today) - timedelta(days=30)
                issue_rows.append({"mission_id": n + 1, "key": f"i{n}", "opened": opened,
                                   "severity": rng.choice(["low", "medium", "high", "critical"]),
                                   "summary": "Retard",
                                   "client_informed": opened + timedelta(days=1)
                                   if rng.random() < 0.9 else None,
                                   "resolved": opened + timedelta(days=3)
                                   if rng.random() < (0.95 if old else 0.5) else None})  # fmt: skip
            recent = status == "active"
            for kind, spread in (("status_update", 20), ("meeting", 40)):
                at = (
                    _instant(today) - timedelta(days=rng.randrange(0, spread))
                    if recent
                    else (_instant(start) + timedelta(days=7))
                )
                touch_rows.append({"mission_id": n + 1, "kind": kind, "at": at,
                                   "key": f"m{n}|{kind}|{at.isoformat()}|"})  # fmt: skip
        for model, batch in ((Mission, mission_rows), (Invoice, invoice_rows),
                             (Issue, issue_rows), (Touchpoint, touch_rows)):  # fmt: skip
            _insert(session, model, batch)


def _instant(day: date) -> datetime:
    return datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=9)


def _status(rng: random.Random, start: date, end: date | None, today: date) -> str:
    if start > today:
        return "proposed"
    draw = rng.random()
    if end is not None and end < today:
        return "closed" if draw < 0.97 else "disputed" if draw < 0.99 else "on_hold"
    return "active" if draw < 0.9 else "on_hold" if draw < 0.97 else "disputed"


def _insert(session: Any, model: Any, rows: list[dict[str, Any]]) -> None:
    """Bulk insert: COPY on PostgreSQL (several times faster), INSERTs of BATCH rows elsewhere.

    Every row gives every column the table needs: COPY applies no Python-side default.
    """
    dialect = session.get_bind().dialect
    if rows and dialect.name == "postgresql":
        names, quote = list(rows[0]), dialect.identifier_preparer.quote  # "end" is a keyword
        columns = ", ".join(quote(model.__table__.c[name].name) for name in names)
        cursor = session.connection().connection.driver_connection.cursor()
        with cursor.copy(f"COPY {quote(model.__tablename__)} ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row([row[name] for name in names])
        return
    for start in range(0, len(rows), BATCH):
        session.execute(insert(model), rows[start : start + BATCH])


def measure(url: str, template_cache: str | None = None) -> None:
    """Runs in a fresh process: one pass, then figures on stdout as key=value lines.

    `template_cache`: where compiled templates are kept, as the command line keeps them.
    """
    if template_cache:
        cache_place.keep_in(Path(template_cache))
    settings = parse_settings(CONFIG, Path("bench.toml"), {"HOME": tempfile.gettempdir()})
    store = Store.open(make_url(url))
    rules = enabled_rules(settings.rules)
    before = peak_rss_mb()
    started, cpu = time.perf_counter(), time.process_time()
    with store.session() as session:
        report = evaluate(session, settings, rules, AT)
    elapsed, elapsed_cpu = time.perf_counter() - started, time.process_time() - cpu
    started, cpu = time.perf_counter(), time.process_time()
    with store.session() as session:  # the same pass again, warm, as in the daemon
        evaluate(session, settings, rules, AT)
    warm, warm_cpu = time.perf_counter() - started, time.process_time() - cpu
    peak = peak_rss_mb()
    with store.session() as session:
        total = session.scalar(select(func.count(FollowUp.id)))
    store.close()
    print(f"seconds={elapsed:.3f}")
    print(f"cpu_seconds={elapsed_cpu:.3f}")  # this process's, the database server's not
    print(f"warm_seconds={warm:.3f}")
    print(f"warm_cpu_seconds={warm_cpu:.3f}")
    print(f"recorded={len(report.recorded)}")
    print(f"outbox={total}")
    print(f"peak_rss_mb={peak:.0f}")
    print(f"rss_before_pass_mb={before:.0f}")
    print(f"rules={len(rules)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--missions", type=int, default=100_000)
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--url", help="database URL (default: a SQLite file in a temp dir)")
    where.add_argument(
        "--postgresql",
        action="store_true",
        help="on a throwaway PostgreSQL cluster on a free loopback port (tests/pgserver.py)",
    )
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    parser.add_argument("--template-cache", help=argparse.SUPPRESS)
    harness.add_figures_option(parser)
    args = parser.parse_args()
    if args.measure:
        measure(args.measure, args.template_cache)
        return
    with harness.workdir("followupd-bench-") as workdir, database(args, workdir) as url:
        bench(url, args.missions, args.figures, workdir / "template-cache")


@contextmanager
def database(args: argparse.Namespace, workdir: Path) -> Iterator[str]:
    """The URL of the database to fill: given, a throwaway PostgreSQL, or a SQLite file."""
    if args.url:
        yield args.url
    elif args.postgresql:
        with throwaway_postgres() as url:
            yield url
    else:
        yield f"sqlite:///{workdir / 'bench.db'}"


def analyze(store: Store) -> None:
    """On PostgreSQL, gather the statistics autovacuum would have a minute after the bulk load.

    Without them the planner guesses, and the first pass right after the load
    takes about four times as long; SQLite gathers none unless asked, and
    followupd never asks, so it is left as it is.
    """
    if store.engine.dialect.name == "postgresql":
        with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("ANALYZE"))


def bench(url: str, missions: int, figures_file: str | None, template_cache: Path) -> None:
    store = Store.open(make_url(url))
    store.upgrade()
    started = time.perf_counter()
    build(store, missions)
    analyze(store)
    built = time.perf_counter() - started
    store.close()
    load = os.getloadavg()[0]
    runs = []
    for _ in range(2):  # the first pass records; the second finds nothing new
        result = subprocess.run(
            [sys.executable, __file__, "--measure", url, "--template-cache", template_cache],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        pairs = (line.split("=", 1) for line in result.stdout.split())
        runs.append({name: float(value) for name, value in pairs})
    engine = make_url(url).get_backend_name()
    sizes = f"{missions} missions, {missions * 3} invoices, {missions * 2} contacts"
    print(f"evaluation benchmark on {engine}: {sizes} (built in {built:.1f} s)")
    print(f"{'pass':<34}{'seconds':>9}{'CPU s':>9}{'recorded':>10}{'peak MB':>9}")
    first, second = runs
    rows = [
        ("first, empty outbox, new process", "", first["recorded"], first),
        ("steady state, new process", "", second["recorded"], second),
        ("steady state, warm (as the daemon)", "warm_", 0, second),
    ]
    for name, which, recorded, run in rows:
        seconds, cpu = run[f"{which}seconds"], run[f"{which}cpu_seconds"]
        print(f"{name:<34}{seconds:>9.3f}{cpu:>9.3f}{recorded:>10.0f}{run['peak_rss_mb']:>9.0f}")
    server = machine.postgresql() if engine == "postgresql" else f"SQLite {sqlite3.sqlite_version}"
    software = [server] if engine == "postgresql" else []  # the line always names SQLite's
    print(f"machine: {machine.describe(*software, load_before=load)}")
    harness.save_figures(
        figures_file,
        {
            "engine": engine,
            "database": server,
            "missions": missions,
            "built": built,
            "first": first,
            "steady": second,
        },
    )


if __name__ == "__main__":
    main()
