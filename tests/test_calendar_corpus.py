"""A corpus of odd calendar objects, as real apps write them: read one by one, then synced.

Outlook and Exchange name zones the Windows way ("Romance Standard Time"),
with or without the VTIMEZONE that defines them; Google cancels and moves
occurrences of a weekly meeting, and invites to a single occurrence; Apple
writes floating times and leaves DTEND out; Thunderbird writes DURATION;
old desktop apps write Windows-1252; sync tools leave broken lines, control
characters and impossible dates. Each object either gives the events and
tasks it means, in exact aware times, or is refused with a reason that says
what is wrong (UnreadableObject); nothing else is ever raised.

Against a real Radicale, the whole corpus sits in a read calendar next to
valid mission events and meetings: one sync applies what is valid and lists
every object it cannot use, with its URL and the reason. Radicale refuses
some objects on PUT (it parses them with vobject); written into its storage
folder instead, they are never served (see the tests below for what that
means for followupd).
"""

from __future__ import annotations

import base64
import http.client
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import radicale.config
from dateutil.rrule import _iterinfo
from sqlalchemy import select

from followupd.config.load import parse_settings
from followupd.config.settings import Settings
from followupd.errors import ServiceUnavailable
from followupd.sources.caldav import conventions
from followupd.sources.caldav.sync import SyncReport, sync_calendars
from followupd.sources.files.importer import import_files
from followupd.sources.ical.happenings import Happening, ReadObject, UnreadableObject
from followupd.sources.ical.read import MAX_OCCURRENCES, read_object
from followupd.sources.ical.vtimezone import CYCLE, without_iana_definitions
from followupd.store.db import Store
from followupd.store.models import CalendarObject, Mission, Touchpoint
from tests.conftest import MINIMAL_CONFIG
from tests.davserver import PASSWORD, PASSWORD_VARIABLE, USER, CalendarApp, DavServer, dav_server
from tests.rulekit import ACME, PARIS, paris

# -- the corpus --------------------------------------------------------------------------


def _ics(text: str) -> str:
    """A corpus entry with CRLF line endings, as apps send them."""
    return text.replace("\r\n", "\n").replace("\n", "\r\n")


def _folded(name: str, value: str) -> str:
    """A long property folded every 74 characters, as apps fold it."""
    line = f"{name}:{value}"
    return "\n ".join(line[i : i + 74] for i in range(0, len(line), 74)) + "\n"


ROMANCE_STANDARD_TIME = """\
BEGIN:VTIMEZONE
TZID:Romance Standard Time
BEGIN:STANDARD
DTSTART:16010101T030000
TZOFFSETFROM:+0200
TZOFFSETTO:+0100
RRULE:FREQ=YEARLY;INTERVAL=1;BYDAY=-1SU;BYMONTH=10
END:STANDARD
BEGIN:DAYLIGHT
DTSTART:16010101T020000
TZOFFSETFROM:+0100
TZOFFSETTO:+0200
RRULE:FREQ=YEARLY;INTERVAL=1;BYDAY=-1SU;BYMONTH=3
END:DAYLIGHT
END:VTIMEZONE
"""
PARIS_VTIMEZONE = """\
BEGIN:VTIMEZONE
TZID:Europe/Paris
X-LIC-LOCATION:Europe/Paris
BEGIN:DAYLIGHT
TZOFFSETFROM:+0100
TZOFFSETTO:+0200
TZNAME:CEST
DTSTART:19700329T020000
RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU
END:DAYLIGHT
BEGIN:STANDARD
TZOFFSETFROM:+0200
TZOFFSETTO:+0100
TZNAME:CET
DTSTART:19701025T030000
RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU
END:STANDARD
END:VTIMEZONE
"""
HUGE_DESCRIPTION = "Compte rendu détaillé, ligne à ligne. " * 30_000  # about 1.2 MB

_WRITTEN: dict[str, str] = {
    # Outlook / Exchange: a Windows zone name, with the VTIMEZONE that defines it
    "outlook-windows-zone": """\
BEGIN:VCALENDAR
METHOD:PUBLISH
PRODID:Microsoft Exchange Server 2010
VERSION:2.0
X-WR-CALNAME:Calendrier
"""
    + ROMANCE_STANDARD_TIME
    + """\
BEGIN:VEVENT
ORGANIZER;CN=Claire Martin:mailto:claire@cabinet.example
ATTENDEE;ROLE=REQ-PARTICIPANT;PARTSTAT=NEEDS-ACTION;RSVP=TRUE;CN=Paul Roux:mai
 lto:paul.roux@other.example
DESCRIPTION;LANGUAGE=fr-FR:\\n
UID:040000008200E00074C5B7101A82E0080000000010E5A1B3C4F1DA0100000000000000001000
 0000A1B2C3D4E5F60718293A4B5C6D7E8F90
SUMMARY;LANGUAGE=fr-FR:Comité de pilotage
DTSTART;TZID=Romance Standard Time:20261203T100000
DTEND;TZID=Romance Standard Time:20261203T113000
CLASS:PUBLIC
PRIORITY:5
DTSTAMP:20261120T083000Z
TRANSP:OPAQUE
STATUS:CONFIRMED
SEQUENCE:0
LOCATION;LANGUAGE=fr-FR:Salle Eiffel
X-MICROSOFT-CDO-APPT-SEQUENCE:0
X-MICROSOFT-CDO-BUSYSTATUS:BUSY
X-MICROSOFT-CDO-INTENDEDSTATUS:BUSY
X-MICROSOFT-CDO-ALLDAYEVENT:FALSE
X-MICROSOFT-CDO-IMPORTANCE:1
X-MICROSOFT-CDO-INSTTYPE:0
X-MICROSOFT-DISALLOW-COUNTER:FALSE
BEGIN:VALARM
DESCRIPTION:REMINDER
TRIGGER;RELATED=START:-PT15M
ACTION:DISPLAY
END:VALARM
END:VEVENT
END:VCALENDAR
""",
    # Exchange through a sync tool: the Windows name, quoted, and no VTIMEZONE
    "exchange-windows-zone-alone": """\
BEGIN:VCALENDAR
PRODID:Microsoft Exchange Server 2010
VERSION:2.0
BEGIN:VEVENT
UID:AAMkAGI2TG93AAA=
SUMMARY:Revue budget
DTSTART;TZID="Romance Standard Time":20261204T140000
DTEND;TZID="Romance Standard Time":20261204T150000
DTSTAMP:20261120T083000Z
X-MICROSOFT-CDO-ALLDAYEVENT:FALSE
END:VEVENT
END:VCALENDAR
""",
    # Outlook 2016 export: the zone's display name as TZID, in summer
    "outlook-display-zone-name": """\
BEGIN:VCALENDAR
PRODID:-//Microsoft Corporation//Outlook 16.0 MIMEDIR//EN
VERSION:2.0
METHOD:PUBLISH
BEGIN:VTIMEZONE
TZID:(UTC+01:00) Brussels\\, Copenhagen\\, Madrid\\, Paris
BEGIN:STANDARD
DTSTART:16011028T030000
RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=10
TZOFFSETFROM:+0200
TZOFFSETTO:+0100
END:STANDARD
BEGIN:DAYLIGHT
DTSTART:16010325T020000
RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=3
TZOFFSETFROM:+0100
TZOFFSETTO:+0200
END:DAYLIGHT
END:VTIMEZONE
BEGIN:VEVENT
CLASS:PUBLIC
DTSTART;TZID="(UTC+01:00) Brussels, Copenhagen, Madrid, Paris":20260702T100
 000
DTEND;TZID="(UTC+01:00) Brussels, Copenhagen, Madrid, Paris":20260702T12000
 0
DTSTAMP:20260620T101500Z
UID:outlook-display-zone-name-1
SUMMARY;LANGUAGE=fr:Atelier d'été
X-MICROSOFT-CDO-BUSYSTATUS:BUSY
END:VEVENT
END:VCALENDAR
""",
    # Google: weekly, one Monday cancelled (EXDATE), one moved to Tuesday (RECURRENCE-ID)
    "google-weekly-exdate-moved": """\
BEGIN:VCALENDAR
PRODID:-//Google Inc//Google Calendar 70.9054//EN
VERSION:2.0
CALSCALE:GREGORIAN
X-WR-TIMEZONE:Europe/Paris
"""
    + PARIS_VTIMEZONE
    + """\
BEGIN:VEVENT
DTSTART;TZID=Europe/Paris:20261102T093000
DTEND;TZID=Europe/Paris:20261102T100000
RRULE:FREQ=WEEKLY;BYDAY=MO
EXDATE;TZID=Europe/Paris:20261116T093000
DTSTAMP:20261101T080000Z
UID:7kukuqrfedlm2f9t0vbhd9m2ss@google.com
CREATED:20261020T101010Z
LAST-MODIFIED:20261101T080000Z
SEQUENCE:1
STATUS:CONFIRMED
SUMMARY:Point hebdo [acme-audit]
TRANSP:OPAQUE
END:VEVENT
BEGIN:VEVENT
DTSTART;TZID=Europe/Paris:20261124T110000
DTEND;TZID=Europe/Paris:20261124T113000
DTSTAMP:20261101T080000Z
UID:7kukuqrfedlm2f9t0vbhd9m2ss@google.com
RECURRENCE-ID;TZID=Europe/Paris:20261123T093000
SEQUENCE:2
STATUS:CONFIRMED
SUMMARY:Point hebdo [acme-audit] (décalé)
END:VEVENT
END:VCALENDAR
""",
    # Apple: daily until a UTC instant, one day cancelled by an EXDATE in UTC
    "apple-daily-exdate-utc": """\
BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//Apple Inc.//macOS 14.5//EN
CALSCALE:GREGORIAN
"""
    + PARIS_VTIMEZONE
    + """\
BEGIN:VEVENT
UID:9D3E7A52-0C1B-4B8E-A7F4-5E6D2C1B0A99
DTSTAMP:20261120T083000Z
DTSTART;TZID=Europe/Paris:20261125T083000
DTEND;TZID=Europe/Paris:20261125T090000
RRULE:FREQ=DAILY;UNTIL=20261129T073000Z
EXDATE:20261127T073000Z
SUMMARY:Stand-up [acme-audit]
SEQUENCE:0
END:VEVENT
END:VCALENDAR
""",
    # Google: invited to one occurrence of someone else's series: a RECURRENCE-ID alone
    "google-single-occurrence-invite": """\
BEGIN:VCALENDAR
PRODID:-//Google Inc//Google Calendar 70.9054//EN
VERSION:2.0
CALSCALE:GREGORIAN
BEGIN:VEVENT
DTSTART:20261126T130000Z
DTEND:20261126T140000Z
DTSTAMP:20261120T083000Z
ORGANIZER;CN=Jeanne Dupont:mailto:jeanne.dupont@acme.example
UID:1h2j3k4l5m6n7o8p9q0r@google.com
RECURRENCE-ID:20261126T130000Z
ATTENDEE;CUTYPE=INDIVIDUAL;ROLE=REQ-PARTICIPANT;PARTSTAT=ACCEPTED;CN=claire@c
 abinet.example;X-NUM-GUESTS=0:mailto:claire@cabinet.example
SEQUENCE:0
STATUS:CONFIRMED
SUMMARY:Comité ACME
TRANSP:OPAQUE
END:VEVENT
END:VCALENDAR
""",
    # Apple: a floating time (no zone), read in the owner's zone
    "apple-floating": """\
BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//Apple Inc.//macOS 14.5//EN
CALSCALE:GREGORIAN
BEGIN:VEVENT
CREATED:20261120T083000Z
UID:5A1C0D7E-3B8F-4E2A-9C61-0F2D8E7B4A10
DTSTART:20261130T100000
DTEND:20261130T110000
SUMMARY:Dentiste
DTSTAMP:20261120T083000Z
SEQUENCE:0
X-APPLE-TRAVEL-ADVISORY-BEHAVIOR:AUTOMATIC
END:VEVENT
END:VCALENDAR
""",
    # Apple: a time with neither DTEND nor DURATION: an instant
    "apple-no-dtend-time": """\
BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//Apple Inc.//iOS 17.5//EN
"""
    + PARIS_VTIMEZONE
    + """\
BEGIN:VEVENT
UID:0E9A4B1C-77D2-4F0B-8E8E-2B6C1A9F3D55
DTSTAMP:20261120T083000Z
DTSTART;TZID=Europe/Paris:20261201T090000
SUMMARY:Appeler le notaire
END:VEVENT
END:VCALENDAR
""",
    # a date with no DTEND: that one day
    "no-dtend-date": """\
BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//Apple Inc.//iOS 17.5//EN
BEGIN:VEVENT
UID:2B7F0D4E-1A3C-4C55-9D0E-6E8A1F2B3C4D
DTSTAMP:20261120T083000Z
DTSTART;VALUE=DATE:20261208
SUMMARY:Journée sans réunion
END:VEVENT
END:VCALENDAR
""",
    # Thunderbird: DURATION instead of DTEND
    "thunderbird-duration": """\
BEGIN:VCALENDAR
PRODID:-//Mozilla.org/NONSGML Mozilla Calendar V1.1//EN
VERSION:2.0
"""
    + PARIS_VTIMEZONE
    + """\
BEGIN:VEVENT
CREATED:20261120T083000Z
LAST-MODIFIED:20261120T083000Z
DTSTAMP:20261120T083000Z
UID:b5f0f1d2-8a6e-4e73-a2f4-0d3c5e6f7a81
SUMMARY:Revue de code
DTSTART;TZID=Europe/Paris:20261202T140000
DURATION:PT1H30M
TRANSP:OPAQUE
X-MOZ-GENERATION:1
END:VEVENT
END:VCALENDAR
""",
    # Google: all day over three days (DTEND is the day after the last)
    "google-all-day-three-days": """\
BEGIN:VCALENDAR
PRODID:-//Google Inc//Google Calendar 70.9054//EN
VERSION:2.0
BEGIN:VEVENT
DTSTART;VALUE=DATE:20261214
DTEND;VALUE=DATE:20261217
DTSTAMP:20261120T083000Z
UID:3q0jv7bq9t5m1o8k2r6s4u0w1y@google.com
SUMMARY:Séminaire à Lyon
TRANSP:TRANSPARENT
END:VEVENT
END:VCALENDAR
""",
    # a TZID nobody defines: Outlook's "Customized Time Zone", its VTIMEZONE lost
    "unknown-zone": """\
BEGIN:VCALENDAR
PRODID:-//Microsoft Corporation//Outlook 16.0 MIMEDIR//EN
VERSION:2.0
BEGIN:VEVENT
UID:customized-zone-1
DTSTAMP:20261120T083000Z
SUMMARY:Appel fournisseur
DTSTART;TZID="Customized Time Zone":20261130T160000
DTEND;TZID="Customized Time Zone":20261130T163000
END:VEVENT
END:VCALENDAR
""",
    "dtend-before-dtstart": """\
BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//Some sync tool//EN
BEGIN:VEVENT
UID:backwards-1
DTSTAMP:20261120T083000Z
SUMMARY:Fin avant le début
DTSTART:20261203T150000Z
DTEND:20261203T140000Z
END:VEVENT
END:VCALENDAR
""",
    # a line that is no property at all, inside the event
    "garbage-line": """\
BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//Some sync tool//EN
BEGIN:VEVENT
UID:garbage-line-1
DTSTAMP:20261120T083000Z
SUMMARY:Ligne cassée
this line lost its property name
DTSTART:20261130T100000Z
DTEND:20261130T110000Z
END:VEVENT
END:VCALENDAR
""",
    "bad-dtstart": """\
BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//Some sync tool//EN
BEGIN:VEVENT
UID:bad-dtstart-1
DTSTAMP:20261120T083000Z
SUMMARY:Date impossible
DTSTART:20261345T250000Z
END:VEVENT
END:VCALENDAR
""",
    "no-dtstart": """\
BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//Some sync tool//EN
BEGIN:VEVENT
UID:no-dtstart-1
DTSTAMP:20261120T083000Z
SUMMARY:Quand ?
END:VEVENT
END:VCALENDAR
""",
    # a download cut short: no END lines
    "truncated": """\
BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//Some sync tool//EN
BEGIN:VEVENT
UID:truncated-1
DTSTAMP:20261120T083000Z
SUMMARY:Coupé
DTSTART:20261130T100000Z
""",
    # Lotus Notes: the last day there is, for "never"
    "year-9999": """\
BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//Lotus Development Corporation//NONSGML Notes 9.0//EN
BEGIN:VEVENT
UID:year-9999-1
DTSTAMP:20261120T083000Z
DTSTART;VALUE=DATE:99991231
SUMMARY:Jamais
END:VEVENT
END:VCALENDAR
""",
    "bad-rrule": """\
BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//Some sync tool//EN
BEGIN:VEVENT
UID:bad-rrule-1
DTSTAMP:20261120T083000Z
SUMMARY:Tous les quinze jours
DTSTART:20261102T090000Z
DTEND:20261102T100000Z
RRULE:FREQ=FORTNIGHTLY
END:VEVENT
END:VCALENDAR
""",
    # a rule nobody means: expanding it over a window would take minutes
    "every-second": """\
BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//Some sync tool//EN
BEGIN:VEVENT
UID:every-second-1
DTSTAMP:20261120T083000Z
DTSTART:20261125T083000Z
DTEND:20261125T083001Z
RRULE:FREQ=SECONDLY
SUMMARY:Tic
END:VEVENT
END:VCALENDAR
""",
    "hourly-reminder": """\
BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//Some reminder app//EN
BEGIN:VEVENT
UID:hourly-1
DTSTAMP:20261120T083000Z
DTSTART:20260901T000000Z
DTEND:20260901T000500Z
RRULE:FREQ=HOURLY
SUMMARY:Boire de l'eau
END:VEVENT
END:VCALENDAR
""",
    # Apple Reminders: a task ticked off, with COMPLETED but no STATUS
    "apple-task-completed-no-status": """\
BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//Apple Inc.//iOS 17.5//EN
BEGIN:VTODO
UID:4F6E2C1A-9B8D-4E7F-A0B1-C2D3E4F5A6B7
DTSTAMP:20261202T150500Z
CREATED:20261125T090000Z
SUMMARY:Relancer ACME
COMPLETED:20261202T150000Z
PERCENT-COMPLETE:100
END:VTODO
END:VCALENDAR
""",
    "no-uid": """\
BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//Some sync tool//EN
BEGIN:VEVENT
DTSTAMP:20261120T083000Z
SUMMARY:Sans UID
DTSTART:20261130T100000Z
DTEND:20261130T110000Z
END:VEVENT
END:VCALENDAR
""",
    "empty-vcalendar": """\
BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//Some sync tool//EN
END:VCALENDAR
""",
    # Evolution: a memo, neither event nor task
    "evolution-memo": """\
BEGIN:VCALENDAR
PRODID:-//Ximian//NONSGML Evolution Calendar//EN
VERSION:2.0
BEGIN:VJOURNAL
UID:20261120T083000Z-1234-1000-1-0@laptop
DTSTAMP:20261120T083000Z
DTSTART;VALUE=DATE:20261120
SUMMARY:Idées pour ACME
END:VJOURNAL
END:VCALENDAR
""",
    # a proxy's error page, stored as if it were the object
    "html-page": """\
<!DOCTYPE html>
<html><head><title>502 Bad Gateway</title></head>
<body><h1>Bad Gateway</h1></body></html>
""",
    "vcard": """\
BEGIN:VCARD
VERSION:3.0
FN:Jeanne Dupont
EMAIL:jeanne.dupont@acme.example
END:VCARD
""",
    "huge-description": """\
BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//Some sync tool//EN
BEGIN:VEVENT
UID:huge-description-1
DTSTAMP:20261120T083000Z
SUMMARY:Compte rendu
DTSTART:20261130T130000Z
DTEND:20261130T140000Z
"""
    + _folded("DESCRIPTION", HUGE_DESCRIPTION)
    + """\
END:VEVENT
END:VCALENDAR
""",
    "odd-characters": """\
BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//Some sync tool//EN
BEGIN:VEVENT
UID:odd-characters-☃-1
DTSTAMP:20261120T083000Z
SUMMARY:Ça\\, c'est déjà l'été 🚀 — 会议 — שלום\u200b — e\u0301
DESCRIPTION:Ligne 1\\nLigne 2\\; point-virgule\\, virgule
CATEGORIES:Réunion,Équipe
DTSTART:20261130T150000Z
DTEND:20261130T160000Z
END:VEVENT
END:VCALENDAR
""",
    # control characters, a NUL among them, as some sync tools leave them
    "control-characters": """\
BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//Some sync tool//EN
BEGIN:VEVENT
UID:control-characters-1
DTSTAMP:20261120T083000Z
SUMMARY:Point\x00 d'étape\x07 [acme-audit]
DTSTART:20261127T100000Z
DTEND:20261127T110000Z
END:VEVENT
END:VCALENDAR
""",
    # written in Windows-1252, not UTF-8 (see ENCODINGS)
    "windows-1252": """\
BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//Old desktop app//EN
BEGIN:VEVENT
UID:windows-1252-1
DTSTAMP:20261120T083000Z
SUMMARY:Réunion d'équipe – bilan
DTSTART:20261130T080000Z
DTEND:20261130T090000Z
END:VEVENT
END:VCALENDAR
""",
    # an Outlook export: a byte order mark first
    "utf-8-bom": """\
\ufeffBEGIN:VCALENDAR
PRODID:-//Microsoft Corporation//Outlook 16.0 MIMEDIR//EN
VERSION:2.0
BEGIN:VEVENT
UID:utf-8-bom-1
DTSTAMP:20261120T083000Z
DTSTART:20261201T160000Z
DTEND:20261201T170000Z
SUMMARY:Exporté d'Outlook
END:VEVENT
END:VCALENDAR
""",
}
CORPUS: dict[str, str] = {name: _ics(text) for name, text in _WRITTEN.items()}
ENCODINGS = {"windows-1252": "cp1252"}  # the others are UTF-8


def raw(name: str) -> bytes:
    """A corpus entry as the bytes an app sends."""
    return CORPUS[name].encode(ENCODINGS.get(name, "utf-8"))


# what no reading gives: the reason, in part
UNREADABLE = {
    "bad-dtstart": "event 'bad-dtstart-1' skipped: "
    "DTSTART is not a date or time: '20261345T250000Z'",
    "no-dtstart": "event 'no-dtstart-1' skipped: no DTSTART",
    "truncated": "not valid iCalendar: Found no components where exactly one is required",
    "year-9999": "event 'year-9999-1' skipped: a time out of range, on 9999-12-31",
    "html-page": "not valid iCalendar: "
    "Content line could not be parsed into parts: '<!DOCTYPE html>'",
    "vcard": "not an iCalendar document (no VCALENDAR)",
}
# what holds no event nor task, and is ignored (neither read nor reported): what it holds
UNUSED = {
    "empty-vcalendar": "no event or task in it (an empty VCALENDAR)",
    "evolution-memo": "no event or task in it, only VJOURNAL",
}
READABLE = set(CORPUS) - set(UNREADABLE) - set(UNUSED)

# -- reading each object -----------------------------------------------------------------

WINDOW = (paris(2026, 6, 1), paris(2027, 1, 31))


def read(
    name: str, zone: ZoneInfo = PARIS, window: tuple[datetime, datetime] = WINDOW
) -> ReadObject:
    return read_object(raw(name), zone, window)


def only_event(name: str) -> Happening:
    found = read(name)
    assert len(found.events) == 1, found
    return found.events[0]


def span(event: Happening) -> tuple[datetime, datetime]:
    return event.start, event.end


@pytest.mark.parametrize("name", sorted(READABLE))
def test_each_readable_object_gives_aware_events_or_tasks(name: str) -> None:
    found = read(name)
    assert found.events or found.tasks
    for happening in found.events + found.occurrences:
        assert happening.start.utcoffset() is not None and happening.end.utcoffset() is not None
        assert happening.end >= happening.start


@pytest.mark.parametrize("name", sorted(UNREADABLE))
def test_each_unreadable_object_is_refused_with_what_is_wrong(name: str) -> None:
    """UnreadableObject and nothing else: the sync skips the object and goes on."""
    with pytest.raises(UnreadableObject, match=re.escape(UNREADABLE[name])):
        read(name)


@pytest.mark.parametrize("name", sorted(UNUSED))
def test_an_object_with_no_event_nor_task_is_read_as_empty_and_says_what_it_holds(
    name: str,
) -> None:
    found = read(name)
    assert (found.events, found.tasks, found.unused) == ([], [], UNUSED[name])


def test_the_corpus_is_written_as_apps_write_it() -> None:
    """Every line ends in CRLF, and no bare CR or LF is left inside one."""
    assert set(UNREADABLE) <= set(CORPUS)
    for name, text in CORPUS.items():
        lines = text.split("\r\n")
        assert lines[-1] == "" and not any("\r" in line or "\n" in line for line in lines), name


def test_a_windows_zone_is_resolved_by_its_vtimezone() -> None:
    event = only_event("outlook-windows-zone")
    assert span(event) == (paris(2026, 12, 3, 10), paris(2026, 12, 3, 11, 30))
    assert event.start.utcoffset() == timedelta(hours=1), "winter: +01:00"
    assert event.summary == "Comité de pilotage"
    assert event.attendees == {"paul.roux@other.example", "claire@cabinet.example"}


def test_a_windows_zone_without_vtimezone_is_known_by_its_name() -> None:
    found = read("exchange-windows-zone-alone")
    (event,) = found.events
    assert span(event) == (paris(2026, 12, 4, 14), paris(2026, 12, 4, 15))
    assert event.start.utcoffset() == timedelta(hours=1)
    assert found.notes == [], "Romance Standard Time is a known zone, not a guess"


def test_the_vtimezone_of_an_iana_name_is_not_parsed_and_others_are_kept() -> None:
    """tzdata reads an IANA name: its definition is left out unparsed.

    So a broken line in it, which icalendar refuses in a VTIMEZONE (the whole
    object was refused for it: "not valid iCalendar"), refuses nothing.
    """
    garbled = PARIS_VTIMEZONE.replace("+0100", "+0500").replace(
        "TZNAME:CET\n", "TZNAME:CET\nnot a property at all\n"
    )
    folded = ROMANCE_STANDARD_TIME.replace("TZID:Romance Standard Time\n", "TZID:Europe/Pa\n ris\n")
    text = _ics(
        "BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//test//app//EN\n"
        + garbled
        + ROMANCE_STANDARD_TIME
        + folded
        + "BEGIN:VEVENT\nUID:zones\nDTSTAMP:20261101T000000Z\nSUMMARY:Point\n"
        "DTSTART;TZID=Europe/Paris:20261203T100000\nDTEND;TZID=Romance Standard Time:"
        "20261203T113000\nEND:VEVENT\nEND:VCALENDAR\n"
    )
    kept = without_iana_definitions(text)
    assert "TZID:Europe/Paris\r\n" not in kept and "not a property" not in kept
    assert _ics(ROMANCE_STANDARD_TIME) in kept, "a Windows name's definition is read"
    assert _ics(folded) in kept, "a TZID not on one line is parsed, as before"
    found = read_object(text.encode(), PARIS, WINDOW)
    (event,) = found.events
    assert span(event) == (paris(2026, 12, 3, 10), paris(2026, 12, 3, 11, 30))
    assert event.start.utcoffset() == timedelta(hours=1), "tzdata's Paris, not +05:00"
    assert found.notes == [], "the broken line was in a definition nothing reads"


def test_the_properties_nothing_reads_are_not_parsed() -> None:
    """DTSTAMP, CREATED, VERSION…, alarms are left out unparsed: written wrong, they refuse
    nothing.

    icalendar refuses a VCALENDAR whose own properties it cannot parse, or an
    alarm it cannot ("not valid iCalendar": the whole object was skipped for a
    broken CREATED, or an alarm's TRIGGER).
    """
    text = _ics(
        "BEGIN:VCALENDAR\nVERSION;:\nPRODID:-//test//app//EN\nCREATED:not a time\n"
        "BEGIN:VEVENT\nUID:unread\nDTSTAMP:20261101T000000Z\nLAST-MODIFIED:yesterday\n"
        'SUMMARY:Point [acme-audit]\nCLASS;X="unterminated:PUBLIC\nSEQUENCE:2\n'
        + _folded("DTSTAMP", "20261101T000000Z" * 6)
        + "DTSTART;TZID=Europe/Paris:20261203T100000\nDTEND;TZID=Europe/Paris:20261203T110000\n"
        "BEGIN:VALARM\nACTION:DISPLAY\nTRIGGER:not a duration\nEND:VALARM\n"
        "END:VEVENT\nEND:VCALENDAR\n"
    )
    found = read_object(text.encode(), PARIS, WINDOW)
    (event,) = found.events
    assert (event.summary, span(event)) == (
        "Point [acme-audit]",
        (paris(2026, 12, 3, 10), paris(2026, 12, 3, 11)),
    )
    assert found.notes == [], "no broken line among those read"


def test_an_outlook_display_name_zone_follows_its_summer_rule() -> None:
    event = only_event("outlook-display-zone-name")
    assert span(event) == (paris(2026, 7, 2, 10), paris(2026, 7, 2, 12))
    assert event.start.utcoffset() == timedelta(hours=2), "summer: +02:00"


def test_a_weekly_meeting_without_its_cancelled_week_and_with_its_moved_one() -> None:
    found = read("google-weekly-exdate-moved", window=(paris(2026, 10, 1), paris(2026, 12, 10)))
    (master,) = found.events
    assert (master.summary, master.recurring) == ("Point hebdo [acme-audit]", True)
    assert [(o.start, o.end, o.summary) for o in found.occurrences] == [
        (paris(2026, 11, 2, 9, 30), paris(2026, 11, 2, 10), "Point hebdo [acme-audit]"),
        (paris(2026, 11, 9, 9, 30), paris(2026, 11, 9, 10), "Point hebdo [acme-audit]"),
        # 16 November: cancelled (EXDATE); 23 November: moved to the 24th, 11:00
        (paris(2026, 11, 24, 11), paris(2026, 11, 24, 11, 30), "Point hebdo [acme-audit] (décalé)"),
        (paris(2026, 11, 30, 9, 30), paris(2026, 11, 30, 10), "Point hebdo [acme-audit]"),
        (paris(2026, 12, 7, 9, 30), paris(2026, 12, 7, 10), "Point hebdo [acme-audit]"),
    ]
    assert all(o.recurring for o in found.occurrences)


def test_an_exdate_in_utc_cancels_the_local_occurrence() -> None:
    found = read("apple-daily-exdate-utc")
    assert [o.start for o in found.occurrences] == [
        paris(2026, 11, 25, 8, 30),
        paris(2026, 11, 26, 8, 30),
        paris(2026, 11, 28, 8, 30),  # the 27th is cancelled; UNTIL is the 29th, 07:30 UTC
        paris(2026, 11, 29, 8, 30),
    ]


def test_an_invitation_to_one_occurrence_is_an_event() -> None:
    """Only a RECURRENCE-ID, no rule: the one meeting the user was invited to."""
    found = read("google-single-occurrence-invite")
    (event,) = found.events
    assert span(event) == (
        datetime(2026, 11, 26, 13, tzinfo=UTC),
        datetime(2026, 11, 26, 14, tzinfo=UTC),
    )
    assert found.occurrences == [event]
    assert "jeanne.dupont@acme.example" in event.attendees, "the organizer takes part"


def test_a_floating_time_is_read_in_the_owners_zone() -> None:
    event = only_event("apple-floating")
    assert span(event) == (paris(2026, 11, 30, 10), paris(2026, 11, 30, 11))
    assert event.start.tzinfo == PARIS
    new_york = ZoneInfo("America/New_York")
    (elsewhere,) = read("apple-floating", zone=new_york).events
    assert elsewhere.start == datetime(2026, 11, 30, 10, tzinfo=new_york)


def test_a_time_without_end_is_an_instant_and_a_date_without_end_one_day() -> None:
    instant = only_event("apple-no-dtend-time")
    assert span(instant) == (paris(2026, 12, 1, 9), paris(2026, 12, 1, 9))
    assert (instant.open_end, instant.all_day) == (True, False)
    assert conventions.is_past(instant, paris(2026, 12, 1, 9))
    assert not conventions.is_past(instant, paris(2026, 12, 1, 8, 59))

    day = only_event("no-dtend-date")
    assert span(day) == (paris(2026, 12, 8), paris(2026, 12, 9))
    assert (day.open_end, day.all_day) == (True, True)
    assert day.first_day == day.last_day == date(2026, 12, 8)


def test_duration_gives_the_end() -> None:
    event = only_event("thunderbird-duration")
    assert span(event) == (paris(2026, 12, 2, 14), paris(2026, 12, 2, 15, 30))
    assert not event.open_end


def test_an_all_day_event_over_days_ends_the_day_before_its_dtend() -> None:
    event = only_event("google-all-day-three-days")
    assert event.all_day
    assert (event.first_day, event.last_day) == (date(2026, 12, 14), date(2026, 12, 16))
    assert event.end == paris(2026, 12, 17)


def test_an_unknown_zone_is_read_in_the_owners_zone_with_one_note() -> None:
    found = read("unknown-zone")
    (event,) = found.events
    assert span(event) == (paris(2026, 11, 30, 16), paris(2026, 11, 30, 16, 30))
    assert found.notes == [
        "event 'customized-zone-1': unknown time zone 'Customized Time Zone', read in Europe/Paris"
    ]


def test_an_end_before_the_start_is_an_instant_and_no_mission_end() -> None:
    found = read("dtend-before-dtstart")
    (event,) = found.events
    at = datetime(2026, 12, 3, 15, tzinfo=UTC)
    assert (event.start, event.end, event.backwards) == (at, at, True)
    assert found.notes == ["event 'backwards-1': ends before it starts; read as an instant"]
    mission = conventions.mission_event(replace(event, summary="[mission] Audit"))
    assert "end" not in mission.fields
    assert "the event ends before it starts: correct its end date" in mission.problems


def test_a_broken_line_is_left_out_with_a_note() -> None:
    found = read("garbage-line")
    (event,) = found.events
    assert (event.summary, event.start) == ("Ligne cassée", datetime(2026, 11, 30, 10, tzinfo=UTC))
    assert found.notes == [
        "VEVENT 'garbage-line-1': a broken line was left out (Content line could not be "
        "parsed into parts: 'this line lost its property name': Invalid content line)"
    ]


def test_a_rule_that_cannot_be_expanded_still_gives_its_first_occurrence() -> None:
    found = read("bad-rrule")
    (event,) = found.events
    assert found.occurrences == [event]
    assert event.start == datetime(2026, 11, 2, 9, tzinfo=UTC)
    assert len(found.notes) == 1 and found.notes[0].startswith("recurrence not expanded (")


def test_a_rule_repeating_every_second_is_not_expanded() -> None:
    with bounded_search():  # expanding it would take minutes
        found = read("every-second")
    assert [o.start for o in found.occurrences] == [datetime(2026, 11, 25, 8, 30, tzinfo=UTC)]
    assert found.notes == [
        "recurrence of 'every-second-1' not expanded: more than 24 times a day"
        "; its first occurrence is read"
    ]


def test_an_hourly_rule_is_read_up_to_a_bound() -> None:
    found = read("hourly-reminder", window=(paris(2026, 9, 11, 9), paris(2026, 12, 10, 9)))
    assert len(found.occurrences) == MAX_OCCURRENCES
    assert found.occurrences[0].start == datetime(2026, 9, 11, 7, tzinfo=UTC)
    assert found.notes == [f"more than {MAX_OCCURRENCES} occurrences; the first ones are read"]


# Rules no day ever matches, as hand edits and sync tools leave them. dateutil looked for
# their next instance up to the year 9999: what reading the object took before, on the
# machine these were written on, ends each line (every other object waited as long).
NEVER_MATCHED = [
    "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30",  # 30 February: 0.3 s
    "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=-30",  # the 30th day from the end of February: 0.3 s
    "FREQ=MONTHLY;BYMONTHDAY=31;BYMONTH=4,6,9,11",  # the 31st of months of 30 days: 0.6 s
    "FREQ=YEARLY;BYYEARDAY=366;BYMONTH=1",  # the 366th day of the year, in January: 0.3 s
    "FREQ=YEARLY;BYWEEKNO=1;BYMONTH=7",  # week 1 in July: 0.4 s
    "FREQ=YEARLY;BYMONTH=5;BYMONTHDAY=3;BYSETPOS=3",  # the 3rd of a set of one day: 0.3 s
    "FREQ=MONTHLY;BYDAY=MO;BYMONTHDAY=1,2,3;BYSETPOS=2",  # 2nd Monday among the 1st-3rd: 0.6 s
    "FREQ=YEARLY;INTERVAL=4;BYMONTH=2;BYMONTHDAY=29",  # 29 February of 2026, 2030...: 0.05 s
    "FREQ=WEEKLY;BYMONTH=4;BYMONTHDAY=31",  # 31 April, week by week: 1.2 s
    "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30",  # 30 February, day by day: 3.9 s
    "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30;COUNT=3",  # COUNT counts instances, so no end: 5.3 s
    "FREQ=DAILY;BYSETPOS=2",  # the 2nd instance of a day that has one: 8.6 s
    "FREQ=HOURLY;BYMONTH=2;BYMONTHDAY=30",  # 30 February, hour by hour: 10.4 s
]


def with_rule(rule: str, start: str, *lines: str) -> bytes:
    """One event of an hour starting at `start` (UTC), repeating by `rule`."""
    body = "\n".join([f"DTSTART:{start}", "DURATION:PT1H", f"RRULE:{rule}", *lines])
    return _ics(
        "BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//Some sync tool//EN\nBEGIN:VEVENT\n"
        f"UID:rule-1\nDTSTAMP:20261120T083000Z\nSUMMARY:Revue\n{body}\nEND:VEVENT\nEND:VCALENDAR\n"
    ).encode()


# The work a read may do, counted rather than timed (a slow machine passes, a search up to
# the year 9999 fails at once): dateutil looks for instances period after period (years,
# months, weeks, days or hours, by FREQ), for a rule up to the year after the window, for
# the rules of a zone (Outlook's start in 1601) up to CYCLE years past their start; and
# through no more periods than the longest search here, 10,899 days from 2016 to 2045.
OUTLOOK_ZONES_START = 1601
MAX_PERIODS = 20_000
DAYSETS = ("ydayset", "mdayset", "wdayset", "ddayset")  # one call a period, by FREQ


class SearchedTooFar(BaseException):
    """Raised in dateutil's search: not an Exception, which the reader would make a note of."""


@dataclass
class Search:
    periods: int = 0
    last_year: int = 0


@contextmanager
def bounded_search(window: tuple[datetime, datetime] = WINDOW) -> Iterator[Search]:
    """Count dateutil's periods of search in the block, and fail once there are too many."""
    search = Search()
    up_to = max(window[1].year + 1, OUTLOOK_ZONES_START + CYCLE)

    def counted(dayset: Callable[..., Any]) -> Callable[..., Any]:
        def period(self: Any, year: int, month: int, day: int) -> Any:
            search.periods += 1
            search.last_year = max(search.last_year, year)
            if year > up_to or search.periods > MAX_PERIODS:
                raise SearchedTooFar(f"{search.periods} periods searched, up to {year}")
            return dayset(self, year, month, day)

        return period

    with pytest.MonkeyPatch.context() as patch:
        for name in DAYSETS:
            patch.setattr(_iterinfo, name, counted(getattr(_iterinfo, name)))
        try:
            yield search
        except SearchedTooFar as error:
            raise AssertionError(f"{error}: more than a read needs") from None


def bounded_read(data: bytes, window: tuple[datetime, datetime] = WINDOW) -> ReadObject:
    """read_object, whose searches must stay within the bounds above."""
    with bounded_search(window):
        return read_object(data, PARIS, window)


def test_the_work_of_a_search_is_counted() -> None:
    """So that the bounds above are not met by counting nothing."""
    with bounded_search() as search:
        read("hourly-reminder")
    assert MAX_OCCURRENCES <= search.periods <= MAX_PERIODS
    assert search.last_year == WINDOW[1].year


@pytest.mark.parametrize("rule", NEVER_MATCHED)
def test_a_rule_no_day_matches_gives_its_dtstart_only_and_at_once(rule: str) -> None:
    """RFC 5545: DTSTART is the first instance of a recurrence set, whatever its rule says.

    So the event is read: its DTSTART is its one occurrence when it falls in the
    window, and it has none when it does not. There is no note: the reader does
    not tell a rule no day matches from one with no instance in the window.
    """
    found = bounded_read(with_rule(rule, "20261102T090000Z"))
    start = datetime(2026, 11, 2, 9, tzinfo=UTC)
    assert [span(o) for o in found.occurrences] == [(start, start + timedelta(hours=1))]
    assert found.notes == [] and found.occurrences[0].recurring

    earlier = bounded_read(with_rule(rule, "20260102T090000Z"))
    assert [e.start for e in earlier.events] == [datetime(2026, 1, 2, 9, tzinfo=UTC)]
    assert (earlier.occurrences, earlier.notes) == ([], [])


def test_a_rule_no_day_matches_keeps_its_rdates_and_exdates() -> None:
    found = bounded_read(
        with_rule(
            "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30",
            "20261102T090000Z",
            "RDATE:20261109T090000Z,20261116T090000Z",
            "EXDATE:20261109T090000Z",
        )
    )
    assert [o.start for o in found.occurrences] == [
        datetime(2026, 11, 2, 9, tzinfo=UTC),
        datetime(2026, 11, 16, 9, tzinfo=UTC),
    ]


@pytest.mark.parametrize(
    ("rule", "start", "window", "instances"),
    [
        # ISO week 53 comes back in 2026, six years later
        (
            "FREQ=YEARLY;BYWEEKNO=53;BYDAY=TH",
            "20201231T090000Z",
            WINDOW,
            [datetime(2026, 12, 31, 9, tzinfo=UTC)],
        ),
        # 29 February on a Monday: 2016, then 2044
        (
            "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=29;BYDAY=MO",
            "20160229T090000Z",
            (paris(2043, 12, 1), paris(2044, 12, 31)),
            [datetime(2044, 2, 29, 9, tzinfo=UTC)],
        ),
        # from a 29 February, every year: only the leap years, up to UNTIL
        (
            "FREQ=YEARLY;UNTIL=20320301T000000Z",
            "20240229T090000Z",
            (paris(2024, 6, 1), paris(2040, 1, 1)),
            [datetime(year, 2, 29, 9, tzinfo=UTC) for year in (2028, 2032)],
        ),
    ],
)
def test_a_rule_matched_rarely_is_read_exactly_and_at_once(
    rule: str, start: str, window: tuple[datetime, datetime], instances: list[datetime]
) -> None:
    found = bounded_read(with_rule(rule, start), window)
    assert [o.start for o in found.occurrences] == instances
    assert found.notes == []


# Zones an object defines (its VTIMEZONE, for a TZID that is no IANA name), whose STANDARD
# rule is no zone's: icalendar had dateutil look for its onsets from 1601 on, up to the
# time read or, for a rule no day matches, the year 9999. What reading the object took
# before ends each line, as for the rules above.
FIVE_THOUSAND_RDATES = _folded(
    "RDATE", ",".join(f"{1601 + n // 2}{'03' if n % 2 else '10'}01T030000" for n in range(5000))
).rstrip("\n")
ROMANCE_STANDARD_RULE = "RRULE:FREQ=YEARLY;INTERVAL=1;BYDAY=-1SU;BYMONTH=10"
NO_ZONES_RULES = {
    # stopped after 150 s, dateutil's cache of the minutes it had gone through at 2 GB
    "minutely": ("RRULE:FREQ=MINUTELY", "its STANDARD rule repeats MINUTELY, not YEARLY"),
    "hourly": ("RRULE:FREQ=HOURLY", "its STANDARD rule repeats HOURLY, not YEARLY"),  # 10.9 s
    "30-february-daily": (  # 3.2 s
        "RRULE:FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30",
        "its STANDARD rule repeats DAILY, not YEARLY",
    ),
    "30-february-yearly": (  # 0.3 s, and read in summer time all year
        "RRULE:FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30",
        "its STANDARD rule matches no day",
    ),
    "5000-rdates": (FIVE_THOUSAND_RDATES, "it lists more than 2000 onsets"),  # 0.25 s
}


def zone_definition(
    tzid: str, standard: str = ROMANCE_STANDARD_RULE, winter: str = "+0100", summer: str = "+0200"
) -> str:
    """A VTIMEZONE as Outlook writes one, the onsets of its STANDARD given by `standard`."""
    return (
        ROMANCE_STANDARD_TIME.replace("Romance Standard Time", tzid)
        .replace(ROMANCE_STANDARD_RULE, standard)
        .replace("+0200", "summer")
        .replace("+0100", winter)
        .replace("summer", summer)
    )


def in_zone(tzid: str, definition: str | None, start: str = "20261203T100000") -> bytes:
    """One Outlook event of an hour at `start` in zone `tzid`, with its `definition`, if any."""
    return _ics(
        "BEGIN:VCALENDAR\nPRODID:-//Microsoft Corporation//Outlook 16.0 MIMEDIR//EN\n"
        f"VERSION:2.0\n{definition or ''}BEGIN:VEVENT\nUID:zoned-1\nDTSTAMP:20261120T083000Z\n"
        f'SUMMARY:Point client\nDTSTART;TZID="{tzid}":{start}\nDURATION:PT1H\n'
        "END:VEVENT\nEND:VCALENDAR\n"
    ).encode()


@pytest.mark.parametrize(("standard", "reason"), NO_ZONES_RULES.values(), ids=NO_ZONES_RULES)
def test_a_zone_of_rules_no_zone_has_is_refused_at_once(standard: str, reason: str) -> None:
    """What its times mean would be a guess: the object is refused, with the reason."""
    definition = zone_definition("Customized Time Zone", standard)
    with pytest.raises(UnreadableObject) as refused:
        bounded_read(in_zone("Customized Time Zone", definition))
    assert str(refused.value) == f"time zone 'Customized Time Zone': {reason}"


@pytest.mark.parametrize(("standard", "reason"), NO_ZONES_RULES.values(), ids=NO_ZONES_RULES)
def test_a_windows_zone_of_rules_no_zone_has_is_read_by_its_name_at_once(
    standard: str, reason: str
) -> None:
    """The name says the zone: Romance Standard Time is Europe/Paris, as with no VTIMEZONE."""
    definition = zone_definition("Romance Standard Time", standard)
    for start, wall in [
        ("20261203T100000", paris(2026, 12, 3, 10)),
        ("20260702T100000", paris(2026, 7, 2, 10)),
    ]:
        found = bounded_read(in_zone("Romance Standard Time", definition, start))
        (event,) = found.events
        assert span(event) == (wall, wall + timedelta(hours=1))
        assert event.start.utcoffset() == wall.utcoffset()
        assert found.notes == [f"time zone 'Romance Standard Time': {reason}; read as Europe/Paris"]


def test_each_object_is_read_in_its_own_definition_of_a_zone() -> None:
    """icalendar kept the first definition of a TZID it met for the whole process, and read
    every later object with that TZID in it, defined otherwise or not at all: no more."""
    paris_like = zone_definition("Customized Time Zone")
    new_york_like = zone_definition("Customized Time Zone", winter="-0500", summer="-0400")
    broken = zone_definition("Customized Time Zone", "RRULE:FREQ=MINUTELY")
    with pytest.raises(UnreadableObject, match="repeats MINUTELY"):
        bounded_read(in_zone("Customized Time Zone", broken))
    for definition, offset in [(paris_like, 1), (new_york_like, -5), (paris_like, 1)]:
        for _ in range(2):  # read again: the zone made for the first is used again, as exact
            found = bounded_read(in_zone("Customized Time Zone", definition))
            (event,) = found.events
            assert event.start.replace(tzinfo=None) == datetime(2026, 12, 3, 10)
            assert (event.start.utcoffset(), found.notes) == (timedelta(hours=offset), [])
    test_an_unknown_zone_is_read_in_the_owners_zone_with_one_note()  # its VTIMEZONE lost

    broken_windows = zone_definition("Romance Standard Time", "RRULE:FREQ=MINUTELY")
    found = bounded_read(in_zone("Romance Standard Time", broken_windows))
    assert found.notes[0].endswith("repeats MINUTELY, not YEARLY; read as Europe/Paris")
    test_a_windows_zone_is_resolved_by_its_vtimezone()
    test_a_windows_zone_without_vtimezone_is_known_by_its_name()


@pytest.mark.parametrize("start", ["20260702T100000", "25000702T100000", "90001203T100000"])
def test_a_zone_an_object_defines_is_read_exactly_in_any_year_and_at_once(start: str) -> None:
    """Outlook's rules from 1601 are Europe/Paris' today, and for good: tzdata says the same.

    The onsets of a zone's observances are listed up to 400 years past the
    last date its definition gives (1601 here), then repeat as the calendar.
    """
    found = bounded_read(
        in_zone("Customized Time Zone", zone_definition("Customized Time Zone"), start)
    )
    (event,) = found.events
    wall = datetime.strptime(start, "%Y%m%dT%H%M%S")
    assert (event.start, found.notes) == (wall.replace(tzinfo=PARIS), [])
    assert event.start.utcoffset() == wall.replace(tzinfo=PARIS).utcoffset()


def test_a_zone_listing_its_onsets_is_read_exactly() -> None:
    """A definition by RDATEs (the changes of a year or two), as some apps write it."""
    definition = """\
BEGIN:VTIMEZONE
TZID:Customized Time Zone
BEGIN:STANDARD
DTSTART:20251026T030000
RDATE:20261025T030000
TZOFFSETFROM:+0200
TZOFFSETTO:+0100
END:STANDARD
BEGIN:DAYLIGHT
DTSTART:20250330T020000
RDATE:20260329T020000
TZOFFSETFROM:+0100
TZOFFSETTO:+0200
END:DAYLIGHT
END:VTIMEZONE
"""
    for start, wall in [
        ("20260702T100000", paris(2026, 7, 2, 10)),
        ("20261203T100000", paris(2026, 12, 3, 10)),
        ("20261025T023000", paris(2026, 10, 25, 2, 30)),  # summer time, until 3:00
        ("20260329T030000", paris(2026, 3, 29, 3)),  # summer time, from 2:00
    ]:
        found = bounded_read(in_zone("Customized Time Zone", definition, start))
        # in UTC: Python finds no time at a change of offset equal to one of another zone
        assert (found.events[0].start.astimezone(UTC), found.notes) == (wall.astimezone(UTC), [])


def test_a_task_with_completed_but_no_status_is_completed() -> None:
    found = read("apple-task-completed-no-status")
    (task,) = found.tasks
    assert (task.uid, task.status) == ("4F6E2C1A-9B8D-4E7F-A0B1-C2D3E4F5A6B7", "COMPLETED")
    assert task.completed_at == datetime(2026, 12, 2, 15, tzinfo=UTC)
    assert found.events == []


def test_an_event_without_uid_is_read() -> None:
    event = only_event("no-uid")
    assert (event.uid, event.summary) == ("(no UID)", "Sans UID")


def test_a_huge_description_is_read_whole() -> None:
    event = only_event("huge-description")
    assert len(raw("huge-description")) > 1_000_000
    assert event.description == HUGE_DESCRIPTION


def test_odd_characters_are_kept_and_escapes_undone() -> None:
    event = only_event("odd-characters")
    assert event.uid == "odd-characters-☃-1"
    assert event.summary == "Ça, c'est déjà l'été 🚀 — 会议 — שלום\u200b — e\u0301"
    assert event.description == "Ligne 1\nLigne 2; point-virgule, virgule"
    assert event.categories == {"réunion", "équipe"}


def test_control_characters_are_left_out() -> None:
    event = only_event("control-characters")
    assert event.summary == "Point d'étape [acme-audit]"


def test_windows_1252_is_read_as_such_with_a_note() -> None:
    with pytest.raises(UnicodeDecodeError):
        raw("windows-1252").decode("utf-8")
    found = read("windows-1252")
    (event,) = found.events
    assert event.summary == "Réunion d'équipe – bilan"
    assert found.notes == ["not UTF-8: read as Windows-1252"]


def test_a_byte_order_mark_is_no_broken_line() -> None:
    assert raw("utf-8-bom").startswith(b"\xef\xbb\xbfBEGIN:VCALENDAR")
    for data in (raw("utf-8-bom"), CORPUS["utf-8-bom"]):
        found = read_object(data, PARIS, WINDOW)
        assert [e.summary for e in found.events] == ["Exporté d'Outlook"]
        assert found.notes == []


def test_c1_controls_from_a_latin_1_fallback_are_left_out() -> None:
    """Radicale decodes a body that is not UTF-8 as Latin-1: Windows-1252's "–" becomes U+0096."""
    as_radicale_stores_it = raw("windows-1252").decode("latin-1")
    assert "\x96" in as_radicale_stores_it
    (event,) = read_object(as_radicale_stores_it.encode(), PARIS, WINDOW).events
    assert event.summary == "Réunion d'équipe  bilan"


# -- synced from a real CalDAV server ----------------------------------------------------

SYNC_AT = paris(2026, 12, 10, 9)  # meetings are read from 90 days back
# valid objects next to the corpus: two mission events, a meeting; and a mission
# event whose dates are wrong
VALID: dict[str, str] = {
    name: _ics(text)
    for name, text in {
        "mission-crm": """\
BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//Apple Inc.//macOS 14.5//EN
BEGIN:VEVENT
UID:8E1F2A3B-4C5D-4E6F-8A9B-0C1D2E3F4A5B
DTSTAMP:20261120T083000Z
DTSTART;VALUE=DATE:20261201
DTEND;VALUE=DATE:20270301
SUMMARY:Refonte du CRM
CATEGORIES:Mission
DESCRIPTION:key: acme-crm\\nclient: acme\\ncontract_signed: 2026-11-20\\nLieu : Lyon
END:VEVENT
END:VCALENDAR
""",
        "mission-mail": """\
BEGIN:VCALENDAR
PRODID:Microsoft Exchange Server 2010
VERSION:2.0
"""
        + ROMANCE_STANDARD_TIME
        + """\
BEGIN:VEVENT
UID:AAMkAGM4NmQ1
SUMMARY:[mission] Migration messagerie
DESCRIPTION:key: acme-mail\\nclient: acme\\nstatus: proposed
DTSTART;TZID=Romance Standard Time:20270104T090000
DTEND;TZID=Romance Standard Time:20270226T180000
DTSTAMP:20261120T083000Z
END:VEVENT
END:VCALENDAR
""",
        "meeting-outlook": """\
BEGIN:VCALENDAR
PRODID:Microsoft Exchange Server 2010
VERSION:2.0
BEGIN:VEVENT
ORGANIZER;CN=Claire Martin:mailto:claire@cabinet.example
ATTENDEE;ROLE=REQ-PARTICIPANT;PARTSTAT=ACCEPTED;CN=Jeanne Dupont:mailto:Jean
 ne.Dupont@acme.example
UID:AAMkADk1ZjQ0
SUMMARY:Point d'étape
DTSTART;TZID="Romance Standard Time":20261203T100000
DTEND;TZID="Romance Standard Time":20261203T110000
DTSTAMP:20261120T083000Z
END:VEVENT
END:VCALENDAR
""",
        "mission-backwards": """\
BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//Some sync tool//EN
BEGIN:VEVENT
UID:mission-backwards-1
DTSTAMP:20261120T083000Z
SUMMARY:[mission] Audit sécurité
DESCRIPTION:key: acme-secu\\nclient: acme
DTSTART;VALUE=DATE:20270301
DTEND;VALUE=DATE:20270201
END:VEVENT
END:VCALENDAR
""",
    }.items()
}
# Radicale 3.9 parses what it is sent (with vobject) and refuses these on PUT:
# 400, or 412 for the year 9999 (its time range overflows, which it takes for
# an object too large)
REFUSED_BY_RADICALE = {
    "bad-dtstart": 400,
    "bad-rrule": 400,
    "garbage-line": 400,
    "html-page": 400,
    "no-dtstart": 400,
    "no-uid": 400,
    "truncated": 400,
    "utf-8-bom": 400,
    "vcard": 400,
    "year-9999": 412,
}
# what the sync cannot use among the objects Radicale serves: the reason it gives
SKIPPED = {
    "mission-backwards": "mission event '[mission] Audit sécurité': "
    "the event ends before it starts: correct its end date",
}
# the touchpoints the sync records: (mission, contact, at)
MEETINGS = {
    # the weekly meeting, 16 November cancelled, 23 November moved to the 24th
    *(("acme-audit", None, paris(2026, 11, day, 9, 30)) for day in (2, 9, 30)),
    ("acme-audit", None, paris(2026, 11, 24, 11)),
    ("acme-audit", None, paris(2026, 12, 7, 9, 30)),
    # the daily stand-up, 27 November cancelled by an EXDATE in UTC
    *(("acme-audit", None, paris(2026, 11, day, 8, 30)) for day in (25, 26, 28, 29)),
    # control characters stripped (by Radicale already), the key in brackets found
    ("acme-audit", None, datetime(2026, 11, 27, 10, tzinfo=UTC)),
    # the invitation to one occurrence, organized by the contact
    ("acme-audit", "jdupont", datetime(2026, 11, 26, 13, tzinfo=UTC)),
    # a Windows zone with no VTIMEZONE, 10:00 in Paris
    ("acme-audit", "jdupont", paris(2026, 12, 3, 10)),
}


@pytest.fixture
def strict_dav(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[DavServer]:
    """A Radicale that fails on a stored object it cannot parse, rather than hide it.

    That is ``[storage] skip_broken_item = False`` (the default is True); errors
    are answered at once (``[server] delay_on_error = 0``, not one second).
    """
    load: Callable[..., Any] = radicale.config.load

    def strict(*args: Any, **kwargs: Any) -> Any:
        configuration = load(*args, **kwargs)
        changes = {"storage": {"skip_broken_item": "False"}, "server": {"delay_on_error": "0"}}
        configuration.update(changes, "strict test server")
        return configuration

    monkeypatch.setattr(radicale.config, "load", strict)
    monkeypatch.setenv(PASSWORD_VARIABLE, PASSWORD)
    with dav_server(tmp_path / "radicale") as server:
        yield server


@pytest.fixture
def loaded(store: Store, tmp_path: Path) -> Store:
    path = tmp_path / "data.toml"
    path.write_text(ACME, encoding="utf-8")
    import_files(store, [path], PARIS)
    return store


def settings_for(tmp_path: Path, dav: DavServer, *calendars: str) -> Settings:
    names = ", ".join(f'"{name}"' for name in calendars or ("Missions",))
    text = MINIMAL_CONFIG + (
        f'[caldav]\nurl = "{dav.url}"\nusername = "{USER}"\n'
        f'password_env = "{PASSWORD_VARIABLE}"\nread_calendars = [{names}]\n'
    )
    return parse_settings(text, tmp_path / "followupd.toml", {"HOME": str(tmp_path)})


def put(dav: DavServer, calendar: str, name: str, body: bytes) -> int:
    """PUT the bytes as they are (the caldav library cannot send a body that is not UTF-8)."""
    connection = http.client.HTTPConnection("127.0.0.1", dav.port, timeout=30)
    login = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    headers = {"Authorization": f"Basic {login}", "Content-Type": "text/calendar; charset=utf-8"}
    try:
        connection.request("PUT", f"/{USER}/{calendar}/{name}.ics", body, headers)
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def folder(dav: DavServer, calendar: str) -> Path:
    """Where Radicale keeps a calendar: collection-root/<user>/<calendar>/.

    The folder holds ``.Radicale.props`` (JSON: the display name, and the tag
    VCALENDAR that makes it a calendar), one file per object named by its href,
    and ``.Radicale.cache`` (parsed items, sync-token states, history).
    """
    return dav.storage / "collection-root" / USER / calendar


def write_behind_radicale(dav: DavServer, calendar: str, objects: dict[str, bytes]) -> None:
    """Objects written straight into the storage, with the server stopped."""
    dav.stop()
    for name, body in objects.items():
        (folder(dav, calendar) / f"{name}.ics").write_bytes(body)
    dav.start()


def by_name(skipped: list[tuple[str, str]]) -> dict[str, str]:
    return {url.rsplit("/", 1)[1].removesuffix(".ics"): reason for url, reason in skipped}


def touchpoints(store: Store) -> set[tuple[str, str | None, datetime]]:
    with store.session() as session:
        return {
            (t.mission.key, t.contact.key if t.contact else None, t.at)
            for t in session.scalars(select(Touchpoint).where(Touchpoint.kind == "meeting"))
        }


@pytest.mark.slow
def test_the_corpus_syncs_what_is_valid_and_reports_each_object_it_cannot_use(
    loaded: Store, tmp_path: Path, dav: DavServer
) -> None:
    CalendarApp(dav).calendar("Missions")
    statuses = {name: put(dav, "missions", name, raw(name)) for name in CORPUS}
    statuses |= {name: put(dav, "missions", name, text.encode()) for name, text in VALID.items()}
    refused = {name: status for name, status in statuses.items() if status not in (201, 204)}
    assert refused == REFUSED_BY_RADICALE
    served = set(statuses) - set(refused)

    report = sync_calendars(loaded, settings_for(tmp_path, dav), SYNC_AT)
    assert [(c.name, c.mode, c.fetched) for c in report.calendars] == [
        ("Missions", "full", len(served))
    ]
    calendar_url = f"{dav.url}{USER}/missions/"
    assert all(url.startswith(calendar_url) for url, _ in report.skipped), report.skipped
    assert by_name(report.skipped) == SKIPPED
    assert len(report.skipped) == len(SKIPPED), "each object reported once"
    assert (report.missions_created, report.notices) == (2, [])

    with loaded.session() as session:
        missions = {m.key: m for m in session.scalars(select(Mission))}
        assert set(missions) == {"acme-audit", "acme-crm", "acme-mail"}, "not acme-secu"
        crm, mail = missions["acme-crm"], missions["acme-mail"]
        assert (crm.title, crm.start, crm.end) == (
            "Refonte du CRM",
            date(2026, 12, 1),
            date(2027, 2, 28),
        )
        assert crm.contract_signed == date(2026, 11, 20)
        assert (mail.title, mail.start, mail.end, mail.status) == (
            "Migration messagerie",
            date(2027, 1, 4),
            date(2027, 2, 26),
            "proposed",
        )
        rows = session.scalars(select(CalendarObject).where(CalendarObject.problem.is_not(None)))
        assert {
            row.href.rsplit("/", 1)[1].removesuffix(".ics"): row.problem for row in rows
        } == SKIPPED
    assert touchpoints(loaded) == MEETINGS
    assert report.meetings == len(MEETINGS)

    again = sync_calendars(loaded, settings_for(tmp_path, dav), SYNC_AT + timedelta(hours=1))
    assert [(c.mode, c.fetched) for c in again.calendars] == [("incremental", 0)]
    assert again.skipped == [], "an object is reported again only once it changes"
    assert touchpoints(loaded) == MEETINGS


def test_objects_radicale_refuses_written_into_its_storage_are_never_served(
    loaded: Store, tmp_path: Path, dav: DavServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Radicale hides an object it cannot parse; followupd never sees it, so cannot report it.

    With its default ``[storage] skip_broken_item = True``, Radicale leaves a
    file it cannot read (vobject cannot parse it, no UID, not UTF-8…) out of
    every listing, PROPFIND and sync-collection REPORT alike, logging "Skip
    broken item"; a calendar-multiget of its href answers 404, with no data.
    The sync goes on with the rest; only Radicale's log tells of the file.
    """
    app = CalendarApp(dav)
    calendar = app.calendar("Missions")
    assert put(dav, "missions", "meeting-outlook", VALID["meeting-outlook"].encode()) == 201
    props = (folder(dav, "missions") / ".Radicale.props").read_text(encoding="utf-8")
    assert '"tag": "VCALENDAR"' in props and '"D:displayname": "Missions"' in props
    broken = {name: raw(name) for name in REFUSED_BY_RADICALE}
    broken["windows-1252"] = raw("windows-1252")  # on disk, Radicale reads UTF-8 only
    write_behind_radicale(dav, "missions", broken)

    dav.reset_counts()
    report = sync_calendars(loaded, settings_for(tmp_path, dav), SYNC_AT)
    assert [(c.mode, c.fetched) for c in report.calendars] == [("full", 1)]
    assert report.skipped == [] and report.notices == []
    assert touchpoints(loaded) == {("acme-audit", "jdupont", paris(2026, 12, 3, 10))}
    assert all(status == 207 for method, _, status in dav.requests if method == "REPORT")

    listed = {obj.url.path.rsplit("/", 1)[1] for obj in calendar.objects(load_objects=False)}
    assert listed == {"meeting-outlook.ics"}
    hrefs = [calendar.url.join(f"{name}.ics") for name in sorted(broken)]
    assert [obj.raw_data for obj in calendar.multiget(hrefs)] == [None] * len(broken)
    hidden = {
        record.getMessage().split("'")[1]
        for record in caplog.records
        if record.name == "radicale" and record.getMessage().startswith("Skip broken item")
    }
    assert hidden == {f"{name}.ics" for name in broken}


def test_an_object_broken_on_the_server_after_a_sync_looks_deleted(
    loaded: Store, tmp_path: Path, dav: DavServer
) -> None:
    """Hidden by Radicale, a mission event that turns unreadable is, to any client, deleted.

    The sync says so as for a deletion: the mission is kept, and a notice asks
    whether it is over.
    """
    CalendarApp(dav).calendar("Missions")
    assert put(dav, "missions", "mission-crm", VALID["mission-crm"].encode()) == 201
    settings = settings_for(tmp_path, dav)
    assert sync_calendars(loaded, settings, SYNC_AT).missions_created == 1
    garbled = VALID["mission-crm"].replace("DTSTART;VALUE=DATE:", "DTSTART;VALUE=DATE:X")
    write_behind_radicale(dav, "missions", {"mission-crm": garbled.encode()})

    report = sync_calendars(loaded, settings, SYNC_AT + timedelta(hours=1))
    assert [(c.mode, c.fetched, c.deleted) for c in report.calendars] == [("incremental", 0, 1)]
    assert report.notices == [
        "the mission event of 'acme-crm' was deleted from 'Missions'; "
        "the mission is kept (set its status to closed if it is over)"
    ]
    with loaded.session() as session:
        assert session.scalars(select(Mission.key).where(Mission.key == "acme-crm")).one()


@pytest.mark.slow
def test_a_calendar_the_server_cannot_list_is_reported_and_the_others_synced(
    loaded: Store, tmp_path: Path, strict_dav: DavServer
) -> None:
    """With ``skip_broken_item = False``, one broken file makes Radicale fail the whole calendar.

    Its sync-collection REPORT and its PROPFIND both answer 500 ("Failed to
    load item"), for as long as the file is there. followupd then falls back
    from the REPORT to an ETag listing by PROPFIND, which fails too, and
    today reads that failure as an empty calendar: every object stored looks
    deleted, its meetings are dropped and each mission event is reported
    deleted. It should instead tell that calendar could not be synced, take
    nothing as deleted, keep its token, and sync the other calendars.
    """
    app = CalendarApp(strict_dav)
    app.calendar("Missions")
    app.calendar("Rendez-vous")
    assert put(strict_dav, "missions", "mission-crm", VALID["mission-crm"].encode()) == 201
    meeting = VALID["meeting-outlook"].encode()
    assert put(strict_dav, "missions", "meeting-outlook", meeting) == 201
    settings = settings_for(tmp_path, strict_dav, "Missions", "Rendez-vous")
    first = sync_calendars(loaded, settings, SYNC_AT)
    assert (first.missions_created, first.meetings) == (1, 1)

    write_behind_radicale(strict_dav, "missions", {"garbage-line": raw("garbage-line")})
    google_invite = raw("google-single-occurrence-invite")
    assert put(strict_dav, "rendez-vous", "invite", google_invite) == 201
    strict_dav.reset_counts()
    try:
        report: SyncReport | None = sync_calendars(loaded, settings, SYNC_AT + timedelta(hours=1))
    except ServiceUnavailable:
        report = None
    failed = [(method, path) for method, path, status in strict_dav.requests if status == 500]
    assert ("REPORT", f"/{USER}/missions/") in failed, "Radicale fails the whole calendar"

    assert report is not None, "one calendar failing stops no sync"
    assert [(c.name, c.deleted) for c in report.calendars if c.name == "Missions"] in (
        [],
        [("Missions", 0)],
    )
    assert any("Missions" in notice and "500" in notice for notice in report.notices), (
        report.notices
    )
    assert not any("was deleted" in notice for notice in report.notices), report.notices
    assert touchpoints(loaded) == {
        ("acme-audit", "jdupont", paris(2026, 12, 3, 10)),  # kept
        ("acme-audit", "jdupont", datetime(2026, 11, 26, 13, tzinfo=UTC)),  # from Rendez-vous
    }
