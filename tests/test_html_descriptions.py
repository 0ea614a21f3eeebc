"""Descriptions written in HTML are read as the lines they show (issue 12, point 3).

Google Calendar puts its editor's HTML in DESCRIPTION: ``<br>`` between lines,
``<b>``, ``<a href>``, ``<ul><li>``, ``<p>``, and ``&amp;``, ``&nbsp;``;
exported, the whole is one folded property (the form below, with a UID at
google.com, is how its ICS export and CalDAV write an event). Outlook writes
the HTML in ``X-ALT-DESC;FMTTYPE=text/html``.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from icalendar import Calendar, Event
from sqlalchemy import select

from followupd.config.load import parse_settings
from followupd.sources.caldav.conventions import description_lines, mission_event
from followupd.sources.caldav.html_text import html_to_lines, looks_like_html
from followupd.sources.caldav.sync import sync_calendars
from followupd.sources.files.importer import import_files
from followupd.sources.ical.read import read_object
from followupd.store.db import Store
from followupd.store.models import CalendarObject, Mission
from tests.conftest import MINIMAL_CONFIG
from tests.davserver import PASSWORD_VARIABLE, USER, CalendarApp, DavServer
from tests.rulekit import ACME

PARIS = ZoneInfo("Europe/Paris")
WINDOW = (datetime(2026, 1, 1, tzinfo=UTC), datetime(2028, 1, 1, tzinfo=UTC))
DATA = ACME + """\
[[clients]]
key = "dupont-fils"
name = "Dupont & Fils"
[[contacts]]
key = "pdupont"
client = "dupont-fils"
name = "Paul Dupont"
email = "paul@dupont-fils.example"
"""  # fmt: skip
# as Google's editor writes a mission's lines, bold labels and a link included
GOOGLE_DESCRIPTION = (
    "<b>key:</b> df-audit<br>client: dupont-fils<br>contact:&nbsp;pdupont<br>"
    "title: Audit Dupont &amp; Fils<br>deposit_amount: 3000<br><br>"
    '<a href="https://drive.google.com/drive/folders/1a2B3c">Dossier</a> &amp; notes'
)


def google_event(description: str, uid: str = "5l3fql1b2u9ccq1mdu0ttvrq8m@google.com") -> str:
    """One event as Google Calendar writes it (its ICS export, its CalDAV server)."""
    calendar = Calendar()
    calendar.add("prodid", "-//Google Inc//Google Calendar 70.9054//EN")
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    event = Event()
    event.add("dtstart", date(2026, 12, 1))
    event.add("dtend", date(2027, 3, 1))
    event.add("dtstamp", datetime(2026, 11, 20, 8, 30, tzinfo=UTC))
    event.add("uid", uid)
    event.add("created", datetime(2026, 11, 20, 8, 0, tzinfo=UTC))
    event.add("description", description)
    event.add("last-modified", datetime(2026, 11, 20, 8, 30, tzinfo=UTC))
    event.add("sequence", 0)
    event.add("status", "CONFIRMED")
    event.add("summary", "[mission] Audit Dupont & Fils")
    event.add("transp", "TRANSPARENT")
    calendar.add_component(event)
    return bytes(calendar.to_ical()).decode("utf-8")


@pytest.mark.parametrize(
    ("html", "lines"),
    [
        ("key: acme-crm<br>client: acme", ["key: acme-crm", "client: acme"]),
        ("<b>key</b>: acme-crm<br/>client: <i>acme</i>", ["key: acme-crm", "client: acme"]),
        ("<p>key: acme-crm</p><p>client: acme</p>", ["key: acme-crm", "", "client: acme"]),
        ("<ul><li>key: a</li><li>client: b</li></ul>", ["key: a", "", "client: b"]),
        ("client:&nbsp;&nbsp;R&amp;D &lt;lab&gt;", ["client: R&D <lab>"]),
        ('key: x<br><a href="https://example.net/?a&amp;b">the file</a>', ["key: x", "the file"]),
        ("<html-blob>key: x<br>client: y</html-blob>", ["key: x", "client: y"]),
        ("<body>\n<div>key: x</div>\n<div>client: y</div>\n</body>",
         ["key: x", "", "", "client: y"]),
        ("<style>p { color: red }</style><p>key: x</p>", ["key: x"]),
        ("key: x<br>client: <b>unclosed", ["key: x", "client: unclosed"]),
    ],
)  # fmt: skip
def test_html_becomes_the_lines_it_shows(html: str, lines: list[str]) -> None:
    assert looks_like_html(html)
    assert html_to_lines(html).split("\n") == lines


@pytest.mark.parametrize(
    "text",
    [
        "key: acme-crm\nclient: acme",
        "Lieu : Lyon <compte rendu à faire>",
        "si a < b et b > c",
        "Tom & Jerry; R&D",
    ],
)
def test_plain_text_is_left_as_it_is(text: str) -> None:
    assert not looks_like_html(text)
    assert description_lines(text) == text.splitlines()


def test_a_google_mission_event_is_read_with_its_fields() -> None:
    read = read_object(google_event(GOOGLE_DESCRIPTION), PARIS, WINDOW)
    [event] = read.events
    described = mission_event(event)
    assert described.problems == []
    assert described.fields == {
        "title": "Audit Dupont & Fils",  # the title: line wins over the summary
        "start": date(2026, 12, 1),
        "end": date(2027, 2, 28),
        "key": "df-audit",
        "client": "dupont-fils",
        "contact": "pdupont",
        "deposit_amount": 3000,
    }


def test_a_google_event_without_a_client_line_says_so() -> None:
    read = read_object(google_event("<b>key:</b> df-audit<br>Notes&nbsp;: rien"), PARIS, WINDOW)
    described = mission_event(read.events[0])
    assert described.fields["key"] == "df-audit", "not the HTML after it"
    assert described.problems == ["description: add a line 'client: …' (required)"]


def test_outlooks_html_copy_is_read_when_the_description_is_empty() -> None:
    text = google_event("").replace(
        "DESCRIPTION:\r\n",
        "X-ALT-DESC;FMTTYPE=text/html:<html><body><p>key: df-audit</p>"
        "<p>client: dupont-fils</p></body></html>\r\n",
    )
    described = mission_event(read_object(text, PARIS, WINDOW).events[0])
    assert (described.fields["key"], described.fields["client"]) == ("df-audit", "dupont-fils")
    assert described.problems == []


def test_a_google_mission_event_synced_from_caldav_makes_the_mission(
    store: Store, tmp_path: Path, dav: DavServer
) -> None:
    data = tmp_path / "data.toml"
    data.write_text(DATA, encoding="utf-8")
    import_files(store, [data], PARIS)
    config = MINIMAL_CONFIG + (
        f'[caldav]\nurl = "{dav.url}"\nusername = "{USER}"\n'
        f'password_env = "{PASSWORD_VARIABLE}"\nread_calendars = ["Missions"]\n'
    )
    settings = parse_settings(config, tmp_path / "followupd.toml", {"HOME": str(tmp_path)})
    CalendarApp(dav).put("Missions", "df.ics", google_event(GOOGLE_DESCRIPTION))
    report = sync_calendars(store, settings, datetime(2026, 11, 23, 9, tzinfo=PARIS))
    assert (report.missions_created, report.skipped) == (1, [])
    with store.session() as session:
        mission = session.scalars(select(Mission).where(Mission.key == "df-audit")).one()
        assert mission.title == "Audit Dupont & Fils"
        assert mission.client.key == "dupont-fils"
        assert mission.client.name == "Dupont & Fils"
        assert mission.contact is not None and mission.contact.key == "pdupont"
        assert str(mission.deposit_amount) == "3000.00"
        objects = select(CalendarObject.mission_key).where(CalendarObject.kind == "mission")
        keys = session.scalars(objects)
        assert list(keys) == ["df-audit"], "the key stored for the object, without HTML"
