"""A CalDAV client for ``[caldav]`` or an owner's own account: source and channel use it.

caldav's synchronous client is used (run in a thread by async callers): its
async API is new. It is told not to read caldav's own config file or
``CALDAV_*`` variables, so only followupd's config decides where it connects.

A calendar is named in the config by its display name, or by its path
(``/claire/missions/``) or URL, which stay right when two calendars share a
name. Two calendars answering one display name is an error that names both:
reading or writing one of them at random would lose the other's missions.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from followupd.config.accounts import CaldavAccount

TIMEOUT_SECONDS = 30


class AmbiguousCalendar(Exception):
    """Several calendars answer to the name a config gives."""

    def __init__(self, name: str, urls: list[str]) -> None:
        self.name, self.urls = name, urls
        super().__init__(
            f"{len(urls)} calendars are named {name!r}: {', '.join(urls)}; "
            "name the one meant by its path or URL in the config"
        )


class NotACalendar(Exception):
    """A path or URL names a collection of another kind."""


def dav_client(caldav: CaldavAccount, environ: Mapping[str, str] | None = None) -> Any:
    # imported here, so that a daemon without [caldav] never loads the client stack (16 MB)
    from caldav.davclient import DAVClient

    password = caldav.password("caldav").reveal(environ)
    return DAVClient(
        url=caldav.url,
        username=caldav.username,
        password=password,
        ssl_verify_cert=str(caldav.ca_file) if caldav.ca_file else True,
        timeout=TIMEOUT_SECONDS,
        rate_limit_handle=False,  # a busy server is retried by followupd's backoff, not a sleep
    )


def is_address(name: str) -> bool:
    """Whether a configured calendar is named by its path or URL rather than its display name."""
    return name.startswith("/") or name.lower().startswith(("http://", "https://"))


def url_of(calendar: Any) -> str:
    """A calendar's URL as followupd stores it (with its trailing slash)."""
    return str(calendar.url.canonical())


def find_calendar(client: Any, calendars: list[Any], name: str) -> Any | None:
    """The calendar the config names `name` among the principal's `calendars`; None: not there.

    A path or URL may also name a calendar the principal does not list (one
    shared with the user): it is looked up on the server. AmbiguousCalendar
    when a display name is that of several calendars.
    """
    if is_address(name):
        wanted = client.url.join(name).canonical()
        for calendar in calendars:
            if _same_collection(calendar.url.canonical(), wanted):
                return calendar
        return _unlisted(client, str(wanted).rstrip("/") + "/")
    named = [calendar for calendar in calendars if calendar.get_display_name() == name]
    if len(named) > 1:
        raise AmbiguousCalendar(name, sorted(url_of(calendar) for calendar in named))
    return named[0] if named else None


def _same_collection(one: Any, other: Any) -> bool:
    return str(one).rstrip("/") == str(other).rstrip("/")


def _unlisted(client: Any, url: str) -> Any | None:
    """The calendar at `url` if the server has one there; None when it has nothing there.

    NotACalendar when what is there is another kind of collection (a principal, say).
    """
    from caldav.elements import cdav, dav
    from caldav.lib import error as dav_error

    calendar = client.calendar(url=url)
    try:
        kinds = calendar.get_properties([dav.ResourceType()]).get(dav.ResourceType.tag) or []
    except dav_error.NotFoundError:
        return None
    if cdav.Calendar.tag not in kinds:
        raise NotACalendar(f"{url} is not a calendar")
    return calendar
