"""The daemon's HTTP side (aiohttp): the iCalendar feed, health and metrics.

- ``GET /feed/<token>.ics``: the calendar items of the owner whose token it
  is (followupd.channels.feed), with an ETag, and 304 to a matching If-None-Match. A
  wrong token is answered exactly like any unknown address (404), after a
  constant-time comparison with every owner's token.
- ``GET /healthz``: 200 when the last passes succeeded, else 503 and why.
- ``GET /metrics``: Prometheus text.

It listens where ``[feed] listen`` says: loopback, unless ``allow_remote``
let the config name another address, which is said in the log at start.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from followupd.channels.feed.build import Feed
from followupd.config.sections import FeedSection

log = logging.getLogger("followupd.web")

NOT_FOUND = "not found\n"


@dataclass
class Handlers:
    """What the routes need from the service, as plain callables."""

    owner_of: Callable[[str], str | None]  # a token's owner key, None for a wrong one
    feed: Callable[[str, datetime], Feed | None]  # an owner's, built in a thread; None: gone
    health: Callable[[], tuple[bool, str]]
    metrics: Callable[[], bytes]
    now: Callable[[], datetime]


def web_app(handlers: Handlers) -> web.Application:
    async def feed(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        given = name.removesuffix(".ics") if name.endswith(".ics") else ""
        owner = handlers.owner_of(given)
        if owner is None:
            return await not_found(request)
        built = await asyncio.to_thread(handlers.feed, owner, handlers.now())
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

    async def healthz(_request: web.Request) -> web.Response:
        ok, reason = handlers.health()
        return web.Response(status=200 if ok else 503, text=reason + "\n")

    async def metrics(_request: web.Request) -> web.Response:
        body = await asyncio.to_thread(handlers.metrics)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/feed/{name}", feed)
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


async def not_found(_request: web.Request) -> web.Response:
    return web.Response(status=404, text=NOT_FOUND)


def _etags(header: str) -> set[str]:
    return {part.strip().removeprefix("W/") for part in header.split(",") if part.strip()}
