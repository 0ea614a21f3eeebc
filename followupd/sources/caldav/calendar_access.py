"""How a calendar is asked what changed and for its objects: by plain requests, or the library.

A calendar at a URL on the account's server (`PlainCalendar`: known from
the store, or just found through the caldav library) is asked by plain
requests (followupd.dav.plain): a sync-collection REPORT from its token (an
empty one for a first sync: every object), a calendar-multiget of what
changed. One the plain requests cannot reach (`LibraryCalendar`) is asked
through the library (followupd.sources.caldav.changes). Whatever answer is not the plain case
(a token the server refuses, a truncated listing, an href with escapes, an
object the server cannot send) is asked again through the library, as if
the plain request had not been made: the two read the same answers alike,
with the same URLs (caldav's canonical form) and ETags.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, Protocol
from urllib.parse import urlsplit
from xml.etree import ElementTree
from xml.sax.saxutils import escape

from followupd.dav.client import url_of
from followupd.dav.plain import CALDAV, DAV, NotPlain, PlainDav, Refused, is_plain, responses
from followupd.sources.caldav.change_set import Changes, ETags, Fetched, differing

log = logging.getLogger("followupd.sources.caldav")

Skip = Callable[[str, str], None]  # told an object's URL and why it is left out

WHAT_THEY_ARE = (b'<?xml version="1.0" encoding="utf-8"?>'
                 b'<D:propfind xmlns:D="DAV:"><D:prop><D:resourcetype/><D:displayname/>'
                 b"</D:prop></D:propfind>")  # fmt: skip
SYNC_COLLECTION = ('<?xml version="1.0" encoding="utf-8"?>'
                   '<D:sync-collection xmlns:D="DAV:"><D:sync-token>{token}</D:sync-token>'
                   "<D:sync-level>1</D:sync-level><D:prop><D:getetag/></D:prop>"
                   "</D:sync-collection>")  # fmt: skip
MULTIGET = ('<?xml version="1.0" encoding="utf-8"?>'
            '<C:calendar-multiget xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">'
            "<D:prop><C:calendar-data/><D:getetag/></D:prop>{hrefs}"
            "</C:calendar-multiget>")  # fmt: skip
GONE = ("404", "410")
WHO_AM_I = (b'<?xml version="1.0" encoding="utf-8"?>'
            b'<D:propfind xmlns:D="DAV:"><D:prop><D:current-user-principal/></D:prop>'
            b"</D:propfind>")  # fmt: skip
WHERE_CALENDARS_ARE = (b'<?xml version="1.0" encoding="utf-8"?>'
                       b'<D:propfind xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">'
                       b"<D:prop><C:calendar-home-set/></D:prop></D:propfind>")  # fmt: skip


class CalendarAccess(Protocol):
    url: str  # canonical, as stored

    def changes(self, token: str | None, known: ETags) -> Changes: ...

    def fetch(self, hrefs: Sequence[str], skip: Skip) -> Fetched: ...


class LibraryCalendar:
    """A calendar as the caldav library found it."""

    def __init__(self, calendar: Any) -> None:
        self.calendar = calendar
        self.url = url_of(calendar)

    def changes(self, token: str | None, known: ETags) -> Changes:
        from followupd.sources.caldav import changes as dav_changes

        return dav_changes.changes(self.calendar, self.url, token, known)

    def fetch(self, hrefs: Sequence[str], skip: Skip) -> Fetched:
        from followupd.sources.caldav import changes as dav_changes

        return dav_changes.fetch(self.calendar, hrefs, skip)

    def fetch_each(self, hrefs: Sequence[str], skip: Skip, error: Exception) -> Fetched:
        """`fetch` after a calendar-multiget the server failed with `error`: a GET each."""
        from followupd.sources.caldav import changes as dav_changes

        return dav_changes.one_by_one(self.calendar, hrefs, skip, error)


class PlainCalendar:
    """A calendar at a known URL, asked by plain requests; `library` gives caldav's for the rest.

    `library` is called only when an answer is not plain: it connects then.
    """

    def __init__(self, dav: PlainDav, url: str, library: Callable[[], LibraryCalendar]) -> None:
        self.dav, self.url, self._library = dav, url, library
        self.path = urlsplit(url).path
        self.origin = url[: -len(self.path)] if self.path else url

    def changes(self, token: str | None, known: ETags) -> Changes:
        try:
            return self._changes(token, known)
        except NotPlain as why:
            log.debug("%s: what changed asked through the library: %s", self.url, why)
        return self._library().changes(token, known)

    def fetch(self, hrefs: Sequence[str], skip: Skip) -> Fetched:
        try:
            return self._multiget(hrefs)
        except Refused as error:  # the library's multiget would fail alike: not asked again
            return self._library().fetch_each(hrefs, skip, error)
        except NotPlain as why:
            log.debug("%s: objects fetched through the library: %s", self.url, why)
        return self._library().fetch(hrefs, skip)

    def _changes(self, token: str | None, known: ETags) -> Changes:
        """RFC 6578: what changed and what was deleted since `token`, in one answer.

        With no token, the first listing (an empty token): every object, as
        the library lists it for a first sync (mode "full", what is stored and
        not listed taken as deleted).
        """
        if token is not None and (not token or token.startswith("fake-")):
            raise NotPlain("no token of the server's to start from")
        body = SYNC_COLLECTION.format(token=escape(token or "")).encode("utf-8")
        root = self.dav.multistatus("REPORT", self.path, body, {"Depth": "1"})
        tokens = [found.text for found in root if found.tag == DAV + "sync-token"]
        if len(tokens) != 1 or not tokens[0] or tokens[0].startswith("fake-"):
            raise NotPlain("a sync-collection answer without one new token")
        changed: dict[str, str | None] = {}
        deleted: set[str] = set()
        for href, status, properties in responses(root):
            url = self._member(href)
            if url in changed or url in deleted:
                raise NotPlain(f"{href} listed twice")
            if status is not None:
                if status != "404" or properties:
                    raise NotPlain(f"{href} listed with status {status}")
                deleted.add(url)
                continue
            changed[url] = _only(properties, DAV + "getetag")
        if token is None:
            deleted |= set(known) - set(changed)
            return Changes("full", differing(changed, known), deleted, tokens[0])
        return Changes("incremental", changed, deleted & set(known), tokens[0])

    def _multiget(self, hrefs: Sequence[str]) -> Fetched:
        """RFC 4791 section 7.9: the data of `hrefs`, in one answer that holds each of them."""
        asked = {self._path(href): href for href in hrefs}
        listed = "".join(f"<D:href>{escape(path)}</D:href>" for path in asked)
        body = MULTIGET.format(hrefs=listed).encode("utf-8")
        root = self.dav.multistatus("REPORT", self.path, body)  # no Depth (section 7.9)
        fetched, answered = Fetched(), set()
        for path, status, properties in responses(root):
            if path not in asked or path in answered:
                raise NotPlain(f"an answer for {path}, not asked for or twice")
            answered.add(path)
            if status is not None:
                if status not in GONE or properties:
                    raise NotPlain(f"{path} answered {status}")
                continue  # deleted since it was listed
            data = _only(properties, CALDAV + "calendar-data", DAV + "getetag")
            fetched.data[asked[path]] = data.encode("utf-8")
        if answered != set(asked):
            raise NotPlain("objects asked for and not answered")
        return fetched

    def _member(self, href: str) -> str:
        """The URL of an object of this calendar named by `href` (a plain path)."""
        if href.rstrip("/") == self.path.rstrip("/") or not href.startswith(self.path):
            raise NotPlain(f"{href} is not an object of {self.path}")
        return self.origin + href

    def _path(self, url: str) -> str:
        if not url.startswith(self.origin + "/"):
            raise NotPlain(f"{url} is not on {self.origin}")
        return url[len(self.origin) :]


def calendar_home(dav: PlainDav, url: str) -> str:
    """The URL of the collection holding the calendars of the account at `url` (canonical):
    its principal (RFC 5397), then the principal's calendar-home-set (RFC 4791
    section 6.2.1), by two PROPFINDs, as the library finds them.

    NotPlain for anything else: no principal or home named, or several, or
    by an href that is not a plain path.
    """
    parts = urlsplit(url)
    origin = url[: -len(parts.path)] if parts.path else url
    principal = _href_of(dav, parts.path or "/", WHO_AM_I, DAV + "current-user-principal")
    return origin + _href_of(dav, principal, WHERE_CALENDARS_ARE, CALDAV + "calendar-home-set")


def _href_of(dav: PlainDav, path: str, asked: bytes, wanted: str) -> str:
    """The one href that property `wanted` of the resource at `path` holds (a plain path)."""
    answered = responses(dav.multistatus("PROPFIND", path, asked, {"Depth": "0"}), plain=False)
    if len(answered) != 1 or answered[0][1] is not None:
        raise NotPlain(f"PROPFIND {path}: not one answer")
    values = [found for found in answered[0][2] if found.tag == wanted]
    hrefs = [child for value in values for child in value]
    if len(values) != 1 or len(hrefs) != 1 or hrefs[0].tag != DAV + "href":
        raise NotPlain(f"{path}: not one href in {wanted}")
    href = (hrefs[0].text or "").strip()
    if not is_plain(href) or href == "/":
        raise NotPlain(f"{path}: {wanted} is not a plain path: {href!r}")
    return href


def listed_calendars(dav: PlainDav, home: str) -> dict[str, str | None]:
    """The calendars in the collection at URL `home` (one PROPFIND): display name by URL.

    A calendar at an href that is not plain is listed by its href, after a
    "?": its display name still counts (another calendar of a name), and no
    stored URL is spelled so. NotPlain for a listing the library would have to read.
    """
    parts = urlsplit(home)
    origin = home[: -len(parts.path)] if parts.path else home
    root = dav.multistatus("PROPFIND", parts.path or "/", WHAT_THEY_ARE, {"Depth": "1"})
    found: dict[str, str | None] = {}
    for href, status, properties in responses(root, plain=False):
        if status is not None:
            raise NotPlain(f"{href} listed with status {status}")
        kinds = [kind.tag for listed in properties if listed.tag == DAV + "resourcetype"
                 for kind in listed]  # fmt: skip
        if CALDAV + "calendar" in kinds:
            names = [listed.text for listed in properties if listed.tag == DAV + "displayname"]
            found[origin + href if is_plain(href) else "?" + href] = names[0] if names else None
    return found


def _only(properties: list[ElementTree.Element], wanted: str, *also: str) -> str:
    """The text of property `wanted`, the only one besides those of `also`; NotPlain if none."""
    texts = [found.text for found in properties if found.tag == wanted]
    others = [found.tag for found in properties if found.tag != wanted and found.tag not in also]
    if len(texts) != 1 or not texts[0] or others:
        raise NotPlain(f"properties other than {wanted} alone: {others or texts}")
    return texts[0]
