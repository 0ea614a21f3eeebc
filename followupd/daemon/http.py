"""The daemon's HTTP side (aiohttp): the iCalendar feed, health and metrics.

- ``GET /feed/<token>.ics``: the calendar items of the owner whose token it
  is (followupd.channels.feed), with an ETag, and 304 to a matching If-None-Match. A
  wrong token is answered exactly like any unknown address (404), after a
  constant-time comparison with every owner's token. Its items link their
  files (formal notices to pay) at ``[feed] public_url`` when set, else at
  the origin the request was made to (its Host, and the scheme
  X-Forwarded-Proto or Forwarded from a TLS proxy name).
- ``GET /feed/<token>/files/<id>/<name>``: such a file, to the owner whose
  token it is only; anything else there (wrong token, another owner's
  file, a wrong id or name) is answered like any unknown address.
- ``GET /healthz``: 200 when the last passes succeeded, else 503 and why.
- ``GET /metrics``: Prometheus text.
  These two need no token: they answer only requests addressed to this
  machine by name or address (see `web_app`), else 404.

It listens where ``[feed] listen`` says: loopback, unless ``allow_remote``
let the config name another address, which is said in the log at start.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote, urlsplit

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from followupd.channels.calendar.ical import file_type
from followupd.channels.feed.build import Feed
from followupd.channels.feed.files import ROUTE, named
from followupd.config.sections import FeedSection
from followupd.store.attachments import Named

log = logging.getLogger("followupd.web")

NOT_FOUND = "not found\n"
HOST = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:[0-9]{1,5})?")


@dataclass
class Handlers:
    """What the routes need from the service, as plain callables."""

    owner_of: Callable[[str], str | None]  # a token's owner key, None for a wrong one
    # an owner's, its files linked at an origin, built in a thread; None: gone
    feed: Callable[[str, datetime, str], Feed | None]
    file: Callable[[str, Named], bytes | None]  # a file of an owner's feed; None: not theirs
    health: Callable[[], tuple[bool, str]]
    metrics: Callable[[], bytes]
    now: Callable[[], datetime]


def web_app(
    handlers: Handlers, public_url: str | None = None, listen_host: str | None = None
) -> web.Application:
    """The routes; the links to the feed's files at `public_url` (``[feed] public_url``) when
    set, else at the origin each request names.

    /healthz and /metrics, which need no token, answer only a request addressed to an IP
    address, ``localhost``, `listen_host` (``[feed] listen``'s) or `public_url`'s host:
    against DNS rebinding, where a web page the user visits names its own domain, resolved
    to 127.0.0.1, to read them. The feed and its files need their token anyway."""
    names = {"localhost", *(name.lower() for name in (listen_host,) if name)}
    if public_url is not None and (public_host := urlsplit(public_url).hostname):
        names.add(public_host)

    def addressed_here(request: web.Request) -> bool:
        host = request.headers.get("Host", "")
        if not HOST.fullmatch(host):
            return False
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        name = name.strip("[]").lower()
        return name in names or name.endswith(".localhost") or _is_address(name)

    async def feed(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        given = name.removesuffix(".ics") if name.endswith(".ics") else ""
        owner = handlers.owner_of(given)
        if owner is None:
            return await not_found(request)
        built = await asyncio.to_thread(
            handlers.feed, owner, handlers.now(), public_url or origin_of(request)
        )
        if built is None:  # the owner left the config while we looked
            return await not_found(request)
        headers = {"ETag": built.etag, "Cache-Control": "private, max-age=300"}
        if built.etag in _etags(request.headers.get("If-None-Match", "")):
            return web.Response(status=304, headers=headers)
        return web.Response(
            body=built.body,
            headers=headers,
            content_type="text/calendar",
            charset="utf-8",
        )

    async def file(request: web.Request) -> web.StreamResponse:
        owner = handlers.owner_of(request.match_info["token"])
        wanted = named(request.match_info["file_id"], request.match_info["name"])
        if owner is None or wanted is None:
            return await not_found(request)
        data = await asyncio.to_thread(handlers.file, owner, wanted)
        if data is None:
            return await not_found(request)
        name = wanted[1]
        headers = {
            "ETag": f'"{hashlib.sha256(data).hexdigest()[:32]}"',
            "Cache-Control": "private, max-age=3600",
            "X-Content-Type-Options": "nosniff",
            "Content-Disposition": _disposition(name),
        }
        if headers["ETag"] in _etags(request.headers.get("If-None-Match", "")):
            return web.Response(status=304, headers=headers)
        return web.Response(body=data, headers=headers, content_type=file_type(name))

    async def healthz(request: web.Request) -> web.Response:
        if not addressed_here(request):
            return await not_found(request)
        ok, reason = handlers.health()
        return web.Response(status=200 if ok else 503, text=reason + "\n")

    async def metrics(request: web.Request) -> web.Response:
        if not addressed_here(request):
            return await not_found(request)
        body = await asyncio.to_thread(handlers.metrics)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/feed/{name}", feed)
    app.router.add_get(ROUTE, file)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    app.router.add_route("*", "/{anything:.*}", not_found)  # a wrong token looks just like this
    return app


async def listen(runner: web.AppRunner, where: FeedSection) -> web.TCPSite:
    """Serve `runner` at ``[feed] listen``, saying so in the log when that is beyond loopback."""
    warn_if_remote(where)
    site = web.TCPSite(runner, where.host, where.port)
    await site.start()
    return site


def warn_if_remote(where: FeedSection) -> None:
    """The warning a feed served beyond loopback (``allow_remote = true``) gets at start."""
    if where.remote:
        log.warning(
            "the feed listens on %s, beyond this machine (allow_remote = true): the feed, "
            "/metrics and /healthz are served in plain HTTP to whoever reaches it; "
            "put a TLS reverse proxy in front of it",
            where.listen,
        )
        if where.public_url is None:
            log.warning(
                "[feed] public_url is not set: the links to the feed's files take their "
                "origin from each request's Host and X-Forwarded-Proto or Forwarded header, "
                "plain http when the proxy sends none; set public_url to the proxy's "
                "https:// address"
            )


async def not_found(_request: web.Request) -> web.Response:
    return web.Response(status=404, text=NOT_FOUND)


def origin_of(request: web.Request) -> str:
    """Where the request was sent: the scheme (https behind a TLS proxy that says so) and the
    Host it named, else the address it came in at."""
    host = request.headers.get("Host", "")
    if not HOST.fullmatch(host):
        socket = request.transport.get_extra_info("sockname") if request.transport else None
        address, port = (socket[0], socket[1]) if socket else ("127.0.0.1", 80)
        host = f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
    return f"{scheme_of(request)}://{host}"


def scheme_of(request: web.Request) -> str:
    """The scheme the client used, as the proxy nearest to it says: the first value of
    X-Forwarded-Proto (``https, http`` from chained proxies), else the ``proto`` of the first
    element of Forwarded (RFC 7239), else the daemon's own."""
    first = request.headers.get("X-Forwarded-Proto", "").split(",", 1)[0].strip().lower()
    if first in ("http", "https"):
        return first
    nearest = request.forwarded[0].get("proto", "").lower() if request.forwarded else ""
    return nearest if nearest in ("http", "https") else request.scheme


def _is_address(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _disposition(name: str) -> str:
    """A Content-Disposition that saves the file under `name` (RFC 6266, UTF-8 beside ASCII)."""
    plain = re.sub(r"[^A-Za-z0-9._ -]", "_", name)
    return f"attachment; filename=\"{plain}\"; filename*=UTF-8''{quote(name, safe='')}"


def _etags(header: str) -> set[str]:
    return {part.strip().removeprefix("W/") for part in header.split(",") if part.strip()}
