"""A CalDAV client for ``[caldav]`` or an owner's own account: source and channel use it.

caldav's synchronous client is used (run in a thread by async callers): its
async API is new. It is told not to read caldav's own config file or
``CALDAV_*`` variables, so only followupd's config decides where it connects.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from followupd.accounts import CaldavAccount

TIMEOUT_SECONDS = 30


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


def calendars_by_name(client: Any) -> dict[str, Any]:
    """The principal's calendars by display name, as `read_calendars` names them."""
    return {calendar.get_display_name(): calendar for calendar in client.principal().calendars()}
