"""`followupd check`: is each configured service reachable, and how is it set up.

Secrets are read (to prove they can be) but never shown: only where they come from.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import aiosmtplib
from sqlalchemy import func, select

from followupd.channels.email.smtp import smtp_client
from followupd.cli.template_check import check_templates
from followupd.config.accounts import CaldavAccount, ImapAccount, WithPassword
from followupd.config.owners import SINGLE_OWNER_KEY
from followupd.config.sections import Smtp
from followupd.config.settings import Settings
from followupd.dav.client import AmbiguousCalendar, dav_client, find_calendar, is_address, url_of
from followupd.domain.business_calendar import zone
from followupd.domain.late_payment import HalfYear, MissingRate, legal_table, rate_warnings
from followupd.domain.owner_scope import (
    SyncedCalendar,
    calendar_sources,
    has_calendars,
    mailbox_sources,
)
from followupd.errors import ConfigError, FollowupdError
from followupd.rules.invoice_due import InvoiceDue, unknown_profiles
from followupd.store.chunks import chunked
from followupd.store.db import Store, describe
from followupd.store.models import Mission

SENDER_ADDRESS_MISSING = (
    "not set: formal notices (formal_notice) would have no sender's postal address; "
    'set address = "street\\ntown"'
)
FETCH_CHUNK = 100  # objects a calendar-multiget asks for, as the sync does
SHOWN_SKIPS = 3
# objects are read for what they hold, not for when: no occurrence is wanted from them
NO_WINDOW = (datetime(2000, 1, 1, tzinfo=UTC), datetime(2000, 1, 1, tzinfo=UTC))


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    warning: bool = False  # ok, but something to set right: said, never failed


def offline_checks(settings: Settings, environ: Mapping[str, str]) -> list[Check]:
    """What can be checked without the network: that every secret can be read."""
    checks = []
    own_accounts: list[tuple[WithPassword | None, str]] = []
    for owner in settings.owners:
        own_accounts += [(owner.caldav, f"owners.{owner.key}.caldav"),
                         (owner.imap, f"owners.{owner.key}.imap")]  # fmt: skip
    for section, name in (
        (settings.database, "database"),
        (settings.smtp, "smtp"),
        (settings.caldav, "caldav"),
        (settings.imap, "imap"),
        *own_accounts,
    ):
        if section is None or not section.has_password:
            continue
        secret = section.password(name)
        try:
            secret.reveal(environ)
        except ConfigError as error:
            checks.append(Check(f"{name} password", False, str(error.problems[0])))
        else:
            checks.append(Check(f"{name} password", True, f"readable, {secret.describe()}"))
    return checks + template_checks(settings) + sender_address_checks(settings)


def sender_address_checks(settings: Settings) -> list[Check]:
    """Owners whose formal notices would carry no sender's postal address: said, not failed.

    A *mise en demeure* names its sender in full; followupd drafts it, so it is
    said here rather than found on the letter.
    """
    checks = []
    default = settings.rules.formal_notice.enabled
    single = len(settings.owners) == 1 and settings.owners[0].key == SINGLE_OWNER_KEY
    for owner in settings.owners:
        enabled = owner.rule_overrides.get("formal_notice", {}).get("enabled", default)
        if enabled and owner.address is None:
            where = "[owner]" if single else f"[[owners]] {owner.key!r}"
            checks.append(Check(f"{where} address", True, SENDER_ADDRESS_MISSING, warning=True))
    return checks


def late_payment_checks(settings: Settings, today: date) -> list[Check]:
    """``[late_payment]``'s rates for `today`, where French law applies to some owner.

    A missing half-year is said, not failed: the latest earlier rate stands in.
    """
    section = settings.late_payment
    if not any(section.enabled_for(owner.country) for owner in settings.owners):
        return []
    warnings = rate_warnings(section, today)
    if not warnings:
        return [Check("late payment", True, f"rates known for {HalfYear.of(today)}")]
    return [Check("late payment", True, warning, warning=True) for warning in warnings]


def template_checks(settings: Settings) -> list[Check]:
    """Each user template rendered once with sample data: every error, with file and line."""
    report = check_templates(settings)
    checks = [Check(f"template {found.file}", False, found.detail) for found in report.findings]
    if checks or not report.directories:
        return checks
    where = ", ".join(str(path) for path in report.directories)
    return [Check("templates", True, f"{report.files} in {where}, each renders with sample data")]


def online_checks(settings: Settings, environ: Mapping[str, str], today: date) -> list[Check]:
    checks = [check_database(settings, environ)]
    if checks[0].ok:
        checks += check_profiles(settings, environ)
        checks += check_mission_rates(settings, environ, today)
    if settings.smtp is None:
        maildir = settings.state_dir / "Maildir"
        checks.append(Check("smtp", True, f"not configured: mail goes to {maildir}"))
    else:
        checks.append(asyncio.run(check_smtp(settings.smtp, environ)))
    if not has_calendars(settings):
        checks.append(Check("caldav", True, "not configured: tasks only in the feed"))
    for account, calendars in calendar_sources(settings):
        checks += check_caldav(account, environ, calendars)
    for mailbox, _ in mailbox_sources(settings):
        checks += check_mailbox(mailbox, environ)
    return checks


def check_database(settings: Settings, environ: Mapping[str, str]) -> Check:
    try:
        store = Store.open(settings.database.sqlalchemy_url(environ), create=False)
    except FollowupdError as error:
        return Check("database", False, str(error))
    try:
        current, head = store.current_revision(), store.head_revision()
    except FollowupdError as error:
        return Check("database", False, str(error))
    finally:
        store.close()
    where = describe(store.engine.url)
    if current is None:
        return Check("database", False, f"{where}: reachable, no schema yet: run `followupd init`")
    if current != head:
        return Check("database", False, f"{where}: schema {current}, needs {head}: run init")
    return Check("database", True, f"{where}: reachable, schema {current} is current")


def check_profiles(settings: Settings, environ: Mapping[str, str]) -> list[Check]:
    """Clients whose ladder ``profile`` no ``[rules.invoice_due.profiles]`` table has."""
    known = set(settings.rules.invoice_due.profiles)
    for entry in settings.owners:  # an owner may have profiles of their own
        known |= set(InvoiceDue(settings.rules.invoice_due).for_owner(entry).options.profiles)
    store = Store.open(settings.database.sqlalchemy_url(environ), create=False)
    try:
        with store.session() as session:
            unknown = unknown_profiles(session, known)
    finally:
        store.close()
    return [
        Check(
            "profiles",
            True,
            f"{problem} is not in [rules.invoice_due.profiles]: the rule's own steps are used",
            warning=True,
        )
        for problem in unknown
    ]


def check_mission_rates(settings: Settings, environ: Mapping[str, str], today: date) -> list[Check]:
    """Missions with their own ``late_payment_rate`` need the legal rate of `today`'s
    half-year, for the floor of 3 times it (``late_payment_checks`` says it for
    ``[late_payment] contract_rate``)."""
    section = settings.late_payment
    if section.contract_rate is not None or not any(
        section.enabled_for(owner.country) for owner in settings.owners
    ):
        return []
    store = Store.open(settings.database.sqlalchemy_url(environ), create=False)
    try:
        with store.session() as session:
            count = session.scalar(
                select(func.count(Mission.id)).where(Mission.late_payment_rate.is_not(None))
            )
    finally:
        store.close()
    if not count:
        return []
    which = f"{count} mission{'s' if count > 1 else ''} with a late_payment_rate"
    try:
        rate = legal_table(section).lookup(HalfYear.of(today))
    except MissingRate as error:
        return [Check("late payment", True, f"{which}: {error}", warning=True)]
    if not rate.stale:
        return []
    return [Check("late payment", True, f"{which}: {rate.warning()}", warning=True)]


async def check_smtp(smtp: Smtp, environ: Mapping[str, str]) -> Check:
    where = f"{smtp.host}:{smtp.effective_port} ({smtp.security})"
    try:
        client = smtp_client(smtp, environ)
    except ConfigError as error:
        return Check("smtp", False, f"{where}: {error.problems[0].message}")
    try:
        async with asyncio.timeout(smtp.timeout_seconds):
            await client.connect()
            await client.quit()
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
        return Check("smtp", False, f"{where}: {type(error).__name__}: {error}")
    finally:
        client.close()  # a connection that failed half way (TLS, say) is not left open
    login = f", logged in as {smtp.username}" if smtp.username else ""
    return Check("smtp", True, f"{where}: reachable{login}")


def check_caldav(
    caldav: CaldavAccount, environ: Mapping[str, str], calendars: Sequence[SyncedCalendar]
) -> list[Check]:
    """The server, then each calendar: found as named, read through, and synced how.

    Each calendar is read as a sync reads it (listed, fetched, each object
    read): a calendar the server fails on, or a name two calendars share, is
    said here rather than at the first sync. The write calendars (one per
    owner on the account; a read calendar may be written too) are created
    when missing, if named by their display name.
    """
    try:
        client = dav_client(caldav, environ)
        with client:
            listed = client.principal().calendars()
            found = {wanted.name: _check_calendar(client, listed, wanted) for wanted in calendars}
    except ConfigError as error:
        return [Check("caldav", False, f"{caldav.url}: {error.problems[0].message}")]
    except Exception as error:  # caldav raises many kinds; all mean "not usable"
        return [Check("caldav", False, f"{caldav.url}: {_caldav_problem(caldav, error)}")]
    writes = [wanted.name for wanted in calendars if wanted.writes]
    written = ", ".join(f"{name!r} {_state(found[name])}" for name in writes)
    many = "s" if len(writes) > 1 else ""
    calendars_found = f"{len(listed)} calendar{'' if len(listed) == 1 else 's'}"
    summary = f"{caldav.url}: reachable, {calendars_found}, write calendar{many} {written}"
    return [Check("caldav", True, summary)] + [
        check for check in found.values() if check is not None
    ]


def check_mailbox(account: ImapAccount, environ: Mapping[str, str]) -> list[Check]:
    """The IMAP server, then each folder a sync reads: found, its size, and how it syncs.

    Read-only, as the sync: folders are EXAMINEd, nothing is fetched.
    """
    # imported here: a check without [imap] never loads the IMAP client
    from followupd.sources.imap.connection import MailboxUnreachable, open_mailbox, reason
    from followupd.sources.imap.sync import MailSyncReport, enable_condstore, folders_to_read
    from followupd.sources.imap.watch import POLL_SECONDS

    where = f"imap {account.account}"
    try:
        client = open_mailbox(account, environ=environ)
    except MailboxUnreachable as error:
        return [Check("imap", False, str(error))]
    report = MailSyncReport()
    checks: list[Check] = []
    try:
        condstore = enable_condstore(client)
        how = (
            "CONDSTORE: a pass with nothing new fetches nothing"
            if condstore
            else "no CONDSTORE: each pass lists the UIDs above the last one read"
        )
        idle = (
            "IDLE: the daemon reads a reply as it arrives"
            if client.has_capability("IDLE")
            else f"no IDLE: the daemon looks every {POLL_SECONDS:.0f} s"
        )
        checks.append(Check("imap", True, f"{where}: reachable, read-only; {how}; {idle}"))
        for name, role in folders_to_read(client, account, report):
            examined = client.select_folder(name, readonly=True)
            count = int(examined.get(b"EXISTS", 0))
            what = "replies" if role == "inbox" else "what you send"
            size = f"{count} message" + ("" if count == 1 else "s")
            checks.append(Check("imap", True, f"  folder {name!r} ({what}): {size}"))
    except Exception as error:  # a server's NO or BAD, a connection lost: not usable
        checks.append(Check("imap", False, f"{where}: {reason(error)}"))
    finally:
        try:
            client.logout()
        except Exception:  # the connection broke already
            client.shutdown()
    checks += [Check("imap", False, f"  {line}") for line in report.failed]
    checks += [Check("imap", True, f"  note: {line}") for line in report.notices]
    return checks


def _caldav_problem(caldav: CaldavAccount, error: Exception) -> str:
    """What went wrong with the CalDAV account, in a line; what to set when it is the login."""
    from caldav.lib import error as dav_error

    if isinstance(error, dav_error.AuthorizationError):
        if caldav.username and not caldav.has_password:
            return (
                f"access refused ({error.reason}): no password is configured for "
                f"{caldav.username!r}; set [caldav] password_file or password_env"
            )
        return f"access refused ({error.reason}): check the username and the password"
    return f"{type(error).__name__}: {error}"


def _state(check: Check | None) -> str:
    if check is None:
        return "will be created"
    return "exists" if check.ok else "unusable (see below)"


def _check_calendar(client: Any, listed: list[Any], wanted: SyncedCalendar) -> Check | None:
    """Whether `wanted` is found as named and reads through; None: a write calendar to create."""
    name = f"calendar {wanted.name!r}"
    try:
        calendar = find_calendar(client, listed, wanted.name)
    except AmbiguousCalendar as error:
        return Check(name, False, str(error))
    except Exception as error:  # a path the server refuses to show, say
        return Check(name, False, f"not usable: {type(error).__name__}: {error}")
    if calendar is None:
        if wanted.writes and not is_address(wanted.name):
            return None
        return Check(name, False, "not found on the server")
    url = url_of(calendar)
    try:
        read = _read_through(calendar, url, zone(wanted.timezone))
    except Exception as error:  # what a sync would fail on
        return Check(name, False, f"not readable at {url}: {type(error).__name__}: {error}")
    syncs = "syncs by token" if _sync_token(calendar) else "no sync token: ETags are compared"
    return Check(name, True, f"reachable, {syncs}; {read} at {url}")


def _read_through(calendar: Any, url: str, tz: ZoneInfo) -> str:
    """Every object of `calendar` fetched and read as a sync does: how many, and which not."""
    # imported here: a check without [caldav] never loads the client stack
    from followupd.sources.caldav import changes as dav_changes
    from followupd.sources.ical.happenings import UnreadableObject
    from followupd.sources.ical.read import read_object

    listing = dav_changes.changes(calendar, url, None, {})
    left_out: list[tuple[str, str]] = []
    count = 0
    for chunk in chunked(sorted(listing.changed), FETCH_CHUNK):
        fetched = dav_changes.fetch(calendar, chunk, lambda href, why: left_out.append((href, why)))
        for href, data in fetched.data.items():
            count += 1
            try:
                read_object(data, tz, NO_WINDOW)
            except UnreadableObject as error:
                left_out.append((href, str(error)))
    read = f"{count} object{'' if count == 1 else 's'} read"
    if not left_out:
        return read
    shown = "; ".join(f"{href}: {why}" for href, why in left_out[:SHOWN_SKIPS])
    more = f"; and {len(left_out) - SHOWN_SKIPS} more" if len(left_out) > SHOWN_SKIPS else ""
    return f"{read}, {len(left_out)} left out by the sync ({shown}{more})"


def _sync_token(calendar: Any) -> str | None:
    """The collection's DAV:sync-token, which a server supporting RFC 6578 publishes."""
    try:
        from caldav.elements import dav

        token = calendar.get_property(dav.SyncToken())
    except Exception:  # a server without the property may answer with an error
        return None
    return str(token) if token else None
