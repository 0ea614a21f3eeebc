"""`followupd check`: is each configured service reachable, and how is it set up.

Secrets are read (to prove they can be) but never shown: only where they come from.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aiosmtplib

from followupd.accounts import CaldavAccount
from followupd.channels.smtp import smtp_client
from followupd.config import Settings, Smtp
from followupd.dav import calendars_by_name, dav_client
from followupd.errors import ConfigError, FollowupdError
from followupd.owners import calendar_sources, has_calendars
from followupd.store.db import Store, describe
from followupd.template_check import check_templates


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def offline_checks(settings: Settings, environ: Mapping[str, str]) -> list[Check]:
    """What can be checked without the network: that every secret can be read."""
    checks = []
    own_accounts = [(owner.caldav, f"owners.{owner.key}.caldav") for owner in settings.owners]
    for section, name in (
        (settings.database, "database"),
        (settings.smtp, "smtp"),
        (settings.caldav, "caldav"),
        *own_accounts,
    ):
        if section is None or not section.has_password:
            continue
        secret = section.password(name)
        try:
            secret.reveal(environ)
        except ConfigError as error:
            checks.append(Check(f"{name} password", False, error.problems[0].message))
        else:
            checks.append(Check(f"{name} password", True, f"readable, {secret.describe()}"))
    return checks + template_checks(settings)


def template_checks(settings: Settings) -> list[Check]:
    """Each user template rendered once with sample data: every error, with file and line."""
    report = check_templates(settings)
    checks = [Check(f"template {found.file}", False, found.detail) for found in report.findings]
    if checks or not report.directories:
        return checks
    where = ", ".join(str(path) for path in report.directories)
    return [Check("templates", True, f"{report.files} in {where}, each renders with sample data")]


def online_checks(settings: Settings, environ: Mapping[str, str]) -> list[Check]:
    checks = [check_database(settings, environ)]
    if settings.smtp is None:
        maildir = settings.state_dir / "Maildir"
        checks.append(Check("smtp", True, f"not configured: mail goes to {maildir}"))
    else:
        checks.append(asyncio.run(check_smtp(settings.smtp, environ)))
    if not has_calendars(settings):
        checks.append(Check("caldav", True, "not configured: tasks only in the feed"))
    for account, calendars in calendar_sources(settings):
        reads = [calendar.name for calendar in calendars if not calendar.writes]
        writes = [calendar.name for calendar in calendars if calendar.writes]
        checks += check_caldav(account, environ, reads, writes)
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
    caldav: CaldavAccount, environ: Mapping[str, str], reads: Sequence[str], writes: Sequence[str]
) -> list[Check]:
    """The server, then each calendar: reachable, and whether it syncs by token (RFC 6578).

    `reads` are the calendars read there, `writes` those followupd writes
    (one per owner on the account; a read calendar may be written too).
    """
    try:
        client = dav_client(caldav, environ)
        with client:
            calendars = calendars_by_name(client)
            wanted = {*reads, *writes}
            tokens = {name: _sync_token(calendars[name]) for name in wanted & set(calendars)}
    except ConfigError as error:
        return [Check("caldav", False, f"{caldav.url}: {error.problems[0].message}")]
    except Exception as error:  # caldav raises many kinds; all mean "not usable"
        return [Check("caldav", False, f"{caldav.url}: {type(error).__name__}: {error}")]
    written = ", ".join(
        f"{name!r} {'exists' if name in calendars else 'will be created'}" for name in writes
    )
    many = "s" if len(writes) > 1 else ""
    checks = [
        Check(
            "caldav",
            True,
            f"{caldav.url}: reachable, {len(calendars)} calendars, write calendar{many} {written}",
        )
    ]
    for name in dict.fromkeys((*reads, *writes)):
        if name not in calendars:
            if name not in writes:
                checks.append(Check(f"calendar {name!r}", False, "not found on the server"))
            continue
        syncs = "syncs by token" if tokens.get(name) else "no sync token: ETags are compared"
        checks.append(Check(f"calendar {name!r}", True, f"reachable, {syncs}"))
    return checks


def _sync_token(calendar: Any) -> str | None:
    """The collection's DAV:sync-token, which a server supporting RFC 6578 publishes."""
    try:
        from caldav.elements import dav

        token = calendar.get_property(dav.SyncToken())
    except Exception:  # a server without the property may answer with an error
        return None
    return str(token) if token else None
