"""Every benchmark, one table. Run it as ``tests/bench/run_all [--only NAME...] [--logs DIR]``.

Runs each benchmark of tests/bench/ in a process of its own, one after the
other, at the sizes of BENCHMARKS below: the evaluation pass over 100,000
missions on SQLite and on a throwaway PostgreSQL cluster (one owner; then
1,000 owners on PostgreSQL, the agency's case), delivery against
Postfix's smtp-sink with smtp-source beside it, CalDAV sync from Radicale
with vdirsyncer beside it, the mailbox sync from Dovecot with mbsync beside
it (and a reply seen through IDLE), the iCalendar feed of 10,000 follow-ups with
Radicale serving the same objects beside it, the start-up of ``followupd --version``
and ``followupd plan`` with ``vdirsyncer --version`` beside it, and the idle
daemon. The sizes are the issue's where it fixes them, and otherwise small enough for the
whole run to take under 10 minutes on a 2-core machine.

Every benchmark dates its data from a fixed instant of its own, never from
the wall clock, so that each run measures the same work. Where followupd is
compared with another program, both are timed the same way, as whole
processes run to their end (``followupd tick --now`` beside smtp-source,
``followupd sync --now`` beside vdirsyncer), each with its wall seconds and
its CPU seconds (its own, from os.wait4); an in-process figure is an extra,
labelled so. The mailbox sync is the exception: its goals are the daemon's,
so followupd's ``sync_mailboxes`` is timed in-process (its CPU seconds this
process's) beside mbsync's whole process, labelled so.

Each benchmark writes its figures to a JSON file (``--figures``); this
script reads them and prints one Markdown table, the machine line and the
run's wall time. Each benchmark's own, longer report goes to NAME.log in the
logs folder (a new temp folder unless --logs names one), which is kept. A
benchmark that fails is reported as such in the table, and the exit code is 1.
Only loopback is used.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.bench import harness, machine

Row = tuple[str, str, str, str]  # what, size, followupd, beside it
NONE = "—"


@dataclass(frozen=True)
class Benchmark:
    name: str
    module: str
    args: tuple[str, ...]
    rows: Callable[[dict[str, Any]], list[Row]]  # its figures as table rows


def count(number: float) -> str:
    return f"{number:,.0f}"


def evaluate_rows(found: dict[str, Any]) -> list[Row]:
    first, steady = found["first"], found["steady"]
    engine = found["database"].split(" (")[0]  # without the distribution's build
    size = f"{count(found['missions'])} missions, {count(3 * found['missions'])} invoices"
    ours = (
        f"first {first['seconds']:.2f} s ({count(first['recorded'])} recorded, "
        f"{first['peak_rss_mb']:.0f} MB); then {steady['seconds']:.2f} s in a new process, "
        f"{steady['warm_seconds']:.2f} s warm ({steady['peak_rss_mb']:.0f} MB)"
    )
    return [(f"evaluation pass, {engine}", size, ours, NONE)]


def evaluate_owners_rows(found: dict[str, Any]) -> list[Row]:
    first, second = found["first"], found["second"]
    size = (
        f"{count(found['missions'])} missions, {count(3 * found['missions'])} invoices, "
        f"{count(found['owners'])} owners"
    )

    def one(run: dict[str, Any]) -> str:
        return (
            f"{run['seconds']:.2f} s ({run['cpu_seconds']:.2f} CPU s, {run['peak_rss_mb']:.0f} MB)"
        )

    ours = f"first {one(first)}, {count(first['recorded'])} recorded; then {one(second)}"
    engine = {"postgresql": "PostgreSQL", "sqlite": "SQLite"}.get(found["engine"], found["engine"])
    return [(f"evaluation pass, {count(found['owners'])} owners, {engine}", size, ours, NONE)]


def timed(side: dict[str, Any]) -> str:
    """A whole process's times: wall seconds, then its CPU seconds (from its rusage)."""
    return f"{side['wall']:.2f} s wall, {side['cpu']:.2f} CPU s"


def delivery_rows(found: dict[str, Any]) -> list[Row]:
    ours, extra = found["followupd"], found["in_process"]
    theirs = next(run for run in found["smtp_source"] if run["connections"] == 1)
    size = f"{count(found['messages'])} messages of {ours['bytes'] / 1000:.1f} kB"

    def rate(run: dict[str, Any]) -> str:
        return f"{count(run['rate'])} msg/s ({run['seconds']:.2f} s wall, {run['cpu']:.2f} CPU s)"

    return [
        (
            "delivery over SMTP to smtp-sink, whole processes",
            size,
            f"`followupd tick --now`: {rate(ours)}; in-process `Deliverer.run` alone: "
            f"{rate(extra)}",
            f"smtp-source ({found['postfix']}), 1 connection, the same messages: {rate(theirs)}",
        )
    ]


def caldav_rows(found: dict[str, Any]) -> list[Row]:
    times, tool = found["times"], found["vdirsyncer"].split(" on ")[0]
    size = f"{count(found['events'])} events in one Radicale calendar"

    def spent(side: dict[str, Any]) -> str:
        return f"{side['wall']:.2f} s wall, {side['client_cpu']:.2f} CPU s"

    return [
        (
            f"CalDAV sync, {what}, whole processes",
            size if what == "first sync" else "one event changed",
            f"`followupd sync --now`: {spent(times['followupd'][what])}; in-process "
            f"`sync_calendars`: {spent(times['followupd in-process'][what])}",
            f"`{tool} sync`: {spent(times['vdirsyncer'][what])}",
        )
        for what in times["followupd"]
    ]


def served(side: dict[str, Any], warm: int) -> str:
    return (
        f"first {side['first']:.2f} s, then median {side['warm_median']:.2f} s, "
        f"p95 {side['warm_p95']:.2f} s of {warm}; {side['cpu_per_request']:.2f} CPU s each"
    )


def conditional(side: dict[str, Any]) -> str:
    status = side["conditional_status"]
    answer = "304 Not Modified" if status == 304 else f"{status}, the whole body again"
    return f"{answer} in {side['conditional_median']:.2f} s"


def feed_rows(found: dict[str, Any]) -> list[Row]:
    ours, theirs, warm = found["followupd"], found["radicale"], found["requests"]["warm"]
    size = f"{count(found['followups'])} follow-ups, {ours['bytes'] / 1e6:.1f} MB"
    if found.get("files"):
        size += f" ({found['files']} formal notices' PDFs linked by URL)"
    tool = (
        f"{found['radicale_version'].capitalize()}, the same objects as one collection "
        f"({theirs['bytes'] / 1e6:.1f} MB, the PDFs inline as in a CalDAV calendar)"
    )
    again = f"the same, median of {found['requests']['conditional']}"
    rows = [
        (
            "feed `GET /feed/<token>.ics`",
            size,
            served(ours, warm),
            f"{tool}: {served(theirs, warm)}",
        ),
        (
            "feed, GET with If-None-Match",
            again,
            conditional(ours),
            f"Radicale: {conditional(theirs)}",
        ),
    ]
    if "after_change" in ours:
        rows.append(
            (
                "feed, first GET after one item changed (built again)",
                "the same",
                f"{ours['after_change']:.2f} s",
                NONE,
            )
        )
    return rows


def idle_rows(found: dict[str, Any]) -> list[Row]:
    size = f"{count(found['missions'])} missions, {found['seconds']:.0f} s measured"
    cpu = f"{found['cpu_percent']:.3f} % of one core"
    if found["cpu_percent"] == 0:  # /proc counts CPU time in clock ticks
        cpu = f"under {found['cpu_resolution_percent']:.2f} % of one core (not one clock tick)"
    ours = (
        f"{cpu}, {found['rss_max_mb']:.1f} MB RSS; with "
        f"its passes, {found['averaged_percent']:.3f} % over "
        f"{found['evaluate_every'] / 60:.0f} min"
    )
    return [("`followupd run`, idle", size, ours, NONE)]


def seconds(side: dict[str, Any]) -> str:
    return f"{side['wall']:.2f} s wall, {side['cpu']:.2f} CPU s"


def imap_rows(found: dict[str, Any]) -> list[Row]:
    first, one, reply = found["first"], found["one_new"], found["reply"]
    boxes = found["messages"]
    size = (
        f"{count(boxes['inbox'] + boxes['sent'])} messages ({count(boxes['inbox'])} in INBOX, "
        f"{count(boxes['sent'])} sent), {boxes['bytes'] / 1e6:.0f} MB, in Dovecot"
    )
    tool = found["mbsync"].replace("isync", "mbsync (isync") + ")"
    rounds = f"median of {one['rounds']}, worst {{worst:.2f}} s"
    return [
        (
            "mailbox sync (IMAP), first scan",
            size,
            f"in-process `sync_mailboxes`: {seconds(first['followupd'])} (goal: no slower "
            "than mbsync)",
            f"{tool} to a Maildir on {found['file_system']} (an fsync a message), whole "
            f"process: {seconds(first['mbsync'])}",
        ),
        (
            "mailbox sync, a pass after one new message",
            "one APPEND to INBOX; the store open, as in the daemon",
            f"`sync_mailboxes`: {seconds(one['followupd'])}, "
            + rounds.format(worst=one["followupd"]["wall_max"])
            + f" (goal: under {found['goals']['one_new_seconds']} s)",
            f"mbsync: {seconds(one['mbsync'])}, " + rounds.format(worst=one["mbsync"]["wall_max"]),
        ),
        (
            "client's reply → nudges paused, via IDLE",
            "a reply to a followupd nudge APPENDed to INBOX",
            f"{reply['what']}: median {reply['median']:.2f} s (IDLE woke it after "
            f"{reply['woken_median']:.2f} s), worst {reply['max']:.2f} s of {reply['rounds']} "
            f"(goal: under {found['goals']['reply_seconds']:.0f} s)",
            NONE,
        ),
    ]


def startup_rows(found: dict[str, Any]) -> list[Row]:
    times, runs = found["times"], found["runs"]

    def spent(label: str) -> str:
        side = times[label]
        return f"{side['wall']:.2f} s wall, {side['cpu']:.2f} CPU s"

    return [
        (
            "start-up, whole processes",
            f"median of {runs}; `plan`: the demo, 30 days ({found['followups_shown']} shown)",
            f"`followupd --version`: {spent('followupd --version')}; `followupd plan`: "
            f"{spent('followupd plan')}",
            f"`vdirsyncer --version`: {spent('vdirsyncer --version')}",
        )
    ]


MISSIONS = ("--missions", "100000")
BENCHMARKS = (
    Benchmark("evaluate-sqlite", "tests.bench.evaluate", MISSIONS, evaluate_rows),
    Benchmark(
        "evaluate-postgresql", "tests.bench.evaluate", (*MISSIONS, "--postgresql"), evaluate_rows
    ),
    Benchmark(
        "evaluate-owners",
        "tests.bench.evaluate_owners",
        (*MISSIONS, "--owners", "1000"),
        evaluate_owners_rows,
    ),
    Benchmark(
        "delivery", "tests.bench.delivery", ("--messages", "3000", "--repeat", "3"), delivery_rows
    ),
    Benchmark("caldav", "tests.bench.caldav_sync", ("--events", "1000"), caldav_rows),
    Benchmark("imap", "tests.bench.imap_sync", ("--messages", "20000", "--rounds", "3"), imap_rows),
    Benchmark(
        "feed",
        "tests.bench.feed",
        ("--followups", "10000", "--warm", "3", "--conditional", "2"),
        feed_rows,
    ),
    Benchmark("startup", "tests.bench.startup", ("--runs", "15"), startup_rows),
    Benchmark(
        "idle",
        "tests.bench.idle",
        ("--missions", "10000", "--seconds", "20", "--settle", "5"),
        idle_rows,
    ),
)


def run(benchmark: Benchmark, logs: Path) -> tuple[bool, list[Row]]:
    """Run one benchmark, its report into its log: whether it worked, and its rows."""
    figures = logs / f"{benchmark.name}.json"
    command = [sys.executable, "-m", benchmark.module, *benchmark.args, "--figures", str(figures)]
    with (logs / f"{benchmark.name}.log").open("wb") as log:
        done = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0 or not figures.exists():
        log_file = logs / f"{benchmark.name}.log"
        return False, [
            (benchmark.name, NONE, f"failed (exit code {done.returncode}, see {log_file})", NONE)
        ]
    return True, benchmark.rows(json.loads(figures.read_text()))


def table(rows: Sequence[Row]) -> str:
    lines = ["| benchmark | size | followupd | beside it |", "| --- | --- | --- | --- |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def main() -> None:
    names = [benchmark.name for benchmark in BENCHMARKS]
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--only",
        nargs="+",
        choices=names,
        metavar="NAME",
        help=f"run only these: {', '.join(names)}",
    )
    parser.add_argument("--logs", type=Path, help="where the reports go (default: a temp dir)")
    args = parser.parse_args()
    logs = args.logs or Path(tempfile.mkdtemp(prefix="followupd-bench-logs-"))
    logs.mkdir(parents=True, exist_ok=True)
    chosen = [benchmark for benchmark in BENCHMARKS if not args.only or benchmark.name in args.only]
    harness.compile_followupd()  # every whole process reads bytecode, as an installed copy does
    load, began = os.getloadavg()[0], time.perf_counter()
    rows: list[Row] = []
    failed = 0
    for number, benchmark in enumerate(chosen, 1):
        started = time.perf_counter()
        print(f"[{number}/{len(chosen)}] {benchmark.name}…", end=" ", file=sys.stderr, flush=True)
        worked, found = run(benchmark, logs)
        print(f"{time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
        rows += found
        failed += not worked
    print(table(rows))
    print(f"\nmachine: {machine.describe(machine.postgresql(), load_before=load)}")
    finished = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    print(f"run_all: {time.perf_counter() - began:.0f} s in all, finished {finished}")
    print(f"the benchmarks' own reports: {logs}")
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
