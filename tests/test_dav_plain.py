"""Plain WebDAV requests (followupd.dav.plain): the same URLs as the caldav library, or NotPlain.

The sync stores objects under caldav's canonical URLs; a URL spelled
otherwise by the plain requests would make a stored object look deleted and
a new one appear. What a server answers that the plain reading cannot be
sure to read as the library does is NotPlain: the sync asks the library.
The requests themselves, against Radicale and Xandikos, are in
tests/test_caldav_contract.py.
"""

from __future__ import annotations

import pytest
from caldav.lib.url import URL
from hypothesis import example, given, settings
from hypothesis import strategies as st

from followupd.dav.plain import NotPlain, PlainDav, canonical, responses
from followupd.sources.caldav.calendar_access import PlainCalendar

SEGMENT = st.text(alphabet="aZ09-_.~ @%+&;:,()=/éA", max_size=12)
HOSTS = st.sampled_from(["127.0.0.1", "dav.example.net", "[::1]", "Dav.Example.NET"])
PORTS = st.sampled_from(["", ":8443", ":80", ":443"])
LOGINS = st.sampled_from(["", "claire@", "claire:secret@"])


@given(
    scheme=st.sampled_from(["http", "https"]),
    login=LOGINS,
    host=HOSTS,
    port=PORTS,
    path=SEGMENT,
    query=st.sampled_from(["", "?a=b"]),
)
@example(scheme="http", login="claire@", host="127.0.0.1", port="", path="//", query="")
@settings(max_examples=1000, deadline=None)
def test_canonical_spells_a_url_as_the_library_does(
    scheme: str, login: str, host: str, port: str, path: str, query: str
) -> None:
    url = f"{scheme}://{login}{host}{port}/{path}{query}"
    assert canonical(url) == str(URL.objectify(url).canonical())


MULTISTATUS = '<?xml version="1.0"?><D:multistatus xmlns:D="DAV:">{}</D:multistatus>'


def answer(*parts: str) -> str:
    return MULTISTATUS.format("".join(parts))


def changed(href: str, etag: str = '"1"') -> str:
    return (
        f"<D:response><D:href>{href}</D:href><D:propstat><D:prop><D:getetag>{etag}</D:getetag>"
        "</D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response>"
    )


def deleted(href: str) -> str:
    return (
        f"<D:response><D:href>{href}</D:href>"
        "<D:status>HTTP/1.1 404 Not Found</D:status></D:response>"
    )


class Canned(PlainDav):
    """A PlainDav that answers each request with the next canned multistatus."""

    def __init__(self, *answers: str) -> None:
        super().__init__("http://127.0.0.1:5232/", "claire", "dav-secret")
        self.answers = [text.encode() for text in answers]

    def request(self, method: str, path: str, body: bytes, headers: object) -> tuple[int, bytes]:
        return 207, self.answers.pop(0)


class Library:
    """Stands for the caldav library: what the plain reading leaves to it is counted."""

    def __init__(self) -> None:
        self.asked = 0

    def __call__(self) -> Library:
        self.asked += 1
        return self

    def changes(self, token: str | None, known: object) -> str:
        return "asked the library"

    def fetch(self, hrefs: object, skip: object) -> str:
        return "fetched through the library"


CALENDAR = "http://127.0.0.1:5232/claire/missions/"


def test_a_plain_listing_is_read_without_the_library() -> None:
    dav = Canned(
        answer(
            changed("/claire/missions/a.ics", '"e1"'),
            deleted("/claire/missions/b.ics"),
            "<D:sync-token>http://radicale.org/ns/sync/2</D:sync-token>",
        )
    )
    library = Library()
    calendar = PlainCalendar(dav, CALENDAR, library)  # type: ignore[arg-type]
    known: dict[str, str | None] = {CALENDAR + "b.ics": '"0"'}
    found = calendar.changes("http://radicale.org/ns/sync/1", known)
    assert library.asked == 0
    assert found.changed == {CALENDAR + "a.ics": '"e1"'}
    assert found.deleted == {CALENDAR + "b.ics"}
    assert (found.mode, found.token) == ("incremental", "http://radicale.org/ns/sync/2")


@pytest.mark.parametrize(
    "listing",
    [
        # an href with escapes: the library's quoting decides its URL
        answer(changed("/claire/missions/a%40b.ics"), "<D:sync-token>t2</D:sync-token>"),
        # a truncated listing (RFC 6578 section 3.6): the library pages through it
        answer(
            changed("/claire/missions/a.ics"),
            "<D:response><D:href>/claire/missions/</D:href>"
            "<D:status>HTTP/1.1 507 Insufficient Storage</D:status></D:response>",
            "<D:sync-token>t2</D:sync-token>",
        ),
        # no new token
        answer(changed("/claire/missions/a.ics")),
        # one object listed changed and deleted (Cyrus)
        answer(
            changed("/claire/missions/a.ics"),
            deleted("/claire/missions/a.ics"),
            "<D:sync-token>t2</D:sync-token>",
        ),
        # an object of another collection
        answer(changed("/claire/other/a.ics"), "<D:sync-token>t2</D:sync-token>"),
        # a document type, which could declare entities to expand
        '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><D:multistatus xmlns:D="DAV:"/>',
        # not XML
        "<D:multistatus",
    ],
)
def test_a_listing_that_is_not_plain_is_asked_again_through_the_library(listing: str) -> None:
    library = Library()
    calendar = PlainCalendar(Canned(listing), CALENDAR, library)  # type: ignore[arg-type]
    assert calendar.changes("t1", {}) == "asked the library"  # type: ignore[comparison-overlap]
    assert library.asked == 1


def test_a_property_status_other_than_200_or_404_is_not_plain() -> None:
    from xml.etree import ElementTree

    root = ElementTree.fromstring(
        answer(
            "<D:response><D:href>/a.ics</D:href><D:propstat><D:prop><D:getetag/></D:prop>"
            "<D:status>HTTP/1.1 403 Forbidden</D:status></D:propstat></D:response>"
        )
    )
    with pytest.raises(NotPlain):
        responses(root)


def test_a_proxy_configured_for_the_server_leaves_it_to_the_library(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("https_proxy", "http://proxy.example.net:3128")
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    with pytest.raises(NotPlain):
        PlainDav("https://dav.example.net/", "claire", "dav-secret")
    monkeypatch.setenv("no_proxy", "dav.example.net")
    PlainDav("https://dav.example.net/", "claire", "dav-secret").close()


def multiget_answer(href: str, data: str = "BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n") -> str:
    return answer(
        f"<D:response><D:href>{href}</D:href><D:propstat><D:prop>"
        f'<C:calendar-data xmlns:C="urn:ietf:params:xml:ns:caldav">{data}</C:calendar-data>'
        '<D:getetag>"1"</D:getetag></D:prop><D:status>HTTP/1.1 200 OK</D:status>'
        "</D:propstat></D:response>"
    )


def test_a_plain_multiget_is_read_without_the_library() -> None:
    library = Library()
    dav = Canned(multiget_answer("/claire/missions/a.ics"))
    calendar = PlainCalendar(dav, CALENDAR, library)  # type: ignore[arg-type]
    fetched = calendar.fetch([CALENDAR + "a.ics"], lambda url, why: None)
    assert (library.asked, fetched.data) == (
        0,
        {CALENDAR + "a.ics": b"BEGIN:VCALENDAR\nEND:VCALENDAR\n"},  # XML reads CRLF as LF
    )


@pytest.mark.parametrize(
    "multiget",
    [
        multiget_answer("/claire/missions/a%40b.ics"),  # an answer for an href with escapes
        multiget_answer("/claire/missions/other.ics"),  # for an object not asked for
        multiget_answer("/claire/missions/a.ics", data=""),  # without its data
        answer(),  # without the object asked for
    ],
)
def test_a_multiget_that_is_not_plain_is_fetched_again_through_the_library(
    multiget: str,
) -> None:
    library = Library()
    calendar = PlainCalendar(Canned(multiget), CALENDAR, library)  # type: ignore[arg-type]
    fetched = calendar.fetch([CALENDAR + "a.ics"], lambda url, why: None)
    assert fetched == "fetched through the library"  # type: ignore[comparison-overlap]
    assert library.asked == 1
