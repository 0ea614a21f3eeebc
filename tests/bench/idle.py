"""Benchmark: what `followupd run` costs while it waits. Prints figures; asserts nothing.

    python tests/bench/idle.py [--missions 10000] [--seconds 60] [--settle 10] [--keep]

(from the repository root in the dev venv; ``python -m tests.bench.idle`` works too.)

Builds a SQLite store of MISSIONS missions in a temp dir with
tests/bench/evaluate.py's ``build()`` (3 invoices, 2 contacts, issues and
touchpoints per mission), seen from that script's fixed instant AT (Monday
23 November 2026, 09:00 in Paris), never from the wall clock: the same store
on every run. "Nothing due" is then reached the way a real install reaches
it: one ``followupd tick --now AT`` records every follow-up due then and
delivers it (emails to the Maildir of the state directory, as there is no
``[smtp]``; no ``[caldav]`` either, so the sync pass does nothing). What is
left pending is due later (the next send-window opening at the earliest),
and the script prints when.

``followupd run`` takes no ``--now``: the daemon reads the wall clock. So a
second ``followupd tick``, without ``--now``, then does what came due
between AT and the real time, as a daemon restarted after a pause would
first: the daemon's startup passes find nothing new, and its figures hold
no catch-up, however far the wall clock is from AT (its memory would grow
with it). What the daemon then waits for is due later by the wall clock.

Then it starts ``followupd run`` with the default ``[service]`` intervals and
the feed on a free loopback port, polls ``GET /healthz`` until it answers 200
and names the startup passes (evaluate, deliver, housekeeping), lets it settle
(SETTLE seconds) and, without touching it, measures for SECONDS: the CPU time
the process used (utime + stime from /proc/PID/stat) as a percentage of one
core over the wall time, its resident memory (VmRSS, sampled every second;
VmHWM, the peak since it started), its threads and wake-ups (context switches
of all its threads). The passes that ran in the window, if any, are read from
/metrics before and after it (a deliver safety-net pass, every 60 s, usually
does; an evaluate pass too if the window crosses a send-window opening). The
targets: under 1% of one core over a minute, under 120 MB.

Then, because one minute in fifteen holds an evaluate pass, it sends SIGHUP
(a reload re-runs every pass at once), waits for the passes to finish and
reports their CPU time, and the average it makes over an evaluate period.
Last, SIGTERM: the exit code and how long stopping took. Only loopback is used.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import signal
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import func, select

import tests.bench.evaluate as evaluate_bench
from followupd.config.load import parse_settings
from followupd.store.db import Store
from followupd.store.models import FollowUp
from tests.bench import harness, machine
from tests.bench.daemon import STARTUP_PASSES, environment, get, running
from tests.smtpserver import free_port

CONFIG = """\
[owner]
name = "Claire Martin"
email = "claire@cabinet.example"
phone = "+33 6 00 00 00 00"

[feed]
listen = "127.0.0.1:{port}"
"""
TIMEOUT = 900.0  # for the passes after SIGHUP: 10,000 missions take seconds
PASS_COUNT = re.compile(r'^followupd_pass_duration_seconds_(count|sum)\{pass="(\w+)"\} (\S+)$')


@dataclass
class Prepared:
    built: float
    ticked: float  # seconds of the tick at AT
    caught_up: float  # seconds of the tick at the wall clock's time, the daemon's
    by_state: dict[str, int]
    next_due: datetime | None


@dataclass
class Sample:
    rss_kb: int
    hwm_kb: int
    anon_kb: int
    file_kb: int
    threads: int


def prepare(config: Path, environ: dict[str, str], missions: int) -> Prepared:
    """The store as of AT, a tick at AT, then one at the real time: what is due then is done."""
    settings = parse_settings(config.read_text(), config, environ)
    store = Store.open(settings.database.sqlalchemy_url(environ))
    store.upgrade()
    started = time.perf_counter()
    evaluate_bench.build(store, missions, today=evaluate_bench.AT.date())
    built = time.perf_counter() - started
    tick = [sys.executable, "-m", "followupd", "--config", str(config), "tick"]
    ticked, caught_up = (
        harness.run_process(command, env=environ, cwd=config.parent)
        for command in ([*tick, "--now", evaluate_bench.AT.isoformat()], tick)
    )
    for ran in (ticked, caught_up):
        if ran.code != 0:
            sys.exit(f"followupd tick exited with {ran.code}:\n{ran.output[-3000:]}")
    with store.session() as session:
        counts = select(FollowUp.state, func.count()).group_by(FollowUp.state)
        by_state = {str(state): int(count) for state, count in session.execute(counts)}
        next_due = session.scalar(
            select(func.min(func.coalesce(FollowUp.next_attempt_at, FollowUp.due_at))).where(
                FollowUp.state == "pending"
            )
        )
    store.close()
    return Prepared(built, ticked.wall, caught_up.wall, by_state, next_due)


# -- the process, from /proc ------------------------------------------------------------


def sample(pid: int) -> Sample:
    values: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "Threads"):
            values[name] = int(rest.split()[0])
    return Sample(
        values["VmRSS"], values["VmHWM"], values["RssAnon"], values["RssFile"], values["Threads"]
    )


def switches(pid: int) -> int:
    """Context switches of every live thread: how often the process woke up, roughly."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            text = (task / "status").read_text()
        except FileNotFoundError:  # a thread that just ended
            continue
        for line in text.splitlines():
            if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                total += int(line.split()[1])
    return total


# -- the process, over HTTP -------------------------------------------------------------


def passes(port: int) -> dict[str, tuple[int, float]]:
    """Each pass's count and total seconds so far, from /metrics."""
    counts: dict[str, int] = {}
    sums: dict[str, float] = {}
    for line in get(port, "/metrics")[2].decode().splitlines():
        match = PASS_COUNT.match(line)
        if match and match.group(1) == "count":
            counts[match.group(2)] = int(float(match.group(3)))
        elif match:
            sums[match.group(2)] = float(match.group(3))
    return {name: (count, sums.get(name, 0.0)) for name, count in counts.items()}


def wait_passes(port: int, before: dict[str, tuple[int, float]]) -> dict[str, tuple[int, float]]:
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        time.sleep(1)
        now = passes(port)
        if all(
            now.get(name, (0, 0.0))[0] > before.get(name, (0, 0.0))[0] for name in STARTUP_PASSES
        ):
            return now
    sys.exit(f"the passes after SIGHUP did not finish in {TIMEOUT:.0f} s")


def ran(before: dict[str, tuple[int, float]], after: dict[str, tuple[int, float]]) -> str:
    done = []
    for name, (count, seconds) in sorted(after.items()):
        old_count, old_seconds = before.get(name, (0, 0.0))
        if count > old_count:
            done.append(f"{name} x{count - old_count} ({seconds - old_seconds:.2f} s)")
    return ", ".join(done) or "none"


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def mb(kb: int) -> str:
    return f"{kb / 1024:.1f}"


@dataclass
class Window:
    seconds: float
    cpu: float
    switches: int
    samples: list[Sample]
    passes: str

    @property
    def percent(self) -> float:
        return 100 * self.cpu / self.seconds


def measure(pid: int, port: int, seconds: float) -> Window:
    """SECONDS of the process left alone: only /proc is read, once a second."""
    before = passes(port)
    samples: list[Sample] = []
    cpu, woke, wall = machine.cpu_seconds(pid), switches(pid), time.monotonic()
    deadline, next_sample = wall + seconds, wall
    while next_sample < deadline:
        samples.append(sample(pid))
        next_sample += 1
        time.sleep(max(0.0, min(next_sample, deadline) - time.monotonic()))
    cpu, woke, wall = machine.cpu_seconds(pid) - cpu, switches(pid) - woke, time.monotonic() - wall
    samples.append(sample(pid))
    return Window(wall, cpu, woke, samples, ran(before, passes(port)))


@dataclass
class Observed:
    """What the daemon did from its start to its exit."""

    ready: float  # seconds from the start to the startup passes done
    startup_cpu: float
    startup: Sample
    window: Window
    reloaded: str  # the passes SIGHUP ran
    pass_cpu: float
    after_passes: Sample
    code: int  # the exit code after SIGTERM
    stopped: float  # seconds SIGTERM took
    lifetime_cpu: float


def observe(config: Path, environ: dict[str, str], port: int, args: argparse.Namespace) -> Observed:
    """Start the daemon, leave it alone, reload it, stop it: what each step cost."""
    cpu_before_daemon = children_cpu()
    started = time.perf_counter()
    with running(config, environ, port, config.parent / "followupd.log") as daemon:
        pid = daemon.pid
        ready = time.perf_counter() - started
        startup_cpu, startup = machine.cpu_seconds(pid), sample(pid)
        time.sleep(args.settle)
        window = measure(pid, port, args.seconds)

        # the periodic work: a reload re-runs every pass at once
        cpu = machine.cpu_seconds(pid)
        before = passes(port)
        daemon.send_signal(signal.SIGHUP)
        reloaded = ran(before, wait_passes(port, before))
        pass_cpu = machine.cpu_seconds(pid) - cpu
        after_passes = sample(pid)

        stop_started = time.perf_counter()
        daemon.send_signal(signal.SIGTERM)
        code = daemon.wait(timeout=120)
        stopped = time.perf_counter() - stop_started
    lifetime_cpu = children_cpu() - cpu_before_daemon
    return Observed(
        ready,
        startup_cpu,
        startup,
        window,
        reloaded,
        pass_cpu,
        after_passes,
        code,
        stopped,
        lifetime_cpu,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--missions", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=60.0, help="the measured window")
    parser.add_argument("--settle", type=float, default=10.0, help="wait after the startup passes")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (store, log)")
    harness.add_figures_option(parser)
    args = parser.parse_args()
    with harness.workdir("followupd-idle-", keep=args.keep) as workdir:
        bench(args, workdir)


def bench(args: argparse.Namespace, workdir: Path) -> None:
    port = free_port()
    config = workdir / "followupd.toml"
    config.write_text(CONFIG.format(port=port))
    environ = environment(workdir)
    prepared = prepare(config, environ, args.missions)
    load = os.getloadavg()[0]
    seen = observe(config, environ, port, args)
    lines = (workdir / "followupd.log").read_text().splitlines()
    problems = sum(" WARNING " in line or " ERROR " in line for line in lines)

    window = seen.window
    rss = [s.rss_kb for s in window.samples]
    final = window.samples[-1]
    followups = ", ".join(f"{n} {s}" for s, n in sorted(prepared.by_state.items())) or "none"
    next_due = prepared.next_due.isoformat() if prepared.next_due else "none"
    print(f"idle benchmark: followupd run on SQLite, {args.missions} missions")
    print(
        f"  store built in {prepared.built:.1f} s; `followupd tick --now AT` in "
        f"{prepared.ticked:.1f} s, then `followupd tick` at the real time in "
        f"{prepared.caught_up:.1f} s"
    )
    print(f"  follow-ups after the ticks: {followups}; the next pending is due {next_due}")
    print(
        f"  ready with startup passes after {seen.ready:.1f} s, {seen.startup_cpu:.2f} CPU s,"
        f" RSS {mb(seen.startup.rss_kb)} MB; settled {args.settle:.0f} s"
    )
    print()
    anon_file = f"(anon {mb(final.anon_kb)}, file {mb(final.file_kb)})"
    rows = [
        ("missions", f"{args.missions}"),
        ("seconds measured", f"{window.seconds:.1f}"),
        ("CPU seconds", f"{window.cpu:.2f}"),
        ("CPU % of one core", f"{window.percent:.3f}   (target < 1)"),
        ("RSS max MB", f"{mb(max(rss))}   (target < 120)"),
        ("RSS final MB", f"{mb(final.rss_kb)}   {anon_file}"),
        ("RSS peak MB (VmHWM)", f"{mb(final.hwm_kb)}"),
        ("threads", f"{final.threads}"),
        ("wake-ups per second", f"{window.switches / window.seconds:.1f}"),
        ("passes in the window", window.passes),
    ]
    for name, value in rows:
        print(f"  {name:<22}{value}")
    print()
    print(
        f"  after SIGHUP, every pass once ({seen.reloaded}): {seen.pass_cpu:.2f} CPU s;"
        f" RSS then {mb(seen.after_passes.rss_kb)} MB, peak {mb(seen.after_passes.hwm_kb)} MB"
    )
    every = parse_settings(config.read_text(), config, environ).service.evaluate_every_seconds
    averaged = window.percent + 100 * seen.pass_cpu / every
    print(
        f"  averaged over an evaluate period ({every} s, the passes counted once):"
        f" {averaged:.3f}% of one core;"
        f" a minute holding them: {window.percent + 100 * seen.pass_cpu / 60:.2f}%"
    )
    print(
        f"  SIGTERM: exit code {seen.code} (0 expected) after {seen.stopped:.2f} s;"
        f" CPU over the daemon's whole life {seen.lifetime_cpu:.2f} s;"
        f" warnings and errors logged: {problems}"
    )
    print(f"  machine: {machine.describe(load_before=load)}")
    harness.save_figures(
        args.figures,
        {
            "missions": args.missions,
            "seconds": window.seconds,
            "cpu_percent": window.percent,
            "cpu_resolution_percent": 100 / machine.CLOCK_TICKS / window.seconds,  # one tick
            "rss_max_mb": max(rss) / 1024,
            "rss_peak_mb": final.hwm_kb / 1024,
            "evaluate_every": every,
            "averaged_percent": averaged,
            "wakeups_per_second": window.switches / window.seconds,
        },
    )


if __name__ == "__main__":
    main()
