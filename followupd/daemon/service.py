"""`followupd run`: one asyncio process that syncs, evaluates, delivers and serves the feed.

APScheduler 3 (AsyncIOScheduler, memory job store) is only a timer; what is
due is always read from the store, so correctness never depends on when a
job fires. Its jobs:

- **sync** the CalDAV calendars, every ``sync_every_seconds``;
- **mail**: read the mailboxes (``[imap]``), every ``sync_every_seconds`` and
  as soon as a watcher in IDLE sees a message arrive in an inbox folder
  (`followupd.daemon.mail_watch`): a reply stops the nudges within seconds;
- **evaluate** the rules, every ``evaluate_every_seconds`` and at the next
  opening of the send window in every time zone in use (that is when
  follow-ups fall due);
- **deliver**, re-armed for the next due follow-up (or the next retry), so one
  leaves at its due time without polling; a slow interval
  catches anything a re-arm missed;
- **housekeeping**: expired leases released, old follow-ups deleted after
  ``retention_days``;
- **orphans**: claims of workers that provably died handed back every few
  seconds, without waiting for their leases (`release_orphans`: on
  PostgreSQL, a worker whose lock nobody holds; on SQLite, a process of this
  machine that is gone, such as a killed `tick`).

At start, before its first delivery, every instance hands back the claims of
dead workers once, whether it leads or not: a daemon restarted after a crash
(or a kill -9) sends at once what the dead one had claimed, instead of
waiting out the 5-minute lease; and a new instance need not wait for the
leader's next look (on PostgreSQL any instance may do it: the worker's lock
decides, and two instances doing it at once release each row once).

Several instances may share one PostgreSQL database (`followupd.daemon.cluster`):
all of them evaluate and deliver; the CalDAV sync, the mailbox sync and its
watchers, housekeeping, orphans (but for that first look at start) and the
closing of calendar items run on the leader only. A notice on the database's
channel wakes them: ``due`` re-arms delivery, ``changed`` (a terminal command
changed data) re-arms delivery and has the leader evaluate.

No pass overlaps itself (``max_instances=1``); a pass that fails is logged,
counted in /healthz and /metrics, and tried again at its next time; it never
stops the daemon. systemd is told READY once the store and the scheduler are
up, WATCHDOG from the event loop, a STATUS line after each pass, RELOADING
on SIGHUP (a config that does not load is logged and the old one kept) and
STOPPING on SIGTERM, which lets the delivery under way finish its message,
hands its other claims back, and exits 0.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import signal
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy import select

from followupd.channels.feed.build import Feed, FeedCache, build_feed, feed_source, items_of
from followupd.channels.feed.files import FileLinks
from followupd.channels.feed.tokens import ensure_tokens, owner_of
from followupd.channels.letters.files import made
from followupd.config.load import load_settings
from followupd.config.settings import Settings
from followupd.daemon.cluster import coordination_for
from followupd.daemon.http import Handlers, listen, web_app
from followupd.daemon.mail_watch import MailWatchers
from followupd.daemon.metrics import Metrics
from followupd.daemon.systemd_notify import Notifier
from followupd.delivery.deliverer import Deliverer, DeliveryReport
from followupd.domain.business_calendar import BusinessCalendar, zone
from followupd.domain.meeting_place import OwnersTime
from followupd.domain.owner_scope import has_calendars, has_mailboxes, scope_of
from followupd.domain.states import FAILED_STATES, FollowUpState
from followupd.engine import evaluation
from followupd.errors import FollowupdError, ServiceUnavailable
from followupd.rules.registry import enabled_rules
from followupd.store import attachments
from followupd.store.attachments import Named
from followupd.store.coordination import CHANGED, is_postgres, worker_name
from followupd.store.db import Store
from followupd.store.models import Client
from followupd.store.outbox import digests, housekeeping
from followupd.store.outbox.orphans import release_orphans

log = logging.getLogger("followupd")

DELIVERY_SAFETY_NET = timedelta(minutes=1)
ORPHANS_EVERY = timedelta(seconds=5)
IDLE_REARM = timedelta(seconds=5)  # when something due could not be claimed: look again soon


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class PassResult:
    ok: bool
    at: datetime
    error: str | None = None


class Service:
    def __init__(
        self,
        config_path: Path,
        environ: Mapping[str, str],
        *,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.config_path = config_path
        self.environ = environ
        self.clock = clock
        self.settings: Settings = load_settings(config_path, environ)
        self.store = Store.open(self.settings.database.sqlalchemy_url(environ), create=True)
        self.notifier = Notifier(environ)
        self.worker = worker_name()
        self.metrics = Metrics(lambda: self.store, self.today)
        self.results: dict[str, PassResult] = {}
        self.scheduler = AsyncIOScheduler(timezone=UTC)
        self.deliverer: Deliverer | None = None
        self.delivering: asyncio.Task[Any] | None = None
        self.running: set[asyncio.Task[Any]] = set()  # the passes under way
        self.stop_requested = asyncio.Event()
        self.tokens: dict[str, str] = {}  # owner key -> feed token
        self.feeds = FeedCache()
        self.shared = is_postgres(self.store.engine)  # other instances may share it
        self.watchers = MailWatchers()
        self.mail_running = False
        self.mail_again = False  # a watcher woke the mail pass while it ran: once more
        self.cluster = coordination_for(
            self.store.engine, on_leadership=self._leadership, on_notice=self._notice
        )

    # -- lifecycle ---------------------------------------------------------------------
    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        await asyncio.to_thread(self.store.upgrade)
        await self._pass("orphans", self._take_back_orphans)  # before any delivery
        self.tokens = ensure_tokens(self.settings.owners)
        try:
            runner = await self._start_http()
        except ServiceUnavailable:
            self.store.close()
            raise
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.stop_requested.set)
        loop.add_signal_handler(signal.SIGHUP, lambda: asyncio.ensure_future(self.reload()))
        self._schedule()
        self.scheduler.start()
        watchdog = asyncio.ensure_future(self._watchdog())
        coordinating = asyncio.ensure_future(self.cluster.run())
        self._watch_mailboxes()
        self.notifier.ready(self.status_line())
        log.info(
            "followupd running: feed on http://%s, worker %s",
            self.settings.feed.listen,
            self.worker,
        )
        await self.stop_requested.wait()
        log.info("stopping")
        self.notifier.stopping()
        self.scheduler.shutdown(wait=False)
        await asyncio.to_thread(self.watchers.stop, wait=True)
        await self._drain()
        watchdog.cancel()
        coordinating.cancel()
        await runner.cleanup()
        self.store.close()
        return 0

    async def _start_http(self) -> web.AppRunner:
        handlers = Handlers(
            owner_of=lambda given: owner_of(given, self.tokens),
            feed=self.feed,
            file=self.file,
            health=self.health,
            metrics=self.metrics.render,
            now=self.clock,
        )
        runner = web.AppRunner(
            web_app(handlers, self.settings.feed.public_url, self.settings.feed.host),
            access_log=None,
        )
        await runner.setup()
        try:
            await listen(runner, self.settings.feed)
        except OSError as error:
            await runner.cleanup()
            raise self._cannot_listen(error) from None
        return runner

    def _cannot_listen(self, error: OSError) -> ServiceUnavailable:
        """The address of ``[feed] listen`` is taken (or not ours): say which, and where it is set.

        Not a config error (exit 69, not 78): the port is often free again a moment later,
        once the instance it belongs to has stopped, so systemd may try again.
        """
        # asyncio's strerror repeats the address as a tuple: the errno's own words are enough
        reason = os.strerror(error.errno).lower() if error.errno else str(error)
        message = (
            f"cannot listen on {self.settings.feed.listen} "
            f"([feed] listen in {self.settings.source}): {reason}"
        )
        if error.errno == errno.EADDRINUSE:
            message += " — is another followupd running?"
        return ServiceUnavailable(message)

    async def _drain(self) -> None:
        """Let the passes under way end, the delivery after its message; stop them when late."""
        if self.deliverer is not None:
            self.deliverer.stop()
        running = {task for task in self.running if not task.done()}
        if not running:
            return
        _, late = await asyncio.wait(running, timeout=self.settings.service.drain_seconds)
        if late:
            log.warning(
                "%d pass(es) still running after %s s, stopped; a delivery's leases will expire",
                len(late),
                self.settings.service.drain_seconds,
            )
            for task in late:
                task.cancel()
            await asyncio.wait(late)

    async def _watchdog(self) -> None:
        """WATCHDOG=1 from the event loop itself: a stuck loop stops the pings."""
        seconds = self.notifier.watchdog_seconds
        if not seconds:
            return
        while True:
            self.notifier.watchdog()
            await asyncio.sleep(seconds / 3)

    async def reload(self) -> None:
        self.notifier.reloading()
        try:
            settings = await asyncio.to_thread(load_settings, self.config_path, self.environ)
        except FollowupdError as error:
            log.error("the new config is not valid, keeping the old one:\n%s", error)
        else:
            self.settings = settings
            self.tokens = ensure_tokens(settings.owners)
            self._schedule()
            self._watch_mailboxes()
            log.info("config reloaded from %s", self.config_path)
        self.notifier.ready(self.status_line())

    # -- the schedule ------------------------------------------------------------------
    def _schedule(self) -> None:
        service = self.settings.service
        now = self.clock()
        every = {
            "sync": (self.sync_pass, service.sync_every_seconds),
            "mail": (self.mail_pass, service.sync_every_seconds),
            "evaluate": (self.evaluate_pass, service.evaluate_every_seconds),
            "deliver": (self.deliver_pass, int(DELIVERY_SAFETY_NET.total_seconds())),
            "housekeeping": (self.housekeeping_pass, service.housekeeping_every_seconds),
            "orphans": (self.orphans_pass, int(ORPHANS_EVERY.total_seconds())),
        }
        for name, (job, seconds) in every.items():
            self.scheduler.add_job(
                job,
                "interval",
                seconds=seconds,
                id=name,
                replace_existing=True,
                next_run_time=now,
                **JOB_OPTIONS,
            )

    def _at(self, name: str, job: Callable[[], Awaitable[None]], when: datetime) -> None:
        self.scheduler.add_job(
            job, "date", run_date=when, id=name, replace_existing=True, **JOB_OPTIONS
        )

    def _arm_delivery(self, report: DeliveryReport | None) -> None:
        """The deliver job, set for the next due follow-up, retry or expired lease."""
        with self.store.session() as session:
            when = housekeeping.next_deliverable(session, digests.held_by(self.settings))
        if when is None:
            return
        now = self.clock()
        if when <= now:  # due already: soon, but never a busy loop if it could not be taken
            idle = report is not None and not report.keys
            when = now + (IDLE_REARM if idle else timedelta(milliseconds=100))
        self._at("deliver-next", self.deliver_pass, when)

    def _arm_window_openings(self) -> None:
        """Evaluate again at the next send-window opening in any zone in use."""
        with self.store.session() as session:
            names = set(session.scalars(select(Client.timezone).distinct()))
        names |= {owner.timezone for owner in self.settings.owners}
        zones = {zone(name) for name in names if name}
        calendar = BusinessCalendar(self.settings.business)
        now = self.clock()
        self._at("evaluate-at-opening", self.evaluate_pass, next_opening(calendar, zones, now))

    # -- several instances ---------------------------------------------------------------
    def _leadership(self, leading: bool) -> None:
        if leading:
            log.info("this instance leads: CalDAV sync, mailbox sync and housekeeping run here")
            for job in self.scheduler.get_jobs():
                if job.id in ("sync", "mail", "housekeeping", "orphans"):
                    job.modify(next_run_time=self.clock())
        else:
            log.info("this instance no longer leads")
        self._watch_mailboxes()

    def _watch_mailboxes(self) -> None:
        """Watchers on the inbox folders while this instance leads, with the config's mailboxes."""
        if self.stop_requested.is_set():
            return
        if not (self.cluster.is_leader and has_mailboxes(self.settings)):
            self.watchers.stop(wait=False)
            return
        loop = asyncio.get_running_loop()

        def wake() -> None:  # from a watcher's thread
            try:
                loop.call_soon_threadsafe(self._mail_arrived)
            except RuntimeError:  # the loop closed: the daemon is stopping
                return

        self.watchers.start(self.settings, self.environ, wake)

    def _mail_arrived(self) -> None:
        if self.stop_requested.is_set():
            return
        if self.mail_running:  # a "mail-now" job now would be skipped as one already running
            self.mail_again = True
            return
        self._at("mail-now", self.mail_pass, self.clock())

    def _notice(self, topic: str) -> None:
        if self.stop_requested.is_set():
            return
        now = self.clock()
        if topic == CHANGED and self.cluster.is_leader:
            self._at("evaluate-now", self.evaluate_pass, now)
        self._at("deliver-next", self.deliver_pass, now)

    # -- passes ------------------------------------------------------------------------
    async def _pass(self, name: str, work: Callable[[], Awaitable[None]]) -> None:
        started = time.monotonic()
        task = asyncio.current_task()
        if task is not None:
            self.running.add(task)
        try:
            await work()
        except asyncio.CancelledError:
            if not self.stop_requested.is_set():
                raise
            log.info("%s pass stopped before its end", name)  # by the drain: said already
        except FollowupdError as error:  # said in full by its message: no traceback
            log.error("%s pass failed: %s", name, error)
            self.results[name] = PassResult(False, self.clock(), str(error))
            self.metrics.pass_failures.labels(name).inc()
        except Exception as error:  # a pass never kills the daemon: next time may work
            log.exception("%s pass failed", name)
            self.results[name] = PassResult(False, self.clock(), f"{type(error).__name__}: {error}")
            self.metrics.pass_failures.labels(name).inc()
        else:
            self.results[name] = PassResult(True, self.clock())
        finally:
            if task is not None:
                self.running.discard(task)
            self.metrics.pass_seconds.labels(name).observe(time.monotonic() - started)
            if self.notifier.enabled:  # two queries after every pass: only for systemd
                self.notifier.status(self.status_line())

    async def sync_pass(self) -> None:
        if not has_calendars(self.settings) or not self.cluster.is_leader:
            return

        from followupd.sources.caldav.sync import sync_calendars

        async def work() -> None:
            report = await asyncio.to_thread(
                sync_calendars, self.store, self.settings, self.clock()
            )
            if report.fetched or report.notices:
                log.info("synced %d calendar objects", report.fetched)
            if report.fetched:  # what changed may be due now
                self._at("evaluate-now", self.evaluate_pass, self.clock())
            for notice in report.notices:
                if notice not in report.failed:
                    log.warning("%s", notice)
            if report.failed:  # the others were synced; /healthz says which were not
                raise ServiceUnavailable("; ".join(report.failed))

        await self._pass("sync", work)

    async def mail_pass(self) -> None:
        """Read the mailboxes; when a watcher wakes it meanwhile, once more at the end."""
        if not has_mailboxes(self.settings) or not self.cluster.is_leader:
            return
        if self.mail_running:
            self.mail_again = True
            return

        from followupd.sources.imap.sync import sync_mailboxes

        async def work() -> None:
            report = await asyncio.to_thread(
                sync_mailboxes, self.store, self.settings, self.clock(), environ=self.environ
            )
            if report.recorded:  # a reply, a bounce, a status update sent: may change what is due
                log.info("read %d new message(s) in the mailbox: %s",
                         len(report.recorded), report.actions.summary())  # fmt: skip
                self._at("evaluate-now", self.evaluate_pass, self.clock())
            if report.failed:  # the others were read; /healthz says which were not
                raise ServiceUnavailable("; ".join(report.failed))

        self.mail_running = True
        try:
            while True:
                self.mail_again = False
                await self._pass("mail", work)
                if not self.mail_again or self.stop_requested.is_set():
                    break
        finally:
            self.mail_running = False

    async def evaluate_pass(self) -> None:
        async def work() -> None:
            at = self.clock()

            def evaluate() -> evaluation.PassReport:
                rules = enabled_rules(self.settings.rules, self.settings.owners)
                with self.store.session() as session:
                    return evaluation.evaluate(session, self.settings, rules, at)

            report = await asyncio.to_thread(evaluate)
            if report.recorded or report.cancelled:
                log.info(
                    "recorded %d follow-ups, cancelled %d",
                    len(report.recorded),
                    len(report.cancelled),
                )
            self._arm_window_openings()
            self._arm_delivery(None)

        await self._pass("evaluate", work)

    async def deliver_pass(self) -> None:
        """Deliver what is due; one at a time (the one under way re-arms when it ends)."""
        if self.stop_requested.is_set() or (self.delivering and not self.delivering.done()):
            return

        async def work() -> None:
            at = self.clock()
            self.deliverer = Deliverer(self.store, self.settings, self.worker)
            try:
                report = await self.deliverer.run(at)
                if self.cluster.is_leader:  # one instance writes to the calendar's items
                    await self.deliverer.close_vanished(at, report)
            finally:
                self.deliverer = None
            for channel, count in report.errors.items():
                self.metrics.delivery_errors.labels(channel).inc(count)
            if report.sent:
                log.info("delivered %d follow-ups", len(report.sent))
            for key, reason in {**report.failed, **report.dead}.items():
                log.error("%s not delivered: %s", key, reason)
            self._arm_delivery(report)

        self.delivering = asyncio.ensure_future(self._pass("deliver", work))
        await self.delivering

    async def orphans_pass(self) -> None:
        if not self.cluster.is_leader:
            return
        await self._pass("orphans", self._take_back_orphans)

    async def _take_back_orphans(self) -> None:
        def release() -> dict[str, int]:
            with self.store.session() as session:
                return release_orphans(session, self.clock())

        for worker, count in (await asyncio.to_thread(release)).items():
            log.warning("took back %d follow-ups claimed by %s, which died", count, worker)

    async def housekeeping_pass(self) -> None:
        if not self.cluster.is_leader:
            return

        async def work() -> None:
            at = self.clock()
            retention = timedelta(days=self.settings.service.retention_days)

            def tidy() -> None:
                with self.store.session() as session:
                    housekeeping.tidy(session, at, retention)

            await asyncio.to_thread(tidy)

        await self._pass("housekeeping", work)

    # -- what the outside sees ---------------------------------------------------------
    def feed(self, owner_key: str, at: datetime, origin: str) -> Feed | None:
        """The feed of the owner keyed `owner_key`: their items only, in their time zone,
        their files linked at `origin` (where the feed was asked for).

        Built again only when its items or the owner's name changed (`FeedCache`).
        None when that owner left the config (a reload between token and feed).
        """
        settings = self.settings
        token = self.tokens.get(owner_key)
        if token is None or owner_key not in {entry.key for entry in settings.owners}:
            return None
        scope = scope_of(settings, owner_key)
        owner = scope.owner
        zone = ZoneInfo(owner.timezone)
        with self.store.session() as session:
            rows = feed_source(session, at, scope)
        source = (rows, owner.name, owner.timezone, owner.country, settings.business, token)
        cached = self.feeds.get(owner_key, origin, source)
        if cached is not None:
            return cached
        kept = self.feeds.components(owner_key, origin)
        time = OwnersTime(BusinessCalendar(settings.business), zone, (owner.country,))
        items = items_of(rows, zone, FileLinks(origin, token), kept, time)
        built = build_feed(items, zone, f"followupd — {owner.name}", kept)
        self.feeds.put(owner_key, origin, source, built)
        return built

    def file(self, owner_key: str, file: Named) -> bytes | None:
        """The bytes of a file of the feed of the owner keyed `owner_key`; None: not theirs,
        no such file (or that owner left the config), or a letter that cannot be made."""
        if owner_key not in {entry.key for entry in self.settings.owners}:
            return None
        with self.store.session() as session:
            found = attachments.named(session, file, scope_of(self.settings, owner_key))
        if found is None:
            return None
        key, stored = found
        made_file = made(key, stored)  # a letter that cannot be made: logged, then a 404
        return None if made_file is None else made_file[1]

    def health(self) -> tuple[bool, str]:
        failed = {name: result for name, result in self.results.items() if not result.ok}
        if failed:
            return False, "; ".join(f"{name} failed: {r.error}" for name, r in failed.items())
        role = ("leader, " if self.cluster.is_leader else "standby, ") if self.shared else ""
        return True, f"ok: {role}" + (", ".join(sorted(self.results)) or "starting")

    def today(self) -> date:
        """The day it is by the service's clock, in the first owner's time zone (/metrics)."""
        return self.clock().astimezone(zone(self.settings.owner.timezone)).date()

    def status_line(self) -> str:
        try:
            with self.store.session() as session:
                counts = housekeeping.count_by_state(session)
                local = self.clock().astimezone(zone(self.settings.owner.timezone))
                midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
                sent_today = housekeeping.sent_since(session, midnight)
        except Exception:  # the status line must never break a pass
            return "running"
        failed = sum(counts.get(state, 0) for state in FAILED_STATES)
        pending = counts.get(FollowUpState.PENDING, 0)
        return f"{pending} pending, {sent_today or 0} sent today, {failed} failed"


JOB_OPTIONS: dict[str, Any] = {"coalesce": True, "max_instances": 1, "misfire_grace_time": None}


def next_opening(calendar: BusinessCalendar, zones: set[ZoneInfo], at: datetime) -> datetime:
    """The soonest send-window opening after `at` among `zones`."""
    soonest: datetime | None = None
    for tz in zones:
        day = at.astimezone(tz).date()
        for offset in (0, 1, 2):
            opening = calendar.window_opening(day + timedelta(days=offset), tz)
            if opening > at:
                soonest = opening if soonest is None else min(soonest, opening)
                break
    return soonest or at + timedelta(days=1)


def run_service(config_path: Path, environ: Mapping[str, str]) -> int:
    service = Service(config_path, environ)
    return asyncio.run(service.run())
