"""Benchmark: how long a command takes from its start, beside vdirsyncer's. Prints figures.

    python -m tests.bench.startup [--runs 15] [--install]

(from the repository root in the dev venv.) Needs Debian's ``vdirsyncer``
package, the peer (the script says how to install it, or with ``--install``
as root installs it).

Loads the demo into a SQLite store in a temp dir (``followupd init --demo
--today 2026-11-23``, its dates moved to that fixed week, never the wall
clock's: the same store on every run), then times, as whole processes run to
their end as a user runs them:

- ``followupd --version``: the interpreter, the command line, nothing else
  (goal: 0.25 s);
- ``followupd plan --from 2026-11-23T09:00``: the config read and validated,
  the store opened, every rule evaluated over the demo for 30 days, the
  table printed (goal: 0.6 s);
- ``vdirsyncer --version``, the peer: a click command line in Python too.

Each is run RUNS times, the three in turn so that other work on the machine
weighs on them alike, and shown as the median, fastest and slowest wall time
(spawn to exit) and the median CPU time (user + system of the process, from
os.wait4). followupd runs as pip installs it, compiled to bytecode: one run
of each of its commands before the timed ones (not timed) writes the
bytecode (into the temp dir: PYTHONPYCACHEPREFIX) and the compiled templates
(into the state directory), as a user's first run does. Then one more run of
each under ``python -X importtime`` counts the modules it imports and the
libraries among them. Only the temp dir is written; nothing is reached over
the network.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from tests.bench import harness, machine
from tests.bench.caldav_sync import HOW_TO_INSTALL, install_vdirsyncer, vdirsyncer_version
from tests.bench.daemon import environment

ROOT = Path(__file__).parents[2]  # the tree whose followupd is measured
DAY, AT = "2026-11-23", "2026-11-23T09:00"  # the demo's week, and plan's start
GOALS = {"--version": 0.25, "plan": 0.6}  # seconds of wall time (issue 17)
CONFIG = """\
[owner]
name = "Claire Martin"
email = "claire@cabinet.example"
phone = "+33 6 00 00 00 00"
"""
IMPORTED = re.compile(r"^import time:\s+\d+ \|\s+\d+ \| ( *)(\S+)$")
# the libraries worth naming when a command imports them
LIBRARIES = ("sqlalchemy", "pydantic", "jinja2", "babel", "holidays", "rich", "icalendar",
             "email_validator", "alembic", "reportlab", "caldav", "aiosmtplib", "aiohttp",
             "imapclient", "matplotlib", "apscheduler")  # fmt: skip


@dataclass(frozen=True)
class Command:
    label: str
    argv: list[str | Path]
    env: dict[str, str]


@dataclass(frozen=True)
class Times:
    """The runs of one command: median, fastest and slowest wall seconds, median CPU seconds."""

    wall: float
    wall_min: float
    wall_max: float
    cpu: float

    @classmethod
    def of(cls, runs: list[harness.Ran]) -> Times:
        walls = [run.wall for run in runs]
        return cls(statistics.median(walls), min(walls), max(walls),
                   statistics.median(run.cpu for run in runs))  # fmt: skip


def run(command: Command) -> harness.Ran:
    ran = harness.run_process(command.argv, env=command.env, cwd=ROOT)
    if ran.code != 0:
        sys.exit(f"{command.label} failed with exit code {ran.code}:\n{ran.output}")
    return ran


def imports(command: Command) -> tuple[int, list[str]]:
    """How many modules `command` imports (one run under -X importtime), and which LIBRARIES."""
    argv = [command.argv[0], "-X", "importtime", *command.argv[1:]]
    done = run(Command(command.label, argv, command.env))
    names = [match[2] for line in done.output.splitlines() if (match := IMPORTED.match(line))]
    tops = {name.split(".")[0] for name in names}
    return len(names), [library for library in LIBRARIES if library in tops]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=15, help="of each command (default: 15)")
    parser.add_argument(
        "--install", action="store_true", help="as root, install Debian's vdirsyncer if missing"
    )
    harness.add_figures_option(parser)
    args = parser.parse_args()
    binary = shutil.which("vdirsyncer")
    if binary is None and args.install:
        install_vdirsyncer()
        binary = shutil.which("vdirsyncer")
    if binary is None:
        sys.exit(HOW_TO_INSTALL)
    with harness.workdir("followupd-bench-startup-") as workdir:
        bench(args, binary, workdir)


def bench(args: argparse.Namespace, binary: str, workdir: Path) -> None:
    config = workdir / "followupd.toml"
    config.write_text(CONFIG, encoding="utf-8")
    env = environment(workdir) | {"PYTHONPYCACHEPREFIX": str(workdir / "bytecode")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # as installed: compiled once, then read
    followupd: list[str | Path] = [sys.executable, "-m", "followupd", "--config", config]
    loaded = run(Command("init --demo", [*followupd, "init", "--demo", "--today", DAY], env))
    print(loaded.output.strip().splitlines()[-1], flush=True)
    commands = [
        Command("followupd --version", [*followupd, "--version"], env),
        Command("vdirsyncer --version", [binary, "--version"], dict(os.environ)),
        Command("followupd plan", [*followupd, "plan", "--from", AT], env),
    ]
    planned = run(commands[2])  # the bytecode and the compiled templates: not timed
    run(commands[0])
    shown = sum(1 for line in planned.output.splitlines() if line.startswith(DAY[:4]))
    print(f"plan shows {shown} follow-ups over 30 days from {AT}", flush=True)
    load = os.getloadavg()[0]  # other work on the machine stretches every wall time
    runs: dict[str, list[harness.Ran]] = {command.label: [] for command in commands}
    for _ in range(args.runs):
        for command in commands:
            runs[command.label].append(run(command))
    times = {label: Times.of(done) for label, done in runs.items()}
    ours = [command for command in commands if command.label.startswith("followupd")]
    loads = {command.label: imports(command) for command in ours}
    print(f"\n{args.runs} runs of each, in turn, whole processes:")
    print(f"{'':<24}{'median s':>10}{'fastest s':>11}{'slowest s':>11}{'CPU s':>8}  goal")
    for label, spent in times.items():
        goal = next((f"≤ {s} s" for what, s in GOALS.items() if label == f"followupd {what}"), "")
        print(f"{label:<24}{spent.wall:>10.3f}{spent.wall_min:>11.3f}{spent.wall_max:>11.3f}"
              f"{spent.cpu:>8.3f}  {goal}")  # fmt: skip
    print("wall s: from the spawn to the exit; CPU s: user + system of the process (os.wait4), "
          "median of the runs")  # fmt: skip
    for label, (count, libraries) in loads.items():
        print(f"{label} imports {count} modules; libraries: {', '.join(libraries) or 'none'}")
    tools = vdirsyncer_version(binary)
    print(f"machine: {machine.describe(tools, load_before=load)}")
    harness.save_figures(
        args.figures,
        {
            "runs": args.runs,
            "followups_shown": shown,
            "vdirsyncer": tools,
            "goals": GOALS,
            "times": {label: asdict(spent) for label, spent in times.items()},
            "modules": {
                label: {"count": count, "libraries": libraries}
                for label, (count, libraries) in loads.items()
            },
            "load_before": load,
            "load_after": os.getloadavg()[0],
        },
    )


if __name__ == "__main__":
    main()
