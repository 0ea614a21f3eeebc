"""Benchmark: followupd's calendar sync and vdirsyncer's. Prints figures; asserts nothing.

    python tests/bench/caldav_sync.py [--events 5000] [--profile] [--install]

Needs Debian's ``vdirsyncer`` package (the script says how to install it, or
with ``--install`` as root installs it). Radicale comes from the dev venv.

Writes EVENTS calendar objects (default 5000) straight into the filesystem
storage of a Radicale 3 server (``collection-root/claire/missions/``, a
calendar named "Missions") before the server starts, and runs Radicale as a
subprocess, both as tests/bench/radicale.py explains. The objects are shaped
like a consultant's calendar, as the apps write them: mission events (all-day
over weeks or months, ``CATEGORIES:mission`` or a ``[mission]`` title, a
description of ``key:``, ``client:``, ``contact:``… lines and notes, a few
with a mistyped field), past and future meetings with attendees (known
contacts or not, some naming a mission in brackets), plain appointments, and
recurring events (RRULE with COUNT, UNTIL or no end, EXDATE); timed ones
carry a VTIMEZONE.

Radicale is warmed up first, outside the figures: its first listing parses
every object and fills its item cache, and its first ``sync-collection``
report fills its history cache; a server that had received the objects by
PUTs would have done that work at upload time. ``radicale --verify-storage``
does most of it before the server starts, then a listing and a report
finish it. The warm-up times are shown.

Then, in this order, timed, each client a whole process run to its end as a
user runs it (start-up included, shown apart as ``--version``; followupd's
modules compiled to bytecode beforehand, as pip installs them, since a
checkout under PYTHONDONTWRITEBYTECODE would compile them in every process):

1. ``followupd sync --now AT``, a first sync into an empty SQLite store where
   the clients and contacts the mission events name were imported: every
   object listed and fetched;
2. one mission event changed on the server (GET, edit, PUT with If-Match, as
   an app does), and ``followupd sync --now AT`` again;
3. as an extra, labelled "in-process", the same two syncs (another event
   changed between them) by ``sync_calendars`` in this process, into a fresh
   store: followupd's work without its process start-up;
4. ``vdirsyncer sync`` of the same calendar (a pair of a ``caldav`` storage and
   a ``filesystem`` one in a temp folder, after ``vdirsyncer discover``, not
   timed): every object downloaded;
5. another mission event changed the same way, and ``vdirsyncer sync`` again.

Each is shown as wall time, the client's CPU time (user + system of the
client's process, from its rusage by ``os.wait4``; for the in-process extra,
this process's) and Radicale's CPU time over the same span (from /proc): on
a busy machine the wall times stretch, the CPU times much less. Every side
flushes what it writes to disk (vdirsyncer fsyncs each file it writes, which
is most of its wall time on a disk, Radicale its caches, SQLite its
commits): ``TMPDIR=/dev/shm`` puts the temp dir in memory, to see the
figures without the disk. With --profile, followupd's first sync is run once
more in this process, into a fresh store, under cProfile (after the figures,
so they are not inflated), and where it spends its time is shown. Only
loopback is used: proxies are bypassed for 127.0.0.1.
"""

from __future__ import annotations

import argparse
import cProfile
import logging
import os
import pstats
import random
import re
import shutil
import subprocess
import sys
import time
import unicodedata
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from icalendar import Calendar

from followupd.config.load import parse_settings
from followupd.config.settings import Settings
from followupd.sources.caldav.sync import SyncReport, sync_calendars
from followupd.sources.files.importer import import_files
from followupd.store.db import Store
from tests.bench import harness, machine
from tests.bench.daemon import environment
from tests.bench.radicale import (
    PASSWORD,
    USER,
    Client,
    radicale,
    verify_storage,
    write_calendar,
)

PARIS = ZoneInfo("Europe/Paris")
# the bench's "now", never the wall clock's: the calendar is dated from it, and followupd
# syncs at it (`sync --now`); Monday 23 November 2026, 09:00 in Paris
AT = datetime(2026, 11, 23, 9, 0, tzinfo=PARIS)
PASSWORD_VARIABLE = "FOLLOWUPD_BENCH_CALDAV_PASSWORD"
CALENDAR = "Missions"  # its display name, which followupd's read_calendars names
COLLECTION = "missions"  # its path segment, which vdirsyncer's collections name
LOOPBACK = "127.0.0.1,localhost,::1"
CHANGE_MARK = "status_update_every_days: 14"  # what the one change adds to a description
ITEM_ACTION = re.compile(r"(Copying \(\w+\)|Deleting) item \S+ (?:to|from) (\S+)")
TITLED = re.compile(r"^mission event (?:'[^']*'|\"[^\"]*\"): ")  # a reason's first words
OWNER = ("Claire Martin", "claire@cabinet.example")
FIRST, CHANGED = "first sync", "after one change"  # what is timed, for each client
FOLLOWUPD, IN_PROCESS, VDIRSYNCER = "followupd", "followupd in-process", "vdirsyncer"
HOW_TO_INSTALL = """\
vdirsyncer is not installed. It comes with Debian's vdirsyncer package:

    sudo apt-get update && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y vdirsyncer

Or run this script as root with --install, which does that."""

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
MEETINGS = ("Point d'étape", "Comité de pilotage", "Atelier de cadrage", "Revue des livrables",
            "Réunion de lancement", "Démonstration", "Entretien utilisateurs",
            "Arbitrage budgétaire")  # fmt: skip
APPOINTMENTS = ("Dentiste", "Déjeuner avec Marc", "Salle de sport", "Appel banque",
                "Réunion association", "Garage — révision", "Rendez-vous comptable",
                "Cours d'anglais", "Kiné", "Visio réseau d'indépendants")  # fmt: skip
ALL_DAY = ("Congés", "Salon VivaTech", "Formation continue", "Jour férié — pont",
           "Déménagement")  # fmt: skip
PLACES = ("Lyon, dans leurs locaux", "Paris 9e, 12 rue de Provence", "Visio (Teams)",
          "Bruxelles, avenue Louise", "Chez le client, salle Horizon", "Bordeaux")  # fmt: skip
PRODIDS = ("-//Mozilla.org/NONSGML Mozilla Calendar V1.1//EN",
           "-//Apple Inc.//macOS 14.5//EN", "-//Nextcloud calendar v4.7.6",
           "-//Google Inc//Google Calendar 70.9054//EN")  # fmt: skip
VTIMEZONE = (
    "BEGIN:VTIMEZONE", "TZID:Europe/Paris",
    "BEGIN:DAYLIGHT", "TZOFFSETFROM:+0100", "TZOFFSETTO:+0200", "TZNAME:CEST",
    "DTSTART:19700329T020000", "RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU", "END:DAYLIGHT",
    "BEGIN:STANDARD", "TZOFFSETFROM:+0200", "TZOFFSETTO:+0100", "TZNAME:CET",
    "DTSTART:19701025T030000", "RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU", "END:STANDARD",
    "END:VTIMEZONE",
)  # fmt: skip


# -- the calendar ------------------------------------------------------------------------


@dataclass(frozen=True)
class Person:
    key: str
    client: str
    name: str
    email: str


@dataclass
class People:
    """The clients and contacts imported into followupd's store; missions come from events."""

    clients: list[tuple[str, str]] = field(default_factory=list)  # key, name
    contacts: list[Person] = field(default_factory=list)

    def of_client(self, client: str) -> list[Person]:
        return [person for person in self.contacts if person.client == client]

    def data_file(self) -> str:
        lines = []
        for key, name in self.clients:
            lines += ["[[clients]]", f'key = "{key}"', f'name = "{name}"', 'country = "FR"', ""]
        for person in self.contacts:
            lines += ["[[contacts]]", f'key = "{person.key}"', f'client = "{person.client}"',
                      f'name = "{person.name}"', f'email = "{person.email}"',
                      'phone = "+33 6 12 34 56 78"', ""]  # fmt: skip
        return "\n".join(lines)


def ascii_slug(text: str) -> str:
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "-".join(plain.lower().replace("'", " ").split())


def people(rng: random.Random, events: int) -> People:
    """One client per 25 events, two contacts each."""
    found = People()
    for n in range(max(4, events // 25)):
        name = f"{rng.choice(COMPANIES)} {rng.choice(LAST_NAMES)}"
        key = f"{ascii_slug(name)}-{n}"
        found.clients.append((key, name))
        for k in range(2):
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            email = f"{ascii_slug(first)}.{ascii_slug(last)}@{key}.example"
            found.contacts.append(Person(f"p{2 * n + k}", key, f"{first} {last}", email))
    return found


@dataclass(frozen=True)
class Generated:
    href: str  # the file name in the collection, as apps name them: UID.ics
    uid: str
    kind: str
    text: str
    sound_mission: bool = False  # a mission event followupd should accept


def escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", "\\n")


def fold(line: str) -> str:
    """A content line folded at 75 octets (RFC 5545 section 3.1), never inside a character."""
    parts, current, size = [], "", 0
    for char in line:
        octets = len(char.encode())
        if size + octets > 75:
            parts.append(current)
            current, size = " ", 1
        current += char
        size += octets
    parts.append(current)
    return "\r\n".join(parts)


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def local(moment: datetime) -> str:
    return moment.strftime("%Y%m%dT%H%M%S")


def document(rng: random.Random, properties: list[str], timed: bool) -> str:
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        f"PRODID:{rng.choice(PRODIDS)}",
        "CALSCALE:GREGORIAN",
    ]
    if timed:
        lines += VTIMEZONE
    lines += ["BEGIN:VEVENT", *properties, "END:VEVENT", "END:VCALENDAR"]
    return "".join(fold(line) + "\r\n" for line in lines)


def header(uid: str, created: datetime, summary: str) -> list[str]:
    return [f"UID:{uid}", f"DTSTAMP:{stamp(created)}", f"CREATED:{stamp(created)}",
            f"LAST-MODIFIED:{stamp(created)}", f"SUMMARY:{escape(summary)}"]  # fmt: skip


def day_in(rng: random.Random, first: date, last: date) -> date:
    return first + timedelta(days=rng.randrange((last - first).days + 1))


def time_in(rng: random.Random, first: date, last: date) -> datetime:
    day = day_in(rng, first, last)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    hour = rng.choice((8, 9, 10, 11, 14, 15, 16, 17))
    return datetime(day.year, day.month, day.day, hour, rng.choice((0, 30)), tzinfo=PARIS)


def attendee(person_name: str, email: str) -> str:
    return f'ATTENDEE;CN="{person_name}";PARTSTAT=ACCEPTED;ROLE=REQ-PARTICIPANT:mailto:{email}'


def generate(rng: random.Random, crowd: People, events: int) -> list[Generated]:
    """EVENTS objects: 20 % mission events, 30 % meetings, 38 % appointments, 12 % recurring."""
    today = AT.date()
    missions: list[tuple[str, str]] = []  # key, client
    found: list[Generated] = []
    for n in range(events):
        uid = str(uuid.UUID(int=rng.getrandbits(128), version=4)).upper()
        created = datetime.combine(today - timedelta(days=rng.randrange(30, 900)),
                                   datetime.min.time(), PARIS) + timedelta(hours=10)  # fmt: skip
        draw = rng.random()
        if draw < 0.20 or not missions:
            client, client_name = rng.choice(crowd.clients)
            key = f"{ascii_slug(rng.choice(TITLES))[:20].rstrip('-')}-{n}"
            missions.append((key, client))
            start = day_in(rng, today - timedelta(days=700), today + timedelta(days=200))
            end = start + timedelta(days=rng.randrange(20, 300))
            contact = rng.choice(crowd.of_client(client))
            sound = rng.random() >= 0.02  # a few have a mistyped field, as users write them
            signed = "contract_signed" if sound else "contarct_signed"
            lines = [f"key: {key}", f"client: {client}", f"contact: {contact.key}",
                     f"{signed}: {start - timedelta(days=rng.randrange(3, 20))}"]  # fmt: skip
            if rng.random() < 0.4:
                lines.append(f"deposit_amount: {rng.randrange(10, 90) * 100}")
            if end < today and rng.random() < 0.8:
                lines.append("status: closed")
            if rng.random() < 0.3:
                lines.append(f"status_update_every_days: {rng.choice((7, 14, 30))}")
            lines += ["", f"Lieu : {rng.choice(PLACES)}",
                      f"Interlocuteur principal : {contact.name} ({client_name})",
                      "Budget validé en comité, jalons à confirmer."]  # fmt: skip
            title = rng.choice(TITLES)
            tagged = rng.random() < 0.7
            props = header(uid, created, title if tagged else f"[mission] {title}")
            props += [f"DTSTART;VALUE=DATE:{start:%Y%m%d}", f"DTEND;VALUE=DATE:{end:%Y%m%d}",
                      f"DESCRIPTION:{escape(chr(10).join(lines))}", "TRANSP:TRANSPARENT",
                      "SEQUENCE:0"]  # fmt: skip
            if tagged:
                props.append("CATEGORIES:mission" + (",Clients" if rng.random() < 0.3 else ""))
            text = document(rng, props, timed=False)
            found.append(Generated(f"{uid}.ics", uid, "mission event", text, sound))
        elif draw < 0.50:
            start = time_in(rng, today - timedelta(days=540), today + timedelta(days=90))
            end = start + timedelta(minutes=rng.choice((30, 60, 60, 90, 120)))
            key, client = rng.choice(missions)
            summary = rng.choice(MEETINGS)
            if rng.random() < 0.25:
                summary += f" [{key}]"
            props = header(uid, created, summary)
            props += [f"DTSTART;TZID=Europe/Paris:{local(start)}",
                      f"DTEND;TZID=Europe/Paris:{local(end)}",
                      f"LOCATION:{escape(rng.choice(PLACES))}",
                      f'ORGANIZER;CN="{OWNER[0]}":mailto:{OWNER[1]}', "SEQUENCE:1"]  # fmt: skip
            if rng.random() < 0.7:
                for person in rng.sample(crowd.of_client(client), rng.randrange(1, 3)):
                    props.append(attendee(person.name, person.email))
            for k in range(rng.randrange(0 if len(props) > 10 else 1, 3)):
                props.append(attendee(f"Invité externe {k}", f"invite{n}-{k}@partenaire.example"))
            text = document(rng, props, timed=True)
            found.append(Generated(f"{uid}.ics", uid, "meeting", text))
        elif draw < 0.88:
            if rng.random() < 0.2:
                start_day = day_in(rng, today - timedelta(days=700), today + timedelta(days=200))
                length = rng.choice((1, 1, 2, 5))
                props = header(uid, created, rng.choice(ALL_DAY))
                props += [f"DTSTART;VALUE=DATE:{start_day:%Y%m%d}",
                          f"DTEND;VALUE=DATE:{start_day + timedelta(days=length):%Y%m%d}",
                          "TRANSP:TRANSPARENT"]  # fmt: skip
                text = document(rng, props, timed=False)
            else:
                start = time_in(rng, today - timedelta(days=700), today + timedelta(days=200))
                props = header(uid, created, rng.choice(APPOINTMENTS))
                props += [
                    f"DTSTART;TZID=Europe/Paris:{local(start)}",
                    f"DTEND;TZID=Europe/Paris:{local(start + timedelta(hours=1))}",
                ]
                if rng.random() < 0.5:
                    props.append(f"LOCATION:{escape(rng.choice(PLACES))}")
                if rng.random() < 0.4:
                    props += ["BEGIN:VALARM", "ACTION:DISPLAY", "DESCRIPTION:Rappel",
                              "TRIGGER:-PT15M", "END:VALARM"]  # fmt: skip
                text = document(rng, props, timed=True)
            found.append(Generated(f"{uid}.ics", uid, "appointment", text))
        else:
            start = time_in(rng, today - timedelta(days=400), today - timedelta(days=10))
            key, client = rng.choice(missions)
            ends = rng.choice(("COUNT", "UNTIL", "none"))
            rule = f"RRULE:FREQ=WEEKLY;BYDAY={('MO', 'TU', 'WE', 'TH', 'FR')[start.weekday()]}"
            if ends == "COUNT":
                rule += f";COUNT={rng.randrange(6, 60)}"
            elif ends == "UNTIL":
                rule += f";UNTIL={stamp(start + timedelta(days=rng.randrange(60, 500)))}"
            summary = rng.choice(("Point hebdo", "Suivi hebdomadaire", "Daily équipe projet"))
            props = header(uid, created, f"{summary} [{key}]" if rng.random() < 0.5 else summary)
            props += [f"DTSTART;TZID=Europe/Paris:{local(start)}",
                      f"DTEND;TZID=Europe/Paris:{local(start + timedelta(minutes=45))}", rule,
                      f'ORGANIZER;CN="{OWNER[0]}":mailto:{OWNER[1]}']  # fmt: skip
            if rng.random() < 0.3:
                props.append(f"EXDATE;TZID=Europe/Paris:{local(start + timedelta(days=14))}")
            for person in crowd.of_client(client)[: rng.randrange(0, 3)]:
                props.append(attendee(person.name, person.email))
            text = document(rng, props, timed=True)
            found.append(Generated(f"{uid}.ics", uid, "recurring", text))
    return found


# -- Radicale ----------------------------------------------------------------------------


def write_storage(root: Path, objects: list[Generated]) -> Path:
    """The objects in Radicale's storage, as the calendar CALENDAR; returns its folder."""
    files = ((item.href, item.text.encode()) for item in objects)
    return write_calendar(root, COLLECTION, CALENDAR, files)


class App(Client):
    """A calendar app: what it asks of the server to warm it up, and how it saves a change."""

    def warm_up(self) -> dict[str, float]:
        """Time the requests that fill Radicale's caches, and a listing once they are full."""
        path = f"/{USER}/{COLLECTION}/"
        xml = {"Content-Type": "application/xml; charset=utf-8"}
        propfind = (b'<?xml version="1.0"?><propfind xmlns="DAV:"><prop><getetag/></prop>'
                    b"</propfind>")  # fmt: skip
        report = (b'<?xml version="1.0"?><sync-collection xmlns="DAV:"><sync-token/>'
                  b"<sync-level>1</sync-level><prop><getetag/></prop>"
                  b"</sync-collection>")  # fmt: skip
        steps = (("first listing (item cache)", "PROPFIND", propfind, {"Depth": "1"}),
                 ("first sync-collection (history)", "REPORT", report, {"Depth": "1"}),
                 ("listing, warm", "PROPFIND", propfind, {"Depth": "1"}))  # fmt: skip
        times = {}
        for label, method, body, extra in steps:
            started = time.perf_counter()
            status, _, _ = self.request(method, path, body, {**xml, **extra})
            times[label] = time.perf_counter() - started
            if status != 207:
                raise RuntimeError(f"warm-up {method} {path}: HTTP {status}")
        return times

    def change_mission(self, href: str) -> None:
        """Extend a mission by two weeks and ask for fortnightly updates, as an app saves it."""
        path = f"/{USER}/{COLLECTION}/{href}"
        status, headers, body = self.request("GET", path)
        if status != 200:
            raise RuntimeError(f"GET {path}: HTTP {status}")
        calendar = Calendar.from_ical(body)
        event: Any = calendar.walk("VEVENT")[0]
        event["DTEND"].dt += timedelta(days=14)
        description = str(event["DESCRIPTION"]).replace("status_update_every_days:", "was:")
        event["DESCRIPTION"] = f"{description}\n{CHANGE_MARK}"
        event["SEQUENCE"] = int(event.get("SEQUENCE", 0)) + 1
        for name in ("DTSTAMP", "LAST-MODIFIED"):
            event[name].dt = AT.astimezone(UTC)
        etag = {key.lower(): value for key, value in headers.items()}["etag"]
        status, _, reply = self.request(
            "PUT",
            path,
            calendar.to_ical(),
            {"Content-Type": "text/calendar; charset=utf-8", "If-Match": etag},
        )
        if status not in (201, 204):
            raise RuntimeError(f"PUT {path}: HTTP {status} {reply[:300]!r}")


# -- followupd's side --------------------------------------------------------------------


def followupd_config(workdir: Path, port: int, database: Path) -> Path:
    """A config file syncing the calendar CALENDAR into the store `database`; next to it."""
    config = workdir / f"{database.stem}.toml"
    config.write_text(f"""\
[owner]
name = "{OWNER[0]}"
email = "{OWNER[1]}"
timezone = "Europe/Paris"

[database]
url = "sqlite:///{database}"

[caldav]
url = "http://127.0.0.1:{port}/"
username = "{USER}"
password_env = "{PASSWORD_VARIABLE}"
read_calendars = ["{CALENDAR}"]
""")
    return config


def fresh_store(config: Path, data: Path) -> tuple[Settings, Store]:
    """The store `config` names, created, its clients and contacts imported from `data`."""
    settings = parse_settings(config.read_text(), config, environment(config.parent))
    store = Store.open(settings.database.sqlalchemy_url(), create=True)
    store.upgrade()
    import_files(store, [data], PARIS)
    return settings, store


@dataclass
class Timing:
    wall: float = 0.0
    client_cpu: float = 0.0  # the client process's (its rusage), or this one's for in-process
    server_cpu: float = 0.0  # Radicale's process over the same span


@contextmanager
def timing(server: int) -> Iterator[Timing]:
    """Wall time, this process's CPU time and the server's (process `server`) over the block."""
    spent = Timing()
    wall, client, served = time.perf_counter(), time.process_time(), machine.cpu_seconds(server)
    try:
        yield spent
    finally:
        spent.wall = time.perf_counter() - wall
        spent.client_cpu = time.process_time() - client
        spent.server_cpu = machine.cpu_seconds(server) - served


class Held(logging.Handler):
    """followupd's warnings, counted and not printed (each skipped object logs one)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1


def run_client(command: list[str | Path], env: dict[str, str], server: int) -> tuple[Timing, str]:
    """A client's whole process: its times (its CPU from its rusage), and what it printed."""
    served = machine.cpu_seconds(server)
    ran = harness.run_process(command, env=env)
    spent = Timing(ran.wall, ran.cpu, machine.cpu_seconds(server) - served)
    if ran.code != 0:
        raise RuntimeError(f"{' '.join(map(str, command))} exited with {ran.code}:\n"
                           f"{ran.output[-3000:]}")  # fmt: skip
    return spent, ran.output


class Followupd:
    """The followupd command, as a user runs it, with the config of one store."""

    def __init__(self, config: Path, env: dict[str, str], server: int) -> None:
        self.command: list[str | Path] = [sys.executable, "-m", "followupd", "--config", config]
        self.env, self.server = env, server

    def run(self, *args: str) -> tuple[Timing, str]:
        return run_client([*self.command, *args], self.env, self.server)

    def sync(self) -> tuple[Timing, str]:
        return self.run("sync", "--now", AT.isoformat())


def timed_sync(
    store: Store, settings: Settings, server: int, profile: cProfile.Profile | None = None
) -> tuple[Timing, SyncReport, int]:
    """One sync at AT in this process: its times, its report, how many warnings it logged."""
    logger, held = logging.getLogger("followupd"), Held()
    logger.addHandler(held)
    logger.propagate = False
    try:
        with timing(server) as spent:
            if profile is not None:
                profile.enable()
            report = sync_calendars(store, settings, AT)
            if profile is not None:
                profile.disable()
        return spent, report, held.count
    finally:
        logger.removeHandler(held)
        logger.propagate = True


def describe(report: SyncReport, warnings: int) -> str:
    calendars = "; ".join(
        f"{c.name}: {c.mode}, fetched {c.fetched}, deleted {c.deleted}" for c in report.calendars
    )
    return (
        f"{calendars or 'no calendar'}; missions created {report.missions_created}, "
        f"updated {report.missions_updated}; meetings (touchpoints) {report.meetings}; "
        f"skipped {len(report.skipped)}; notices {len(report.notices)}; "
        f"{warnings} warnings logged"
    )


def skipped_reasons(report: SyncReport) -> str:
    kinds = Counter(TITLED.sub("", reason)[:90] for _, reason in report.skipped)
    return ", ".join(f"{count}× {reason!r}" for reason, count in kinds.most_common(3))


# -- vdirsyncer's side -------------------------------------------------------------------


def install_vdirsyncer() -> None:
    if os.geteuid() != 0:
        sys.exit("--install needs root.\n\n" + HOW_TO_INSTALL)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    print("installing vdirsyncer…", flush=True)
    subprocess.run(["apt-get", "update", "-q"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-q", "vdirsyncer"], check=True, env=env)


class Vdirsyncer:
    """The vdirsyncer command with a config of one pair: the Radicale calendar and a folder."""

    def __init__(self, binary: str, workdir: Path, port: int, server: int) -> None:
        self.binary, self.server = binary, server
        self.folder = workdir / "vdir"
        (self.folder / COLLECTION).mkdir(parents=True)  # so discover has nothing to ask
        config, status = workdir / "vdirsyncer.conf", workdir / "vdirsyncer-status"
        config.write_text(f"""\
[general]
status_path = "{status}/"

[pair bench]
a = "bench_local"
b = "bench_radicale"
collections = ["{COLLECTION}"]
conflict_resolution = "b wins"

[storage bench_local]
type = "filesystem"
path = "{self.folder}/"
fileext = ".ics"

[storage bench_radicale]
type = "caldav"
url = "http://127.0.0.1:{port}/"
username = "{USER}"
password = "{PASSWORD}"
""")
        self.env = {**os.environ, "VDIRSYNCER_CONFIG": str(config), "NO_PROXY": LOOPBACK,
                    "no_proxy": LOOPBACK}  # fmt: skip

    def run(self, *args: str) -> tuple[Timing, str]:
        return run_client([self.binary, *args], self.env, self.server)

    def local_files(self) -> list[Path]:
        return sorted((self.folder / COLLECTION).glob("*.ics"))


def actions(output: str) -> str:
    """What vdirsyncer said it did to items (its INFO lines), by action and storage."""
    found: Counter[str] = Counter()
    for line in output.splitlines():
        match = ITEM_ACTION.match(line)
        if match:
            found[f"{match[1]} {match[2]}"] += 1
    return ", ".join(f"{what}: {count}" for what, count in found.items()) or "no item actions"


def has_change(path: Path) -> bool:
    event: Any = Calendar.from_ical(path.read_bytes()).walk("VEVENT")[0]
    return str(event.get("DESCRIPTION", "")).endswith(CHANGE_MARK)


# -- the report --------------------------------------------------------------------------


def storage_of(path: Path) -> str:
    """The file system the temp dir is on (every side flushes files to it)."""
    done = subprocess.run(
        ["df", "--output=source,fstype", str(path)], capture_output=True, text=True, check=False
    )
    lines = done.stdout.split("\n")
    where = " ".join(lines[1].split()) if len(lines) > 1 else "unknown"
    return f"{path.parent} on {where} (TMPDIR=/dev/shm takes the disk out)"


def vdirsyncer_version(vdirsyncer: str) -> str:
    """vdirsyncer's version and the Python it runs on (Debian's, not the dev venv's)."""
    vdir = subprocess.run([vdirsyncer, "--version"], capture_output=True, text=True, check=False)
    system_python = subprocess.run(
        ["/usr/bin/python3", "--version"], capture_output=True, text=True, check=False
    )
    name = vdir.stdout.strip().replace(", version", "") or "vdirsyncer ?"
    return f"{name} on {system_python.stdout.strip() or 'python3'}"


# (what, the file of the function, its qualified name), or a built-in's name (no file):
# time inside each, callees included, so they overlap
STAGES = (
    ("list what changed (sync-collection)", "followupd/sources/caldav/changes.py", "changes"),
    ("fetch (calendar-multiget, 100 a time)", "followupd/sources/caldav/changes.py", "fetch"),
    ("  waiting for Radicale (socket recv)", "", "<method 'recv' of '_socket.socket' objects>"),
    ("caldav URL.join", "caldav/lib/url.py", "URL.join"),
    ("apply each object (_apply)", "followupd/sources/caldav/sync.py", "CalendarSync._apply"),
    ("  read_object", "followupd/sources/ical/read.py", "read_object"),
    ("    parsed (ObjectParser.calendar)", "followupd/sources/ical/vtimezone.py",
     "ObjectParser.calendar"),
    ("    recurrences expanded (_expand)", "followupd/sources/ical/read.py", "_expand"),
    ("  mission events (_mission)", "followupd/sources/caldav/sync.py", "CalendarSync._mission"),
    ("  meetings stored (store_occurrences)", "followupd/sources/caldav/meetings.py",
     "store_occurrences"),
    ("  meetings held (record_held)", "followupd/sources/caldav/meetings.py", "record_held"),
    ("    their parties (_parties)", "followupd/sources/caldav/meetings.py", "_parties"),
    ("SQLAlchemy flushes (autoflush included)", "sqlalchemy/orm/session.py", "Session._flush"),
    ("SQLAlchemy commits", "sqlalchemy/orm/session.py", "SessionTransaction.commit"),
    ("sqlite3 execute", "", "<method 'execute' of 'sqlite3.Cursor' objects>"),
)  # fmt: skip


def print_profile(profile: cProfile.Profile, seconds: float, objects: int, top: int = 25) -> None:
    print(
        f"\nfollowupd's first sync again, into a fresh store, under cProfile ({seconds:.1f} s; "
        "profiling inflates many small calls). Time inside each, callees included:"
    )
    entries = list(profile.getstats())
    for label, path, name in STAGES:
        spent = harness.stage_seconds(entries, path, name)
        print(
            f"  {label:<42}{spent:>8.2f} s{100 * spent / seconds:>6.1f} %"
            f"{1e3 * spent / max(1, objects):>8.2f} ms/object"
        )
    for sort, title in ((pstats.SortKey.CUMULATIVE, "cumulative"), (pstats.SortKey.TIME, "own")):
        print(f"\ntop {top} functions by {title} time:")
        stats = pstats.Stats(profile, stream=sys.stdout)
        stats.strip_dirs().sort_stats(sort).print_stats(top)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=5000, help="default: 5000")
    parser.add_argument("--seed", type=int, default=17, help="of the generated calendar")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="afterwards, run followupd's first sync again under cProfile",
    )
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
    os.environ["NO_PROXY"] = os.environ["no_proxy"] = LOOPBACK  # caldav's niquests reads these
    os.environ[PASSWORD_VARIABLE] = PASSWORD
    harness.compile_followupd()  # as installed: no process compiles it anew
    with harness.workdir("followupd-bench-caldav-") as workdir:
        bench(args, binary, workdir)


def bench(args: argparse.Namespace, binary: str, workdir: Path) -> None:
    rng = random.Random(args.seed)
    crowd = people(rng, args.events)
    data = workdir / "people.toml"
    data.write_text(crowd.data_file(), encoding="utf-8")
    objects = generate(rng, crowd, args.events)
    folder = write_storage(workdir / "radicale", objects)
    size = sum(len(item.text.encode()) for item in objects)
    kinds = Counter(item.kind for item in objects)
    print(
        f"wrote {len(objects)} objects ({size / 1e6:.1f} MB) into Radicale's storage: "
        + ", ".join(f"{count} {kind}s" for kind, count in kinds.most_common())
        + f"; imported into followupd: {len(crowd.clients)} clients, "
        f"{len(crowd.contacts)} contacts",
        flush=True,
    )
    sound = [item for item in objects if item.sound_mission]
    changed = [sound[k * len(sound) // 4] for k in (1, 2, 3)]  # one for each client
    started = time.perf_counter()
    verify_storage(workdir / "radicale")
    verified = time.perf_counter() - started
    env = environment(workdir)
    with radicale(workdir / "radicale") as server:
        app = App(server.port)
        warm = {"radicale --verify-storage": verified, **app.warm_up()}
        print(
            "Radicale warm-up, not in the figures: "
            + ", ".join(f"{label} {seconds:.2f} s" for label, seconds in warm.items()),
            flush=True,
        )
        times: dict[tuple[str, str], Timing] = {}  # (client, what) -> its times
        pid = server.process.pid
        load = os.getloadavg()[0]  # other work on the machine stretches every wall time

        config = followupd_config(workdir, server.port, workdir / "followupd.db")
        fresh_store(config, data)[1].close()
        followupd = Followupd(config, env, pid)
        startups = {FOLLOWUPD: followupd.run("--version")[0]}
        times[FOLLOWUPD, FIRST], said = followupd.sync()
        print(f"followupd sync, first: {summary(said)}", flush=True)
        app.change_mission(changed[0].href)
        times[FOLLOWUPD, CHANGED], said = followupd.sync()
        print(f"followupd sync, after one change: {summary(said)}", flush=True)

        config = followupd_config(workdir, server.port, workdir / "in-process.db")
        settings, store = fresh_store(config, data)
        times[IN_PROCESS, FIRST], first, logged = timed_sync(store, settings, pid)
        print(f"in-process first sync: {describe(first, logged)}", flush=True)
        if first.skipped:
            print(f"  skipped, most common reasons: {skipped_reasons(first)}")
        app.change_mission(changed[1].href)
        times[IN_PROCESS, CHANGED], second, logged = timed_sync(store, settings, pid)
        print(f"in-process after one change: {describe(second, logged)}", flush=True)
        store.close()

        vdirsyncer = Vdirsyncer(binary, workdir, server.port, pid)
        startups[VDIRSYNCER] = vdirsyncer.run("--version")[0]
        discover, _ = vdirsyncer.run("discover")
        times[VDIRSYNCER, FIRST], said = vdirsyncer.run("sync")
        local = vdirsyncer.local_files()
        print(
            f"vdirsyncer first sync: {actions(said)}; {len(local)} .ics files in the local "
            f"folder (discover took {discover.wall:.2f} s, not in the figures)",
            flush=True,
        )
        app.change_mission(changed[2].href)
        times[VDIRSYNCER, CHANGED], said = vdirsyncer.run("sync")
        copies = [path for path in vdirsyncer.local_files() if changed[2].uid in path.name]
        updated = any(has_change(path) for path in copies)
        print(
            f"vdirsyncer after one change: {actions(said)}; the local copy of the changed "
            f"event {'has' if updated else 'does NOT have'} the change",
            flush=True,
        )
        profiled, profile = Timing(), None
        if args.profile:
            config = followupd_config(workdir, server.port, workdir / "profiled.db")
            settings, store = fresh_store(config, data)
            profile = cProfile.Profile()
            profiled, _, _ = timed_sync(store, settings, pid, profile)
            store.close()
    print(f"\n{len(objects)} events in one Radicale calendar ({folder.name}), synced at {AT}:")
    print(f"{'':<42}{'wall s':>9}{'client CPU s':>14}{'Radicale CPU s':>16}")
    for (client, what), spent in times.items():
        label = f"{client}, {what}"
        print(f"{label:<42}{spent.wall:>9.2f}{spent.client_cpu:>14.2f}{spent.server_cpu:>16.2f}")
    print(
        "wall s: from the client's spawn to its exit; client CPU s: user + system of the "
        "client's process (os.wait4), start-up included, or of this process for the "
        "in-process extra; Radicale CPU s: the server's process over the same span. Start-up "
        "of each client, in those figures: "
        + "; ".join(
            f"`{client} --version` {spent.wall:.2f} s wall, {spent.client_cpu:.2f} CPU s"
            for client, spent in startups.items()
        )
    )
    tools = vdirsyncer_version(binary)
    software = machine.packages("caldav", "icalendar", "radicale")
    print(f"machine: {machine.describe(*software, tools, load_before=load)}")
    print(f"storage: {storage_of(workdir)}")
    harness.save_figures(
        args.figures,
        {
            "events": len(objects),
            "vdirsyncer": tools,
            "radicale_warm_up": warm,
            "startup": {client: asdict(spent) for client, spent in startups.items()},
            "times": {
                client: {
                    what: asdict(spent) for (name, what), spent in times.items() if name == client
                }
                for client in (FOLLOWUPD, IN_PROCESS, VDIRSYNCER)
            },
        },
    )
    if profile is not None:
        print_profile(profile, profiled.wall, len(objects))


def summary(output: str) -> str:
    """The totals `followupd sync` printed, and how many objects it said it skipped."""
    lines = [line.strip() for line in output.splitlines()]
    totals = next((line for line in lines if line.startswith("missions: ")), "no totals")
    skipped = sum(line.startswith("skipped ") for line in lines)
    return f"{totals}; {skipped} skipped"


if __name__ == "__main__":
    main()
