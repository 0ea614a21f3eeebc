"""What changed in a calendar since the last sync, and fetching it (RFC 6578, RFC 4791).

The server lists what changed and what was deleted since the last sync
token, and only changed objects are fetched, with ``calendar-multiget``.
When the server has no sync support, rejects a stored token, or the library
hands back a ``fake-`` token (it listed everything), the objects' ETags are
compared with those stored instead; a real token is asked for next time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

from caldav.elements import cdav, dav
from caldav.lib import error as dav_error

from followupd.sources.caldav.change_set import Changes, ETags, Fetched, differing

log = logging.getLogger("followupd.sources.dav_changes")

GONE = (404, 410)


def changes(calendar: Any, url: str, token: str | None, known: ETags) -> Changes:
    """What changed in `calendar` since `token`, given the ETags stored (`known`)."""
    if token is not None and token.startswith("fake-"):
        # the library's own stand-in for a server without tokens: it would
        # answer by downloading every object; a real listing is asked for
        token = None
    try:
        result = calendar.get_objects_by_sync_token(
            sync_token=token, load_objects=False, disable_fallback=True
        )
    except dav_error.AuthorizationError as error:
        if not _expired_token(error):
            raise
        result = None
    except dav_error.DAVError:
        result = None  # no sync support, or a token the server no longer knows
    new_token = None if result is None else result.sync_token
    if result is None or not new_token or str(new_token).startswith("fake-"):
        listed = _etags(calendar, url)
        changed = differing(listed, known)
        return Changes("etag comparison", changed, set(known) - set(listed), None)
    objects = {str(obj.url.canonical()): obj.etag for obj in result.objects}
    deleted = {str(gone) for gone in result.deleted_urls}
    # a member listed as removed stays among the library's objects (with no ETag): not changed
    listed = {href: etag for href, etag in objects.items() if href not in deleted}
    if token is None:  # a first listing: anything stored but not listed is gone
        deleted |= set(known) - set(objects)
        return Changes("full", differing(listed, known), deleted, str(new_token))
    changed = listed
    return Changes("incremental", changed, deleted & set(known), str(new_token))


def _etags(calendar: Any, url: str) -> dict[str, str | None]:
    """Every object's URL and ETag, by one PROPFIND of depth 1."""
    response = calendar.client.propfind(str(calendar.url), ["getetag"], depth=1)
    if response.status >= 400:  # a failed listing is not an empty calendar
        raise dav_error.PropfindError(url, f"{response.status} {response.reason}".strip())
    found: dict[str, str | None] = {}
    for result in response.results or []:
        full = str(calendar.url.join(result.href).canonical())
        if full.rstrip("/") == url.rstrip("/"):
            continue  # the collection itself
        etag = result.properties.get(dav.GetEtag.tag)
        found[full] = str(etag) if etag is not None else None
    return found


def fetch(calendar: Any, hrefs: Sequence[str], skip: Callable[[str, str], None]) -> Fetched:
    """The data of `hrefs`, by one calendar-multiget; objects gone meanwhile are left out.

    The REPORT is made and its answer parsed here, as raw data: the library's
    own ``multiget`` makes an object of each answer and fails the whole chunk
    on a component it has no class for (a VFREEBUSY raises TypeError in caldav
    3.6). When the REPORT fails all the same (a server that cannot answer it
    for one broken object, or an answer that is not well-formed XML), each
    object is fetched alone, so that only the broken one is left out.
    """
    try:
        return _multiget(calendar, hrefs, skip)
    except dav_error.AuthorizationError:
        raise
    except Exception as error:  # an answer the parser refuses is a chunk problem, not a stop
        return one_by_one(calendar, hrefs, skip, error)


def one_by_one(
    calendar: Any, hrefs: Sequence[str], skip: Callable[[str, str], None], error: Exception
) -> Fetched:
    """The data of `hrefs`, a GET each: after a calendar-multiget that failed with `error`."""
    log.info(
        "calendar-multiget of %d objects of %s failed (%s: %s): fetched one by one",
        len(hrefs), calendar.url, type(error).__name__, error,
    )  # fmt: skip
    fetched = Fetched()
    for href in hrefs:
        _get(calendar, href, fetched, skip)
    return fetched


def _multiget(calendar: Any, hrefs: Sequence[str], skip: Callable[[str, str], None]) -> Fetched:
    # `+` adds children to an XML element (caldav's builder), not to a list
    asked = dav.Prop() + [cdav.CalendarData(), dav.GetEtag()]  # noqa: RUF005
    query = cdav.CalendarMultiGet() + asked
    paths = _paths(calendar, hrefs)
    query += [dav.Href(value=path) for path in paths]
    body = str(query).encode("utf-8")
    # RFC 4791 section 7.9: no Depth header on a calendar-multiget
    response = calendar.client.report(str(calendar.url), body, depth=None)
    if response.status >= 400:
        raise dav_error.ReportError(f"{response.status} {response.reason}".strip())
    fetched = Fetched()
    results = response.expand_simple_props([cdav.CalendarData(), dav.GetEtag()])
    for href, props in results.items():
        url = paths.get(href) or str(calendar.url.join(href).canonical())
        data = props.get(cdav.CalendarData.tag)
        if data:
            fetched.data[url] = data.encode("utf-8") if isinstance(data, str) else data
        elif not _gone(response.statuses.get(href)):
            skip(url, "the server sent no calendar data")
    return fetched


def _get(calendar: Any, href: str, fetched: Fetched, skip: Callable[[str, str], None]) -> None:
    """One object by a plain GET; an answer refusing it is this object's, tried again next sync.

    A server that cannot be reached any more is the calendar's failure (raised).
    """
    try:
        response = calendar.client.request(href, "GET")
    except dav_error.AuthorizationError:
        raise
    except dav_error.DAVError as error:
        skip(href, f"not fetched: {type(error).__name__}: {error}; tried again next sync")
        fetched.missed.add(href)
        return
    if response.status in GONE:
        return
    if response.status >= 400:
        reason = f"{response.status} {getattr(response, 'reason', '') or ''}".strip()
        skip(href, f"not fetched: GET answered {reason}; tried again next sync")
        fetched.missed.add(href)
        return
    raw = response.raw
    fetched.data[href] = raw.encode("utf-8") if isinstance(raw, str) else bytes(raw)


def _paths(calendar: Any, hrefs: Sequence[str]) -> dict[str, str]:
    """The path of each URL on the server, as a multiget names it and answers: path -> URL.

    A URL of the calendar's own server, as listed (canonical), is its path as
    written: the library's URL.join, 0.1 ms a call, is left for the others.
    """
    base = urlsplit(str(calendar.url.canonical()))
    origin = f"{base.scheme}://{base.netloc}/"
    found: dict[str, str] = {}
    for href in hrefs:
        path = urlsplit(href).path if href.startswith(origin) else None
        found[path or str(calendar.url.join(href).path)] = href
    return found


def _gone(status: str | None) -> bool:
    return status is not None and any(f" {code} " in f"{status} " for code in GONE)


def _expired_token(error: dav_error.AuthorizationError) -> bool:
    """A 403 that says the token is no longer valid (RFC 6578 section 3.2), not "no access".

    One naming no precondition is taken as "cannot sync" too: access to the
    calendar was just granted for discovery, and were it really refused the
    ETag listing that follows would say so.
    """
    preconditions = getattr(error, "preconditions", None) or []
    known = (dav.ValidSyncToken.tag, dav.SupportedReport.tag)
    return not preconditions or any(tag in preconditions for tag in known)
