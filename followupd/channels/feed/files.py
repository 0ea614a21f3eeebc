"""The files of the feed's items (formal notices to pay, as PDFs): linked by URL, not inlined.

A feed of thousands of items, each notice tens of kilobytes of base64, made
the document megabytes long, and every poll of it paid for them. The feed's
item names its file by URL instead (``ATTACH;FILENAME=…;FMTTYPE=…:URL``,
RFC 5545 3.8.1.1 by URI, the FILENAME parameter as Apple's and Google's
calendars write it), and the daemon serves it there:

    <origin>/feed/<token>/files/<id>/<name>

`id` is the follow-up's (the store's), `name` the file's name. The token is
the owner's feed token: it opens that owner's files only, and a wrong token,
another owner's file, a wrong id or name all get the same 404 as any
unknown address. Objects written to a CalDAV calendar keep the file inline:
from there, no URL of the daemon is reachable.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote

from followupd.channels.calendar.ical import FileLink
from followupd.store.attachments import Named

ROUTE = "/feed/{token}/files/{file_id}/{name}"  # the daemon's route (aiohttp's syntax)
MAX_ID = 10**18  # an id with more digits is no follow-up's
# a file's name has none (and PostgreSQL refuses NUL in text: a 500, not the uniform 404)
CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class FileLinks:
    """Where the files of one owner's feed are fetched: the origin it is served at, its token."""

    origin: str  # scheme and host, such as "http://127.0.0.1:8731"
    token: str

    def link(self, file: Named) -> FileLink:
        """The link the feed's item gives to `file`."""
        file_id, name = file
        return FileLink(name, self.origin + file_path(self.token, file_id, name))


def file_path(token: str, file_id: int, name: str) -> str:
    """The path of a file of the feed whose token is `token`."""
    return f"/feed/{quote(token, safe='')}/files/{file_id}/{quote(name, safe='')}"


def named(file_id: str, name: str) -> Named | None:
    """The file the decoded segments of a path name, if they can name one at all."""
    if not re.fullmatch(r"[0-9]{1,18}", file_id) or int(file_id) >= MAX_ID:
        return None
    if not name or name in (".", "..") or "/" in name or "\\" in name or CONTROL.search(name):
        return None
    return int(file_id), name
