"""Benchmark: the full delivery path against Postfix's smtp-sink. Prints figures; asserts nothing.

    python tests/bench/delivery.py [--messages 10000] [--sessions 8] [--repeat 5]
                                   [--profile] [--install]

Needs Postfix's test tools smtp-sink and smtp-source (Debian's ``postfix``
package, installed unconfigured; the script says how, or with ``--install``
as root installs it, and makes sure no Postfix service is left running).

Builds a SQLite store in a temp dir with MESSAGES unpaid invoices of French
clients (Paris, Brussels, Geneva, Luxembourg), one per contact (so each is a
client email of its own, in its contact's thread), each due for a client nudge on
Monday 23 November 2026 at 09:00, and lets the engine record them through
`evaluate` (subjects and bodies rendered from the shipped templates, as the
daemon does); earlier passes, a week and two weeks before, record the first
nudges of two thirds of the invoices, marked sent, so those messages reply in
their invoice's thread. Only `invoice_due` is enabled, with its client steps.

Every side is timed the same way, as a whole process run to its end, with
its wall seconds and its CPU seconds (user + system, from its rusage by
``os.wait4``): it starts ``smtp-sink`` on a free loopback port, then runs
``followupd tick --now AT`` on that store as a user would (start-up, an
evaluate pass that finds nothing new, the delivery pass: claim, check
again, build each message, send it over SMTP, record the outcome; then its
table of what it did), with ``[smtp] security = "none"`` and
``rate_per_minute`` at the config's maximum. Then ``smtp-source`` sends the
same number of messages to the same sink over one connection (``-d -s 1``,
the way it is fastest), each a copy of the message followupd sent that is
closest to their average size, REPEAT times (the median run shown: it takes
a fraction of a second); and again with SESSIONS parallel sessions, for
scale. The sink keeps no counter (``-c`` writes to its output after every
message and halves smtp-source's rate): followupd's deliveries are counted
in its outbox, smtp-source's by its exit status.

As an extra, labelled so, the daemon's delivery pass alone,
``Deliverer(...).run(at)`` in this process (on a copy of the same store, made
before the tick), with its wall and CPU seconds: it is where the messages
are sampled. It prints the rates, their ratios, the outbox by state after
each pass, and the machine; with --profile, where the in-process pass spends
its time. Only loopback is used.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import random
import shutil
import sqlite3
import subprocess
import sys
import time
import unittest.mock
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from followupd.channels.email.message import Email, message_id
from followupd.channels.email.pacing import Pacer
from followupd.channels.email.sender import Gate, MailSender, SmtpSender, at_once
from followupd.config.load import parse_settings
from followupd.config.sections import Smtp
from followupd.config.settings import Settings
from followupd.delivery.deliverer import BATCH, Deliverer
from followupd.engine.evaluation import evaluate
from followupd.rules.registry import enabled_rules
from followupd.store.db import Store
from followupd.store.models import Client, Contact, FollowUp, Invoice, Mission
from tests.bench import harness, machine
from tests.bench.daemon import environment
from tests.smtpserver import free_port

# the bench's "now", never the wall clock's: Monday 23 November 2026, 09:00 in Paris, a
# Monday-morning burst; given to followupd as `tick --now` and to the passes it runs in-process
AT = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
WEEK = timedelta(days=7)
OWNER = ("Claire Martin", "claire@cabinet.example")
# the nominal days of the last nudge: Saturday and Sunday move to Monday 23 November
LAST_NUDGE_DAYS = (date(2026, 11, 21), date(2026, 11, 22), date(2026, 11, 23))
NUDGE_OFFSETS = {"nudge-1": 1, "nudge-2": 8, "nudge-3": 15}
OTHER_RULES = ("deposit_due", "contract_missing", "escalate_by_phone",
               "client_not_informed", "status_update_due", "checkpoint_meeting",
               "mission_closeout", "open_ended_mission", "new_year_greetings")  # fmt: skip
# every zone opens its window at 08:00 UTC on AT, none has a holiday that week
PLACES = (
    ("FR", "Europe/Paris"),
    ("FR", "Europe/Paris"),
    ("BE", "Europe/Brussels"),
    ("CH", "Europe/Zurich"),
    ("LU", "Europe/Luxembourg"),
)
FIRST_NAMES = ("Camille", "Julien", "Sophie", "Thomas", "Élodie", "Nicolas", "Léa",
               "François", "Hélène", "Mathieu", "Chloé", "Sébastien", "Anaïs", "Benoît",
               "Margaux")  # fmt: skip
LAST_NAMES = ("Dubois", "Lefèvre", "Moreau", "Laurent", "Girard", "Bonnet", "Dupont",
              "Lambert", "Fontaine", "Rousseau", "Vincent", "Müller", "Faure", "André",
              "Mercier")  # fmt: skip
COMPANIES = ("Boulangerie", "Cabinet", "Atelier", "Transports", "Éditions", "Groupe",
             "Laboratoires", "Menuiserie", "Agence", "Clinique vétérinaire")  # fmt: skip
TITLES = ("Audit du système d'information", "Refonte du site e-commerce",
          "Mise en conformité RGPD", "Migration de la comptabilité vers le cloud",
          "Formation des équipes commerciales", "Étude de marché Benelux",
          "Déploiement d'un ERP", "Accompagnement à la levée de fonds",
          "Stratégie de marque et identité visuelle",
          "Optimisation de la chaîne logistique")  # fmt: skip
T = TypeVar("T")
SOURCE = "/usr/sbin/smtp-source"
SINK = "/usr/sbin/smtp-sink"
PRESEED = "postfix postfix/main_mailer_type select No configuration\n"
HOW_TO_INSTALL = f"""\
Postfix's smtp-sink and smtp-source are not installed. They come with Debian's
postfix package, which can be installed without configuring a mail server:

    echo "{PRESEED.strip()}" | sudo debconf-set-selections
    sudo DEBIAN_FRONTEND=noninteractive apt-get install -y postfix

then make sure no Postfix service was left running (`sudo postfix status`,
`sudo postfix stop`). Or run this script as root with --install, which does all that."""


def config_text(database: Path, port: int, rate: int, connections: int | None = None) -> str:
    steps = ", ".join(
        f'{{ name = "{name}", offset_days = {offset}, audience = "client" }}'
        for name, offset in NUDGE_OFFSETS.items()
    )
    disabled = "".join(f"\n[rules.{name}]\nenabled = false\n" for name in OTHER_RULES)
    return f"""\
[owner]
name = "{OWNER[0]}"
email = "{OWNER[1]}"
phone = "+33 6 12 34 56 78"

[database]
url = "sqlite:///{database}"

[smtp]
host = "127.0.0.1"
port = {port}
security = "none"
rate_per_minute = {rate}
{f"connections = {connections}" if connections else ""}
[rules.invoice_due]
steps = [{steps}]
{disabled}"""


def rate_cap() -> int:
    """The largest ``[smtp] rate_per_minute`` the config accepts."""
    for constraint in Smtp.model_fields["rate_per_minute"].metadata:
        limit = getattr(constraint, "le", None)
        if isinstance(limit, int):
            return limit
    return 1_000_000_000  # no cap


# -- the store --------------------------------------------------------------------------


def build(store: Store, settings: Settings, messages: int, seed: int = 11) -> dict[str, int]:
    """MESSAGES unpaid invoices, each with one client nudge due at AT; returns row counts.

    A third of the invoices are due for their first nudge, a third for their
    second, a third for their third: the engine records the earlier nudges in
    passes one and two weeks before AT, and they are marked sent, as the
    daemon would have left them.
    """
    rng = random.Random(seed)
    # one invoice per contact: a contact's second invoice would wait a day (one nudge a day
    # to a contact, issue 16) unless the same claim took both
    missions = max(1, messages)
    clients = max(1, missions // 2)
    with store.session() as session:
        rows: list[dict[str, Any]] = []
        for n in range(clients):
            country, timezone = PLACES[n % len(PLACES)]
            name = f"{rng.choice(COMPANIES)} {rng.choice(LAST_NAMES)}"
            rows.append({"id": n + 1, "key": f"c{n}", "name": name, "language": "fr",
                         "timezone": timezone, "country": country})  # fmt: skip
        session.execute(insert(Client), rows)
        rows = []
        for n in range(missions):
            name = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
            rows.append({"id": n + 1, "key": f"p{n}", "client_id": n % clients + 1,
                         "name": name, "email": f"p{n}@client.example",
                         "phone": "+33 1 23 45 67 89"})  # fmt: skip
        session.execute(insert(Contact), rows)
        rows = []
        for n in range(missions):
            start = date(2026, 3, 2) + timedelta(days=rng.randrange(0, 150))
            rows.append({"id": n + 1, "key": f"m{n}", "client_id": n % clients + 1,
                         "title": rng.choice(TITLES), "contact_id": n + 1, "start": start,
                         "end": start + timedelta(days=rng.randrange(270, 420)),
                         "status": "active", "currency": "EUR", "deliverables": True,
                         "contract_signed": start - timedelta(days=10)})  # fmt: skip
        session.execute(insert(Mission), rows)
        rows = []
        for n in range(messages):
            step = list(NUDGE_OFFSETS)[n % 3]
            due = LAST_NUDGE_DAYS[n // 3 % 3] - timedelta(days=NUDGE_OFFSETS[step])
            amount = Decimal(rng.randrange(45_000, 1_800_000)) / 100
            rows.append({"number": f"F2026-{n + 1:05d}", "mission_id": n % missions + 1,
                         "amount": amount, "issued": due - timedelta(days=30), "due": due,
                         "paid": None})  # fmt: skip
        session.execute(insert(Invoice), rows)
    rules = enabled_rules(settings.rules)
    for at in (AT - 2 * WEEK, AT - WEEK):
        with store.session() as session:
            evaluate(session, settings, rules, at)
            _mark_sent(session)
    with store.session() as session:
        evaluate(session, settings, rules, AT)
        return _count_by_state(session)


def _mark_sent(session: Session) -> None:
    """What a pass recorded, as delivered at its due time (the thread history)."""
    domain = OWNER[1].rsplit("@", 1)[1]
    pending = session.execute(
        select(FollowUp.id, FollowUp.key, FollowUp.due_at).where(FollowUp.state == "pending")
    ).all()
    if pending:
        session.execute(
            update(FollowUp),
            [{"id": id_, "state": "sent", "sent_at": due, "attempts": 1, "updated_at": due,
              "message_id": message_id(key, domain)} for id_, key, due in pending],
        )  # fmt: skip


def _count_by_state(session: Session, *where: Any) -> dict[str, int]:
    query = select(FollowUp.state, func.count()).where(*where).group_by(FollowUp.state)
    return {str(state): int(count) for state, count in session.execute(query)}


def _states(counts: dict[str, int]) -> str:
    return ", ".join(f"{state}={count}" for state, count in sorted(counts.items())) or "none"


# -- followupd's side -------------------------------------------------------------------


@dataclass
class Handed:
    """What the senders of one delivery pass saw."""

    sample_every: int
    messages: int = 0
    connections: int = 0
    paced_seconds: float = 0.0
    sample: list[Email] = field(default_factory=list)

    async def paced(self, seconds: float) -> None:
        self.paced_seconds += seconds
        await asyncio.sleep(seconds)


class BenchSender(SmtpSender):
    """The daemon's SMTP sender, unchanged, that also counts and samples what it hands over.

    Every `sample_every`-th message is kept, to be sized after the pass; the
    pacer is the one the config makes, shared by the pass's connections as
    the deliverer shares its own, with its sleeps added up.
    """

    def __init__(self, smtp: Smtp, handed: Handed, pacer: Pacer) -> None:
        super().__init__(smtp, pacer=pacer)
        self.handed = handed
        handed.connections += 1  # one sender, one SMTP connection

    async def send(self, message: Email, before_end: Gate = at_once) -> None:
        await super().send(message, before_end)
        self.handed.messages += 1
        if self.handed.messages % self.handed.sample_every == 0:
            self.handed.sample.append(message)


def deliver(
    store: Store, settings: Settings, handed: Handed, profile: cProfile.Profile | None
) -> tuple[float, float]:
    """Run one delivery pass at AT in this process; return its wall and CPU seconds."""
    assert settings.smtp is not None
    smtp = settings.smtp
    pacer = Pacer(smtp.rate_per_minute, sleep=handed.paced)

    def sender() -> MailSender:
        return BenchSender(smtp, handed, pacer)

    deliverer = Deliverer(store, settings, worker="bench", sender=sender)
    started, cpu = time.perf_counter(), time.process_time()
    if profile is not None:
        profile.enable()
        with unittest.mock.patch("asyncio.to_thread", inline):  # cProfile sees one thread
            report = asyncio.run(deliverer.run(AT))
        profile.disable()
    else:
        report = asyncio.run(deliverer.run(AT))
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    others = {
        "retrying": report.retrying,
        "failed": report.failed,
        "dead": report.dead,
        "cancelled": report.cancelled,
        "expired": report.expired,
        "held": report.held,
    }
    for name, keys in others.items():
        if keys:
            print(f"warning: {len(keys)} follow-ups {name}, e.g. {next(iter(keys))}")
            if isinstance(keys, dict):
                print(f"         {next(iter(keys.values()))}")
    return elapsed, cpu


async def inline(function: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """`asyncio.to_thread`, run in the event loop's thread instead: for the profile."""
    return function(*args, **kwargs)


def tick(config: Path, environ: dict[str, str]) -> harness.Ran:
    """`followupd tick --now AT` with `config`, a whole process as a user runs it."""
    command = [sys.executable, "-m", "followupd", "--config", str(config), "tick",
               "--now", AT.isoformat()]  # fmt: skip
    ran = harness.run_process(command, env=environ, cwd=config.parent)
    if ran.code != 0:
        sys.exit(f"followupd tick exited with {ran.code}:\n{ran.output[-3000:]}")
    return ran


def copy_store(source: Path, target: Path) -> None:
    """A copy of a closed SQLite store (its WAL folded in), for a second pass on the same rows."""
    old, new = sqlite3.connect(source), sqlite3.connect(target)
    try:
        old.backup(new)
    finally:
        old.close()
        new.close()


# -- Postfix's side ---------------------------------------------------------------------


def postfix_tools() -> tuple[str, str] | None:
    found = []
    for name, default in (("smtp-sink", SINK), ("smtp-source", SOURCE)):
        path = shutil.which(name) or (default if os.access(default, os.X_OK) else None)
        if path is None:
            return None
        found.append(path)
    return found[0], found[1]


def install_postfix() -> None:
    """Install Debian's postfix unconfigured (as root), and leave no Postfix service running."""
    if os.geteuid() != 0:
        sys.exit("--install needs root.\n\n" + HOW_TO_INSTALL)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    print("installing postfix (for smtp-sink and smtp-source), unconfigured…", flush=True)
    subprocess.run(["debconf-set-selections"], input=PRESEED, text=True, check=True)
    subprocess.run(["apt-get", "update", "-q"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-q", "postfix"], check=True, env=env)
    stop_postfix_service()


def stop_postfix_service() -> None:
    """Stop the Postfix mail system if the package's scripts started it."""
    if Path("/run/systemd/system").is_dir():
        subprocess.run(["systemctl", "stop", "postfix"], check=False)
    postfix = shutil.which("postfix") or "/usr/sbin/postfix"
    status = subprocess.run([postfix, "status"], capture_output=True, check=False)
    if status.returncode == 0:
        print("the postfix service was running: stopping it")
        subprocess.run([postfix, "stop"], check=False)


class Sink:
    """smtp-sink on 127.0.0.1:port, without counters (-c slows it down), its output to `log`."""

    def __init__(self, binary: str, port: int, log: Path) -> None:
        command = [binary]
        if os.geteuid() == 0:
            command += ["-u", "nobody"]  # smtp-sink refuses to run as root without -u
        command += [f"127.0.0.1:{port}", "1000"]
        self.log = log
        self.output = log.open("wb")
        self.process = subprocess.Popen(command, stdout=self.output, stderr=subprocess.STDOUT)
        if not machine.listening(self.process, port, timeout=10):
            self.stop()
            raise RuntimeError(f"smtp-sink did not start: {log.read_text()}")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.output.close()


@contextmanager
def sink(binary: str, port: int, log: Path) -> Iterator[Sink]:
    running = Sink(binary, port, log)
    try:
        yield running
    finally:
        running.stop()


def smtp_source(binary: str, port: int, messages: int, sessions: int, message: Path) -> harness.Ran:
    """Send `messages` copies of `message` over `sessions` connections, each reused (-d)."""
    command = [
        binary,
        "-d",
        "-s",
        str(sessions),
        "-m",
        str(messages),
        "-F",
        str(message),
        "-f",
        OWNER[1],
        "-t",
        "p0@client.example",
        "-M",
        "cabinet.example",
        f"127.0.0.1:{port}",
    ]
    ran = harness.run_process(command)
    if ran.code != 0:
        sys.exit(f"smtp-source exited with {ran.code}:\n{ran.output[-3000:]}")
    return ran


# -- the report -------------------------------------------------------------------------


@dataclass
class Run:
    label: str
    messages: int
    wall: float  # seconds; of the median run where there are repeats
    cpu: float  # of the same run: the process's user + system seconds
    size: float
    connections: int
    sent: str  # how the messages are known to have gone
    rates: list[float] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.messages / self.wall if self.wall else 0.0

    def figures(self) -> dict[str, Any]:
        return {"label": self.label, "connections": self.connections, "rate": self.rate,
                "seconds": self.wall, "cpu": self.cpu, "bytes": self.size}  # fmt: skip


def postfix_version() -> str:
    postconf = shutil.which("postconf") or "/usr/sbin/postconf"
    found = subprocess.run(
        [postconf, "-d", "-h", "mail_version"], capture_output=True, text=True, check=False
    ).stdout.strip()
    return f"Postfix {found or 'unknown'}"


# (what, the file of the function, its qualified name), or a built-in's name (no file):
# time inside each, callees included, so they overlap; a coroutine's time excludes its awaits
STAGES = (
    ("claim a batch", "followupd/delivery/deliverer.py", "claim"),
    ("check again (vanished, send window)", "followupd/delivery/deliverer.py", "Deliverer._screen"),
    ("thread history", "followupd/delivery/deliverer.py", "Deliverer._threads"),
    ("build the messages", "followupd/delivery/deliverer.py", "Deliverer._prepare"),
    ("build_message", "followupd/channels/email/message.py", "build_message"),
    ("SMTP transactions (pipelined)", "followupd/channels/email/pipelining.py",
     "Transactions.send"),
    ("check the claims (once a sub-batch)", "followupd/delivery/deliverer.py",
     "Deliverer._still_ours"),
    ("record the messages sent, at once (SQLite)", "followupd/delivery/deliverer.py",
     "Deliverer._record_at_once"),
    ("record the messages sent, in a thread", "followupd/delivery/deliverer.py",
     "Deliverer._record_accepted"),
    ("record the failures (group commit)", "followupd/delivery/deliverer.py",
     "Deliverer._record"),
    ("SQLAlchemy commits", "sqlalchemy/orm/session.py", "SessionTransaction.commit"),
    ("sqlite3 execute", "", "<method 'execute' of 'sqlite3.Cursor' objects>"),
    ("sqlite3 commit", "", "<method 'commit' of 'sqlite3.Connection' objects>"),
    ("ssl.create_default_context", "ssl.py", "create_default_context"),
    ("waiting for the sink (epoll)", "", "<method 'poll' of 'select.epoll' objects>"),
)  # fmt: skip


def print_profile(profile: cProfile.Profile, seconds: float, messages: int, top: int = 20) -> None:
    entries = list(profile.getstats())
    print(
        f"\nwhere the profiled delivery pass ({seconds:.1f} s) spends its time "
        "(CPU seconds, cumulative, overlapping; profiling inflates many small calls):"
    )
    for label, path, name in STAGES:
        spent = harness.stage_seconds(entries, path, name)
        print(
            f"  {label:<42}{spent:>8.2f} s{100 * spent / seconds:>6.1f} %"
            f"{1e6 * spent / max(1, messages):>8.0f} µs/message"
        )
    print(f"\ntop {top} functions by own time:")
    stats = pstats.Stats(profile, stream=sys.stdout)
    stats.strip_dirs().sort_stats(pstats.SortKey.TIME).print_stats(top)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=10_000, help="default: 10000")
    parser.add_argument(
        "--sessions",
        type=int,
        default=8,
        help="parallel smtp-source sessions for the extra run (0: skip it)",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=5,
        help="smtp-source runs of each kind, the median is shown (default: 5)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="profile the delivery pass with cProfile (slows it down)",
    )
    parser.add_argument(
        "--connections",
        type=int,
        help="[smtp] connections for followupd (default: the config's default)",
    )
    parser.add_argument(
        "--install",
        action="store_true",
        help="as root, install Debian's postfix if smtp-sink is missing",
    )
    harness.add_figures_option(parser)
    args = parser.parse_args()
    tools = postfix_tools()
    if tools is None and args.install:
        install_postfix()
        tools = postfix_tools()
    if tools is None:
        sys.exit(HOW_TO_INSTALL)
    harness.compile_followupd()  # as installed: no `tick` process compiles it anew
    with harness.workdir("followupd-bench-delivery-") as workdir:
        bench(args, tools, workdir)


def bench(args: argparse.Namespace, tools: tuple[str, str], workdir: Path) -> None:
    sink_binary, source_binary = tools
    port = free_port()
    cap = rate_cap()
    config, environ = workdir / "bench.toml", environment(workdir)
    config.write_text(config_text(workdir / "bench.db", port, cap, args.connections))
    settings = parse_settings(config.read_text(), config, environ)
    assert settings.smtp is not None
    connections = settings.smtp.connections
    store = Store.open(settings.database.sqlalchemy_url(environ))
    store.upgrade()
    built_at = time.perf_counter()
    before = build(store, settings, args.messages)
    store.close()
    copy_store(workdir / "bench.db", workdir / "in-process.db")
    built = time.perf_counter() - built_at
    due, history = before.get("pending", 0), before.get("sent", 0)
    print(
        f"built the outbox in {built:.1f} s: {due} client nudges due at {AT:%Y-%m-%d %H:%M} UTC,"
        f" {history} earlier nudges already sent in their threads; a copy for the in-process pass",
        flush=True,
    )
    handed = Handed(sample_every=max(1, due // 500))
    load = os.getloadavg()[0]  # other work on the machine skews every figure
    # CPU time, not wall: the sink's turn on a loaded machine is not counted as ours
    profile = cProfile.Profile(time.process_time) if args.profile else None
    with sink(sink_binary, port, workdir / "sink.log"):
        ticked = tick(config, environ)
        after = outbox_after(store_of(workdir / "bench.db"))
        if after[0].get("sent") != due:
            sys.exit(f"the tick sent not all {due} nudges: {_states(after[0])}\n{ticked.output}")
        store = store_of(workdir / "in-process.db")
        seconds, cpu = deliver(store, settings, handed, profile)
        after_in_process = outbox_after(store)
        sample = [message.as_bytes() for message in handed.sample]  # sized after the pass
        size = sum(map(len, sample)) / len(sample) if sample else 0.0
        runs = [
            Run("followupd tick --now, a process", due, ticked.wall, ticked.cpu, size,
                connections, f"outbox: {_states(after[0])}"),
            Run("Deliverer.run, in-process" + (", profiled" if profile else ""), handed.messages,
                seconds, cpu, size, handed.connections,
                f"outbox: {_states(after_in_process[0])}"),
        ]  # fmt: skip
        # smtp-source sends copies of the sampled followupd message closest to the mean size
        typical = min(sample, key=lambda message: abs(len(message) - size), default=b"\n")
        copy = workdir / "message.eml"
        copy.write_bytes(typical.replace(b"\r\n", b"\n"))  # it ends each line with CRLF
        for sessions in (1, args.sessions) if args.sessions > 1 else (1,):
            timings = sorted(
                (smtp_source(source_binary, port, due, sessions, copy)
                 for _ in range(max(1, args.repeat))),
                key=lambda ran: ran.wall,
            )  # fmt: skip
            median = timings[len(timings) // 2]
            name = f"smtp-source, {sessions} parallel sessions" if sessions > 1 else (
                "smtp-source, 1 connection")  # fmt: skip
            rates = [due / ran.wall for ran in timings if ran.wall]
            runs.append(Run(name, due, median.wall, median.cpu, len(typical), sessions,
                            f"exit 0, {len(timings)} runs", rates))  # fmt: skip
    print_table(runs, handed, cap, connections, after, history, load)
    harness.save_figures(
        args.figures,
        {
            "messages": due,
            "postfix": postfix_version(),
            "followupd": runs[0].figures(),
            "in_process": runs[1].figures(),
            "smtp_source": [run.figures() for run in runs[2:]],
        },
    )
    if profile is not None:
        print_profile(profile, seconds, handed.messages)


def store_of(database: Path) -> Store:
    return Store.open(make_url(f"sqlite:///{database}"))


def outbox_after(store: Store) -> tuple[dict[str, int], dict[str, int]]:
    """The outbox by state after a pass: the nudges due at AT, and all rows; the store closed."""
    with store.session() as session:
        found = _count_by_state(session, FollowUp.due_at == AT), _count_by_state(session)
    store.close()
    return found


def print_table(
    runs: list[Run],
    handed: Handed,
    cap: int,
    connections: int,
    after: tuple[dict[str, int], dict[str, int]],
    history: int,
    load: float,
) -> None:
    print(
        f"\n{'':<36}{'messages':>9}{'wall s':>8}{'CPU s':>7}{'msg/s':>8}{'avg bytes':>10}"
        f"{'connections':>12}  sent"
    )
    for run in runs:
        print(
            f"{run.label:<36}{run.messages:>9}{run.wall:>8.2f}{run.cpu:>7.2f}{run.rate:>8.0f}"
            f"{run.size:>10.0f}{run.connections:>12}  {run.sent}"
        )
    ours = runs[0]
    for run in runs[1:]:
        ratio = ours.rate / run.rate if run.rate else 0.0
        print(f"ratio {ours.label} / {run.label}: {ratio:.3f}")
    print(
        "\nwall s: from the spawn to the exit of the process (for the in-process pass, of "
        "Deliverer.run); CPU s: user + system of that process, from its rusage (os.wait4), or "
        "of this one over the in-process pass"
    )
    print(
        f"followupd: up to [smtp] connections = {connections} SMTP connections side by side, "
        f"kept for the pass from one claimed batch of {BATCH} to the next; the tick's figures hold "
        "its start-up, an evaluate pass that finds nothing new and its printed table; avg "
        f"bytes of {len(handed.sample)} messages sampled evenly in the in-process pass"
    )
    for run in runs[2:]:
        spread = ", ".join(f"{rate:.0f}" for rate in sorted(run.rates))
        print(
            f"{run.label}: {len(run.rates)} runs of {run.messages} copies of one followupd "
            f"message, reusing each connection (-d); msg/s {spread}; the median is shown"
        )
    print(
        f"[smtp] rate_per_minute = {cap}, the config's maximum ({cap / 60:.0f} msg/s): "
        f"the in-process pass's pacer slept {handed.paced_seconds:.2f} s in all"
    )
    print(f"outbox after the tick, the nudges due at AT: {_states(after[0])}")
    print(
        f"outbox after the tick, all rows: {_states(after[1])} "
        f"(of which {history} thread history sent before)"
    )
    software = (postfix_version(), *machine.packages("sqlalchemy", "aiosmtplib"))
    print(f"machine: {machine.describe(*software, load_before=load)}")


if __name__ == "__main__":
    main()
