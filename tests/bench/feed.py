"""Benchmark: the daemon's iCalendar feed, and Radicale serving the same objects. Prints figures.

    python -m tests.bench.feed [--followups 10000] [--warm 5] [--conditional 3]

(from the repository root in the dev venv; asserts nothing.)

The follow-ups are the product's own, the same on every run: a store shaped
like a real agency's (tests/bench/evaluate.py's ``build()``) is seen from
a fixed day, TODAY + AHEAD (Tuesday 22 December 2026, never the wall
clock's), one evaluation pass of every rule records what is due then, and
the first FOLLOWUPS owner calendar items (by due time) are kept, every other
row deleted. ``followupd run`` takes no ``--now``: the daemon reads the wall
clock, and delivers (into the feed) what is due by it. So the kept items
are then moved LATER (521 weeks, about ten years, the weekdays kept), due in
the daemon's future whatever day the benchmark runs before 2036: it leaves
them pending, and its feed serves them all. The daemon runs with every rule
disabled, so that its own passes add or cancel nothing: the feed serves
exactly those FOLLOWUPS items, which is checked on the first answer of each
server.

The same items, each built as the CalDAV channel writes it
(``followupd.channels.calendar.ical.document`` under ``resource_name``, a
formal notice's PDF inline, where the feed links it by URL), are written
into one calendar collection of a Radicale server, which answers a GET of
the collection with the whole calendar as one iCalendar document: what a
user subscribed to a CalDAV calendar by its URL would fetch instead.

Each server gets the same GETs, each over a new connection, as a calendar
app polling the feed sends them: the first after the server started
("first"), WARM more (their median and nearest-rank p95), then CONDITIONAL
with If-None-Match set to the ETag of the last answer (a 304 if the server
honours it); with the response bytes and the server's CPU time per warm
request (from /proc). Then followupd gets one GET more, after the subject of
one item was changed in the store (as a pass changes one): the first build
after a change, which makes only that item's object again.

Radicale's first read of a collection parses every object and fills its
item cache, which a server that had received the objects by PUTs would
have done at upload time: ``radicale --verify-storage`` does it before the
server starts, timed apart and not in the figures, so that its "first" is,
like the daemon's, the first request of a fresh process. Radicale's storage
is in memory (/dev/shm) where there is one, which only shortens that
warm-up: the measured GETs only read, from
the page cache either way. Only loopback is used.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

import tests.bench.evaluate as evaluate_bench
from followupd.channels.calendar import ical
from followupd.channels.feed.build import feed_items
from followupd.channels.feed.tokens import ensure_token
from followupd.channels.letters.files import made
from followupd.config.load import parse_settings
from followupd.config.settings import Settings
from followupd.domain import identity
from followupd.engine.evaluation import evaluate
from followupd.rules.registry import RULES, enabled_rules
from followupd.store.attachments import attachments
from followupd.store.db import Store
from followupd.store.models import FollowUp
from tests.bench import harness, machine
from tests.bench.daemon import environment, get, running
from tests.bench.radicale import USER, Client, radicale, verify_storage, write_calendar
from tests.smtpserver import free_port

AHEAD = timedelta(days=30)  # the store is seen from then: what is due then is still to come
# the bench's today, not the wall clock's: the same store and items on every run
TODAY = datetime(2026, 11, 22, 8, tzinfo=UTC)
# the kept items are moved this much later: in the future of the daemon's wall clock until 2036
LATER = timedelta(weeks=521)
MISSIONS_PER_ITEM = 10  # 0.12 (small stores) to 0.15 owner calendar items due per mission
COLLECTION = "followupd"
OWNER = '[owner]\nname = "Claire Martin"\nemail = "claire@cabinet.example"\n'


@dataclass
class Prepared:
    built: float  # seconds to build the store, evaluate it and make Radicale's objects
    kinds: Counter[str]  # VTODO / VEVENT
    objects: list[tuple[str, bytes]] = field(repr=False)  # for Radicale: file name, document
    files: int = 0  # items with a formal notice's PDF: linked in the feed, inline in Radicale's


@dataclass
class Served:
    """What one server answered to the same GETs."""

    first: float
    warm: list[float]
    conditional: list[float]
    conditional_status: int
    body_bytes: int
    cpu_per_request: float  # the server's CPU seconds per warm request
    items: int  # the to-dos and events in the last whole answer
    after_change: float | None = None  # a GET after one item changed in the store (followupd)

    def summary(self) -> dict[str, float]:
        return {
            "first": self.first,
            "warm_median": statistics.median(self.warm),
            "warm_p95": harness.percentile(self.warm, 0.95),
            "conditional_median": statistics.median(self.conditional),
            "conditional_status": self.conditional_status,
            "bytes": self.body_bytes,
            "cpu_per_request": self.cpu_per_request,
            **({"after_change": self.after_change} if self.after_change is not None else {}),
        }


# -- the store ----------------------------------------------------------------------------


def prepare(config: Path, environ: dict[str, str], followups: int) -> Prepared:
    """FOLLOWUPS owner calendar items pending in the store, and the same items for Radicale."""
    settings = parse_settings(OWNER, config, environ)  # every rule enabled
    store = Store.open(settings.database.sqlalchemy_url(environ))
    store.upgrade()
    started = time.perf_counter()
    then = TODAY + AHEAD
    evaluate_bench.build(store, followups * MISSIONS_PER_ITEM, today=then.date())
    with store.session() as session:
        evaluate(session, settings, enabled_rules(settings.rules), then)
    with store.session() as session:
        kept = _keep(session, followups)
        _move_later(session)
    with store.session() as session:
        rows = feed_items(session, TODAY + LATER, ZoneInfo(settings.owner.timezone))
        # in a CalDAV calendar, a formal notice's PDF is inline (the feed links it)
        files = attachments(session, [item.key for item in rows])
    rows = [replace(item, attachment=made(item.key, files.get(item.key))) for item in rows]
    store.close()
    if kept < followups or len(rows) != kept:
        raise SystemExit(
            f"{kept} owner calendar items recorded, {len(rows)} in the feed: "
            f"{followups} wanted; raise MISSIONS_PER_ITEM"
        )
    kinds, objects = _objects(rows, settings)
    return Prepared(time.perf_counter() - started, kinds, objects, len(files))


def _keep(session: Session, followups: int) -> int:
    """Delete every row but the first pending owner calendar item of `followups` concerns.

    The feed shows one item per concern (a repeating reminder's periods are
    one item): one row each, so that the feed holds as many items as rows.
    """
    candidates = session.execute(
        select(FollowUp.id, FollowUp.concern)
        .where(
            FollowUp.audience == "owner",
            FollowUp.channel == "calendar",
            FollowUp.state == "pending",
        )
        .order_by(FollowUp.due_at, FollowUp.key)
    )
    first: dict[str, int] = {}
    for id_, concern in candidates:
        if len(first) == followups:
            break
        first.setdefault(concern, id_)
    session.execute(delete(FollowUp).where(FollowUp.id.not_in(list(first.values()))))
    return session.execute(select(func.count(FollowUp.id))).scalar_one()


def _move_later(session: Session) -> None:
    """Every follow-up due LATER than evaluated: after the wall clock, which the daemon reads."""
    due = session.execute(select(FollowUp.id, FollowUp.due_at)).all()
    session.execute(update(FollowUp), [{"id": id_, "due_at": at + LATER} for id_, at in due])


def _objects(
    items: Sequence[ical.CalendarItem], settings: Settings
) -> tuple[Counter[str], list[tuple[str, bytes]]]:
    """Each feed item as the CalDAV channel writes it: its file name and its document."""
    zone = ZoneInfo(settings.owner.timezone)
    kinds: Counter[str] = Counter()
    objects = []
    for item in items:
        kinds["VEVENT" if item.meeting else "VTODO"] += 1
        objects.append((identity.resource_name(item.uid), ical.document(item, zone)))
    return kinds, objects


# -- the requests -------------------------------------------------------------------------


Fetch = Callable[[dict[str, str]], tuple[int, dict[str, str], bytes]]


def timed(
    fetch: Fetch, headers: dict[str, str] | None = None
) -> tuple[float, int, dict[str, str], bytes]:
    """One GET: its seconds, status, headers (names in lower case) and body; stops on an error."""
    started = time.perf_counter()
    status, answer, body = fetch(headers or {})
    elapsed = time.perf_counter() - started
    if status not in (200, 304):
        raise SystemExit(f"HTTP {status}: {body[:300]!r}")
    return elapsed, status, {name.lower(): value for name, value in answer.items()}, body


@dataclass(frozen=True)
class Requests:
    warm: int  # GETs after the first
    conditional: int  # GETs with If-None-Match


def serve(fetch: Fetch, pid: int, requests: Requests) -> Served:
    """The first GET, the warm ones, then the conditional ones (on the last ETag)."""
    first, _, _, body = timed(fetch)
    warm, cpu = [], machine.cpu_seconds(pid)
    for _ in range(max(1, requests.warm)):
        seconds, _, answer, body = timed(fetch)
        warm.append(seconds)
    cpu = (machine.cpu_seconds(pid) - cpu) / len(warm)
    etag = {"If-None-Match": answer.get("etag", '"none"')}
    conditional, status = [], 0
    for _ in range(max(1, requests.conditional)):
        seconds, status, _, _ = timed(fetch, etag)
        conditional.append(seconds)
    items = body.count(b"BEGIN:VTODO\r\n") + body.count(b"BEGIN:VEVENT\r\n")
    return Served(first, warm, conditional, status, len(body), cpu, items)


def followupd_side(config: Path, environ: dict[str, str], port: int, requests: Requests) -> Served:
    """The GETs of `serve`, then one more after one item changed in the store ("after change")."""
    token = ensure_token(parse_settings(config.read_text(), config, environ).feed.token_file)
    with running(config, environ, port, config.parent / "followupd.log") as daemon:

        def fetch(headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
            return get(port, f"/feed/{token}.ics", headers)

        served = serve(fetch, daemon.pid, requests)
        change_one(config, environ)
        after_change, _, _, body = timed(fetch)
    if CHANGED.encode() not in body:
        raise SystemExit("the changed item is not in the feed after the change")
    return replace(served, after_change=after_change)


CHANGED = " (changed)"


def change_one(config: Path, environ: dict[str, str]) -> None:
    """The subject of the first item changed in the store, as a pass would: one item to make."""
    settings = parse_settings(config.read_text(), config, environ)
    store = Store.open(settings.database.sqlalchemy_url(environ))
    with store.session() as session:
        first = session.scalars(select(FollowUp.id).order_by(FollowUp.due_at).limit(1)).one()
        session.execute(
            update(FollowUp).where(FollowUp.id == first).values(subject=FollowUp.subject + CHANGED)
        )
    store.close()


def collection_get(port: int) -> Fetch:
    """GET of USER's COLLECTION on the Radicale at `port`: the whole calendar as one document."""
    client, path = Client(port), f"/{USER}/{COLLECTION}/"
    return lambda headers: client.request("GET", path, headers=headers)


def radicale_side(
    root: Path, objects: list[tuple[str, bytes]], requests: Requests
) -> tuple[float, Served]:
    """Radicale's caches filled (timed), then the same GETs of a freshly started server."""
    write_calendar(root, COLLECTION, "followupd", objects)
    started = time.perf_counter()
    verify_storage(root)
    filled = time.perf_counter() - started
    with radicale(root) as server:
        served = serve(collection_get(server.port), server.process.pid, requests)
    return filled, served


# -- the report ---------------------------------------------------------------------------


def report(followups: int, prepared: Prepared, ours: Served, theirs: Served, filled: float) -> None:
    kinds = ", ".join(f"{count} {kind}" for kind, count in prepared.kinds.most_common())
    print(
        f"feed benchmark: {followups} owner follow-ups pending ({kinds}); store built, "
        f"evaluated and the objects made in {prepared.built:.1f} s; {prepared.files} with a "
        "formal notice's PDF (linked by URL in the feed, inline in Radicale's objects)"
    )
    print(f"radicale --verify-storage (fills its caches, not in the figures): {filled:.1f} s")
    print(
        f"\n{'':<34}{'first s':>9}{'median s':>10}{'p95 s':>8}{'304? median s':>15}"
        f"{'MB':>7}{'CPU s/req':>11}"
    )
    for label, served in (
        ("followupd GET /feed/<token>.ics", ours),
        ("Radicale GET of the collection", theirs),
    ):
        print(
            f"{label:<34}{served.first:>9.3f}{statistics.median(served.warm):>10.3f}"
            f"{harness.percentile(served.warm, 0.95):>8.3f}"
            f"{served.conditional_status:>5} {statistics.median(served.conditional):>9.3f}"
            f"{served.body_bytes / 1e6:>7.2f}{served.cpu_per_request:>11.3f}"
        )
    if ours.after_change is not None:
        print(f"followupd GET after one item changed (built again): {ours.after_change:.3f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--followups", type=int, default=10_000, help="default: 10000")
    parser.add_argument("--warm", type=int, default=5, help="GETs after the first (default 5)")
    parser.add_argument(
        "--conditional", type=int, default=3, help="GETs with If-None-Match (default 3)"
    )
    harness.add_figures_option(parser)
    args = parser.parse_args()
    with harness.workdir("followupd-bench-feed-") as workdir:
        bench(args, workdir)


def bench(args: argparse.Namespace, workdir: Path) -> None:
    port = free_port()
    config = workdir / "followupd.toml"
    disabled = "".join(f"[rules.{name}]\nenabled = false\n" for name in RULES)
    config.write_text(f'{OWNER}[feed]\nlisten = "127.0.0.1:{port}"\n{disabled}')
    environ = environment(workdir)
    prepared = prepare(config, environ, args.followups)
    load = os.getloadavg()[0]
    requests = Requests(args.warm, args.conditional)
    ours = followupd_side(config, environ, port, requests)
    with harness.in_memory("followupd-bench-radicale-") as root:
        filled, theirs = radicale_side(root, prepared.objects, requests)
    report(args.followups, prepared, ours, theirs, filled)
    for name, served in (("followupd", ours), ("Radicale", theirs)):
        if served.items != args.followups:
            raise SystemExit(f"{name} served {served.items} items, not {args.followups}")
    software = machine.packages("radicale", "icalendar", "aiohttp")
    print(f"machine: {machine.describe(*software, load_before=load)}")
    harness.save_figures(
        args.figures,
        {
            "followups": args.followups,
            "requests": asdict(requests),
            "kinds": dict(prepared.kinds),
            "files": prepared.files,
            "radicale_fill": filled,
            "followupd": ours.summary(),
            "radicale": theirs.summary(),
            "radicale_version": machine.packages("radicale")[0],
        },
    )


if __name__ == "__main__":
    main()
