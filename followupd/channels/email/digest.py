"""The owner's daily digest: every reminder that fell due since the last one, in one email.

With ``[owner] reminders_by_email = "digest"`` the owner gets one message a
working day instead of one per reminder. This module is that message: the
lines are put in the order the owner acts on them (the calls first, by due
time; then the rest by mission, missions by title; what belongs to no
mission last) and rendered, in the owner's language, from the template
``LANG/digest/default.j2``, which a user's template directory overrides like
any other. Its ``html`` block is optional: without it the HTML part is made
from the text, as for every other message.

The template is given ``owner``, ``today`` (the day of the digest),
``count``, ``calls``, ``missions`` (each with ``key``, ``title``,
``client_name`` and its ``lines``), ``others`` and ``lines`` (all of them, in
order). A line has the fields of `DigestLine`, ``phone_uri`` (a ``tel:``
link), ``due_on`` and ``brief`` (its summary without what its heading says);
its times are in the owner's time zone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from followupd.channels.email.message import text_to_html
from followupd.config.owners import Owner
from followupd.domain.items import tel_uri
from followupd.templates.loader import Templates

# the template is looked up as LANG/digest/default.j2, like a rule's
DIGEST_TEMPLATE = "digest"
DIGEST_STEP = "default"
# between what to do and what it is about, in a reminder's summary: "Appeler X — …"
ABOUT = " — "


@dataclass(frozen=True)
class LastSaid:
    """The last exchange with the client before a reminder: what to pick up from on the phone."""

    kind: str  # a touchpoint kind: "call", "email", "meeting", "status_update"…
    at: datetime
    note: str | None = None


@dataclass(frozen=True)
class DigestLine:
    """One reminder in a digest."""

    key: str
    rule: str
    step: str
    call: bool
    summary: str  # the reminder's recorded subject
    due_at: datetime
    mission_key: str | None = None
    mission_title: str | None = None
    client_name: str | None = None
    contact_name: str | None = None
    contact_phone: str | None = None
    last_said: LastSaid | None = None

    @property
    def phone_uri(self) -> str | None:
        return tel_uri(self.contact_phone)

    @property
    def due_on(self) -> date:
        return self.due_at.date()

    @property
    def brief(self) -> str:
        """The summary without what the line's heading in the digest already says.

        A reminder's summary reads "what to do — what it is about". A call is
        listed under the person to call: it keeps what it is about. Another is
        listed under its mission: it keeps what to do, when what it is about
        is that mission. A summary of another shape (a user's template, say)
        is kept whole.
        """
        action, separator, about = self.summary.partition(ABOUT)
        if not separator or not action or not about:
            return self.summary
        if self.call:
            heading = self.contact_name or self.client_name
            return about if heading and heading in action else self.summary
        if self.mission_title and self.mission_title in about:
            return action
        return self.summary


@dataclass(frozen=True)
class MissionLines:
    """The reminders of one mission, by due time."""

    key: str
    title: str
    client_name: str | None
    lines: tuple[DigestLine, ...]


@dataclass(frozen=True)
class DigestOrder:
    """The lines of a digest in the order the message lists them."""

    calls: tuple[DigestLine, ...]
    missions: tuple[MissionLines, ...]
    others: tuple[DigestLine, ...]

    @property
    def lines(self) -> tuple[DigestLine, ...]:
        grouped = tuple(line for mission in self.missions for line in mission.lines)
        return self.calls + grouped + self.others


def _by_due_time(line: DigestLine) -> tuple[datetime, str]:
    return line.due_at, line.key


def arrange(lines: Sequence[DigestLine], zone: ZoneInfo) -> DigestOrder:
    """Calls first by due time, then the others by mission (by title), those of no mission last.

    Times are shown in `zone`, the owner's. ValueError for a naive time.
    """
    local = [_in_zone(line, zone) for line in lines]
    calls = sorted((line for line in local if line.call), key=_by_due_time)
    by_mission: dict[str, list[DigestLine]] = {}
    others: list[DigestLine] = []
    for line in local:
        if line.call:
            continue
        if line.mission_key is None:
            others.append(line)
        else:
            by_mission.setdefault(line.mission_key, []).append(line)
    missions = [
        MissionLines(
            key=key,
            title=next((line.mission_title for line in group if line.mission_title), key),
            client_name=next((line.client_name for line in group if line.client_name), None),
            lines=tuple(sorted(group, key=_by_due_time)),
        )
        for key, group in by_mission.items()
    ]
    missions.sort(key=lambda mission: (mission.title.casefold(), mission.title, mission.key))
    return DigestOrder(tuple(calls), tuple(missions), tuple(sorted(others, key=_by_due_time)))


def _in_zone(line: DigestLine, zone: ZoneInfo) -> DigestLine:
    if line.due_at.tzinfo is None:
        raise ValueError(f"reminder {line.key}: due_at must carry its time zone")
    last = line.last_said
    if last is not None and last.at.tzinfo is not None:
        last = replace(last, at=last.at.astimezone(zone))
    return replace(line, due_at=line.due_at.astimezone(zone), last_said=last)


def digest_values(owner: Owner, day: date, lines: Sequence[DigestLine]) -> dict[str, Any]:
    """What the digest template is given (see the module's docstring)."""
    order = arrange(lines, ZoneInfo(owner.timezone))
    return {
        "owner": owner,
        "today": day,
        "count": len(lines),
        "calls": order.calls,
        "missions": order.missions,
        "others": order.others,
        "lines": order.lines,
    }


def digest_message(
    templates: Templates, owner: Owner, day: date, lines: Sequence[DigestLine]
) -> tuple[str, str, str]:
    """The subject, text and HTML of the owner's digest for `day`, in the owner's language.

    ValueError when `lines` is empty: there is no digest to send then.
    TemplateProblem (with the file and line) when the template fails.
    """
    if not lines:
        raise ValueError("a digest lists at least one reminder; send none when none is due")
    values = digest_values(owner, day, lines)
    subject = templates.subject(owner.language, DIGEST_TEMPLATE, DIGEST_STEP, values)
    title = str(subject)  # one line, always
    text = subject.text("text")
    html = subject.text("html") or text_to_html(text)
    return title, text, html
