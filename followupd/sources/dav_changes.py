"""What changed in a calendar since the last sync, and fetching it (RFC 6578, RFC 4791).

The server lists what changed and what was deleted since the last sync
token, and only changed objects are fetched, with ``calendar-multiget``.
When the server has no sync support, rejects a stored token, or the library
hands back a ``fake-`` token (it listed everything), the objects' ETags are
compared with those stored instead; a real token is asked for next time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from caldav.elements import dav
from caldav.lib import error as dav_error

ETags = dict[str, str | None]  # object URL -> ETag


@dataclass(frozen=True)
class Changes:
    mode: str
    changed: dict[str, str | None]  # URL -> ETag
    deleted: set[str]
    token: str | None


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
        changed = _differing(listed, known)
        return Changes("etag comparison", changed, set(known) - set(listed), None)
    objects = {str(obj.url.canonical()): obj.etag for obj in result.objects}
    deleted = {str(gone) for gone in result.deleted_urls}
    if token is None:  # a first listing: anything stored but not listed is gone
        deleted |= set(known) - set(objects)
        changed = _differing(objects, known)
        return Changes("full", changed, deleted, str(new_token))
    changed = {href: etag for href, etag in objects.items() if href not in deleted}
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


def fetch(
    calendar: Any, hrefs: Sequence[str], skip: Callable[[str, str], None]
) -> dict[str, bytes]:
    """The data of `hrefs`, by one calendar-multiget; objects gone meanwhile are left out."""
    objects = calendar.multiget([calendar.url.join(href) for href in hrefs])
    found: dict[str, bytes] = {}
    for obj in objects:
        raw = obj.raw_data
        if raw is None:
            skip(str(obj.url), "the server sent no calendar data")
            continue
        found[str(obj.url.canonical())] = raw
    return found


def _differing(listed: ETags, known: ETags) -> ETags:
    """The listed objects that are new, or whose ETag is not the one stored."""
    return {href: etag for href, etag in listed.items() if href not in known or known[href] != etag}


def _expired_token(error: dav_error.AuthorizationError) -> bool:
    """A 403 that says the token is no longer valid (RFC 6578 section 3.2), not "no access".

    One naming no precondition is taken as "cannot sync" too: access to the
    calendar was just granted for discovery, and were it really refused the
    ETag listing that follows would say so.
    """
    preconditions = getattr(error, "preconditions", None) or []
    known = (dav.ValidSyncToken.tag, dav.SupportedReport.tag)
    return not preconditions or any(tag in preconditions for tag in known)
