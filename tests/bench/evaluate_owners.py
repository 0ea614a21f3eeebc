"""Benchmark: an agency's evaluation pass, many owners, on PostgreSQL. Prints figures only.

    python tests/bench/evaluate_owners.py [--missions 1000000] [--owners 1000]
                                          [--url URL | --sqlite]

The store of tests/bench/evaluate.py (3 invoices and 2 contacts a mission,
issues and touchpoints over three years), its missions dealt out to OWNERS
consultants (``[[owners]]`` in the config, each with the defaults), on a
throwaway PostgreSQL cluster on a free loopback port unless told otherwise.
Then, each in a fresh process, as `followupd tick` would: a first pass that
records every follow-up due (an empty outbox), and a second that finds
nothing new; each with its wall and CPU seconds and its peak resident memory
(VmHWM), the goals being under 15 s and under 1 GB. Both keep compiled
templates in the temp dir, as `tick` keeps them in its state directory: the
first compiles and writes them, the second reads them. Only loopback or local
databases are used; the dates come from the benchmark's fixed instant.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import String, cast, func, literal, select, update
from sqlalchemy.engine import make_url

from followupd.config.load import parse_settings
from followupd.engine.evaluation import evaluate
from followupd.rules.registry import enabled_rules
from followupd.store.db import Store
from followupd.store.models import FollowUp, Mission
from followupd.templates import cache_place
from tests.bench import harness, machine
from tests.bench.evaluate import AT, analyze, build
from tests.bench.machine import peak_rss_mb
from tests.pgserver import throwaway_postgres


def owners_config(owners: int) -> str:
    """A config of `owners` consultants in Paris, keyed o0, o1…, every rule at its defaults."""
    return "".join(
        f'[[owners]]\nkey = "o{n}"\nname = "Consultant {n}"\nemail = "o{n}@agency.example"\n\n'
        for n in range(owners)
    )


def deal_out(store: Store, owners: int) -> None:
    """Give mission n to owner o(n mod owners): each owner has missions of every kind."""
    with store.session() as session:
        number = cast((Mission.id - 1) % owners, String)  # concat() is not in SQLite 3.40
        session.execute(update(Mission).values(owner=literal("o", String) + number))


def measure(url: str, owners: int, template_cache: str | None = None) -> None:
    """Runs in a fresh process: one pass, then figures on stdout as key=value lines.

    `template_cache`: where compiled templates are kept, as the command line keeps them.
    """
    if template_cache:
        cache_place.keep_in(Path(template_cache))
    settings = parse_settings(
        owners_config(owners), Path("bench.toml"), {"HOME": tempfile.gettempdir()}
    )
    store = Store.open(make_url(url))
    rules = enabled_rules(settings.rules)
    before = peak_rss_mb()
    cpu = time.process_time()
    started = time.perf_counter()
    with store.session() as session:
        report = evaluate(session, settings, rules, AT)
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu
    peak = peak_rss_mb()
    with store.session() as session:
        total = session.scalar(select(func.count(FollowUp.id)))
    store.close()
    print(f"seconds={elapsed:.3f}")
    print(f"cpu_seconds={cpu:.3f}")
    print(f"recorded={len(report.recorded)}")
    print(f"outbox={total}")
    print(f"peak_rss_mb={peak:.0f}")
    print(f"rss_before_pass_mb={before:.0f}")


def bench(url: str, missions: int, owners: int, figures_file: str | None, workdir: Path) -> None:
    store = Store.open(make_url(url))
    store.upgrade()
    started = time.perf_counter()
    build(store, missions)
    deal_out(store, owners)
    analyze(store)
    built = time.perf_counter() - started
    store.close()
    load = os.getloadavg()[0]
    runs = []
    for _ in range(2):  # the first pass records; the second finds nothing new
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        result = subprocess.run(
            [sys.executable, __file__, "--measure", url, "--owners", str(owners),
             "--template-cache", workdir / "template-cache"],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        pairs = (line.split("=", 1) for line in result.stdout.split())
        run = {name: float(value) for name, value in pairs}
        run["process_cpu_seconds"] = (after.ru_utime - children.ru_utime) + (
            after.ru_stime - children.ru_stime
        )
        runs.append(run)
    engine = make_url(url).get_backend_name()
    print(
        f"agency evaluation benchmark on {engine}: {owners} owners, {missions} missions, "
        f"{missions * 3} invoices (built in {built:.0f} s)"
    )
    print(f"{'pass':<30}{'wall s':>9}{'CPU s':>8}{'recorded':>10}{'peak MB':>9}")
    first, second = runs
    for name, run in (("first, empty outbox", first), ("second, nothing new", second)):
        print(
            f"{name:<30}{run['seconds']:>9.2f}{run['cpu_seconds']:>8.2f}"
            f"{run['recorded']:>10.0f}{run['peak_rss_mb']:>9.0f}"
        )
    print("goals: each pass under 15 s, in under 1,024 MB")
    server = machine.postgresql() if engine == "postgresql" else "SQLite"
    software = [server] if engine == "postgresql" else []  # the line always names SQLite's
    print(f"machine: {machine.describe(*software, load_before=load)}")
    harness.save_figures(
        figures_file,
        {
            "engine": engine,
            "owners": owners,
            "missions": missions,
            "built": built,
            "first": first,
            "second": second,
        },
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--missions", type=int, default=1_000_000)
    parser.add_argument("--owners", type=int, default=1000)
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--url", help="database URL (default: a throwaway PostgreSQL cluster)")
    where.add_argument("--sqlite", action="store_true", help="a SQLite file in a temp dir")
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    parser.add_argument("--template-cache", help=argparse.SUPPRESS)
    harness.add_figures_option(parser)
    args = parser.parse_args()
    if args.measure:
        measure(args.measure, args.owners, args.template_cache)
        return
    with harness.workdir("followupd-bench-") as workdir:
        sizes = (args.missions, args.owners, args.figures, workdir)
        if args.url:
            bench(args.url, *sizes)
        elif args.sqlite:
            bench(f"sqlite:///{workdir / 'bench.db'}", *sizes)
        else:
            with throwaway_postgres() as url:
                bench(url, *sizes)


if __name__ == "__main__":
    main()
