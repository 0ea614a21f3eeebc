"""How the command line shows things: rich tables on a terminal, plain text in a pipe."""

from __future__ import annotations

import shutil
import sys
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Protocol
from zoneinfo import ZoneInfo

import click

from followupd.cli import plain_table
from followupd.domain.owner_scope import caldav_of, imap_of
from followupd.domain.states import (
    UNSENT_STATES,
    Audience,
    CalendarState,
    Channel,
    FollowUpState,
    PassAction,
)
from followupd.store.outbox.digests import RULE as DIGEST

if TYPE_CHECKING:  # only named in annotations: `plan` need not load the checks' clients
    from rich.console import Console
    from rich.table import Table

    from followupd.cli.checks import Check
    from followupd.config.accounts import ImapAccount
    from followupd.config.owners import OwnerEntry
    from followupd.config.settings import Settings
    from followupd.rules.base import Intent
    from followupd.sources.caldav.read_back import ReadBack
    from followupd.sources.caldav.sync import SyncReport
    from followupd.sources.files.demo import DemoLoad
    from followupd.sources.files.importer import ImportReport
    from followupd.sources.imap.sync import MailSyncReport
    from followupd.store.models import FollowUp, LiveItem, Mission
    from followupd.store.outbox.rows import FollowUpRow
    from followupd.store.queries import MissionRow


TABLE_ROWS = 200  # past this many follow-ups, `tick` counts them: a row costs ~1 ms to print


def console() -> Console:
    """A console that does not cut cells short when writing to a pipe or a file."""
    from rich.console import Console  # not for a table into a pipe: plain_table

    if sys.stdout.isatty():
        return Console(markup=False)
    return Console(markup=False, width=pipe_width())


def pipe_width() -> int:
    """How wide the command line's output is in a pipe or a file."""
    return max(shutil.get_terminal_size((160, 24)).columns, 160)


def _table(*columns: str, title: str | None = None) -> Table:
    from rich.table import Table

    table = Table(*columns, title=title, title_justify="left", show_edge=False, pad_edge=False)
    for column in table.columns:
        column.overflow = "fold"
    return table


def _local(moment: datetime | None, zone: ZoneInfo) -> str:
    return "" if moment is None else moment.astimezone(zone).strftime("%Y-%m-%d %H:%M")


def print_import_report(report: ImportReport) -> None:
    # the data file's models (pydantic), which only `import` and `init --demo` load
    from followupd.sources.files.records import RECORD_KINDS

    table = _table("records", "created", "updated", "unchanged")
    for kind in RECORD_KINDS:
        counts = (report.created[kind], report.updated[kind], report.unchanged[kind])
        if any(counts):
            table.add_row(kind, *(str(count) for count in counts))
    out = console()
    out.print(table)
    changes = report.changes
    out.print(f"{changes} change{'s' if changes != 1 else ''}")
    print_import_warnings(report)


def print_import_warnings(report: ImportReport) -> None:
    """On stderr, as import problems are shown: what was imported but deserves a look."""
    count = len(report.warnings)
    if not count:
        return
    lines = [f"followupd: imported with {count} warning{'s' if count != 1 else ''}:"]
    lines += [f"  warning: {warning}" for warning in report.warnings]
    click.echo("\n".join(lines), err=True)


def print_demo_dates(loaded: DemoLoad) -> None:
    sunday = f"{loaded.seen_from:%A} {loaded.seen_from.day} {loaded.seen_from:%B %Y}"
    if loaded.kept:
        console().print(f"demo: already loaded, its dates kept (as seen from {sunday})")
    else:
        console().print(f"demo: dates as seen from {sunday}, the latest Sunday")


def print_missions(rows: list[MissionRow], owners: Settings | None = None) -> None:
    """The missions; with `owners` (when there are several), whose each one is."""
    columns = ["mission", "client", "title", "status", "start", "end", "contact", "issues"]
    table = _table(*columns, "unpaid", *(["owner"] if owners else []))
    for row in rows:
        owner = [owners.owner_for(row.owner).key] if owners else []
        table.add_row(
            row.key,
            row.client,
            row.title,
            row.status,
            str(row.start),
            str(row.end or ""),
            row.contact or "",
            str(row.open_issues or ""),
            str(row.unpaid_invoices or ""),
            *owner,
        )
    out = console()
    out.print(table if rows else "no missions yet: `followupd import FILE` adds some")


def print_mission(mission: Mission, zone: ZoneInfo, owners: Settings | None = None) -> None:
    out = console()
    contact = mission.contact
    facts = _table("", "", title=f"{mission.key}: {mission.title}")
    facts.show_header = False
    if owners is not None:
        owner = owners.owner_for(mission.owner)
        facts.add_row("owner", f"{owner.name} ({owner.key})")
    facts.add_row("client", f"{mission.client.name} ({mission.client.key})")
    if contact is not None:
        reach = ", ".join(part for part in (contact.email, contact.phone) if part)
        facts.add_row("contact", f"{contact.name} ({contact.key}) {reach}".strip())
    facts.add_row("status", mission.status)
    facts.add_row("dates", f"{mission.start} to {mission.end or 'open-ended'}")
    facts.add_row("contract signed", str(mission.contract_signed or "no"))
    if mission.deposit_amount is not None:
        paid = f", paid {mission.deposit_paid}" if mission.deposit_paid else ", not paid"
        facts.add_row("deposit", f"{mission.deposit_amount} {mission.currency}{paid}")
    if mission.paused_until is not None:
        facts.add_row("paused until", str(mission.paused_until))
    if mission.status_update_every_days is not None:
        facts.add_row("status updates", f"every {mission.status_update_every_days} days")
    if not mission.deliverables:
        facts.add_row("deliverables", "none (accompaniment)")
    out.print(facts)
    if mission.invoices:
        invoices = _table("invoice", "amount", "issued", "due", "paid", title="\ninvoices")
        for inv in sorted(mission.invoices, key=lambda inv: inv.due):
            invoices.add_row(
                inv.number,
                f"{inv.amount} {mission.currency}",
                str(inv.issued),
                str(inv.due),
                str(inv.paid or (f"promised by {inv.promised}" if inv.promised else "")),
            )
        out.print(invoices)
    if mission.issues:
        issues = _table(
            "issue", "severity", "opened", "informed", "resolved", "summary", title="\nissues"
        )
        for found in sorted(mission.issues, key=lambda found: found.opened):
            issues.add_row(
                found.key,
                found.severity,
                _local(found.opened, zone),
                _local(found.client_informed, zone),
                _local(found.resolved, zone),
                found.summary,
            )
        out.print(issues)
    if mission.touchpoints:
        touches = _table("at", "kind", "contact", "note", title="\ntouchpoints")
        for touch in sorted(mission.touchpoints, key=lambda touch: touch.at):
            who = touch.contact.name if touch.contact else ""
            touches.add_row(_local(touch.at, zone), touch.kind, who, touch.note or "")
        out.print(touches)


def print_settings(settings: Settings) -> None:
    """The effective config, with where each secret comes from and never its value."""
    facts = _table("", "", title=f"config {settings.source}")
    facts.show_header = False
    for owner in settings.owners:
        facts.add_row(
            f"owner {owner.key}" if settings.several_owners else "owner",
            f"{owner.name} <{owner.email}>, {owner.timezone}, {owner.language}, {owner.country}"
            + (owner_extras(settings, owner) if settings.several_owners else ""),
        )
    facts.add_row("state directory", str(settings.state_dir))
    database = settings.database
    secret = database.password("database")
    facts.add_row(
        "database",
        database.url + (f" (password {secret.describe()})" if database.has_password else ""),
    )
    smtp = settings.smtp
    if smtp is None:
        facts.add_row("smtp", f"none: mail to the Maildir {settings.state_dir / 'Maildir'}")
    else:
        login = f", user {smtp.username}, password {smtp.password('smtp').describe()}"
        facts.add_row(
            "smtp",
            f"{smtp.host}:{smtp.effective_port} {smtp.security}{login if smtp.username else ''}",
        )
    caldav = settings.caldav
    if caldav is None:
        facts.add_row("caldav", "none: tasks only in the feed")
    else:
        reads = ", ".join(caldav.read_calendars) or "none"
        facts.add_row("caldav", f"{caldav.url}, reads {reads}, writes {caldav.write_calendar!r}")
    imap = settings.imap if settings.several_owners else imap_of(settings, settings.owners[0])
    if imap is not None:
        facts.add_row("imap", describe_mailbox(imap))
    elif any(owner.imap for owner in settings.owners):
        facts.add_row("imap", "no shared mailbox; the owners' own are read")
    else:
        facts.add_row("imap", "none: no mailbox is read")
    facts.add_row("feed", f"http://{settings.feed.listen}/feed/<token>.ics")
    business = settings.business
    facts.add_row("send window", f"{business.send_window} on {', '.join(business.working_days)}")
    enabled = [name for name, options in settings.rules if options.enabled]
    facts.add_row("rules enabled", ", ".join(enabled) or "none")
    console().print(facts)


def print_checks(checks: list[Check], *, offline: bool = False) -> None:
    """One unwrapped line per check, easy to read and to grep."""
    if offline and all(check.ok for check in checks):
        print("config is valid; no service was reached (--offline)")
    for check in checks:
        status = "FAILED" if not check.ok else "warn" if check.warning else "ok"
        print(f"{check.name:<17} {status:<6} {check.detail}")


def owner_extras(settings: Settings, owner: OwnerEntry) -> str:
    """What is an owner's own, for `check`: calendars, feed token file, overrides."""
    caldav = caldav_of(settings, owner)
    parts = [f"feed token in {owner.token_file}"]
    if caldav is not None:
        reads = ", ".join(caldav.read_calendars) or "none"
        parts.append(f"calendars on {caldav.url}: reads {reads}, writes {caldav.write_calendar!r}")
    if owner.imap is not None:
        parts.append(f"mailbox {describe_mailbox(owner.imap)}")
    if owner.templates is not None:
        parts.append(f"templates in {owner.templates}")
    if owner.rule_overrides:
        parts.append(f"own options for {', '.join(sorted(owner.rule_overrides))}")
    return "; " + "; ".join(parts)


IMAP_SECURITY = {"tls": "TLS", "starttls": "STARTTLS", "none": "without TLS"}


def describe_mailbox(imap: ImapAccount) -> str:
    """An IMAP account as `check` shows it: where, how, whose, which folders; never a secret."""
    sent = repr(imap.sent_folder) if imap.sent_folder else "the \\Sent folder"
    return (
        f"{imap.url} {IMAP_SECURITY[imap.effective_security]}, user {imap.username}, password "
        f"{imap.password('imap').describe()}, reads {', '.join(map(repr, imap.folders))} "
        f"and {sent}"
    )


def _recipient(item: Intent | FollowUpRow, settings: Settings) -> str:
    """Who a follow-up goes to, and how: "you (calendar)", "you (digest)", or, with several
    owners, the owner's key instead of "you"."""
    if item.audience != Audience.OWNER:
        return item.recipient or ""
    owner = settings.owner_for(item.owner)
    who = owner.key if settings.several_owners else "you"
    how = str(item.channel)
    if (
        item.channel == Channel.EMAIL
        and item.rule != DIGEST
        and owner.reminders_by_email == "digest"
    ):
        how = "digest"
    return f"{who} ({how})"


def print_intents(intents: Sequence[Intent], zone: ZoneInfo, settings: Settings) -> None:
    if not intents:
        console().print("nothing becomes due in this window")
        return
    columns = ("due", "rule", "to", "subject")
    rows = [
        (
            _local(intent.due_at, zone),
            intent.rule,
            _recipient(intent, settings),
            str(intent.subject),
        )
        for intent in intents
    ]
    print_table(columns, rows)


def print_table(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """A `_table` of `rows`: into a pipe, laid out by plain_table when it can (as rich
    would, without its cost), else by rich."""
    if plain_table.plain_pipe():
        laid_out = plain_table.lay_out(columns, rows, pipe_width())
        if laid_out is not None:
            sys.stdout.write(laid_out)
            sys.stdout.flush()  # as rich does after a print
            return
    table = _table(*columns)
    for row in rows:
        table.add_row(*row)
    console().print(table)


def print_followups(
    rows: Sequence[FollowUpRow],
    zone: ZoneInfo,
    settings: Settings,
    actions: Mapping[str, PassAction],
    calendar_says: Mapping[str, str],
) -> None:
    """What a pass did; `calendar_says` (by key): what a row's calendar item says now
    (`item_said`).

    Past `TABLE_ROWS` follow-ups (a Monday morning's burst), their counts by
    rule, action and state instead: `--json` lists every one.
    """
    if len(rows) > TABLE_ROWS:
        print_followup_counts(rows, actions)
        return
    table = _table("due", "rule", "to", "subject", "this pass", "state")
    for row in rows:
        state = f"{row.state} (late)" if row.late else row.state
        if row.key in calendar_says:
            state += f": {calendar_says[row.key]}"
        elif row.reason and (row.state in UNSENT_STATES or row.state == FollowUpState.PENDING):
            state += f": {row.reason}"
        table.add_row(
            _local(row.due_at, zone),
            row.rule,
            _recipient(row, settings),
            row.subject,
            actions[row.key],
            state,
        )
    out = console()
    out.print(table if rows else "nothing new is due")


class Counted(Protocol):
    """What the counts of a pass's follow-ups read of each (a FollowUpRow has it)."""

    @property
    def key(self) -> str: ...
    @property
    def rule(self) -> str: ...
    @property
    def state(self) -> str: ...


def print_followup_counts(rows: Sequence[Counted], actions: Mapping[str, PassAction]) -> None:
    """What a pass did to more follow-ups than a table shows: their counts by rule, action
    and state."""
    counts = Counter((row.rule, actions[row.key], row.state) for row in rows)
    title = (f"{len(rows)} follow-ups, counted (each with --json, or in "
             "`followupd outbox list`)")  # fmt: skip
    table = _table("rule", "this pass", "state", "follow-ups", title=title)
    for (rule, action, state), count in sorted(counts.items()):
        table.add_row(rule, action, state, str(count))
    console().print(table)


def print_outbox(
    rows: Sequence[FollowUp],
    zone: ZoneInfo,
    settings: Settings,
    filtered: bool = False,
    items: Mapping[str, LiveItem] | None = None,
) -> None:
    """The outbox as a table; `items` (by concern) say what the user did in their calendar."""
    table = _table("#", "due", "rule", "to", "state", "tries", "next attempt", "why")
    for row in rows:
        item = (items or {}).get(row.concern)
        table.add_row(
            str(row.id),
            _local(row.due_at, zone),
            row.rule,
            _recipient(row, settings),
            row.state,
            str(row.attempts),
            _local(row.next_attempt_at, zone) if row.state == FollowUpState.PENDING else "",
            _why(row, item, zone)[:80],
        )
    empty = "no follow-up matches" if filtered else "the outbox is empty"
    console().print(table if rows else empty)


def _why(row: FollowUp, item: LiveItem | None, zone: ZoneInfo) -> str:
    """The reason a follow-up stands where it does; for the one its calendar item shows now,
    what that item says (`item_said`)."""
    did = item_said(item, zone) if item is not None and item.followup_key == row.key else ""
    if did:
        return did
    if row.reason and row.state != FollowUpState.SENT:
        return row.reason
    return row.last_error or ""


def item_said(item: LiveItem, zone: ZoneInfo) -> str:
    """What a follow-up's calendar item says now: what the user did to it in their app, or
    why followupd closed it (the invoice paid…); "" while it is open and untouched."""
    if item.by_user or item.snoozed_until is not None:
        return user_did(item, zone)
    if item.state != CalendarState.OPEN and item.reason:
        return f"closed: {item.reason}"
    return ""


def user_did(item: LiveItem, zone: ZoneInfo) -> str:
    """What the user did to a calendar item in their app, in the owner's words."""
    if item.state == CalendarState.COMPLETED:
        when = f" on {_local(item.completed_at, zone)}" if item.completed_at else ""
        return f"completed in your calendar{when}"
    if item.state == CalendarState.CANCELLED:
        return f"dismissed: {item.reason or 'cancelled in your calendar'}"
    if item.snoozed_until is not None:
        return f"snoozed until {_local(item.snoozed_until, zone)} in your calendar"
    return ""


def print_followup(
    row: FollowUp, zone: ZoneInfo, settings: Settings, item: LiveItem | None = None
) -> None:
    facts = _table("", "", title=f"follow-up {row.id}: {row.key}")
    facts.show_header = False
    for name, value in (
        ("rule", f"{row.rule} ({row.step})"),
        ("to", _recipient(row, settings)),
        ("language", row.language),
        ("subject", row.subject),
        ("due", _local(row.due_at, zone) + (" (late)" if row.late else "")),
        ("grace ends", _local(row.expires_at, zone)),
        ("state", row.state + (f": {row.reason}" if row.reason else "")),
        ("attempts", str(row.attempts)),
        ("next attempt", _local(row.next_attempt_at, zone)),
        ("last error", row.last_error or ""),
        ("sent", _local(row.sent_at, zone)),
        ("message id", row.message_id or ""),
        ("calendar item", _item(item, zone, row) if item is not None else ""),
        ("in calendar", item.href if item is not None and item.href else ""),
    ):
        if value:
            facts.add_row(name, value)
    out = console()
    out.print(facts)
    if row.body:
        out.print()
        out.print(row.body, markup=False, highlight=False)


def _item(item: LiveItem, zone: ZoneInfo, row: FollowUp) -> str:
    """What the calendar item of a follow-up's concern is now, and what the user did to it;
    where a meeting to place raised after `row`'s due is offered."""
    state = user_did(item, zone) if item.by_user or item.snoozed_until else ""
    if not state:  # open, or closed by followupd
        state = f"{item.state}" + (f" ({item.reason})" if item.reason else "")
    if item.followup_key == row.key and item.due_at > row.due_at:
        state += f"; offered at {_local(item.due_at, zone)}, the next working time"
    if item.times_raised > 1:
        state += f"; raised {item.times_raised} times since {_local(item.first_raised_at, zone)}"
    return f"{item.uid}: {state}"


def print_sync_report(report: SyncReport) -> None:
    """The calendars synced, then the totals, notices and objects skipped, a line each.

    Into a pipe, written as rich would write them when plain_table can (a
    sync after one change is a short command: rich's import would be a
    tenth of it); else by rich.
    """
    columns = ("calendar", "sync", "fetched", "deleted")
    rows = [(calendar.name, calendar.mode, str(calendar.fetched), str(calendar.deleted))
            for calendar in report.calendars]  # fmt: skip
    totals = (
        f"missions: {report.missions_created} created, {report.missions_updated} updated; "
        f"meetings recorded: {report.meetings}; {user_actions(report.user)}"
    )
    lines = [f"note: {notice}" for notice in report.notices]
    lines += [f"skipped {url}: {reason}" for url, reason in report.skipped]
    if plain_table.plain_pipe():
        width = pipe_width()
        laid_out = plain_table.lay_out(columns, rows, width)
        if laid_out is not None and all(
            plain_table.plain_line(line, width) for line in (totals, *lines)
        ):
            sys.stdout.write(laid_out + "".join(f"{line}\n" for line in (totals, *lines)))
            sys.stdout.flush()  # as rich does after a print
            return
    out = console()
    table = _table(*columns)
    for row in rows:
        table.add_row(*row)
    out.print(table)
    out.print(totals)
    for line in lines:
        out.print(line, markup=False, highlight=False)


def print_mail_report(report: MailSyncReport) -> None:
    """What a mailbox sync read, folder by folder (what it could not read goes to stderr)."""
    out = console()
    if report.folders:  # none read: the mailbox was not reached, as stderr says
        table = _table("mailbox", "folder", "for", "sync", "read", "new")
        for folder in report.folders:
            table.add_row(folder.mailbox, folder.folder, folder.role, folder.mode,
                          str(folder.seen), str(folder.recorded))  # fmt: skip
        out.print(table)
        out.print(f"in the mailbox: {report.actions.summary()}", markup=False, highlight=False)
    for notice in report.notices:
        out.print(f"note: {notice}", markup=False, highlight=False)


def user_actions(did: ReadBack) -> str:
    """What the user did to followupd's items in their calendar, as a sync read it."""
    completed, dismissed, snoozed = did.counts
    promised = "".join(f"; invoice {number}: promised to pay by {day}"
                       for number, day in did.promised)  # fmt: skip
    return (
        f"in your calendar, followupd's items completed: {completed}, "
        f"cancelled or deleted: {dismissed}, put off: {snoozed}{promised}"
    )


@contextmanager
def sync_progress() -> Iterator[Callable[[str, int, int], None] | None]:
    """A progress bar on a terminal (the first sync of a big calendar is long); none otherwise."""
    if not sys.stderr.isatty():
        yield None
        return
    from rich.progress import Progress, TaskID  # on a terminal only

    with Progress(transient=True, console=Console(stderr=True)) as bar:
        tasks: dict[str, TaskID] = {}

        def advance(calendar: str, done: int, total: int) -> None:
            if calendar not in tasks:
                tasks[calendar] = bar.add_task(f"syncing {calendar}", total=total)
            bar.update(tasks[calendar], completed=done, total=total)

        yield advance
