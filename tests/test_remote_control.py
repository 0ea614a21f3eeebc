"""The calendar as a remote control: what apps do to followupd's items, read and kept.

Each document of tests/remote_control_corpus/ (its README says which app
writes that form, and where it was found) is an item followupd wrote,
changed the way one app changes it. For each: what the user did is read
(`items_seen`, `user_action`), and the item rewritten in place (`updated`)
keeps every property and alarm the app added, with the due, followupd's
alarm and SEQUENCE right. Then the rules one by one, and `items_seen` fed
mangled documents (FOLLOWUPD_FUZZ_EXAMPLES of them, 200 unless told).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from icalendar import Calendar, Component

from followupd.channels.calendar import ical
from followupd.domain.identity import uid
from followupd.domain.states import CalendarState
from followupd.sources.ical.remote_control import (
    Completed,
    Dismissed,
    ItemSeen,
    NoAction,
    Snoozed,
    UserAction,
    items_seen,
    user_action,
)
from tests.test_fuzz import examples_asked

ZONE = ZoneInfo("Europe/Paris")
CORPUS = Path(__file__).parent / "remote_control_corpus"
DUE = datetime(2026, 12, 10, 9, tzinfo=ZONE)
# what followupd rewrites in its items: anything else is the app's, and stays
OWNED = {"SUMMARY", "DESCRIPTION", "DUE", "DTSTART", "DTEND", "STATUS", "COMPLETED"}
OWNED |= {"PERCENT-COMPLETE", "SEQUENCE", "DTSTAMP"}


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, sec: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, sec, tzinfo=UTC)


def paris(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=ZONE)


@dataclass(frozen=True)
class Case:
    action: UserAction
    # what the rewrite drops on purpose: spent snoozes of followupd's alarm, and the
    # copy of its alarm an app wrote without its UID (kept, it would remind twice)
    dropped: tuple[str, ...] = ()


TASKSORG_COPY = "TRIGGER;VALUE=DATE-TIME:20261210T080000Z"
CASES = {
    "thunderbird-completed": Case(Completed(at=utc(2026, 12, 10, 8, 42, 29))),
    "thunderbird-snoozed": Case(
        Snoozed(until=utc(2026, 12, 11, 8)), dropped=("X-MOZ-SNOOZE-TIME",)
    ),
    "thunderbird-due-earlier": Case(NoAction()),
    "apple-reminders-completed": Case(Completed(at=utc(2026, 12, 10, 9, 4, 10))),
    "apple-reminders-due-moved": Case(Snoozed(until=paris(2026, 12, 14, 9))),
    "apple-calendar-snoozed": Case(
        Snoozed(until=utc(2026, 12, 10, 14)), dropped=("RELTYPE=SNOOZE",)
    ),
    "apple-calendar-moved": Case(Snoozed(until=paris(2026, 12, 11, 14, 30))),
    "tasksorg-snoozed": Case(
        Snoozed(until=utc(2026, 12, 10, 11)), dropped=("X-MOZ-SNOOZE-TIME", TASKSORG_COPY)
    ),
    "tasksorg-due-allday": Case(Snoozed(until=paris(2026, 12, 14)), dropped=(TASKSORG_COPY,)),
    "nextcloud-tasks-percent": Case(Completed(at=None)),
    "owncloud-tasks-completed": Case(Completed(at=utc(2026, 12, 10, 10, 13, 59))),
    "todoman-completed": Case(Completed(at=datetime(2026, 12, 10, 18, 45, 2, tzinfo=ZONE))),
    "todoman-due-moved": Case(Snoozed(until=paris(2026, 12, 12, 10))),
    "evolution-cancelled": Case(Dismissed()),
}


def item_for(stem: str) -> ical.CalendarItem:
    """The item followupd wrote for the corpus document `stem`."""
    meeting = "-calendar-" in stem
    return ical.CalendarItem(
        key=f"corpus:{stem}",
        uid=uid(f"corpus:{stem}"),
        rule="checkpoint_meeting" if meeting else "invoice_due",
        step="checkpoint" if meeting else "first_reminder",
        summary="Point d'étape ACME" if meeting else "Relancer ACME : facture F-1",
        description="Mission acme-audit" if meeting else "Facture F-1 échue le 30/11",
        due_at=DUE,
        stamp=paris(2026, 12, 1, 9),
    )


def corpus(stem: str) -> bytes:
    return (CORPUS / f"{stem}.ics").read_bytes()


def rewritten_by_followupd(text: bytes | str, *args: Any) -> bytes:
    """`ical.updated`'s new document, which an object followupd may write to always has."""
    document = ical.updated(text, *args)
    assert document is not None, "left to the user"
    return document


def part_of(text: bytes | str, uid_text: str) -> Component:
    found = [
        part
        for part in Calendar.from_ical(text).walk()
        if part.name in ("VTODO", "VEVENT") and str(part.get("UID")) == uid_text
    ]
    assert len(found) == 1
    return found[0]


def own_lines(part: Component) -> list[str]:
    """The component's own properties as content lines (unfolded), not its alarms."""
    bare = part.copy()
    bare.subcomponents = []
    text = bare.to_ical().decode().replace("\r\n ", "")
    return [line for line in text.split("\r\n") if line and not line.startswith(("BEGIN:", "END:"))]


def get(part: Component, name: str) -> Any:
    """A property of `part`, typed for the checks made on it."""
    return part[name]


def name_of(line: str) -> str:
    return line.split(":", 1)[0].split(";", 1)[0].upper()


def alarms(part: Component) -> list[Component]:
    return [sub for sub in part.subcomponents if sub.name == "VALARM"]


def block(alarm: Component) -> str:
    return bytes(alarm.to_ical()).decode().replace("\r\n ", "")


def foreign(stem: str) -> tuple[list[str], list[str]]:
    """What the app added: the properties followupd did not write, and the alarms not its own."""
    item = item_for(stem)
    written = set(own_lines(part_of(ical.document(item, ZONE), uid(item.key))))
    changed = part_of(corpus(stem), uid(item.key))
    lines = [line for line in own_lines(changed) if line not in written]
    ours = ical.alarm_uid(item.uid)
    return (
        [line for line in lines if name_of(line) not in OWNED],
        [block(alarm) for alarm in alarms(changed) if str(alarm.get("UID", "")) != ours],
    )


def test_the_corpus_covers_every_file() -> None:
    assert {path.stem for path in CORPUS.glob("*.ics")} == set(CASES)


@pytest.mark.parametrize("stem", sorted(CASES))
def test_what_followupd_wrote_reads_as_no_answer(stem: str) -> None:
    item = item_for(stem)
    (seen,) = items_seen(ical.document(item, ZONE), ZONE)
    assert seen.uid == uid(item.key)
    assert user_action(seen, item.due_at) == NoAction()


@pytest.mark.parametrize("stem", sorted(CASES))
def test_what_the_app_did_is_read(stem: str) -> None:
    item = item_for(stem)
    (seen,) = items_seen(corpus(stem), ZONE)
    assert seen.uid == uid(item.key)
    assert seen.kind == ("event" if item.meeting else "task")
    assert user_action(seen, item.due_at) == CASES[stem].action


def test_a_uid_folded_across_lines_is_still_followupds() -> None:
    """RFC 5545 folds a long line anywhere, even inside "@followupd"."""
    text = corpus("todoman-completed").decode()
    uid_line = next(line for line in text.splitlines() if line.startswith("UID:"))
    at = uid_line.index("@followupd") + 3
    folded = text.replace(uid_line, uid_line[:at] + "\r\n " + uid_line[at:])
    assert folded != text
    (seen,) = items_seen(folded, ZONE)
    assert seen.uid == uid_line.removeprefix("UID:")
    assert items_seen(text.replace("@followupd", "@elsewhere"), ZONE) == []


@pytest.mark.parametrize("stem", sorted(CASES))
def test_an_update_keeps_what_the_app_added(stem: str) -> None:
    """The rewrite of a put-off item keeps its date; any other is the next reminder, reopened."""
    item = item_for(stem)
    action = CASES[stem].action
    match action:
        case Snoozed(until=until):
            keep: datetime | None = until
            rewritten = replace(item, summary=item.summary + " (2e relance)", sequence=0)
        case _:
            keep = None
            rewritten = replace(item, due_at=DUE + timedelta(days=7), sequence=0)
    rewritten = replace(rewritten, stamp=paris(2026, 12, 10, 12))
    due = keep or rewritten.due_at
    before = part_of(corpus(stem), uid(item.key))
    out = rewritten_by_followupd(corpus(stem), rewritten, ZONE, keep)
    after = part_of(out, uid(item.key))

    kept_lines, kept_alarms = foreign(stem)
    dropped = CASES[stem].dropped
    assert kept_lines or kept_alarms  # every app leaves something of its own
    assert all(any(mark in text for text in kept_lines + kept_alarms) for mark in dropped)
    lines, blocks = own_lines(after), [block(alarm) for alarm in alarms(after)]
    for line in kept_lines:
        assert (line in lines) != any(mark in line for mark in dropped), line
    for alarm in kept_alarms:
        assert (alarm in blocks) != any(mark in alarm for mark in dropped), alarm

    (seen,) = items_seen(out, ZONE)
    assert seen.due == due
    assert user_action(seen, due) == NoAction()
    assert str(get(after, "SUMMARY")) == rewritten.summary
    assert seen.status == ("TENTATIVE" if item.meeting else "NEEDS-ACTION")
    assert "COMPLETED" not in after and "PERCENT-COMPLETE" not in after
    assert int(get(after, "SEQUENCE")) == int(before.get("SEQUENCE", 0)) + 1
    assert get(after, "DTSTAMP").dt == rewritten.stamp
    own = [alarm for alarm in alarms(after) if alarm.get("UID") == ical.alarm_uid(item.uid)]
    assert [get(alarm, "TRIGGER").dt for alarm in own] == [due.astimezone(UTC)]
    assert "ACKNOWLEDGED" not in own[0]  # a new reminder, not seen yet
    if item.meeting:  # moved or not, the meeting keeps the length the user gave it
        length = get(before, "DTEND").dt - get(before, "DTSTART").dt
        assert get(after, "DTEND").dt - get(after, "DTSTART").dt == length
    else:  # a task's DTSTART is its DUE, of the same type
        assert get(after, "DTSTART").to_ical() == get(after, "DUE").to_ical()


def test_a_task_is_written_for_every_app() -> None:
    """DTSTART beside DUE, an absolute alarm in UTC tagged with its UID, no recurrence."""
    item = item_for("written")
    part = part_of(ical.document(item, ZONE), uid(item.key))
    assert get(part, "DTSTART").dt == get(part, "DUE").dt == DUE
    (alarm,) = alarms(part)
    assert str(get(alarm, "UID")) == ical.alarm_uid(item.uid)
    assert get(alarm, "TRIGGER").params["VALUE"] == "DATE-TIME"
    assert (
        get(alarm, "TRIGGER").dt == DUE and get(alarm, "TRIGGER").to_ical() == b"20261210T080000Z"
    )
    assert "RRULE" not in part


def test_an_event_the_user_invited_someone_to_is_never_rewritten_nor_closed() -> None:
    """Their meeting now: a server that schedules would send each change to the guest."""
    item = item_for("apple-calendar-moved")
    text = corpus("apple-calendar-moved").decode()
    invited = text.replace(
        f"UID:{item.uid}\r\n",
        f"UID:{item.uid}\r\nATTENDEE;PARTSTAT=ACCEPTED:mailto:jeanne.dupont@acme.example\r\n",
    )
    assert invited != text
    assert ical.updated(invited, item, ZONE, None) is None
    assert ical.close(invited, CalendarState.CANCELLED, DUE, "followupd: meeting held")[1] is False
    assert ical.updated(text, item, ZONE, None) is not None, "without a guest: followupd's"
    assert ical.close(text, CalendarState.CANCELLED, DUE, "followupd: meeting held")[1] is True


def test_a_meeting_moved_by_followupd_keeps_its_length() -> None:
    item = item_for("apple-calendar-moved")
    later = replace(item, due_at=DUE + timedelta(days=7))
    after = part_of(
        rewritten_by_followupd(corpus("apple-calendar-moved"), later, ZONE, None), uid(item.key)
    )
    assert get(after, "DTSTART").dt == later.due_at
    assert get(after, "DTEND").dt - get(after, "DTSTART").dt == timedelta(hours=1)


def test_an_unchanged_alarm_stays_acknowledged() -> None:
    """Rewritten at the same time, followupd's alarm keeps the ACKNOWLEDGED the user gave it."""
    stem = "apple-calendar-snoozed"
    item = item_for(stem)
    after = part_of(rewritten_by_followupd(corpus(stem), item, ZONE, None), uid(item.key))
    own = [alarm for alarm in alarms(after) if alarm.get("UID") == ical.alarm_uid(item.uid)]
    assert [get(alarm, "ACKNOWLEDGED").dt for alarm in own] == [utc(2026, 12, 10, 8, 2, 28)]
    # the snooze alarm fires after followupd's, which did not move: it is the user's to keep
    assert any("RELTYPE=SNOOZE" in block(alarm) for alarm in alarms(after))


def test_a_closed_item_loses_its_alarm_only() -> None:
    stem = "evolution-cancelled"
    item = item_for(stem)
    done = replace(item, status=CalendarState.COMPLETED, completed_at=paris(2026, 12, 9, 17))
    after = part_of(rewritten_by_followupd(corpus(stem), done, ZONE, None), uid(item.key))
    assert [str(get(alarm, "DESCRIPTION")) for alarm in alarms(after)] == ["La veille"]
    assert str(get(after, "STATUS")) == "COMPLETED" and int(get(after, "PERCENT-COMPLETE")) == 100
    assert get(after, "COMPLETED").dt == paris(2026, 12, 9, 17)


def test_an_update_needs_the_item_in_the_object() -> None:
    with pytest.raises(ValueError, match="no VTODO or VEVENT"):
        rewritten_by_followupd(corpus("todoman-completed"), item_for("elsewhere"), ZONE, None)


def seen(**fields: Any) -> ItemSeen:
    blank = ItemSeen(uid="k@followupd", kind="task", status="NEEDS-ACTION", completed=False,
                     completed_at=None, cancelled=False, due=DUE, snoozed_until=None)  # fmt: skip
    return replace(blank, **fields)


@pytest.mark.parametrize(
    ("fields", "action"),
    [
        ({"completed": True, "cancelled": True}, Completed(at=None)),
        ({"completed": True, "due": DUE + timedelta(days=2)}, Completed(at=None)),
        ({"cancelled": True, "due": DUE + timedelta(days=2)}, Dismissed()),
        ({"due": DUE - timedelta(hours=1)}, NoAction()),
        (
            {"due": DUE - timedelta(hours=1), "snoozed_until": DUE + timedelta(hours=2)},
            Snoozed(until=DUE + timedelta(hours=2)),
        ),
        (
            {"due": DUE + timedelta(days=1), "snoozed_until": DUE + timedelta(hours=2)},
            Snoozed(until=DUE + timedelta(days=1)),
        ),
        ({"snoozed_until": DUE - timedelta(minutes=5)}, NoAction()),
        ({"due": None, "completed": None, "cancelled": None}, NoAction()),
    ],
)
def test_what_each_sign_says(fields: dict[str, Any], action: UserAction) -> None:
    assert user_action(seen(**fields), DUE) == action


def test_thunderbird_snoozes_one_occurrence_by_its_own_property() -> None:
    text = corpus("thunderbird-snoozed").replace(
        b"X-MOZ-SNOOZE-TIME:", b"X-MOZ-SNOOZE-TIME-1796889600000000:"
    )
    (found,) = items_seen(text, ZONE)
    assert found.snoozed_until == utc(2026, 12, 11, 8)


def test_one_unreadable_property_loses_that_field_only() -> None:
    text = corpus("todoman-due-moved").replace(b"DUE:20261212T100000", b"DUE:next week")
    text = text.replace(b"PRODID:io.barrera.todoman", b"PRODID:x\r\nX-MOZ-SNOOZE-TIME:soon")
    text = text.replace(b"STATUS:NEEDS-ACTION", b"STATUS:NEEDS-ACTION\r\nX-MOZ-SNOOZE-TIME:soon")
    (found,) = items_seen(text, ZONE)
    assert found.due is None and found.snoozed_until is None
    assert (found.status, found.completed, found.cancelled) == ("NEEDS-ACTION", False, False)


def test_only_followupds_items_are_read() -> None:
    text = corpus("thunderbird-completed").replace(b"@followupd", b"@example.com")
    assert items_seen(text, ZONE) == []
    assert items_seen(b"\xff\xfe not a calendar", ZONE) == []


SEEDS = [corpus(stem) for stem in sorted(CASES)]


@st.composite
def mangled(draw: st.DrawFn) -> bytes:
    """A corpus document with lines dropped, doubled, cut or changed, or random bytes."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=400))
    lines = draw(st.sampled_from(SEEDS)).split(b"\r\n")
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, len(lines) - 1))
        how = draw(st.integers(0, 4))
        if how == 0:
            del lines[at]
        elif how == 1:
            lines.insert(at, lines[at])
        elif how == 2:
            lines[at] = lines[at][: draw(st.integers(0, len(lines[at])))]
        elif how == 3:
            name = lines[at].split(b":", 1)[0]
            lines[at] = name + b":" + draw(st.binary(max_size=30))
        else:
            lines.insert(at, draw(st.sampled_from(NOISE)))
    return b"\r\n".join(lines)


NOISE = [
    b"DUE;VALUE=DATE:20261399", b"COMPLETED:yesterday", b"PERCENT-COMPLETE:all",
    b"X-MOZ-SNOOZE-TIME:20261399T250000Z", b"DTSTART;TZID=Mars/Olympus:20261210T090000",
    b"BEGIN:VALARM", b"END:VALARM", b"RELATED-TO;RELTYPE=SNOOZE:x", b"TRIGGER;VALUE=DATE-TIME:x",
    b"STATUS", b"UID:other@followupd", b"BEGIN:VTODO", b"END:VEVENT",
]  # fmt: skip


FUZZ = settings(
    max_examples=examples_asked(200),
    derandomize=True,  # the same examples on every run, in CI and here
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@FUZZ
@given(mangled())
def test_items_seen_never_raises(data: bytes) -> None:
    found = items_seen(data, ZONE)
    assert all(isinstance(item, ItemSeen) and item.uid.endswith("@followupd") for item in found)
    for item in found:
        for when in (item.due, item.completed_at, item.snoozed_until):
            assert when is None or when.tzinfo is not None


@FUZZ
@given(mangled(), st.sampled_from(sorted(CASES)), st.booleans())
def test_updated_rewrites_or_says_why(data: bytes, stem: str, keeping: bool) -> None:
    """A stored object the rewrite cannot take ends in ValueError, the one error it documents."""
    keep = paris(2026, 12, 20, 9) if keeping else None
    try:
        out = rewritten_by_followupd(data, item_for(stem), ZONE, keep)
    except ValueError:
        return
    found = [item for item in items_seen(out, ZONE) if item.uid == uid(f"corpus:{stem}")]
    assert found and found[0].due == (keep or DUE)  # the first of the UID is the one rewritten


def test_the_sequence_only_rises_and_the_users_progress_stays() -> None:
    stem = "thunderbird-due-earlier"
    item = item_for(stem)
    text = corpus(stem).replace(b"X-MOZ-GENERATION:1", b"X-MOZ-GENERATION:1\r\nPERCENT-COMPLETE:40")
    after = part_of(
        rewritten_by_followupd(text, replace(item, sequence=5), ZONE, None), uid(item.key)
    )
    assert int(get(after, "SEQUENCE")) == 5  # above the stored 0 + 1
    assert int(get(after, "PERCENT-COMPLETE")) == 40  # a task under way is not done


def test_an_apps_copy_of_the_alarm_is_found_at_the_due_followupd_wrote_before() -> None:
    """tasks.org moved the due to a day and copied the alarm without its UID; a later period
    of the reminder comes while the user's date is ahead: the copy goes, the app's own stays."""
    stem = "tasksorg-due-allday"
    next_period = replace(item_for(stem), due_at=DUE + timedelta(days=1))
    until = paris(2026, 12, 14)
    after = part_of(
        rewritten_by_followupd(corpus(stem), next_period, ZONE, until, [DUE]), next_period.uid
    )
    triggers = sorted(block(alarm).split("TRIGGER")[1].split("\r\n")[0] for alarm in alarms(after))
    assert triggers == [";VALUE=DATE-TIME:20261213T230000Z"], "followupd's, at the user's date"
    kept = part_of(rewritten_by_followupd(corpus(stem), next_period, ZONE, until), next_period.uid)
    assert TASKSORG_COPY in "".join(block(alarm) for alarm in alarms(kept)), "unknown: kept"
